"""DeviceUplink / CloudUplink end to end in memory, against transcript A (uplink.md section 11)."""

from __future__ import annotations

import h2.config
import h2.connection
import hpack
import pytest

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
    A8_BODY,
    B1,
    E_GOAWAY,
    E_PING,
    E_PING_ACK,
    SETTINGS_ACK,
    TOKEN,
)
from uplink62676 import events as ev
from uplink62676.errors import ConfigurationError, LocalProtocolError
from uplink62676.settings import CloudSettings
from uplink62676.status import Status
from uplink62676.tunnel import ErrorCode
from uplink62676.uplink import (
    CLOUD_TRANSITIONS,
    DEVICE_TRANSITIONS,
    CloudUplink,
    DeviceUplink,
    Phase,
    Trigger,
)

SOAP_CT = b'application/soap+xml; charset=utf-8; action="http://www.onvif.org/ver10/uplink/wsdl/GetUplinks"'


def _decode_headers(frame: bytes) -> list[tuple[bytes, bytes]]:
    return [(bytes(k), bytes(v)) for k, v in hpack.Decoder().decode(frame[9:], raw=True)]


def test_transcript_a_device_end_byte_exact() -> None:
    """UPL-9, UPL-10, UPL-11, UPL-R5, UPL-16, UPL-18, UPL-R9, UPL-3, UPL-4, UPL-44: transcript A, device side.

    A1, A4 and A8 are compared octet for octet.  A7's header block is compared
    decoded: h2's HPACK encoder uses incremental indexing and Huffman where
    the transcript uses literals for readability (same header list).
    """
    device = DeviceUplink("https://cloud.example.com/uplink")
    assert device.status is Status.OFFLINE
    device.start(0.0)
    assert device.status is Status.CONNECTING
    assert device.data_to_send() == A1
    # A2 and A3 in one read (UPL-R8): the preface right behind the 101.
    events = device.receive_data(A2 + A3, 0.1)
    assert of(events, ev.UpgradeAccepted) and of(events, ev.Connected)
    assert device.status is Status.CONNECTED and device.error is None
    assert device.data_to_send() == A4_SETTINGS + SETTINGS_ACK
    events = device.receive_data(SETTINGS_ACK + A5_HEADERS + A6, 0.2)
    [req] = of(events, ev.RequestReceived)
    assert (req.stream_id, req.method, req.path, req.scheme, req.authority) == (
        1,
        "POST",
        "/onvif/uplink_service",
        "https",
        "32010001071321008015",
    )
    assert req.headers == ((b"content-type", SOAP_CT), (b"content-length", b"209"))
    assert req.content_length == 209
    assert b"".join(e.data for e in of(events, ev.DataReceived)) == A6_BODY
    assert of(events, ev.StreamEnded) == [ev.StreamEnded(1)]
    device.send_response(1, 200, [("content-type", "application/soap+xml; charset=utf-8")], A8_BODY)
    out = device.data_to_send()
    headers_frame, data_frame = out[: len(out) - len(A8)], out[len(out) - len(A8) :]
    assert data_frame == A8
    assert headers_frame[3:9] == A7_HEADERS[3:9]  # HEADERS, END_HEADERS, stream 1
    assert _decode_headers(headers_frame) == _decode_headers(A7_HEADERS)


def test_transcript_a_cloud_end_byte_exact() -> None:
    """UPL-12, UPL-13, UPL-14, UPL-15, UPL-18, UPL-R10: transcript A, cloud side.

    A2 + A3 are compared octet for octet; A5's header list decoded (HPACK
    representation differs), A6 octet for octet; the cloud decodes A7/A8.
    """
    cloud = CloudUplink()
    [req] = cloud.receive_data(A1, 0.0)
    assert isinstance(req, ev.UpgradeRequested)
    assert (req.target, req.host, req.bearer_token, req.tolerated) == (
        "/uplink",
        "cloud.example.com",
        None,
        (),
    )
    cloud.accept(0.0)
    assert cloud.data_to_send() == A2 + A3
    events = cloud.receive_data(A4_SETTINGS + SETTINGS_ACK, 0.1)
    assert of(events, ev.Connected) and cloud.connected
    assert cloud.data_to_send() == SETTINGS_ACK
    sid = cloud.send_request(
        "POST",
        "/onvif/uplink_service",
        [("content-type", SOAP_CT)],
        A6_BODY,
        authority="32010001071321008015",
    )
    assert sid == 1  # the upgrade request is not stream 1 (UPL-R10)
    out = cloud.data_to_send()
    assert out.endswith(A6)
    assert _decode_headers(out[: -len(A6)]) == _decode_headers(A5_HEADERS)
    events = cloud.receive_data(A7_HEADERS + A8, 0.2)
    [resp] = of(events, ev.ResponseReceived)
    assert resp.status_code == 200 and resp.content_length == 473
    assert b"".join(e.data for e in of(events, ev.DataReceived)) == A8_BODY
    assert of(events, ev.StreamEnded) == [ev.StreamEnded(1)]


def test_transcript_b_bearer_token() -> None:
    """UPL-38, UPL-R6, UPL-R17: the access token rides in the Authorization header."""
    device = DeviceUplink("https://cloud.example.com/uplink", access_token=TOKEN)
    device.start(0.0)
    assert device.data_to_send() == B1
    cloud = CloudUplink()
    [req] = cloud.receive_data(B1, 0.0)
    assert req.bearer_token == TOKEN
    assert TOKEN not in repr(req)  # secrets never in a repr


def test_transcript_e_ping_and_goaway() -> None:
    """UPL-47, UPL-49, UPL-R23, UPL-R24: PING after 10 s of silence, answered; GOAWAY on close."""
    device, cloud = connected_pair(0.0)
    sid = cloud.send_request("GET", "/", end_stream=True)
    _d_events, _ = pump(device, cloud, 1.0)
    device.send_response(sid, 204, end_stream=True)
    pump(device, cloud, 1.0)
    assert device.next_deadline() == pytest.approx(11.0)
    assert device.handle_timeout(10.0) == []
    assert device.handle_timeout(11.0) == []
    ping = device.data_to_send()
    assert ping == E_PING
    cloud.receive_data(ping, 11.0)
    assert cloud.data_to_send() == E_PING_ACK
    events = device.receive_data(E_PING_ACK, 11.25)
    assert events == [ev.PingAcknowledged(b"UPLK\x00\x00\x00\x01", 0.25)]
    device.close()
    assert device.data_to_send() == E_GOAWAY
    assert device.status is Status.OFFLINE and device.error is None
    events = cloud.receive_data(E_GOAWAY, 12.0)
    assert of(events, ev.ConnectionTerminated) == [ev.ConnectionTerminated(0, 1, by_peer=True)]


def test_cloud_ping_answered_first() -> None:
    """UPL-49: a PING from the cloud is acknowledged with the same payload."""
    device, cloud = connected_pair(0.0)
    cloud.ping(1.0)
    payload_frame = cloud.data_to_send()
    device.receive_data(payload_frame, 1.0)
    ack = device.data_to_send()
    assert ack[:9] == bytes.fromhex("000008060100000000") and ack[9:17] == payload_frame[9:17]


def test_thirty_second_rule() -> None:
    """UPL-45, UPL-46, UPL-48, UPL-R23, UPL-R27: PINGs at 10 s and 20 s, link lost after more than 30 s."""
    device, _cloud = connected_pair(0.0)
    device.handle_timeout(10.0)
    assert device.data_to_send()[3] == 0x06
    device.handle_timeout(20.0)
    assert device.data_to_send()[3] == 0x06
    assert device.handle_timeout(30.0) == []  # exactly 30 s is not "more than"
    assert device.status is Status.CONNECTED
    deadline = device.next_deadline()
    assert deadline is not None and 30.0 < deadline < 30.001
    events = device.handle_timeout(deadline)
    assert of(events, ev.LinkLost) and device.status is Status.OFFLINE
    assert device.error == "no traffic for 30 s"
    assert device.data_to_send() == b""  # a dead link is just closed


def test_any_octet_resets_the_watchdog() -> None:
    """UPL-R23, UPL-48: any received octet counts as traffic and restarts the 30 s count."""
    device, cloud = connected_pair(0.0)
    device.handle_timeout(10.0)
    device.data_to_send()
    cloud.ping(25.0)
    device.receive_data(cloud.data_to_send(), 25.0)
    assert device.next_deadline() == pytest.approx(35.0)
    for t in (35.0, 45.0, 55.0):
        assert not of(device.handle_timeout(t), ev.LinkLost)
    assert device.status is Status.CONNECTED
    assert of(device.handle_timeout(55.001), ev.LinkLost)
    assert device.status is Status.OFFLINE


def test_watchdog_after_activity_sends_pings_again() -> None:
    """UPL-47, UPL-R23: the PING schedule restarts after traffic."""
    device, cloud = connected_pair(0.0)
    device.handle_timeout(10.0)
    device.data_to_send()
    cloud.ping(12.0)
    device.receive_data(cloud.data_to_send(), 12.0)
    device.data_to_send()
    assert device.next_deadline() == pytest.approx(22.0)
    device.handle_timeout(22.0)
    assert device.data_to_send()[3] == 0x06


def test_handshake_timeout() -> None:
    """UPL-R4: the whole handshake is bounded; a stuck attempt goes Offline."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(100.0)
    assert device.next_deadline() == pytest.approx(130.0)
    events = device.handle_timeout(130.0)
    assert device.status is Status.OFFLINE and "handshake" in (device.error or "")
    assert of(events, ev.StatusChanged)


def test_refused_401_invalid_token() -> None:
    """UPL-R7, UPL-R18, UPL-39: a 401 Bearer challenge is told apart and drops the token."""
    device = DeviceUplink("https://cloud.example.com/uplink", access_token=TOKEN)
    cloud = CloudUplink()
    device.start(0.0)
    [_req] = cloud.receive_data(device.data_to_send(), 0.0)
    cloud.refuse(401, bearer_error="invalid_token")
    answer = cloud.data_to_send()
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b'www-authenticate: Bearer error="invalid_token"' in answer
    events = device.receive_data(answer, 0.1)
    [refused] = of(events, ev.UpgradeRefused)
    assert refused.status_code == 401 and refused.bearer_challenge
    assert refused.bearer_error == "invalid_token"
    assert device.discard_token
    assert device.status is Status.OFFLINE
    assert device.error == "upgrade refused: 401 invalid_token"
    assert TOKEN not in device.error


@pytest.mark.parametrize("status", [403, 404, 503])
def test_other_refusals(status: int) -> None:
    """UPL-R7: any answer but 101 is a failed attempt with the status in Error."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    cloud = CloudUplink()
    device.start(0.0)
    cloud.receive_data(device.data_to_send(), 0.0)
    cloud.refuse(status)
    events = device.receive_data(cloud.data_to_send(), 0.1)
    [refused] = of(events, ev.UpgradeRefused)
    assert refused.status_code == status and not refused.bearer_challenge
    assert device.error == f"upgrade refused: {status}"
    assert not device.discard_token


def test_device_never_opens_streams() -> None:
    """UPL-5: the device has no way to send a request or a push."""
    device, _ = connected_pair()
    assert not hasattr(device, "send_request")
    with pytest.raises(LocalProtocolError):
        device.send_response(2, 200, body=b"")  # stream 2 was never opened by the cloud
    with pytest.raises(LocalProtocolError):
        device.send_data(3, b"x")


def test_goaway_from_cloud_goes_offline() -> None:
    """UPL-R27, UPL-R24: a GOAWAY ends the uplink (Offline) but the streams in flight still finish."""
    device, cloud = connected_pair()
    sid = cloud.send_request("GET", "/slow", end_stream=True)
    pump(device, cloud)
    cloud.close()
    with pytest.raises(LocalProtocolError, match="closing"):
        cloud.send_request("GET", "/new", end_stream=True)
    d_events, _ = pump(device, cloud)
    [term] = of(d_events, ev.ConnectionTerminated)
    assert term.by_peer and term.error_code == 0 and term.last_stream_id == 0
    assert device.status is Status.OFFLINE and device.phase is Phase.DRAINING
    assert "GOAWAY" in (device.error or "")
    device.send_response(sid, 200, body=b"late but delivered")
    _, c_events = pump(device, cloud)
    assert of(c_events, ev.DataReceived)[0].data == b"late but delivered"
    assert device.open_streams == 0 and cloud.open_streams == 0


def test_device_close_refuses_new_streams() -> None:
    """UPL-R24: after the device's GOAWAY, older streams finish and newer ones are refused."""
    device, cloud = connected_pair()
    first = cloud.send_request("GET", "/a", end_stream=True)
    pump(device, cloud)
    device.close()
    later = cloud.send_request("GET", "/b", end_stream=True)  # crossed the GOAWAY in flight
    d_events, c_events = pump(device, cloud)
    assert not [e for e in of(d_events, ev.RequestReceived) if e.stream_id == later]
    assert ev.StreamReset(later, 7, by_peer=True) in c_events  # REFUSED_STREAM
    assert ev.ConnectionTerminated(0, first, by_peer=True) in c_events
    device.send_response(first, 200, body=b"ok")
    _, c_events = pump(device, cloud)
    assert of(c_events, ev.DataReceived)[0].data == b"ok"


def test_goaway_with_error_ends_at_once() -> None:
    """UPL-R24: GOAWAY with an error code ends the connection; nothing more is sent."""
    device, cloud = connected_pair()
    sid = cloud.send_request("GET", "/a", end_stream=True)
    pump(device, cloud)
    cloud.close(error_code=2, reason="cloud shutting down")
    d_events, _ = pump(device, cloud)
    [term] = of(d_events, ev.ConnectionTerminated)
    assert term.error_code == 2 and term.reason == "cloud shutting down"
    assert device.phase is Phase.CLOSED and "INTERNAL_ERROR" in (device.error or "")
    with pytest.raises(LocalProtocolError):
        device.send_response(sid, 200, body=b"x")


def test_streamed_long_lived_both_ways() -> None:
    """UPL-4, UPL-43, UPL-58, UPL-60: a GET whose response never ends and a POST whose body keeps coming."""
    device, cloud = connected_pair()
    get = cloud.send_request(
        "GET", "/rtsp-tunnel", [("accept", "application/x-rtsp-tunnelled")], end_stream=True
    )
    post = cloud.send_request(
        "POST",
        "/rtsp-tunnel",
        [("content-type", "application/x-rtsp-tunnelled"), ("content-length", "2147483647")],
        end_stream=False,
    )
    d_events, _ = pump(device, cloud)
    assert [r.path for r in of(d_events, ev.RequestReceived)] == ["/rtsp-tunnel"] * 2
    device.send_response(get, 200, [("content-type", "application/x-rtsp-tunnelled")])
    got_down = bytearray()
    got_up = bytearray()
    for i in range(200):
        chunk = bytes([i % 256]) * 5000
        device.send_data(get, chunk)
        cloud.send_data(post, chunk)
        d_events, c_events = pump(device, cloud, float(i) / 100)
        got_down += b"".join(e.data for e in of(c_events, ev.DataReceived))
        got_up += b"".join(e.data for e in of(d_events, ev.DataReceived))
    assert len(got_down) == len(got_up) == 200 * 5000  # far beyond any window: flow control works
    cloud.reset_stream(post)  # UPL-60: a POST with a huge content-length ends with CANCEL
    d_events, _ = pump(device, cloud, 3.0)
    assert of(d_events, ev.StreamReset) == [ev.StreamReset(post, 8, by_peer=True)]
    assert device.status is Status.CONNECTED


def test_many_concurrent_streams() -> None:
    """UPL-4, UPL-R22: up to MAX_CONCURRENT_STREAMS requests in flight, answered out of order."""
    device, cloud = connected_pair()
    sids = [cloud.send_request("POST", f"/s/{i}", body=b"q" * 600) for i in range(16)]
    d_events, _ = pump(device, cloud)
    reqs = of(d_events, ev.RequestReceived)
    assert [r.stream_id for r in reqs] == sids
    for r in reversed(reqs):
        device.send_response(r.stream_id, 200, body=r.path.encode() * 100)
    _, c_events = pump(device, cloud)
    bodies: dict[int, bytes] = {}
    for e in of(c_events, ev.DataReceived):
        bodies[e.stream_id] = bodies.get(e.stream_id, b"") + e.data
    assert bodies == {sid: f"/s/{i}".encode() * 100 for i, sid in enumerate(sids)}


def test_manual_flow_control_bounds_inflight() -> None:
    """Flow control as the application consumes: unacknowledged data never exceeds the window."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    cloud = CloudUplink(manual_flow_control=True)
    device, cloud = connected_pair(device=device, cloud=cloud)
    sid = cloud.send_request("GET", "/big", end_stream=True)
    pump(device, cloud)
    device.send_response(sid, 200, body=b"z" * 1_000_000)
    _, c_events = pump(device, cloud)
    received = sum(len(e.data) for e in of(c_events, ev.DataReceived))
    assert received == 65535  # the initial window, nothing more until acknowledged
    assert device.queued(sid) == 1_000_000 - 65535
    total = received
    while total < 1_000_000:
        cloud.acknowledge_data(sid, received)
        _, c_events = pump(device, cloud)
        received = sum(len(e.data) for e in of(c_events, ev.DataReceived))
        assert received > 0
        total += received
    assert total == 1_000_000 and device.queued(sid) == 0


def test_stream_writable_after_queue_drains() -> None:
    """Back-pressure: StreamWritable tells a paused producer its queue is empty again."""
    device, cloud = connected_pair()
    sid = cloud.send_request("GET", "/", end_stream=True)
    pump(device, cloud)
    device.send_response(sid, 200)
    device.send_data(sid, b"a" * 200_000)
    assert device.queued(sid) > 0
    d_events, _ = pump(device, cloud)
    assert ev.StreamWritable(sid) in d_events
    assert device.queued(sid) == 0


def test_bad_remote_address() -> None:
    """UPL-6, UPL-R1: only https (and wss) addresses; errors name the value."""
    with pytest.raises(ConfigurationError, match="ftp"):
        DeviceUplink("ftp://cloud.example.com/")
    with pytest.raises(ConfigurationError, match="no host"):
        DeviceUplink("https:///uplink")
    assert DeviceUplink("HTTPS://cloud.example.com").address.scheme == "https"
    assert DeviceUplink("WSS://cloud.example.com/ws").address.websocket  # UPL-7 (test_websocket.py)


def test_raw_h2_cloud_talks_to_our_device() -> None:
    """UPL-3, UPL-15, UPL-16: an independent cloud written on bare h2 + raw bytes."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    request = device.data_to_send()
    assert request.startswith(b"GET /uplink HTTP/1.1\r\n")
    raw = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    raw.initiate_connection()  # h2's own full SETTINGS, not ours
    device.receive_data(A2 + raw.data_to_send(), 0.0)
    assert device.status is Status.CONNECTED
    raw.receive_data(device.data_to_send())
    sid = raw.get_next_available_stream_id()
    raw.send_headers(
        sid, [(":method", "POST"), (":scheme", "https"), (":path", "/x"), (":authority", "dev")]
    )
    raw.send_data(sid, b"hello", end_stream=True)
    events = device.receive_data(raw.data_to_send(), 0.1)
    [req] = of(events, ev.RequestReceived)
    device.send_response(req.stream_id, 200, [("x-echo", "1")], b"world")
    got = raw.receive_data(device.data_to_send())
    import h2.events as h2e

    resp = next(e for e in got if isinstance(e, h2e.ResponseReceived))
    assert (b":status", b"200") in resp.headers
    assert b"".join(e.data for e in got if isinstance(e, h2e.DataReceived)) == b"world"


def test_our_cloud_talks_to_raw_h2_device() -> None:
    """UPL-12..15, UPL-18: an independent device written on bare h2 + raw bytes."""
    cloud = CloudUplink()
    cloud.receive_data(
        b"GET /u/dev7 HTTP/1.1\r\nHost: c\r\nConnection: upgrade\r\nUpgrade: h2c-reverse\r\n\r\n",
        0.0,
    )
    cloud.accept(0.0)
    answer = cloud.data_to_send()
    head, _, h2_bytes = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert h2_bytes.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    raw = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    raw.initiate_connection()
    raw.receive_data(h2_bytes)
    cloud.receive_data(raw.data_to_send(), 0.0)
    assert cloud.connected
    sid = cloud.send_request("GET", "/onvif/device_service", end_stream=True, authority="dev7")
    import h2.events as h2e

    got = raw.receive_data(cloud.data_to_send())
    req = next(e for e in got if isinstance(e, h2e.RequestReceived))
    assert (b":path", b"/onvif/device_service") in req.headers
    raw.send_headers(sid, [(":status", "200")])
    raw.send_data(sid, b"ok", end_stream=True)
    events = cloud.receive_data(raw.data_to_send(), 0.1)
    assert of(events, ev.ResponseReceived)[0].status_code == 200
    assert of(events, ev.DataReceived)[0].data == b"ok"


# --- the phase transition tables ------------------------------------------------------------------

URI = "https://cloud.example.com/uplink"


def _started() -> DeviceUplink:
    device = DeviceUplink(URI)
    device.start(0.0)
    return device


def _draining_pair(which: str) -> tuple[DeviceUplink, CloudUplink]:
    """A connected pair in which ``which`` end has sent GOAWAY NO_ERROR."""
    device, cloud = connected_pair()
    (device if which == "device" else cloud).close()
    return device, cloud


def _device_scenarios() -> None:
    """Drive a DeviceUplink through every transition of its table, by its public methods."""
    DeviceUplink(URI).start(0.0)  # IDLE START
    closed = DeviceUplink(URI)
    closed.close()  # IDLE CLOSE
    closed.close()  # CLOSED CLOSE
    DeviceUplink(URI).connection_lost(0.0)  # IDLE LOST
    device, cloud = connected_pair()  # UPGRADING ACCEPTED
    device = _started()
    cloud = CloudUplink()
    cloud.receive_data(device.data_to_send(), 0.0)
    cloud.refuse(403)
    device.receive_data(cloud.data_to_send(), 0.1)  # UPGRADING REFUSED
    _started().close()  # UPGRADING CLOSE
    _started().handle_timeout(1000.0)  # UPGRADING TIMEOUT
    _started().connection_lost(1.0)  # UPGRADING LOST
    connected_pair()[0].close()  # HTTP2 GOAWAY_SENT
    device, cloud = connected_pair()
    cloud.close()
    pump(device, cloud)  # HTTP2 GOAWAY_RECEIVED
    device, cloud = connected_pair()
    cloud.close(ErrorCode.INTERNAL_ERROR)
    pump(device, cloud)  # HTTP2 TUNNEL_CLOSED
    connected_pair()[0].close(ErrorCode.INTERNAL_ERROR)  # HTTP2 CLOSE
    device = _started()
    device.receive_data(A2, 0.0)  # 101 but no preface
    device.handle_timeout(1000.0)  # HTTP2 TIMEOUT
    connected_pair()[0].connection_lost(1.0)  # HTTP2 LOST
    device, _ = _draining_pair("device")
    device.close()  # DRAINING GOAWAY_SENT
    device, cloud = _draining_pair("device")
    cloud.close(ErrorCode.INTERNAL_ERROR)
    pump(device, cloud)  # DRAINING TUNNEL_CLOSED
    _draining_pair("device")[0].close(ErrorCode.INTERNAL_ERROR)  # DRAINING CLOSE
    device, _ = _draining_pair("device")
    now = 0.0
    while device.phase is Phase.DRAINING:  # DRAINING TIMEOUT: the watchdog gives up
        now = device.next_deadline() or now + 1.0
        device.handle_timeout(now)
    _draining_pair("device")[0].connection_lost(1.0)  # DRAINING LOST


def _cloud_scenarios() -> None:
    """Drive a CloudUplink through every transition of its table, by its public methods."""
    CloudUplink().start(0.0)  # UPGRADING START
    device, cloud = connected_pair()  # UPGRADING ACCEPTED
    cloud = CloudUplink()
    cloud.receive_data(_started().data_to_send(), 0.0)
    cloud.refuse(404)  # UPGRADING REFUSED
    closed = CloudUplink()
    closed.close()  # UPGRADING CLOSE
    closed.close()  # CLOSED CLOSE
    cloud = CloudUplink()
    cloud.receive_data(_started().data_to_send(), 0.0)
    cloud.handle_timeout(1000.0)  # UPGRADING TIMEOUT (request in, no decision)
    CloudUplink().connection_lost(0.0)  # UPGRADING LOST
    connected_pair()[1].close()  # HTTP2 GOAWAY_SENT
    device, cloud = connected_pair()
    device.close()
    pump(device, cloud)  # HTTP2 GOAWAY_RECEIVED
    device, cloud = connected_pair()
    device.close(ErrorCode.INTERNAL_ERROR)
    pump(device, cloud)  # HTTP2 TUNNEL_CLOSED
    connected_pair()[1].close(ErrorCode.INTERNAL_ERROR)  # HTTP2 CLOSE
    device, cloud = connected_pair(cloud=CloudUplink(settings=CloudSettings(idle_timeout=5.0)))
    cloud.handle_timeout(10.0)  # HTTP2 TIMEOUT (idle)
    connected_pair()[1].receive_data(b"", 1.0)  # HTTP2 LOST
    _, cloud = _draining_pair("cloud")
    cloud.close()  # DRAINING GOAWAY_SENT
    device, cloud = _draining_pair("cloud")
    device.close(ErrorCode.INTERNAL_ERROR)
    pump(device, cloud)  # DRAINING TUNNEL_CLOSED
    _draining_pair("cloud")[1].close(ErrorCode.INTERNAL_ERROR)  # DRAINING CLOSE
    _draining_pair("cloud")[1].connection_lost(1.0)  # DRAINING LOST


@pytest.mark.parametrize(
    ("cls", "table", "scenarios"),
    [
        (DeviceUplink, DEVICE_TRANSITIONS, _device_scenarios),
        (CloudUplink, CLOUD_TRANSITIONS, _cloud_scenarios),
    ],
)
def test_every_transition_in_the_table_is_reachable(
    monkeypatch: pytest.MonkeyPatch, cls: type, table: dict, scenarios
) -> None:
    """Each (phase, trigger) row of the table happens through the public API, and the
    phase afterwards is the one the table names; the phases themselves are unchanged."""
    seen: set[tuple[Phase, Trigger]] = set()
    apply = cls._apply

    def recording(self, trigger: Trigger) -> None:  # type: ignore[no-untyped-def]
        before = self._phase
        apply(self, trigger)
        if isinstance(self, cls):
            seen.add((before, trigger))
            assert self._phase is table[(before, trigger)]

    monkeypatch.setattr(cls, "_apply", recording)
    scenarios()
    assert seen == set(table)
    assert {p for p, _ in table} | set(table.values()) <= set(Phase)


@pytest.mark.parametrize(
    ("make", "table"),
    [(lambda: DeviceUplink(URI), DEVICE_TRANSITIONS), (CloudUplink, CLOUD_TRANSITIONS)],
)
def test_transitions_not_in_the_table_raise(make, table: dict) -> None:  # type: ignore[no-untyped-def]
    """A trigger the table has no row for is our LocalProtocolError; the phase stays."""
    illegal = [(p, t) for p in Phase for t in Trigger if (p, t) not in table]
    assert illegal
    for phase, trigger in illegal:
        end = make()
        end._phase = phase
        with pytest.raises(LocalProtocolError, match=f"'{trigger.value}' is not possible"):
            end._apply(trigger)
        assert end.phase is phase


def test_illegal_calls_through_the_api_raise() -> None:
    """The public methods refuse what their table does not allow."""
    device = _started()
    with pytest.raises(LocalProtocolError, match="already called"):
        device.start(1.0)
    cloud = CloudUplink()
    cloud.receive_data(_started().data_to_send(), 0.0)
    cloud.accept(0.0)
    with pytest.raises(LocalProtocolError, match="pending upgrade request"):
        cloud.accept(0.0)
    with pytest.raises(LocalProtocolError):
        cloud.start(0.0)


# --- the same lifecycle methods on both ends -------------------------------------------------------


def test_cloud_start_arms_the_handshake_timer() -> None:
    """UPL-R4: start(now) runs the cloud's handshake timer from ``now`` (the constructor's
    ``now`` still works without it); it can be called once, before the request is in."""
    cloud = CloudUplink(now=5.0)
    assert cloud.next_deadline() == pytest.approx(35.0)
    assert cloud.start(100.0) == []
    assert cloud.phase is Phase.UPGRADING and cloud.next_deadline() == pytest.approx(130.0)
    assert cloud.handle_timeout(129.0) == []
    with pytest.raises(LocalProtocolError, match="already called"):
        cloud.start(101.0)
    [refused] = of(cloud.handle_timeout(130.0), ev.UpgradeRefused)
    assert refused.status_code == 408 and cloud.phase is Phase.CLOSED


def test_cloud_connection_lost_fails_open_streams() -> None:
    """The transport closed under the cloud: open streams reset, one ConnectionTerminated,
    phase CLOSED, no more commands; a second call is quiet."""
    device, cloud = connected_pair()
    first = cloud.send_request("GET", "/a", end_stream=True)
    second = cloud.send_request("POST", "/b", end_stream=False)
    pump(device, cloud)
    done = cloud.send_request("GET", "/c", end_stream=True)
    pump(device, cloud)
    device.send_response(done, 200, body=b"ok")
    pump(device, cloud)
    events = cloud.connection_lost(3.0, "device went away")
    assert events == [
        ev.StreamReset(first, ErrorCode.CANCEL, by_peer=False, reason="device went away"),
        ev.StreamReset(second, ErrorCode.CANCEL, by_peer=False, reason="device went away"),
        ev.ConnectionTerminated(0, None, by_peer=False, reason="device went away"),
    ]
    assert cloud.phase is Phase.CLOSED and cloud.next_deadline() is None
    with pytest.raises(LocalProtocolError):
        cloud.send_request("GET", "/d", end_stream=True)
    assert cloud.receive_data(b"more", 4.0) == []
    assert cloud.connection_lost(5.0) == []


def test_cloud_connection_lost_before_the_upgrade() -> None:
    """Lost while reading the upgrade request: no streams, just the termination."""
    cloud = CloudUplink()
    cloud.start(0.0)
    cloud.receive_data(b"GET /uplink HTTP/1.1\r\n", 0.1)
    assert cloud.connection_lost(0.2) == [
        ev.ConnectionTerminated(0, None, by_peer=False, reason="connection lost")
    ]
    assert cloud.phase is Phase.CLOSED and cloud.data_to_send() == b""


def test_device_connection_lost_matches() -> None:
    """Both ends have start(now) and connection_lost(now, reason); the device reports Offline."""
    device, _ = connected_pair()
    events = device.connection_lost(1.0, "reset by peer")
    assert events == [ev.StatusChanged(Status.OFFLINE, "reset by peer")]
    assert device.phase is Phase.CLOSED and device.connection_lost(2.0) == []
