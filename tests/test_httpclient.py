"""The sans-I/O HTTP/1.1 client exchange and the forwarder's header rules
(uplink62676.httpclient, uplink62676.httpheaders; UPL-41, UPL-R19)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplink62676.aio._common import HOP_BY_HOP as COMMON_HOP_BY_HOP
from uplink62676.aio._common import USER_LEVEL_HEADER as COMMON_USER_LEVEL_HEADER
from uplink62676.errors import LocalProtocolError, RemoteProtocolError, TransportError
from uplink62676.httpclient import Http1Client, ResponseBody, ResponseComplete, ResponseStarted
from uplink62676.httpheaders import (
    HOP_BY_HOP,
    USER_LEVEL_HEADER,
    local_request_head,
    strip_hop_by_hop,
)

OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"


def _run(client: Http1Client, *pieces: bytes) -> list[object]:
    out: list[object] = []
    for p in pieces:
        out += client.receive_data(p)
    return out


def test_request_bytes_with_content_length() -> None:
    c = Http1Client()
    c.send_request("POST", "/onvif/x", [("host", "cam"), ("content-length", "3")], b"abc")
    assert c.data_to_send() == (b"POST /onvif/x HTTP/1.1\r\nhost: cam\r\ncontent-length: 3\r\n"
                                b"\r\nabc")


def test_request_body_chunked() -> None:
    c = Http1Client()
    c.send_request("PUT", "/a", [(b"host", b"cam"), (b"transfer-encoding", b"chunked")])
    c.send_body(b"abc")
    c.send_body(b"")
    c.end_body()
    assert c.data_to_send().endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")


def test_response_events_informational_skipped_and_reuse() -> None:
    c = Http1Client()
    c.send_request("GET", "/", [("host", "cam")], b"")
    c.data_to_send()
    events = _run(c, b"HTTP/1.1 100 Continue\r\n\r\n", OK[:50], OK[50:])
    assert isinstance(events[0], ResponseStarted) and events[0].status_code == 200
    assert events[0].header(b"content-type") == b"text/plain"
    assert b"".join(e.data for e in events if isinstance(e, ResponseBody)) == b"hello"
    assert events[-1] == ResponseComplete(True) and c.idle
    c.send_request("GET", "/2", [("host", "cam")], b"")
    assert c.received == 0 and c.data_to_send().startswith(b"GET /2 ")


def test_connection_close_is_not_reusable() -> None:
    c = Http1Client()
    c.send_request("GET", "/", [("host", "cam")], b"")
    events = _run(c, OK.replace(b"content-length: 5", b"connection: close\r\ncontent-length: 5"))
    assert events[-1] == ResponseComplete(False) and not c.idle
    with pytest.raises(LocalProtocolError):
        c.send_request("GET", "/", [("host", "cam")], b"")


def test_close_delimited_body_ends_at_eof() -> None:
    c = Http1Client()
    c.send_request("GET", "/", [("host", "cam")], b"")
    events = _run(c, b"HTTP/1.0 200 OK\r\n\r\nabc", b"")
    assert events[-1] == ResponseComplete(False) and ResponseBody(b"abc") in events


def test_errors_are_ours() -> None:
    """Never h11's exceptions: a broken answer is RemoteProtocolError, a cut one TransportError."""
    c = Http1Client()
    c.send_request("GET", "/", [("host", "cam")], b"")
    with pytest.raises(RemoteProtocolError):
        c.receive_data(b"SMTP ready\r\n\r\n")
    c = Http1Client()
    c.send_request("GET", "/", [("host", "cam")], b"")
    c.receive_data(OK[:-2])
    with pytest.raises(TransportError):
        c.receive_data(b"")
    c = Http1Client()
    c.send_request("GET", "/", [("host", "cam")], b"")
    with pytest.raises(TransportError):
        c.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        Http1Client().send_request("GET", "/", [("bad header", "x")])


def test_response_head_is_bounded() -> None:
    c = Http1Client(max_head_size=1024)
    c.send_request("GET", "/", [("host", "cam")], b"")
    with pytest.raises(RemoteProtocolError):
        c.receive_data(b"HTTP/1.1 200 OK\r\nx: " + b"a" * 2000)


@given(st.lists(st.integers(min_value=1, max_value=len(OK)), max_size=6))
def test_any_split_of_the_answer(cuts: list[int]) -> None:
    c = Http1Client()
    c.send_request("GET", "/", [("host", "cam")], b"")
    points = sorted(set(cuts))
    pieces = [OK[a:b] for a, b in zip([0, *points], [*points, len(OK)], strict=True)]
    events = _run(c, *[p for p in pieces if p])
    assert b"".join(e.data for e in events if isinstance(e, ResponseBody)) == b"hello"
    assert events[-1] == ResponseComplete(True)


# --- header rules ----------------------------------------------------------------------------


def test_names_stay_importable_from_aio_common() -> None:
    assert COMMON_HOP_BY_HOP is HOP_BY_HOP and COMMON_USER_LEVEL_HEADER == USER_LEVEL_HEADER


def test_strip_hop_by_hop() -> None:
    """RFC 9113 8.2.2: connection-specific fields never cross versions."""
    assert strip_hop_by_hop([(b":path", b"/"), (b"Connection", b"x"), (b"te", b"trailers"),
                             (b"host", b"h"), (b"accept", b"*/*")]) == [(b"accept", b"*/*")]


def test_local_request_head_user_level_replaces_authentication() -> None:
    """UPL-41: the UserLevel travels in X-Uplink-User-Level; UPL-R19: Authorization and an
    incoming X-Uplink-User-Level are dropped, so the cloud cannot raise its own level."""
    head = local_request_head(
        [(b"authorization", b"Basic YWRtaW46YWRtaW4="), (b"x-uplink-user-level", b"Administrator"),
         (b"connection", b"keep-alive"), (b"content-type", b"application/soap+xml"),
         (b"content-length", b"99")],
        method="POST", host="127.0.0.1:8080", user_level=("Operator", "role-x"),
        content_length=12, body_complete=False)
    assert head.headers == ((b"host", b"127.0.0.1:8080"), (b"content-type", b"application/soap+xml"),
                            (b"x-uplink-user-level", b"Operator role-x"),
                            (b"content-length", b"12"))
    assert head.has_body


@pytest.mark.parametrize(("method", "length", "complete", "framing", "has_body"), [
    ("POST", None, True, (b"content-length", b"0"), False),
    ("PUT", None, True, (b"content-length", b"0"), False),
    ("PATCH", None, True, (b"content-length", b"0"), False),
    ("GET", None, True, None, False),
    ("GET", 0, True, (b"content-length", b"0"), False),
    ("POST", None, False, (b"transfer-encoding", b"chunked"), True),
    ("POST", 7, False, (b"content-length", b"7"), True),
])
def test_local_request_head_body_framing(method: str, length: int | None, complete: bool,
                                         framing: tuple[bytes, bytes] | None,
                                         has_body: bool) -> None:
    head = local_request_head([], method=method, host="h", user_level=("User",),
                              content_length=length, body_complete=complete)
    assert head.has_body is has_body
    framed = [h for h in head.headers if h[0] in (b"content-length", b"transfer-encoding")]
    assert framed == ([framing] if framing else [])
