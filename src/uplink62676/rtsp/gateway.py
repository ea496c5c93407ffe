"""One player's session at the cloud's RTSP gateway (MED-R12..R16), sans-I/O.

A :class:`GatewaySession` sits between a player's RTSP/TCP byte stream and a
tunnel through the uplink.  It authenticates the player (RTSP Digest, the same
RFC 7616 scheme as the front door), answers OPTIONS itself until a tunnel is
needed, asks the adapter to open one (:class:`OpenTunnel`), relays and rewrites
both ways (:class:`~uplink62676.rtsp.rewrite.StreamRewriter`), keeps the
device's session alive when the player is quiet (GET_PARAMETER every
``timeout/2``, MED-R3, MED-R15) and ends the tunnel after TEARDOWN, a player
that goes away, or a player that falls silent for the session timeout.

States::

    CONNECTED -> AUTHENTICATED -> OPENING -> RELAYING -> (TEARDOWN) -> AUTHENTICATED
                                                      -> CLOSED (player or device gone)

The adapter feeds ``receive_player`` / ``receive_device`` with bytes and
``now``, carries out the events, sends ``player_data_to_send()`` to the player
and ``device_data_to_send()`` (plain RTSP/TCP octets; the adapter frames them
for the POST channel or a WebSocket) into the tunnel.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import attrs

from ..errors import AuthenticationError, ConfigurationError, RemoteProtocolError
from ..httpauth import DigestVerifier, parse_authorization
from .message import (
    Interleaved,
    RtspMessage,
    RtspReader,
    RtspRequest,
    RtspResponse,
    serialize,
)
from .rewrite import StreamRewriter, UrlMap, rewrite_request

__all__ = [
    "ClosePlayer",
    "CloseTunnel",
    "GatewayEvent",
    "GatewaySession",
    "GatewaySettings",
    "OpenTunnel",
    "PlayerAuthenticated",
    "Route",
    "SessionLimits",
    "SessionState",
    "parse_route",
]

PUBLIC: Final = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER"
#: CSeq values of the gateway's own keep-alives (far above any player's).
_OWN_CSEQ: Final = 1_000_000_000
_REASONS: Final = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
                   404: "Not Found", 453: "Not Enough Bandwidth", 454: "Session Not Found",
                   461: "Unsupported Transport", 500: "Internal Server Error",
                   501: "Not Implemented", 503: "Service Unavailable",
                   504: "Gateway Time-out", 505: "RTSP Version not supported"}
_TIMEOUT: Final = re.compile(r";\s*timeout\s*=\s*(\d{1,6})", re.IGNORECASE)


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ConfigurationError(f"GatewaySettings.{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(slots=True)
class GatewaySettings:
    """How a gateway session behaves.

    ``default_timeout``: the session timeout when the device's ``Session``
    names none (RFC 2326: 60 s).  ``teardown_grace``: how long a TEARDOWN reply
    is awaited before the tunnel is ended anyway (MED §9: 5 s).
    ``max_player_buffer``: octets a player may leave unread before it is
    dropped (MED-R16).  ``max_queued``: octets of requests held while a
    tunnel opens.
    """

    realm: str = "uplink62676"
    default_timeout: float = attrs.field(default=60.0, validator=_positive)
    teardown_grace: float = attrs.field(default=5.0, validator=_positive)
    open_timeout: float = attrs.field(default=15.0, validator=_positive)
    max_player_buffer: int = attrs.field(default=8 * 1024 * 1024, validator=_positive)
    max_queued: int = attrs.field(default=64 * 1024, validator=_positive)


@attrs.frozen(slots=True)
class Route:
    """Where a player's URL leads: ``rtsp://HOST/devices/<id>/<path>`` (MED-R12)."""

    device_id: str
    path: str
    public_base: str

    @property
    def private_base(self) -> str:
        """The device's side of the map: the uplink authority (MED-R9)."""
        return f"rtsp://{self.device_id}"

    @property
    def urls(self) -> UrlMap:
        """The URL map between the player's and the device's side of this route."""
        return UrlMap(self.public_base, self.private_base)


def parse_route(uri: str, prefix: str = "/devices/", *,
                device_of_host: Callable[[str], str | None] | None = None) -> Route | None:
    """The route of an absolute ``rtsp://`` Request-URI, or None.

    ``rtsp://HOST/devices/<id>/<path>`` names the device in the path.  With
    ``device_of_host``, a URL whose host names a device (a virtual host
    ``<label>.DOMAIN``, as on the front door) goes to that device with its whole
    path: ``rtsp://<label>.DOMAIN:PORT/<path>``.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("rtsp", "rtsps", "http", "https") or not parts.netloc:
        return None
    scheme = "rtsp" if parts.scheme.lower() in ("http", "rtsp") else "rtsps"
    if device_of_host is not None and parts.hostname:
        by_host = device_of_host(parts.hostname)
        if by_host is not None:
            path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            return Route(by_host, path, f"{scheme}://{parts.netloc}")
    if not parts.path.startswith(prefix):
        return None
    device, _, rest = parts.path[len(prefix):].partition("/")
    device = unquote(device)
    if not device or any(c in device for c in "/\\?#@ ") or len(device) > 128:
        return None
    path = "/" + rest
    if parts.query:
        path += "?" + parts.query
    raw_device = parts.path[len(prefix):].partition("/")[0]
    return Route(device, path, f"{scheme}://{parts.netloc}{prefix}{raw_device}")


# --- events ------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OpenTunnel:
    """Open a tunnel to ``route`` (then call ``tunnel_opened`` or ``tunnel_failed``)."""

    route: Route
    user: str | None


@attrs.frozen(slots=True)
class CloseTunnel:
    """End both channels of the tunnel (POST/GET or CONNECT: RST_STREAM CANCEL)."""

    reason: str


@attrs.frozen(slots=True)
class ClosePlayer:
    """Close the player's TCP connection (after sending ``player_data_to_send()``)."""

    reason: str


@attrs.frozen(slots=True)
class PlayerAuthenticated:
    """The player proved to be ``user`` (RTSP Digest)."""

    user: str


GatewayEvent = OpenTunnel | CloseTunnel | ClosePlayer | PlayerAuthenticated


class SessionState(enum.Enum):
    """Where a player's gateway session is: connected, authenticated, opening its tunnel,
    relaying, or ended."""

    CONNECTED = "connected"
    AUTHENTICATED = "authenticated"
    OPENING = "tunnel opening"
    RELAYING = "relaying"
    CLOSED = "closed"


class SessionLimits:
    """Concurrent tunnels per user and per device (``None``: unlimited)."""

    __slots__ = ("_devices", "_users", "per_device", "per_user")

    def __init__(self, per_user: int | None = None, per_device: int | None = None) -> None:
        self.per_user = per_user
        self.per_device = per_device
        self._users: dict[str, int] = {}
        self._devices: dict[str, int] = {}

    def acquire(self, user: str | None, device_id: str) -> bool:
        """Take a slot for ``user`` on ``device_id``; False when a limit is reached."""
        if self.per_device is not None and self._devices.get(device_id, 0) >= self.per_device:
            return False
        if (user is not None and self.per_user is not None
                and self._users.get(user, 0) >= self.per_user):
            return False
        self._devices[device_id] = self._devices.get(device_id, 0) + 1
        if user is not None:
            self._users[user] = self._users.get(user, 0) + 1
        return True

    def release(self, user: str | None, device_id: str) -> None:
        """Give back one session of ``user`` to ``device_id`` (it ended)."""
        for table, key in ((self._devices, device_id), (self._users, user)):
            if key is not None and key in table:
                table[key] -= 1
                if not table[key]:
                    del table[key]

    def count(self, *, user: str | None = None, device_id: str | None = None) -> int:
        """Sessions open now, of one user or to one device."""
        if device_id is not None:
            return self._devices.get(device_id, 0)
        return self._users.get(user or "", 0)


#: ``(user, device_id) -> bool``: may this user watch that device?
CanSee = Callable[[str, str], bool]


class GatewaySession:
    """The state of one player connection at the gateway (see the module docstring).

    ``verifier`` + ``password_of`` turn on RTSP Digest; without them every
    player is let in (the adapter warns).  ``can_see`` limits which devices a
    user reaches (the front door's users file).  ``route_of`` finds the device of
    a Request-URI (:func:`parse_route`; the adapter adds virtual hosts).
    """

    def __init__(
        self,
        settings: GatewaySettings | None = None,
        *,
        verifier: DigestVerifier | None = None,
        password_of: Callable[[str], str | None] | None = None,
        can_see: CanSee | None = None,
        route_of: Callable[[str], Route | None] = parse_route,
        now: float = 0.0,
    ) -> None:
        if (verifier is None) != (password_of is None):
            raise ConfigurationError(
                "GatewaySession needs both verifier and password_of, or neither")
        self.settings = settings or GatewaySettings()
        self.verifier = verifier
        self.password_of = password_of
        self.can_see = can_see
        self.route_of = route_of
        self.state = SessionState.CONNECTED if verifier is not None else SessionState.AUTHENTICATED
        self.user: str | None = None
        self.route: Route | None = None
        self._reader = RtspReader()
        self._from_device: StreamRewriter | None = None
        self._to_player: list[bytes] = []
        self._to_device: list[bytes] = []
        self._queued: list[RtspRequest] = []
        self._queued_size = 0
        self._methods: dict[str, str] = {}  # CSeq -> method of requests in flight
        self._sessions: dict[str, str] = {}  # session id -> private control URI
        self._timeout = self.settings.default_timeout
        self._last_player = now
        self._last_keepalive = now
        self._own_cseq = _OWN_CSEQ
        self._own: set[str] = set()
        self._teardown_at: float | None = None
        self._opening_since: float | None = None
        self.frames_to_player = 0

    # --- output -------------------------------------------------------------------------------

    def player_data_to_send(self) -> bytes:
        """Octets for the player's connection (drained)."""
        out = b"".join(self._to_player) if len(self._to_player) != 1 else self._to_player[0]
        self._to_player.clear()
        return out

    def device_data_to_send(self) -> bytes:
        """Octets for the tunnel to the device (drained)."""
        out = b"".join(self._to_device)
        self._to_device.clear()
        return out

    def _answer(self, request: RtspRequest, status: int,
                headers: tuple[tuple[str, str], ...] = ()) -> None:
        cseq = request.header("cseq")
        hdrs = ((("CSeq", cseq),) if cseq is not None else ()) + headers
        self._to_player.append(serialize(RtspResponse(status, _REASONS.get(status, "Error"),
                                                      hdrs)))

    # --- time ---------------------------------------------------------------------------------

    @property
    def session_timeout(self) -> float:
        """The device's session timeout as learnt from its SETUP reply (MED-10)."""
        return self._timeout

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must run next (keep-alive or timeout), or None."""
        deadlines = []
        if self._teardown_at is not None:
            deadlines.append(self._teardown_at)
        if self._opening_since is not None:
            deadlines.append(self._opening_since + self.settings.open_timeout)
        if self.state is SessionState.RELAYING and self._sessions:
            quiet = max(self._last_player, self._last_keepalive)
            deadlines.append(quiet + self._timeout / 2)
            deadlines.append(self._last_player + self._timeout)
        return min(deadlines) if deadlines else None

    def handle_timeout(self, now: float) -> list[GatewayEvent]:
        """Send a due keep-alive, or end a session whose player or device went silent."""
        out: list[GatewayEvent] = []
        if self._teardown_at is not None and now >= self._teardown_at:
            self._teardown_at = None
            out += self._end_tunnel("no reply to TEARDOWN")
        if (self._opening_since is not None and self.state is SessionState.OPENING
                and now >= self._opening_since + self.settings.open_timeout):
            out += self.tunnel_failed(504, now)
        if self.state is SessionState.RELAYING and self._sessions:
            if now >= self._last_player + self._timeout:
                self._teardown_all()
                out += self._end_tunnel("player silent for the session timeout")
                out += self._close_player("session timeout")
            elif now >= max(self._last_player, self._last_keepalive) + self._timeout / 2:
                self._keepalive(now)
        return out

    def _closed(self) -> bool:
        return self.state is SessionState.CLOSED

    def _keepalive(self, now: float) -> None:
        """GET_PARAMETER with each session to the device, replies consumed (MED-R3)."""
        self._last_keepalive = now
        for session, uri in self._sessions.items():
            self._own_cseq += 1
            cseq = str(self._own_cseq)
            self._own.add(cseq)
            self._to_device.append(serialize(RtspRequest(
                "GET_PARAMETER", uri, (("CSeq", cseq), ("Session", session)))))

    # --- player input -------------------------------------------------------------------------

    def receive_player(self, data: bytes, now: float) -> list[GatewayEvent]:
        """Octets from the player (``b""``: it closed)."""
        if self.state is SessionState.CLOSED:
            return []
        if not data:
            return self.player_closed(now)
        self._last_player = now
        try:
            items = self._reader.feed(data)
        except RemoteProtocolError as exc:
            status = exc.http_status or 400
            self._to_player.append(serialize(RtspResponse(status, _REASONS.get(status, "Error"))))
            return self.player_closed(now, f"player broke RTSP: {exc}")
        out: list[GatewayEvent] = []
        for item in items:
            if self._closed():
                break
            if isinstance(item, Interleaved):
                if self.state is SessionState.RELAYING:
                    self._to_device.append(item.data)  # RTCP receiver reports: 1:1
                continue
            if isinstance(item, RtspResponse):
                continue  # a reply to a server request: the gateway sends none
            out += self._request(item, now)
        return out

    def _request(self, request: RtspRequest, now: float) -> list[GatewayEvent]:
        out: list[GatewayEvent] = []
        if self.state is SessionState.CONNECTED:
            user = self._authenticate(request, now)
            if user is None:
                return out
            self.user = user
            self.state = SessionState.AUTHENTICATED
            out.append(PlayerAuthenticated(user))
        if self.route is None:
            if request.method == "OPTIONS":
                self._answer(request, 200, (("Public", PUBLIC),))
                return out
            route = self.route_of(request.uri)
            if route is None:
                self._answer(request, 404)
                return out
            if (self.user is not None and self.can_see is not None
                    and not self.can_see(self.user, route.device_id)):
                self._answer(request, 404)  # do not tell who exists (as the front door)
                return out
            self.route = route
        elif request.uri != "*":
            route = self.route_of(request.uri)
            if route is not None and route.device_id != self.route.device_id:
                self._answer(request, 400)
                return out
        if request.method == "SETUP":
            transport = (request.header("transport") or "").upper()
            if "TCP" not in transport and "INTERLEAVED" not in transport:
                self._answer(request, 461)  # MED-R13: interleaved only
                return out
        if self.state is SessionState.AUTHENTICATED:
            if request.method == "OPTIONS":
                self._answer(request, 200, (("Public", PUBLIC),))
                return out
            if request.method == "TEARDOWN":
                self._answer(request, 454)
                return out
            self.state = SessionState.OPENING
            self._opening_since = now
            self._queue(request)
            out.append(OpenTunnel(self.route, self.user))
            return out
        if self.state is SessionState.OPENING:
            if self._queued_size + len(request.body) + 512 > self.settings.max_queued:
                self._answer(request, 503)
            else:
                self._queue(request)
            return out
        self._forward(request, now)
        return out

    def _authenticate(self, request: RtspRequest, now: float) -> str | None:
        assert self.verifier is not None and self.password_of is not None
        value = request.header("authorization")
        stale = False
        if value is not None:
            try:
                credentials = parse_authorization(value)
            except AuthenticationError:
                credentials = None
            if credentials is not None:
                outcome = self.verifier.verify(credentials, method=request.method,
                                               target=request.uri,
                                               password_of=self.password_of, now=now)
                if outcome.ok and outcome.user is not None:
                    return outcome.user
                stale = outcome.stale
        self._answer(request, 401, self.verifier.challenge(now, stale=stale))
        return None

    def _queue(self, request: RtspRequest) -> None:
        self._queued.append(request)
        self._queued_size += len(request.body) + 512

    def _forward(self, request: RtspRequest, now: float) -> None:
        assert self.route is not None
        private = rewrite_request(request, self.route.urls)
        cseq = private.header("cseq")
        if cseq is not None:
            self._methods[cseq] = private.method
            if len(self._methods) > 256:  # a player that never reads replies
                self._methods.pop(next(iter(self._methods)))
        if private.method == "TEARDOWN":
            session = (private.header("session") or "").split(";")[0].strip()
            self._sessions.pop(session, None)
            if not self._sessions:
                self._teardown_at = now + self.settings.teardown_grace
        elif private.method in ("PLAY", "SETUP"):
            session = (private.header("session") or "").split(";")[0].strip()
            if session and private.method == "PLAY":
                self._sessions[session] = private.uri
        self._to_device.append(serialize(private))

    # --- tunnel -------------------------------------------------------------------------------

    def tunnel_opened(self, now: float) -> list[GatewayEvent]:
        """The adapter opened both channels: relay what waited."""
        if self.state is not SessionState.OPENING or self.route is None:
            return [CloseTunnel("tunnel no longer wanted")]
        self.state = SessionState.RELAYING
        self._opening_since = None
        self._from_device = StreamRewriter(self.route.urls, to_device=False)
        self._last_keepalive = now
        queued, self._queued, self._queued_size = self._queued, [], 0
        for request in queued:
            self._forward(request, now)
        return []

    def tunnel_failed(self, status: int, now: float) -> list[GatewayEvent]:
        """The tunnel could not be opened (404: no such device; 503: a limit)."""
        if self.state is not SessionState.OPENING:
            return []
        for request in self._queued:
            self._answer(request, status)
        self._queued, self._queued_size = [], 0
        self._opening_since = None
        self.state = SessionState.AUTHENTICATED
        self.route = None
        return []

    def receive_device(self, data: bytes, now: float) -> list[GatewayEvent]:
        """Octets from the tunnel (``b""``: the device ended it)."""
        if self.state is not SessionState.RELAYING or self._from_device is None:
            return []
        if not data:
            return self.device_closed("the device ended the tunnel")
        try:
            passed, messages = self._from_device.feed(data)
        except RemoteProtocolError as exc:
            return self.device_closed(f"device broke RTSP: {exc}")
        if not messages:
            self._to_player.append(passed)
            return []
        return self._device_messages(data, passed, messages, now)

    def _device_messages(self, data: bytes, passed: bytes, messages: list[RtspMessage],
                         now: float) -> list[GatewayEvent]:
        out: list[GatewayEvent] = []
        own = [m for m in messages if isinstance(m, RtspResponse) and m.header("cseq") in self._own]
        if own:
            # Our keep-alive replies are consumed: cut them out of what the player gets.
            for reply in own:
                self._own.discard(reply.header("cseq") or "")
            passed = self._strip(passed, own)
            messages = [m for m in messages if m not in own]
        self._to_player.append(passed)
        for m in messages:
            if not isinstance(m, RtspResponse):
                continue
            method = self._methods.pop(m.header("cseq") or "", None)
            if method == "SETUP" and m.status == 200:
                value = m.header("session") or ""
                found = _TIMEOUT.search(value)
                self._timeout = float(found.group(1)) if found else self.settings.default_timeout
                self._timeout = max(self._timeout, 2.0)
                session = value.split(";")[0].strip()
                if session and session not in self._sessions:
                    self._sessions[session] = self._setup_uri(session)
            elif method == "TEARDOWN" and not self._sessions:
                out += self._end_tunnel("TEARDOWN answered")
        return out

    def _setup_uri(self, session: str) -> str:
        assert self.route is not None
        return self.route.private_base + self.route.path

    @staticmethod
    def _strip(passed: bytes, own: list[RtspResponse]) -> bytes:
        for m in own:
            wire = serialize(m)
            at = passed.find(wire)
            if at >= 0:
                passed = passed[:at] + passed[at + len(wire):]
        return passed

    def device_closed(self, reason: str) -> list[GatewayEvent]:
        """The tunnel or the uplink ended: the player's connection closes (MED §9)."""
        if self.state in (SessionState.OPENING, SessionState.RELAYING):
            self.state = SessionState.AUTHENTICATED
            return [CloseTunnel(reason), *self._close_player(reason)]
        return []

    def _end_tunnel(self, reason: str) -> list[GatewayEvent]:
        if self.state is not SessionState.RELAYING:
            return []
        self.state = SessionState.AUTHENTICATED
        self.route = None
        self._from_device = None
        self._sessions.clear()
        self._methods.clear()
        self._teardown_at = None
        return [CloseTunnel(reason)]

    def _teardown_all(self) -> None:
        for session, uri in self._sessions.items():
            self._own_cseq += 1
            self._to_device.append(serialize(RtspRequest(
                "TEARDOWN", uri, (("CSeq", str(self._own_cseq)), ("Session", session)))))
        self._sessions.clear()

    def _close_player(self, reason: str) -> list[GatewayEvent]:
        if self.state is SessionState.CLOSED:
            return []
        self.state = SessionState.CLOSED
        self._teardown_at = self._opening_since = None
        return [ClosePlayer(reason)]

    def player_closed(self, now: float, reason: str = "player closed the connection"
                      ) -> list[GatewayEvent]:
        """The player went away (or is dropped): TEARDOWN its sessions, end the tunnel."""
        out: list[GatewayEvent] = []
        if self.state is SessionState.RELAYING:
            self._teardown_all()
            out += self._end_tunnel(reason)
        elif self.state is SessionState.OPENING:
            out.append(CloseTunnel(reason))
        out += self._close_player(reason)
        return out
