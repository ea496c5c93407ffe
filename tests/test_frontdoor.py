"""The sans-I/O front door (uplink62676.frontdoor): routing, HTTP/1.1 limits and timers,
HTTP/2 on the hardened tunnel, the same events for both (UPL-3, UPL-4, UPL-19, UPL-R22)."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink62676 import events as ev
from uplink62676.errors import LocalProtocolError
from uplink62676.frontdoor import (
    FrontDoorConnection,
    FrontDoorSettings,
    LocalAnswer,
    PathRouter,
    RequestRouted,
    Route,
    RouteKind,
    bad_gateway,
    device_listing,
    unknown_device,
)
from uplink62676.settings import DeviceSettings, FloodSettings
from uplink62676.tunnel import PREFACE_MAGIC, ErrorCode

GET = b"GET /devices/cam-1/onvif/x?a=1 HTTP/1.1\r\nhost: front.example\r\n\r\n"
POST = (b"POST /devices/cam-1/onvif/device_service HTTP/1.1\r\nhost: f\r\n"
        b"content-type: application/soap+xml\r\ncontent-length: 5\r\nconnection: keep-alive\r\n"
        b"\r\nhello")


def of(events: list[ev.Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def _h11_answers(data: bytes, method: str = "GET", n: int = 1) -> list[tuple[int, bytes]]:
    """Parse ``n`` responses the front door wrote (h11 as an independent client)."""
    client = h11.Connection(h11.CLIENT)
    out = []
    for _ in range(n):
        client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        client.receive_data(data)
        data = b""
        status, body = 0, b""
        while True:
            e = client.next_event()
            if isinstance(e, h11.Response):
                status = e.status_code
            elif isinstance(e, h11.Data):
                body += e.data
            elif isinstance(e, h11.EndOfMessage):
                break
            elif e is h11.NEED_DATA:
                raise AssertionError("incomplete answer")
        out.append((status, body))
        if client.our_state is h11.DONE and client.their_state is h11.DONE:
            client.start_next_cycle()
    return out


# --- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "target", "route"), [
    ("GET", "/devices", Route(RouteKind.LISTING)),
    ("HEAD", "/devices/", Route(RouteKind.LISTING)),
    ("GET", "/devices?pretty", Route(RouteKind.LISTING)),
    ("POST", "/devices", Route(RouteKind.LOCAL, answer=LocalAnswer.text(
        405, "GET /devices lists the connected devices\n"))),
    ("POST", "/devices/cam-1/onvif/device_service",
     Route.device("cam-1", "/onvif/device_service", "/devices/cam-1")),
    ("GET", "/devices/cam-1?x=1", Route.device("cam-1", "/?x=1", "/devices/cam-1")),
    ("GET", "/devices/cam-1", Route.device("cam-1", "/", "/devices/cam-1")),
    ("GET", "/devices//x", Route.device("", "/x", "/devices/")),
    ("GET", "/devices/cam%201/x", Route.device("cam 1", "/x", "/devices/cam%201")),
    ("GET", "/", Route.local(LocalAnswer.text(
        404, "use /devices (list) or /devices/<device-id>/<path>\n"))),
    ("GET", "/devicesX/cam-1/a", Route.local(LocalAnswer.text(
        404, "use /devices (list) or /devices/<device-id>/<path>\n"))),
    ("CONNECT", "", Route.local(LocalAnswer.text(
        404, "use /devices (list) or /devices/<device-id>/<path>\n"))),
])
def test_path_router_table(method: str, target: str, route: Route) -> None:
    """UPL-R21: /devices/<id>/<rest> goes to the device as /<rest> (query kept); /devices lists."""
    assert PathRouter()(method, target, "front.example") == route


def test_local_answers_keep_their_texts() -> None:
    assert unknown_device("ghost").body == b"no device 'ghost' is connected (see GET /devices)\n"
    assert unknown_device("ghost").status == 404
    assert bad_gateway("cam-1", "went away") == LocalAnswer.text(502, "device 'cam-1': went away\n")
    listing = device_listing([{"id": "cam-1"}])
    assert listing.content_type == b"application/json" and b'"id": "cam-1"' in listing.body
    assert dict(listing.headers)[b"content-length"] == str(len(listing.body)).encode()


def test_a_router_sees_the_authority() -> None:
    """The router gets Host (HTTP/1.1) or :authority (HTTP/2): virtual hosts can be routed."""
    seen = []

    def by_host(method: str, target: str, authority: str | None) -> Route:
        seen.append(authority)
        return Route.device((authority or "").split(".")[0], target)

    conn = FrontDoorConnection(router=by_host)
    (req,) = conn.receive_data(b"GET /x HTTP/1.1\r\nhost: cam-7.example\r\n\r\n", 0.0)
    assert isinstance(req, RequestRouted) and req.route == Route.device("cam-7", "/x")
    assert seen == ["cam-7.example"]


# --- HTTP/1.1 --------------------------------------------------------------------------------


def test_http1_request_events_and_response() -> None:
    """UPL-3: an HTTP/1.1 request comes out as RequestRouted + body events; hop-by-hop dropped."""
    conn = FrontDoorConnection()
    events = conn.receive_data(POST, 1.0)
    req, data, end = events
    assert isinstance(req, RequestRouted) and conn.http_version == "1.1"
    assert req.stream_id == 1 and req.method == "POST" and req.http_version == "1.1"
    assert req.route == Route.device("cam-1", "/onvif/device_service", "/devices/cam-1")
    assert req.content_length == 5 and not req.end_stream and req.authority == "f"
    assert dict(req.headers) == {b"content-type": b"application/soap+xml",
                                 b"content-length": b"5"}
    assert data == ev.DataReceived(1, b"hello", 5) and end == ev.StreamEnded(1)
    conn.acknowledge_data(1, 5)
    conn.send_response(1, 200, [(b"content-type", b"text/plain"), (b"connection", b"close"),
                                (b"transfer-encoding", b"chunked")])
    conn.send_data(1, b"abc")
    conn.end_stream(1)
    assert _h11_answers(conn.data_to_send()) == [(200, b"abc")]
    assert not conn.closed
    (req2,) = conn.receive_data(GET, 2.0)
    assert isinstance(req2, RequestRouted) and req2.stream_id == 2 and req2.end_stream
    assert req2.route.target == "/onvif/x?a=1"


def test_http1_local_answer_and_head() -> None:
    """A local answer has today's text; HEAD gets the head only."""
    conn = FrontDoorConnection()
    (req,) = conn.receive_data(b"HEAD /nowhere HTTP/1.1\r\nhost: x\r\n\r\n", 0.0)
    assert isinstance(req, RequestRouted) and req.route.answer is not None
    conn.answer(req.stream_id, req.route.answer)
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 404 ") and out.endswith(b"\r\n\r\n")
    assert b"content-length: 51" in out.lower()


def test_http1_pipelined_request_waits_for_the_response() -> None:
    """A pipelined request is read once the response before it ended (next_deadline is now)."""
    conn = FrontDoorConnection()
    events = conn.receive_data(GET + GET, 5.0)
    assert len(of(events, RequestRouted)) == 1
    conn.answer(1, unknown_device("cam-1"))
    assert conn.next_deadline() == 5.0
    (second,) = conn.handle_timeout(5.0)
    assert isinstance(second, RequestRouted) and second.stream_id == 2
    conn.answer(2, unknown_device("cam-1"))
    assert [s for s, _ in _h11_answers(conn.data_to_send(), n=2)] == [404, 404]


def test_http1_early_answer_discards_the_rest_of_the_body() -> None:
    conn = FrontDoorConnection()
    head = POST.replace(b"content-length: 5", b"content-length: 10")[:-5]
    (req,) = conn.receive_data(head, 0.0)
    assert isinstance(req, RequestRouted)
    conn.answer(1, unknown_device("cam-1"))
    assert conn.receive_data(b"0123456789", 1.0) == []
    assert not conn.closed
    assert len(of(conn.receive_data(GET, 2.0), RequestRouted)) == 1


def test_http1_oversized_head_is_431() -> None:
    """design.md security shape: a request head beyond 16 KiB is answered 431 and closed."""
    conn = FrontDoorConnection()
    events = conn.receive_data(b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 17000, 0.0)
    (term,) = of(events, ev.ConnectionTerminated)
    assert term.error_code == ErrorCode.PROTOCOL_ERROR and not term.by_peer
    assert conn.data_to_send().startswith(b"HTTP/1.1 431 ") and conn.closed


def test_http1_garbage_is_400() -> None:
    conn = FrontDoorConnection()
    conn.receive_data(b"NOT HTTP AT ALL\r\n\r\n", 0.0)
    assert conn.data_to_send().startswith(b"HTTP/1.1 400 ") and conn.closed


def test_http1_head_timer_is_408() -> None:
    """A head that does not complete within head_timeout (slowloris) gets 408 and a close."""
    conn = FrontDoorConnection(FrontDoorSettings(head_timeout=5.0))
    assert conn.receive_data(b"GET /devices HTTP/1.1\r\n", 10.0) == []
    assert conn.next_deadline() == 15.0
    assert conn.handle_timeout(14.9) == []
    events = conn.handle_timeout(15.0)
    assert of(events, ev.ConnectionTerminated) and conn.closed
    assert conn.data_to_send().startswith(b"HTTP/1.1 408 ")


def test_http1_idle_connection_is_closed_silently() -> None:
    conn = FrontDoorConnection(FrontDoorSettings(idle_timeout=7.0), now=1.0)
    assert conn.next_deadline() == 8.0
    assert of(conn.handle_timeout(8.0), ev.ConnectionTerminated) and conn.closed
    conn = FrontDoorConnection(FrontDoorSettings(idle_timeout=7.0))
    conn.receive_data(GET, 1.0)
    conn.answer(1, unknown_device("cam-1"))
    conn.handle_timeout(1.0)  # reads on: nothing buffered
    assert conn.next_deadline() == 8.0
    conn.handle_timeout(8.0)
    assert conn.closed and conn.data_to_send().count(b"HTTP/1.1 ") == 1


def test_http1_stalled_body_is_408_and_resets_the_stream() -> None:
    """The body-idle timer runs while we read; the device's stream is reset (client gone)."""
    conn = FrontDoorConnection(FrontDoorSettings(body_idle_timeout=3.0))
    conn.receive_data(POST[:-3], 0.0)
    assert conn.next_deadline() == 3.0
    events = conn.handle_timeout(3.0)
    assert of(events, ev.StreamReset)[0].stream_id == 1
    assert conn.data_to_send().startswith(b"HTTP/1.1 408 ")


def test_http1_body_window_stops_reading_and_the_timer() -> None:
    """Unacknowledged body octets beyond body_window: wants_data False, no body timer."""
    conn = FrontDoorConnection(FrontDoorSettings(body_window=4, body_idle_timeout=3.0))
    conn.receive_data(POST[:-1], 0.0)
    assert not conn.wants_data and conn.next_deadline() is None
    conn.acknowledge_data(1, 4)
    assert conn.wants_data and conn.next_deadline() == 3.0


def test_http1_client_gone_resets_the_stream() -> None:
    conn = FrontDoorConnection()
    conn.receive_data(GET, 0.0)
    events = conn.receive_data(b"", 1.0)
    assert of(events, ev.StreamReset) == [ev.StreamReset(1, ErrorCode.CANCEL, by_peer=True,
                                                         reason="client closed the connection")]
    assert of(events, ev.ConnectionTerminated) and conn.closed
    conn.send_response(1, 200, [])  # ignored: the client is gone
    assert conn.data_to_send() == b""


def test_http1_reset_after_the_head_closes() -> None:
    conn = FrontDoorConnection()
    conn.receive_data(GET, 0.0)
    conn.send_response(1, 200, [(b"content-length", b"10")])
    conn.reset_stream(1)
    assert conn.closed
    with pytest.raises(LocalProtocolError):
        FrontDoorConnection().send_response(1, 200, [])


def test_http1_expect_100_continue() -> None:
    conn = FrontDoorConnection()
    conn.receive_data(POST[:-5].replace(b"connection: keep-alive", b"expect: 100-continue"), 0.0)
    assert conn.data_to_send().startswith(b"HTTP/1.1 100 ")


# --- HTTP/2 ----------------------------------------------------------------------------------


def _h2_client() -> h2.connection.H2Connection:
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                            header_encoding=None))
    c.initiate_connection()
    return c


def _request(c: h2.connection.H2Connection, sid: int, method: str = "GET",
             path: str = "/devices/cam-1/onvif/x", end: bool = True) -> None:
    c.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"),
                         (":authority", "front.example")], end_stream=end)


def _h2_pair(settings: FrontDoorSettings | None = None,
             ) -> tuple[FrontDoorConnection, h2.connection.H2Connection]:
    conn = FrontDoorConnection(settings)
    client = _h2_client()
    assert conn.receive_data(client.data_to_send(), 0.0) == []
    client.receive_data(conn.data_to_send())
    assert conn.http_version == "2"
    return conn, client


def test_http2_advertises_front_door_settings() -> None:
    """UPL-R22: 100 concurrent streams at the front door, no RFC 8441 CONNECT."""
    _conn, client = _h2_pair()
    assert client.remote_settings.max_concurrent_streams == 100
    assert client.remote_settings.enable_connect_protocol == 0


def test_http2_request_response_and_listing() -> None:
    """UPL-19: an HTTP/2 request comes out as the same RequestRouted as HTTP/1.1."""
    conn, client = _h2_pair()
    _request(client, 1)
    _request(client, 3, path="/devices")
    _request(client, 5, method="POST", end=False)
    client.send_data(5, b"body", end_stream=True)
    events = conn.receive_data(client.data_to_send(), 1.0)
    reqs = of(events, RequestRouted)
    assert [(r.stream_id, r.route.kind, r.end_stream) for r in reqs] == [
        (1, RouteKind.DEVICE, True), (3, RouteKind.LISTING, True), (5, RouteKind.DEVICE, False)]
    assert reqs[0].authority == "front.example" and reqs[0].route.target == "/onvif/x"
    assert of(events, ev.DataReceived)[0].data == b"body"
    assert of(events, ev.StreamEnded) == [ev.StreamEnded(5)]
    conn.acknowledge_data(5, 4)
    conn.send_response(1, 200, [(b"content-type", b"text/plain"), (b"connection", b"close")])
    conn.send_data(1, b"hi", end_stream=True)
    conn.answer(3, device_listing([]))
    conn.answer(5, bad_gateway("cam-1", "went away"))
    got: dict[int, list[object]] = {}
    for e in client.receive_data(conn.data_to_send()):
        if isinstance(e, h2.events.ResponseReceived):
            got.setdefault(e.stream_id, []).append(dict(e.headers))
        elif isinstance(e, h2.events.DataReceived):
            got.setdefault(e.stream_id, []).append(e.data)
    assert got[1] == [{b":status": b"200", b"content-type": b"text/plain"}, b"hi"]
    assert got[3][1] == b"[]\n" and got[5][1] == b"device 'cam-1': went away\n"
    assert conn.open_streams == 0


def test_http2_client_reset_and_goaway() -> None:
    conn, client = _h2_pair()
    _request(client, 1)
    _request(client, 3)
    conn.receive_data(client.data_to_send(), 1.0)
    client.reset_stream(1)
    assert of(conn.receive_data(client.data_to_send(), 1.0), ev.StreamReset)[0].stream_id == 1
    conn.send_data(1, b"late")  # ignored, not an error: the reset raced with us
    client.close_connection()
    events = conn.receive_data(client.data_to_send(), 2.0)
    assert of(events, ev.ConnectionTerminated)[0].by_peer and not conn.closed  # 3 may finish
    conn.answer(3, unknown_device("cam-1"))
    assert conn.closed


def test_http2_lost_connection_resets_every_stream() -> None:
    conn, client = _h2_pair()
    _request(client, 1)
    _request(client, 3)
    conn.receive_data(client.data_to_send(), 1.0)
    events = conn.connection_lost(2.0)
    assert {e.stream_id for e in of(events, ev.StreamReset)} == {1, 3} and conn.closed


def test_http2_back_pressure_by_the_client_window() -> None:
    """Response octets beyond the client's window wait; StreamWritable once they left."""
    conn, client = _h2_pair()
    _request(client, 1)
    conn.receive_data(client.data_to_send(), 1.0)
    conn.send_response(1, 200, [])
    conn.send_data(1, b"x" * 100_000)
    assert conn.queued(1) > 0
    for e in client.receive_data(conn.data_to_send()):
        if isinstance(e, h2.events.DataReceived):
            client.acknowledge_received_data(e.flow_controlled_length, 1)
    events = conn.receive_data(client.data_to_send(), 2.0)
    assert ev.StreamWritable(1) in events and conn.queued(1) == 0


def test_http2_rapid_reset_flood_is_enhance_your_calm() -> None:
    """UPL-R22, CVE-2023-44487 at the front door: GOAWAY ENHANCE_YOUR_CALM, streams reset."""
    conn, client = _h2_pair(FrontDoorSettings(http2=DeviceSettings(
        max_concurrent_streams=100, enable_connect_protocol=False,
        floods=FloodSettings(reset_burst=20, reset_rate=1))))
    _request(client, 1)  # one the adapter is serving
    for i in range(1, 40):
        _request(client, 2 * i + 1)
        client.reset_stream(2 * i + 1)
    events = conn.receive_data(client.data_to_send(), 1.0)
    (term,) = of(events, ev.ConnectionTerminated)
    assert term.error_code == ErrorCode.ENHANCE_YOUR_CALM and conn.closed
    assert 1 in {e.stream_id for e in of(events, ev.StreamReset)}
    goaways = [e for e in client.receive_data(conn.data_to_send())
               if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaways[0].error_code == ErrorCode.ENHANCE_YOUR_CALM


def test_http2_settings_flood_is_enhance_your_calm() -> None:
    """UPL-R22, CVE-2019-9515: a SETTINGS flood ends the connection with ENHANCE_YOUR_CALM."""
    conn, _client = _h2_pair(FrontDoorSettings(http2=DeviceSettings(
        max_concurrent_streams=100, floods=FloodSettings(control_burst=10, control_rate=1))))
    wire = b"".join(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" for _ in range(50))
    (term,) = of(conn.receive_data(wire, 1.0), ev.ConnectionTerminated)
    assert term.error_code == ErrorCode.ENHANCE_YOUR_CALM


def test_http2_too_many_streams_ends_the_connection() -> None:
    """UPL-R22: a client beyond the 100 concurrent streams it was told cannot open more."""
    conn, client = _h2_pair()
    client.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
    client.remote_settings = h2.settings.Settings(client=False, initial_values={
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
    for i in range(100):
        _request(client, 2 * i + 1)
    assert len(of(conn.receive_data(client.data_to_send(), 1.0), RequestRouted)) == 100
    _request(client, 201)
    events = conn.receive_data(client.data_to_send(), 1.0)
    assert of(events, ev.ConnectionTerminated)[0].error_code == ErrorCode.PROTOCOL_ERROR
    assert len(of(events, ev.StreamReset)) == 100 and conn.closed


def test_http2_idle_connection_gets_goaway() -> None:
    conn, _client = _h2_pair(FrontDoorSettings(idle_timeout=10.0))
    assert conn.next_deadline() == 10.0
    assert of(conn.handle_timeout(10.0), ev.ConnectionTerminated) and conn.closed


def test_sniffing_waits_for_24_octets_and_times_out() -> None:
    conn = FrontDoorConnection(FrontDoorSettings(head_timeout=4.0, idle_timeout=60.0))
    assert conn.next_deadline() == 60.0
    assert conn.receive_data(PREFACE_MAGIC[:10], 1.0) == [] and conn.http_version is None
    assert conn.next_deadline() == 5.0
    assert of(conn.handle_timeout(5.0), ev.ConnectionTerminated) and conn.closed


# --- the byte stream split anywhere ----------------------------------------------------------


def _collect(conn: FrontDoorConnection, pieces: list[bytes]) -> list[object]:
    """Events with consecutive body chunks merged (splits may cut a DATA payload)."""
    out: list[object] = []
    for piece in pieces:
        for e in conn.receive_data(piece, 0.0):
            if isinstance(e, ev.DataReceived):
                conn.acknowledge_data(e.stream_id, e.flow_controlled_length)
                if out and isinstance(out[-1], tuple) and out[-1][0] == e.stream_id:
                    out[-1] = (e.stream_id, out[-1][1] + e.data)
                    continue
                out.append((e.stream_id, e.data))
            else:
                out.append(e)
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [p for p in pieces if p]  # b"" would mean: the client closed


def _h2_wire() -> bytes:
    client = _h2_client()
    _request(client, 1)
    _request(client, 3, method="POST", end=False)
    client.send_data(3, b"x" * 3000, end_stream=True)
    return bytes(client.data_to_send())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=12))
def test_http1_any_split_gives_the_same_events(cuts: list[int]) -> None:
    wire = POST + GET
    whole = _collect(FrontDoorConnection(), [wire])
    assert _collect(FrontDoorConnection(), _split(wire, cuts)) == whole


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0), max_size=12))
def test_http2_any_split_gives_the_same_events(cuts: list[int]) -> None:
    wire = _h2_wire()
    whole = _collect(FrontDoorConnection(), [wire])
    assert len(of(whole, RequestRouted)) == 2  # type: ignore[arg-type]
    assert _collect(FrontDoorConnection(), _split(wire, cuts)) == whole


@pytest.mark.parametrize("wire", [POST + GET, _h2_wire()], ids=["http1", "http2"])
def test_every_single_split_point(wire: bytes) -> None:
    whole = _collect(FrontDoorConnection(), [wire])
    for i in range(len(wire) + 1):
        pieces = [p for p in (wire[:i], wire[i:]) if p]
        assert _collect(FrontDoorConnection(), pieces) == whole, i


def test_http1_bad_response_head_is_our_error() -> None:
    conn = FrontDoorConnection()
    conn.receive_data(GET, 0.0)
    with pytest.raises(LocalProtocolError):
        conn.send_response(1, 200, [(b"bad header", b"x")])
