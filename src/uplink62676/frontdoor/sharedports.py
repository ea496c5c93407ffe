"""Device ports shared by the nodes of a cluster: the allocation rule, sans-I/O.

With ``--device-ports`` in cluster mode the port table lives in Redis, and every
node changes it through one Lua script (:mod:`uplink62676.aio.clusterports`)
that follows :class:`SharedPortTable` key for key; every node also keeps a
:class:`SharedPortTable` as its mirror of the store (filled from a snapshot and
the store's events) to know which ports to listen on.  The rule:

* the table holds leases ``device -> port`` (one port per device, one device
  per port, every port within ``low..high``) and, per lease, when its device
  was last seen connected (``seen``, milliseconds of the store's clock);
* every change starts by **releasing** the leases not seen for
  ``idle_release`` (``seen + idle_release <= now``): their ports are free again;
* :meth:`~SharedPortTable.claim` (the node holding a device, when it connects
  and at every refresh): a device with a lease keeps its port and is seen
  ``now``; one without gets the **lowest free** port (None when the range is
  exhausted).  Claims are atomic in the store, so two nodes never hand one port
  to two devices, and a device that moves to another node finds its lease there;
* :meth:`~SharedPortTable.touch`: seen ``now``, no new lease (a device that
  just went away: its lease runs ``idle_release`` from then);
* a table with another range (a node started with a different ``--device-ports``)
  drops the leases outside the new range (:meth:`~SharedPortTable.set_range`).

A connected device is seen at every refresh, so ``idle_release`` must be longer
than the refresh interval.  ``now`` is wall-clock milliseconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

import attrs

from ..errors import ConfigurationError

__all__ = ["ClaimResult", "SharedPortTable"]


@attrs.frozen(slots=True)
class ClaimResult:
    """What one change did: each device's port (None: none free), leases made and released."""

    ports: tuple[int | None, ...] = ()
    assigned: tuple[tuple[str, int], ...] = ()
    released: tuple[tuple[str, int], ...] = ()


class SharedPortTable:
    """Leases of the ports ``low..high`` to device IDs, as the cluster's store keeps them."""

    __slots__ = ("_by_device", "_by_port", "_free", "_seen", "high", "idle_release", "low")

    def __init__(self, low: int, high: int, idle_release: int) -> None:
        if not 1 <= low <= high <= 65535:
            raise ConfigurationError(f"port range {low}-{high} must be within 1..65535")
        if not idle_release > 0:
            raise ConfigurationError(f"idle_release must be positive, got {idle_release!r}")
        self.low, self.high, self.idle_release = low, high, int(idle_release)
        self._by_device: dict[str, int] = {}
        self._by_port: dict[int, str] = {}
        self._seen: dict[str, int] = {}
        self._free = list(range(low, high + 1))

    # --- queries ------------------------------------------------------------------------------

    def lookup(self, device_id: str) -> int | None:
        """The port leased to ``device_id``, or None."""
        return self._by_device.get(device_id)

    def device_at(self, port: int) -> str | None:
        """The device that holds ``port``, or None."""
        return self._by_port.get(port)

    def leases(self) -> list[tuple[str, int]]:
        """``(device, port)`` of every lease, ordered by port."""
        return [(self._by_port[p], p) for p in sorted(self._by_port)]

    def seen(self, device_id: str) -> int | None:
        """When ``device_id``'s lease was last renewed, or None."""
        return self._seen.get(device_id)

    def __len__(self) -> int:
        return len(self._by_device)

    # --- the store's operations ---------------------------------------------------------------

    def set_range(self, low: int, high: int) -> list[tuple[str, int]]:
        """Change the range; returns the leases dropped because they fell outside it."""
        if not 1 <= low <= high <= 65535:
            raise ConfigurationError(f"port range {low}-{high} must be within 1..65535")
        if (low, high) == (self.low, self.high):
            return []
        dropped = [(d, p) for d, p in self.leases() if not low <= p <= high]
        for device_id, _ in dropped:
            self._drop(device_id)
        self.low, self.high = low, high
        self._free = [p for p in range(low, high + 1) if p not in self._by_port]
        return dropped

    def expire(self, now: int) -> list[tuple[str, int]]:
        """Release the leases not seen for ``idle_release``; returns them (by port)."""
        limit = now - self.idle_release
        gone = sorted(((d, self._by_device[d]) for d, at in self._seen.items() if at <= limit),
                      key=lambda lease: lease[1])
        for device_id, _ in gone:
            self._drop(device_id)
        return gone

    def claim(self, devices: Sequence[str], now: int) -> ClaimResult:
        """Each of ``devices`` (in order) keeps its port or gets the lowest free one."""
        released = self.expire(now)
        ports: list[int | None] = []
        assigned: list[tuple[str, int]] = []
        for device_id in devices:
            port = self._by_device.get(device_id)
            if port is None and self._free:
                port = heapq.heappop(self._free)
                self._by_device[device_id] = port
                self._by_port[port] = device_id
                assigned.append((device_id, port))
            if port is not None:
                self._seen[device_id] = now
            ports.append(port)
        return ClaimResult(tuple(ports), tuple(assigned), tuple(released))

    def touch(self, devices: Iterable[str], now: int) -> ClaimResult:
        """Mark ``devices`` seen ``now`` where they have a lease; no new leases."""
        released = self.expire(now)
        ports: list[int | None] = []
        for device_id in devices:
            port = self._by_device.get(device_id)
            if port is not None:
                self._seen[device_id] = now
            ports.append(port)
        return ClaimResult(tuple(ports), (), tuple(released))

    # --- a mirror follows the store's events --------------------------------------------------

    def assigned(self, device_id: str, port: int) -> bool:
        """The store leased ``port`` to ``device_id``; False when nothing changed."""
        if self._by_device.get(device_id) == port:
            return False
        if device_id in self._by_device:
            self._drop(device_id)
        if (other := self._by_port.get(port)) is not None:
            self._drop(other)
        self._by_device[device_id] = port
        self._by_port[port] = device_id
        if port in self._free:
            self._free.remove(port)
            heapq.heapify(self._free)
        return True

    def released(self, device_id: str, port: int) -> bool:
        """The store released ``device_id``'s ``port``; False when the mirror had no such lease."""
        if self._by_device.get(device_id) != port:
            return False
        self._drop(device_id)
        return True

    def replace_all(self, leases: Iterable[tuple[str, int]]) -> None:
        """Start over from a snapshot of the store (leases outside the range are ignored)."""
        self._by_device.clear()
        self._by_port.clear()
        self._seen.clear()
        for device_id, port in leases:
            if self.low <= port <= self.high and port not in self._by_port \
                    and device_id not in self._by_device:
                self._by_device[device_id] = port
                self._by_port[port] = device_id
        self._free = [p for p in range(self.low, self.high + 1) if p not in self._by_port]

    def _drop(self, device_id: str) -> None:
        port = self._by_device.pop(device_id)
        del self._by_port[port]
        self._seen.pop(device_id, None)
        if self.low <= port <= self.high:
            heapq.heappush(self._free, port)
