"""Device end on plain blocking sockets and threads, for firmware without an event loop.

Same behaviour as :class:`uplink62676.aio.DeviceAgent`, because the same
:class:`~uplink62676.agent.UplinkSession` makes every decision: every
configured uplink is kept up in parallel (UPL-51) by one I/O thread; each
tunneled request is served in a thread of its own (at most
``max_concurrent_streams`` per uplink) with the uplink's UserLevel (UPL-41).

The I/O thread alone touches the socket and sleeps in ``select`` until the
session's next deadline, re-computed after every input and every command;
request threads call the session under the connection's lock and wake the
I/O thread through a socket pair.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable

from .. import agent as core
from .. import events as ev
from ..errors import TransportError
from ..io.common import Response, UplinkSpec
from ..io.tls import check_alpn, describe_tls_error
from ..status import Status as UplinkStatus

__all__ = ["BlockingHandler", "DeviceAgent", "TunneledRequest"]

log = logging.getLogger("uplink62676.device")

_READ = 65536
#: How long a closing connection may take to hand its last frames (GOAWAY) to the socket.
_CLOSE_GRACE = 2.0


class TunneledRequest(core.RequestHead):
    """A request that came through an uplink (blocking flavour).

    Attributes as in :class:`uplink62676.aio.TunneledRequest`; :meth:`read`
    blocks until a chunk arrives and reopens the cloud's window by its size.
    """

    def __init__(self, conn: _Connection, start: core.StartHandler) -> None:
        super().__init__(start)
        self._conn = conn

    def read(self, timeout: float | None = None) -> bytes:
        """The next body chunk, ``b""`` at the end (TransportError on reset or timeout)."""
        conn = self._conn
        with conn.cond:
            if not conn.cond.wait_for(self._ready, timeout):
                raise TransportError(f"no request body within {timeout} s")
            item = self._take()
            assert item is not None
            conn.apply(conn.session.consumed(self.stream_id, item[1]))
        return item[0]

    def body(self, limit: int = 16 * 1024 * 1024) -> bytes:
        """Read the whole request body; more than ``limit`` octets raises."""
        parts = bytearray()
        while chunk := self.read():
            parts += chunk
            if len(parts) > limit:
                raise TransportError(f"request body larger than {limit} octets")
        return bytes(parts)


#: A blocking application handler.
BlockingHandler = Callable[[TunneledRequest], Response]


class _Connection:
    """One attempt: a socket, its I/O thread, and the session whose commands it carries out."""

    def __init__(self, runner: _Runner, session: core.UplinkSession, sock: socket.socket) -> None:
        self.runner = runner
        self.agent = runner.agent
        self.session = session
        self.sock = sock
        self.cond = threading.Condition()
        self.requests: dict[int, TunneledRequest] = {}
        self.pings: dict[int, list[float | None]] = {}
        self._closing: core.CloseTransport | None = None
        self._out = bytearray()
        self._io_thread = threading.current_thread()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def wake(self) -> None:
        """Make the I/O thread look at the session again (output, deadline)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def apply(self, commands: Iterable[core.Command]) -> None:
        """Carry out the session's commands (``cond`` held) and wake who may care."""
        for cmd in commands:
            if isinstance(cmd, core.StartHandler):
                req = TunneledRequest(self, cmd)
                self.requests[cmd.stream_id] = req
                threading.Thread(target=self._serve, args=(req,), daemon=True,
                                 name=f"uplink stream {cmd.stream_id}").start()
            elif isinstance(cmd, core.FeedBody | core.EndBody | core.CancelHandler):
                if (r := self.requests.get(cmd.stream_id)) is not None:
                    r._apply(cmd)  # a cancelled handler sees it at its next read or chunk
            elif isinstance(cmd, core.PingAnswered):
                if (box := self.pings.get(cmd.waiter)) is not None:
                    box.append(cmd.round_trip)
            elif isinstance(cmd, ev.StatusChanged):
                self.runner.publish([cmd])
            elif isinstance(cmd, core.CloseTransport):
                self._closing = cmd
        self.cond.notify_all()  # readers, paused producers (Wake), PING waiters
        if threading.current_thread() is not self._io_thread:
            self.wake()

    # --- the I/O thread -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        session = self.session
        sel = selectors.DefaultSelector()
        self.sock.setblocking(False)
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        give_up = None
        try:
            while True:
                with self.cond:
                    self._out += session.data_to_send()
                    deadline = session.next_deadline()
                    closing = self._closing
                if closing is not None:
                    give_up = give_up or time.monotonic() + _CLOSE_GRACE
                    if closing.abort or not self._out or time.monotonic() > give_up:
                        return  # a dead link just closes (UPL-R24)
                if self._out and not self._send():
                    self._input(session.connection_lost, "connection reset while sending")
                    continue
                if stop.is_set():
                    return
                sel.modify(self.sock, selectors.EVENT_READ
                           | (selectors.EVENT_WRITE if self._out else 0))
                timeout = None if deadline is None else max(0.0, deadline - self.agent.clock())
                if closing is not None:
                    timeout = 0.05
                ready = sel.select(timeout)
                with self.cond:  # a deadline that passed while we slept comes before new input
                    deadline = session.next_deadline()
                    if deadline is not None and self.agent.clock() >= deadline:
                        self.apply(session.handle_timeout(self.agent.clock()))
                for key, mask in ready:
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            while self._wake_r.recv(4096):
                                pass
                    elif mask & selectors.EVENT_READ:
                        self._receive()
        finally:
            self._input(session.connection_lost, "connection closed")
            sel.close()
            with contextlib.suppress(OSError):
                self.sock.close()
            self._wake_r.close()
            self._wake_w.close()

    def _input(self, method: Callable[[float, str], list[core.Command]], reason: str) -> None:
        with self.cond:
            self.apply(method(self.agent.clock(), reason))

    def _receive(self) -> None:
        while not self.session.finished:
            try:
                data = self.sock.recv(_READ)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except OSError as exc:  # includes ssl.SSLError
                self._input(self.session.connection_lost, describe_tls_error(exc))
                return
            with self.cond:
                self.apply(self.session.receive_data(data, self.agent.clock()))
            if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                return

    def _send(self) -> bool:
        while self._out:
            try:
                n = self.sock.send(self._out)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return True
            except OSError:
                return False
            del self._out[:n]
        return True

    # --- request threads ----------------------------------------------------------------------

    def _serve(self, req: TunneledRequest) -> None:
        session, sid = self.session, req.stream_id
        try:
            response = self.agent.handler(req)
            with self.cond:
                self.apply(session.response_ready(sid, response))
                streamed = session.wants_body(sid)
            if streamed:
                self._stream(sid, response.body)
                with self.cond:
                    self.apply(session.response_done(sid))
        except Exception as exc:
            with self.cond:
                self.apply(session.handler_failed(sid, exc))
        finally:
            with self.cond:
                if self.requests.get(sid) is req:
                    del self.requests[sid]

    def _stream(self, sid: int, body: object) -> None:
        """Pull chunks only while the cloud reads them (a slow reader pauses the producer)."""
        if not isinstance(body, Iterable):
            raise TransportError("the threaded adapter needs bytes or an iterable body")
        session = self.session
        iterator = iter(body)
        try:
            for chunk in iterator:
                with self.cond:
                    if not session.wants_body(sid):
                        return
                    self.apply(session.chunk_ready(sid, chunk))
                    self.cond.wait_for(lambda: session.may_send_more(sid))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


class _Runner:
    """Keeps one uplink up from a thread of its own: attempt, wait, attempt ..."""

    def __init__(self, agent: DeviceAgent, spec: UplinkSpec) -> None:
        self.agent = agent
        self.spec = spec
        self.keeper: core.UplinkKeeper = agent.new_keeper(spec)
        self.stop_event = threading.Event()
        self.conn: _Connection | None = None
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name=f"uplink {spec.remote_address}")

    def publish(self, commands: Iterable[core.Command]) -> None:
        if self.agent._published(self.keeper, commands):
            with self.agent._changed:
                self.agent._changed.notify_all()

    def run(self) -> None:
        first = True
        while not self.stop_event.wait(self.keeper.next_wait(first)):
            first = False
            session: core.UplinkSession | None = None
            try:
                session = self._attempt()
            except Exception as exc:
                self.publish(self.keeper.crashed(exc))
            self.publish(self.keeper.attempt_ended(session, self.agent.clock()))

    def _attempt(self) -> core.UplinkSession | None:
        agent, spec = self.agent, self.spec
        session, commands = self.keeper.begin(agent.settings, agent.clock(), os.urandom,
                                              agent.high_water)
        self.publish(commands)
        if session is None:
            return None
        address, ctx = spec.address, spec.tls_context()
        sock: socket.socket
        try:
            raw = socket.create_connection((address.host, address.port),
                                           timeout=agent.settings.liveness.handshake_timeout)
            try:
                sock = ctx.wrap_socket(raw, server_hostname=address.host) if ctx else raw
                check_alpn(sock if isinstance(sock, ssl.SSLSocket) else None)
            except BaseException:
                raw.close()
                raise
        except (OSError, TransportError) as exc:
            self.publish(self.keeper.connect_failed(describe_tls_error(exc)))
            return None
        log.info("uplink %s: %s up, sending upgrade request", spec.remote_address,
                 "TLS" if ctx else "TCP (INSECURE PLAINTEXT)")
        self.conn = _Connection(self, session, sock)
        try:
            self.conn.run(self.stop_event)
        finally:
            self.conn = None
        return session

    def stop(self, timeout: float) -> None:
        conn = self.conn
        if conn is not None:
            with conn.cond:
                conn.apply(conn.session.close())  # GOAWAY (UPL-R24), sent before the thread ends
        self.stop_event.set()
        if conn is not None:
            conn.wake()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.publish(self.keeper.report(UplinkStatus.OFFLINE, None))


class DeviceAgent(core.AgentBase[BlockingHandler, UplinkSpec, _Runner]):
    """Threaded twin of :class:`uplink62676.aio.DeviceAgent` (same arguments, blocking calls).

    ``clock`` defaults to ``time.monotonic``.
    """

    def _setup(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition()

    def clock(self) -> float:
        """The agent's notion of now: the injected clock, else ``time.monotonic()``."""
        return self._clock() if self._clock is not None else time.monotonic()

    def start(self) -> None:
        """Start one I/O thread per configured uplink."""
        with self._lock:
            self._running = True
            for spec in self._specs.values():
                self._launch(spec)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every uplink thread, waiting up to ``timeout`` seconds for each."""
        with self._lock:
            self._running = False
            runners = list(self._runners.values())
            self._runners.clear()
        for runner in runners:
            runner.stop(timeout)

    def __enter__(self) -> DeviceAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self, spec: UplinkSpec) -> None:
        runner = _Runner(self, spec)
        self._runners[spec.remote_address] = runner
        runner.thread.start()

    def add(self, spec: UplinkSpec) -> None:
        """Add or replace an uplink; a changed one restarts at once."""
        with self._lock:
            self._specs[spec.remote_address] = spec
            old = self._runners.pop(spec.remote_address, None) if self._running else None
        if old is not None:
            old.stop(5.0)
        with self._lock:
            if self._running:
                self._launch(spec)

    def remove(self, remote_address: str) -> None:
        """Stop and forget the uplink to ``remote_address``."""
        with self._lock:
            self._specs.pop(remote_address, None)
            runner = self._runners.pop(remote_address, None)
        if runner is not None:
            runner.stop(5.0)

    def set_uplinks(self, specs: Iterable[UplinkSpec]) -> None:
        """Make the running set equal to ``specs``: start new, restart changed, stop removed."""
        gone, added = self._changes(specs)
        for address in gone:
            self.remove(address)
        for spec in added:
            self.add(spec)

    def wait_status(self, remote_address: str, status: UplinkStatus,
                    timeout: float = 10.0) -> str | None:
        """Block until the uplink has ``status``; returns its Error (TimeoutError otherwise)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.status(remote_address)[0] is status,
                                          timeout):
                raise TimeoutError(f"{remote_address} did not become {status.value}")
        return self.status(remote_address)[1]

    def poke(self) -> None:
        """Re-check every timer now (after moving an injected clock)."""
        for runner in list(self._runners.values()):
            if runner.conn is not None:
                runner.conn.wake()

    def ping(self, remote_address: str, timeout: float = 10.0) -> float:
        """PING the cloud over a connected uplink; returns the round trip (s)."""
        runner = self._runners.get(remote_address)
        conn = runner.conn if runner is not None else None
        if conn is None:
            raise TransportError(f"uplink {remote_address!r} is not connected")
        with conn.cond:
            waiter = conn.session.ping(self.clock())
            box: list[float | None] = []
            conn.pings[waiter] = box
            conn.apply(())
            conn.cond.wait_for(lambda: bool(box), timeout)
            conn.pings.pop(waiter, None)
        if not box or box[0] is None:
            raise TransportError("no PING ACK")
        return box[0]
