"""asyncio device end: keep every configured uplink up and serve what comes through it.

:class:`DeviceAgent` runs one task per uplink (UPL-51).  Each task connects
(TCP, TLS as client, UPL-2) and drives an :class:`~uplink62676.agent.UplinkSession`
with bytes and ``loop.time()``; after a failure it waits as the uplink's
reconnect schedule says (UPL-50).  Every decision -- which handler to start,
what to acknowledge, when to reset, when to PING -- is the session's; this
module carries out its commands, and re-arms one timer after every input and
command, so the PINGs of UPL-45..49 leave on time on a silent link.

Flow control is manual: request body octets are acknowledged to the cloud
only as the handler reads them, and a streamed response is pulled from the
handler only while the stream's queue is below ``high_water``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable

from .. import events as ev
from ..agent import (
    AgentBase,
    CancelHandler,
    CloseTransport,
    Command,
    EndBody,
    FeedBody,
    PingAnswered,
    RequestHead,
    StartHandler,
    UplinkKeeper,
    UplinkSession,
    Wake,
)
from ..agent import default_schedule as _default_schedule  # noqa: F401  (tests import it here)
from ..errors import TransportError
from ..io.observe import AttemptStarted, Observer, RequestDone, Transferred, UplinkStatusChanged
from ..io.tls import check_alpn, describe_tls_error
from ..status import Status as UplinkStatus
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

    def __init__(self, conn: _Connection, start: StartHandler) -> None:
        super().__init__(start)
        self._conn = conn
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def read(self) -> bytes:
        """The next body chunk, ``b""`` once the body is complete."""
        while (item := self._take()) is None:
            await self._wait()
        data, size = item
        self._conn.apply(self._conn.session.consumed(self.stream_id, size))
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

    async def _wait(self) -> None:
        """Until the connection tells this request something (body, reset, wake)."""
        self._changed.clear()
        await self._changed.wait()


#: An application handler: gets a request, returns a :class:`Response`.
Handler = Callable[[TunneledRequest], Awaitable[Response]]


class _Connection:
    """One attempt of one uplink: a TCP/TLS stream carrying out a session's commands."""

    def __init__(self, runner: _Runner, session: UplinkSession, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.runner = runner
        self.agent = runner.agent
        self.session = session
        self.reader = reader
        self.writer = writer
        self.requests: dict[int, TunneledRequest] = {}
        self.pings: dict[int, asyncio.Future[float | None]] = {}
        self._flush_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    # --- carrying out commands ----------------------------------------------------------------

    def apply(self, commands: Iterable[Command]) -> None:
        """Carry out the session's commands, then send its output and re-arm the timer."""
        for cmd in commands:
            if isinstance(cmd, StartHandler):
                req = TunneledRequest(self, cmd)
                self.requests[cmd.stream_id] = req
                req._task = asyncio.create_task(self._serve(req))
            elif isinstance(cmd, FeedBody | EndBody | CancelHandler | Wake):
                if (r := self.requests.get(cmd.stream_id)) is not None:
                    if not isinstance(cmd, Wake):
                        r._apply(cmd)
                    r._changed.set()
                    if isinstance(cmd, CancelHandler) and r._task is not None:
                        r._task.cancel()  # the stream is gone: stop the handler too
            elif isinstance(cmd, PingAnswered):
                if (f := self.pings.get(cmd.waiter)) is not None and not f.done():
                    f.set_result(cmd.round_trip)
            elif isinstance(cmd, ev.StatusChanged):
                self.runner.publish([cmd])
            elif isinstance(cmd, CloseTransport):
                self.flush_now()
                if cmd.abort:
                    self.writer.transport.abort()  # a dead link: just close (UPL-R24)
                else:
                    self.writer.close()
        self.flush()
        self.arm()

    def flush(self) -> None:
        """Send queued frames once per loop turn (one write for many commands)."""
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush_now)

    def flush_now(self) -> None:
        self._flush_pending = False
        data = self.session.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            if (observe := self.agent.observer) is not None:
                observe(Transferred("out", len(data)))

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()

    def arm(self, force: bool = False) -> None:
        """Sleep until the session's next deadline (a changed deadline moves the timer)."""
        deadline = self.session.next_deadline()
        if deadline == self._armed_for and not force:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self.agent.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = self._armed_for = None
        self.apply(self.session.handle_timeout(self.agent.clock()))

    # --- input --------------------------------------------------------------------------------

    async def run(self) -> None:
        session = self.session
        self.apply(())
        try:
            while not session.finished:
                try:
                    data = await self.reader.read(_READ_SIZE)
                except (OSError, ConnectionError) as exc:  # includes ssl.SSLError
                    self.apply(session.connection_lost(self.agent.clock(), describe_tls_error(exc)))
                    break
                if (observe := self.agent.observer) is not None:
                    observe(Transferred("in", len(data)))
                self.apply(session.receive_data(data, self.agent.clock()))
        finally:
            self.apply(session.connection_lost(self.agent.clock(), "connection closed"))
            if self._timer is not None:
                self._timer.cancel()
            with contextlib.suppress(Exception):
                self.flush_now()
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 2.0)

    # --- serving ------------------------------------------------------------------------------

    async def _serve(self, req: TunneledRequest) -> None:
        session, sid = self.session, req.stream_id
        started = self.agent.clock()
        try:
            response = await self.agent.handler(req)
            if (observe := self.agent.observer) is not None:
                observe(RequestDone(response.status, self.agent.clock() - started))
            self.apply(session.response_ready(sid, response))
            if session.wants_body(sid):
                await self._stream(req, response.body)
                self.apply(session.response_done(sid))
            await self.drain()
        except asyncio.CancelledError:
            self.apply(session.abort(sid))
            raise
        except Exception as exc:
            if (observe := self.agent.observer) is not None:
                observe(RequestDone(None, self.agent.clock() - started))
            self.apply(session.handler_failed(sid, exc))
        finally:
            if self.requests.get(sid) is req:
                del self.requests[sid]

    async def _stream(self, req: TunneledRequest, body: object) -> None:
        """Pull chunks only while the cloud reads them (a slow reader pauses the producer)."""
        if isinstance(body, Iterable):
            for chunk in body:
                if not await self._send(req, chunk):
                    return
            return
        if not isinstance(body, AsyncIterable):
            raise TransportError(f"a response body is bytes or an (async) iterable, not {body!r}")
        iterator = body.__aiter__()
        try:
            async for chunk in iterator:
                if not await self._send(req, chunk):
                    return
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    async def _send(self, req: TunneledRequest, chunk: bytes) -> bool:
        session = self.session
        if not session.wants_body(req.stream_id):
            return False
        self.apply(session.chunk_ready(req.stream_id, chunk))
        while not session.may_send_more(req.stream_id):
            await req._wait()
        await self.drain()
        return True


class _Runner:
    """Keeps one uplink up: attempt, wait, attempt ... (UPL-45, UPL-50)."""

    def __init__(self, agent: DeviceAgent, spec: UplinkSpec) -> None:
        self.agent = agent
        self.spec = spec
        self.keeper: UplinkKeeper = agent.new_keeper(spec)
        self.task: asyncio.Task[None] | None = None
        self.conn: _Connection | None = None
        self.stopping = False

    def publish(self, commands: Iterable[Command]) -> None:
        if (observe := self.agent.observer) is not None:
            commands = list(commands)
            for cmd in commands:
                if isinstance(cmd, ev.StatusChanged):
                    observe(UplinkStatusChanged(self.spec.remote_address, cmd.status, cmd.error))
        if self.agent._published(self.keeper, commands):
            self.agent._notify()

    async def run(self) -> None:
        first = True
        while not self.stopping:
            await asyncio.sleep(self.keeper.next_wait(first))
            first = False
            if (observe := self.agent.observer) is not None:
                observe(AttemptStarted(self.spec.remote_address))
            session: UplinkSession | None = None
            try:
                session = await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one uplink kill the agent
                self.publish(self.keeper.crashed(exc))
            self.publish(self.keeper.attempt_ended(session, self.agent.clock()))

    async def _attempt(self) -> UplinkSession | None:
        agent, spec = self.agent, self.spec
        address = spec.address
        session, commands = self.keeper.begin(agent.settings, agent.clock(), os.urandom,
                                              agent.high_water)
        self.publish(commands)
        if session is None:
            return None
        ctx = spec.tls_context()
        log.info("uplink %s: connecting to %s:%d (%s)", spec.remote_address, address.host,
                 address.port, "TLS" if ctx else "INSECURE PLAINTEXT")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(address.host, address.port, ssl=ctx, limit=_READ_SIZE,
                                        server_hostname=address.host if ctx else None),
                agent.settings.liveness.handshake_timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.publish(self.keeper.connect_failed(describe_tls_error(exc)))
            return None
        try:
            check_alpn(writer.get_extra_info("ssl_object"))
        except TransportError as exc:
            self.publish(self.keeper.connect_failed(exc.reason))
            writer.close()
            return None
        log.info("uplink %s: %s up, sending upgrade request (Upgrade: h2c-reverse)",
                 spec.remote_address, "TLS" if ctx else "TCP")
        self.conn = _Connection(self, session, reader, writer)
        try:
            await self.conn.run()
        finally:
            self.conn = None
        return session

    async def stop(self, grace: float = 0.0) -> None:
        conn = self.conn
        self.stopping = True
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.apply(conn.session.close())  # GOAWAY (UPL-R24)
                conn.flush_now()
                await asyncio.wait_for(conn.drain(), 1.0)
            # Requests in flight may finish for ``grace`` seconds (the cloud reads them).
            pending = [r._task for r in conn.requests.values()
                       if r._task is not None and not r._task.done()]
            if pending and grace > 0:
                await asyncio.wait(pending, timeout=grace)
                with contextlib.suppress(Exception):
                    conn.flush_now()
                    await asyncio.wait_for(conn.drain(), 1.0)
            conn.writer.transport.abort()  # wakes the reader at once
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=3.0)
        self.publish(self.keeper.report(UplinkStatus.OFFLINE, None))


class DeviceAgent(AgentBase[Handler, UplinkSpec, _Runner]):
    """Keeps every configured uplink up in parallel and serves tunneled requests (UPL-51).

    ``handler`` is ``async (TunneledRequest) -> Response``; the other
    arguments are those of :class:`uplink62676.agent.AgentBase`.  ``clock``
    defaults to ``loop.time``.
    """

    def _setup(self) -> None:
        self._waiters: set[asyncio.Event] = set()
        #: Called with status changes, attempts, transfers and requests
        #: (:mod:`uplink62676.io.observe`); None: off.
        self.observer: Observer | None = None

    def clock(self) -> float:
        """The agent's notion of now: the injected clock, else the loop's monotonic time."""
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start an uplink task for every configured uplink."""
        self._running = True
        for spec in self._specs.values():
            self._launch(spec)

    async def stop(self, grace: float = 0.0) -> None:
        """Close every uplink (GOAWAY when connected) and stop; requests in flight get
        ``grace`` seconds to finish first."""
        self._running = False
        await asyncio.gather(*(r.stop(grace) for r in self._runners.values()))
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
        gone, added = self._changes(specs)
        for address in gone:
            await self.remove(address)
        for spec in added:  # new or changed (UplinkSpec equality ignores the context)
            await self.add(spec)

    # --- state --------------------------------------------------------------------------------

    def poke(self) -> None:
        """Re-check every timer now (after moving an injected clock)."""
        for runner in self._runners.values():
            if runner.conn is not None:
                runner.conn.arm(force=True)

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
        if conn is None:
            raise TransportError(f"uplink {remote_address!r} is not connected")
        waiter = conn.session.ping(self.clock())
        answer: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        conn.pings[waiter] = answer
        conn.apply(())
        try:
            round_trip = await asyncio.wait_for(answer, 10.0)
        finally:
            conn.pings.pop(waiter, None)
        if round_trip is None:
            raise TransportError(f"uplink {remote_address!r} ended before the PING ACK")
        return round_trip
