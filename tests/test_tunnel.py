"""The HTTP/2 tunnel's own rules: preface check, content-length stream errors, flood limits."""

from __future__ import annotations

import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
)

from _pair import connected_pair, of, pump
from _transcripts import A2, A3, SETTINGS_ACK
from uplink62676 import events as ev
from uplink62676.settings import DeviceSettings, FloodSettings
from uplink62676.status import Status
from uplink62676.tunnel import PREFACE_MAGIC, ErrorCode
from uplink62676.uplink import DeviceUplink

_ENC = hpack.Encoder()


def _device(settings: DeviceSettings | None = None) -> DeviceUplink:
    """A device that has sent its request and read the 101 (not the preface yet)."""
    device = DeviceUplink("https://cloud.example.com/uplink", settings=settings)
    device.start(0.0)
    device.data_to_send()
    device.receive_data(A2, 0.0)
    device.data_to_send()
    return device


def _connected_device(settings: DeviceSettings | None = None) -> tuple[DeviceUplink, hpack.Encoder]:
    device = _device(settings)
    device.receive_data(A3 + SETTINGS_ACK, 0.0)
    device.data_to_send()
    assert device.status is Status.CONNECTED
    return device, hpack.Encoder()


def _headers(
    enc: hpack.Encoder,
    sid: int,
    extra: list[tuple[str, str]] = (),
    end: bool = False,  # type: ignore[assignment]
    path: str = "/rtsp-tunnel",
    method: str = "POST",
) -> bytes:
    f = HeadersFrame(sid)
    f.data = enc.encode(
        [
            (":method", method),
            (":scheme", "https"),
            (":path", path),
            (":authority", "32010001071321008015"),
            *extra,
        ]
    )
    f.flags.add("END_HEADERS")
    if end:
        f.flags.add("END_STREAM")
    return f.serialize()


def _data(sid: int, payload: bytes, end: bool = False) -> bytes:
    f = DataFrame(sid, data=payload)
    if end:
        f.flags.add("END_STREAM")
    return f.serialize()


def _goaway_code(out: bytes) -> int | None:
    pos = 0
    while pos + 9 <= len(out):
        length = int.from_bytes(out[pos : pos + 3], "big")
        if out[pos + 3] == 0x7:
            return int.from_bytes(out[pos + 13 : pos + 17], "big")
        pos += 9 + length
    return None


# --- UPL-17: the connection preface ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_magic", "what"),
    [
        (bytes.fromhex("000008060000000000") + b"12345678", "PING"),
        (SETTINGS_ACK, "SETTINGS ACK"),
        (bytes.fromhex("0000040800000000000000ffff"), "WINDOW_UPDATE"),
    ],
)
def test_preface_must_be_magic_then_settings(after_magic: bytes, what: str) -> None:
    """UPL-17, UPL-R27: magic + anything but a non-ACK SETTINGS is PROTOCOL_ERROR, never Connected."""
    device = _device()
    events = device.receive_data(PREFACE_MAGIC + after_magic, 0.1)
    [term] = of(events, ev.ConnectionTerminated)
    assert term.error_code == ErrorCode.PROTOCOL_ERROR and not term.by_peer
    assert device.status is Status.OFFLINE
    assert not of(events, ev.Connected)
    assert "preface" in (device.error or "")


@pytest.mark.parametrize(
    "garbage", [b"PRI * HTTP/1.1\r\n", b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 30]
)
def test_wrong_or_truncated_magic(garbage: bytes) -> None:
    """UPL-17: wrong magic octets are refused as soon as they differ."""
    device = _device()
    events = device.receive_data(garbage, 0.1)
    assert of(events, ev.ConnectionTerminated)[0].error_code == ErrorCode.PROTOCOL_ERROR
    assert device.status is Status.OFFLINE


def test_preface_split_octet_by_octet() -> None:
    """UPL-17, UPL-R8: the preface may arrive in pieces; Connected only after its SETTINGS."""
    device = _device()
    for i, octet in enumerate(A3):
        events = device.receive_data(bytes([octet]), 0.1)
        if i < len(A3) - 1:
            assert device.status is Status.CONNECTING and not events
    assert of(events, ev.Connected) and device.status is Status.CONNECTED


def test_magic_never_sent_by_device() -> None:
    """UPL-16: the device's first frame is SETTINGS; it never sends the magic."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.data_to_send()
    device.receive_data(A2, 0.0)
    out = device.data_to_send()
    assert out[3] == 0x04 and b"PRI *" not in out


# --- UPL-61: content-length mismatch is a stream error --------------------------------------------


def test_content_length_short_is_stream_error() -> None:
    """UPL-61: END_STREAM before content-length octets -> RST_STREAM(PROTOCOL_ERROR) on that stream only."""
    device, enc = _connected_device()
    wire = (
        _headers(enc, 7, [("content-length", "2147483647")])
        + _data(7, b"x" * 24)
        + _data(7, b"", end=True)
    )
    events = device.receive_data(wire, 1.0)
    out = device.data_to_send()
    assert out == bytes.fromhex("00000403000000000700000001")
    [reset] = of(events, ev.StreamReset)
    assert reset.stream_id == 7 and reset.error_code == 1 and not reset.by_peer
    assert device.status is Status.CONNECTED
    events = device.receive_data(_headers(enc, 9, end=True, method="GET", path="/next"), 1.1)
    assert of(events, ev.RequestReceived)[0].stream_id == 9
    device.send_response(9, 200, body=b"fine")
    assert _goaway_code(device.data_to_send()) is None


def test_content_length_long_is_stream_error() -> None:
    """UPL-61: more DATA than content-length -> stream error, the link carries on."""
    device, enc = _connected_device()
    wire = _headers(enc, 7, [("content-length", "24")]) + _data(7, b"x" * 25)
    events = device.receive_data(wire, 1.0)
    out = device.data_to_send()
    assert bytes.fromhex("00000403000000000700000001") in out
    assert _goaway_code(out) is None
    [reset] = of(events, ev.StreamReset)
    assert reset.stream_id == 7 and not reset.by_peer and "24" in (reset.reason or "")
    assert device.status is Status.CONNECTED
    # The refused octets' connection-level credit is given back: a full
    # window's worth more on other streams causes no flow-control error.
    wire = b""
    for sid in (9, 11, 13, 15, 17):
        wire += _headers(enc, sid) + _data(sid, b"y" * 13000, end=True)
    events = device.receive_data(wire, 1.1)
    assert len(of(events, ev.StreamEnded)) == 5 and device.status is Status.CONNECTED


def test_content_length_cancel_is_no_error() -> None:
    """UPL-60, UPL-61: the same stream ended with RST_STREAM(CANCEL) produces no error at all."""
    device, enc = _connected_device()
    rst = RstStreamFrame(7)
    rst.error_code = 8
    wire = (
        _headers(enc, 7, [("content-length", "2147483647")]) + _data(7, b"x" * 24) + rst.serialize()
    )
    events = device.receive_data(wire, 1.0)
    assert of(events, ev.StreamReset) == [ev.StreamReset(7, 8, by_peer=True)]
    out = device.data_to_send()
    assert _goaway_code(out) is None and b"\x00\x00\x04\x03" not in out
    assert device.status is Status.CONNECTED


def test_headers_end_stream_with_nonzero_length() -> None:
    """UPL-61: HEADERS with END_STREAM but content-length 5 is a stream error too."""
    device, enc = _connected_device()
    events = device.receive_data(_headers(enc, 7, [("content-length", "5")], end=True), 1.0)
    assert of(events, ev.StreamReset)[0].error_code == ErrorCode.PROTOCOL_ERROR
    assert _goaway_code(device.data_to_send()) is None
    assert device.status is Status.CONNECTED


def test_content_length_exact_is_fine_with_padding() -> None:
    """UPL-61: padding does not count towards content-length."""
    device, enc = _connected_device()
    f = DataFrame(7, data=b"abcd", pad_length=10)
    f.flags.add("PADDED")
    f.flags.add("END_STREAM")
    events = device.receive_data(_headers(enc, 7, [("content-length", "4")]) + f.serialize(), 1.0)
    assert of(events, ev.StreamEnded) == [ev.StreamEnded(7)]
    assert not of(events, ev.StreamReset)


# --- flood limits (UPL-R22, design.md) ------------------------------------------------------------


def _calm(events: list[ev.Event], device: DeviceUplink) -> None:
    [term] = of(events, ev.ConnectionTerminated)
    assert term.error_code == ErrorCode.ENHANCE_YOUR_CALM and not term.by_peer
    assert _goaway_code(device.data_to_send()) == ErrorCode.ENHANCE_YOUR_CALM
    assert device.status is Status.OFFLINE


def test_rapid_reset_flood() -> None:
    """UPL-R22: open-and-reset in a loop (CVE-2023-44487) ends with GOAWAY ENHANCE_YOUR_CALM."""
    device, enc = _connected_device(
        DeviceSettings(floods=FloodSettings(reset_burst=50, reset_rate=5))
    )
    wire = b""
    for i in range(60):
        sid = 2 * i + 1
        rst = RstStreamFrame(sid)
        rst.error_code = 8
        wire += _headers(enc, sid, method="GET", path="/") + rst.serialize()
    events = device.receive_data(wire, 1.0)
    # 50 resets pass; the 51st stream is opened and its reset trips the limit.
    assert len(of(events, ev.StreamReset)) == 50
    assert len(of(events, ev.RequestReceived)) == 51
    _calm(events, device)


def test_resets_within_rate_are_fine() -> None:
    """UPL-R22: resets below the rate never trip the limit (no false positives)."""
    device, enc = _connected_device(
        DeviceSettings(floods=FloodSettings(reset_burst=10, reset_rate=5))
    )
    for i in range(100):
        sid = 2 * i + 1
        rst = RstStreamFrame(sid)
        rst.error_code = 8
        device.receive_data(_headers(enc, sid, method="GET", path="/") + rst.serialize(), i * 0.25)
    assert device.status is Status.CONNECTED


def test_ping_flood() -> None:
    """UPL-R22: a PING flood (CVE-2019-9512) is cut off instead of queueing endless ACKs."""
    device, _ = _connected_device()
    wire = b"".join(PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize() for i in range(600))
    events = device.receive_data(wire, 1.0)
    _calm(events, device)


def test_ping_acks_not_read_by_peer() -> None:
    """A peer that sends PINGs but never reads our ACKs hits the pending-output cap."""
    device, _ = _connected_device(
        DeviceSettings(
            floods=FloodSettings(control_burst=10**6, control_rate=10**6, max_pending_output=1000)
        )
    )
    wire = b"".join(PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize() for i in range(100))
    events = device.receive_data(wire, 1.0)
    _calm(events, device)


def test_settings_with_too_many_entries() -> None:
    """UPL-R22: one SETTINGS frame with more than 32 entries (CVE-2020-11080)."""
    device, _ = _connected_device()
    f = SettingsFrame(0)
    payload = b"".join((0x4).to_bytes(2, "big") + (65535).to_bytes(4, "big") for _ in range(33))
    wire = len(payload).to_bytes(3, "big") + b"\x04\x00\x00\x00\x00\x00" + payload
    del f
    _calm(device.receive_data(wire, 1.0), device)


def test_continuation_flood() -> None:
    """UPL-R22: endless CONTINUATION frames (2024) are cut after 8."""
    device, enc = _connected_device()
    block = enc.encode(
        [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "x")]
    )
    h = HeadersFrame(1, data=block[:2])
    wire = h.serialize()
    for _ in range(20):
        wire += ContinuationFrame(1, data=b"\x00").serialize()
    _calm(device.receive_data(wire, 1.0), device)


def test_header_block_size_cap() -> None:
    """UPL-R22: a compressed header block larger than the cap ends the link."""
    device, _ = _connected_device(DeviceSettings(floods=FloodSettings(max_header_block=1000)))
    h = HeadersFrame(1, data=b"\x00" * 900)
    wire = h.serialize() + ContinuationFrame(1, data=b"\x00" * 900).serialize()
    _calm(device.receive_data(wire, 1.0), device)


def test_empty_data_flood() -> None:
    """UPL-R22: empty DATA frames without END_STREAM (CVE-2019-9518)."""
    device, enc = _connected_device()
    wire = _headers(enc, 1, method="POST", path="/")
    wire += b"".join(_data(1, b"") for _ in range(300))
    _calm(device.receive_data(wire, 1.0), device)


def test_priority_flood() -> None:
    """UPL-R22, UPL-R11: PRIORITY frames are ignored but counted."""
    device, _ = _connected_device()
    wire = b"".join(PriorityFrame(2 * i + 1).serialize() for i in range(600))
    _calm(device.receive_data(wire, 1.0), device)


def test_oversized_frame() -> None:
    """UPL-19: frames above our SETTINGS_MAX_FRAME_SIZE (16384) are FRAME_SIZE_ERROR."""
    device, enc = _connected_device()
    wire = _headers(enc, 1, method="POST", path="/") + _data(1, b"x" * 16385)
    events = device.receive_data(wire, 1.0)
    [term] = of(events, ev.ConnectionTerminated)
    assert term.error_code == ErrorCode.FRAME_SIZE_ERROR
    assert _goaway_code(device.data_to_send()) == ErrorCode.FRAME_SIZE_ERROR


def test_header_list_size_limit() -> None:
    """UPL-R22: a decoded header list over the limit (HPACK bomb) ends the link."""
    device, enc = _connected_device(DeviceSettings(max_header_list_size=4096))
    events = device.receive_data(
        _headers(enc, 1, [("x-big", "a" * 5000)], end=True, method="GET", path="/"), 1.0
    )
    [term] = of(events, ev.ConnectionTerminated)
    assert term.error_code in (ErrorCode.ENHANCE_YOUR_CALM, ErrorCode.PROTOCOL_ERROR)
    assert device.status is Status.OFFLINE


def test_push_promise_refused_by_cloud() -> None:
    """UPL-R9: the cloud disables push; a PUSH_PROMISE from a device is a protocol error."""
    device, cloud = connected_pair()
    sid = cloud.send_request("GET", "/", end_stream=True)
    pump(device, cloud)
    block = hpack.Encoder().encode(
        [(":method", "GET"), (":scheme", "https"), (":path", "/p"), (":authority", "x")]
    )
    pp = len(block) + 4
    frame = (
        pp.to_bytes(3, "big")
        + b"\x05\x04"
        + sid.to_bytes(4, "big")
        + (2).to_bytes(4, "big")
        + block
    )
    events = cloud.receive_data(frame, 1.0)
    assert of(events, ev.ConnectionTerminated)[0].error_code == ErrorCode.PROTOCOL_ERROR


def test_device_settings_advertised() -> None:
    """UPL-19, UPL-57, UPL-R9: only non-default settings, never ENABLE_PUSH=1 from the device."""
    device = DeviceUplink(
        "https://c.example/u",
        settings=DeviceSettings(
            max_concurrent_streams=32,
            enable_connect_protocol=False,
            initial_window_size=1 << 20,
            advertise_header_list_size=True,
        ),
    )
    device.start(0.0)
    device.data_to_send()
    device.receive_data(A2, 0.0)
    out = device.data_to_send()
    length = int.from_bytes(out[:3], "big")
    entries = {
        int.from_bytes(out[9 + i : 11 + i], "big"): int.from_bytes(out[11 + i : 15 + i], "big")
        for i in range(0, length, 6)
    }
    assert entries == {0x3: 32, 0x4: 1 << 20, 0x6: 16384}


def _exchange(device: DeviceUplink, cloud: object, n: int) -> None:
    for _ in range(n):
        sid = cloud.send_request("GET", "/x", end_stream=True)  # type: ignore[attr-defined]
        pump(device, cloud, 1.0)  # type: ignore[arg-type]
        device.send_response(sid, 200, body=b"ok")
        pump(device, cloud, 1.0)  # type: ignore[arg-type]


def test_closed_streams_not_remembered_forever() -> None:
    """A long-lived uplink does not grow with every exchange (h2 kept 65,536 closed
    streams, ~80 octets each: ~5 MB per busy uplink); only resets are remembered."""
    device, cloud = connected_pair(0.0)
    _exchange(device, cloud, 2000)
    assert len(cloud._tunnel._conn._closed_streams) == 0  # type: ignore[union-attr]
    assert len(device._tunnel._conn._closed_streams) == 0  # type: ignore[union-attr]


def test_reset_streams_remembered_and_bounded() -> None:
    from uplink62676 import tunnel

    device, cloud = connected_pair(0.0)
    for i in range(tunnel.MAX_RESET_STREAMS + 10):
        sid = cloud.send_request("GET", "/x", end_stream=True)
        cloud.reset_stream(sid)
        pump(device, cloud, i / 10)  # within the device's rapid-reset limit
    _exchange(device, cloud, 1)  # h2 files the closed streams away lazily
    remembered = cloud._tunnel._conn._closed_streams  # type: ignore[union-attr]
    assert len(remembered) == tunnel.MAX_RESET_STREAMS
    assert cloud.connected and device.status is Status.CONNECTED


def test_late_frames_on_a_reset_stream_are_not_a_connection_error() -> None:
    """The device answers a stream the cloud has just reset (the RST_STREAM crossed the
    answer); the cloud has filed the stream away meanwhile: the uplink carries on."""
    device, cloud = connected_pair(0.0)
    _exchange(device, cloud, 3)
    sid = cloud.send_request("GET", "/slow", end_stream=True)
    pump(device, cloud, 1.0)
    device.send_response(sid, 200, body=b"too late")
    late = device.data_to_send()
    cloud.reset_stream(sid)
    others = [cloud.send_request("GET", "/x", end_stream=True) for _ in range(5)]
    device.receive_data(cloud.data_to_send(), 1.0)  # the RST and five more requests
    assert sid in cloud._tunnel._conn._closed_streams  # type: ignore[union-attr]
    events = cloud.receive_data(late, 1.0)
    assert not of(events, ev.ConnectionTerminated) and cloud.connected
    for other in others:
        device.send_response(other, 200, body=b"ok")
    _dev, cloud_events = pump(device, cloud, 1.0)
    assert len(of(cloud_events, ev.ResponseReceived)) == 5
    assert not of(cloud_events, ev.ConnectionTerminated)
    assert device.status is Status.CONNECTED
