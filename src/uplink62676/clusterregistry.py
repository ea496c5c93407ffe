"""Which node holds each device in a cluster of cloud nodes, sans-I/O.

Every node records, for each device it holds, a :class:`Registration`:
``device -> (node, uplink, epoch)`` with a time to live that the node keeps
refreshing.  The rules, which the Redis scripts of
:mod:`uplink62676.aio.cluster` follow key for key and which every node's local
mirror of the registry follows too:

* a registration with a **greater or equal epoch** replaces the current one
  (equal: the holder refreshing it); a smaller epoch is refused -- a device
  that reconnected elsewhere has a newer epoch, so its old node can never win
  it back by refreshing a stale entry;
* a new registration gets an epoch greater than any seen for that device
  (:meth:`ClusterRegistry.next_epoch`);
* an **unregistration** removes the entry only when node and epoch match: a
  node that lost a device it no longer holds removes nothing;
* an entry whose time ran out is gone (a dead node's devices fall away after
  the TTL unless they registered elsewhere first).

``now`` is any monotonic clock in seconds; ``ttl`` None: entries do not
expire here (a mirror told of expiries by the store).
"""

from __future__ import annotations

import attrs

from .deviceregistry import DeviceInfo

__all__ = ["ClusterRegistry", "Registration"]


@attrs.frozen(slots=True)
class Registration:
    """One device's holder: ``node`` at ``address`` (its internal front door)."""

    device_id: str
    node: str
    address: str
    uplink: str
    epoch: int
    info: DeviceInfo | None = attrs.field(default=None, eq=False)


class ClusterRegistry:
    """The cluster's devices by ID; see the module docstring for the rules."""

    __slots__ = ("_entries", "_expires", "ttl")

    def __init__(self, ttl: float | None = None) -> None:
        self.ttl = ttl
        self._entries: dict[str, Registration] = {}
        self._expires: dict[str, float] = {}

    def _live(self, device_id: str, now: float) -> Registration | None:
        reg = self._entries.get(device_id)
        if reg is not None and self._expires.get(device_id, now + 1) <= now:
            del self._entries[device_id]
            del self._expires[device_id]
            return None
        return reg

    def next_epoch(self, device_id: str, now: float, floor: int = 0) -> int:
        """An epoch that wins over every live registration of ``device_id`` (>= ``floor``)."""
        reg = self._live(device_id, now)
        return max(floor, reg.epoch + 1 if reg is not None else 1)

    def register(self, reg: Registration, now: float, ttl: float | None = None) -> bool:
        """Record (or refresh) ``reg``; False when a newer epoch holds the device."""
        current = self._live(reg.device_id, now)
        if current is not None and current.epoch > reg.epoch:
            return False
        self._entries[reg.device_id] = reg
        ttl = self.ttl if ttl is None else ttl
        if ttl is not None:
            self._expires[reg.device_id] = now + ttl
        else:
            self._expires.pop(reg.device_id, None)
        return True

    def unregister(self, device_id: str, node: str, epoch: int, now: float) -> bool:
        """Remove ``device_id`` if ``node`` holds it with ``epoch``; True when removed."""
        current = self._live(device_id, now)
        if current is None or current.node != node or current.epoch != epoch:
            return False
        self.forget(device_id)
        return True

    def forget(self, device_id: str) -> Registration | None:
        """Drop the entry whatever it is (the store said it expired)."""
        self._expires.pop(device_id, None)
        return self._entries.pop(device_id, None)

    def expire(self, now: float) -> list[Registration]:
        """Remove and return the entries whose time ran out."""
        gone = [d for d, at in self._expires.items() if at <= now]
        return [reg for d in gone if (reg := self.forget(d)) is not None]

    def lookup(self, device_id: str, now: float) -> Registration | None:
        """The live registration of ``device_id`` at ``now`` (an expired one counts as none)."""
        return self._live(device_id, now)

    def devices(self, now: float) -> list[Registration]:
        """Live registrations, ordered by device ID."""
        self.expire(now)
        return [self._entries[d] for d in sorted(self._entries)]

    def replace_all(self, regs: list[Registration], now: float) -> None:
        """Start over from a snapshot of the store (after connecting to it)."""
        self._entries.clear()
        self._expires.clear()
        for reg in regs:
            self.register(reg, now)

    def next_deadline(self) -> float | None:
        """When the next registration expires (for the adapter's timer), or None."""
        return min(self._expires.values(), default=None)

    def __len__(self) -> int:
        return len(self._entries)
