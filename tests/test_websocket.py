"""The ``wss`` uplink (uplink.md section 5, transcripts C and D of section 11).

Byte-exact where the octets are ours to choose (the WebSocket key and the
masking keys come from the caller's entropy source), against independent
peers written directly on wsproto + h2, and split at arbitrary boundaries.
"""

from __future__ import annotations

import random
import struct

import h2.config
import h2.connection
import h2.events as h2e
import pytest
import wsproto.events as wse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.frame_protocol import XorMaskerSimple

from _pair import connected_pair, of, pump
from _transcripts import (
    A3,
    A4_SETTINGS,
    A5_HEADERS,
    A6,
    A6_BODY,
    A7_HEADERS,
    A8,
    A8_BODY,
    E_GOAWAY,
    E_PING,
    E_PING_ACK,
    SETTINGS_ACK,
    TOKEN,
)
from uplink62676 import events as ev
from uplink62676.errors import ConfigurationError
from uplink62676.status import Status
from uplink62676.uplink import CloudUplink, DeviceUplink, Phase
from uplink62676.websocket import (
    SUBPROTOCOL,
    SeededEntropy,
    WebSocketClosed,
    WebSocketSettings,
    accept_token,
)

URI = "wss://cloud.example.com/uplink/ws"
KEY_OCTETS = b"Uplink-wss-key!0"
MASK = bytes.fromhex("a1b2c3d4")

C1 = (
    b"GET /uplink/ws HTTP/1.1\r\nHost: cloud.example.com\r\nConnection: Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: VXBsaW5rLXdzcy1rZXkhMA==\r\nSec-WebSocket-Protocol: h2c-reverse\r\n"
    b"Authorization: Bearer 8sYq2-Tz.Kf0wLm_Q4\r\n\r\n"
)
C2 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: CBFwz8SvE0cLrWDRvfY3EyJiQGM=\r\nSec-WebSocket-Protocol: h2c-reverse\r\n\r\n"
)
C3 = bytes.fromhex("8227") + A3
C4 = bytes.fromhex(
    "82 9e a1 b2 c3 d4 a1 b2 cf d0 a1 b2 c3 d4 a1 b2 c0 d4 a1 b2 d3 d4 a9 b2 c3 d4 a0 b2 c3 d4"
    " a5 b3 c3 d4 a1 b2"
)
C5 = bytes.fromhex("82 09 00 00 00 04 01 00 00 00 00")
D1 = (
    b"GET /uplink/ws?access_token=8sYq2-Tz.Kf0wLm_Q4 HTTP/1.1\r\nHost: cloud.example.com\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Key: VXBsaW5rLXdzcy1rZXkhMA==\r\nSec-WebSocket-Protocol: h2c-reverse\r\n\r\n"
)


class TranscriptEntropy:
    """The transcript's key octets, then the masking key a1 b2 c3 d4, then seeded octets."""

    def __init__(self) -> None:
        self.script = [KEY_OCTETS, MASK]
        self.rest = SeededEntropy(62676)
        self.calls: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.calls.append(n)
        if self.script:
            part = self.script.pop(0)
            assert len(part) == n
            return part
        return self.rest(n)


# --- a tiny independent frame reader/writer for assertions -------------------------------------


def frames(data: bytes) -> list[tuple[bool, int, bytes | None, bytes]]:
    """(fin, opcode, masking key or None, unmasked payload) of every frame in ``data``."""
    out = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        pos += 2
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", data[pos : pos + 2])
            pos += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[pos : pos + 8])
            pos += 8
        key = None
        if b1 & 0x80:
            key = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + length]
        assert len(payload) == length, "truncated frame"
        pos += length
        if key is not None:
            payload = bytes(XorMaskerSimple(key).process(bytearray(payload)))
        out.append((bool(b0 & 0x80), b0 & 0x0F, key, payload))
    return out


def frame(opcode: int, payload: bytes, *, fin: bool = True, key: bytes | None = None) -> bytes:
    """One RFC 6455 frame (masked when ``key`` is given)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if key is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if key is None:
        return head + payload
    return head + key + bytes(XorMaskerSimple(key).process(bytearray(payload)))


def unwrap(data: bytes) -> bytes:
    """The concatenated payloads of the binary/continuation frames in ``data``."""
    return b"".join(p for _fin, op, _k, p in frames(data) if op in (0, 2))


def wss_device(**kwargs: object) -> DeviceUplink:
    kwargs.setdefault("entropy", SeededEntropy(b"test"))
    return DeviceUplink(URI, **kwargs)  # type: ignore[arg-type]


def switched_device(**kwargs: object) -> DeviceUplink:
    """A device in transcript C after C2 + C3 and C5 (Connected, own output drained)."""
    device = DeviceUplink(URI, access_token=TOKEN, entropy=TranscriptEntropy(), **kwargs)  # type: ignore[arg-type]
    device.start(0.0)
    device.data_to_send()
    device.receive_data(C2 + C3, 0.0)
    device.data_to_send()
    device.receive_data(C5, 0.0)
    assert device.status is Status.CONNECTED
    return device


def switched_cloud(**kwargs: object) -> CloudUplink:
    """A cloud in transcript C after C1, its 101 + C3, and C4 (Connected)."""
    cloud = CloudUplink(**kwargs)  # type: ignore[arg-type]
    cloud.receive_data(C1, 0.0)
    cloud.accept(0.0)
    cloud.data_to_send()
    cloud.receive_data(C4, 0.0)
    cloud.data_to_send()
    assert cloud.connected
    return cloud


# --- transcripts C and D ------------------------------------------------------------------------


def test_transcript_c_device_end_byte_exact() -> None:
    """UPL-7, UPL-20, UPL-21, UPL-24, UPL-26, UPL-27, UPL-R12, UPL-38: transcript C, device side.

    C1 (244 octets, no Sec-WebSocket-Extensions) and C4 (masked with a1 b2 c3 d4)
    octet for octet; C2 + C3 arriving in one read switch and connect the device.
    """
    entropy = TranscriptEntropy()
    device = DeviceUplink(URI, access_token=TOKEN, entropy=entropy)
    device.start(0.0)
    c1 = device.data_to_send()
    assert c1 == C1 and len(c1) == 244
    assert b"Sec-WebSocket-Extensions" not in c1  # UPL-R12: no extensions offered
    assert len(C2) == 166
    events = device.receive_data(C2 + C3, 0.1)
    [accepted] = of(events, ev.UpgradeAccepted)
    assert (b"sec-websocket-protocol", b"h2c-reverse") in accepted.headers
    assert of(events, ev.Connected) and device.status is Status.CONNECTED
    c4 = device.data_to_send()
    assert c4 == C4
    assert frames(c4) == [(True, 2, MASK, A4_SETTINGS + SETTINGS_ACK)]
    assert entropy.calls == [16, 4]  # the key, then one fresh masking key per frame
    assert device.receive_data(C5, 0.2) == []
    # A5..A8 continue wrapped in binary frames; the device's frames are masked.
    events = device.receive_data(frame(2, A5_HEADERS + A6), 0.3)
    [req] = of(events, ev.RequestReceived)
    assert (req.stream_id, req.method, req.path) == (1, "POST", "/onvif/uplink_service")
    assert b"".join(e.data for e in of(events, ev.DataReceived)) == A6_BODY
    device.send_response(1, 200, [("content-type", "application/soap+xml; charset=utf-8")], A8_BODY)
    out = frames(device.data_to_send())
    assert [(fin, op, key is not None) for fin, op, key, _ in out] == [(True, 2, True)]
    payload = out[0][3]
    assert payload.endswith(A8) and payload[3:9] == A7_HEADERS[3:9]


def test_transcript_c_cloud_end_byte_exact() -> None:
    """UPL-12, UPL-15, UPL-22, UPL-23, UPL-26, UPL-28, UPL-39: transcript C, cloud side.

    The 101 is C2 octet for octet and the next octet is the first of a WebSocket
    frame, C3, the unmasked preface; C4 in, C5 (unmasked SETTINGS ACK) out.
    """
    cloud = CloudUplink()
    [req] = cloud.receive_data(C1, 0.0)
    assert isinstance(req, ev.UpgradeRequested)
    assert req.websocket and req.target == "/uplink/ws" and req.host == "cloud.example.com"
    assert req.bearer_token == TOKEN and TOKEN not in repr(req)
    cloud.accept(0.0)
    assert cloud.data_to_send() == C2 + C3
    events = cloud.receive_data(C4, 0.1)
    assert of(events, ev.Connected) and cloud.connected
    assert cloud.data_to_send() == C5
    sid = cloud.send_request(
        "POST", "/onvif/uplink_service", [("content-type", "application/soap+xml")], A6_BODY
    )
    out = frames(cloud.data_to_send())
    assert all(key is None and op == 2 and fin for fin, op, key, _ in out)  # UPL-28
    assert out[-1][3].endswith(A6)
    events = cloud.receive_data(frame(2, A7_HEADERS + A8, key=b"\x01\x02\x03\x04"), 0.2)
    [resp] = of(events, ev.ResponseReceived)
    assert resp.stream_id == sid and resp.status_code == 200
    assert b"".join(e.data for e in of(events, ev.DataReceived)) == A8_BODY


def test_transcript_d_token_in_query() -> None:
    """UPL-25, UPL-R17: the token as form-urlencoded access_token query parameter, no header."""
    device = DeviceUplink(URI, access_token=TOKEN, entropy=TranscriptEntropy(), token_in_query=True)
    device.start(0.0)
    d1 = device.data_to_send()
    assert d1 == D1
    assert b"Authorization" not in d1
    cloud = CloudUplink()
    [req] = cloud.receive_data(d1, 0.0)
    assert isinstance(req, ev.UpgradeRequested) and req.websocket
    assert req.bearer_token == TOKEN
    assert TOKEN not in repr(req)  # the query value is redacted too
    cloud.accept(0.0)
    assert cloud.data_to_send() == C2 + C3  # "the 101 is the same as C2"
    # Form-urlencoding of a token with reserved characters, appended to an existing query.
    wire = _request_of("wss://c.example/ws?dev=7", "a b+c/=")
    assert wire.startswith(b"GET /ws?dev=7&access_token=a+b%2Bc%2F%3D HTTP/1.1\r\n")
    [req] = CloudUplink().receive_data(wire, 0.0)
    assert isinstance(req, ev.UpgradeRequested) and req.bearer_token == "a b+c/="


def _request_of(uri: str, token: str) -> bytes:
    device = DeviceUplink(uri, access_token=token, entropy=TranscriptEntropy(), token_in_query=True)
    device.start(0.0)
    return device.data_to_send()


def test_token_in_query_only_for_wss() -> None:
    """UPL-25, UPL-R17: the query form is a WebSocket option and needs a token."""
    with pytest.raises(ConfigurationError, match="wss"):
        DeviceUplink("https://cloud.example.com/uplink", access_token=TOKEN, token_in_query=True)
    with pytest.raises(ConfigurationError, match="token"):
        DeviceUplink(URI, token_in_query=True)
    device = DeviceUplink(URI + "?access_token=x", access_token=TOKEN, token_in_query=True)
    with pytest.raises(ConfigurationError, match="access_token"):
        device.start(0.0)


def test_cloud_rejects_token_in_both_places() -> None:
    """UPL-R17: header and query together break RFC 6750 section 2; refused with 400."""
    both = D1.replace(b"\r\n\r\n", b"\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
    cloud = CloudUplink()
    [refused] = cloud.receive_data(both, 0.0)
    assert isinstance(refused, ev.UpgradeRefused) and refused.status_code == 400
    assert cloud.data_to_send().startswith(b"HTTP/1.1 400 ")


# --- the device checks the 101 -----------------------------------------------------------------


def _101(**changes: bytes | None) -> bytes:
    fields = {
        b"Upgrade": b"websocket",
        b"Connection": b"Upgrade",
        b"Sec-WebSocket-Accept": b"CBFwz8SvE0cLrWDRvfY3EyJiQGM=",
        b"Sec-WebSocket-Protocol": b"h2c-reverse",
    }
    for name, value in changes.items():
        fields[name.replace("_", "-").encode()] = value  # type: ignore[assignment]
    head = b"HTTP/1.1 101 Switching Protocols\r\n"
    for name, value in fields.items():
        if value is not None:
            head += name + b": " + value + b"\r\n"
    return head + b"\r\n"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_101(Sec_WebSocket_Accept=b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "Sec-WebSocket-Accept"),
        (_101(Sec_WebSocket_Accept=None), "Sec-WebSocket-Accept"),
        (_101(Sec_WebSocket_Protocol=None), "no WebSocket sub-protocol"),
        (_101(Sec_WebSocket_Protocol=b"rtsp.onvif.org"), "rtsp.onvif.org"),
        (_101(Sec_WebSocket_Protocol=b"h2c-reverse, chat"), "sub-protocol"),
        (_101(Sec_WebSocket_Protocol=b"H2C-REVERSE"), "sub-protocol"),
        (_101(Sec_WebSocket_Extensions=b"permessage-deflate"), "extension"),
        (_101(Upgrade=b"h2c-reverse"), "Upgrade: websocket"),
        (_101(Connection=b"keep-alive"), "Connection: Upgrade"),
    ],
)
def test_device_fails_bad_101(answer: bytes, message: str) -> None:
    """UPL-24, UPL-R12: wrong accept, no / another sub-protocol, an extension -> failed attempt."""
    device = DeviceUplink(URI, entropy=TranscriptEntropy())
    device.start(0.0)
    device.data_to_send()
    events = device.receive_data(answer + C3, 0.1)
    assert not of(events, ev.UpgradeAccepted) and not of(events, ev.Connected)
    assert device.status is Status.OFFLINE and device.phase is Phase.CLOSED
    assert message in (device.error or "")
    assert device.data_to_send() == b""


def test_device_refused_upgrade_over_wss() -> None:
    """UPL-R7, UPL-R18: a 401 Bearer challenge to a WebSocket upgrade is a refusal like any other."""
    device = wss_device(access_token=TOKEN)
    cloud = CloudUplink()
    device.start(0.0)
    cloud.receive_data(device.data_to_send(), 0.0)
    cloud.refuse(401, bearer_error="invalid_token")
    events = device.receive_data(cloud.data_to_send(), 0.1)
    [refused] = of(events, ev.UpgradeRefused)
    assert refused.status_code == 401 and device.discard_token
    assert device.error == "upgrade refused: 401 invalid_token"


# --- the cloud checks the request --------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "status", "message"),
    [
        (
            b"Sec-WebSocket-Protocol: h2c-reverse",
            b"Sec-WebSocket-Protocol: chat",
            400,
            "h2c-reverse",
        ),
        (b"Sec-WebSocket-Protocol: h2c-reverse\r\n", b"", 400, "h2c-reverse"),
        (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8", 426, "Version"),
        (b"VXBsaW5rLXdzcy1rZXkhMA==", b"c2hvcnQ=", 400, "16 octets"),
        (b"Sec-WebSocket-Key: VXBsaW5rLXdzcy1rZXkhMA==\r\n", b"", 400, "Key"),
        (b"Upgrade: websocket", b"Upgrade: websocket, h2c", 400, "Upgrade"),
    ],
)
def test_cloud_refuses_bad_websocket_request(
    old: bytes, new: bytes, status: int, message: str
) -> None:
    """UPL-20, UPL-21, UPL-22: a request the cloud cannot switch is refused with a reason."""
    request = C1.replace(old, new)
    assert request != C1
    cloud = CloudUplink()
    [refused] = cloud.receive_data(request, 0.0)
    assert isinstance(refused, ev.UpgradeRefused) and refused.status_code == status
    assert message in refused.reason
    answer = cloud.data_to_send()
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    if status == 426:  # RFC 6455 section 4.4: name the version we speak
        assert b"Sec-WebSocket-Version: 13\r\n" in answer
    assert cloud.phase is Phase.CLOSED


def test_cloud_tolerates_field_deviations_on_wss() -> None:
    """UPL-20: the tolerant request parsing of the native upgrade applies to wss too."""
    sloppy = C1.replace(b"GET ", b"Get ").replace(b"\r\n", b"\n")
    sloppy = sloppy.replace(
        b"Sec-WebSocket-Protocol: h2c-reverse", b"Sec-WebSocket-Protocol: chat, h2c-reverse"
    )
    cloud = CloudUplink()
    [req] = cloud.receive_data(sloppy, 0.0)
    assert isinstance(req, ev.UpgradeRequested) and req.websocket
    assert set(req.tolerated) == {"method-case", "bare-lf"}
    cloud.accept(0.0)
    assert cloud.data_to_send() == C2 + C3  # selects h2c-reverse among the offers


def test_native_upgrade_still_native() -> None:
    """UPL-6, UPL-7: the same cloud tells native and WebSocket upgrades apart."""
    _device, cloud = connected_pair()
    assert cloud.request is not None and not cloud.request.websocket
    _device, cloud = connected_pair(device=wss_device())
    assert cloud.request is not None and cloud.request.websocket


# --- framing rules ------------------------------------------------------------------------------


def test_text_frame_to_device_closes_1003() -> None:
    """UPL-R13, UPL-R14, UPL-26: a text frame ends the uplink: GOAWAY, then Close 1003."""
    device = switched_device()
    events = device.receive_data(frame(1, b"PRI?"), 1.0)
    [closed] = of(events, WebSocketClosed)
    assert closed.code == 1003 and not closed.by_peer
    assert of(events, ev.ConnectionTerminated)[0].error_code == 1
    assert device.status is Status.OFFLINE and device.phase is Phase.CLOSED
    assert "text frame" in (device.error or "")
    out = frames(device.data_to_send())
    assert [op for _f, op, _k, _p in out] == [2, 8]
    assert out[0][3][3] == 0x07  # GOAWAY first ...
    assert out[1][3][:2] == b"\x03\xeb" and out[1][2] is not None  # ... then a masked Close 1003
    assert device.receive_data(frame(2, E_PING), 2.0) == []  # nothing read after that


def test_text_frame_to_cloud_closes_1003() -> None:
    """UPL-R13: a text frame from the device is refused the same way (Close unmasked)."""
    cloud = switched_cloud()
    events = cloud.receive_data(frame(1, b"hello", key=MASK), 1.0)
    assert of(events, WebSocketClosed)[0].code == 1003
    assert cloud.phase is Phase.CLOSED
    out = frames(cloud.data_to_send())
    assert [(op, key) for _f, op, key, _p in out] == [(2, None), (8, None)]
    assert out[1][3][:2] == b"\x03\xeb"


def test_masked_frame_to_device_closes_1002() -> None:
    """UPL-28: the cloud never masks; a masked frame makes the device close with 1002."""
    device = switched_device()
    events = device.receive_data(frame(2, E_PING, key=MASK), 1.0)
    [closed] = of(events, WebSocketClosed)
    assert closed.code == 1002 and not closed.by_peer
    assert device.status is Status.OFFLINE
    out = frames(device.data_to_send())
    assert out[-1][1] == 8 and out[-1][3][:2] == b"\x03\xea"
    assert not any(op == 2 and E_PING_ACK in p for _f, op, _k, p in out)  # the PING was not read


def test_unmasked_frame_to_cloud_closes_1002() -> None:
    """UPL-27, UPL-28: the device must mask; an unmasked frame makes the cloud close with 1002."""
    cloud = switched_cloud()
    events = cloud.receive_data(frame(2, E_PING), 1.0)
    assert of(events, WebSocketClosed)[0].code == 1002
    assert cloud.phase is Phase.CLOSED
    assert frames(cloud.data_to_send())[-1][3][:2] == b"\x03\xea"


def test_ping_answered_with_pong_both_ends() -> None:
    """UPL-29: a WebSocket Ping is answered with a Pong carrying the same payload."""
    device = switched_device()
    assert device.receive_data(frame(9, b"are you there"), 1.0) == []
    [(fin, op, key, payload)] = frames(device.data_to_send())
    assert (fin, op, payload) == (True, 0xA, b"are you there") and key is not None
    cloud = switched_cloud()
    assert cloud.receive_data(frame(9, b"\x00\x01", key=MASK), 1.0) == []
    assert cloud.data_to_send() == bytes.fromhex("8a02 0001")
    # A Pong nobody asked for is ignored; data around control frames is not disturbed.
    events = device.receive_data(frame(0xA, b"x") + frame(2, E_PING), 2.0)
    assert events == []
    assert unwrap(device.data_to_send()) == E_PING_ACK


def test_close_from_cloud_is_echoed() -> None:
    """UPL-29: a Close from the cloud ends the uplink; the device answers with Close (same code)."""
    device = switched_device()
    events = device.receive_data(frame(8, struct.pack("!H", 1001) + b"restart"), 1.0)
    assert (
        ev.ConnectionTerminated(0, None, by_peer=True, reason="WebSocket Close 1001 without GOAWAY")
        in events
    )
    assert WebSocketClosed(1001, "restart", by_peer=True) in events
    assert device.status is Status.OFFLINE and device.phase is Phase.CLOSED
    assert "1001" in (device.error or "")
    [(_fin, op, key, payload)] = frames(device.data_to_send())
    assert (op, payload) == (8, struct.pack("!H", 1001)) and key is not None


def test_close_from_device_is_echoed() -> None:
    """UPL-29: a Close from the device ends the cloud's uplink; the cloud echoes it."""
    cloud = switched_cloud()
    events = cloud.receive_data(frame(8, struct.pack("!H", 1000), key=MASK), 1.0)
    assert WebSocketClosed(1000, None, by_peer=True) in events
    assert cloud.phase is Phase.CLOSED
    assert cloud.data_to_send() == bytes.fromhex("8802 03e8")


def test_teardown_goaway_then_close() -> None:
    """UPL-R14, UPL-R24: closing sends GOAWAY, then the WebSocket Close; the peer answers Close."""
    device, cloud = connected_pair(device=wss_device())
    device.close()
    out = device.data_to_send()
    parsed = frames(out)
    assert [op for _f, op, _k, _p in parsed] == [2, 8]
    assert parsed[0][3][3] == 0x07 and parsed[1][3] == b"\x03\xe8"
    events = cloud.receive_data(out, 1.0)
    assert of(events, ev.ConnectionTerminated)[0].by_peer
    assert of(events, WebSocketClosed) == [WebSocketClosed(1000, None, by_peer=True)]
    assert cloud.phase is Phase.CLOSED
    reply = cloud.data_to_send()
    assert frames(reply) == [(True, 8, None, b"\x03\xe8")]
    assert device.phase is Phase.DRAINING
    device.receive_data(reply, 1.1)
    assert device.phase is Phase.CLOSED and device.status is Status.OFFLINE


def test_teardown_waits_for_streams_in_flight() -> None:
    """UPL-R14, UPL-R24: after a NO_ERROR GOAWAY the Close waits until the last stream ended."""
    device, cloud = connected_pair(device=wss_device())
    sid = cloud.send_request("GET", "/slow", end_stream=True)
    pump(device, cloud, 1.0)
    cloud.close()
    d_events, _ = pump(device, cloud, 1.0)
    assert of(d_events, ev.ConnectionTerminated) and not of(d_events, WebSocketClosed)
    assert device.phase is Phase.DRAINING
    device.send_response(sid, 200, body=b"late but delivered")
    out = device.data_to_send()
    assert [op for _f, op, _k, _p in frames(out)] == [2, 8]  # the answer, then Close
    c_events = cloud.receive_data(out, 2.0)
    assert of(c_events, ev.DataReceived)[0].data == b"late but delivered"
    assert of(c_events, WebSocketClosed) and cloud.phase is Phase.CLOSED
    device.receive_data(cloud.data_to_send(), 2.0)
    assert device.phase is Phase.CLOSED


def test_goaway_with_error_then_close_at_once() -> None:
    """UPL-R14: a GOAWAY with an error code is followed by the Close in the same write."""
    _device, cloud = connected_pair(device=wss_device())
    cloud.close(error_code=2, reason="shutting down")
    out = cloud.data_to_send()
    assert [op for _f, op, _k, _p in frames(out)] == [2, 8]
    assert cloud.phase is Phase.CLOSED


def test_transcript_e_over_wss() -> None:
    """UPL-R14, UPL-29, UPL-47: transcript E wrapped: PING masked out, ACK in, GOAWAY, Close."""
    device, cloud = connected_pair(device=wss_device())
    sid = cloud.send_request("GET", "/", end_stream=True)
    pump(device, cloud, 1.0)
    device.send_response(sid, 204, end_stream=True)
    pump(device, cloud, 1.0)
    device.handle_timeout(11.0)
    ping = frames(device.data_to_send())
    assert [(op, key is not None, p) for _f, op, key, p in ping] == [(2, True, E_PING)]
    events = device.receive_data(frame(2, E_PING_ACK), 11.25)
    assert events == [ev.PingAcknowledged(b"UPLK\x00\x00\x00\x01", 0.25)]
    device.close()
    out = frames(device.data_to_send())
    assert [(op, p) for _f, op, _k, p in out] == [(2, E_GOAWAY), (8, b"\x03\xe8")]


def test_dead_link_is_just_closed() -> None:
    """UPL-48, UPL-R24: a link silent for more than 30 s is closed without GOAWAY or Close."""
    device, _cloud = connected_pair(device=wss_device())
    for t in (10.0, 20.0):
        device.handle_timeout(t)
        device.data_to_send()
    events = device.handle_timeout(30.001)
    assert of(events, ev.LinkLost) and device.status is Status.OFFLINE
    assert device.data_to_send() == b""


def test_http2_frames_span_messages_and_share_them() -> None:
    """UPL-R13: one HTTP/2 frame over three messages (with fragments), several frames in one."""
    device = switched_device()
    request = A5_HEADERS + A6
    wire = (
        frame(2, request[:5])  # a message holding only part of a frame header
        + frame(2, request[5:40], fin=False)
        + frame(9, b"p")  # control frames may sit between fragments
        + frame(0, request[40:41], fin=False)
        + frame(0, request[41:100])
        + frame(2, request[100:] + E_PING)  # the rest of two frames and a whole one
    )
    events = device.receive_data(wire, 1.0)
    assert [type(e) for e in events] == [
        ev.RequestReceived,
        ev.DataReceived,
        ev.StreamEnded,
    ]
    out = frames(device.data_to_send())
    assert out[0][1] == 0xA and out[0][3] == b"p"  # the Pong
    assert E_PING_ACK in out[1][3]


def test_whole_http2_frames_per_message_on_send() -> None:
    """UPL-R13, UPL-26, UPL-27: output messages are binary, masked, whole HTTP/2 frames, bounded."""
    device, cloud = connected_pair(
        device=wss_device(websocket_limits=WebSocketSettings(max_outbound_message=20_000))
    )
    sid = cloud.send_request("GET", "/big", end_stream=True)
    pump(device, cloud)
    device.send_response(sid, 200, body=b"z" * 60_000)
    out = device.data_to_send()
    parsed = frames(out)
    assert len(parsed) > 1
    keys = set()
    for fin, op, key, payload in parsed:
        assert fin and op == 2 and key is not None
        keys.add(key)
        assert len(payload) <= 20_000 or payload[:3] == (len(payload) - 9).to_bytes(3, "big")
        pos = 0
        while pos < len(payload):  # whole HTTP/2 frames only
            pos += 9 + int.from_bytes(payload[pos : pos + 3], "big")
        assert pos == len(payload)
    assert len(keys) == len(parsed)  # a fresh masking key per frame
    events = cloud.receive_data(out, 1.0)
    assert sum(len(e.data) for e in of(events, ev.DataReceived)) == 60_000


def test_message_size_limit_1009() -> None:
    """UPL-R13, bounded buffers: a message past max_message_size closes with 1009."""
    device = switched_device(websocket_limits=WebSocketSettings(max_message_size=1000))
    ok = device.receive_data(frame(2, E_PING * 50), 1.0)  # 850 octets: fine
    assert device.status is Status.CONNECTED and not of(ok, WebSocketClosed)
    device.data_to_send()
    events = device.receive_data(frame(2, E_PING * 30, fin=False) + frame(0, E_PING * 30), 1.0)
    assert of(events, WebSocketClosed)[0].code == 1009
    assert device.status is Status.OFFLINE


def test_control_frame_flood_1008() -> None:
    """UPL-29 with a bound: a Ping flood (or empty frames) ends the link with 1008, not endless Pongs."""
    device = switched_device()
    events = device.receive_data(frame(9, b"") * 150, 1.0)
    assert of(events, WebSocketClosed)[0].code == 1008
    out = frames(device.data_to_send())
    assert sum(1 for _f, op, _k, _p in out if op == 0xA) == 100
    cloud = switched_cloud()
    events = cloud.receive_data(frame(2, b"", key=MASK) * 150, 1.0)
    assert of(events, WebSocketClosed)[0].code == 1008


def test_garbage_frame_closes_1002() -> None:
    """UPL-28, UPL-29: a reserved opcode or a fragmented control frame is a protocol error."""
    for wire in (bytes.fromhex("8300"), bytes.fromhex("0900"), bytes.fromhex("c200")):
        device = switched_device()
        events = device.receive_data(wire, 1.0)
        assert of(events, WebSocketClosed)[0].code == 1002, wire


# --- entropy ------------------------------------------------------------------------------------


def test_entropy_sources() -> None:
    """UPL-21, UPL-27: key and masks come from the caller; seeded runs repeat, attempts differ."""
    a, b = SeededEntropy(1), SeededEntropy(1)
    assert a(16) + a(4) == b(20)
    assert SeededEntropy(2)(16) != SeededEntropy(1)(16)
    assert "1" not in repr(a)
    rnd = random.Random(5)
    device = DeviceUplink(URI, entropy=rnd.randbytes)
    device.start(0.0)
    assert b"Sec-WebSocket-Key: " in device.data_to_send()
    keys = set()
    for now in (0.0, 1.5, 3.0):  # default: seeded from the address and now, fresh per attempt
        d = DeviceUplink(URI)
        d.start(now)
        keys.add(d.data_to_send().split(b"Sec-WebSocket-Key: ")[1][:24])
    assert len(keys) == 3
    d = DeviceUplink(URI)
    d.start(0.0)
    assert d.data_to_send().split(b"Sec-WebSocket-Key: ")[1][:24] in keys
    with pytest.raises(ConfigurationError, match="16 octets"):
        DeviceUplink(URI, entropy=lambda n: b"short").start(0.0)
    with pytest.raises(ConfigurationError):
        SeededEntropy(1.5)  # type: ignore[arg-type]
    assert accept_token("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455


def test_limits_validated() -> None:
    with pytest.raises(ConfigurationError, match="max_outbound_message"):
        WebSocketSettings(max_outbound_message=0)
    with pytest.raises(ConfigurationError, match="max_message_size"):
        WebSocketSettings(max_message_size=-1)
    assert WebSocketSettings(max_message_size=None).max_message_size is None


# --- back to back and independent peers ----------------------------------------------------------


def test_back_to_back_many_streams() -> None:
    """UPL-3, UPL-4, UPL-7, UPL-26: device and cloud over wss, 16 streams, big bodies both ways."""
    device, cloud = connected_pair(device=wss_device())
    sids = [cloud.send_request("POST", f"/s/{i}", body=bytes([i]) * 30_000) for i in range(16)]
    d_events, _ = pump(device, cloud, 1.0)
    reqs = of(d_events, ev.RequestReceived)
    assert [r.stream_id for r in reqs] == sids
    bodies_in: dict[int, bytes] = {}
    for e in of(d_events, ev.DataReceived):
        bodies_in[e.stream_id] = bodies_in.get(e.stream_id, b"") + e.data
    assert bodies_in == {sid: bytes([i]) * 30_000 for i, sid in enumerate(sids)}
    for r in reversed(reqs):
        device.send_response(r.stream_id, 200, body=r.path.encode() * 5000)
    _, c_events = pump(device, cloud, 1.0)
    bodies: dict[int, bytes] = {}
    for e in of(c_events, ev.DataReceived):
        bodies[e.stream_id] = bodies.get(e.stream_id, b"") + e.data
    assert bodies == {sid: f"/s/{i}".encode() * 5000 for i, sid in enumerate(sids)}
    assert device.status is Status.CONNECTED


def _ws_bytes(ws: WSConnection) -> tuple[bytes, list[wse.Event]]:
    data = b""
    other: list[wse.Event] = []
    for e in ws.events():
        if isinstance(e, wse.BytesMessage):
            data += e.data
        else:
            other.append(e)
    return data, other


def test_our_device_against_wsproto_h2_cloud() -> None:
    """UPL-20..24, UPL-26..29: an independent cloud on wsproto (server) + h2 (client)."""
    device = DeviceUplink(URI, access_token=TOKEN, entropy=random.Random(1).randbytes)
    device.start(0.0)
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(device.data_to_send())
    [request] = list(ws.events())
    assert isinstance(request, wse.Request)
    assert request.subprotocols == [SUBPROTOCOL] and request.extensions == []
    assert (b"authorization", b"Bearer " + TOKEN.encode()) in request.extra_headers
    h2c = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    h2c.initiate_connection()
    wire = ws.send(wse.AcceptConnection(subprotocol=SUBPROTOCOL))
    wire += ws.send(wse.BytesMessage(data=h2c.data_to_send()))
    device.receive_data(wire, 0.0)
    assert device.status is Status.CONNECTED
    ws.receive_data(device.data_to_send())  # wsproto insists on masked frames (UPL-27)
    data, other = _ws_bytes(ws)
    assert other == []
    h2c.receive_data(data)
    sid = h2c.get_next_available_stream_id()
    h2c.send_headers(
        sid, [(":method", "POST"), (":scheme", "https"), (":path", "/x"), (":authority", "dev")]
    )
    h2c.send_data(sid, b"hello", end_stream=True)
    # The HTTP/2 octets cut into two messages at an awkward place (UPL-R13).
    out = h2c.data_to_send()
    events = device.receive_data(
        ws.send(wse.BytesMessage(data=out[:7]))
        + ws.send(wse.Ping(b"hi"))
        + ws.send(wse.BytesMessage(data=out[7:])),
        0.1,
    )
    [req] = of(events, ev.RequestReceived)
    assert req.path == "/x"
    device.send_response(req.stream_id, 200, [("x-echo", "1")], b"world")
    ws.receive_data(device.data_to_send())
    data, other = _ws_bytes(ws)
    assert other == [wse.Pong(payload=b"hi")]
    got = h2c.receive_data(data)
    resp = next(e for e in got if isinstance(e, h2e.ResponseReceived))
    assert (b":status", b"200") in resp.headers
    assert b"".join(e.data for e in got if isinstance(e, h2e.DataReceived)) == b"world"
    device.close()
    ws.receive_data(device.data_to_send())
    data, other = _ws_bytes(ws)
    assert any(isinstance(e, h2e.ConnectionTerminated) for e in h2c.receive_data(data))
    assert isinstance(other[0], wse.CloseConnection) and other[0].code == 1000
    device.receive_data(ws.send(other[0].response()), 0.2)
    assert device.phase is Phase.CLOSED


def test_our_cloud_against_wsproto_h2_device() -> None:
    """UPL-12, UPL-15, UPL-22, UPL-23, UPL-26, UPL-28, UPL-29: an independent device on wsproto + h2."""
    ws = WSConnection(ConnectionType.CLIENT)
    cloud = CloudUplink()
    [req] = cloud.receive_data(
        ws.send(
            wse.Request(
                host="cloud.example.com",
                target="/uplink/ws?access_token=T0k",
                subprotocols=[SUBPROTOCOL],
            )
        ),
        0.0,
    )
    assert isinstance(req, ev.UpgradeRequested) and req.websocket and req.bearer_token == "T0k"
    cloud.accept(0.0, [("x-cloud", "1")])
    ws.receive_data(cloud.data_to_send())  # wsproto checks our accept token and sub-protocol
    events = list(ws.events())
    assert isinstance(events[0], wse.AcceptConnection) and events[0].subprotocol == SUBPROTOCOL
    assert (b"x-cloud", b"1") in events[0].extra_headers
    preface = b"".join(e.data for e in events[1:] if isinstance(e, wse.BytesMessage))
    assert preface == A3  # the cloud speaks first, unmasked (wsproto would refuse a mask)
    h2s = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    h2s.initiate_connection()
    h2s.receive_data(preface)
    cloud.receive_data(ws.send(wse.BytesMessage(data=h2s.data_to_send())), 0.0)
    assert cloud.connected
    sid = cloud.send_request("GET", "/onvif/device_service", end_stream=True, authority="dev7")
    ws.receive_data(cloud.data_to_send())
    data, _ = _ws_bytes(ws)
    got = h2s.receive_data(data)
    request = next(e for e in got if isinstance(e, h2e.RequestReceived))
    assert (b":path", b"/onvif/device_service") in request.headers
    h2s.send_headers(sid, [(":status", "200")])
    h2s.send_data(sid, b"ok", end_stream=True)
    events2 = cloud.receive_data(
        ws.send(wse.Ping(b"\x07")) + ws.send(wse.BytesMessage(data=h2s.data_to_send())), 0.1
    )
    assert of(events2, ev.ResponseReceived)[0].status_code == 200
    assert of(events2, ev.DataReceived)[0].data == b"ok"
    ws.receive_data(cloud.data_to_send())
    assert [e for e in ws.events() if isinstance(e, wse.Pong)] == [wse.Pong(payload=b"\x07")]
    events3 = cloud.receive_data(ws.send(wse.CloseConnection(code=1000)), 0.2)
    assert of(events3, WebSocketClosed) and cloud.phase is Phase.CLOSED
    ws.receive_data(cloud.data_to_send())
    assert any(isinstance(e, wse.CloseConnection) for e in ws.events())


# --- split boundaries ---------------------------------------------------------------------------


def _answer(device: DeviceUplink, events: list[ev.Event]) -> None:
    for e in events:
        if isinstance(e, ev.StreamEnded) and device.phase is not Phase.CLOSED:
            device.send_response(e.stream_id, 200, body=b"answer-%d" % e.stream_id * 40)


def _record() -> tuple[bytes, bytes]:
    """Both directions of a wss session after the request: 4 streams, a reset, pings, GOAWAY."""
    device = wss_device(entropy=SeededEntropy(9))
    cloud = CloudUplink()
    device.start(0.0)
    request = device.data_to_send()
    cloud.receive_data(request, 0.0)
    cloud.accept(0.0)
    to_device = bytearray()
    to_cloud = bytearray()
    for i in range(3):
        cloud.send_request(
            "POST", f"/soap/{i}", [("content-type", "application/soap+xml")], b"<x/>" * 700
        )
    up = cloud.send_request("POST", "/stream", end_stream=False)
    gone = cloud.send_request("GET", "/gone", end_stream=False)
    for _ in range(40):
        a = cloud.data_to_send()
        to_device += a
        got = device.receive_data(a, 0.5) if a else []
        if any(isinstance(e, ev.Connected) for e in got) and up:
            cloud.send_data(up, b"u" * 20_000, end_stream=True)
            cloud.reset_stream(gone)
            cloud.ping(0.5)
            up = 0
        _answer(device, got)
        b = device.data_to_send()
        to_cloud += b
        if b:
            cloud.receive_data(b, 0.5)
        if not a and not b:
            break
    to_device += frame(9, b"ws-ping")
    cloud.close()
    to_device += cloud.data_to_send()
    return request, bytes(to_device)


REQUEST, TO_DEVICE = _record()


def _replay_device(chunks: list[bytes]) -> list[ev.Event]:
    device = wss_device(entropy=SeededEntropy(9))
    device.start(0.0)
    device.data_to_send()
    events: list[ev.Event] = []
    for c in chunks:
        got = device.receive_data(c, 1.0)
        _answer(device, got)
        device.data_to_send()
        events += got
    return events


def _record_to_cloud() -> bytes:
    device = wss_device(entropy=SeededEntropy(9))
    cloud = CloudUplink()
    device.start(0.0)
    cloud.receive_data(device.data_to_send(), 0.0)
    cloud.accept(0.0)
    wire = bytearray()
    device.receive_data(cloud.data_to_send(), 0.0)
    sid = 0
    for _ in range(3):
        cloud.send_request("GET", "/a", end_stream=True)
    for _ in range(20):
        got = device.receive_data(cloud.data_to_send(), 0.0)
        for e in got:
            if isinstance(e, ev.RequestReceived):
                sid = e.stream_id
                device.send_response(sid, 200, body=b"r" * 15_000)  # within the windows
        out = device.data_to_send()
        if not out:
            break
        wire += out
        cloud.receive_data(out, 0.0)
    device.close()
    wire += device.data_to_send()
    return bytes(wire)


TO_CLOUD = _record_to_cloud()


def _replay_cloud(chunks: list[bytes]) -> list[ev.Event]:
    cloud = CloudUplink()
    cloud.receive_data(REQUEST, 1.0)
    cloud.accept(1.0)
    for _ in range(3):
        cloud.send_request("GET", "/a", end_stream=True)
    events: list[ev.Event] = []
    for c in chunks:
        events += cloud.receive_data(c, 1.0)
        cloud.data_to_send()
    return events


def _cut(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    chunks, last = [], 0
    for c in cuts:
        chunks.append(data[last:c])
        last = c
    chunks.append(data[last:])
    return [c for c in chunks if c]


_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_recorded_sessions_are_meaningful() -> None:
    events = _replay_device([TO_DEVICE])
    assert len(of(events, ev.RequestReceived)) == 5
    assert of(events, ev.StreamReset) and of(events, ev.ConnectionTerminated)
    assert of(events, WebSocketClosed) == [WebSocketClosed(1000, None, by_peer=True)]
    events = _replay_cloud([TO_CLOUD])
    assert sum(len(e.data) for e in of(events, ev.DataReceived)) == 45_000
    assert of(events, WebSocketClosed)


@_SETTINGS
@given(st.lists(st.integers(min_value=0), max_size=60))
def test_device_any_split(points: list[int]) -> None:
    """UPL-R13, UPL-R8: the cloud->device WebSocket octets cut anywhere give identical events."""
    assert _replay_device(_cut(TO_DEVICE, points)) == _replay_device([TO_DEVICE])


@_SETTINGS
@given(st.lists(st.integers(min_value=0), max_size=60))
def test_cloud_any_split(points: list[int]) -> None:
    """UPL-R13: the device->cloud WebSocket octets (masked) cut anywhere give identical events."""
    assert _replay_cloud(_cut(TO_CLOUD, points)) == _replay_cloud([TO_CLOUD])


H2_TO_DEVICE = A3 + SETTINGS_ACK + A5_HEADERS + A6 + E_PING + E_GOAWAY


def _device_events_for(wire: bytes) -> list[ev.Event]:
    device = DeviceUplink(URI, entropy=TranscriptEntropy())
    device.start(0.0)
    device.data_to_send()
    events = device.receive_data(C2, 0.0)
    events += device.receive_data(wire, 0.0)
    return [e for e in events if not isinstance(e, ev.UpgradeAccepted)]


BASELINE = _device_events_for(frame(2, H2_TO_DEVICE))


@_SETTINGS
@given(
    st.lists(st.integers(min_value=0), max_size=12),
    st.lists(st.integers(min_value=0), max_size=12),
    st.lists(st.booleans(), max_size=24),
)
def test_http2_over_any_messages(
    messages: list[int], fragments: list[int], pings: list[bool]
) -> None:
    """UPL-R13, UPL-29: HTTP/2 octets spread over any messages and fragments, Pings in between."""
    wire = b""
    k = 0
    for msg in _cut(H2_TO_DEVICE, messages):
        parts = _cut(msg, fragments)
        for i, part in enumerate(parts):
            wire += frame(2 if i == 0 else 0, part, fin=i == len(parts) - 1)
            if k < len(pings) and pings[k]:
                wire += frame(9, b"%d" % k)
            k += 1
    assert _device_events_for(wire) == BASELINE


def test_invalid_preface_over_wss() -> None:
    """UPL-17, UPL-R14: a bad HTTP/2 preface inside the frames fails the attempt: GOAWAY, Close."""
    device = DeviceUplink(URI, entropy=TranscriptEntropy())
    device.start(0.0)
    device.data_to_send()
    bad = A3[:24] + bytes.fromhex("00 00 08 06 00 00 00 00 00") + b"12345678"
    events = device.receive_data(C2 + frame(2, bad), 0.1)
    assert not of(events, ev.Connected)
    assert device.status is Status.OFFLINE and "preface" in (device.error or "")
    out = frames(device.data_to_send())
    assert [op for _f, op, _k, _p in out] == [2, 8]
    goaway = out[0][3].removeprefix(A4_SETTINGS)  # the server preface went out first (UPL-R9)
    assert goaway[3] == 0x07 and goaway[13:17] == b"\x00\x00\x00\x01"  # PROTOCOL_ERROR


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(C1)), st.integers(0, 8), st.binary(max_size=8))
def test_mangled_requests_parse_or_refuse(pos: int, cut: int, insert: bytes) -> None:
    """UPL-20..23: a mangled WebSocket request is either offered or refused, never a crash."""
    cloud = CloudUplink()
    events = cloud.receive_data(C1[:pos] + insert + C1[pos + cut :], 0.0)
    if of(events, ev.UpgradeRequested):
        cloud.accept(0.0)
        assert frames(cloud.data_to_send().partition(b"\r\n\r\n")[2]) == [(True, 2, None, A3)]
    elif events:
        assert of(events, ev.UpgradeRefused) and cloud.phase is Phase.CLOSED


def test_header_line_without_colon_is_refused() -> None:
    """UPL-20: a field line without a colon is a 400, not an internal error (found by mutation)."""
    cloud = CloudUplink()
    [refused] = cloud.receive_data(C1.replace(b"Connection: Upgrade", b"Connection"), 0.0)
    assert isinstance(refused, ev.UpgradeRefused) and refused.status_code == 400


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(C2)), st.integers(0, 8), st.binary(max_size=8))
def test_mangled_101_switches_or_fails(pos: int, cut: int, insert: bytes) -> None:
    """UPL-24, UPL-R12: a mangled 101 either passes every check or fails the attempt."""
    device = DeviceUplink(URI, entropy=TranscriptEntropy())
    device.start(0.0)
    device.data_to_send()
    device.receive_data(C2[:pos] + insert + C2[pos + cut :] + C3, 0.0)
    assert device.status in (Status.CONNECTING, Status.CONNECTED, Status.OFFLINE)
    if device.status is Status.CONNECTED:
        assert frames(device.data_to_send())[0][3] == A4_SETTINGS + SETTINGS_ACK


def test_cloud_reads_http2_across_masked_messages() -> None:
    """UPL-R13, UPL-27: the cloud joins masked messages and fragments into one octet stream."""
    cloud = CloudUplink()
    cloud.receive_data(C1, 0.0)
    cloud.accept(0.0)
    cloud.data_to_send()
    server_preface = A4_SETTINGS + SETTINGS_ACK
    wire = (
        frame(2, server_preface[:3], key=b"\x00\x00\x00\x01")
        + frame(2, server_preface[3:10], fin=False, key=b"\x10\x20\x30\x40")
        + frame(9, b"", key=b"\x01\x01\x01\x01")
        + frame(0, server_preface[10:], key=b"\xff\xee\xdd\xcc")
    )
    events = cloud.receive_data(wire, 0.0)
    assert of(events, ev.Connected) and cloud.connected
    out = frames(cloud.data_to_send())
    assert (True, 0xA, None, b"") in out and (True, 2, None, SETTINGS_ACK) in out
