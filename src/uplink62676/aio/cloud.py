"""asyncio cloud end: accept uplinks, authenticate them, send requests through them.

:class:`CloudServer` is a TLS server (UPL-30).  Each accepted connection is
a small ``asyncio.Protocol`` around a :class:`~uplink62676.uplink.CloudUplink`
(no task per idle uplink, so thousands stay cheap).  This module is a driver:
it moves bytes, time and awaits.  Who a device is and whether it gets an
uplink (mTLS CN, bearer token, anonymous, the 401 challenge: uplink.md
section 6) is decided by :class:`~uplink62676.cloudauth.Authenticator`; which
uplink serves a device ID by :class:`~uplink62676.deviceregistry.DeviceRegistry`.
The adapter only runs the token validator (sync or async) when the policy asks.
:meth:`CloudServer.request` and :meth:`CloudServer.open_stream` send HTTP
requests through a device's uplink with flow control both ways.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import ssl
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Protocol

import attrs

from .. import events as ev
from ..cloudauth import (
    PROTOCOL_NATIVE,
    PROTOCOL_WEBSOCKET,
    Accept,
    Authenticator,
    Refuse,
    UpgradeContext,
    ValidateToken,
    anonymous_by_default,
)
from ..deviceregistry import DeviceInfo, DeviceRegistry, InMemoryDeviceRegistry
from ..errors import InvalidTokenError, LocalProtocolError, TransportError
from ..io.observe import Observer, RequestDone, Transferred
from ..io.tls import peer_common_name
from ..settings import CloudSettings
from ..tunnel import ErrorCode
from ..uplink import CloudUplink, Phase
from ._tlsshim import TlsServerShim

__all__ = [
    "PROTOCOL_NATIVE",
    "PROTOCOL_WEBSOCKET",
    "CloudResponse",
    "CloudServer",
    "DeviceInfo",
    "DeviceUnavailable",
    "RemoteDevices",
    "ResponseStream",
    "TokenValidator",
    "UpgradeContext",
]

log = logging.getLogger("uplink62676.cloud")

#: ``token -> device identity`` (None or InvalidTokenError: refused); may be async.
TokenValidator = Callable[[str], "str | Awaitable[str | None] | None"]


class DeviceUnavailable(TransportError):
    """The device is held by a node that cannot be reached now (cluster mode): retry
    after ``retry_after`` seconds (the front door answers 503 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RemoteDevices(Protocol):
    """The devices other cluster nodes hold (:class:`uplink62676.aio.cluster.ClusterNode`).

    :meth:`route` opens (or reuses) the pooled connection to the holding node and
    returns it with the request's path and headers as that node's internal front
    door wants them; it raises :class:`KeyError` for a device no node holds and
    :class:`DeviceUnavailable` when the holder cannot be reached.  ``timeout``: how
    long the caller waits for the head (None: no limit), so the holder waits as long.
    """

    def device(self, device_id: str) -> DeviceInfo | None:
        """A device another node holds, or None."""

    def devices(self, local: list[DeviceInfo]) -> list[DeviceInfo]:
        """``local`` plus the devices the other nodes hold."""

    async def route(self, device_id: str, path: str,
                    headers: list[tuple[str | bytes, str | bytes]],
                    scheme: str, *, timeout: float | None = 120.0,
                    ) -> tuple[_CloudConnection, str, list[tuple[str | bytes, str | bytes]]]:
        """The connection to the holder and the request as its internal front door wants it."""


@attrs.frozen(slots=True)
class CloudResponse:
    """A complete answer of a device."""

    status: int
    headers: ev.Headers
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} octets>")

    def header(self, name: str) -> str | None:
        """First value of a response header (case-insensitive name), or ``None``."""
        for k, v in self.headers:
            if k == name.lower().encode():
                return v.decode("latin-1")
        return None


class _Stream:
    __slots__ = ("chunks", "ended", "error", "head", "more", "writable")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.head: asyncio.Future[ev.ResponseReceived] = loop.create_future()
        self.chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self.more = asyncio.Event()
        self.writable = asyncio.Event()
        self.ended = False
        self.error: str | None = None

    def fail(self, reason: str) -> None:
        if self.error is None and not self.ended:
            self.error = reason
        if not self.head.done():
            self.head.set_exception(TransportError(reason))
        self.more.set()
        self.writable.set()


class ResponseStream:
    """A device's answer whose body is read as it arrives (flow-controlled).

    Each :meth:`read` reopens the device's window by what it returns, so a
    slow consumer slows the device instead of filling memory.
    """

    def __init__(self, conn: _CloudConnection, stream_id: int, head: ev.ResponseReceived,
                 state: _Stream, pump: asyncio.Task[None] | None) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self.status = head.status_code
        self.headers = head.headers
        self.content_length = head.content_length
        self._state = state
        self._pump = pump

    async def read(self) -> bytes:
        """Next body chunk; ``b""`` at the end; :class:`TransportError` if the device went away."""
        state = self._state
        while not state.chunks:
            if state.error is not None:
                raise TransportError(state.error)
            if state.ended:
                return b""
            state.more.clear()
            await state.more.wait()
        data, fcl = state.chunks.popleft()
        self._conn.acknowledge(self.stream_id, fcl)
        return data

    @property
    def at_end(self) -> bool:
        """The device ended the body and every chunk was read (the next :meth:`read` is ``b""``)."""
        state = self._state
        return state.ended and not state.chunks and state.error is None

    async def body(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """Read the rest of the body; beyond ``limit`` octets the stream is cancelled and an error
        raised.
        """
        out = bytearray()
        while chunk := await self.read():
            out += chunk
            if len(out) > limit:
                self.cancel()
                raise TransportError(f"response body larger than {limit} octets")
        return bytes(out)

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    def cancel(self) -> None:
        """Stop the exchange (RST_STREAM CANCEL)."""
        if self._pump is not None:
            self._pump.cancel()
        self._conn.reset(self.stream_id)

    async def __aenter__(self) -> ResponseStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self._state.ended or self._state.chunks:
            self.cancel()


class _CloudConnection(asyncio.Protocol):
    """One accepted uplink; cheap while idle (no task, one timer handle at most)."""

    __slots__ = ("accepted", "auth_task", "can_write", "closed", "flush_pending", "info",
                 "loop", "peer", "pings", "reserved", "server", "slot_waiters", "streams",
                 "timer", "timer_at", "transport", "upgrade_path", "uplink")

    def __init__(self, server: CloudServer) -> None:
        self.server = server
        self.loop = server._loop
        self.uplink = CloudUplink(settings=server.settings, now=self.loop.time(),
                                  manual_flow_control=True)
        self.transport: asyncio.Transport | TlsServerShim | None = None
        self.peer = "?"
        self.info: DeviceInfo | None = None
        self.accepted: Accept | None = None
        self.upgrade_path = "/"
        self.auth_task: asyncio.Task[None] | None = None
        self.streams: dict[int, _Stream] = {}
        self.pings: dict[bytes, tuple[float, asyncio.Future[float]]] | None = None  # lazily
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.can_write: asyncio.Event | None = None
        self.slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.flush_pending = False
        self.reserved = 0  # streams handed to woken requests that have not opened them yet
        self.closed = False

    def wake_slot_waiters(self) -> None:
        """Hand free streams to queued requests, first come first served."""
        if not self.slot_waiters:
            return
        free = len(self.slot_waiters) if self.closed else self.uplink.stream_slots - self.reserved
        while self.slot_waiters and free > 0:
            waiter = self.slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self.reserved += 1
                free -= 1

    # --- transport ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport | TlsServerShim)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.server._connections.add(self)
        self._handle(self.uplink.start(self.loop.time()))
        self._arm()

    def data_received(self, data: bytes) -> None:
        if (observe := self.server.observer) is not None:
            observe(Transferred("in", len(data)))
        self._handle(self.uplink.receive_data(data, self.loop.time()))
        self.flush()

    def eof_received(self) -> bool | None:
        self._handle(self.uplink.receive_data(b"", self.loop.time()))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server._connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        reason = f"device {self.info.device_id if self.info else self.peer} went away"
        for state in self.streams.values():
            state.fail(reason)
        self.streams.clear()
        if self.uplink.phase is not Phase.CLOSED:  # the machine learns it too (same lifecycle)
            self._handle(self.uplink.connection_lost(self.loop.time(), reason))
        if self.pings:
            for _, pong in self.pings.values():
                if not pong.done():
                    pong.set_exception(TransportError(reason))
            self.pings.clear()
        if self.info is not None:
            self.server._unregister(self)
        if self.can_write is not None:
            self.can_write.set()
        self.wake_slot_waiters()

    def pause_writing(self) -> None:
        self.can_write = asyncio.Event()

    def resume_writing(self) -> None:
        if self.can_write is not None:
            self.can_write.set()
            self.can_write = None

    def flush(self) -> None:
        """Send what the state machine queued: once per loop turn, so many small
        commands become one write (one TLS record, one syscall)."""
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self.flush_pending = False
        data = self.uplink.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            if (observe := self.server.observer) is not None:
                observe(Transferred("out", len(data)))
        if self.uplink.phase is Phase.CLOSED and self.transport is not None:
            self.transport.close()
        self._arm()

    def _arm(self) -> None:
        deadline = self.uplink.next_deadline()
        if deadline == self.timer_at:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.timer_at = deadline
        if deadline is not None and not self.closed:
            self.timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self.timer_at = None
        self._handle(self.uplink.handle_timeout(self.loop.time()))
        self.flush()

    # --- events -------------------------------------------------------------------------------

    def _handle(self, events: Iterable[ev.Event]) -> None:
        handlers = _HANDLERS
        observe = self.server.observer
        for e in events:
            if observe is not None:
                observe(e)
            handler = handlers.get(type(e))
            if handler is not None:
                handler(self, e)

    def _on_data(self, e: ev.DataReceived) -> None:
        s = self.streams.get(e.stream_id)
        if s is None:
            self.acknowledge(e.stream_id, e.flow_controlled_length)
        else:
            s.chunks.append((e.data, e.flow_controlled_length))
            s.more.set()

    def _on_response(self, e: ev.ResponseReceived) -> None:
        if (s := self.streams.get(e.stream_id)) is not None and not s.head.done():
            s.head.set_result(e)

    def _on_end(self, e: ev.StreamEnded | ev.TrailersReceived) -> None:
        self.wake_slot_waiters()
        if (s := self.streams.pop(e.stream_id, None)) is not None:
            s.ended = True
            s.more.set()
            if not s.head.done():
                s.fail("response ended before its head")

    def _on_reset(self, e: ev.StreamReset) -> None:
        self.wake_slot_waiters()
        if (s := self.streams.pop(e.stream_id, None)) is not None:
            s.fail(f"device reset the stream (code {e.error_code})" if e.by_peer or not e.reason
                   else e.reason)

    def _on_writable(self, e: ev.StreamWritable) -> None:
        if (s := self.streams.get(e.stream_id)) is not None:
            s.writable.set()

    def _on_pong(self, e: ev.PingAcknowledged) -> None:
        if self.pings and (entry := self.pings.pop(e.payload, None)) is not None:
            started, pong = entry
            if not pong.done():
                rtt = e.round_trip if e.round_trip is not None else self.loop.time() - started
                pong.set_result(rtt)

    def _on_connected(self, e: ev.Connected) -> None:
        assert self.accepted is not None
        accepted = self.accepted
        self.info = DeviceInfo(accepted.identity, time.time(), self.peer, accepted.method.value,
                               accepted.protocol, self.upgrade_path)
        self.server._register(self)

    def _on_refused(self, e: ev.UpgradeRefused) -> None:
        log.warning("uplink from %s refused: %d %s", self.peer, e.status_code, e.reason)

    def _on_lost(self, e: ev.LinkLost) -> None:
        log.warning("device %s sent nothing for %.1f s and answered no PING: dropping its uplink",
                    self.info.device_id if self.info else self.peer, e.silence)

    def _on_terminated(self, e: ev.ConnectionTerminated) -> None:
        log.info("uplink %s ended: %s", self.info.device_id if self.info else self.peer,
                 e.reason or f"code {e.error_code}")
        for state in self.streams.values():
            state.fail("uplink ended")
        self.streams.clear()

    # --- authentication: the policy decides, the driver runs the validator -----------------

    def _on_upgrade(self, request: ev.UpgradeRequested) -> None:
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        ctx = UpgradeContext(self.peer, request.target, request.host, request.headers,
                             peer_common_name(ssl_object), request.bearer_token,
                             request.websocket)
        self.upgrade_path = ctx.path or "/"
        policy = self.server.authenticator
        decision = policy.decide(ctx)
        if isinstance(decision, ValidateToken):
            validator = self.server.token_validator
            assert validator is not None
            try:
                result = validator(decision.token)
            except InvalidTokenError as exc:
                decision = policy.token_checked(ctx, None, str(exc))
            except Exception:
                log.exception("token validator failed for the upgrade from %s", self.peer)
                decision = policy.validator_failed(ctx)
            else:
                if inspect.isawaitable(result):
                    # A strong reference while it runs.
                    self.auth_task = asyncio.ensure_future(self._await_token(policy, ctx, result))
                    return
                decision = policy.token_checked(ctx, result)
        self._decided(decision)

    async def _await_token(self, policy: Authenticator, ctx: UpgradeContext,
                           pending: Awaitable[str | None]) -> None:
        try:
            identity = await pending
        except InvalidTokenError as exc:
            self._decided(policy.token_checked(ctx, None, str(exc)))
        except Exception:
            log.exception("token validator failed for the upgrade from %s", self.peer)
            self._decided(policy.validator_failed(ctx))
        else:
            self._decided(policy.token_checked(ctx, identity))

    def _decided(self, decision: Accept | Refuse) -> None:
        if self.closed:
            return
        if isinstance(decision, Accept):
            self.accepted = decision
            log.info("upgrade from %s (%s, %s, device %s): 101, sending HTTP/2 preface",
                     self.peer, decision.protocol, decision.method.value, decision.identity)
            self.uplink.accept(self.loop.time())
        else:
            log.warning("upgrade from %s refused: %d %s", self.peer, decision.status,
                        decision.reason)
            if (observe := self.server.observer) is not None:  # the policy's own refusal
                observe(ev.UpgradeRefused(decision.status, decision.reason, (),
                                          bearer_error=decision.bearer_error))
            self.uplink.refuse(decision.status, decision.headers, decision.body,
                               bearer_error=decision.bearer_error)
        self.flush()

    # --- ping ---------------------------------------------------------------------------------

    async def ping(self, timeout: float) -> float:
        """PING the device; the event handling above resolves the answer."""
        started = self.loop.time()
        payload = self.uplink.ping(started)
        pong: asyncio.Future[float] = self.loop.create_future()
        if self.pings is None:
            self.pings = {}
        self.pings[payload] = (started, pong)
        self.flush()
        try:
            return await asyncio.wait_for(pong, timeout)
        finally:
            if self.pings is not None:
                self.pings.pop(payload, None)

    # --- requests -----------------------------------------------------------------------------

    def acknowledge(self, stream_id: int, size: int) -> None:
        if size and self.uplink.phase is Phase.HTTP2:
            with contextlib.suppress(LocalProtocolError):
                self.uplink.acknowledge_data(stream_id, size)
            self.flush()

    def reset(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        if self.uplink.phase is Phase.HTTP2:
            with contextlib.suppress(LocalProtocolError):
                self.uplink.reset_stream(stream_id, ErrorCode.CANCEL)
            self.flush()
        self.wake_slot_waiters()

    def goaway(self, reason: str) -> None:
        """GOAWAY NO_ERROR: no new streams; the ones in flight may finish (UPL-R24)."""
        if self.uplink.phase is Phase.HTTP2:
            with contextlib.suppress(LocalProtocolError):
                self.uplink.close(ErrorCode.NO_ERROR, reason)
        self._flush_now()

    def close(self, reason: str = "closed by the cloud") -> None:
        self.goaway(reason)
        if self.transport is not None:
            self.transport.close()

    async def _pump(self, stream_id: int, state: _Stream, body: AsyncIterable[bytes]) -> None:
        high = self.server.high_water
        try:
            async for chunk in body:
                if state.error is not None or self.closed:
                    return
                if chunk:
                    self.uplink.send_data(stream_id, chunk)
                    self.flush()
                while (self.uplink.queued(stream_id) > high and state.error is None
                       and not self.closed):
                    state.writable.clear()
                    await state.writable.wait()
                while self.can_write is not None and not self.closed:
                    await self.can_write.wait()
            if state.error is None and not self.closed:
                self.uplink.end_stream(stream_id)
                self.flush()
                self.wake_slot_waiters()
        except LocalProtocolError as exc:
            log.debug("request body of stream %d abandoned: %s", stream_id, exc)
        except (TransportError, OSError) as exc:
            log.info("request body source failed on stream %d: %s", stream_id, exc)
            self.reset(stream_id)


#: Exact event class -> what the connection does with it; other events need nothing here.
_HANDLERS: dict[type[ev.Event], Callable[[_CloudConnection, Any], None]] = {
    ev.DataReceived: _CloudConnection._on_data,
    ev.ResponseReceived: _CloudConnection._on_response,
    ev.StreamEnded: _CloudConnection._on_end,
    ev.TrailersReceived: _CloudConnection._on_end,
    ev.StreamReset: _CloudConnection._on_reset,
    ev.StreamWritable: _CloudConnection._on_writable,
    ev.PingAcknowledged: _CloudConnection._on_pong,
    ev.UpgradeRequested: _CloudConnection._on_upgrade,
    ev.Connected: _CloudConnection._on_connected,
    ev.UpgradeRefused: _CloudConnection._on_refused,
    ev.ConnectionTerminated: _CloudConnection._on_terminated,
    ev.LinkLost: _CloudConnection._on_lost,
}


class CloudServer:
    """Accepts uplinks and offers requests to the connected devices.

    ``ssl_context``: from :func:`uplink62676.io.tls.cloud_tls_context`; required
    unless ``insecure_plaintext=True`` (tests and local experiments only).
    ``token_validator``: turns a bearer token into a device identity (None or
    :class:`InvalidTokenError` refuses with ``401 invalid_token``).
    ``allow_anonymous``: accept devices with neither a client certificate nor
    a token (default only when no validator and no client CA is configured).
    ``identity_hook(ctx) -> str | None`` overrides the device ID.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        insecure_plaintext: bool = False,
        token_validator: TokenValidator | None = None,
        allow_anonymous: bool | None = None,
        identity_hook: Callable[[UpgradeContext], str | None] | None = None,
        settings: CloudSettings | None = None,
        high_water: int = 64 * 1024,
        on_change: Callable[[str, DeviceInfo | None], None] | None = None,
    ) -> None:
        if ssl_context is None and not insecure_plaintext:
            raise TransportError("CloudServer needs an ssl_context (or insecure_plaintext=True)")
        self.ssl_context = ssl_context
        self.insecure_plaintext = insecure_plaintext
        self.token_validator = token_validator
        if allow_anonymous is None:
            allow_anonymous = anonymous_by_default(
                validates_tokens=token_validator is not None,
                verifies_certificates=ssl_context is not None
                and ssl_context.verify_mode != ssl.CERT_NONE)
        self.allow_anonymous = allow_anonymous
        self.identity_hook = identity_hook
        self.settings = settings or CloudSettings()
        self.high_water = high_water
        self.on_change = on_change
        #: Called with every event and transfer (:mod:`uplink62676.io.observe`); None: off.
        self.observer: Observer | None = None
        self._registry: DeviceRegistry[_CloudConnection] = InMemoryDeviceRegistry()
        self._connections: set[_CloudConnection] = set()
        self._server: asyncio.Server | None = None
        self._loop_or_none: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Event] = set()
        #: Cluster mode: devices held by other nodes, reached by forwarding (None: one node).
        self.cluster: RemoteDevices | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start accepting uplinks on ``host``:``port`` (0 picks a free port)."""
        self._loop_or_none = asyncio.get_running_loop()
        factory: Callable[[], asyncio.Protocol] = lambda: _CloudConnection(self)  # noqa: E731
        if self.ssl_context is not None:
            # TLS on memory BIOs: asyncio's TLS transport holds ~256 KiB per connection.
            factory = TlsServerShim.factory(self.ssl_context, factory,
                                            self.settings.liveness.handshake_timeout)
        self._server = await self._loop.create_server(factory, host, port, backlog=1024)
        log.info("accepting uplinks on %s:%d (%s)", host, self.port,
                 "TLS" if self.ssl_context else "INSECURE PLAINTEXT")

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        return self._loop_or_none or asyncio.get_running_loop()

    @property
    def port(self) -> int:
        """The port the server listens on (useful after binding port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def begin_shutdown(self, reason: str = "cloud shutting down") -> None:
        """Stop accepting uplinks and send every device GOAWAY, so it moves (to another
        node, or back when this one returns); requests in flight may still finish."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.goaway(reason)

    async def close(self) -> None:
        """Stop listening and close every uplink."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close("cloud shutting down")
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None

    async def __aenter__(self) -> CloudServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- policy -------------------------------------------------------------------------------

    @property
    def authenticator(self) -> Authenticator:
        """The authentication policy as configured now (read at each upgrade)."""
        return Authenticator(validates_tokens=self.token_validator is not None,
                             allow_anonymous=self.allow_anonymous,
                             identity_hook=self.identity_hook)

    def _register(self, conn: _CloudConnection) -> None:
        info = conn.info
        assert info is not None
        for old in self._registry.register(info, conn):
            log.warning("device %s reconnected uplink %s from %s; closing its predecessor from %s",
                        info.device_id, info.path, conn.peer, old.peer)
            old.close("replaced by a newer uplink of the same device")
        log.info("device %s connected from %s (%s)", info.device_id, conn.peer, info.auth)
        self._changed(info.device_id, info)

    def _unregister(self, conn: _CloudConnection) -> None:
        assert conn.info is not None
        if self._registry.unregister(conn.info.device_id, conn):
            log.info("device %s disconnected", conn.info.device_id)
            self._changed(conn.info.device_id, None)

    def _changed(self, device_id: str, info: DeviceInfo | None) -> None:
        if self.on_change is not None:
            self.on_change(device_id, info)
        for waiter in self._waiters:
            waiter.set()

    @property
    def connections(self) -> int:
        """Open uplink connections, also those still upgrading."""
        return len(self._connections)

    def devices(self) -> list[DeviceInfo]:
        """Connected devices, ordered by ID (in a cluster: of every node)."""
        local = self._registry.devices()
        return local if self.cluster is None else self.cluster.devices(local)

    def device(self, device_id: str) -> DeviceInfo | None:
        """Details of a connected device (here or, in a cluster, on another node), or ``None``."""
        info = self._registry.info(device_id)
        if info is None and self.cluster is not None:
            return self.cluster.device(device_id)
        return info

    async def wait_for_device(self, device_id: str, timeout: float = 10.0,
                              present: bool = True) -> None:
        """Wait until ``device_id`` is connected (or, with ``present=False``, gone)."""
        async def _wait() -> None:
            while (self._registry.lookup(device_id) is not None) is not present:
                waiter = asyncio.Event()
                self._waiters.add(waiter)
                try:
                    await waiter.wait()
                finally:
                    self._waiters.discard(waiter)
        await asyncio.wait_for(_wait(), timeout)

    def uplinks(self, device_id: str) -> list[DeviceInfo]:
        """Every uplink of ``device_id`` (parallel uplinks coexist, uplink.md 9.3), newest first."""
        uplinks = self._registry.uplinks(device_id)
        if not uplinks and self.cluster is not None:
            remote = self.cluster.device(device_id)
            return [remote] if remote is not None else []
        return uplinks

    def _pick(self, device_id: str) -> _CloudConnection | None:
        """The newest healthy uplink of ``device_id``: open and not draining."""
        fallback = None
        for conn in self._registry.handles(device_id):
            if conn.closed:
                continue
            if conn.uplink.phase is Phase.HTTP2:
                return conn
            fallback = fallback or conn
        return fallback

    def disconnect(self, device_id: str) -> None:
        """Close every uplink of a device (GOAWAY)."""
        for conn in self._registry.handles(device_id):
            conn.close()

    # --- requests -----------------------------------------------------------------------------

    async def open_stream(
        self,
        device_id: str,
        method: str,
        path: str,
        headers: Iterable[tuple[str | bytes, str | bytes]] = (),
        body: bytes | AsyncIterable[bytes] | None = b"",
        *,
        authority: str | None = None,
        scheme: str = "https",
        timeout: float | None = 30.0,
        protocol: str | None = None,
        forward: bool = True,
    ) -> ResponseStream:
        """Send a request through ``device_id``'s uplink; returns once the head arrived.

        ``body``: bytes (sent whole), an async iterable (streamed, paused while
        the device does not read), or None (no body).  ``authority`` /
        ``scheme``: the request's ``:authority`` (default: the device ID) and
        ``:scheme`` -- the front door passes the client-visible origin, from
        which the device builds its URIs (UPL-59, UPL-R20, DEV-R14).  Raises
        :class:`KeyError` for an unknown device and :class:`TransportError`
        when the device goes away first.  ``protocol`` (with ``method``
        CONNECT and a streamed ``body``) makes an RFC 8441 extended CONNECT.
        In a cluster (:attr:`cluster`), a device held by another node is reached
        through that node (``forward=False``: only devices held here).
        """
        conn = self._pick(device_id)
        if conn is None:
            if not forward or self.cluster is None:
                raise KeyError(device_id)
            conn, path, headers = await self.cluster.route(device_id, path, list(headers),
                                                           scheme, timeout=timeout)
        # Queue behind the device's MAX_CONCURRENT_STREAMS instead of failing.
        if conn.slot_waiters or conn.uplink.stream_slots - conn.reserved <= 0:
            waiter: asyncio.Future[None] = self._loop.create_future()
            conn.slot_waiters.append(waiter)
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    # Woken in the same turn as the timeout (or the caller's cancel): pass
                    # the stream reserved for us on instead of losing it for good.
                    conn.reserved -= 1
                    conn.wake_slot_waiters()
                if isinstance(exc, TimeoutError):
                    raise TransportError(
                        f"device {device_id} had no free stream for {timeout} s") from None
                raise
            conn.reserved -= 1
            if conn.closed:
                raise TransportError(f"device {device_id} went away")
        state = _Stream(self._loop)
        hdrs = list(headers)
        try:
            if isinstance(body, bytes | bytearray | memoryview) or body is None:
                sid = conn.uplink.send_request(
                    method, path, hdrs, bytes(body) if body else None,
                    authority=authority or device_id, scheme=scheme,
                    end_stream=None if body else True)
                pump = None
            else:
                sid = conn.uplink.send_request(method, path, hdrs, None,
                                               authority=authority or device_id,
                                               scheme=scheme, protocol=protocol, end_stream=False)
                pump = None
        except LocalProtocolError as exc:
            raise TransportError(f"cannot send to device {device_id}: {exc}") from None
        conn.streams[sid] = state
        conn.flush()
        sent_at = self._loop.time()
        if not isinstance(body, bytes | bytearray | memoryview) and body is not None:
            pump = asyncio.create_task(conn._pump(sid, state, body))
        try:
            async with asyncio.timeout(timeout):
                head = await state.head
        except TimeoutError:
            self._request_done(None, sent_at)
            conn.reset(sid)
            if pump is not None:
                pump.cancel()
            raise TransportError(f"device {device_id} did not answer within {timeout} s") from None
        except (TransportError, asyncio.CancelledError):
            self._request_done(None, sent_at)
            if pump is not None:
                pump.cancel()
            conn.reset(sid)  # the caller gave up (or the device went): RST_STREAM CANCEL
            raise
        self._request_done(head.status_code, sent_at)
        return ResponseStream(conn, sid, head, state, pump)

    def extended_connect(self, device_id: str) -> bool:
        """``device_id``'s uplink announced RFC 8441 extended CONNECT (UPL-57)."""
        conn = self._pick(device_id)
        return conn is not None and conn.uplink.peer_enables_connect_protocol

    def _request_done(self, status: int | None, sent_at: float) -> None:
        if self.observer is not None:
            self.observer(RequestDone(status, self._loop.time() - sent_at))

    async def request(
        self,
        device_id: str,
        method: str,
        path: str,
        headers: Iterable[tuple[str | bytes, str | bytes]] = (),
        body: bytes | AsyncIterable[bytes] | None = b"",
        *,
        timeout: float | None = 30.0,
        limit: int = 64 * 1024 * 1024,
    ) -> CloudResponse:
        """Send a request and read the whole answer."""
        stream = await self.open_stream(device_id, method, path, headers, body, timeout=timeout)
        try:
            async with asyncio.timeout(timeout):
                data = await stream.body(limit)
        except (TimeoutError, asyncio.CancelledError):
            stream.cancel()
            raise
        return CloudResponse(stream.status, stream.headers, data)

    async def ping(self, device_id: str, timeout: float = 10.0) -> float:
        """PING a device over its uplink; returns the round trip in seconds."""
        conn = self._pick(device_id)
        if conn is None:
            raise KeyError(device_id)
        return await conn.ping(timeout)
