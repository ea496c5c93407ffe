"""The cloud's front door: plain HTTP clients reach devices through their uplinks.

:class:`ExposeServer` listens on one port (plain, or TLS with ALPN h2 and
http/1.1), and with a :class:`~uplink62676.frontdoor.ports.PortAssigner` on one
more port per connected device; every accepted client gets a
:class:`~uplink62676.frontdoor.FrontDoorConnection` (HTTP/1.1 or HTTP/2,
routing by path, virtual host or port, limits, local answers -- all sans-I/O).
This module only moves bytes and time, and runs one task per request routed
to a device: it calls :meth:`CloudServer.open_stream`, feeds the request body
as the device reads it (acknowledging the client's octets as they go), and
relays the answer under the client's flow control.  A client that goes away
cancels the device's stream at once.

The hooks (:mod:`uplink62676.frontdoor.hooks`): ``authorize(request)`` is
called in :meth:`_Client._request` for every routed request -- a
:class:`~uplink62676.frontdoor.hooks.BodyAuthorizer` (the users file,
:class:`~uplink62676.frontdoor.auth.FrontDoorAuth`) after the SOAP body was
buffered in :meth:`_Client._buffered` when it wants it -- and the rewriter's
``origin`` / ``request_headers`` / ``response_body`` in :meth:`_Client._exchange`
(default :class:`~uplink62676.frontdoor.rewrite.CloudRewriter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol, cast

from .. import events as ev
from ..deviceregistry import DeviceInfo
from ..errors import ConfigStoreError, LocalProtocolError, TransportError
from ..frontdoor import (
    ClientLimits,
    FrontDoorConnection,
    FrontDoorSettings,
    HostRouter,
    PathRouter,
    PeerInfo,
    PortRouter,
    RequestRefused,
    RequestRouted,
    RouteKind,
    Router,
    bad_gateway,
    device_label,
    device_listing,
    has_label,
    split_device_path,
    unknown_device,
)
from ..frontdoor.answers import LocalAnswer, device_urls
from ..frontdoor.auth import ConnectionAuth, FrontDoorAuth
from ..frontdoor.hooks import (
    FORBIDDEN,
    Authorizer,
    BodyAuthorizer,
    Decision,
    Rewriter,
    allow_all,
    client_origin,
)
from ..frontdoor.ports import PortAssigner
from ..frontdoor.rewrite import CloudRewriter
from ..io.observe import Observer
from ..io.portstore import PortStore
from ..io.tls import peer_common_name
from .cloud import CloudServer, DeviceUnavailable, ResponseStream

__all__ = ["ExposeServer", "split_device_path"]

log = logging.getLogger("uplink62676.expose")

#: Re-check the wall clock at least this often while a device-port lease runs out.
_EXPIRY_RECHECK = 3600.0


class PortTable(Protocol):
    """Who has which device port (:class:`~uplink62676.frontdoor.ports.PortAssigner`, or a
    cluster's :class:`~uplink62676.frontdoor.sharedports.SharedPortTable`)."""

    def lookup(self, device_id: str) -> int | None: ...
    def device_at(self, port: int) -> str | None: ...


class ExposeServer:
    """HTTP/1.1 + HTTP/2 front door of a :class:`CloudServer`.

    ``timeout`` bounds the wait for a device's response head.  It is longer
    than the longest PullMessages long poll a client may ask for (events.md:
    at least 60 s), so resource queries with ``--follow`` pass through.

    ``domain``: route ``<label>.DOMAIN`` to the device of ``<label>``
    (:class:`~uplink62676.frontdoor.HostRouter`).  ``ssl_context``: TLS on
    every front-door port (:func:`uplink62676.io.tls.frontdoor_tls_context`).
    ``device_ports`` (+ ``port_store`` to keep it across restarts): a port of
    its own per connected device; this object then chains itself into
    ``cloud.on_change``.  ``authorize`` / ``rewriter``: see
    :mod:`uplink62676.frontdoor.hooks` (``authorize`` defaults to
    :func:`~uplink62676.frontdoor.hooks.allow_all`; ``uplink62676 cloud`` passes
    a :class:`~uplink62676.frontdoor.auth.FrontDoorAuth`, or refuses everything
    without a users file).  ``clock``: wall-clock seconds for the port leases and
    for authentication (Digest nonces, ``wsu:Created``).
    """

    def __init__(self, cloud: CloudServer, *, timeout: float = 120.0,
                 settings: FrontDoorSettings | None = None, domain: str | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 device_ports: PortAssigner | None = None, port_store: PortStore | None = None,
                 authorize: Authorizer | BodyAuthorizer = allow_all,
                 rewriter: Rewriter | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cloud = cloud
        self.timeout = timeout
        self.settings = settings or FrontDoorSettings()
        self.limits = ClientLimits(self.settings.max_requests_per_client)
        self.router: Router = HostRouter(domain) if domain else PathRouter()
        self.domain = self.router.domain if isinstance(self.router, HostRouter) else None
        self.ssl_context = ssl_context
        self.ports = device_ports
        self.port_store = port_store
        self.authorize = authorize
        self._checked_authorizer: object = None
        self._by_body: BodyAuthorizer | None = None
        self.rewriter: Rewriter = rewriter or CloudRewriter()
        self.clock = clock
        self.host = "127.0.0.1"
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._port_servers: dict[int, asyncio.Server] = {}
        self._opening: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._saved_version = -1 if device_ports is None else device_ports.version
        self._save_pending = False
        self._expiry: asyncio.TimerHandle | None = None
        self._chained: Callable[[str, DeviceInfo | None], None] | None = None
        self._warned_labels: set[str] = set()
        #: ``(transport, first octets) -> took it``: players' own RTSP-over-HTTP channels
        #: (:meth:`uplink62676.aio.rtspgateway.RtspGateway.take_http_channel`).
        self.rtsp_hook: Callable[[asyncio.Transport, bytes], bool] | None = None
        #: Called with every front-door event (:mod:`uplink62676.io.observe`); None: off.
        self.observer: Observer | None = None
        #: A cluster node's internal front door: serve only the devices held here, never
        #: forward again (:mod:`uplink62676.aio.cluster`).
        self.local_only = False
        #: Cluster mode: the device ports are leased across the cluster
        #: (:mod:`uplink62676.aio.clusterports`), which calls :meth:`open_device_port` and
        #: :meth:`close_device_port`; this front door only listens (``device_ports`` None).
        self.shared_ports: PortTable | None = None
        self._port_device: dict[int, str] = {}

    @property
    def scheme(self) -> str:
        """``https`` when the front door has TLS, else ``http``."""
        return "https" if self.ssl_context is not None else "http"

    def body_authorizer(self) -> BodyAuthorizer | None:
        """``authorize`` if it is a :class:`BodyAuthorizer`, asked once per authorizer (a
        protocol's ``isinstance`` costs more than the rest of routing a request)."""
        authorize = self.authorize
        if authorize is not self._checked_authorizer:
            self._checked_authorizer = authorize
            self._by_body = authorize if isinstance(authorize, BodyAuthorizer) else None
        return self._by_body

    async def _listen(self, router: Router, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: _Client(self, router), host, port, backlog=1024, ssl=self.ssl_context,
            ssl_handshake_timeout=self.settings.head_timeout if self.ssl_context else None)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving the front door on ``host``:``port`` (0 picks a free port)."""
        self.host = host
        self._server = await self._listen(self.router, host, port)
        log.info("exposing devices on %s://%s:%d/devices/<device-id>/... (%s)", self.scheme,
                 host, self.port, "HTTP/1.1 and h2 over TLS" if self.ssl_context
                 else "HTTP/1.1 and h2c")
        if self.domain:
            log.info("exposing devices by virtual host %s://<device-label>.%s:%d/", self.scheme,
                     self.domain, self.port)
        if self.ports is not None:
            self._chained = self.cloud.on_change
            self.cloud.on_change = self._device_changed
            log.info("device ports %d-%d (released %g s after a device went away)",
                     self.ports.low, self.ports.high, self.ports.idle_release)
            for info in self.cloud.devices():
                self._device_changed(info.device_id, info, chain=False)
            self._expired()

    @property
    def port(self) -> int:
        """The port the front door listens on (useful after binding port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def device_port(self, device_id: str) -> int | None:
        """The listening port of ``device_id`` (None: it has none, or it is not open)."""
        table = self.ports if self.ports is not None else self.shared_ports
        port = table.lookup(device_id) if table is not None else None
        return port if port in self._port_servers else None

    def open_device_port(self, device_id: str, port: int) -> None:
        """Listen on ``port`` for ``device_id`` (the shared table leased it); idempotent."""
        if self._server is None:
            return
        if port in self._port_servers and self._port_device.get(port) != device_id:
            self.close_device_port(port)  # the port changed hands
        if port not in self._port_servers and port not in self._opening:
            self._opening.add(port)
            task = asyncio.get_running_loop().create_task(self._open_port(device_id, port))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def close_device_port(self, port: int) -> None:
        """Stop listening on a device port (its lease was released)."""
        self._port_device.pop(port, None)
        server = self._port_servers.pop(port, None)
        if server is not None:
            server.close()

    async def close(self, grace: float = 0.0) -> None:
        """Stop: no new connections; requests in flight get ``grace`` seconds to finish, then
        those without a response head are answered 503 and the others reset; then every
        client connection is closed."""
        servers = [s for s in (self._server, *self._port_servers.values()) if s is not None]
        for server in servers:
            server.close()  # stop accepting first
        pending = [r.task for c in self._clients for r in c.requests.values()
                   if r.task is not None and not r.task.done()]
        if pending and grace > 0:
            log.info("front door: %d requests in flight, waiting up to %g s", len(pending), grace)
            await asyncio.wait(pending, timeout=grace)
        for client in list(self._clients):
            client.stopping = True
        pending = [t for t in pending if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
            await asyncio.sleep(0)  # let the 503s / resets be written
        if self.ports is not None and self.cloud.on_change == self._device_changed:
            self.cloud.on_change = self._chained
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for task in list(self._tasks):
            task.cancel()
        self._port_servers.clear()
        for client in list(self._clients):
            client.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._server = None
        self._save()

    # --- device ports (adapter side of PortAssigner) ------------------------------------------

    def _device_changed(self, device_id: str, info: DeviceInfo | None, chain: bool = True) -> None:
        if chain and self._chained is not None:
            self._chained(device_id, info)
        ports = self.ports
        if ports is None:
            return
        now = self.clock()
        if info is None:
            ports.disconnected(device_id, now)
        else:
            port = ports.assign(device_id, now)
            if port is None:
                log.warning("no free device port in %d-%d for device %s: reachable by path%s "
                            "only", ports.low, ports.high, device_id,
                            " and virtual host" if self.domain else "")
            elif port not in self._port_servers and port not in self._opening:
                self._opening.add(port)
                task = asyncio.get_running_loop().create_task(self._open_port(device_id, port))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._save_soon()
        self._arm_expiry()

    async def _open_port(self, device_id: str, port: int) -> None:
        try:
            server = await self._listen(PortRouter(device_id), self.host, port)
        except OSError as exc:
            log.warning("cannot listen on device port %d for device %s (%s): reachable by "
                        "path only", port, device_id, exc.strerror or exc)
            return
        finally:
            self._opening.discard(port)
        table = self.ports if self.ports is not None else self.shared_ports
        if table is None or table.device_at(port) != device_id or self._server is None:
            server.close()  # released (or closed) while the socket opened
            if table is not None and (other := table.device_at(port)) is not None \
                    and self._server is not None:
                self.open_device_port(other, port)  # leased to another device meanwhile
            return
        self._port_servers[port] = server
        self._port_device[port] = device_id
        log.info("device %s on its own port %s://%s:%d/", device_id, self.scheme, self.host,
                 port)

    def _arm_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        deadline = self.ports.next_deadline() if self.ports is not None else None
        if deadline is not None:
            delay = min(max(deadline - self.clock(), 0.0), _EXPIRY_RECHECK)
            self._expiry = asyncio.get_running_loop().call_later(delay, self._expired)

    def _expired(self) -> None:
        self._expiry = None
        if self.ports is None:
            return
        for lease in self.ports.expire(self.clock()):
            log.info("device port %d of device %s released (offline since %s)", lease.port,
                     lease.device_id, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime(lease.offline_since or 0)))
            server = self._port_servers.pop(lease.port, None)
            if server is not None:
                server.close()
        self._save_soon()
        self._arm_expiry()

    def _save_soon(self) -> None:
        """Persist the leases once per loop turn, however many changed (crash-safe write)."""
        if self.ports is None or self.ports.version == self._saved_version \
                or self._save_pending:
            return
        self._save_pending = True
        asyncio.get_running_loop().call_soon(self._save)

    def _save(self) -> None:
        self._save_pending = False
        ports = self.ports
        if ports is None or self.port_store is None or ports.version == self._saved_version:
            return
        try:
            self.port_store.save(ports.leases(), (ports.low, ports.high))
        except ConfigStoreError as exc:
            log.error("%s (device ports may change at the next start)", exc)
            return
        self._saved_version = ports.version

    # --- GET /devices -------------------------------------------------------------------------

    def listing_entry(self, info: DeviceInfo, authority: str | None) -> dict[str, object]:
        """``info`` as ``GET /devices`` shows it, with every URL that reaches the device."""
        entry: dict[str, object] = dict(info.to_json())
        entry["uplinks"] = [u.uplink_json() for u in self.cloud.uplinks(info.device_id)]
        label = None
        if self.domain:
            if has_label(info.device_id):
                label = device_label(info.device_id)
            elif info.device_id not in self._warned_labels:
                self._warned_labels.add(info.device_id)
                log.info("device ID %r is too long for a DNS label: no virtual host",
                         info.device_id[:80])
        entry["urls"] = device_urls(info.device_id, scheme=self.scheme,
                                    authority=authority or f"{self.host}:{self.port}",
                                    label=label, domain=self.domain,
                                    device_port=self.device_port(info.device_id))
        return entry


_TOO_LARGE = LocalAnswer.text(413, "request body too large for authentication\n")


class _Request:
    __slots__ = ("body", "ended", "task", "writable")

    def __init__(self, has_body: bool) -> None:
        # Most requests (GET, small SOAP POSTs ending with their head) need no queue.
        self.body: asyncio.Queue[tuple[bytes, int] | None] | None = (
            asyncio.Queue() if has_body else None)
        self.writable: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.ended = not has_body


#: What a request still waiting for its device gets when the cloud stops.
SHUTTING_DOWN = LocalAnswer(503, b"the cloud is shutting down; retry later\n",
                            extra=((b"retry-after", b"5"),))


class _Client(asyncio.Protocol):
    """One accepted client: socket <-> FrontDoorConnection, plus one task per device request."""

    def __init__(self, server: ExposeServer, router: Router) -> None:
        self.stopping = False
        self.server = server
        self.router = router
        self.loop = asyncio.get_running_loop()
        self.conn: FrontDoorConnection  # made in connection_made, once the peer is known
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, _Request] = {}
        self.can_write: asyncio.Event | None = None
        self.flush_pending = False
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None
        self.reading = True
        self.auth_session: ConnectionAuth | None = (
            ConnectionAuth() if isinstance(server.authorize, FrontDoorAuth) else None)
        self.sniffed = False

    # --- transport ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._clients.add(self)
        self.conn = FrontDoorConnection(self.server.settings, self.router, now=self.loop.time(),
                                        peer=_peer(transport), limits=self.server.limits)
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

    def close(self) -> None:
        """Flush what is queued (the shutdown answers), then close the connection."""
        self._flush_now()
        if self.transport is not None:
            self.transport.close()

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
        observe = self.server.observer
        for e in events:
            if observe is not None:
                observe(e)
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
            elif kind is RequestRefused:
                assert isinstance(e, RequestRefused)
                log.debug("front-door request from %s refused: %s",
                          e.peer.address if e.peer else "?", e.reason)
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
        server = self.server
        decision: Decision | None = None
        if route.kind is RouteKind.DEVICE or route.kind is RouteKind.LISTING:
            by_body = server.body_authorizer()
            if by_body is not None:
                if by_body.wants_body(e):  # WS-UsernameToken: decide on the body
                    request = self.requests[e.stream_id] = _Request(True)
                    request.task = self.loop.create_task(self._buffered(e, request, by_body))
                    return
                decision = self._decide(by_body, e, None)
            else:  # THE authentication hook (DEV-R18)
                decision = cast(Authorizer, server.authorize)(e)
            if not self._allowed(e, decision):
                return
        if route.kind is RouteKind.DEVICE:
            if server.cloud.device(route.device_id) is None:
                self.conn.answer(e.stream_id, unknown_device(route.device_id))
                return
            request = self.requests[e.stream_id] = _Request(not e.end_stream)
            request.task = self.loop.create_task(self._exchange(e, request))
        elif route.kind is RouteKind.LISTING:
            may_see = decision.may_see if decision is not None else None
            self.conn.answer(e.stream_id, device_listing(
                [server.listing_entry(d, e.authority) for d in server.cloud.devices()
                 if may_see is None or may_see(d.device_id)]))
        elif route.answer is not None:
            self.conn.answer(e.stream_id, route.answer)

    def _decide(self, authorize: BodyAuthorizer, e: RequestRouted,
                body: bytes | None) -> Decision:
        now = self.server.clock()
        if isinstance(authorize, FrontDoorAuth):
            return authorize.decide(e, body, now, self.auth_session)
        return authorize.decide(e, body, now)

    def _allowed(self, e: RequestRouted, decision: Decision) -> bool:
        """Answer a refused request (and log why, without secrets)."""
        if decision.allowed:
            if decision.reason:
                log.debug("front door: %s", decision.reason)
            return True
        if decision.failure:
            log.warning("front door refused %s %s: %s", e.method, _short(e.target),
                        decision.reason)
        else:
            log.debug("front door refused %s %s: %s", e.method, _short(e.target),
                      decision.reason)
        self.conn.answer(e.stream_id, decision.answer or FORBIDDEN)
        return False

    async def _buffered(self, e: RequestRouted, request: _Request,
                        authorize: BodyAuthorizer) -> None:
        """Read the whole (bounded) body, decide on it, then exchange it with the device."""
        sid, conn = e.stream_id, self.conn
        assert request.body is not None
        parts: list[bytes] = []
        size = 0
        try:
            while (item := await request.body.get()) is not None:
                data, credit = item
                size += len(data)
                conn.acknowledge_data(sid, credit)
                self.flush()
                if size > authorize.max_body:
                    self.requests.pop(sid, None)
                    conn.answer(sid, _TOO_LARGE)
                    self.flush()
                    return
                parts.append(data)
        except asyncio.CancelledError:
            self.requests.pop(sid, None)
            return
        body = b"".join(parts)
        decision = self._decide(authorize, e, body)
        if not self._allowed(e, decision):
            self.requests.pop(sid, None)
            self.flush()
            return
        if self.server.cloud.device(e.route.device_id) is None:
            self.requests.pop(sid, None)
            conn.answer(sid, unknown_device(e.route.device_id))
            self.flush()
            return
        await self._exchange(e, request, body if decision.body is None else decision.body)

    async def _body(self, sid: int, request: _Request) -> AsyncIterator[bytes]:
        """The client's body as the device reads it; octets acknowledged once handed on."""
        assert request.body is not None
        while (item := await request.body.get()) is not None:
            data, size = item
            yield data
            self.conn.acknowledge_data(sid, size)
            self.flush()

    async def _exchange(self, e: RequestRouted, request: _Request,
                        whole: bytes | None = None) -> None:
        sid, conn, route = e.stream_id, self.conn, e.route
        body: bytes | AsyncIterator[bytes] | None = None
        head_sent = False
        rewriter = self.server.rewriter
        headers = rewriter.request_headers(e)
        if whole is not None:  # buffered for authentication (maybe changed)
            body = whole
            headers = (*(h for h in headers if h[0] != b"content-length"),
                       (b"content-length", str(len(whole)).encode()))
        elif not e.end_stream:
            body = self._body(sid, request)
        stream: ResponseStream | None = None
        origin = getattr(rewriter, "origin", None)
        scheme, authority = (origin(e, route.device_id) if origin is not None
                             else client_origin(e, route.device_id))
        timeout_of = getattr(rewriter, "timeout", None)  # a cluster's internal hop
        timeout: float | None = (self.server.timeout if timeout_of is None
                                 else timeout_of(e, self.server.timeout))
        try:
            try:
                stream = await self.server.cloud.open_stream(
                    route.device_id, e.method, route.target, headers, body,
                    authority=authority, scheme=scheme, timeout=timeout,
                    forward=not self.server.local_only)
            except KeyError:
                conn.answer(sid, unknown_device(route.device_id))
                return
            except DeviceUnavailable as exc:
                log.info("request to %s: %s", route.device_id, exc)
                conn.answer(sid, LocalAnswer(
                    503, f"device {route.device_id!r}: {exc}; retry later\n".encode(),
                    extra=((b"retry-after", str(exc.retry_after).encode()),)))
                return
            except TransportError as exc:
                log.warning("request to %s failed: %s", route.device_id, exc)
                conn.answer(sid, bad_gateway(route.device_id, str(exc)))
                return
            headers = stream.headers
            body_filter = rewriter.response_body(e, stream.status, headers)
            if body_filter is not None:  # the length may change
                headers = tuple(h for h in headers if h[0] != b"content-length")
            conn.send_response(sid, stream.status, headers)
            head_sent = True
            self.flush()
            ended = False
            try:
                while chunk := await stream.read():
                    if body_filter is not None and not (chunk := body_filter.feed(chunk)):
                        continue
                    # the last chunk carries END_STREAM (no empty DATA frame after it)
                    ended = body_filter is None and stream.at_end
                    conn.send_data(sid, chunk, end_stream=ended)
                    self.flush()
                    if ended:
                        break
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
            if not ended:  # the filter's held octets and END_STREAM in one frame
                conn.send_data(sid, body_filter.end() if body_filter is not None else b"",
                               end_stream=True)
        except asyncio.CancelledError:
            if self.stopping:  # the cloud shuts down: say so instead of vanishing
                if head_sent:
                    conn.reset_stream(sid)
                else:
                    conn.answer(sid, SHUTTING_DOWN)
            # else: the client went away
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


def _short(target: str) -> str:
    return ascii(target[:80]) + ("..." if len(target) > 80 else "")


def _peer(transport: asyncio.Transport) -> PeerInfo:
    """The client end as accepted: address, port, TLS, ALPN, verified certificate CN."""
    name = transport.get_extra_info("peername")
    sock = transport.get_extra_info("sockname")
    ssl_object = transport.get_extra_info("ssl_object")
    address, port = (str(name[0]), int(name[1])) if isinstance(name, tuple) else ("", 0)
    local = int(sock[1]) if isinstance(sock, tuple) else 0
    if ssl_object is None:
        return PeerInfo(address, port, local_port=local)
    return PeerInfo(address, port, tls=True, alpn=ssl_object.selected_alpn_protocol(),
                    certificate=peer_common_name(ssl_object), local_port=local)
