"""The device agent's core: every decision both drivers make, with no I/O.

:class:`uplink62676.aio.DeviceAgent` and :class:`uplink62676.threaded.DeviceAgent`
only move bytes, time and tasks or threads.  What happens to those bytes is
decided here, once:

* :class:`UplinkKeeper` keeps one configured uplink: its ``(Status, Error)``
  (UPL-R27), the attempt count and the reconnect schedule (UPL-50).
* :class:`UplinkSession` is one connection attempt.  It wraps a
  :class:`~uplink62676.uplink.DeviceUplink` and takes inputs -- octets, a lost
  transport, a timer, a handler's answer, body octets consumed -- and returns
  :data:`Command` values for the driver to carry out (start a handler, feed it
  body, cancel it, wake a paused producer, publish a status, close the
  transport).  After every input and every command it carried out, the driver
  sends :meth:`~UplinkSession.data_to_send` and sleeps until
  :meth:`~UplinkSession.next_deadline`; that is what keeps the PINGs of UPL-45..49
  on time without polling.

Protocol events are logged here (logger ``uplink62676.device``), so both
drivers log the same lines.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

import attrs

from . import events as ev
from .errors import LocalProtocolError, TransportError
from .handshake import RemoteAddress
from .liveness import ReconnectSchedule
from .settings import DeviceSettings
from .status import Status as UplinkStatus
from .tunnel import ErrorCode
from .uplink import DeviceUplink, HeaderInput, Phase

__all__ = [
    "AgentBase",
    "CancelHandler",
    "CloseTransport",
    "Command",
    "EndBody",
    "FeedBody",
    "PingAnswered",
    "RequestHead",
    "ResponseLike",
    "StartHandler",
    "UplinkKeeper",
    "UplinkSession",
    "UplinkSpecLike",
    "Wake",
    "closed_before_upgrade",
    "default_schedule",
    "header_value",
]

class _DeviceLog:
    """The ``uplink62676.device`` logger, looked up on first use.

    ``logging`` imports ``threading``; the sans-I/O package must import neither
    (``import uplink62676`` stays free of them), while the drivers that run this
    core have both loaded anyway.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("uplink62676.device"), name)


log = _DeviceLog()

#: What a handler that raised answers (before any of its response was sent).
FAILED_STATUS = 500
FAILED_HEADERS = (("content-type", "text/plain"),)
FAILED_BODY = b"handler failed\n"

#: TLS 1.3 servers judge the client certificate after the client's handshake
#: is done; a refusal then shows up as a silent close (asyncio servers send no alert).
_SILENT_CLOSE = ("TLS: cloud closed the connection after the handshake "
                 "(client certificate missing or not accepted)")


class UplinkSpecLike(Protocol):
    """What the core reads of an uplink spec (:class:`uplink62676.io.common.UplinkSpec`)."""

    @property
    def remote_address(self) -> str:
        """The cloud address, also the uplink's key."""
    @property
    def address(self) -> RemoteAddress:
        """The parsed ``remote_address``."""
    @property
    def insecure_plaintext(self) -> bool:
        """True to allow a plaintext ``http``/``ws`` remote (tests only)."""
    @property
    def user_level(self) -> tuple[str, ...]:
        """The UserLevel given to tunneled requests (UPL-41)."""
    def token(self) -> str | None:
        """The access token for the next attempt, or ``None`` in mTLS mode."""


class ResponseLike(Protocol):
    """What the core reads of a handler's answer (:class:`uplink62676.io.common.Response`)."""

    @property
    def status(self) -> int:
        """HTTP status code."""
    @property
    def headers(self) -> HeaderInput:
        """Response headers as ``(name, value)`` pairs."""
    @property
    def body(self) -> object:
        """The body: bytes, or an (async) iterable of chunks for a streamed answer."""


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """First value of header ``name`` (lower-case bytes) or None."""
    for k, v in headers:
        if k == name:
            return v
    return None


def closed_before_upgrade(tls: bool) -> str:
    """Why the uplink failed when the cloud closed before answering the upgrade."""
    return _SILENT_CLOSE if tls else "connection closed by the cloud before answering the upgrade"


def default_schedule(identity: str) -> ReconnectSchedule:
    """The reconnect schedule of one uplink, seeded by device and uplink (UPL-50)."""
    return ReconnectSchedule(identity=identity)


# --- commands -------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class StartHandler:
    """The cloud sent a request: run the application handler for it (UPL-4, UPL-41)."""

    request: ev.RequestReceived
    user_level: tuple[str, ...]
    remote_address: str

    @property
    def stream_id(self) -> int:
        """The uplink stream the request arrived on."""
        return self.request.stream_id


@attrs.frozen(slots=True)
class FeedBody:
    """Request body octets for the handler; report them with ``consumed`` once read."""

    stream_id: int
    data: bytes = attrs.field(repr=lambda d: f"<{len(d)} octets>")
    flow_controlled_length: int


@attrs.frozen(slots=True)
class EndBody:
    """The request body is complete."""

    stream_id: int


@attrs.frozen(slots=True)
class CancelHandler:
    """The stream is gone (reset by the cloud or by us, or the uplink ended): stop its handler."""

    stream_id: int
    code: int
    by_peer: bool


@attrs.frozen(slots=True)
class Wake:
    """A paused producer may go on: the stream's queue fell to ``high_water`` or it ended."""

    stream_id: int


@attrs.frozen(slots=True)
class PingAnswered:
    """A PING asked for by :meth:`UplinkSession.ping` was answered (``round_trip`` None:
    the uplink ended first)."""

    waiter: int
    payload: bytes
    round_trip: float | None


@attrs.frozen(slots=True)
class CloseTransport:
    """The attempt is over: send what is queued (unless ``abort``) and close the transport."""

    abort: bool


#: What the core asks a driver to do.  A status change is an
#: :class:`uplink62676.events.StatusChanged` (already de-duplicated per uplink).
Command = (StartHandler | FeedBody | EndBody | CancelHandler | Wake | PingAnswered
           | CloseTransport | ev.StatusChanged)


# --- the request a handler gets ---------------------------------------------------------------


class RequestHead:
    """A tunneled request's head and the body octets that arrived for it (UPL-4, UPL-41).

    Drivers subclass it (their ``TunneledRequest``) and add the waiting;
    :meth:`_take` says what a read returns now.
    """

    def __init__(self, start: StartHandler) -> None:
        event = start.request
        self.stream_id = event.stream_id
        self.method = event.method
        self.path = event.path
        self.scheme = event.scheme
        self.authority = event.authority
        self.headers = event.headers
        self.protocol = event.protocol
        self.content_length = event.content_length
        self.user_level = start.user_level
        self.remote_address = start.remote_address
        self.ended = False
        self.reset_code: int | None = None
        self._chunks: collections.deque[tuple[bytes, int]] = collections.deque()

    def __repr__(self) -> str:
        return (f"TunneledRequest({self.method} {self.path} stream={self.stream_id} "
                f"user_level={' '.join(self.user_level)})")

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive name), decoded as Latin-1; ``None`` when
        absent.
        """
        value = header_value(self.headers, name.lower().encode())
        return value.decode("latin-1") if value is not None else None

    @property
    def at_eof(self) -> bool:
        """True when the body is finished and every chunk was read."""
        return self.ended and not self._chunks

    def _ready(self) -> bool:
        """A read would not wait."""
        return bool(self._chunks) or self.ended or self.reset_code is not None

    def _take(self) -> tuple[bytes, int] | None:
        """``(chunk, flow-controlled length)``; ``(b"", 0)`` at the end; None: wait."""
        if self._chunks:
            return self._chunks.popleft()
        if self.reset_code is not None:
            raise TransportError(f"stream {self.stream_id} was reset ({self.reset_code})")
        return (b"", 0) if self.ended else None

    def _apply(self, command: FeedBody | EndBody | CancelHandler) -> None:
        """Take a body command of the core."""
        if isinstance(command, FeedBody):
            self._chunks.append((command.data, command.flow_controlled_length))
        elif isinstance(command, EndBody):
            self.ended = True
        elif self.reset_code is None:
            self.reset_code = command.code


# --- one uplink, across attempts ----------------------------------------------------------------


class UplinkKeeper:
    """Status, Error, attempts and reconnect schedule of one uplink (UPL-50, UPL-R27)."""

    def __init__(self, identity: str, spec: UplinkSpecLike,
                 schedule_factory: Callable[[str], ReconnectSchedule]) -> None:
        self.spec = spec
        self.schedule = schedule_factory(f"{identity}|{spec.remote_address}")
        self.status = UplinkStatus.OFFLINE
        self.error: str | None = None
        self.attempts = 0

    def report(self, status: UplinkStatus, error: str | None) -> list[Command]:
        """Take a new ``(Status, Error)``; a command to publish it when it changed."""
        if status is self.status and error == self.error:
            return []
        self.status, self.error = status, error
        log.info("uplink %s: status %s%s", self.spec.remote_address, status.value,
                 f" ({error})" if error else "")
        return [ev.StatusChanged(status, error)]

    def next_wait(self, first: bool) -> float:
        """Seconds to wait before the next attempt (none before the first, UPL-50)."""
        if first:
            return 0.0
        wait = self.schedule.next_wait()
        log.info("uplink %s: reconnecting in %.2f s (attempt %d)", self.spec.remote_address,
                 wait, self.schedule.attempt)
        return wait

    def begin(self, settings: DeviceSettings, now: float, entropy: Callable[[int], bytes],
              high_water: int) -> tuple[UplinkSession | None, list[Command]]:
        """A started session for the next attempt (None without an access token)."""
        self.attempts += 1
        spec = self.spec
        try:
            token = spec.token()
        except Exception as exc:
            return None, self.report(UplinkStatus.OFFLINE,
                                     f"no access token: {exc.__class__.__name__}")
        uplink = DeviceUplink(spec.address, settings=settings, access_token=token,
                              manual_flow_control=True, allow_plaintext=spec.insecure_plaintext,
                              entropy=entropy)  # WebSocket key and masks (UPL-21, UPL-27)
        session = UplinkSession(self, uplink, high_water=high_water)
        return session, session.start(now)

    def connect_failed(self, reason: str) -> list[Command]:
        """TCP, TLS or ALPN failed before the upgrade could be sent."""
        log.warning("uplink %s: %s", self.spec.remote_address, reason)
        return self.report(UplinkStatus.OFFLINE, reason)

    def crashed(self, exc: BaseException) -> list[Command]:
        """The driver's attempt raised (a bug): Offline, and the agent goes on."""
        log.error("uplink %s: attempt failed", self.spec.remote_address, exc_info=exc)
        return self.report(UplinkStatus.OFFLINE, f"internal error: {exc.__class__.__name__}")

    def attempt_ended(self, session: UplinkSession | None, now: float) -> list[Command]:
        """After an attempt (its connection closed): Offline with its reason; schedule on."""
        out: list[Command] = []
        if session is not None and session.uplink.status is not UplinkStatus.OFFLINE:
            out = self.report(UplinkStatus.OFFLINE, session.uplink.error or "connection closed")
        self.schedule.disconnected(now)
        return out


# --- one attempt -----------------------------------------------------------------------------


@attrs.define(slots=True)
class _Stream:
    """The core's view of one request being served."""

    ended: bool = False  # the cloud finished the request (END_STREAM)
    answered: bool = False  # the response head went out
    unacked: int = 0  # body octets fed to the handler and not yet consumed


class UplinkSession:
    """One connection attempt of one uplink: a :class:`DeviceUplink` plus request bookkeeping.

    Every input returns the commands the driver carries out.  Stream rules
    kept here: a request answered before the cloud finished sending it is
    reset with NO_ERROR once the answer is out (RFC 9113 section 8.1); a
    response that cannot be finished is reset with INTERNAL_ERROR; a handler
    that raises before answering gets ``500 handler failed``; body octets are
    acknowledged to the cloud only as the handler consumes them (or when its
    stream ends), and a streamed response may grow only up to ``high_water``
    queued octets (:meth:`may_send_more`).
    """

    def __init__(self, keeper: UplinkKeeper, uplink: DeviceUplink, *,
                 high_water: int = 64 * 1024) -> None:
        self.keeper = keeper
        self.uplink = uplink
        self.high_water = high_water
        self.finished = False
        self._tls = not keeper.spec.insecure_plaintext
        self._received = 0
        self._streams: dict[int, _Stream] = {}
        self._reset_when_sent: set[int] = set()
        self._paused: set[int] = set()
        self._pings: dict[bytes, int] = {}
        self._next_waiter = 0

    def __repr__(self) -> str:
        return (f"UplinkSession({self.keeper.spec.remote_address} {self.uplink.phase.value} "
                f"streams={sorted(self._streams)})")

    # --- outputs ------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Drain the octets to write to the cloud."""
        return self.uplink.data_to_send()

    def next_deadline(self) -> float | None:
        """When to call :meth:`handle_timeout` (None: no timer)."""
        return None if self.finished else self.uplink.next_deadline()

    def is_live(self, stream_id: int) -> bool:
        """The stream's handler is still wanted."""
        return stream_id in self._streams

    def wants_body(self, stream_id: int) -> bool:
        """A streamed response's next chunk is welcome (head sent, stream alive)."""
        stream = self._streams.get(stream_id)
        return stream is not None and stream.answered

    def may_send_more(self, stream_id: int) -> bool:
        """Back-pressure: False while the stream's queue is above ``high_water``
        (a :class:`Wake` follows when that changes).  True for a gone stream."""
        if stream_id not in self._streams or self.uplink.queued(stream_id) <= self.high_water:
            return True
        self._paused.add(stream_id)
        return False

    # --- inputs from the transport ------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        """Begin the attempt: the upgrade request is queued (UPL-9), the timers run."""
        return self._translate(self.uplink.start(now), now, abort=False)

    def receive_data(self, data: bytes, now: float) -> list[Command]:
        """Octets from the cloud; ``b""`` when it closed the connection."""
        if self.finished:
            return []
        if not data and not self._received and self.uplink.phase is Phase.UPGRADING:
            return self.connection_lost(now, closed_before_upgrade(self._tls))
        self._received += len(data)
        return self._translate(self.uplink.receive_data(data, now), now, abort=False)

    def connection_lost(self, now: float, reason: str = "connection lost") -> list[Command]:
        """The transport failed or was closed; the attempt is over."""
        if self.finished:
            return []
        return self._translate(self.uplink.connection_lost(now, reason), now, abort=False)

    def handle_timeout(self, now: float) -> list[Command]:
        """The deadline of :meth:`next_deadline` passed (PINGs, LinkLost, handshake bound)."""
        if self.finished:
            return []
        return self._translate(self.uplink.handle_timeout(now), now, abort=True)

    def close(self) -> list[Command]:
        """Orderly close: GOAWAY NO_ERROR when connected (UPL-R24)."""
        if self.finished:
            return []
        if self.uplink.phase is Phase.HTTP2:
            self.uplink.close()
        return self._after(self.keeper.report(self.uplink.status, self.uplink.error), abort=False)

    def ping(self, now: float) -> int:
        """Queue a PING; its :class:`PingAnswered` carries the returned waiter id."""
        if self.finished or self.uplink.status is not UplinkStatus.CONNECTED:
            raise TransportError(f"uplink {self.keeper.spec.remote_address!r} is not connected")
        try:
            payload = self.uplink.ping(now)
        except LocalProtocolError as exc:
            raise TransportError(f"cannot PING: {exc}") from None
        self._next_waiter += 1
        self._pings[payload] = self._next_waiter
        return self._next_waiter

    # --- inputs from the handlers -------------------------------------------------------------

    def response_ready(self, stream_id: int, response: ResponseLike) -> list[Command]:
        """The handler answered: a bytes-like body goes whole, anything else is streamed
        (:meth:`chunk_ready` ... :meth:`response_done`)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.answered:
            return []
        body = response.body
        whole = bytes(body) if isinstance(body, bytes | bytearray | memoryview) else None
        try:
            self.uplink.send_response(stream_id, response.status, response.headers, whole)
        except LocalProtocolError as exc:
            return self._abort(stream_id, str(exc))
        stream.answered = True
        return self._complete(stream_id) if whole is not None else []

    def chunk_ready(self, stream_id: int, data: bytes) -> list[Command]:
        """One chunk of a streamed response."""
        if not self.wants_body(stream_id):
            return []
        if data:
            try:
                self.uplink.send_data(stream_id, bytes(data))
            except LocalProtocolError as exc:
                return self._abort(stream_id, str(exc))
        return []

    def response_done(self, stream_id: int) -> list[Command]:
        """The streamed response's body is complete."""
        if not self.wants_body(stream_id):
            return []
        try:
            self.uplink.end_stream(stream_id)
        except LocalProtocolError as exc:
            return self._abort(stream_id, str(exc))
        return self._complete(stream_id)

    def handler_failed(self, stream_id: int, exc: BaseException | None = None) -> list[Command]:
        """The handler (or its body) raised: ``500`` if nothing was sent yet, else a reset."""
        stream = self._streams.get(stream_id)
        if stream is None:
            log.debug("stream %d: handler ended after its stream: %r", stream_id, exc)
            return []
        log.error("handler failed on stream %d", stream_id, exc_info=exc)
        if stream.answered:
            return self._abort(stream_id, "response body failed")
        return self.response_ready(stream_id, _Failed())

    def abort(self, stream_id: int) -> list[Command]:
        """Give up a stream (its handler was cancelled): RST_STREAM INTERNAL_ERROR."""
        return self._abort(stream_id, "abandoned") if stream_id in self._streams else []

    def consumed(self, stream_id: int, size: int) -> list[Command]:
        """The handler read ``size`` flow-controlled octets: reopen the cloud's window."""
        stream = self._streams.get(stream_id)
        if stream is not None and size > 0:
            size = min(size, stream.unacked)
            stream.unacked -= size
            self._acknowledge(stream_id, size)
        return []

    # --- the rules --------------------------------------------------------------------------

    def _acknowledge(self, stream_id: int, size: int) -> None:
        if size and self.uplink.phase in (Phase.HTTP2, Phase.DRAINING):
            with contextlib.suppress(LocalProtocolError):
                self.uplink.acknowledge_data(stream_id, size)

    def _reset(self, stream_id: int, code: int) -> None:
        if self.uplink.phase in (Phase.HTTP2, Phase.DRAINING):
            with contextlib.suppress(LocalProtocolError):
                self.uplink.reset_stream(stream_id, code)

    def _drop(self, stream_id: int) -> _Stream | None:
        """Forget a stream; octets the handler never consumed are acknowledged now."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            self._acknowledge(stream_id, stream.unacked)
        return stream

    def _complete(self, stream_id: int) -> list[Command]:
        stream = self._drop(stream_id)
        if stream is not None and not stream.ended:
            # Answered before the whole request arrived: stop the upload (RFC 9113 8.1),
            # once the answer has left (a reset would discard what is still queued).
            if self.uplink.queued(stream_id):
                self._reset_when_sent.add(stream_id)
            else:
                self._reset(stream_id, ErrorCode.NO_ERROR)
        return self._after([], abort=False)

    def _abort(self, stream_id: int, reason: str) -> list[Command]:
        log.debug("stream %d abandoned: %s", stream_id, reason)
        if self._drop(stream_id) is not None:
            self._reset(stream_id, ErrorCode.INTERNAL_ERROR)
        return self._after([], abort=False)

    def _translate(self, events: Iterable[ev.Event], now: float, *,
                   abort: bool) -> list[Command]:
        """The uplink's events as commands (and log lines)."""
        out: list[Command] = []
        address = self.keeper.spec.remote_address
        for e in events:
            if isinstance(e, ev.RequestReceived):
                self._streams[e.stream_id] = _Stream()
                out.append(StartHandler(e, self.keeper.spec.user_level, address))
            elif isinstance(e, ev.DataReceived):
                stream = self._streams.get(e.stream_id)
                if stream is None:  # its handler is done: nobody will read it
                    self._acknowledge(e.stream_id, e.flow_controlled_length)
                else:
                    stream.unacked += e.flow_controlled_length
                    out.append(FeedBody(e.stream_id, e.data, e.flow_controlled_length))
            elif isinstance(e, ev.StreamEnded):
                self._reset_when_sent.discard(e.stream_id)
                if (stream := self._streams.get(e.stream_id)) is not None:
                    stream.ended = True
                    out.append(EndBody(e.stream_id))
            elif isinstance(e, ev.StreamReset):
                self._reset_when_sent.discard(e.stream_id)
                log.debug("uplink %s: stream %d reset (%s)", address, e.stream_id,
                          e.reason or e.error_code)
                if self._drop(e.stream_id) is not None:
                    out.append(CancelHandler(e.stream_id, e.error_code, e.by_peer))
            elif isinstance(e, ev.StreamWritable):
                if e.stream_id in self._reset_when_sent and not self.uplink.queued(e.stream_id):
                    self._reset_when_sent.discard(e.stream_id)
                    self._reset(e.stream_id, ErrorCode.NO_ERROR)
            elif isinstance(e, ev.StatusChanged):
                out += self.keeper.report(e.status, e.error)
            elif isinstance(e, ev.PingAcknowledged):
                log.debug("uplink %s: PING answered in %s s", address, e.round_trip)
                if (waiter := self._pings.pop(e.payload, None)) is not None:
                    out.append(PingAnswered(waiter, e.payload, e.round_trip or 0.0))
            else:
                self._note(e, now)
        return self._after(out, abort=abort)

    def _note(self, e: ev.Event, now: float) -> None:
        """Events that change nothing for the driver: schedule and log lines."""
        address = self.keeper.spec.remote_address
        if isinstance(e, ev.Connected):
            self.keeper.schedule.connected(now)
            log.info("uplink %s: connected (cloud preface valid)", address)
        elif isinstance(e, ev.UpgradeAccepted):
            log.info("uplink %s: 101 Switching Protocols, roles swapped (device = HTTP/2 server)",
                     address)
        elif isinstance(e, ev.UpgradeRefused):
            log.warning("uplink %s: upgrade refused: %d %s%s", address, e.status_code, e.reason,
                        f" (Bearer error={e.bearer_error})" if e.bearer_error else "")
        elif isinstance(e, ev.ConnectionTerminated):
            log.info("uplink %s: HTTP/2 connection ended (code %d%s)", address, e.error_code,
                     f", {e.reason}" if e.reason else "")
        elif isinstance(e, ev.LinkLost):
            log.warning("uplink %s: nothing received for %.1f s, closing", address, e.silence)

    def _after(self, out: list[Command], *, abort: bool) -> list[Command]:
        """Common tail of every input: the end of the attempt, and producers to wake."""
        if not self.finished and self.uplink.phase is Phase.CLOSED:
            self.finished = True
            for stream_id in list(self._streams):
                out.append(CancelHandler(stream_id, ErrorCode.CANCEL, False))
            self._streams.clear()
            self._reset_when_sent.clear()
            out += [PingAnswered(w, p, None) for p, w in self._pings.items()]
            self._pings.clear()
            out.append(CloseTransport(abort))
        if self._paused:
            ready = {sid for sid in self._paused if self.may_send_more(sid)}
            self._paused -= ready
            out += [Wake(sid) for sid in sorted(ready)]
        return out


@attrs.frozen(slots=True)
class _Failed:
    """The answer to a request whose handler raised."""

    status: int = FAILED_STATUS
    headers: HeaderInput = FAILED_HEADERS
    body: bytes = FAILED_BODY


# --- the agent's table of uplinks -------------------------------------------------------------

H = TypeVar("H")
S = TypeVar("S", bound=UplinkSpecLike)


class _HasKeeper(Protocol):
    keeper: UplinkKeeper


R = TypeVar("R", bound=_HasKeeper)


class AgentBase(Generic[H, S, R]):
    """Configuration and the table of uplinks, shared by both ``DeviceAgent`` drivers.

    ``handler`` serves tunneled requests.  ``identity`` (serial number,
    device ID) seeds each uplink's reconnect schedule (UPL-50).  ``clock``
    defaults to the driver's monotonic clock; a test may pass another and
    call ``poke()`` after moving it.  ``high_water``: queued octets per
    streamed response before its producer is paused.  ``on_status(address,
    status, error)`` is told every change (for GetUplinks' Status/Error).
    """

    def __init__(
        self,
        handler: H,
        *,
        identity: str,
        uplinks: Iterable[S] = (),
        settings: DeviceSettings | None = None,
        schedule_factory: Callable[[str], ReconnectSchedule] = default_schedule,
        clock: Callable[[], float] | None = None,
        high_water: int = 64 * 1024,
        on_status: Callable[[str, UplinkStatus, str | None], None] | None = None,
    ) -> None:
        self.handler = handler
        self.identity = identity
        self.settings = settings or DeviceSettings()
        self.schedule_factory = schedule_factory
        self._clock = clock
        self.high_water = high_water
        self.on_status = on_status
        self._specs: dict[str, S] = {s.remote_address: s for s in uplinks}
        self._runners: dict[str, R] = {}
        self._running = False
        self._setup()

    def _setup(self) -> None:
        """The driver's own state (locks, events), made at the end of ``__init__``."""

    def new_keeper(self, spec: S) -> UplinkKeeper:
        """The bookkeeping (status, attempts, reconnect schedule) for a newly configured uplink."""
        return UplinkKeeper(self.identity, spec, self.schedule_factory)

    @property
    def uplinks(self) -> tuple[S, ...]:
        """The configured uplinks."""
        return tuple(self._specs.values())

    def status(self, remote_address: str) -> tuple[UplinkStatus, str | None]:
        """``(Status, Error)`` of an uplink (UPL-R27); usable as a StatusProvider."""
        runner = self._runners.get(remote_address)
        if runner is None:
            return UplinkStatus.OFFLINE, None
        return runner.keeper.status, runner.keeper.error

    def attempts(self, remote_address: str) -> int:
        """Connection attempts made for an uplink since it was (re)started."""
        runner = self._runners.get(remote_address)
        return runner.keeper.attempts if runner is not None else 0

    def _changes(self, specs: Iterable[S]) -> tuple[list[str], list[S]]:
        """For ``set_uplinks``: addresses to remove, specs to add (new or changed)."""
        wanted = {s.remote_address: s for s in specs}
        gone = [a for a in self._specs if a not in wanted]
        added = [s for s in wanted.values()
                 if self._specs.get(s.remote_address) != s or not self._running]
        return gone, added

    def _published(self, keeper: UplinkKeeper, commands: Iterable[Command]) -> bool:
        """Tell ``on_status`` of the status changes among ``commands``; True if any."""
        changed = False
        for cmd in commands:
            if isinstance(cmd, ev.StatusChanged):
                changed = True
                if self.on_status is not None:
                    self.on_status(keeper.spec.remote_address, cmd.status, cmd.error)
        return changed
