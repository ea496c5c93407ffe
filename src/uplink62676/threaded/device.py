"""Device end on plain blocking sockets and threads, for firmware without an event loop.

Same behaviour as :class:`uplink62676.aio.DeviceAgent`: every configured
uplink is kept up in parallel (UPL-51), each by one I/O thread with its own
liveness timer and reconnect schedule (UPL-45..50); each tunneled request is
served in a thread of its own (at most ``max_concurrent_streams`` per uplink)
with the uplink's UserLevel attached (UPL-41).  The I/O thread alone touches
the socket; request threads touch the state machine under the connection's
lock and wake the I/O thread through a socket pair.  Flow control is manual
both ways, so neither a fast cloud nor a slow one grows a buffer without bound.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable

from .. import events as ev
from .._agent import RequestHead, RunnerState, closed_before_upgrade
from .._agent import default_schedule as _default_schedule
from ..errors import LocalProtocolError, TransportError
from ..io.common import Response, UplinkSpec
from ..io.tls import check_alpn, describe_tls_error
from ..liveness import ReconnectSchedule
from ..settings import DeviceSettings
from ..status import Status as UplinkStatus
from ..tunnel import ErrorCode
from ..uplink import DeviceUplink, Phase

__all__ = ["BlockingHandler", "DeviceAgent", "TunneledRequest"]

log = logging.getLogger("uplink62676.device")

_READ = 65536


class TunneledRequest(RequestHead):
    """A request that came through an uplink (blocking flavour).

    Attributes as in :class:`uplink62676.aio.TunneledRequest`; :meth:`read`
    blocks until a chunk arrives and reopens the cloud's window by its size.
    """

    def __init__(self, conn: _Connection, event: ev.RequestReceived, user_level: tuple[str, ...],
                 remote_address: str) -> None:
        super().__init__(event, user_level, remote_address)
        self._conn = conn
        self._chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self.ended = False
        self.reset_code: int | None = None

    def read(self, timeout: float | None = None) -> bytes:
        """The next body chunk, ``b""`` at the end (TransportError on reset or timeout)."""
        conn = self._conn
        with conn.cond:
            if not conn.cond.wait_for(
                lambda: self._chunks or self.ended or self.reset_code is not None or conn.closed,
                timeout,
            ):
                raise TransportError(f"no request body within {timeout} s")
            if not self._chunks:
                if self.reset_code is not None or (conn.closed and not self.ended):
                    raise TransportError(f"stream {self.stream_id} was reset")
                return b""
            data, fcl = self._chunks.popleft()
            if fcl and conn.uplink.phase is Phase.HTTP2:
                with contextlib.suppress(LocalProtocolError):
                    conn.uplink.acknowledge_data(self.stream_id, fcl)
        conn.wake()
        return data

    def body(self, limit: int = 16 * 1024 * 1024) -> bytes:
        parts = bytearray()
        while chunk := self.read():
            parts += chunk
            if len(parts) > limit:
                raise TransportError(f"request body larger than {limit} octets")
        return bytes(parts)


#: A blocking application handler.
BlockingHandler = Callable[[TunneledRequest], Response]


class _Connection:
    def __init__(self, runner: _Runner, uplink: DeviceUplink, sock: socket.socket) -> None:
        self.runner = runner
        self.uplink = uplink
        self.sock = sock
        self.cond = threading.Condition()
        self.requests: dict[int, TunneledRequest] = {}
        self.closed = False
        self.received = 0
        self._out = bytearray()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.ping_waiters: dict[bytes, list[float]] = {}

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # --- the I/O thread -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        agent = self.runner.agent
        sel = selectors.DefaultSelector()
        self.sock.setblocking(False)
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not stop.is_set():
                with self.cond:
                    self._out += self.uplink.data_to_send()
                    deadline = self.uplink.next_deadline()
                    finished = self.uplink.phase is Phase.CLOSED
                if self._out and not self._send():
                    self._lost("connection reset while sending")
                    return
                if finished and not self._out:
                    return
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._out else 0)
                sel.modify(self.sock, want)
                timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - agent.clock()))
                for key, mask in sel.select(timeout):
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            while self._wake_r.recv(4096):
                                pass
                    elif mask & selectors.EVENT_READ and not self._receive():
                        return
                with self.cond:
                    deadline = self.uplink.next_deadline()
                    if deadline is not None and agent.clock() >= deadline:
                        self._handle(self.uplink.handle_timeout(agent.clock()))
                        if self.uplink.phase is Phase.CLOSED:
                            return  # a dead link: just close (UPL-R24)
        finally:
            sel.close()
            with self.cond:
                self.closed = True
                for req in self.requests.values():
                    if req.reset_code is None:
                        req.reset_code = ErrorCode.CANCEL
                self.cond.notify_all()
            with contextlib.suppress(OSError):
                self.sock.close()
            self._wake_r.close()
            self._wake_w.close()

    def _lost(self, reason: str) -> None:
        with self.cond:
            self._handle(self.uplink.connection_lost(self.runner.agent.clock(), reason))

    def _receive(self) -> bool:
        while True:
            try:
                data = self.sock.recv(_READ)
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            except ssl.SSLWantWriteError:
                return True
            except OSError as exc:  # includes ssl.SSLError
                self._lost(describe_tls_error(exc))
                return False
            with self.cond:
                if not data and not self.received and self.uplink.phase is Phase.UPGRADING:
                    reason = closed_before_upgrade(isinstance(self.sock, ssl.SSLSocket))
                    self._handle(self.uplink.connection_lost(self.runner.agent.clock(), reason))
                    return False
                self.received += len(data)
                self._handle(self.uplink.receive_data(data, self.runner.agent.clock()))
            if not data:
                return False
            if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                return True

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

    def _handle(self, events: Iterable[ev.Event]) -> None:
        """Runs with ``cond`` held."""
        runner = self.runner
        for e in events:
            if isinstance(e, ev.RequestReceived):
                req = TunneledRequest(self, e, runner.spec.user_level, runner.spec.remote_address)
                self.requests[e.stream_id] = req
                threading.Thread(target=self._serve, args=(req,), daemon=True,
                                 name=f"uplink stream {e.stream_id}").start()
            elif isinstance(e, ev.DataReceived):
                r = self.requests.get(e.stream_id)
                if r is None:
                    with contextlib.suppress(LocalProtocolError):
                        self.uplink.acknowledge_data(e.stream_id, e.flow_controlled_length)
                else:
                    r._chunks.append((e.data, e.flow_controlled_length))
            elif isinstance(e, ev.StreamEnded):
                if (r := self.requests.get(e.stream_id)) is not None:
                    r.ended = True
            elif isinstance(e, ev.StreamReset):
                if (r := self.requests.pop(e.stream_id, None)) is not None:
                    r.reset_code = e.error_code
            elif isinstance(e, ev.StatusChanged):
                runner.set_status(e.status, e.error)
            elif isinstance(e, ev.UpgradeAccepted):
                log.info("uplink %s: 101 Switching Protocols, roles swapped",
                         runner.spec.remote_address)
            elif isinstance(e, ev.Connected):
                runner.schedule.connected(runner.agent.clock())
            elif isinstance(e, ev.UpgradeRefused):
                log.warning("uplink %s: upgrade refused: %d %s", runner.spec.remote_address,
                            e.status_code, e.reason)
            elif isinstance(e, ev.LinkLost):
                log.warning("uplink %s: nothing received for %.1f s, closing",
                            runner.spec.remote_address, e.silence)
            elif isinstance(e, ev.PingAcknowledged) and (
                    w := self.ping_waiters.get(e.payload)) is not None:
                w.append(e.round_trip or 0.0)
        self.cond.notify_all()

    # --- request threads ----------------------------------------------------------------------

    def _serve(self, req: TunneledRequest) -> None:
        agent = self.runner.agent
        try:
            try:
                response = agent.handler(req)
            except Exception:
                log.exception("handler failed for %r", req)
                response = Response(500, (("content-type", "text/plain"),), b"handler failed\n")
            body = response.body
            with self.cond:
                if req.reset_code is not None or self.closed:
                    return
                if isinstance(body, bytes | bytearray | memoryview):
                    self.uplink.send_response(req.stream_id, response.status, response.headers,
                                              bytes(body))
                else:
                    self.uplink.send_response(req.stream_id, response.status, response.headers)
            self.wake()
            if not isinstance(body, bytes | bytearray | memoryview):
                if not isinstance(body, Iterable):
                    raise TransportError("the threaded adapter needs bytes or an iterable body")
                for chunk in body:
                    if not self._send_chunk(req, chunk):
                        return
                with self.cond:
                    if req.reset_code is not None or self.closed:
                        return
                    self.uplink.end_stream(req.stream_id)
            with self.cond:
                if not req.ended and req.reset_code is None and not self.closed:
                    self.uplink.reset_stream(req.stream_id, ErrorCode.NO_ERROR)
            self.wake()
        except (LocalProtocolError, TransportError) as exc:
            log.debug("stream %d abandoned: %s", req.stream_id, exc)
            with self.cond, contextlib.suppress(LocalProtocolError):
                if req.reset_code is None and not self.closed:
                    self.uplink.reset_stream(req.stream_id, ErrorCode.INTERNAL_ERROR)
            self.wake()
        finally:
            with self.cond:
                if self.requests.get(req.stream_id) is req:
                    del self.requests[req.stream_id]

    def _send_chunk(self, req: TunneledRequest, chunk: bytes) -> bool:
        high = self.runner.agent.high_water
        with self.cond:
            if req.reset_code is not None or self.closed:
                return False
            if chunk:
                self.uplink.send_data(req.stream_id, chunk)
            self.wake()
            # Pause the producer while the cloud is not reading (slow reader).
            self.cond.wait_for(lambda: self.uplink.queued(req.stream_id) <= high
                               or req.reset_code is not None or self.closed)
            return req.reset_code is None and not self.closed


class _Runner(RunnerState):
    spec: UplinkSpec

    def __init__(self, agent: DeviceAgent, spec: UplinkSpec) -> None:
        super().__init__(agent.identity, spec, agent.schedule_factory)
        self.agent = agent
        self.stop_event = threading.Event()
        self.conn: _Connection | None = None
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name=f"uplink {spec.remote_address}")

    def set_status(self, status: UplinkStatus, error: str | None) -> None:
        with self.agent._changed:
            if not self._record_status(status, error):
                return
            self.agent._changed.notify_all()
        log.info("uplink %s: status %s%s", self.spec.remote_address, status.value,
                 f" ({error})" if error else "")
        if self.agent.on_status is not None:
            self.agent.on_status(self.spec.remote_address, status, error)

    def run(self) -> None:
        first = True
        while not self.stop_event.is_set():
            if not first:
                wait = self.schedule.next_wait()
                log.info("uplink %s: reconnecting in %.2f s", self.spec.remote_address, wait)
                if self.stop_event.wait(wait):
                    break
            first = False
            self.attempts += 1
            try:
                self._attempt()
            except Exception as exc:
                log.exception("uplink %s: attempt failed", self.spec.remote_address)
                self.set_status(UplinkStatus.OFFLINE, f"internal error: {exc.__class__.__name__}")
            self.schedule.disconnected(self.agent.clock())

    def _attempt(self) -> None:
        agent, spec = self.agent, self.spec
        address = spec.address
        uplink = self.new_uplink(agent.settings, agent.clock, os.urandom)
        if uplink is None:
            return
        ctx = spec.tls_context()
        timeout = agent.settings.liveness.handshake_timeout
        sock: socket.socket
        try:
            raw = socket.create_connection((address.host, address.port), timeout=timeout)
            try:
                sock = ctx.wrap_socket(raw, server_hostname=address.host) if ctx else raw
                check_alpn(sock if isinstance(sock, ssl.SSLSocket) else None)
            except BaseException:
                raw.close()
                raise
        except (OSError, TransportError) as exc:
            reason = describe_tls_error(exc)
            log.warning("uplink %s: %s", spec.remote_address, reason)
            self.set_status(UplinkStatus.OFFLINE, reason)
            return
        log.info("uplink %s: %s up, sending upgrade request", spec.remote_address,
                 "TLS" if ctx else "TCP (INSECURE PLAINTEXT)")
        conn = _Connection(self, uplink, sock)
        self.conn = conn
        try:
            conn.run(self.stop_event)
        finally:
            self.conn = None
            self.attempt_ended(uplink)

    def stop(self, timeout: float) -> None:
        conn = self.conn
        if conn is not None:
            with conn.cond:
                if conn.uplink.phase is Phase.HTTP2:
                    conn.uplink.close()
            conn.wake()
            time.sleep(0.05)  # let the GOAWAY leave before the I/O thread stops
        self.stop_event.set()
        if conn is not None:
            conn.wake()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.set_status(UplinkStatus.OFFLINE, None)


class DeviceAgent:
    """Threaded twin of :class:`uplink62676.aio.DeviceAgent` (same arguments, blocking calls)."""

    def __init__(
        self,
        handler: BlockingHandler,
        *,
        identity: str,
        uplinks: Iterable[UplinkSpec] = (),
        settings: DeviceSettings | None = None,
        schedule_factory: Callable[[str], ReconnectSchedule] = _default_schedule,
        clock: Callable[[], float] = time.monotonic,
        high_water: int = 64 * 1024,
        on_status: Callable[[str, UplinkStatus, str | None], None] | None = None,
    ) -> None:
        self.handler = handler
        self.identity = identity
        self.settings = settings or DeviceSettings()
        self.schedule_factory = schedule_factory
        self.clock = clock
        self.high_water = high_water
        self.on_status = on_status
        self._specs = {s.remote_address: s for s in uplinks}
        self._runners: dict[str, _Runner] = {}
        self._running = False
        self._lock = threading.Lock()
        self._changed = threading.Condition()

    def start(self) -> None:
        with self._lock:
            self._running = True
            for spec in self._specs.values():
                self._launch(spec)

    def stop(self, timeout: float = 5.0) -> None:
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
        with self._lock:
            self._specs.pop(remote_address, None)
            runner = self._runners.pop(remote_address, None)
        if runner is not None:
            runner.stop(5.0)

    def set_uplinks(self, specs: Iterable[UplinkSpec]) -> None:
        """Make the running set equal to ``specs``: start new, restart changed, stop removed."""
        wanted = {s.remote_address: s for s in specs}
        for address in list(self._specs):
            if address not in wanted:
                self.remove(address)
        for spec in wanted.values():
            if self._specs.get(spec.remote_address) != spec or not self._running:
                self.add(spec)

    @property
    def uplinks(self) -> tuple[UplinkSpec, ...]:
        return tuple(self._specs.values())

    def status(self, remote_address: str) -> tuple[UplinkStatus, str | None]:
        """``(Status, Error)`` of an uplink (UPL-R27); usable as a StatusProvider."""
        runner = self._runners.get(remote_address)
        if runner is None:
            return UplinkStatus.OFFLINE, None
        return runner.status, runner.error

    def attempts(self, remote_address: str) -> int:
        runner = self._runners.get(remote_address)
        return runner.attempts if runner is not None else 0

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
            payload = conn.uplink.ping(self.clock())
            box: list[float] = []
            conn.ping_waiters[payload] = box
        conn.wake()
        with conn.cond:
            ok = conn.cond.wait_for(lambda: bool(box) or conn.closed, timeout)
            conn.ping_waiters.pop(payload, None)
        if not ok or not box:
            raise TransportError("no PING ACK")
        return box[0]
