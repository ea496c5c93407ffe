"""The cloud's front door: plain HTTP clients reach devices through their uplinks.

:class:`ExposeServer` listens on one port; every accepted client gets a
:class:`~uplink62676.frontdoor.FrontDoorConnection` (HTTP/1.1 or h2c, routing,
limits, local answers -- all sans-I/O).  This module only moves bytes and
time, and runs one task per request routed to a device: it calls
:meth:`CloudServer.open_stream`, feeds the request body as the device reads
it (acknowledging the client's octets as they go), and relays the answer
under the client's flow control.  A client that goes away cancels the
device's stream at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from .. import events as ev
from ..errors import LocalProtocolError, TransportError
from ..frontdoor import (
    FrontDoorConnection,
    RequestRouted,
    RouteKind,
    bad_gateway,
    device_listing,
    split_device_path,
    unknown_device,
)
from .cloud import CloudServer, ResponseStream

__all__ = ["ExposeServer", "split_device_path"]

log = logging.getLogger("uplink62676.expose")


class ExposeServer:
    """HTTP/1.1 + h2c front door of a :class:`CloudServer`.

    ``timeout`` bounds the wait for a device's response head.  It is longer
    than the longest PullMessages long poll a client may ask for (events.md:
    at least 60 s), so resource queries with ``--follow`` pass through.
    """

    def __init__(self, cloud: CloudServer, *, timeout: float = 120.0) -> None:
        self.cloud = cloud
        self.timeout = timeout
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        #: ``(transport, first octets) -> took it``: players' own RTSP-over-HTTP channels
        #: (:meth:`uplink62676.aio.rtspgateway.RtspGateway.take_http_channel`).
        self.rtsp_hook: Callable[[asyncio.Transport, bytes], bool] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Client(self), host, port, backlog=1024)
        log.info("exposing devices on http://%s:%d/devices/<device-id>/... (HTTP/1.1 and h2c)",
                 host, self.port)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for client in list(self._clients):
                client.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None


class _Request:
    __slots__ = ("body", "ended", "task", "writable")

    def __init__(self, has_body: bool) -> None:
        # Most requests (GET, small SOAP POSTs ending with their head) need no queue.
        self.body: asyncio.Queue[tuple[bytes, int] | None] | None = (
            asyncio.Queue() if has_body else None)
        self.writable: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.ended = not has_body


class _Client(asyncio.Protocol):
    """One accepted client: socket <-> FrontDoorConnection, plus one task per device request."""

    def __init__(self, server: ExposeServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.conn = FrontDoorConnection(now=self.loop.time())
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, _Request] = {}
        self.can_write: asyncio.Event | None = None
        self.flush_pending = False
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.reading = True
        self.sniffed = False

    # --- transport ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._clients.add(self)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self.sniffed:
            self.sniffed = True
            hook = self.server.rtsp_hook
            if hook is not None and self.transport is not None and hook(self.transport, data):
                self.server._clients.discard(self)  # an RTSP tunnel channel now
                if self.timer is not None:
                    self.timer.cancel()
                return
        self._handle(self.conn.receive_data(data, self.loop.time()))
        self._flush_now()

    def eof_received(self) -> bool | None:
        self._handle(self.conn.connection_lost(self.loop.time()))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._clients.discard(self)
        self._handle(self.conn.connection_lost(self.loop.time()))
        for request in self.requests.values():  # whatever the events did not cancel yet
            if request.task is not None:
                request.task.cancel()
        self.requests.clear()
        if self.timer is not None:
            self.timer.cancel()
        if self.can_write is not None:
            self.can_write.set()

    def pause_writing(self) -> None:
        self.can_write = asyncio.Event()

    def resume_writing(self) -> None:
        if self.can_write is not None:
            self.can_write.set()
            self.can_write = None

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def flush(self) -> None:
        """Write what the connection queued, once per loop turn (many commands, one write)."""
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self.flush_pending = False
        transport = self.transport
        if transport is None:
            return
        data = self.conn.data_to_send()
        if data and not transport.is_closing():
            transport.write(data)
        if self.conn.closed:
            transport.close()
            return
        if self.conn.wants_data is not self.reading:
            self.reading = self.conn.wants_data
            (transport.resume_reading if self.reading else transport.pause_reading)()
        self._arm()

    def _arm(self) -> None:
        """One timer at the connection's deadline; an early timer is simply re-armed."""
        deadline = self.conn.next_deadline()
        if deadline is None or (self.timer is not None and self.timer_at is not None
                                and self.timer_at <= deadline):
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = deadline
        self.timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = self.timer_at = None
        self._handle(self.conn.handle_timeout(self.loop.time()))
        self._flush_now()

    # --- events -------------------------------------------------------------------------------

    def _handle(self, events: list[ev.Event]) -> None:
        for e in events:
            kind = type(e)
            if kind is ev.DataReceived:
                assert isinstance(e, ev.DataReceived)
                if (r := self.requests.get(e.stream_id)) is not None and r.body is not None:
                    r.body.put_nowait((e.data, e.flow_controlled_length))
                else:
                    self.conn.acknowledge_data(e.stream_id, e.flow_controlled_length)
            elif kind is RequestRouted:
                assert isinstance(e, RequestRouted)
                self._request(e)
            elif kind is ev.StreamEnded:
                r = self.requests.get(e.stream_id)  # type: ignore[attr-defined]
                if r is not None and r.body is not None:
                    r.ended = True
                    r.body.put_nowait(None)
            elif kind is ev.StreamWritable:
                r = self.requests.get(e.stream_id)  # type: ignore[attr-defined]
                if r is not None and r.writable is not None:
                    r.writable.set()
            elif kind is ev.StreamReset:
                assert isinstance(e, ev.StreamReset)
                if (r := self.requests.pop(e.stream_id, None)) is not None and r.task is not None:
                    r.task.cancel()  # the client is gone: so is the device's stream
            elif kind is ev.ConnectionTerminated:
                assert isinstance(e, ev.ConnectionTerminated)
                if e.error_code:
                    log.info("front-door client: %s", e.reason)

    def _request(self, e: RequestRouted) -> None:
        route = e.route
        if route.kind is RouteKind.DEVICE:
            if self.server.cloud.device(route.device_id) is None:
                self.conn.answer(e.stream_id, unknown_device(route.device_id))
                return
            request = self.requests[e.stream_id] = _Request(not e.end_stream)
            request.task = self.loop.create_task(self._exchange(e, request))
        elif route.kind is RouteKind.LISTING:
            self.conn.answer(e.stream_id, device_listing(
                [d.to_json() for d in self.server.cloud.devices()]))
        elif route.answer is not None:
            self.conn.answer(e.stream_id, route.answer)

    async def _body(self, sid: int, request: _Request) -> AsyncIterator[bytes]:
        """The client's body as the device reads it; octets acknowledged once handed on."""
        assert request.body is not None
        while (item := await request.body.get()) is not None:
            data, size = item
            yield data
            self.conn.acknowledge_data(sid, size)
            self.flush()

    async def _exchange(self, e: RequestRouted, request: _Request) -> None:
        sid, conn, route = e.stream_id, self.conn, e.route
        body = None if e.end_stream else self._body(sid, request)
        stream: ResponseStream | None = None
        try:
            try:
                stream = await self.server.cloud.open_stream(
                    route.device_id, e.method, route.target, e.headers, body,
                    timeout=self.server.timeout)
            except KeyError:
                conn.answer(sid, unknown_device(route.device_id))
                return
            except TransportError as exc:
                log.warning("request to %s failed: %s", route.device_id, exc)
                conn.answer(sid, bad_gateway(route.device_id, str(exc)))
                return
            conn.send_response(sid, stream.status, stream.headers)
            self.flush()
            try:
                while chunk := await stream.read():
                    conn.send_data(sid, chunk)
                    self.flush()
                    if conn.queued(sid):  # the client's window is shut: wait for it
                        request.writable = asyncio.Event()
                        await request.writable.wait()
                    if self.can_write is not None:  # the socket's buffer is full
                        await self.can_write.wait()
            except TransportError as exc:
                log.warning("device went away mid-response: %s", exc)
                conn.reset_stream(sid)
                return
            stream = None
            conn.end_stream(sid)
        except asyncio.CancelledError:
            pass  # the client went away
        except LocalProtocolError as exc:
            log.info("front-door stream %d: %s", sid, exc)
            conn.reset_stream(sid)
        finally:
            if stream is not None:
                stream.cancel()
            self.requests.pop(sid, None)
            while request.body is not None and not request.body.empty():
                # credit the client for what the device never read
                if (item := request.body.get_nowait()) is not None:
                    conn.acknowledge_data(sid, item[1])
            self.flush()
