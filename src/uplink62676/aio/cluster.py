"""Cluster mode: cloud nodes sharing a device registry in Redis, reaching each other's devices.

:class:`ClusterNode` plugs into a :class:`~uplink62676.aio.cloud.CloudServer`
(as its :attr:`~uplink62676.aio.cloud.CloudServer.cluster`) and does three things:

* **registry**: for every device this node holds it writes ``device -> (node,
  uplink, epoch)`` to Redis with a TTL (a hash ``<prefix>dev:<id>``), by two
  Lua scripts that follow the rules of
  :class:`~uplink62676.clusterregistry.ClusterRegistry` (a newer epoch wins;
  an unregistration removes only its own entry).  New registrations leave at
  once (batched per loop turn); every ``refresh`` seconds **one pipeline**
  refreshes all of this node's devices.  A refresh that finds a newer epoch
  elsewhere closes the local uplink: the device moved.
* **mirror**: every node keeps a local :class:`ClusterRegistry` of the whole
  cluster, filled from a snapshot (SCAN) and kept current by pub/sub -- the
  scripts publish each new holder and each removal, Redis's keyspace
  notifications (``__keyevent@<db>__:expired``) report expiries.  No polling;
  lookups cost no round trip.
* **forwarding**: a request for a device held elsewhere goes to the holding
  node's internal front door (``--node-listen``: an
  :class:`~uplink62676.aio.expose.ExposeServer` that serves only local devices)
  over one pooled HTTP/2 connection per peer
  (:class:`~uplink62676.nodelink.NodeLinkClient`), mTLS when node
  certificates are given, else a shared secret header (loopback, tests).  The
  client was authenticated by the node it reached; the internal hop trusts the
  node, and the holder serves the request as if it had arrived there.

Redis down: local devices keep being served, the mirror keeps forwarding what it
knew, unknown devices get 503 with ``Retry-After``; when Redis is back every
local device is registered again at once (the mirror starts over from a snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import attrs
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from ..clusterregistry import ClusterRegistry, Registration
from ..deviceregistry import DeviceInfo
from ..events import Headers
from ..frontdoor import FrontDoorSettings
from ..frontdoor.answers import LocalAnswer
from ..frontdoor.events import RequestRouted
from ..frontdoor.hooks import ALLOW, BodyFilter, Decision
from ..nodelink import NodeLinkClient
from ..uplink import Phase
from .cloud import CloudServer, DeviceUnavailable, _CloudConnection
from .clusterports import ClusterPorts
from .expose import ExposeServer

__all__ = ["ClusterNode", "node_client_tls_context", "node_server_tls_context"]

log = logging.getLogger("uplink62676.cluster")

SECRET_HEADER = b"x-uplink62676-node-secret"
SCHEME_HEADER = b"x-uplink62676-scheme"
#: How long the forwarding node waits for the head ("none": no limit, an RTSP tunnel's POST);
#: the holder waits as long instead of its own front-door timeout.
TIMEOUT_HEADER = b"x-uplink62676-head-timeout"
_INTERNAL = (SECRET_HEADER, SCHEME_HEADER, TIMEOUT_HEADER)

#: KEYS[1] device key; ARGV node, address, uplink, epoch (0: new), info, ttl ms, channel,
#: payload.  Returns the epoch now held, 0 when a newer one holds the device.
_REGISTER = """
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'node')
local old = tonumber(cur[1])
local e = tonumber(ARGV[4])
if e == 0 then
  local t = redis.call('TIME')
  e = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if old and old >= e then e = old + 1 end
elseif old and old > e then
  return 0
end
local es = string.format('%d', e)
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'address', ARGV[2], 'uplink', ARGV[3],
           'epoch', es, 'info', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if old ~= e or cur[2] ~= ARGV[1] then
  redis.call('PUBLISH', ARGV[7], 'R ' .. es .. ' ' .. ARGV[8])
end
return e
"""

#: KEYS[1] device key; ARGV node, epoch, channel, payload.  1: removed.
_UNREGISTER = """
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'node')
if cur[1] == ARGV[2] and cur[2] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[3], 'U ' .. ARGV[2] .. ' ' .. ARGV[4])
  return 1
end
return 0
"""


def node_server_tls_context(cert_file: str, key_file: str | None,
                            ca_file: str) -> ssl.SSLContext:
    """The internal front door's TLS: ALPN h2, a node certificate from ``ca_file`` required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(ca_file)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def node_client_tls_context(cert_file: str, key_file: str | None,
                            ca_file: str) -> ssl.SSLContext:
    """A node's TLS towards its peers: its own certificate, peers verified by ``ca_file``.

    Peers are addressed by IP and verified by the cluster's CA alone (no host name check).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(ca_file)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _header(headers: Headers, name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return v
    return None


@attrs.frozen(slots=True)
class _NodeRewriter:
    """The internal front door passes requests on as the forwarding node prepared them."""

    def request_headers(self, request: RequestRouted) -> Headers:
        return tuple(h for h in request.headers if h[0] not in _INTERNAL)

    def response_body(self, request: RequestRouted, status: int,
                      headers: Headers) -> BodyFilter | None:
        return None

    def timeout(self, request: RequestRouted, default: float | None) -> float | None:
        value = _header(request.headers, TIMEOUT_HEADER)
        if value is None:
            return default
        if value == b"none":
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return default

    def origin(self, request: RequestRouted, device_id: str) -> tuple[str, str]:
        scheme = _header(request.headers, SCHEME_HEADER)
        return (scheme.decode("latin-1") if scheme else request.scheme,
                request.authority or device_id)


_NOT_A_NODE = LocalAnswer.text(403, "only nodes of this cluster may use this port\n")


class _PeerConnection(_CloudConnection):
    """The pooled HTTP/2 connection to one peer node (no device behind it)."""

    __slots__ = ("address", "node", "on_lost")

    def __init__(self, server: CloudServer, node: str, address: str,
                 on_lost: Callable[[_PeerConnection], None]) -> None:
        super().__init__(server)
        self.uplink = NodeLinkClient(settings=server.settings, now=self.loop.time())
        self.node = node
        self.address = address
        self.on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = f"node {self.node} ({self.address})"
        self.flush()  # the preface

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.on_lost(self)


class ClusterNode:
    """One node of a cluster: Redis registry, mirror, internal front door, peer links.

    ``listen``: the internal front door (host, port); ``advertise``: the
    ``host:port`` other nodes connect to (default: ``listen``).  ``server_ssl`` /
    ``client_ssl``: mTLS between nodes (:func:`node_server_tls_context`,
    :func:`node_client_tls_context`); without them ``secret`` authenticates the
    internal hop.  ``refresh``: seconds between refreshes (TTL ``3 * refresh``
    unless given).
    """

    def __init__(self, cloud: CloudServer, *, redis_url: str, node_id: str,
                 listen: tuple[str, int], advertise: str | None = None,
                 server_ssl: ssl.SSLContext | None = None,
                 client_ssl: ssl.SSLContext | None = None, secret: bytes | None = None,
                 refresh: float = 10.0, ttl: float | None = None,
                 prefix: str = "uplink62676:", connect_timeout: float = 2.0,
                 timeout: float = 120.0) -> None:
        if server_ssl is None and secret is None:
            raise ValueError("the internal hop needs node certificates or a shared secret")
        self.cloud = cloud
        self.node_id = node_id
        self.listen = listen
        self.advertise = advertise
        self.client_ssl = client_ssl
        self.secret = secret
        self.refresh = refresh
        self.ttl = ttl if ttl is not None else 3 * refresh
        self.prefix = prefix
        self.channel = prefix + "events"
        self.connect_timeout = connect_timeout
        self.redis_url = redis_url
        self.redis: aioredis.Redis = aioredis.from_url(
            redis_url, decode_responses=True, socket_connect_timeout=connect_timeout,
            socket_timeout=max(refresh, 5.0))
        db = self.redis.connection_pool.connection_kwargs.get("db", 0)
        self.expired_channel = f"__keyevent@{db}__:expired"
        #: The whole cluster as this node last heard of it.
        self.mirror = ClusterRegistry()
        #: Devices that went away lately: 503 (they are probably reconnecting) instead of 404.
        self._gone: dict[str, tuple[float, DeviceInfo]] = {}
        #: Devices held here: id -> [info, epoch in Redis (0: not registered yet)].
        self._held: dict[str, list[Any]] = {}
        self._new: set[str] = set()
        self._removed: list[tuple[str, int]] = []
        self._resync = True
        self._kick = asyncio.Event()
        self.redis_ok = False
        self._shas: tuple[str, str] | None = None
        self._peers: dict[str, _PeerConnection] = {}
        self._opening: dict[str, asyncio.Task[_PeerConnection]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._chained: Callable[[str, DeviceInfo | None], None] | None = None
        self._trust_mtls = server_ssl is not None
        self.internal = ExposeServer(
            cloud, timeout=timeout, ssl_context=server_ssl, authorize=self._trust,
            rewriter=_NodeRewriter(),
            settings=FrontDoorSettings(
                max_requests_per_client=100_000,
                http2=attrs.evolve(FrontDoorSettings().http2, max_concurrent_streams=1000)))
        self.internal.local_only = True
        #: ``--device-ports`` across the cluster (:mod:`uplink62676.aio.clusterports`).
        self.ports: ClusterPorts | None = None
        #: Counters for benchmarks and logs.
        self.stats = {"pipelines": 0, "commands": 0, "forwarded": 0}

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis, mirror the registry, open the internal front door, start refreshing."""
        await self.internal.start(*self.listen)
        if self.advertise is None:
            self.advertise = f"{self.listen[0]}:{self.internal.port}"
        self._chained = self.cloud.on_change
        self.cloud.on_change = self._changed
        for info in self.cloud._registry.devices():
            self._changed(info.device_id, info, chain=False)
        self.cloud.cluster = self
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._reader(), name="cluster registry reader"),
                       loop.create_task(self._writer(), name="cluster registry writer")]
        log.info("cluster node %s: internal front door %s (%s), registry %s, refresh %g s, "
                 "TTL %g s", self.node_id, self.advertise,
                 "mTLS" if self._trust_mtls else "shared secret",
                 self.redis_url.split("@")[-1], self.refresh, self.ttl)

    async def close(self, grace: float = 0.0) -> None:
        """Stop forwarding to this node: remove its entries, close links and the internal door."""
        for task in self._tasks:
            # Again until it ends: a cancel that lands as the writer's asyncio.timeout expires
            # is taken for that timeout (and suppressed), and the task would wait on.
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.2)
            with contextlib.suppress(BaseException):
                task.result()
        self._tasks = []
        if self.redis_ok:
            for device_id, (_, epoch) in self._held.items():
                if epoch:
                    self._removed.append((device_id, epoch))
            self._held.clear()
            self._new.clear()
            with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(self._write(False), 2.0)
        if self.cloud.on_change == self._changed:
            self.cloud.on_change = self._chained
        if self.cloud.cluster is self:
            self.cloud.cluster = None
        await self.internal.close(grace)
        for conn in list(self._peers.values()):
            conn.close("node shutting down")
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    # --- local devices ------------------------------------------------------------------------

    def _changed(self, device_id: str, info: DeviceInfo | None, chain: bool = True) -> None:
        if chain and self._chained is not None:
            self._chained(device_id, info)
        if info is not None:
            held = self._held.get(device_id)
            if held is None:
                self._held[device_id] = [info, 0]
            else:
                held[0] = info
                held[1] = 0  # a new uplink: registered anew, with a newer epoch
            self._new.add(device_id)
        else:
            held = self._held.pop(device_id, None)
            self._new.discard(device_id)
            if held is not None and held[1]:
                self._removed.append((device_id, held[1]))
        self._kick.set()

    def _key(self, device_id: str) -> str:
        return f"{self.prefix}dev:{device_id}"

    async def _writer(self) -> None:
        """Registrations as they happen (one pipeline per batch), all of them every refresh."""
        loop = asyncio.get_running_loop()
        next_refresh = loop.time() + self.refresh
        while True:
            delay = max(0.0, next_refresh - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._kick.wait()
            self._kick.clear()
            await asyncio.sleep(0)  # let the connects of this loop turn join the batch
            full = loop.time() >= next_refresh or self._resync
            if loop.time() >= next_refresh:
                next_refresh = loop.time() + self.refresh
            if not self.redis_ok:
                continue  # the reader reconnects; it kicks us with _resync set
            try:
                await self._write(full)
            except (TimeoutError, RedisError, OSError) as exc:
                log.warning("cluster registry: write failed (%s); serving local devices, "
                            "retrying when Redis answers", exc)
                self._resync = True
                self.redis_ok = False

    async def _load_scripts(self) -> tuple[str, str]:
        if self._shas is None:
            reg = await self.redis.script_load(_REGISTER)
            unreg = await self.redis.script_load(_UNREGISTER)
            if self.ports is not None:
                self.ports.sha = None
                await self.ports.load(self.redis)
            self._shas = (str(reg), str(unreg))
        return self._shas

    async def _write(self, full: bool) -> None:
        if full:
            self._resync = False
        ids = list(self._held) if full else [d for d in self._new if d in self._held]
        self._new.clear()
        removed, self._removed = self._removed, []
        ports = self.ports
        if not ids and not removed and not (full and ports is not None):
            return  # (a full refresh with device ports also releases idle leases)
        gone = [device_id for device_id, _ in removed]
        for attempt in (1, 2):
            reg_sha, unreg_sha = await self._load_scripts()
            pipe = self.redis.pipeline(transaction=False)
            for device_id, epoch in removed:
                payload = json.dumps([device_id, self.node_id])
                pipe.evalsha(unreg_sha, 1, self._key(device_id), self.node_id, str(epoch),
                             self.channel, payload)
            ttl_ms = int(self.ttl * 1000)
            for device_id in ids:
                info, epoch = self._held[device_id]
                info_json = _info_json(info)
                payload = json.dumps([device_id, self.node_id, self.advertise, info.uplink,
                                      info_json])
                pipe.evalsha(reg_sha, 1, self._key(device_id), self.node_id, self.advertise or "",
                             info.uplink, str(epoch), info_json, ttl_ms, self.channel, payload)
            if ports is not None:  # in the same round trip: claims, and the leases of the gone
                if gone:
                    ports.queue(pipe, "touch", gone)
                ports.queue(pipe, "claim", ids)
            try:
                results = await pipe.execute(raise_on_error=True)
            except NoScriptError:
                self._shas = None  # Redis restarted: load them again
                if attempt == 2:
                    raise
                continue
            break
        self.stats["pipelines"] += 1
        self.stats["commands"] += len(removed) + len(ids)
        if ports is not None:
            claimed = results[-1]
            results = results[:-2] if gone else results[:-1]
            ports.done("claim", [d for d in ids if d in self._held], [
                p for d, p in zip(ids, claimed, strict=True) if d in self._held])
        for device_id, result in zip(ids, results[len(removed):], strict=True):
            held = self._held.get(device_id)
            if held is None:
                continue
            if int(result) == 0:
                log.warning("device %s registered on another node with a newer epoch: closing "
                            "its uplink here", device_id)
                del self._held[device_id]
                self.cloud.disconnect(device_id)
            else:
                held[1] = int(result)

    # --- the mirror ---------------------------------------------------------------------------

    async def _reader(self) -> None:
        """Subscribe, take a snapshot, then follow the events; reconnect with back-off."""
        backoff = 0.2
        while True:
            pubsub = self.redis.pubsub()
            try:
                channels = [self.channel, self.expired_channel]
                if self.ports is not None:
                    channels.append(self.ports.channel)
                await pubsub.subscribe(*channels)
                await self._enable_notifications()
                await self._snapshot()
                if self.ports is not None:
                    await self.ports.snapshot(self.redis)
                self._shas = None
                if not self.redis_ok:
                    log.info("cluster registry: connected to Redis (%d devices in the "
                             "cluster)", len(self.mirror))
                self.redis_ok = True
                self._resync = True
                self._kick.set()
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=None)
                    if message is not None:
                        self._event(str(message["channel"]), str(message["data"]))
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
                raise
            except (TimeoutError, RedisError, OSError) as exc:
                if self.redis_ok:
                    log.warning("cluster registry: Redis unreachable (%s); serving local "
                                "devices, forwarding by the last known registry", exc)
                self.redis_ok = False
                with contextlib.suppress(BaseException):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max(self.refresh / 2, 0.5))

    async def _enable_notifications(self) -> None:
        """Expiry events are what the mirror follows; turn them on if Redis has them off."""
        try:
            flags = str((await self.redis.config_get("notify-keyspace-events")).get(
                "notify-keyspace-events", ""))
            if ("E" not in flags or "x" not in flags) and "A" not in flags:
                await self.redis.config_set("notify-keyspace-events",
                                            "".join(sorted(set(flags) | {"E", "x"})))
        except RedisError as exc:  # CONFIG may be renamed away: then it must be preset
            log.warning("cluster registry: cannot check notify-keyspace-events (%s); it must "
                        "include 'Ex'", exc)

    async def _snapshot(self) -> None:
        keys = [k async for k in self.redis.scan_iter(match=self.prefix + "dev:*", count=1000)]
        regs: list[Registration] = []
        for start in range(0, len(keys), 1000):
            pipe = self.redis.pipeline(transaction=False)
            for key in keys[start:start + 1000]:
                pipe.hgetall(key)
            for key, fields in zip(keys[start:start + 1000], await pipe.execute(), strict=True):
                if fields and "epoch" in fields:
                    device_id = str(key)[len(self.prefix) + 4:]
                    regs.append(Registration(
                        device_id, fields["node"], fields.get("address", ""),
                        fields.get("uplink", ""), int(fields["epoch"]),
                        _info_from_json(fields.get("info"), device_id, fields["node"])))
        self.mirror.replace_all(regs, time.monotonic())

    def _event(self, channel: str, data: str) -> None:
        now = time.monotonic()
        if self.ports is not None and channel == self.ports.channel:
            self.ports.event(data)
            return
        if channel == self.expired_channel:
            prefix = self.prefix + "dev:"
            if data.startswith(prefix):
                device_id = data[len(prefix):]
                if (reg := self.mirror.forget(device_id)) is not None:
                    log.info("cluster registry: device %s (node %s) expired", device_id,
                             reg.node)
                    self._remember_gone(reg)
            return
        kind, _, rest = data.partition(" ")
        epoch_text, _, payload = rest.partition(" ")
        try:
            epoch = int(epoch_text)
            fields = json.loads(payload)
        except ValueError:
            log.warning("cluster registry: unreadable event %r", data[:100])
            return
        if kind == "R":
            device_id, node, address, uplink, info = fields
            reg = Registration(device_id, node, address, uplink, epoch,
                               _info_from_json(info, device_id, node))
            if self.mirror.register(reg, now):
                self._gone.pop(device_id, None)
        elif kind == "U":
            device_id, node = fields
            current = self.mirror.lookup(device_id, now)
            if self.mirror.unregister(device_id, node, epoch, now) and current is not None:
                self._remember_gone(current)

    def _remember_gone(self, reg: Registration) -> None:
        if reg.info is not None:
            self._gone[reg.device_id] = (time.monotonic() + self.ttl + self.refresh, reg.info)

    # --- what the cloud asks (RemoteDevices) --------------------------------------------------

    def device(self, device_id: str) -> DeviceInfo | None:
        """A device held by another node, as the registry mirror knows it (None: not there)."""
        reg = self.mirror.lookup(device_id, time.monotonic())
        if reg is not None:
            return reg.info
        gone = self._gone.get(device_id)
        if gone is not None:
            if gone[0] > time.monotonic():
                return gone[1]
            del self._gone[device_id]
        if not self.redis_ok:  # we cannot know: let the request fail with 503, not 404
            return DeviceInfo(device_id, 0.0, "?", "?", node="?")
        return None

    def devices(self, local: list[DeviceInfo]) -> list[DeviceInfo]:
        """The whole cluster's devices: ``local`` plus those the other nodes hold."""
        merged = {reg.device_id: reg.info for reg in self.mirror.devices(time.monotonic())
                  if reg.info is not None and reg.node != self.node_id}
        for info in local:
            merged[info.device_id] = attrs.evolve(info, node=self.node_id)
        return [merged[k] for k in sorted(merged)]

    async def route(self, device_id: str, path: str,
                    headers: list[tuple[str | bytes, str | bytes]],
                    scheme: str, *, timeout: float | None = 120.0,
                    ) -> tuple[_CloudConnection, str, list[tuple[str | bytes, str | bytes]]]:
        """The pooled link to the holder, with the path and headers for its front door."""
        reg = self.mirror.lookup(device_id, time.monotonic())
        if reg is None:
            if self.device(device_id) is not None:
                raise DeviceUnavailable("its node went away; it is reconnecting"
                                        if self.redis_ok else "the cluster registry is "
                                        "unreachable", retry_after=max(1, round(self.refresh)))
            raise KeyError(device_id)
        if reg.node == self.node_id:
            raise DeviceUnavailable("its uplink to this node just ended", retry_after=1)
        conn = await self._peer(reg.node, reg.address)
        out: list[tuple[str | bytes, str | bytes]] = [
            h for h in headers
            if (h[0] if isinstance(h[0], bytes) else h[0].encode()).lower() not in _INTERNAL]
        out.append((SCHEME_HEADER, scheme))
        out.append((TIMEOUT_HEADER, "none" if timeout is None else f"{timeout:g}"))
        if self.secret is not None and self.client_ssl is None:
            out.append((SECRET_HEADER, self.secret))
        self.stats["forwarded"] += 1
        return conn, f"/devices/{quote(device_id, safe='')}{path}", out

    # --- peer links ---------------------------------------------------------------------------

    async def _peer(self, node: str, address: str) -> _PeerConnection:
        conn = self._peers.get(node)
        if (conn is not None and not conn.closed and conn.uplink.phase is Phase.HTTP2
                and conn.address == address):
            return conn
        task = self._opening.get(node)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._connect(node, address))
            self._opening[node] = task
            task.add_done_callback(lambda _t: self._opening.pop(node, None))
        return await asyncio.shield(task)

    async def _connect(self, node: str, address: str) -> _PeerConnection:
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: _PeerConnection(self.cloud, node, address, self._peer_lost),
                host.strip("[]"), int(port), ssl=self.client_ssl,
                server_hostname=node if self.client_ssl is not None else None),
                self.connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise DeviceUnavailable(f"its node {node} ({address}) cannot be reached: "
                                    f"{getattr(exc, 'strerror', None) or exc}",
                                    retry_after=max(1, round(self.refresh))) from None
        self._peers[node] = conn
        log.info("connected to node %s at %s", node, address)
        return conn

    def _peer_lost(self, conn: _PeerConnection) -> None:
        if self._peers.get(conn.node) is conn:
            del self._peers[conn.node]

    # --- the internal hop's trust -------------------------------------------------------------

    def _trust(self, request: RequestRouted) -> Decision:
        peer = request.peer
        if self._trust_mtls and peer is not None and peer.certificate:
            return ALLOW  # verified against the cluster's CA (CERT_REQUIRED)
        if self.secret is not None:
            presented = _header(request.headers, SECRET_HEADER)
            if presented is not None and hmac.compare_digest(presented, self.secret):
                return ALLOW
        return Decision(False, _NOT_A_NODE, reason="not a node of this cluster", failure=True)


def _info_json(info: DeviceInfo) -> str:
    return json.dumps([info.since, info.peer, info.auth, info.protocol, info.path])


def _info_from_json(text: str | None, device_id: str, node: str) -> DeviceInfo:
    try:
        since, peer, auth, protocol, path = json.loads(text or "")
        return DeviceInfo(device_id, float(since), str(peer), str(auth), str(protocol),
                          str(path), node=node)
    except (ValueError, TypeError):
        return DeviceInfo(device_id, 0.0, "?", "?", node=node)
