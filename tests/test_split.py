"""Byte streams split at every boundary give identical events (both ends).

Each scenario is recorded once from a real back-to-back run; then the octets
one end received are replayed into a fresh machine cut at arbitrary points
(and coalesced into one read), and the events and output must be identical.
"""

from __future__ import annotations

import hpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _pair import connected_pair, of, pump
from _transcripts import (
    A1,
    A2,
    A3,
    A4_SETTINGS,
    A5_HEADERS,
    A6,
    A6_BODY,
    A7_HEADERS,
    A8,
    E_GOAWAY,
    SETTINGS_ACK,
)
from uplink62676 import events as ev
from uplink62676.uplink import CloudUplink, DeviceUplink


def _answer(device: DeviceUplink, events: list[ev.Event]) -> None:
    for e in events:
        if isinstance(e, ev.StreamEnded):
            device.send_response(
                e.stream_id, 200, [("content-type", "text/plain")], b"answer-%d" % e.stream_id * 50
            )


def _replay_device(chunks: list[bytes]) -> tuple[list[ev.Event], bytes]:
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    out = device.data_to_send()
    events: list[ev.Event] = []
    for c in chunks:
        got = device.receive_data(c, 1.0)
        _answer(device, got)
        events += got
        out += device.data_to_send()
    return events, out


def _replay_cloud(chunks: list[bytes]) -> tuple[list[ev.Event], bytes]:
    cloud = CloudUplink()
    events: list[ev.Event] = []
    out = b""
    for c in [A1, *chunks]:
        got = cloud.receive_data(c, 1.0)
        if any(isinstance(e, ev.UpgradeRequested) for e in got):
            cloud.accept(1.0)
            cloud.send_request(
                "POST", "/onvif/uplink_service", [("content-type", "application/soap+xml")], A6_BODY
            )
        events += got
        out += cloud.data_to_send()
    return events, out


def _record_multi_stream() -> bytes:
    """Cloud->device octets of a session: 5 streams, streamed bodies, a reset, a PING, GOAWAY."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    cloud = CloudUplink()
    device.start(0.0)
    cloud.receive_data(device.data_to_send(), 0.0)
    cloud.accept(0.0)
    wire = bytearray(cloud.data_to_send())
    device.receive_data(bytes(wire), 0.0)
    cloud.receive_data(device.data_to_send(), 0.0)
    sids = [
        cloud.send_request(
            "POST", f"/soap/{i}", [("content-type", "application/soap+xml")], b"<x>%d</x>" % i * 60
        )
        for i in range(3)
    ]
    up = cloud.send_request("POST", "/stream", end_stream=False)
    for k in range(5):
        cloud.send_data(up, bytes([k]) * 3000)
    cloud.send_data(up, b"tail", end_stream=True)
    gone = cloud.send_request("GET", "/gone", end_stream=False)
    cloud.reset_stream(gone)
    cloud.ping(0.5)
    del sids
    for _ in range(50):
        chunk = cloud.data_to_send()
        wire += chunk
        got = device.receive_data(chunk, 0.5)
        _answer(device, got)
        back = device.data_to_send()
        if back:
            cloud.receive_data(back, 0.5)
        if not chunk and not back:
            break
    cloud.close()
    wire += cloud.data_to_send()
    return bytes(wire)


TRANSCRIPT_TO_DEVICE = A2 + A3 + SETTINGS_ACK + A5_HEADERS + A6 + E_GOAWAY
MULTI_TO_DEVICE = _record_multi_stream()
# The device speaks HTTP/2 only after the 101, so the cloud gets A1 on its own
# (it refuses octets that arrive before its 101) and then the rest, cut anywhere.
TRANSCRIPT_TO_CLOUD = A4_SETTINGS + SETTINGS_ACK + A7_HEADERS + A8


def _cut(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    chunks, last = [], 0
    for c in cuts:
        chunks.append(data[last:c])
        last = c
    chunks.append(data[last:])
    return [c for c in chunks if c]


def _frames_by_stream(out: bytes) -> dict[int, list[tuple[int, int, object]]]:
    """Output as frames per stream, header blocks decoded, WINDOW_UPDATEs left out.

    When an application answers after each read, its answers interleave with
    flow-control frames differently for different read boundaries; what must
    not change is what each stream carries.
    """
    http_head, sep, rest = out.partition(b"\r\n\r\n")
    if sep and http_head.startswith(b"GET "):
        out = rest
    if out.startswith(b"HTTP/1.1 "):
        out = out.partition(b"\r\n\r\n")[2]
    if out.startswith(b"PRI * HTTP/2.0"):
        out = out[24:]
    decoder = hpack.Decoder()
    per: dict[int, list[tuple[int, int, object]]] = {}
    pos = 0
    while pos + 9 <= len(out):
        length = int.from_bytes(out[pos : pos + 3], "big")
        ftype, flags = out[pos + 3], out[pos + 4]
        sid = int.from_bytes(out[pos + 5 : pos + 9], "big")
        payload = out[pos + 9 : pos + 9 + length]
        if ftype != 0x8:
            item: object = decoder.decode(payload) if ftype == 0x1 else payload
            per.setdefault(sid, []).append((ftype, flags, item))
        pos += 9 + length
    assert pos == len(out)
    return per


def _same(replay, data: bytes, points: list[int]) -> None:  # type: ignore[no-untyped-def]
    whole_events, whole_out = replay([data])
    split_events, split_out = replay(_cut(data, points))
    assert split_events == whole_events
    assert _frames_by_stream(split_out) == _frames_by_stream(whole_out)


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.lists(st.integers(min_value=0), max_size=40))
def test_device_transcript_any_split(points: list[int]) -> None:
    """UPL-R8, UPL-17: transcript A into the device, cut anywhere -> identical events and output."""
    _same(_replay_device, TRANSCRIPT_TO_DEVICE, points)


@_SETTINGS
@given(st.lists(st.integers(min_value=0), max_size=60))
def test_device_multi_stream_any_split(points: list[int]) -> None:
    """UPL-4, UPL-43: a multi-stream session into the device, cut anywhere -> identical events."""
    _same(_replay_device, MULTI_TO_DEVICE, points)


@_SETTINGS
@given(st.lists(st.integers(min_value=0), max_size=40))
def test_cloud_transcript_any_split(points: list[int]) -> None:
    """UPL-12..15: transcript A into the cloud, cut anywhere -> identical events and output."""
    _same(_replay_cloud, TRANSCRIPT_TO_CLOUD, points)
    events, _ = _replay_cloud([TRANSCRIPT_TO_CLOUD])
    assert of(events, ev.DataReceived)[0].data.endswith(b"</env:Envelope>")


def test_every_single_cut_point_device() -> None:
    """UPL-R8: exhaustively, every one-cut split of transcript A into the device."""
    whole = _replay_device([TRANSCRIPT_TO_DEVICE])
    for i in range(1, len(TRANSCRIPT_TO_DEVICE)):
        events, out = _replay_device([TRANSCRIPT_TO_DEVICE[:i], TRANSCRIPT_TO_DEVICE[i:]])
        assert events == whole[0]
        assert _frames_by_stream(out) == _frames_by_stream(whole[1])


def test_octet_by_octet_both_ends() -> None:
    """Every octet in its own read, both ends."""
    for replay, data in ((_replay_device, MULTI_TO_DEVICE), (_replay_cloud, TRANSCRIPT_TO_CLOUD)):
        events, out = replay([bytes([b]) for b in data])
        whole_events, whole_out = replay([data])
        assert events == whole_events
        assert _frames_by_stream(out) == _frames_by_stream(whole_out)


def test_recorded_scenario_is_meaningful() -> None:
    """The recorded session really holds the requests, a reset and a GOAWAY."""
    events, _ = _replay_device([MULTI_TO_DEVICE])
    assert len(of(events, ev.RequestReceived)) == 5
    assert of(events, ev.StreamReset) and of(events, ev.ConnectionTerminated)
    assert sum(len(e.data) for e in of(events, ev.DataReceived)) > 15_000
    device, cloud = connected_pair()
    assert pump(device, cloud) == ([], [])
