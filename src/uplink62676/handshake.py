"""The HTTP/1.1 upgrade to ``h2c-reverse``, both ends, on top of h11.

Device end (:class:`DeviceHandshake`): builds the ``GET`` with
``Connection: Upgrade`` / ``Upgrade: h2c-reverse`` (UPL-9..11, R5, R6), reads
the answer with a bounded head buffer, and hands over every octet after the
``101``'s blank line (UPL-R8).

Cloud end (:class:`CloudHandshake`): parses the device's request and lets the
application decide.  Devices in the field do not always send textbook
HTTP/1.1, so before h11's strict parser sees the head we accept the
deviations whose meaning is unambiguous (listed in :data:`TOLERATED`); what
stays ambiguous is refused with ``400`` and a reason.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

import attrs
import h11

from .errors import ConfigurationError, LocalProtocolError, RemoteProtocolError
from .events import Headers

__all__ = [
    "TOLERATED",
    "UPGRADE_TOKEN",
    "CloudHandshake",
    "DeviceHandshake",
    "RemoteAddress",
]

UPGRADE_TOKEN = "h2c-reverse"  # noqa: S105 (a protocol token, not a secret)

#: Deviations from RFC 9112 the cloud end accepts because their meaning is
#: unambiguous; each one found is named in ``UpgradeRequested.tolerated``.
TOLERATED = {
    "method-case": "method written in another case than GET (the source figure has 'Get')",
    "version-case": "HTTP version written as 'http/1.1'",
    "bare-lf": "lines ended by LF instead of CRLF",
    "missing-host": "no Host header",
    "missing-connection-upgrade": "Upgrade header without 'Upgrade' in Connection",
    "http2-settings": "HTTP2-Settings header (ignored, UPL-R5)",
}

_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def uri_syntax_problem(uri: str) -> str | None:
    """Why ``uri`` is not RFC 3986 syntax with a host, or None when it is.

    Only the characters RFC 3986 allows (anything else must be percent-encoded:
    white space, control characters, non-ASCII, ``<>"{}|\\^```), well-formed
    percent escapes, a port that is a number below 65536, and a host.
    """
    if not _URI_CHARS.fullmatch(uri):
        bad = next(c for c in uri if not _URI_CHARS.fullmatch(c))
        return f"character {bad!r} is not allowed in a URI (RFC 3986; percent-encode it)"
    if _BAD_PERCENT.search(uri):
        return "'%' must start a two-digit hex escape (RFC 3986)"
    try:
        parts = urlsplit(uri)
        _ = parts.port
    except ValueError as exc:
        return f"not a valid URI: {exc}"
    if not parts.scheme:
        return "no scheme"
    if not parts.hostname:
        return "no host"
    return None


@attrs.frozen(slots=True)
class RemoteAddress:
    """A parsed ``tup:RemoteAddress``: scheme, authority (for ``Host``), target.

    The scheme selects the mechanism (UPL-6, UPL-7) and is compared
    case-insensitively (UPL-R1).  ``host_header`` is the authority without
    userinfo exactly as written, so an explicit port stays (UPL-10).
    """

    uri: str
    scheme: str
    host: str
    port: int
    host_header: str
    target: str

    @classmethod
    def parse(cls, uri: str, *, allow_plaintext: bool = False) -> RemoteAddress:
        """Check and split a ``RemoteAddress`` URI; a scheme or form we cannot serve raises
        ConfigurationError.
        """
        if not isinstance(uri, str) or not uri.strip():
            raise ConfigurationError(f"RemoteAddress must be a non-empty URI, got {uri!r}")
        text = uri
        problem = uri_syntax_problem(text)
        if problem is not None:
            raise ConfigurationError(f"RemoteAddress {uri!r}: {problem}")
        parts = urlsplit(text)
        port = parts.port
        scheme = parts.scheme.lower()
        allowed = {"https", "wss"} | ({"http", "ws"} if allow_plaintext else set())
        if scheme not in allowed:
            raise ConfigurationError(
                f"RemoteAddress {uri!r}: scheme {parts.scheme!r} is not one of {sorted(allowed)}"
            )
        if not parts.hostname:
            raise ConfigurationError(f"RemoteAddress {uri!r} has no host")
        if parts.fragment:
            raise ConfigurationError(f"RemoteAddress {uri!r} must not have a fragment")
        authority = parts.netloc.rpartition("@")[2]
        if any(c in authority for c in " \t\r\n"):
            raise ConfigurationError(f"RemoteAddress {uri!r} has white space in its authority")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return cls(
            uri=text,
            scheme=scheme,
            host=parts.hostname,
            port=port if port is not None else _DEFAULT_PORTS[scheme],
            host_header=authority,
            target=target,
        )

    @property
    def websocket(self) -> bool:
        """True for ``wss`` (and plaintext ``ws``): the uplink runs over WebSocket (UPL-7)."""
        return self.scheme in ("wss", "ws")


def _tokens(value: bytes) -> list[str]:
    return [t.strip().lower() for t in value.decode("latin-1").split(",") if t.strip()]


def _header(headers: Headers, name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


_BEARER_ERROR = re.compile(r'error\s*=\s*"?([A-Za-z0-9_\-]+)"?')


def parse_bearer_challenge(headers: Headers) -> tuple[bool, str | None]:
    """Find an RFC 6750 Bearer challenge in ``WWW-Authenticate``: (present, error)."""
    for k, v in headers:
        if k != b"www-authenticate":
            continue
        text = v.decode("latin-1")
        if text[:6].lower() == "bearer":
            m = _BEARER_ERROR.search(text)
            return True, (m.group(1) if m else None)
    return False, None


def _h11_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return tuple((bytes(k), bytes(v)) for k, v in headers)


class _DeviceState(enum.Enum):
    IDLE = "idle"
    SENT = "sent"
    SWITCHED = "switched"
    REFUSED = "refused"
    FAILED = "failed"


@attrs.frozen(slots=True)
class HandshakeResult:
    """Outcome of reading the cloud's answer (device end).

    ``switched`` with ``trailing`` octets that belong to HTTP/2, or
    ``status_code``/``reason``/``headers`` of a refusal, or ``error`` for a
    malformed answer.
    """

    switched: bool
    headers: Headers = ()
    trailing: bytes = b""
    status_code: int = 0
    reason: str = ""
    error: str | None = None


class DeviceHandshake:
    """Device side of the native ``h2c-reverse`` upgrade (sans-I/O)."""

    def __init__(
        self,
        address: RemoteAddress,
        *,
        access_token: str | None = None,
        user_agent: str | None = None,
        max_head_size: int = 16 * 1024,
    ) -> None:
        self.address = address
        self._token = access_token
        self._user_agent = user_agent
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head_size)
        self._state = _DeviceState.IDLE

    def _request(self) -> tuple[str, list[tuple[str, str]]]:
        """Request-target and header fields (the WebSocket variant overrides this)."""
        headers = [
            ("Host", self.address.host_header),
            ("Connection", "Upgrade"),
            ("Upgrade", UPGRADE_TOKEN),
        ]
        if self._token is not None:
            if not isinstance(self._token, str):
                raise ConfigurationError(
                    f"the access token must be a str, got {type(self._token).__name__}"
                )
            if not self._token or any(c in self._token for c in "\r\n\x00 "):
                raise ConfigurationError("the access token is empty or holds white space/controls")
            headers.append(("Authorization", f"Bearer {self._token}"))
        if self._user_agent:
            headers.append(("User-Agent", self._user_agent))
        return self.address.target, headers

    def request_bytes(self) -> bytes:
        """The upgrade request (UPL-9, 10, 11, R5, R6): no body, no HTTP2-Settings."""
        if self._state is not _DeviceState.IDLE:
            raise LocalProtocolError("the upgrade request was already sent")
        target, headers = self._request()
        try:
            out = self._conn.send(h11.Request(method="GET", target=target, headers=headers))
            out = (out or b"") + (self._conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError as exc:
            raise ConfigurationError(f"cannot build the upgrade request: {exc}") from None
        self._state = _DeviceState.SENT
        return out

    def receive_data(self, data: bytes) -> HandshakeResult | None:
        """Feed octets of the answer; None while the head is incomplete."""
        if self._state is not _DeviceState.SENT:
            raise LocalProtocolError(f"handshake is {self._state.value}, not waiting for an answer")
        try:
            self._conn.receive_data(data)
            while True:
                event = self._conn.next_event()
                if event is h11.NEED_DATA:
                    return None
                if isinstance(event, h11.InformationalResponse):
                    if event.status_code == 101:
                        return self._switched(event)
                    continue  # 100 Continue and friends: keep reading
                if isinstance(event, h11.Response):
                    self._state = _DeviceState.REFUSED
                    return HandshakeResult(
                        switched=False,
                        status_code=event.status_code,
                        reason=bytes(event.reason).decode("latin-1", "replace"),
                        headers=_h11_headers(event.headers),
                    )
                if isinstance(event, h11.ConnectionClosed):
                    self._state = _DeviceState.FAILED
                    return HandshakeResult(
                        switched=False, error="connection closed before the answer"
                    )
                return None
        except h11.RemoteProtocolError as exc:
            self._state = _DeviceState.FAILED
            return HandshakeResult(switched=False, error=f"malformed upgrade answer: {exc}")

    def _check_101(self, headers: Headers) -> str | None:
        """Why this 101 does not switch, or None (the WebSocket variant overrides it)."""
        upgrade = _header(headers, b"upgrade")
        # UPL-R7: only a 101 naming h2c-reverse switches (case-insensitive).
        if upgrade is None or UPGRADE_TOKEN not in _tokens(upgrade):
            return f"101 without Upgrade: {UPGRADE_TOKEN} (got {upgrade!r})"
        return None

    def _switched(self, event: h11.InformationalResponse) -> HandshakeResult:
        headers = _h11_headers(event.headers)
        error = self._check_101(headers)
        if error is not None:
            self._state = _DeviceState.FAILED
            return HandshakeResult(switched=False, status_code=101, headers=headers, error=error)
        self._state = _DeviceState.SWITCHED
        trailing, _closed = self._conn.trailing_data
        return HandshakeResult(switched=True, headers=headers, trailing=bytes(trailing))

    def connection_closed(self) -> HandshakeResult:
        """The transport closed before the cloud answered: the attempt failed."""
        self._state = _DeviceState.FAILED
        return HandshakeResult(switched=False, error="connection closed before the answer")


# --- cloud end ---------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class ParsedUpgrade:
    """A device's upgrade request as the cloud end understood it."""

    target: str
    host: str | None
    headers: Headers
    bearer_token: str | None = attrs.field(repr=False)
    tolerated: tuple[str, ...]
    trailing: bytes
    #: ``Upgrade: websocket`` (the ``wss`` variant, checked further by
    #: :class:`~uplink62676.websocket.CloudWebSocketHandshake`) instead of h2c-reverse.
    websocket: bool = False


_REQUEST_LINE = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) ([A-Za-z]+/\d\.\d)$")


class CloudHandshake:
    """Cloud side: read the device's upgrade request and answer it (sans-I/O)."""

    def __init__(self, *, max_head_size: int = 16 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_head_size
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_size)
        self.parsed: ParsedUpgrade | None = None

    def receive_data(self, data: bytes) -> ParsedUpgrade | None:
        """Feed octets; returns the parsed request once complete.

        Raises :class:`RemoteProtocolError` with ``http_status`` (400 or 431)
        for a request to refuse.
        """
        if self.parsed is not None:
            raise LocalProtocolError("the upgrade request was already received")
        self._buf += data
        end, sep = self._head_end()
        if end < 0:
            if len(self._buf) > self._max:
                raise RemoteProtocolError(
                    f"upgrade request head exceeds {self._max} octets", http_status=431
                )
            return None
        if end + len(sep) > self._max:
            raise RemoteProtocolError(
                f"upgrade request head exceeds {self._max} octets", http_status=431
            )
        head = bytes(self._buf[:end])
        trailing = bytes(self._buf[end + len(sep) :])
        self.parsed = self._parse(head, sep, trailing)
        return self.parsed

    def _head_end(self) -> tuple[int, bytes]:
        crlf = self._buf.find(b"\r\n\r\n")
        lf = self._buf.find(b"\n\n")
        if lf >= 0 and (crlf < 0 or lf < crlf):
            return lf, b"\n\n"
        return crlf, b"\r\n\r\n"

    def _parse(self, head: bytes, sep: bytes, trailing: bytes) -> ParsedUpgrade:
        tolerated: list[str] = []
        if sep == b"\n\n" or b"\n" in head.replace(b"\r\n", b""):
            tolerated.append("bare-lf")
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
        request_line = lines[0].strip(b"\r")
        m = _REQUEST_LINE.match(request_line)
        if m is None:
            raise RemoteProtocolError(
                f"malformed request line {request_line[:200]!r}", http_status=400
            )
        method, target, version = m.groups()
        if method != b"GET":
            if method.upper() != b"GET":
                raise RemoteProtocolError(
                    f"upgrade must use GET, got {method.decode('latin-1')!r}", http_status=400
                )
            tolerated.append("method-case")
        if version != b"HTTP/1.1":
            if version.upper() != b"HTTP/1.1":
                raise RemoteProtocolError(
                    f"upgrade needs HTTP/1.1, got {version.decode('latin-1')!r}", http_status=400
                )
            tolerated.append("version-case")
        fields = lines[1:]
        names = [f.split(b":", 1)[0].strip().lower() for f in fields if f[:1] not in (b" ", b"\t")]
        if b"host" not in names:
            tolerated.append("missing-host")
            fields.append(b"Host:")
        conn_values = [
            f.split(b":", 1)[1]
            for f in fields
            if b":" in f and f.split(b":", 1)[0].strip().lower() == b"connection"
        ]
        if not any("upgrade" in _tokens(v) for v in conn_values) and b"upgrade" in names:
            tolerated.append("missing-connection-upgrade")
            fields.append(b"Connection: Upgrade")
        if b"http2-settings" in names:
            tolerated.append("http2-settings")
        normalized = b"\r\n".join([b"GET " + target + b" HTTP/1.1", *fields]) + b"\r\n\r\n"
        try:
            self._conn.receive_data(normalized)
            request = self._conn.next_event()
            if not isinstance(request, h11.Request):
                raise RemoteProtocolError("incomplete upgrade request", http_status=400)
            end = self._conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise RemoteProtocolError(
                f"malformed upgrade request: {exc}", http_status=exc.error_status_hint
            ) from None
        headers = _h11_headers(request.headers)
        if not isinstance(end, h11.EndOfMessage):
            raise RemoteProtocolError(
                "an upgrade request must not have a body (where would HTTP/2 start?)",
                http_status=400,
            )
        upgrade = _header(headers, b"upgrade")
        websocket = upgrade is not None and _tokens(upgrade) == ["websocket"]
        if not websocket and (upgrade is None or UPGRADE_TOKEN not in _tokens(upgrade)):
            raise RemoteProtocolError(
                f"Upgrade must name {UPGRADE_TOKEN} or websocket, got {upgrade!r}",
                http_status=400,
            )
        if trailing:
            raise RemoteProtocolError(
                "octets after the upgrade request before the 101 (the device speaks only after it)",
                http_status=400,
            )
        if "missing-host" in tolerated:
            headers = tuple(h for h in headers if h[0] != b"host")
            host = None
        else:
            host_value = _header(headers, b"host")
            host = host_value.decode("latin-1") if host_value is not None else None
        target_str = target.decode("latin-1")
        token = _bearer_token(headers, target_str)
        return ParsedUpgrade(
            target=target_str,
            host=host,
            headers=headers,
            bearer_token=token,
            tolerated=tuple(tolerated),
            trailing=trailing,
            websocket=websocket,
        )

    def switch_bytes(self, extra_headers: Headers = ()) -> bytes:
        """The ``101`` (UPL-13, UPL-14); the next octet is HTTP/2 (UPL-12)."""
        if self.parsed is None:
            raise LocalProtocolError("no upgrade request to accept")
        headers: list[tuple[bytes, bytes]] = [
            (b"Connection", b"Upgrade"),
            (b"Upgrade", UPGRADE_TOKEN.encode()),
        ]
        headers.extend(extra_headers)
        try:
            out = self._conn.send(
                h11.InformationalResponse(
                    status_code=101, headers=headers, reason=b"Switching Protocols"
                )
            )
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot send 101: {exc}") from None
        return out or b""

    def refusal_bytes(
        self, status_code: int, headers: Headers = (), body: bytes = b"", reason: bytes = b""
    ) -> bytes:
        """A final non-101 answer; the connection closes after it."""
        if not 200 <= status_code <= 599 or status_code in (101,):
            raise LocalProtocolError(f"refusal status must be 2xx..5xx, got {status_code!r}")
        conn = h11.Connection(h11.SERVER)
        # A fresh h11 connection that has "seen" a minimal request, so h11 can
        # frame the refusal even when the device's request was unparseable.
        conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.next_event()
        hdrs = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"connection")]
        hdrs += [(b"Content-Length", str(len(body)).encode()), (b"Connection", b"close")]
        try:
            out = conn.send(h11.Response(status_code=status_code, headers=hdrs, reason=reason))
            out = (
                (out or b"")
                + (conn.send(h11.Data(data=body)) or b"")
                + (conn.send(h11.EndOfMessage()) or b"")
            )
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot build the refusal: {exc}") from None
        return out


def _bearer_token(headers: Headers, target: str) -> str | None:
    """The RFC 6750 token from the header or the ``access_token`` query (UPL-R17)."""
    from_header = None
    for k, v in headers:
        if k == b"authorization":
            text = v.decode("latin-1").strip()
            scheme, _, rest = text.partition(" ")
            if scheme.lower() == "bearer" and rest.strip():
                from_header = rest.strip()
    query = urlsplit(target).query
    from_query = None
    if query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "access_token":
                from_query = value
    if from_header is not None and from_query is not None:
        raise RemoteProtocolError(
            "access token in both the Authorization header and the query (RFC 6750 section 2)",
            http_status=400,
        )
    return from_header if from_header is not None else from_query
