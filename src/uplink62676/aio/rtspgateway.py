"""The cloud's RTSP gateway: ordinary players reach cameras through their devices' uplinks.

``uplink62676 cloud --rtsp-listen HOST:PORT`` runs :class:`RtspGateway`: an
RTSP server over TCP (RTP interleaved) at ``rtsp://HOST:PORT/devices/<id>/<camera path>``.
Players that tunnel RTSP over HTTP themselves reach it through the front
door's port (:meth:`RtspGateway.take_http_channel`, the expose hook).  Each
player gets a :class:`~uplink62676.rtsp.gateway.GatewaySession` (all decisions:
authentication, rewriting, keep-alives, what ends what); this module moves
bytes between the player's socket and a tunnel through the uplink:

* RFC 8441 extended CONNECT (``:protocol websocket``, ``rtsp.onvif.org``,
  the cloud masks) where the device announced it and accepts it (UPL-57,
  MED-R11), otherwise
* the HTTP tunnel pair: GET + POST with one fresh ``x-sessioncookie``, the
  POST with ``content-length: 2147483647`` for the tunnel's lifetime and ended
  by RST_STREAM CANCEL, never END_STREAM (UPL-58, UPL-60).

A device held by another cluster node (:mod:`uplink62676.aio.cluster`) has no
RFC 8441 tunnel here (:meth:`CloudServer.extended_connect` knows local uplinks
only): its tunnel is the HTTP pair, which :meth:`CloudServer.open_stream` forwards.

The device's octets are read as they come (HTTP/2 windows stay open, MED-R10);
a player that leaves more than ``max_player_buffer`` unread is dropped, not
the uplink (MED-R16).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable

from ..errors import ConfigurationError, TransportError, UplinkError
from ..frontdoor.labels import device_from_label
from ..frontdoor.rewrite import RtspUriRules
from ..frontdoor.routing import HostRouter
from ..httpauth import DigestSettings, DigestVerifier
from ..rtsp.gateway import (
    ClosePlayer,
    CloseTunnel,
    GatewayEvent,
    GatewaySession,
    GatewaySettings,
    OpenTunnel,
    PlayerAuthenticated,
    Route,
    SessionLimits,
    parse_route,
)
from ..rtsp.httptunnel import (
    Base64Decoder,
    CookieTable,
    get_headers,
    new_cookie,
    post_headers,
    sniff_tunnel_head,
)
from ..users import Users
from ..websocket import WebSocketFraming
from .cloud import CloudServer, ResponseStream

__all__ = ["RtspGateway"]

log = logging.getLogger("uplink62676.rtsp")

WEBSOCKET_PATH = "/rtsp-over-websocket"
WEBSOCKET_HEADERS = (("sec-websocket-version", "13"), ("sec-websocket-protocol", "rtsp.onvif.org"))


class _Tunnel:
    """Both channels of one tunnel through the uplink, as the gateway's adapter sees them."""

    def __init__(self, player: _Player, route: Route) -> None:
        self.player = player
        self.route = route
        self.up: asyncio.Queue[bytes] = asyncio.Queue()
        self.up_size = 0
        self.streams: list[ResponseStream] = []
        self.tasks: list[asyncio.Task[object]] = []
        self.framing: WebSocketFraming | None = None
        self.closed = False
        self.kind = ""

    # --- opening -------------------------------------------------------------------------------

    async def open(self) -> int:
        """Open the tunnel; 200 or the RTSP status to answer the waiting requests with."""
        gw = self.player.gateway
        cloud, device = gw.cloud, self.route.device_id
        if cloud.device(device) is None:
            return 404
        timeout = gw.settings.open_timeout
        if gw.transport != "http" and cloud.extended_connect(device):
            framing = WebSocketFraming(client=True, entropy=os.urandom)
            try:
                stream = await cloud.open_stream(device, "CONNECT", WEBSOCKET_PATH,
                                                 WEBSOCKET_HEADERS, self._upload(), timeout=timeout,
                                                 protocol="websocket")
            except (TransportError, KeyError) as exc:
                log.info("device %s: no RFC 8441 tunnel (%s)", device, exc)
            else:
                if stream.status == 200:
                    self.framing, self.kind = framing, "websocket"
                    self.streams.append(stream)
                    self._start(self._download(stream))
                    return 200
                stream.cancel()
            if gw.transport == "websocket":
                return 502
        cookie = new_cookie(secrets.token_bytes)
        path = self.route.path
        try:
            down = await cloud.open_stream(device, "GET", path, get_headers(cookie), None,
                                           timeout=timeout)
        except KeyError:
            return 404
        except TransportError as exc:
            log.info("device %s: tunnel GET failed: %s", device, exc)
            return 502
        if down.status != 200:
            down.cancel()
            return 404 if down.status == 404 else 502
        self.kind = "http"
        self.streams.append(down)
        # The POST is never answered (MED-15): its head is not awaited; cancelling the task
        # resets the stream with CANCEL (UPL-60).
        self.tasks.append(asyncio.create_task(cloud.open_stream(
            device, "POST", path, post_headers(cookie), self._upload(), timeout=None)))
        self._start(self._download(down))
        return 200

    def _start(self, coro: object) -> None:
        self.tasks.append(asyncio.create_task(coro))  # type: ignore[arg-type]

    # --- moving bytes --------------------------------------------------------------------------

    def send(self, rtsp: bytes) -> bool:
        """Queue player octets for the device; False when the player floods the uplink."""
        if self.closed:
            return True
        if self.framing is not None:
            self.up.put_nowait(self.framing.data_to_send(rtsp))
        else:
            self.up.put_nowait(base64.b64encode(rtsp))
        self.up_size += len(rtsp)
        return self.up_size <= self.player.gateway.settings.max_queued * 16

    async def _upload(self) -> AsyncIterator[bytes]:
        while True:  # ends only by cancellation: never END_STREAM on the POST (UPL-60)
            chunk = await self.up.get()
            self.up_size = max(0, self.up_size - len(chunk))
            if chunk:
                yield chunk

    async def _download(self, stream: ResponseStream) -> None:
        player = self.player
        reason = "the device ended the tunnel"
        try:
            while chunk := await stream.read():
                if self.framing is not None:
                    chunk, closed = self.framing.receive_data(chunk, 0.0)
                    if control := self.framing.data_to_send():
                        self.up.put_nowait(control)
                    if closed is not None:
                        reason = f"WebSocket closed ({closed.code})"
                        break
                if chunk:
                    player.from_device(chunk)
                if self.closed:
                    return
        except (TransportError, UplinkError) as exc:
            reason = f"tunnel lost: {exc}"
        if not self.closed:
            player.handle(player.session.device_closed(reason))

    # --- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.framing is not None:
            self.framing.close(1000)
            self.up.put_nowait(self.framing.data_to_send())
        asyncio.get_running_loop().create_task(self._finish())

    async def _finish(self) -> None:
        # Let a last TEARDOWN leave (at most 0.3 s), then reset every stream (CANCEL).
        for _ in range(30):
            if self.up.empty():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        for task in self.tasks:
            task.cancel()
        for stream in self.streams:
            stream.cancel()


class _Player:
    """One player: its session, where its octets go (``out``), its tunnel."""

    def __init__(self, gateway: RtspGateway, out: asyncio.Transport, peer: str) -> None:
        self.gateway = gateway
        self.loop = asyncio.get_running_loop()
        self.out = out
        self.peer = peer
        self.session = gateway.new_session(self.loop.time())
        self.tunnel: _Tunnel | None = None
        self.slot: tuple[str | None, str] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        gateway.players.add(self)

    def feed(self, data: bytes) -> None:
        self.handle(self.session.receive_player(data, self.loop.time()))

    def from_device(self, data: bytes) -> None:
        self.handle(self.session.receive_device(data, self.loop.time()))

    def lost(self) -> None:
        if not self.closed:
            self.handle(self.session.player_closed(self.loop.time()))
        self._closed()

    def handle(self, events: list[GatewayEvent]) -> None:
        for event in events:
            if isinstance(event, OpenTunnel):
                self._open(event)
            elif isinstance(event, CloseTunnel):
                self._flush()
                self._end_tunnel(event.reason)
            elif isinstance(event, ClosePlayer):
                self._flush()
                log.info("player %s: closing (%s)", self.peer, event.reason)
                self.out.close()
                self._closed()
            elif isinstance(event, PlayerAuthenticated):
                log.info("player %s authenticated as %r", self.peer, event.user)
        self._flush()
        self._arm()

    def _flush(self) -> None:
        data = self.session.player_data_to_send()
        if data and not self.out.is_closing():
            self.out.write(data)
            if self.out.get_write_buffer_size() > self.gateway.settings.max_player_buffer:
                log.warning("player %s: more than %d octets unread; dropping it", self.peer,
                            self.gateway.settings.max_player_buffer)
                self.gateway.dropped += 1
                events = self.session.player_closed(self.loop.time(), "player too slow")
                self.out.abort()
                self.handle(events)
                return
        up = self.session.device_data_to_send()
        if up and self.tunnel is not None and not self.tunnel.send(up):
            self.out.abort()
            self.handle(self.session.player_closed(self.loop.time(), "player floods the tunnel"))

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        deadline = self.session.next_deadline()
        if deadline is not None and not self.closed:
            self.timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self.timer = None
        self.handle(self.session.handle_timeout(self.loop.time()))

    def _open(self, event: OpenTunnel) -> None:
        gw = self.gateway
        if not gw.limits.acquire(event.user, event.route.device_id):
            log.warning("player %s: session limit reached for %s", self.peer, event.route.device_id)
            self.handle(self.session.tunnel_failed(453, self.loop.time()))
            return
        self.slot = (event.user, event.route.device_id)
        tunnel = self.tunnel = _Tunnel(self, event.route)

        async def opening() -> None:
            try:
                status = await tunnel.open()
            except Exception as exc:  # a failure to open must answer the player
                log.warning("player %s: tunnel failed: %r", self.peer, exc)
                status = 502
            if self.tunnel is not tunnel or tunnel.closed:
                tunnel.close()
                return
            if status == 200:
                log.info("player %s: %s tunnel to %s%s", self.peer, tunnel.kind,
                         event.route.device_id, event.route.path)
                self.handle(self.session.tunnel_opened(self.loop.time()))
            else:
                self._end_tunnel("not opened")
                self.handle(self.session.tunnel_failed(status, self.loop.time()))

        self.loop.create_task(opening())

    def _end_tunnel(self, reason: str) -> None:
        if self.tunnel is not None:
            log.info("player %s: tunnel ends (%s)", self.peer, reason)
            self.tunnel.close()
            self.tunnel = None
        if self.slot is not None:
            self.gateway.limits.release(*self.slot)
            self.slot = None

    def _closed(self) -> None:
        self.closed = True
        self._end_tunnel("player gone")
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.gateway.players.discard(self)


class _RtspProtocol(asyncio.Protocol):
    """A player speaking RTSP over TCP."""

    def __init__(self, gateway: RtspGateway) -> None:
        self.gateway = gateway
        self.player: _Player | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self.player = _Player(self.gateway, transport, f"{peer[0]}:{peer[1]}" if peer else "?")

    def data_received(self, data: bytes) -> None:
        assert self.player is not None
        self.player.feed(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.player is not None:
            self.player.lost()


class _HttpChannel(asyncio.Protocol):
    """A player's own RTSP-over-HTTP channel on the front door (GET out, POST in)."""

    def __init__(self, gateway: RtspGateway, transport: asyncio.Transport, kind: str,
                 cookie: str) -> None:
        self.gateway = gateway
        self.transport = transport
        self.kind = kind
        self.cookie = cookie
        self.player: _Player | None = None
        self.decoder = Base64Decoder()

    def start(self, rest: bytes) -> None:
        gw = self.gateway
        if self.kind == "GET":
            peer = self.transport.get_extra_info("peername")
            player = _Player(gw, self.transport, f"{peer[0]}:{peer[1]} (HTTP)" if peer else "?")
            try:
                gw.http_tunnels.open(self.cookie, player)
            except UplinkError:
                self.transport.write(b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                self.transport.close()
                player.lost()
                return
            self.player = player
            self.transport.write(b"HTTP/1.0 200 OK\r\nServer: uplink62676\r\n"
                                 b"Content-Type: application/x-rtsp-tunnelled\r\n"
                                 b"Cache-Control: no-store\r\nPragma: no-cache\r\n\r\n")
        else:
            try:
                self.player = gw.http_tunnels.bind(self.cookie)
            except UplinkError:
                self.transport.write(b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                self.transport.close()
                return
        if rest:
            self.data_received(rest)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover
        pass

    def data_received(self, data: bytes) -> None:
        if self.player is None or self.kind == "GET":
            return  # nothing is read from the GET channel after its head
        try:
            rtsp = self.decoder.feed(data)
        except UplinkError:
            self.player.out.write(b"RTSP/1.0 400 Bad Request\r\n\r\n")  # MED-R4
            self.transport.close()
            return
        if rtsp:
            self.player.feed(rtsp)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.kind == "GET" and self.player is not None:
            self.gateway.http_tunnels.close(self.cookie, self.player)
            self.player.lost()  # the GET is the tunnel (MED-17); a POST's end is not (MED-R6)


class RtspGateway:
    """RTSP server for players, relaying through ``cloud``'s uplinks (module docstring).

    ``users``: the front door's users (RTSP Digest, device visibility); None lets
    every player in.  ``transport``: ``"auto"`` (RFC 8441 where offered, else the
    HTTP pair), ``"http"`` or ``"websocket"``.  ``domain``: as the front door's
    ``--expose-domain``, ``rtsp://<label>.DOMAIN:PORT/<camera path>`` reaches the
    device of ``<label>`` (the host is in every RTSP Request-URI); the path route
    ``/devices/<id>/`` works on any host.  The front door's per-device ports have
    no RTSP twin: through them GetStreamUri answers the path route (RtspUriRules).
    """

    def __init__(self, cloud: CloudServer, *, users: Users | None = None,
                 settings: GatewaySettings | None = None, limits: SessionLimits | None = None,
                 transport: str = "auto", domain: str | None = None,
                 entropy: Callable[[int], bytes] = secrets.token_bytes) -> None:
        if transport not in ("auto", "http", "websocket"):
            raise ValueError(f"transport must be auto, http or websocket, not {transport!r}")
        self.cloud = cloud
        self.users = users
        self.settings = settings or GatewaySettings()
        self.limits = limits or SessionLimits()
        self.transport = transport
        self.hosts = HostRouter(domain) if domain else None
        # MD5 only: what ffmpeg, VLC and GStreamer answer in RTSP.
        digest = DigestSettings(realm=self.settings.realm,
                                algorithms=("MD5",))  # type: ignore[arg-type]
        self.verifier = DigestVerifier(digest, entropy) if users is not None else None
        self.players: set[_Player] = set()
        self.http_tunnels: CookieTable[_Player] = CookieTable(4096)
        self.dropped = 0
        self._server: asyncio.Server | None = None

    def device_of_host(self, host: str) -> str | None:
        """The device a virtual host ``<label>.DOMAIN`` names, or None."""
        if self.hosts is None:
            return None
        try:
            label = self.hosts.label_of(host)
        except ConfigurationError:
            return None
        return device_from_label(label) if label else None

    def route_of(self, uri: str) -> Route | None:
        """Where a player's Request-URI leads: ``/devices/<id>/`` or a virtual host."""
        return parse_route(uri, device_of_host=self.device_of_host if self.hosts else None)

    def new_session(self, now: float) -> GatewaySession:
        """A gateway session for a new player, with the front door's users when configured."""
        users = self.users
        if users is None:
            return GatewaySession(self.settings, route_of=self.route_of, now=now)
        return GatewaySession(self.settings, verifier=self.verifier,
                              password_of=users.password_of, can_see=users.can_see,
                              route_of=self.route_of, now=now)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start accepting players on ``host``:``port`` (0 picks a free port)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _RtspProtocol(self), host, port,
                                                backlog=1024)
        if self.users is None:
            log.warning("RTSP gateway on rtsp://%s:%d/devices/<id>/...: NO AUTHENTICATION "
                        "(any player may watch any camera; give the cloud --users)", host,
                        self.port)
        else:
            log.info("RTSP gateway on rtsp://%s:%d/devices/<id>/... (RTSP Digest)", host,
                     self.port)

    @property
    def port(self) -> int:
        """The port the gateway listens on (useful after binding port 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def stream_uri_rules(self) -> RtspUriRules:
        """The front door's ``extra_rules``: GetStreamUri answers name this gateway (started)."""
        return RtspUriRules(self.port, domain=self.hosts.domain if self.hosts else None)

    def take_http_channel(self, transport: asyncio.Transport, data: bytes) -> bool:
        """The front door's hook: take ``transport`` when ``data`` opens a tunnel channel."""
        found = sniff_tunnel_head(data)
        if found is None:
            return False
        kind, cookie, _, head = found
        channel = _HttpChannel(self, transport, kind, cookie)
        transport.set_protocol(channel)
        channel.start(data[head:])
        return True

    async def close(self) -> None:
        """Stop listening and drop every player connection."""
        if self._server is not None:
            self._server.close()
        for player in list(self.players):
            with contextlib.suppress(Exception):
                player.out.abort()
            player.lost()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
