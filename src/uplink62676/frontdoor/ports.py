"""A front-door port of its own for every device, stable across restarts, sans-I/O.

Stock ONVIF clients take a host and a port and nothing else; with
``--device-ports LOW-HIGH`` each device gets one port of the range, so
``http://cloud:PORT/onvif/device_service`` is that device (UPL-59: the device
builds its XAddrs from the request's origin, which then needs no rewriting).

:class:`PortAssigner` is the table: a device keeps its lease while it is
connected and for ``idle_release`` seconds after it went away (7 days by
default), so a camera that reconnects, or a broker that restarts, finds the
same port; after that the port is free again.  Ports are handed out lowest
first, deterministically.  Time is wall-clock epoch seconds (``now``),
since leases outlive the process; the adapter persists :meth:`leases` with
:mod:`.portformat` (:mod:`uplink62676.io.portstore`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

import attrs

from ..errors import ConfigurationError

__all__ = ["DEFAULT_IDLE_RELEASE", "PortAssigner", "PortLease", "parse_port_range"]

#: Seconds a port stays with a device that went away (7 days).
DEFAULT_IDLE_RELEASE = 7 * 24 * 3600.0


@attrs.frozen(slots=True)
class PortLease:
    """``port`` belongs to ``device_id``; ``offline_since`` None: the device is connected."""

    device_id: str
    port: int
    offline_since: float | None = None


def parse_port_range(text: str) -> tuple[int, int]:
    """``LOW-HIGH`` (inclusive, 1..65535) -> ``(low, high)``; ConfigurationError otherwise."""
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ConfigurationError(f"expected a port range LOW-HIGH, got {text!r}")
    lo, hi = int(low), int(high)
    if not 1 <= lo <= hi <= 65535:
        raise ConfigurationError(f"port range {text!r} must satisfy 1 <= LOW <= HIGH <= 65535")
    return lo, hi


class PortAssigner:
    """Leases of the ports ``low..high`` (inclusive) to device IDs.

    ``leases``: what a previous run stored; leases outside the range (or a
    second one of a port or device) are dropped, and a lease stored as
    connected counts as offline since ``now`` (the broker was down, the
    device reconnects to claim it).
    """

    def __init__(self, low: int, high: int, *, idle_release: float = DEFAULT_IDLE_RELEASE,
                 leases: Iterable[PortLease] = (), now: float = 0.0) -> None:
        if not 1 <= low <= high <= 65535:
            raise ConfigurationError(f"port range {low}-{high} must be within 1..65535")
        if not idle_release > 0:
            raise ConfigurationError(f"idle_release must be positive, got {idle_release!r}")
        self.low, self.high, self.idle_release = low, high, float(idle_release)
        self._by_device: dict[str, PortLease] = {}
        self._by_port: dict[int, str] = {}
        for stored in leases:
            if not low <= stored.port <= high or stored.port in self._by_port \
                    or stored.device_id in self._by_device:
                continue
            lease = stored if stored.offline_since is not None else attrs.evolve(
                stored, offline_since=now)
            self._by_device[lease.device_id] = lease
            self._by_port[lease.port] = lease.device_id
        self._free = [p for p in range(low, high + 1) if p not in self._by_port]
        heapq.heapify(self._free)
        self.version = 0  # bumped on every change: the adapter saves when it moved

    # --- queries ------------------------------------------------------------------------------

    def lookup(self, device_id: str) -> int | None:
        """The port leased to a device, or ``None``."""
        lease = self._by_device.get(device_id)
        return lease.port if lease is not None else None

    def device_at(self, port: int) -> str | None:
        """The device a port is leased to, or ``None``."""
        return self._by_port.get(port)

    def leases(self) -> list[PortLease]:
        """Every lease, ordered by port (what the store keeps)."""
        return [self._by_device[self._by_port[p]] for p in sorted(self._by_port)]

    def next_deadline(self) -> float | None:
        """When the next offline lease runs out (call :meth:`expire` then), or None."""
        times = [lease.offline_since for lease in self._by_device.values()
                 if lease.offline_since is not None]
        return min(times) + self.idle_release if times else None

    # --- changes ------------------------------------------------------------------------------

    def assign(self, device_id: str, now: float) -> int | None:
        """``device_id`` connected: its port (kept, or the lowest free), None when all are taken.

        Leases that ran out by ``now`` are released first (see :meth:`expire`).
        """
        lease = self._by_device.get(device_id)
        if lease is None:
            self.expire(now)
            if not self._free:
                return None
            lease = PortLease(device_id, heapq.heappop(self._free))
            self._by_port[lease.port] = device_id
        elif lease.offline_since is None:
            return lease.port
        else:
            lease = attrs.evolve(lease, offline_since=None)
        self._by_device[device_id] = lease
        self.version += 1
        return lease.port

    def disconnected(self, device_id: str, now: float) -> None:
        """``device_id`` went away: its lease runs for ``idle_release`` seconds from ``now``."""
        lease = self._by_device.get(device_id)
        if lease is not None and lease.offline_since is None:
            self._by_device[device_id] = attrs.evolve(lease, offline_since=now)
            self.version += 1

    def release(self, device_id: str) -> int | None:
        """Free ``device_id``'s port now; returns it (None: it had none)."""
        lease = self._by_device.pop(device_id, None)
        if lease is None:
            return None
        del self._by_port[lease.port]
        heapq.heappush(self._free, lease.port)
        self.version += 1
        return lease.port

    def expire(self, now: float) -> list[PortLease]:
        """Release every lease offline for ``idle_release`` seconds or more; returns them."""
        gone = [lease for lease in self._by_device.values() if lease.offline_since is not None
                and now >= lease.offline_since + self.idle_release]
        for lease in gone:
            self.release(lease.device_id)
        return gone
