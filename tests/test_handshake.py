"""The h2c-reverse upgrade: request building, tolerant cloud parsing, answers (uplink.md section 4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _pair import of
from _transcripts import A1, A2, A3
from uplink62676 import events as ev
from uplink62676.errors import ConfigurationError, RemoteProtocolError
from uplink62676.handshake import CloudHandshake, DeviceHandshake, RemoteAddress
from uplink62676.status import Status
from uplink62676.uplink import CloudUplink, DeviceUplink


def _request(uri: str, token: str | None = None) -> bytes:
    return DeviceHandshake(RemoteAddress.parse(uri), access_token=token).request_bytes()


@pytest.mark.parametrize(
    ("uri", "line", "host"),
    [
        ("https://cloud.example.com/uplink", b"GET /uplink HTTP/1.1", b"cloud.example.com"),
        (
            "https://cloud.example.com:8443/uplink",
            b"GET /uplink HTTP/1.1",
            b"cloud.example.com:8443",
        ),
        ("https://cloud.example.com:443/uplink", b"GET /uplink HTTP/1.1", b"cloud.example.com:443"),
        ("https://user:pw@cloud.example.com", b"GET / HTTP/1.1", b"cloud.example.com"),
        (
            "https://[2001:db8::1]:9443/a/b?x=1&y=2",
            b"GET /a/b?x=1&y=2 HTTP/1.1",
            b"[2001:db8::1]:9443",
        ),
    ],
)
def test_request_target_and_host(uri: str, line: bytes, host: bytes) -> None:
    """UPL-9, UPL-10, UPL-R5: target = path + query ('/' if empty); Host = authority without userinfo."""
    raw = _request(uri)
    lines = raw.split(b"\r\n")
    assert lines[0] == line
    assert lines[1] == b"Host: " + host
    assert b"Connection: Upgrade\r\n" in raw and b"Upgrade: h2c-reverse\r\n" in raw  # UPL-11
    assert b"HTTP2-Settings" not in raw and b"Content-Length" not in raw  # UPL-R5
    assert b"pw" not in raw


def test_request_exact_a1() -> None:
    """UPL-9, UPL-10, UPL-11: transcript A1 octet for octet."""
    assert _request("https://cloud.example.com/uplink") == A1


def test_token_with_whitespace_refused() -> None:
    """UPL-R6: a token that would break the header is refused before sending."""
    with pytest.raises(ConfigurationError):
        _request("https://c.example/u", token="a b")


def _cloud_parse(raw: bytes) -> ev.UpgradeRequested:
    cloud = CloudUplink()
    [event] = cloud.receive_data(raw, 0.0)
    assert isinstance(event, ev.UpgradeRequested), event
    return event


@pytest.mark.parametrize(
    ("raw", "tolerated"),
    [
        (A1, ()),
        (
            b"Get /uplink http/1.1\r\nHost: c\r\nConnection: upgrade\r\nUpgrade: h2c-reverse\r\n\r\n",
            ("method-case", "version-case"),
        ),
        (
            b"GET /uplink HTTP/1.1\nHost: c\nConnection: Upgrade\nUpgrade: h2c-reverse\n\n",
            ("bare-lf",),
        ),
        (
            b"GET /uplink HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n",
            ("missing-host",),
        ),
        (
            b"GET /uplink HTTP/1.1\r\nHost: c\r\nUpgrade: H2C-Reverse\r\n\r\n",
            ("missing-connection-upgrade",),
        ),
        (
            b"GET /uplink HTTP/1.1\r\nHost: c\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c-reverse\r\n"
            b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
            ("http2-settings",),
        ),
        (
            b"GET https://c/uplink HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n",
            (),
        ),
    ],
)
def test_cloud_accepts_unambiguous_requests(raw: bytes, tolerated: tuple[str, ...]) -> None:
    """UPL-9, UPL-11, UPL-R5, OQ-36: field devices' variants whose meaning is unambiguous are accepted."""
    event = _cloud_parse(raw)
    assert event.tolerated == tolerated
    assert event.path.endswith("/uplink")
    if "missing-host" in tolerated:
        assert event.host is None


@pytest.mark.parametrize(
    ("raw", "status", "why"),
    [
        (
            b"POST /uplink HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n",
            400,
            "GET",
        ),
        (
            b"GET /uplink HTTP/1.0\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n",
            400,
            "HTTP/1.1",
        ),
        (
            b"GET /uplink HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            400,
            "h2c-reverse",
        ),
        (b"GET /uplink HTTP/1.1\r\nHost: c\r\n\r\n", 400, "h2c-reverse"),
        (
            b"GET /uplink HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n"
            b"Content-Length: 5\r\n\r\nhello",
            400,
            "body",
        ),
        (
            b"GET /uplink HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "body",
        ),
        (
            b"GET /uplink HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\n",
            400,
            "malformed",
        ),
        (
            b"GET /u?access_token=x HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n"
            b"Authorization: Bearer y\r\n\r\n",
            400,
            "both",
        ),
        (
            b"GET /uplink HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\nUpgrade: h2c-reverse\r\n\r\nPRI",
            400,
            "before the 101",
        ),
        (b"GARBAGE\r\n\r\n", 400, "request line"),
        (
            b"GET /x HTTP/1.1\r\nHost: c\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n",
            431,
            "exceeds",
        ),
    ],
)
def test_cloud_refuses_ambiguous_requests(raw: bytes, status: int, why: str) -> None:
    """UPL-9, UPL-R5: what stays ambiguous is refused with a clear status and reason."""
    cloud = CloudUplink()
    events = cloud.receive_data(raw, 0.0)
    [refused] = of(events, ev.UpgradeRefused)
    assert refused.status_code == status
    assert why in refused.reason
    answer = cloud.data_to_send()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert why.encode() in answer  # the reason is in the body too


def test_head_without_end_is_bounded() -> None:
    """Security: an endless head is refused at the limit, not buffered."""
    cloud = CloudUplink()
    for _ in range(20):
        events = cloud.receive_data(b"X" * 1000, 0.0)
        if events:
            break
    assert of(events, ev.UpgradeRefused)[0].status_code == 431


def test_cloud_handshake_timeout() -> None:
    """UPL-R4: a device that never finishes its request gets 408 and is dropped."""
    cloud = CloudUplink(now=5.0)
    cloud.receive_data(b"GET /u HTTP/1.1\r\n", 5.0)
    assert cloud.next_deadline() == pytest.approx(35.0)
    events = cloud.handle_timeout(35.0)
    assert of(events, ev.UpgradeRefused)[0].status_code == 408


def test_access_token_in_query() -> None:
    """UPL-25, UPL-R17: the cloud accepts the token from the query parameter too."""
    event = _cloud_parse(
        b"GET /u?access_token=abc%2Fdef HTTP/1.1\r\nHost: c\r\nConnection: Upgrade\r\n"
        b"Upgrade: h2c-reverse\r\n\r\n"
    )
    assert event.bearer_token == "abc/def"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "101 without",
        ),
        (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "101 without"),
        (b"HTTQ/9 hello\r\n\r\n", "malformed"),
    ],
)
def test_device_accepts_only_101_h2c_reverse(answer: bytes, error: str) -> None:
    """UPL-R7, UPL-14: only 101 with Upgrade: h2c-reverse switches; anything else fails the attempt."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.data_to_send()
    device.receive_data(answer, 0.0)
    assert device.status is Status.OFFLINE
    assert error in (device.error or "")


def test_device_upgrade_token_case_insensitive_and_100_continue() -> None:
    """UPL-R7, OQ-36: 'H2C-REVERSE' matches; an interim 1xx is skipped."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.data_to_send()
    device.receive_data(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 OK\r\nConnection: upgrade\r\n"
        b"Upgrade: H2C-REVERSE\r\n\r\n" + A3,
        0.0,
    )
    assert device.status is Status.CONNECTED


def test_device_response_head_bounded() -> None:
    """UPL-R8: the 101 head is read with a bounded buffer."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.data_to_send()
    device.receive_data(b"HTTP/1.1 101 OK\r\n" + b"X: " + b"a" * 20000, 0.0)
    assert device.status is Status.OFFLINE and "malformed" in (device.error or "")


def test_cloud_closed_before_answer() -> None:
    """UPL-R27: the cloud closing before answering is a failed attempt."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.receive_data(b"", 0.0)
    assert device.status is Status.OFFLINE and device.error == "connection closed by the cloud"


@given(st.integers(min_value=1, max_value=len(A2 + A3) - 1))
def test_preface_in_same_read_as_101(cut: int) -> None:
    """UPL-R8: every octet after the 101's blank line is kept, wherever the reads split."""
    device = DeviceUplink("https://cloud.example.com/uplink")
    device.start(0.0)
    device.data_to_send()
    wire = A2 + A3
    device.receive_data(wire[:cut], 0.0)
    device.receive_data(wire[cut:], 0.0)
    assert device.status is Status.CONNECTED


@given(st.binary(max_size=300))
def test_cloud_parser_total(data: bytes) -> None:
    """Any octets give an UpgradeRequested, a refusal, or need more -- never a foreign exception."""
    cloud = CloudUplink()
    events = cloud.receive_data(data, 0.0)
    if not data:  # end of input: the device went away
        assert isinstance(events[0], ev.ConnectionTerminated)
        return
    assert all(isinstance(e, ev.UpgradeRequested | ev.UpgradeRefused) for e in events)


def test_cloud_handshake_direct_errors() -> None:
    """The low-level parser raises our RemoteProtocolError with an HTTP status hint."""
    hs = CloudHandshake(max_head_size=100)
    with pytest.raises(RemoteProtocolError) as info:
        hs.receive_data(b"GET / HTTP/1.1\r\n" + b"a" * 200)
    assert info.value.http_status == 431


@pytest.mark.parametrize(("uri", "problem"), [
    ("https://cloud.example/up link", "' '"),
    (" https://cloud.example/u", "' '"),
    ("https://cloud.example/u\x00", "'\\x00'"),
    ("https://cloud.example:99999/u", "Port out of range"),
    ("https://cloud.example:abc/u", "not a valid URI"),
    ("https://[::1/u", "Invalid IPv6"),
    ("https://cloud.example/%zz", "two-digit hex"),
    ("https:///u", "no host"),
])
def test_remote_address_is_strict_rfc3986(uri: str, problem: str) -> None:
    """UPL-6, UPL-R1: a RemoteAddress must be RFC 3986 syntax with a host; the error names the
    offending value and the problem (it used to fail later, on every attempt, inside h11)."""
    with pytest.raises(ConfigurationError) as info:
        RemoteAddress.parse(uri)
    assert problem in str(info.value) and repr(uri) in str(info.value)
