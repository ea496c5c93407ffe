"""The two ends of an uplink, each one sans-I/O state machine with one face.

:class:`DeviceUplink` (the local service) opens the uplink: upgrade request,
``101``, then it serves HTTP/2.  :class:`CloudUplink` (the remote client)
accepts it: reads the upgrade request, lets the application accept or
refuse, then sends requests.  Both take ``now`` with every input, return
events, queue output for ``data_to_send()`` and expose ``next_deadline()`` /
``handle_timeout(now)`` for the timers, and share the lifecycle ``start(now)``
/ ``connection_lost(now, reason)``.

Each end moves through :class:`Phase` only along its transition table,
:data:`DEVICE_TRANSITIONS` or :data:`CLOUD_TRANSITIONS` (``(phase, trigger)
-> phase``, in the manner of h11's state tables); a trigger the table does
not have for the current phase is a :class:`~uplink62676.errors.LocalProtocolError`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import ClassVar

from . import events as ev
from .errors import ConfigurationError, LocalProtocolError, RemoteProtocolError
from .handshake import (
    CloudHandshake,
    DeviceHandshake,
    HandshakeResult,
    RemoteAddress,
    parse_bearer_challenge,
)
from .liveness import Watchdog
from .settings import CloudSettings, DeviceSettings
from .status import Status
from .tunnel import ErrorCode, Role, Tunnel, _as_bytes, _lower_headers
from .websocket import (
    CloudWebSocketHandshake,
    DeviceWebSocketHandshake,
    Entropy,
    SeededEntropy,
    WebSocketSettings,
    WebSocketTunnel,
)

__all__ = [
    "CLOUD_TRANSITIONS",
    "DEVICE_TRANSITIONS",
    "PHASE_STATUS",
    "CloudUplink",
    "DeviceUplink",
    "Phase",
    "Trigger",
]

HeaderInput = Iterable[tuple[bytes | str, bytes | str]]


class Phase(enum.Enum):
    """Where a machine is: before the upgrade, in HTTP/2, or finished."""

    IDLE = "idle"
    UPGRADING = "upgrading"
    HTTP2 = "http2"
    DRAINING = "draining"  # GOAWAY NO_ERROR: streams in flight finish, no new ones
    CLOSED = "closed"


class Trigger(enum.Enum):
    """What moves an uplink end from one :class:`Phase` to another (the transition tables)."""

    START = "start"  # device: upgrade request queued; cloud: handshake timer armed
    ACCEPTED = "accepted"  # the 101: received by the device, sent by the cloud
    REFUSED = "refused"  # the upgrade was refused, or failed before a 101
    GOAWAY_SENT = "goaway sent"  # close(NO_ERROR): streams in flight may finish (UPL-R24)
    GOAWAY_RECEIVED = "goaway received"  # the peer's GOAWAY NO_ERROR (UPL-R24)
    TUNNEL_CLOSED = "tunnel closed"  # HTTP/2 ended: a fatal error or a GOAWAY with an error
    CLOSE = "close"  # close() with an error code, or before there is a tunnel
    TIMEOUT = "timeout"  # handshake, idle or dead-link timer
    LOST = "lost"  # the transport closed or failed under the uplink


_P, _T = Phase, Trigger

# Transitions once the tunnel is up, common to both ends.
_TUNNEL_TRANSITIONS: dict[tuple[Phase, Trigger], Phase] = {
    (_P.HTTP2, _T.GOAWAY_SENT): _P.DRAINING,
    (_P.HTTP2, _T.GOAWAY_RECEIVED): _P.DRAINING,
    (_P.HTTP2, _T.TUNNEL_CLOSED): _P.CLOSED,
    (_P.HTTP2, _T.CLOSE): _P.CLOSED,
    (_P.HTTP2, _T.TIMEOUT): _P.CLOSED,
    (_P.HTTP2, _T.LOST): _P.CLOSED,
    (_P.DRAINING, _T.GOAWAY_SENT): _P.DRAINING,  # close(NO_ERROR) again: one GOAWAY only
    (_P.DRAINING, _T.TUNNEL_CLOSED): _P.CLOSED,
    (_P.DRAINING, _T.CLOSE): _P.CLOSED,
    (_P.DRAINING, _T.LOST): _P.CLOSED,
    (_P.CLOSED, _T.CLOSE): _P.CLOSED,  # close() on a closed uplink is harmless
}

#: ``(phase, trigger) -> phase`` of :class:`DeviceUplink`.
DEVICE_TRANSITIONS: Mapping[tuple[Phase, Trigger], Phase] = MappingProxyType(
    {
        (_P.IDLE, _T.START): _P.UPGRADING,
        (_P.IDLE, _T.CLOSE): _P.CLOSED,
        (_P.IDLE, _T.LOST): _P.CLOSED,
        (_P.UPGRADING, _T.ACCEPTED): _P.HTTP2,
        (_P.UPGRADING, _T.REFUSED): _P.CLOSED,
        (_P.UPGRADING, _T.CLOSE): _P.CLOSED,
        (_P.UPGRADING, _T.TIMEOUT): _P.CLOSED,
        (_P.UPGRADING, _T.LOST): _P.CLOSED,
        **_TUNNEL_TRANSITIONS,
        (_P.DRAINING, _T.TIMEOUT): _P.CLOSED,  # the watchdog runs while draining
    }
)

#: ``(phase, trigger) -> phase`` of :class:`CloudUplink`; it is created
#: UPGRADING (reading the upgrade request), so it has no IDLE phase.
CLOUD_TRANSITIONS: Mapping[tuple[Phase, Trigger], Phase] = MappingProxyType(
    {
        (_P.UPGRADING, _T.START): _P.UPGRADING,  # only re-arms the handshake timer
        (_P.UPGRADING, _T.ACCEPTED): _P.HTTP2,
        (_P.UPGRADING, _T.REFUSED): _P.CLOSED,
        (_P.UPGRADING, _T.CLOSE): _P.CLOSED,
        (_P.UPGRADING, _T.TIMEOUT): _P.CLOSED,
        (_P.UPGRADING, _T.LOST): _P.CLOSED,
        **_TUNNEL_TRANSITIONS,
    }
)

#: The Status (UPL-R27) an uplink reports in each phase.
PHASE_STATUS: Mapping[Phase, Status] = MappingProxyType({
    _P.IDLE: Status.OFFLINE,
    _P.UPGRADING: Status.CONNECTING,
    _P.HTTP2: Status.CONNECTED,
    _P.DRAINING: Status.CONNECTED,
    _P.CLOSED: Status.OFFLINE,
})

del _P, _T


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


_SENDING = frozenset({Phase.HTTP2, Phase.DRAINING})


class _End:
    """What both ends share once the tunnel is up."""

    _tunnel: Tunnel | None
    _phase: Phase
    _out: bytearray
    _transitions: ClassVar[Mapping[tuple[Phase, Trigger], Phase]]

    def _apply(self, trigger: Trigger) -> None:
        """Move to the phase the transition table gives for ``trigger``; raise if it has none."""
        try:
            self._phase = self._transitions[(self._phase, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"{trigger.value!r} is not possible in phase {self._phase.value}"
            ) from None

    def _require_tunnel(self) -> Tunnel:
        if self._tunnel is None or self._phase not in (Phase.HTTP2, Phase.DRAINING):
            raise LocalProtocolError(f"no HTTP/2 tunnel (phase {self._phase.value})")
        return self._tunnel

    @property
    def phase(self) -> Phase:
        """Where the connection stands in the handshake table (see the state diagrams)."""
        return self._phase

    def _close_tunnel(self, error_code: int, reason: str | None) -> None:
        """GOAWAY on the tunnel if there is one; DRAINING after NO_ERROR, else CLOSED."""
        if self._tunnel is not None and self._phase in _SENDING:
            self._tunnel.close(error_code, reason)
            self._apply(Trigger.CLOSE if self._tunnel.closed else Trigger.GOAWAY_SENT)
        else:
            self._apply(Trigger.CLOSE)

    def _send_message(
        self,
        stream_id: int,
        pseudo: list[tuple[bytes, bytes]],
        headers: HeaderInput,
        body: bytes | None,
        end_stream: bool | None,
    ) -> None:
        """Head and (whole or no) body of a request or response on one stream."""
        tunnel = self._require_tunnel()
        regular = _lower_headers(headers)
        if body is not None:
            for name, _ in regular:
                if name == b"content-length":
                    break
            else:
                regular.append((b"content-length", str(len(body)).encode()))
        pseudo.extend(regular)
        if body is None:
            tunnel.send_headers(stream_id, pseudo, end_stream=end_stream is True)
        else:
            tunnel.send_headers(stream_id, pseudo, end_stream=not body and end_stream is not False)
            if body:
                tunnel.send_data(stream_id, body, end_stream=end_stream is not False)

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call (HTTP/1.1 head, then HTTP/2)."""
        from_tunnel = self._tunnel.data_to_send() if self._tunnel is not None else b""
        if not self._out:
            return from_tunnel
        self._out += from_tunnel
        data = bytes(self._out)
        self._out.clear()
        return data

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Queue body octets on a stream (sent as flow control allows)."""
        tunnel = self._tunnel
        if tunnel is None or self._phase not in _SENDING:
            tunnel = self._require_tunnel()
        tunnel.send_data(stream_id, data, end_stream=end_stream)

    def end_stream(self, stream_id: int) -> None:
        """End our side of a stream with an empty DATA frame carrying END_STREAM."""
        self._require_tunnel().send_data(stream_id, b"", end_stream=True)

    def send_trailers(self, stream_id: int, headers: HeaderInput) -> None:
        """Send trailing HEADERS and end the stream."""
        self._require_tunnel().send_trailers(stream_id, headers)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """Abort one stream with RST_STREAM (``CANCEL`` by default); the connection stays up."""
        self._require_tunnel().reset_stream(stream_id, error_code)

    def acknowledge_data(self, stream_id: int, size: int) -> None:
        """With ``manual_flow_control``: the application consumed ``size`` octets."""
        self._require_tunnel().acknowledge_data(stream_id, size)

    def queued(self, stream_id: int) -> int:
        """Octets of body queued on a stream, not yet sent (for back-pressure)."""
        return self._tunnel.queued(stream_id) if self._tunnel is not None else 0

    def ping(self, now: float) -> bytes:
        """Queue an HTTP/2 PING and return its 8-octet payload, to match the ACK later."""
        return self._require_tunnel().ping(now)

    @property
    def open_streams(self) -> int:
        """How many HTTP/2 streams are open right now (0 before the switch)."""
        return self._tunnel.open_streams if self._tunnel is not None else 0

    @property
    def stream_slots(self) -> int:
        """Streams the cloud may still open now (the device's MAX_CONCURRENT_STREAMS)."""
        return self._tunnel.stream_slots if self._tunnel is not None else 0

    @property
    def peer_enables_connect_protocol(self) -> bool:
        """The peer announced SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441, UPL-57)."""
        return self._tunnel is not None and self._tunnel.peer_enables_connect_protocol


def _check_status(status: int) -> None:
    if not isinstance(status, int) or not 100 <= status <= 599 or status == 101:
        raise LocalProtocolError(f"invalid HTTP status {status!r}")


class DeviceUplink(_End):
    """Device end of one uplink connection attempt (the HTTP/2 server).

    Create one per TCP/TLS connection, call :meth:`start`, and feed it the
    octets the cloud sends.  ``status`` follows UPL-R27: ``Connecting`` until
    the cloud's preface is valid, ``Connected`` then, ``Offline`` once the
    attempt failed or the link ended (``error`` says why, without secrets).

    A ``wss`` address runs the uplink over WebSocket (UPL-7, 20..29): the
    WebSocket key and the masking keys come from ``entropy`` (pass
    ``os.urandom`` in production; without it a :class:`SeededEntropy` seeded
    from the address and the ``now`` of :meth:`start` is used);
    ``token_in_query`` sends the access token as ``access_token`` query
    parameter instead of the header (UPL-25, R17).
    """

    _transitions = DEVICE_TRANSITIONS

    def __init__(
        self,
        remote_address: str | RemoteAddress,
        *,
        settings: DeviceSettings | None = None,
        access_token: str | None = None,
        manual_flow_control: bool = False,
        allow_plaintext: bool = False,
        entropy: Entropy | None = None,
        token_in_query: bool = False,
        websocket_limits: WebSocketSettings | None = None,
    ) -> None:
        self.settings = settings or DeviceSettings()
        self.address = (
            remote_address
            if isinstance(remote_address, RemoteAddress)
            else RemoteAddress.parse(remote_address, allow_plaintext=allow_plaintext)
        )
        self._seeded = entropy is None
        self._entropy: Entropy = entropy or SeededEntropy(self.address.uri)
        self._ws_limits = websocket_limits
        self._handshake: DeviceHandshake
        if self.address.websocket:
            self._handshake = DeviceWebSocketHandshake(
                self.address,
                entropy=self._entropy,
                access_token=access_token,
                token_in_query=token_in_query,
                user_agent=self.settings.user_agent,
                max_head_size=self.settings.max_head_size,
            )
        elif token_in_query:
            raise ConfigurationError("token_in_query applies to wss addresses only (UPL-25)")
        else:
            self._handshake = DeviceHandshake(
                self.address,
                access_token=access_token,
                user_agent=self.settings.user_agent,
                max_head_size=self.settings.max_head_size,
            )
        self._manual = manual_flow_control
        self._tunnel: Tunnel | None = None
        self._phase = Phase.IDLE
        self._status = Status.OFFLINE
        self._error: str | None = None
        self._started_at = 0.0
        self._watchdog: Watchdog | None = None
        self._out = bytearray()
        self.discard_token = False

    # --- state --------------------------------------------------------------------------------

    @property
    def status(self) -> Status:
        """The uplink's ``Status`` as GetUplinks reports it (UPL-R27)."""
        return self._status

    @property
    def error(self) -> str | None:
        """Short human-readable reason of the last failure (never a secret)."""
        return self._error

    def _set(self, status: Status, error: str | None, out: list[ev.Event]) -> None:
        if status is Status.CONNECTED:
            error = None
        if status is not self._status or error != self._error:
            self._status = status
            self._error = error
            out.append(ev.StatusChanged(status, error))

    # --- establishment ------------------------------------------------------------------------

    def start(self, now: float) -> list[ev.Event]:
        """Begin the attempt: queue the upgrade request (UPL-9) and start the timers."""
        if self._phase is not Phase.IDLE:
            raise LocalProtocolError("start() was already called")
        if self._seeded and isinstance(self._entropy, SeededEntropy):
            self._entropy.reseed(f"{self.address.uri} {now!r}")  # a fresh key per attempt
        self._out += self._handshake.request_bytes()
        self._apply(Trigger.START)
        self._started_at = now
        out: list[ev.Event] = []
        self._set(Status.CONNECTING, None, out)
        return out

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Octets from the cloud.  Empty ``data`` means the cloud closed the connection."""
        out: list[ev.Event] = []
        if self._phase is Phase.CLOSED:
            return out
        if self._phase is Phase.IDLE:
            raise LocalProtocolError("call start() before feeding data")
        if not data:
            return self.connection_lost(now, "connection closed by the cloud")
        if self._watchdog is not None:
            self._watchdog.received(now)
        if self._phase is Phase.UPGRADING:
            result = self._handshake.receive_data(data)
            if result is None:
                return out
            if not result.switched:
                return self._refused(result, now, out)
            self._switch(now, out, result.headers)
            data = result.trailing
            if not data:
                return out
        assert self._tunnel is not None
        connected_before = self._tunnel.preface_received
        events = self._tunnel.receive_data(data, now)
        for i, e in enumerate(() if connected_before else events):
            if isinstance(e, ev.Connected):
                changed: list[ev.Event] = []
                self._set(Status.CONNECTED, None, changed)
                events[i:i] = changed
                break
        out.extend(events)
        self._after_tunnel(out)
        return out

    def _switch(self, now: float, out: list[ev.Event], headers: ev.Headers) -> None:
        if self.address.websocket:
            self._tunnel = WebSocketTunnel(
                Role.DEVICE,
                self.settings,
                now=now,
                manual_flow_control=self._manual,
                entropy=self._entropy,
                limits=self._ws_limits,
            )
        else:
            self._tunnel = Tunnel(
                Role.DEVICE, self.settings, now=now, manual_flow_control=self._manual
            )
        self._apply(Trigger.ACCEPTED)
        self._watchdog = Watchdog(self.settings.liveness, now)
        out.append(ev.UpgradeAccepted(headers))

    def _refused(self, result: HandshakeResult, now: float, out: list[ev.Event]) -> list[ev.Event]:
        self._apply(Trigger.REFUSED)
        if result.error is not None:
            self._set(Status.OFFLINE, result.error, out)
            return out
        challenge, bearer_error = parse_bearer_challenge(result.headers)
        if result.status_code == 401 and bearer_error == "invalid_token":
            self.discard_token = True  # UPL-R7: drop the cached token
        out.append(
            ev.UpgradeRefused(
                result.status_code, result.reason, result.headers, challenge, bearer_error
            )
        )
        detail = f" {bearer_error}" if bearer_error else ""
        self._set(Status.OFFLINE, f"upgrade refused: {result.status_code}{detail}", out)
        return out

    def _after_tunnel(self, out: list[ev.Event]) -> None:
        assert self._tunnel is not None
        if self._tunnel.closed and self._phase in (Phase.HTTP2, Phase.DRAINING):
            self._apply(Trigger.TUNNEL_CLOSED)
            reason = self._tunnel.close_reason or "HTTP/2 connection ended"
            self._set(Status.OFFLINE, reason, out)
        elif self._tunnel.draining and self._phase is Phase.HTTP2:
            self._apply(Trigger.GOAWAY_RECEIVED)
            self._set(Status.OFFLINE, self._tunnel.close_reason, out)

    def connection_lost(self, now: float, reason: str = "connection lost") -> list[ev.Event]:
        """The adapter's transport failed or closed; the attempt is over."""
        out: list[ev.Event] = []
        if self._phase is not Phase.CLOSED:
            self._apply(Trigger.LOST)
            if self._tunnel is not None:
                self._tunnel.closed = True
            self._set(Status.OFFLINE, reason, out)
        return out

    # --- timers -------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must run next; ``None`` when no timer is armed."""
        if self._phase is Phase.UPGRADING:
            return self._started_at + self.settings.liveness.handshake_timeout
        if self._phase in (Phase.HTTP2, Phase.DRAINING) and self._watchdog is not None:
            deadline = self._watchdog.next_deadline()
            if self._tunnel is not None and not self._tunnel.preface_received:
                deadline = min(
                    deadline, self._started_at + self.settings.liveness.handshake_timeout
                )
            return deadline
        return None

    def handle_timeout(self, now: float) -> list[ev.Event]:
        """Run the timers due at ``now``: handshake limit, PINGs on silence, and the 30 s dead-link
        rule.
        """
        out: list[ev.Event] = []
        establishing = self._phase is Phase.UPGRADING or (
            self._phase is Phase.HTTP2
            and self._tunnel is not None
            and not self._tunnel.preface_received
        )
        if establishing and now - self._started_at >= self.settings.liveness.handshake_timeout:
            self._apply(Trigger.TIMEOUT)
            if self._tunnel is not None:
                self._tunnel.closed = True
            self._set(
                Status.OFFLINE,
                f"handshake not finished within {self.settings.liveness.handshake_timeout:g} s",
                out,
            )
            return out
        if (
            self._phase not in (Phase.HTTP2, Phase.DRAINING)
            or self._watchdog is None
            or self._tunnel is None
        ):
            return out
        due = self._watchdog.due(now)
        if due == "ping":
            self._tunnel.ping(now)
        elif due == "dead":
            silence = now - self._watchdog.last_received
            self._apply(Trigger.TIMEOUT)
            self._tunnel.closed = True  # a dead link: just close (UPL-R24)
            out.append(ev.LinkLost(silence))
            self._set(
                Status.OFFLINE, f"no traffic for {self.settings.liveness.dead_after:g} s", out
            )
        return out

    # --- serving ------------------------------------------------------------------------------

    def send_response(
        self,
        stream_id: int,
        status: int,
        headers: HeaderInput = (),
        body: bytes | None = None,
        *,
        end_stream: bool | None = None,
    ) -> None:
        """Answer a request.

        ``body`` given: sent whole (``content-length`` added unless present)
        and the stream ends.  ``body`` None: only the head; stream the body
        with :meth:`send_data` and finish with ``end_stream=True``,
        :meth:`end_stream` or :meth:`send_trailers`.
        """
        _check_status(status)
        pseudo = [(b":status", str(status).encode())]
        self._send_message(stream_id, pseudo, headers, body, end_stream)

    def close(self, error_code: int = ErrorCode.NO_ERROR, reason: str | None = None) -> None:
        """Orderly close: GOAWAY with the last processed stream (UPL-R24).

        With NO_ERROR the uplink drains (``phase`` DRAINING): answers to the
        streams in flight may still be sent; close the transport when
        ``open_streams`` is 0 or after a grace period (e.g. 2 s).
        """
        out: list[ev.Event] = []
        self._close_tunnel(error_code, reason)
        self._set(Status.OFFLINE, reason if error_code else None, out)



class CloudUplink(_End):
    """Cloud end of one uplink (the HTTP/2 client).

    Feed it the device's octets; on :class:`~uplink62676.events.UpgradeRequested`
    call :meth:`accept` (``101``, then at once the client preface and
    SETTINGS, UPL-12..15) or :meth:`refuse` (e.g. ``401`` with a Bearer
    challenge).  A request that is malformed beyond what
    :data:`~uplink62676.handshake.TOLERATED` covers is refused with ``400``
    automatically and reported as an ``UpgradeRefused`` event.  Native and
    WebSocket (``wss``) upgrades are both accepted; ``UpgradeRequested.websocket``
    says which, and :meth:`accept` answers in kind (UPL-22, 23).
    """

    _transitions = CLOUD_TRANSITIONS

    def __init__(
        self,
        *,
        settings: CloudSettings | None = None,
        now: float = 0.0,
        manual_flow_control: bool = False,
        websocket_limits: WebSocketSettings | None = None,
    ) -> None:
        self.settings = settings or CloudSettings()
        self._ws_limits = websocket_limits
        self._ws_handshake: CloudWebSocketHandshake | None = None
        self._handshake = CloudHandshake(max_head_size=self.settings.max_head_size)
        self._manual = manual_flow_control
        self._tunnel: Tunnel | None = None
        self._phase = Phase.UPGRADING
        self._created = now
        self._last_received = now
        self._out = bytearray()
        self.request: ev.UpgradeRequested | None = None
        self.connected = False
        self.default_authority = "uplink.invalid"
        self._started = False
        #: Receive-silence probe of an accepted uplink (PINGs, then dead): see CloudSettings.
        self._probe: Watchdog | None = None

    # --- lifecycle (the same two methods as the device end) -----------------------------------

    def start(self, now: float) -> list[ev.Event]:
        """Begin the attempt at ``now``: the handshake timer runs from here.

        Optional: without it the timer runs from the ``now`` given to the
        constructor.  Call it once, before the upgrade request is complete
        (usually as the transport is accepted); there is nothing to send yet,
        so it returns no events (a list, as :meth:`DeviceUplink.start` does).
        """
        if self._started or self.request is not None:
            raise LocalProtocolError("start() was already called or the upgrade request is in")
        self._apply(Trigger.START)
        self._started = True
        self._created = now
        self._last_received = now
        return []

    def connection_lost(self, now: float, reason: str = "connection lost") -> list[ev.Event]:
        """The adapter's transport failed or closed under the uplink; it is over.

        Every stream still open ends with a ``StreamReset`` (``CANCEL``, not
        by the peer, ``reason`` given), then one ``ConnectionTerminated``
        (``by_peer`` False and no last stream: no GOAWAY came) says the
        connection is gone.
        Nothing is sent any more; ``phase`` is CLOSED.  A second call, or a
        call after the uplink closed otherwise, returns no events.
        """
        out: list[ev.Event] = []
        if self._phase is Phase.CLOSED:
            return out
        self._apply(Trigger.LOST)
        tunnel = self._tunnel
        if tunnel is not None:
            out.extend(
                ev.StreamReset(sid, ErrorCode.CANCEL, by_peer=False, reason=reason)
                for sid in tunnel.open_stream_ids()
            )
            tunnel.closed = True
            tunnel.close_reason = reason
        out.append(ev.ConnectionTerminated(ErrorCode.NO_ERROR, None, by_peer=False, reason=reason))
        return out

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed octets from the device; returns the events they caused. ``b""`` means the transport
        closed.
        """
        out: list[ev.Event] = []
        if self._phase is Phase.CLOSED:
            return out
        if not data:
            self._apply(Trigger.LOST)
            if self._tunnel is not None:
                self._tunnel.closed = True
            out.append(
                ev.ConnectionTerminated(
                    0, None, by_peer=True, reason="device closed the connection"
                )
            )
            return out
        self._last_received = now
        if self._probe is not None:
            self._probe.received(now)
        if self._tunnel is None:
            if self.request is not None:
                # Octets before our decision: the device must wait for the 101.
                self._refuse_now(400, "octets after the upgrade request before the 101", out)
                return out
            try:
                parsed = self._handshake.receive_data(data)
                if parsed is not None and parsed.websocket:
                    self._ws_handshake = CloudWebSocketHandshake(parsed)
            except RemoteProtocolError as exc:
                self._refuse_now(exc.http_status or 400, str(exc), out)
                return out
            if parsed is not None:
                self.request = ev.UpgradeRequested(
                    parsed.target,
                    parsed.host,
                    parsed.headers,
                    parsed.bearer_token,
                    parsed.tolerated,
                    parsed.websocket,
                )
                out.append(self.request)
            return out
        out.extend(self._tunnel.receive_data(data, now))
        self.connected = self._tunnel.preface_received
        if self._tunnel.closed:
            self._apply(Trigger.TUNNEL_CLOSED)
        elif self._tunnel.draining and self._phase is Phase.HTTP2:
            self._apply(Trigger.GOAWAY_RECEIVED)
        return out

    def _refuse_now(self, status: int, reason: str, out: list[ev.Event]) -> None:
        body = (reason + "\n").encode("utf-8", "replace")
        version = ((b"Sec-WebSocket-Version", b"13"),) if status == 426 else ()  # RFC 6455 4.4
        self._out += self._handshake.refusal_bytes(
            status,
            ((b"Content-Type", b"text/plain; charset=utf-8"), *version),
            body,
            _REASONS.get(status, "").encode(),
        )
        self._apply(Trigger.REFUSED)
        out.append(ev.UpgradeRefused(status, reason, ()))

    def accept(
        self, now: float, headers: HeaderInput = (), *, authority: str | None = None
    ) -> None:
        """Answer ``101`` and send the client preface right behind it (UPL-12..15).

        ``authority`` is the ``:authority`` sent with requests that do not
        name one (UPL-R20: it identifies the device for the cloud's
        bookkeeping, e.g. its device ID); default ``uplink.invalid``.
        """
        if self._phase is not Phase.UPGRADING or self.request is None:
            raise LocalProtocolError("accept() needs a pending upgrade request")
        self.default_authority = authority or "uplink.invalid"
        if self._ws_handshake is not None:
            self._out += self._ws_handshake.switch_bytes(tuple(_lower_headers(headers)))
            self._tunnel = WebSocketTunnel(
                Role.CLOUD,
                self.settings,
                now=now,
                manual_flow_control=self._manual,
                limits=self._ws_limits,
            )
        else:
            self._out += self._handshake.switch_bytes(tuple(_lower_headers(headers)))
            self._tunnel = Tunnel(
                Role.CLOUD, self.settings, now=now, manual_flow_control=self._manual
            )
        self._apply(Trigger.ACCEPTED)
        self._out += self._tunnel.data_to_send()
        probe = self.settings.probe()
        self._probe = Watchdog(probe, now) if probe is not None else None

    def refuse(
        self,
        status: int,
        headers: HeaderInput = (),
        body: bytes = b"",
        *,
        bearer_error: str | None = None,
    ) -> None:
        """Refuse the upgrade (e.g. 401, 403, 404, 503); close the connection after sending.

        ``bearer_error`` adds ``WWW-Authenticate: Bearer error="..."`` (UPL-R18).
        """
        if self._phase is not Phase.UPGRADING or self.request is None:
            raise LocalProtocolError("refuse() needs a pending upgrade request")
        hdrs = _lower_headers(headers)
        if bearer_error is not None:
            if not bearer_error.replace("_", "").isalnum():
                raise LocalProtocolError(f"invalid bearer error code {bearer_error!r}")
            hdrs.append((b"www-authenticate", f'Bearer error="{bearer_error}"'.encode()))
        self._out += self._handshake.refusal_bytes(
            status, tuple(hdrs), body, _REASONS.get(status, "").encode()
        )
        self._apply(Trigger.REFUSED)

    def send_request(
        self,
        method: str,
        path: str,
        headers: HeaderInput = (),
        body: bytes | None = None,
        *,
        authority: str | None = None,
        scheme: str = "https",  # UPL-R20: the uplink is TLS-protected
        protocol: str | None = None,
        end_stream: bool | None = None,
    ) -> int:
        """Open a stream with a request; returns its stream ID.

        ``body`` given: sent whole with ``content-length`` and the stream
        ends.  ``body`` None and ``end_stream`` False: stream the body with
        :meth:`send_data`.  ``protocol`` makes an RFC 8441 extended CONNECT.
        """
        tunnel = self._require_tunnel()
        if not method or not path:
            raise LocalProtocolError(f"method and path are required, got {method!r} {path!r}")
        sid = tunnel.new_stream_id()
        hdrs = [(b":method", _as_bytes(method)), (b":scheme", _as_bytes(scheme))]
        if protocol is not None:
            hdrs.append((b":protocol", _as_bytes(protocol)))
        hdrs.append((b":path", _as_bytes(path)))
        hdrs.append((b":authority", _as_bytes(authority or self.default_authority)))
        self._send_message(sid, hdrs, headers, body, end_stream)
        return sid

    def close(self, error_code: int = ErrorCode.NO_ERROR, reason: str | None = None) -> None:
        """GOAWAY: NO_ERROR lets responses in flight finish (``phase`` DRAINING)."""
        self._close_tunnel(error_code, reason)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` must run next; ``None`` when no timer is armed."""
        if self._phase is Phase.UPGRADING:
            return self._created + self.settings.liveness.handshake_timeout
        if self._phase in (Phase.HTTP2, Phase.DRAINING) and self._probe is not None:
            return self._probe.next_deadline()
        return None

    def handle_timeout(self, now: float) -> list[ev.Event]:
        """Run the timers due at ``now``: the handshake limit while upgrading, then the silence
        probe.
        """
        out: list[ev.Event] = []
        if (
            self._phase is Phase.UPGRADING
            and now - self._created >= self.settings.liveness.handshake_timeout
        ):
            if self.request is None:
                self._refuse_now(408, "upgrade request not complete in time", out)
            else:
                self._apply(Trigger.TIMEOUT)
                out.append(
                    ev.ConnectionTerminated(
                        0, None, by_peer=False, reason="application did not accept in time"
                    )
                )
        elif (
            self._phase in (Phase.HTTP2, Phase.DRAINING)
            and self._tunnel is not None
            and self._probe is not None
        ):
            due = self._probe.due(now)
            if due == "ping":  # the device is silent: ask it (a live one answers at once)
                self._tunnel.ping(now)
            elif due == "dead":  # no answer: a hung device, drop it (no GOAWAY to wait for)
                silence = now - self._probe.last_received
                reason = f"no traffic from the device for {self._probe.settings.dead_after:g} s"
                self._apply(Trigger.TIMEOUT)
                self._tunnel.closed = True
                out.append(ev.LinkLost(silence))
                for sid in self._tunnel.open_stream_ids():
                    out.append(ev.StreamReset(sid, ErrorCode.CANCEL, by_peer=False,
                                              reason=reason))
                out.append(ev.ConnectionTerminated(0, None, by_peer=False, reason=reason))
        return out

