"""asyncio device end: keep every configured uplink up and serve what comes through it.

:class:`DeviceAgent` runs one task per uplink (UPL-51).  Each task connects
(TCP, TLS as client, UPL-2), drives a :class:`~uplink62676.uplink.DeviceUplink`
with bytes and ``loop.time()``, and after a failure waits as its own
:class:`~uplink62676.liveness.ReconnectSchedule` says (UPL-50).  Tunneled
requests go to an application handler with the uplink's UserLevel attached
(UPL-41).  Flow control is manual: request body octets are acknowledged to
the cloud only as the handler reads them, and a streamed response is pulled
from the handler only while the stream's queue is below ``high_water``, so
no buffer grows without bound in either direction.

No protocol logic lives here: it moves bytes and time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable

from .. import events as ev
from .._agent import RequestHead, RunnerState, closed_before_upgrade
from .._agent import default_schedule as _default_schedule
from ..errors import LocalProtocolError, TransportError
from ..io.tls import check_alpn, describe_tls_error
from ..liveness import ReconnectSchedule
from ..settings import DeviceSettings
from ..status import Status as UplinkStatus
from ..tunnel import ErrorCode
from ..uplink import DeviceUplink, Phase
from ._common import Response, UplinkSpec

__all__ = ["DeviceAgent", "Handler", "TunneledRequest"]

log = logging.getLogger("uplink62676.device")

_READ_SIZE = 65536


class TunneledRequest(RequestHead):
    """A request the cloud sent through an uplink (UPL-4, UPL-43).

    ``user_level`` is the UserLevel configured for the uplink it came through
    (UPL-41, UPL-42); authentication headers in the request cannot change it.
    Read the body with :meth:`read` (chunks, ``b""`` at the end) or
    :meth:`body`; each chunk read reopens the cloud's flow-control window.
    """

    def __init__(self, conn: _Connection, event: ev.RequestReceived, user_level: tuple[str, ...],
                 remote_address: str) -> None:
        super().__init__(event, user_level, remote_address)
        self._conn = conn
        self._chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self._more = asyncio.Event()
        self.ended = False
        self.reset_code: int | None = None
        self._writable = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def at_eof(self) -> bool:
        """True when the body is finished and every chunk was read."""
        return self.ended and not self._chunks

    async def read(self) -> bytes:
        """The next body chunk, ``b""`` once the body is complete."""
        while not self._chunks:
            if self.reset_code is not None:
                raise TransportError(f"stream {self.stream_id} was reset ({self.reset_code})")
            if self.ended:
                return b""
            self._more.clear()
            await self._more.wait()
        data, fcl = self._chunks.popleft()
        self._conn.acknowledge(self.stream_id, fcl)
        return data

    async def body(self, limit: int = 16 * 1024 * 1024) -> bytes:
        """The whole body (raises :class:`TransportError` beyond ``limit`` octets)."""
        parts = bytearray()
        while chunk := await self.read():
            parts += chunk
            if len(parts) > limit:
                raise TransportError(f"request body larger than {limit} octets")
        return bytes(parts)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while chunk := await self.read():
            yield chunk

    # called by the connection
    def _feed(self, data: bytes, fcl: int) -> None:
        self._chunks.append((data, fcl))
        self._more.set()

    def _end(self) -> None:
        self.ended = True
        self._more.set()

    def _reset(self, code: int) -> None:
        self.reset_code = code
        self._more.set()
        self._writable.set()


#: An application handler: gets a request, returns a :class:`Response`.
Handler = Callable[[TunneledRequest], Awaitable[Response]]


class _Connection:
    """One attempt of one uplink: TCP/TLS stream + DeviceUplink."""

    def __init__(self, runner: _Runner, uplink: DeviceUplink, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.runner = runner
        self.uplink = uplink
        self.reader = reader
        self.writer = writer
        self.requests: dict[int, TunneledRequest] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.received = 0
        self.flush_pending = False

    # --- output -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send queued frames once per loop turn (one write for many commands)."""
        if not self.flush_pending:
            self.flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush_now)

    def flush_now(self) -> None:
        self.flush_pending = False
        data = self.uplink.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()

    def acknowledge(self, stream_id: int, size: int) -> None:
        if size and self.uplink.phase is Phase.HTTP2:
            with contextlib.suppress(LocalProtocolError):
                self.uplink.acknowledge_data(stream_id, size)
            self.flush()

    # --- input --------------------------------------------------------------------------------

    async def run(self) -> None:
        agent = self.runner.agent
        self.flush()
        timer = asyncio.create_task(self._timers())
        try:
            while not self.closed and self.uplink.phase is not Phase.CLOSED:
                try:
                    data = await self.reader.read(_READ_SIZE)
                except (OSError, ConnectionError) as exc:  # includes ssl.SSLError
                    self.handle(self.uplink.connection_lost(agent.clock(), describe_tls_error(exc)))
                    break
                if self.closed:
                    break
                if not data and not self.received and self.uplink.phase is Phase.UPGRADING:
                    reason = closed_before_upgrade(bool(self.writer.get_extra_info("ssl_object")))
                    self.handle(self.uplink.connection_lost(agent.clock(), reason))
                    break
                self.received += len(data)
                self.handle(self.uplink.receive_data(data, agent.clock()))
                self.flush()
                if not data:
                    break
        finally:
            self.closed = True
            timer.cancel()
            for req in self.requests.values():
                req._reset(ErrorCode.CANCEL)
            for task in list(self.tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                self.flush_now()
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 2.0)

    async def _timers(self) -> None:
        agent = self.runner.agent
        while not self.closed:
            deadline = self.uplink.next_deadline()
            if deadline is None:
                await agent._tick.wait()
                continue
            delay = deadline - agent.clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(agent._tick.wait(), delay)
                continue
            self.handle(self.uplink.handle_timeout(agent.clock()))
            self.flush_now()
            if self.uplink.phase is Phase.CLOSED:
                self.closed = True
                self.writer.transport.abort()  # a dead link: just close (UPL-R24)
                return

    def handle(self, events: Iterable[ev.Event]) -> None:
        runner = self.runner
        for e in events:
            if isinstance(e, ev.RequestReceived):
                req = TunneledRequest(self, e, runner.spec.user_level, runner.spec.remote_address)
                self.requests[e.stream_id] = req
                task = asyncio.create_task(self._serve(req))
                req._task = task
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(e, ev.DataReceived):
                req_or_none = self.requests.get(e.stream_id)
                if req_or_none is None:
                    self.acknowledge(e.stream_id, e.flow_controlled_length)
                else:
                    req_or_none._feed(e.data, e.flow_controlled_length)
            elif isinstance(e, ev.StreamEnded):
                if (r := self.requests.get(e.stream_id)) is not None:
                    r._end()
            elif isinstance(e, ev.StreamReset):
                if (r := self.requests.pop(e.stream_id, None)) is not None:
                    r._reset(e.error_code)
                    if r._task is not None and e.by_peer:
                        r._task.cancel()  # the cloud gave up: stop the handler too
                log.debug("uplink %s: stream %d reset (%s)", runner.spec.remote_address,
                          e.stream_id, e.reason or e.error_code)
            elif isinstance(e, ev.StreamWritable):
                if (r := self.requests.get(e.stream_id)) is not None:
                    r._writable.set()
            elif isinstance(e, ev.StatusChanged):
                runner.set_status(e.status, e.error)
            elif isinstance(e, ev.UpgradeAccepted):
                log.info("uplink %s: 101 Switching Protocols, roles swapped "
                         "(device = HTTP/2 server)",
                         runner.spec.remote_address)
            elif isinstance(e, ev.Connected):
                runner.schedule.connected(runner.agent.clock())
                log.info("uplink %s: connected (cloud preface valid)", runner.spec.remote_address)
            elif isinstance(e, ev.UpgradeRefused):
                log.warning("uplink %s: upgrade refused: %d %s%s", runner.spec.remote_address,
                            e.status_code, e.reason,
                            f" (Bearer error={e.bearer_error})" if e.bearer_error else "")
            elif isinstance(e, ev.ConnectionTerminated):
                log.info("uplink %s: HTTP/2 connection ended (code %d%s)",
                         runner.spec.remote_address, e.error_code,
                         f", {e.reason}" if e.reason else "")
            elif isinstance(e, ev.LinkLost):
                log.warning("uplink %s: nothing received for %.1f s, closing",
                            runner.spec.remote_address, e.silence)
            elif isinstance(e, ev.PingAcknowledged):
                log.debug("uplink %s: PING answered in %s s", runner.spec.remote_address,
                          e.round_trip)

    # --- serving ------------------------------------------------------------------------------

    async def _serve(self, req: TunneledRequest) -> None:
        agent = self.runner.agent
        try:
            try:
                response = await agent.handler(req)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler failed for %r", req)
                response = Response(500, (("content-type", "text/plain"),), b"handler failed\n")
            if req.reset_code is not None or self.closed:
                return
            body = response.body
            if isinstance(body, bytes | bytearray | memoryview):
                self.uplink.send_response(req.stream_id, response.status, response.headers,
                                          bytes(body))
                self.flush()
            else:
                self.uplink.send_response(req.stream_id, response.status, response.headers)
                self.flush()
                await self._stream(req, body)
                if req.reset_code is not None or self.closed:
                    return
                self.uplink.end_stream(req.stream_id)
                self.flush()
            if not req.ended and req.reset_code is None:
                # Answered before the whole request arrived: stop the upload (RFC 9113 8.1).
                self.uplink.reset_stream(req.stream_id, ErrorCode.NO_ERROR)
                self.flush()
            await self.drain()
        except (LocalProtocolError, TransportError) as exc:
            log.debug("stream %d abandoned: %s", req.stream_id, exc)
            self._abort(req)
        except asyncio.CancelledError:
            self._abort(req)
            raise
        except Exception:
            log.exception("response body of %r failed", req)
            self._abort(req)
        finally:
            if self.requests.get(req.stream_id) is req:
                del self.requests[req.stream_id]

    def _abort(self, req: TunneledRequest) -> None:
        if req.reset_code is None and not self.closed and self.uplink.phase is Phase.HTTP2:
            with contextlib.suppress(LocalProtocolError):
                self.uplink.reset_stream(req.stream_id, ErrorCode.INTERNAL_ERROR)
                self.flush()

    async def _stream(self, req: TunneledRequest,
                      body: AsyncIterable[bytes] | Iterable[bytes]) -> None:
        high = self.runner.agent.high_water
        if isinstance(body, AsyncIterable):
            iterator = body.__aiter__()
            try:
                while True:
                    try:
                        chunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        return
                    if not await self._send_chunk(req, chunk, high):
                        return
            finally:
                close = getattr(iterator, "aclose", None)
                if close is not None:
                    await close()
        else:
            for chunk in body:
                if not await self._send_chunk(req, chunk, high):
                    return

    async def _send_chunk(self, req: TunneledRequest, chunk: bytes, high: int) -> bool:
        if req.reset_code is not None or self.closed:
            return False
        if chunk:
            self.uplink.send_data(req.stream_id, chunk)
            self.flush()
        # Pause the producer while the cloud is not reading (slow reader).
        while self.uplink.queued(req.stream_id) > high:
            req._writable.clear()
            await req._writable.wait()
            if req.reset_code is not None or self.closed:
                return False
        await self.drain()
        return True


class _Runner(RunnerState):
    spec: UplinkSpec

    """Keeps one uplink up: attempt, wait, attempt ... (UPL-45, UPL-50)."""

    def __init__(self, agent: DeviceAgent, spec: UplinkSpec) -> None:
        super().__init__(agent.identity, spec, agent.schedule_factory)
        self.agent = agent
        self.task: asyncio.Task[None] | None = None
        self.conn: _Connection | None = None
        self.stopping = False

    def set_status(self, status: UplinkStatus, error: str | None) -> None:
        if not self._record_status(status, error):
            return
        log.info("uplink %s: status %s%s", self.spec.remote_address, status.value,
                 f" ({error})" if error else "")
        if self.agent.on_status is not None:
            self.agent.on_status(self.spec.remote_address, status, error)
        self.agent._notify()

    async def run(self) -> None:
        first = True
        while not self.stopping:
            if not first:
                wait = self.schedule.next_wait()
                log.info("uplink %s: reconnecting in %.2f s (attempt %d)",
                         self.spec.remote_address, wait, self.schedule.attempt)
                await asyncio.sleep(wait)
            first = False
            self.attempts += 1
            try:
                await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one uplink kill the agent
                log.exception("uplink %s: attempt failed", self.spec.remote_address)
                self.set_status(UplinkStatus.OFFLINE, f"internal error: {exc.__class__.__name__}")
            self.schedule.disconnected(self.agent.clock())

    async def _attempt(self) -> None:
        agent = self.agent
        spec = self.spec
        address = spec.address
        uplink = self.new_uplink(agent.settings, agent.clock, os.urandom)
        if uplink is None:
            return
        ctx = spec.tls_context()
        log.info("uplink %s: connecting to %s:%d (%s)", spec.remote_address, address.host,
                 address.port, "TLS" if ctx else "INSECURE PLAINTEXT")
        timeout = agent.settings.liveness.handshake_timeout
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    address.host, address.port, ssl=ctx,
                    server_hostname=address.host if ctx else None,
                    limit=_READ_SIZE,
                ),
                timeout,
            )
        except (OSError, TimeoutError) as exc:
            reason = describe_tls_error(exc)
            log.warning("uplink %s: %s", spec.remote_address, reason)
            self.set_status(UplinkStatus.OFFLINE, reason)
            return
        try:
            check_alpn(writer.get_extra_info("ssl_object"))
        except TransportError as exc:
            log.warning("uplink %s: %s", spec.remote_address, exc.reason)
            self.set_status(UplinkStatus.OFFLINE, exc.reason)
            writer.close()
            return
        log.info("uplink %s: %s up, sending upgrade request (Upgrade: h2c-reverse)",
                 spec.remote_address, "TLS" if ctx else "TCP")
        self.conn = _Connection(self, uplink, reader, writer)
        try:
            await self.conn.run()
        finally:
            self.conn = None
            self.attempt_ended(uplink)

    async def stop(self) -> None:
        conn = self.conn
        if conn is not None and conn.uplink.phase is Phase.HTTP2:
            with contextlib.suppress(Exception):
                conn.uplink.close()
                conn.flush_now()
                await asyncio.wait_for(conn.drain(), 1.0)
        self.stopping = True
        if conn is not None:
            conn.closed = True
            conn.writer.transport.abort()  # wakes the reader at once
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=3.0)
        self.set_status(UplinkStatus.OFFLINE, None)


class DeviceAgent:
    """Keeps every configured uplink up in parallel and serves tunneled requests (UPL-51).

    ``handler`` is ``async (TunneledRequest) -> Response``.  ``identity``
    (serial number, device ID) seeds each uplink's reconnect schedule
    (UPL-50).  ``clock`` defaults to ``loop.time``; a test may pass another
    and call :meth:`poke` after moving it.  ``on_status(address, status,
    error)`` is told every change (for GetUplinks' Status/Error).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        identity: str,
        uplinks: Iterable[UplinkSpec] = (),
        settings: DeviceSettings | None = None,
        schedule_factory: Callable[[str], ReconnectSchedule] = _default_schedule,
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
        self._specs: dict[str, UplinkSpec] = {}
        for spec in uplinks:
            self._specs[spec.remote_address] = spec
        self._runners: dict[str, _Runner] = {}
        self._running = False
        self._tick = asyncio.Event()
        self._waiters: set[asyncio.Event] = set()

    def clock(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start an uplink task for every configured uplink."""
        self._running = True
        for spec in self._specs.values():
            self._launch(spec)

    async def stop(self) -> None:
        """Close every uplink (GOAWAY when connected) and stop."""
        self._running = False
        await asyncio.gather(*(r.stop() for r in self._runners.values()))
        self._runners.clear()

    async def __aenter__(self) -> DeviceAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _launch(self, spec: UplinkSpec) -> None:
        runner = _Runner(self, spec)
        self._runners[spec.remote_address] = runner
        runner.task = asyncio.create_task(runner.run(), name=f"uplink {spec.remote_address}")

    # --- configuration at run time ------------------------------------------------------------

    @property
    def uplinks(self) -> tuple[UplinkSpec, ...]:
        return tuple(self._specs.values())

    async def add(self, spec: UplinkSpec) -> None:
        """Add or replace an uplink; a replaced one restarts at once (UPL-R25)."""
        self._specs[spec.remote_address] = spec
        if not self._running:
            return
        runner = self._runners.pop(spec.remote_address, None)
        if runner is not None:
            await runner.stop()
        self._launch(spec)

    async def remove(self, remote_address: str) -> None:
        """Stop and forget an uplink."""
        self._specs.pop(remote_address, None)
        runner = self._runners.pop(remote_address, None)
        if runner is not None:
            await runner.stop()

    async def set_uplinks(self, specs: Iterable[UplinkSpec]) -> None:
        """Make the running set equal to ``specs``: start new, restart changed, stop removed."""
        wanted = {s.remote_address: s for s in specs}
        for address in list(self._specs):
            if address not in wanted:
                await self.remove(address)
        for spec in wanted.values():
            if self._specs.get(spec.remote_address) != spec or not self._running:
                await self.add(spec)  # new or changed (UplinkSpec equality ignores the context)

    # --- state --------------------------------------------------------------------------------

    def status(self, remote_address: str) -> tuple[UplinkStatus, str | None]:
        """``(Status, Error)`` of an uplink (UPL-R27); usable as a StatusProvider."""
        runner = self._runners.get(remote_address)
        if runner is None:
            return UplinkStatus.OFFLINE, None
        return runner.status, runner.error

    def attempts(self, remote_address: str) -> int:
        runner = self._runners.get(remote_address)
        return runner.attempts if runner is not None else 0

    def poke(self) -> None:
        """Re-check every timer now (after moving an injected clock)."""
        self._tick.set()
        self._tick = asyncio.Event()

    def _notify(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    async def wait_status(self, remote_address: str, status: UplinkStatus,
                          timeout: float = 10.0) -> str | None:
        """Wait until an uplink has ``status``; returns its Error."""
        async def _wait() -> str | None:
            while True:
                current, error = self.status(remote_address)
                if current is status:
                    return error
                waiter = asyncio.Event()
                self._waiters.add(waiter)
                try:
                    await waiter.wait()
                finally:
                    self._waiters.discard(waiter)
        return await asyncio.wait_for(_wait(), timeout)

    async def ping(self, remote_address: str) -> float:
        """Send an HTTP/2 PING on a connected uplink and wait for its ACK; returns seconds."""
        runner = self._runners.get(remote_address)
        conn = runner.conn if runner is not None else None
        if conn is None or runner is None or runner.status is not UplinkStatus.CONNECTED:
            raise TransportError(f"uplink {remote_address!r} is not connected")
        started = self.clock()
        payload = conn.uplink.ping(started)
        conn.flush()
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        original = conn.handle

        def _watch(events: Iterable[ev.Event]) -> None:
            events = list(events)
            for e in events:
                if (isinstance(e, ev.PingAcknowledged) and e.payload == payload
                        and not waiter.done()):
                    waiter.set_result(self.clock() - started)
            original(events)

        conn.handle = _watch  # type: ignore[method-assign]
        try:
            return await asyncio.wait_for(waiter, 10.0)
        finally:
            conn.handle = original  # type: ignore[method-assign]
