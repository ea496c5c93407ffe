"""asyncio cloud end: accept uplinks, authenticate them, send requests through them.

:class:`CloudServer` is a TLS server (UPL-30).  Each accepted connection is
a small ``asyncio.Protocol`` around a :class:`~uplink62676.uplink.CloudUplink`
(no task per idle uplink, so thousands stay cheap).  When the upgrade request
is complete the server authenticates the device (uplink.md section 6):

* mTLS: a verified client certificate; the identity is its subject CN (UPL-33, 34);
* access token: ``Authorization: Bearer`` (or the ``access_token`` query),
  checked by a pluggable validator before any ``101`` (UPL-39); a failure is
  answered ``401`` with a Bearer challenge (UPL-R18).

The device ID is, in that order: an ``identity_hook``'s answer, the
certificate CN, the validator's identity, the last non-empty segment of the
upgrade path, the peer address.  Connected devices are kept in a registry;
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
from typing import Any

import attrs

from .. import events as ev
from ..errors import InvalidTokenError, LocalProtocolError, TransportError
from ..io.tls import peer_common_name
from ..settings import CloudSettings
from ..tunnel import ErrorCode
from ..uplink import CloudUplink, Phase
from ._tlsshim import TlsServerShim

__all__ = [
    "CloudResponse",
    "CloudServer",
    "DeviceInfo",
    "ResponseStream",
    "TokenValidator",
    "UpgradeContext",
]

log = logging.getLogger("uplink62676.cloud")

#: ``token -> device identity`` (None or InvalidTokenError: refused); may be async.
TokenValidator = Callable[[str], "str | Awaitable[str | None] | None"]


#: ``DeviceInfo.protocol`` of a native uplink (``https``, UPL-6) and of one over WebSocket
#: (``wss``, UPL-7).
PROTOCOL_NATIVE = "h2c-reverse"
PROTOCOL_WEBSOCKET = "h2c-reverse/websocket"


def _redact(value: object) -> str:
    return "None" if value is None else "'<redacted>'"


@attrs.frozen(slots=True)
class UpgradeContext:
    """What the cloud knows about a device when it decides on the upgrade."""

    peer: str
    target: str
    host: str | None
    headers: ev.Headers
    client_cert_cn: str | None
    bearer_token: str | None = attrs.field(repr=_redact)
    websocket: bool = False

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@attrs.frozen(slots=True)
class DeviceInfo:
    """A connected device as ``GET /devices`` shows it."""

    device_id: str
    since: float
    peer: str
    auth: str
    protocol: str = "h2c-reverse"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.device_id,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "peer": self.peer,
            "auth": self.auth,
            "protocol": self.protocol,
        }


@attrs.frozen(slots=True)
class CloudResponse:
    """A complete answer of a device."""

    status: int
    headers: ev.Headers
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} octets>")

    def header(self, name: str) -> str | None:
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

    async def body(self, limit: int = 64 * 1024 * 1024) -> bytes:
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


def _outcome(task: asyncio.Future[tuple[str, Any, str]]) -> tuple[str, Any, str]:
    if task.cancelled() or task.exception() is not None:
        return ("refuse", 500, "token validator failed")
    return task.result()


class _CloudConnection(asyncio.Protocol):
    """One accepted uplink; cheap while idle (no task, one timer handle at most)."""

    def __init__(self, server: CloudServer) -> None:
        self.server = server
        self.loop = server._loop
        self.uplink = CloudUplink(settings=server.settings, now=self.loop.time(),
                                  manual_flow_control=True)
        self.transport: asyncio.Transport | TlsServerShim | None = None
        self.peer = "?"
        self.info: DeviceInfo | None = None
        self.identity: tuple[str, str] | None = None
        self.protocol = PROTOCOL_NATIVE
        self.auth_task: asyncio.Future[tuple[str, Any, str]] | None = None
        self.streams: dict[int, _Stream] = {}
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
        self._arm()

    def data_received(self, data: bytes) -> None:
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
        for e in events:
            if isinstance(e, ev.UpgradeRequested):
                self._decide(e)
            elif isinstance(e, ev.ResponseReceived):
                if (s := self.streams.get(e.stream_id)) is not None and not s.head.done():
                    s.head.set_result(e)
            elif isinstance(e, ev.DataReceived):
                s = self.streams.get(e.stream_id)
                if s is None:
                    self.acknowledge(e.stream_id, e.flow_controlled_length)
                else:
                    s.chunks.append((e.data, e.flow_controlled_length))
                    s.more.set()
            if isinstance(e, ev.StreamEnded | ev.TrailersReceived | ev.StreamReset):
                self.wake_slot_waiters()
            if isinstance(e, ev.StreamEnded | ev.TrailersReceived):
                if (s := self.streams.pop(e.stream_id, None)) is not None:
                    s.ended = True
                    s.more.set()
                    if not s.head.done():
                        s.fail("response ended before its head")
            elif isinstance(e, ev.StreamReset):
                if (s := self.streams.pop(e.stream_id, None)) is not None:
                    s.fail(f"device reset the stream (code {e.error_code})")
            elif isinstance(e, ev.StreamWritable):
                if (s := self.streams.get(e.stream_id)) is not None:
                    s.writable.set()
            elif isinstance(e, ev.Connected):
                self._connected()
            elif isinstance(e, ev.UpgradeRefused):
                log.warning("uplink from %s refused: %d %s", self.peer, e.status_code, e.reason)
            elif isinstance(e, ev.ConnectionTerminated):
                log.info("uplink %s ended: %s", self.info.device_id if self.info else self.peer,
                         e.reason or f"code {e.error_code}")
                for state in self.streams.values():
                    state.fail("uplink ended")
                self.streams.clear()

    def _decide(self, request: ev.UpgradeRequested) -> None:
        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        ctx = UpgradeContext(self.peer, request.target, request.host, request.headers,
                             peer_common_name(ssl_object), request.bearer_token,
                             request.websocket)
        result = self.server._authenticate(ctx)
        if inspect.isawaitable(result):
            self.auth_task = asyncio.ensure_future(result)  # a strong reference while it runs
            self.auth_task.add_done_callback(lambda t: self._decided(ctx, _outcome(t)))
        else:
            self._decided(ctx, result)

    def _decided(self, ctx: UpgradeContext, result: tuple[str, Any, str]) -> None:
        if self.closed:
            return
        kind, value, detail = result
        now = self.loop.time()
        if kind == "accept":
            self.identity = (value, detail)
            self.protocol = PROTOCOL_WEBSOCKET if ctx.websocket else PROTOCOL_NATIVE
            log.info("upgrade from %s (%s, %s, device %s): 101, sending HTTP/2 preface",
                     self.peer, self.protocol, detail, value)
            self.uplink.accept(now)
        else:
            status = int(value)
            log.warning("upgrade from %s refused: %d %s", self.peer, status, detail)
            headers: list[tuple[bytes, bytes]] = [(b"content-type", b"text/plain; charset=utf-8")]
            bearer_error = None
            if status == 401:
                if ctx.bearer_token is None:
                    headers.append((b"www-authenticate", b'Bearer realm="uplink"'))
                else:
                    bearer_error = "invalid_token"
            self.uplink.refuse(status, headers, (detail + "\n").encode(), bearer_error=bearer_error)
        self.flush()

    def _connected(self) -> None:
        assert self.identity is not None
        device_id, auth = self.identity
        self.info = DeviceInfo(device_id, time.time(), self.peer, auth, self.protocol)
        self.server._register(self)

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

    def close(self, reason: str = "closed by the cloud") -> None:
        if self.uplink.phase is Phase.HTTP2:
            with contextlib.suppress(LocalProtocolError):
                self.uplink.close(ErrorCode.NO_ERROR, reason)
        self._flush_now()
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
            verifies = ssl_context is not None and ssl_context.verify_mode != ssl.CERT_NONE
            allow_anonymous = token_validator is None and not verifies
        self.allow_anonymous = allow_anonymous
        self.identity_hook = identity_hook
        self.settings = settings or CloudSettings()
        self.high_water = high_water
        self.on_change = on_change
        self._devices: dict[str, _CloudConnection] = {}
        self._connections: set[_CloudConnection] = set()
        self._server: asyncio.Server | None = None
        self._loop_or_none: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Event] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
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
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
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

    # --- authentication -----------------------------------------------------------------------

    def _authenticate(
        self, ctx: UpgradeContext
    ) -> tuple[str, Any, str] | Awaitable[tuple[str, Any, str]]:
        if ctx.client_cert_cn is not None:
            return self._identify(ctx, ctx.client_cert_cn, "mTLS")
        if self.token_validator is not None:
            if ctx.bearer_token is None:
                if self.allow_anonymous:
                    return self._identify(ctx, None, "none")
                return ("refuse", 401, "no client certificate and no access token")
            try:
                result = self.token_validator(ctx.bearer_token)
            except InvalidTokenError as exc:
                return ("refuse", 401, f"invalid access token: {exc}")
            if inspect.isawaitable(result):
                return self._await_token(ctx, result)
            return self._token_result(ctx, result)
        if not self.allow_anonymous:
            return ("refuse", 401, "no client certificate")
        return self._identify(ctx, None, "none")

    async def _await_token(self, ctx: UpgradeContext,
                           result: Awaitable[str | None]) -> tuple[str, Any, str]:
        try:
            identity = await result
        except InvalidTokenError as exc:
            return ("refuse", 401, f"invalid access token: {exc}")
        return self._token_result(ctx, identity)

    def _token_result(self, ctx: UpgradeContext, identity: str | None) -> tuple[str, Any, str]:
        if not identity:
            return ("refuse", 401, "invalid access token")
        return self._identify(ctx, identity, "AccessToken")

    def _identify(self, ctx: UpgradeContext, identity: str | None,
                  auth: str) -> tuple[str, Any, str]:
        if self.identity_hook is not None:
            hooked = self.identity_hook(ctx)
            if hooked:
                identity = hooked
        if not identity:
            segments = [s for s in ctx.path.split("/") if s]
            identity = segments[-1] if segments else ctx.peer
        return ("accept", identity, auth)

    # --- registry -----------------------------------------------------------------------------

    def _register(self, conn: _CloudConnection) -> None:
        assert conn.info is not None
        old = self._devices.get(conn.info.device_id)
        self._devices[conn.info.device_id] = conn
        if old is not None and old is not conn:
            log.warning("device %s connected again from %s; closing its older uplink from %s",
                        conn.info.device_id, conn.peer, old.peer)
            old.info = None
            old.close("replaced by a newer uplink of the same device")
        log.info("device %s connected from %s (%s)", conn.info.device_id, conn.peer, conn.info.auth)
        self._changed(conn.info.device_id, conn.info)

    def _unregister(self, conn: _CloudConnection) -> None:
        assert conn.info is not None
        if self._devices.get(conn.info.device_id) is conn:
            del self._devices[conn.info.device_id]
            log.info("device %s disconnected", conn.info.device_id)
            self._changed(conn.info.device_id, None)

    def _changed(self, device_id: str, info: DeviceInfo | None) -> None:
        if self.on_change is not None:
            self.on_change(device_id, info)
        for waiter in self._waiters:
            waiter.set()

    def devices(self) -> list[DeviceInfo]:
        """Connected devices, ordered by ID."""
        return sorted((c.info for c in self._devices.values() if c.info is not None),
                      key=lambda i: i.device_id)

    def device(self, device_id: str) -> DeviceInfo | None:
        conn = self._devices.get(device_id)
        return conn.info if conn is not None else None

    async def wait_for_device(self, device_id: str, timeout: float = 10.0,
                              present: bool = True) -> None:
        """Wait until ``device_id`` is connected (or, with ``present=False``, gone)."""
        async def _wait() -> None:
            while (device_id in self._devices) is not present:
                waiter = asyncio.Event()
                self._waiters.add(waiter)
                try:
                    await waiter.wait()
                finally:
                    self._waiters.discard(waiter)
        await asyncio.wait_for(_wait(), timeout)

    def disconnect(self, device_id: str) -> None:
        """Close a device's uplink (GOAWAY)."""
        conn = self._devices.get(device_id)
        if conn is not None:
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
        timeout: float | None = 30.0,
    ) -> ResponseStream:
        """Send a request through ``device_id``'s uplink; returns once the head arrived.

        ``body``: bytes (sent whole), an async iterable (streamed, paused while
        the device does not read), or None (no body).  Raises
        :class:`KeyError` for an unknown device and :class:`TransportError`
        when the device goes away first.
        """
        conn = self._devices.get(device_id)
        if conn is None or conn.closed:
            raise KeyError(device_id)
        # Queue behind the device's MAX_CONCURRENT_STREAMS instead of failing.
        if conn.slot_waiters or conn.uplink.stream_slots - conn.reserved <= 0:
            waiter: asyncio.Future[None] = self._loop.create_future()
            conn.slot_waiters.append(waiter)
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                raise TransportError(f"device {device_id} had no free stream for {timeout} s") \
                    from None
            conn.reserved -= 1
            if conn.closed:
                raise TransportError(f"device {device_id} went away")
        state = _Stream(self._loop)
        hdrs = list(headers)
        try:
            if isinstance(body, bytes | bytearray | memoryview) or body is None:
                sid = conn.uplink.send_request(
                    method, path, hdrs, bytes(body) if body else None,
                    authority=authority or device_id, end_stream=None if body else True)
                pump = None
            else:
                sid = conn.uplink.send_request(method, path, hdrs, None,
                                               authority=authority or device_id,
                                               end_stream=False)
                pump = None
        except LocalProtocolError as exc:
            raise TransportError(f"cannot send to device {device_id}: {exc}") from None
        conn.streams[sid] = state
        conn.flush()
        if not isinstance(body, bytes | bytearray | memoryview) and body is not None:
            pump = asyncio.create_task(conn._pump(sid, state, body))
        try:
            async with asyncio.timeout(timeout):
                head = await state.head
        except TimeoutError:
            conn.reset(sid)
            if pump is not None:
                pump.cancel()
            raise TransportError(f"device {device_id} did not answer within {timeout} s") from None
        except (TransportError, asyncio.CancelledError):
            if pump is not None:
                pump.cancel()
            conn.reset(sid)  # the caller gave up (or the device went): RST_STREAM CANCEL
            raise
        return ResponseStream(conn, sid, head, state, pump)

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
        conn = self._devices.get(device_id)
        if conn is None:
            raise KeyError(device_id)
        started = self._loop.time()
        payload = conn.uplink.ping(started)
        conn.flush()
        done: asyncio.Future[float] = self._loop.create_future()
        original = conn._handle

        def _watch(events: Iterable[ev.Event]) -> None:
            events = list(events)
            for e in events:
                if isinstance(e, ev.PingAcknowledged) and e.payload == payload and not done.done():
                    done.set_result(self._loop.time() - started)
            original(events)

        conn._handle = _watch  # type: ignore[method-assign]
        try:
            return await asyncio.wait_for(done, timeout)
        finally:
            conn._handle = original  # type: ignore[method-assign]
