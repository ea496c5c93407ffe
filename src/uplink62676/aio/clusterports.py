"""Per-device ports across a cluster: the port table in Redis, every node listening on all.

With ``--device-ports LOW-HIGH`` and ``--registry``, the leases are not a file of
each node (:mod:`uplink62676.io.portstore`) but one table in Redis that the nodes
change by the Lua script :data:`_CLAIM`, which follows
:class:`~uplink62676.frontdoor.sharedports.SharedPortTable` key for key (a
script runs atomically: two nodes never lease one port to two devices, and a
device gets the same port whichever node it reaches).  The keys, below the
registry's prefix:

``ports:dev``  hash device -> port;  ``ports:port``  hash port -> device;
``ports:seen``  sorted set of devices by when they were last seen (ms, Redis ``TIME``);
``ports:free``  sorted set of the free ports;  ``ports:range``  ``LOW-HIGH`` it was built for.

The node holding a device claims its port when the device connects (in the same
pipeline as its registration) and at every refresh (one script call for all its
devices), which also releases the leases not seen for ``--port-idle-release``;
a device that went away is touched once, so its lease runs from then.  Every
change is published on ``<prefix>ports`` (``P <port> <device>``: leased, ``F
<port> <device>``: freed); every node mirrors the table (a snapshot when it
connects to Redis, then these events) and listens on the port of **every** lease
of the cluster, so a request to a device's port on any node reaches the device
-- forwarded to its holder like any other request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ..frontdoor.sharedports import SharedPortTable
from .expose import ExposeServer

__all__ = ["ClusterPorts"]

log = logging.getLogger("uplink62676.cluster")

#: KEYS dev, port, seen, free, range; ARGV low, high, idle ms, channel, mode ('claim' or
#: 'touch'), now ms ('0': Redis TIME), devices...  Returns each device's port (0: none).
_CLAIM = """
local now = tonumber(ARGV[6])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local low, high = tonumber(ARGV[1]), tonumber(ARGV[2])
local range = ARGV[1] .. '-' .. ARGV[2]
if redis.call('GET', KEYS[5]) ~= range then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local p = tonumber(all[i + 1])
    if p < low or p > high then
      redis.call('HDEL', KEYS[1], all[i])
      redis.call('HDEL', KEYS[2], all[i + 1])
      redis.call('ZREM', KEYS[3], all[i])
      redis.call('PUBLISH', ARGV[4], 'F ' .. all[i + 1] .. ' ' .. all[i])
    end
  end
  redis.call('DEL', KEYS[4])
  local batch = {}
  for p = low, high do
    if redis.call('HEXISTS', KEYS[2], p) == 0 then
      batch[#batch + 1] = p
      batch[#batch + 1] = p
      if #batch >= 2000 then
        redis.call('ZADD', KEYS[4], unpack(batch))
        batch = {}
      end
    end
  end
  if #batch > 0 then redis.call('ZADD', KEYS[4], unpack(batch)) end
  redis.call('SET', KEYS[5], range)
end
local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))
for _, d in ipairs(old) do
  local p = redis.call('HGET', KEYS[1], d)
  redis.call('HDEL', KEYS[1], d)
  redis.call('ZREM', KEYS[3], d)
  if p then
    redis.call('HDEL', KEYS[2], p)
    redis.call('ZADD', KEYS[4], p, p)
    redis.call('PUBLISH', ARGV[4], 'F ' .. p .. ' ' .. d)
  end
end
local out = {}
for i = 7, #ARGV do
  local d = ARGV[i]
  local p = redis.call('HGET', KEYS[1], d)
  if not p and ARGV[5] == 'claim' then
    local f = redis.call('ZPOPMIN', KEYS[4])
    if #f > 0 then
      p = f[1]
      redis.call('HSET', KEYS[1], d, p)
      redis.call('HSET', KEYS[2], p, d)
      redis.call('PUBLISH', ARGV[4], 'P ' .. p .. ' ' .. d)
    end
  end
  if p then
    redis.call('ZADD', KEYS[3], now, d)
    out[#out + 1] = tonumber(p)
  else
    out[#out + 1] = 0
  end
end
return out
"""


class ClusterPorts:
    """This node's side of the shared port table: claims, the mirror, the listeners.

    :class:`~uplink62676.aio.cluster.ClusterNode` drives it (``node.ports``): it
    adds :meth:`queue` calls to its pipelines, hands the results to :meth:`done`,
    takes a :meth:`snapshot` when it (re)connects and passes the events of
    :attr:`channel` to :meth:`event`.  The front door (``expose``) listens where
    the mirror says (``expose.shared_ports``).
    """

    def __init__(self, expose: ExposeServer, low: int, high: int, *,
                 idle_release: float, prefix: str = "uplink62676:") -> None:
        self.expose = expose
        self.idle_ms = max(1, int(idle_release * 1000))
        #: The cluster's leases as this node last heard of them.
        self.table = SharedPortTable(low, high, self.idle_ms)
        self.low, self.high, self.idle_release = low, high, idle_release
        self.prefix = prefix
        self.channel = prefix + "ports"
        self.keys = [prefix + "ports:dev", prefix + "ports:port", prefix + "ports:seen",
                     prefix + "ports:free", prefix + "ports:range"]
        self.sha: str | None = None
        self._warned: set[str] = set()
        expose.shared_ports = self.table

    async def load(self, redis: aioredis.Redis) -> str:
        """Read the whole lease table from Redis (a snapshot); returns its version."""
        if self.sha is None:
            self.sha = str(await redis.script_load(_CLAIM))
        return self.sha

    def queue(self, pipe: Any, mode: str, devices: Sequence[str]) -> None:
        """Add one claim (or touch) of ``devices`` to ``pipe`` (after :meth:`load`)."""
        assert self.sha is not None
        pipe.evalsha(self.sha, len(self.keys), *self.keys, self.low, self.high, self.idle_ms,
                     self.channel, mode, 0, *devices)

    def done(self, mode: str, devices: Sequence[str], result: Sequence[object]) -> None:
        """The ports the store answered for ``devices``: listen at once (the events follow)."""
        for device_id, raw in zip(devices, result, strict=True):
            port = int(raw)  # type: ignore[call-overload]
            if port:
                self._warned.discard(device_id)
                self._lease(device_id, port)
            elif mode == "claim" and device_id not in self._warned:
                self._warned.add(device_id)
                log.warning("no free device port in %d-%d (cluster-wide) for device %s: "
                            "reachable by path only", self.low, self.high, device_id)

    async def snapshot(self, redis: aioredis.Redis) -> None:
        """Start over from the store's table (after connecting to Redis)."""
        stored: dict[Any, Any] = await redis.hgetall(self.keys[0])
        leases = [(str(d), int(p)) for d, p in stored.items() if str(p).isdigit()]
        before = {p: d for d, p in self.table.leases()}
        self.table.replace_all(leases)
        after = {p: d for d, p in self.table.leases()}
        for port, device_id in before.items():
            if after.get(port) != device_id:
                self.expose.close_device_port(port)
        for port, device_id in after.items():
            self.expose.open_device_port(device_id, port)

    def event(self, data: str) -> None:
        """Apply one lease or release announced on the ports channel."""
        kind, _, rest = data.partition(" ")
        port_text, _, device_id = rest.partition(" ")
        if not port_text.isdigit() or not device_id:
            log.warning("cluster ports: unreadable event %r", data[:100])
            return
        port = int(port_text)
        if kind == "P":
            self._lease(device_id, port)
        elif kind == "F" and self.table.released(device_id, port):
            log.info("device port %d of device %s released", port, device_id)
            self.expose.close_device_port(port)

    def _lease(self, device_id: str, port: int) -> None:
        old = self.table.lookup(device_id)
        if self.table.assigned(device_id, port) and old is not None and old != port:
            self.expose.close_device_port(old)
        self.expose.open_device_port(device_id, port)
