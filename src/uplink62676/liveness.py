"""Liveness of an uplink: the receive-silence watchdog and the reconnect schedule.

Both are pure: time is an argument, "randomness" is a hash of the device's
identity, so a device behaves the same on every boot and devices differ from
one another (UPL-50), without a clock or a random generator in the core.
"""

from __future__ import annotations

import hashlib
import math

import attrs

from .errors import ConfigurationError
from .settings import LivenessSettings

__all__ = ["ReconnectSchedule", "Watchdog"]

PING_PAYLOAD_PREFIX = b"UPLK"


@attrs.define(slots=True)
class Watchdog:
    """Receive-silence timer of the device end (UPL-45..49, UPL-R23).

    Any octet received restarts it (:meth:`received`).  :meth:`due` tells
    what to do at ``now``: nothing, send the next PING, or declare the link
    lost after more than ``dead_after`` seconds of silence.
    """

    settings: LivenessSettings
    last_received: float
    _pings_sent: int = 0

    def received(self, now: float) -> None:
        """Something arrived at ``now``: restart the silence count."""
        self.last_received = now
        self._pings_sent = 0

    def next_deadline(self) -> float:
        """When to send the next PING, or (after the last one) the first instant the link counts as
        dead.
        """
        if self._pings_sent < len(self.settings.ping_after):
            return self.last_received + self.settings.ping_after[self._pings_sent]
        # "More than 30 s": the first instant strictly after the limit.
        return math.nextafter(self.last_received + self.settings.dead_after, math.inf)

    def due(self, now: float) -> str | None:
        """``'ping'``, ``'dead'`` or None.  Compares instants, not differences,
        so a deadline handed out by :meth:`next_deadline` always fires."""
        last = self.last_received
        if now > last + self.settings.dead_after:
            return "dead"
        pings = self.settings.ping_after
        if self._pings_sent < len(pings) and now >= last + pings[self._pings_sent]:
            while self._pings_sent < len(pings) and now >= last + pings[self._pings_sent]:
                self._pings_sent += 1
            return "ping"
        return None


@attrs.define(slots=True)
class ReconnectSchedule:
    """The per-device ascending reconnect intervals of UPL-50 (UPL-R25, R26).

    ``interval(n) = min(d0 * 2**(n-1), cap)`` for attempt ``n >= 1``.  The
    start value ``d0`` lies in ``[min_start, max_start]`` (default 1 s to 5 s, UPL-R25)
    and is derived from
    the device identity (certificate serial, device ID, ...) by SHA-256 with a
    ``granularity`` (default 1 ms, the spec asks for 100 ms or finer), so
    thousands of devices that lost the cloud at one instant come back spread
    out.  Pass ``start`` to fix ``d0`` (the R26 vectors).

    With hashed start values the busiest 100 ms window of 10,000 devices'
    first attempts holds the scan-statistic maximum of a uniform sample over
    the 4 s range, about 3.0 %; later attempts spread wider.

    Use: :meth:`next_wait` before each attempt; :meth:`connected` when the
    uplink reaches ``Connected``; :meth:`disconnected` when it drops -- the
    count restarts at 1 if it stayed up ``stable_after`` seconds or more;
    :meth:`reset` after a configuration change (the next attempt starts at once).
    """

    identity: bytes | str | None = None
    start: float | None = None
    min_start: float = 1.0
    max_start: float = 5.0
    cap: float = 30.0
    stable_after: float = 30.0
    granularity: float = 0.001
    _attempt: int = 0
    _connected_at: float | None = None
    _immediate: bool = False

    def __attrs_post_init__(self) -> None:
        if not 0 < self.min_start <= self.max_start:
            raise ConfigurationError(
                f"need 0 < min_start <= max_start, got {self.min_start!r}, {self.max_start!r}"
            )
        if self.cap <= 0 or self.granularity <= 0:
            raise ConfigurationError(
                f"cap and granularity must be positive, got {self.cap!r}, {self.granularity!r}"
            )
        if self.start is None:
            if self.identity is None:
                raise ConfigurationError("ReconnectSchedule needs an identity or an explicit start")
            self.start = self.start_for(
                self.identity, self.min_start, self.max_start, self.granularity
            )
        elif self.start <= 0:
            raise ConfigurationError(f"start must be positive, got {self.start!r}")

    @staticmethod
    def start_for(
        identity: bytes | str,
        min_start: float = 1.0,
        max_start: float = 5.0,
        granularity: float = 0.001,
    ) -> float:
        """The individual start value ``d0`` of a device identity."""
        raw = identity.encode("utf-8") if isinstance(identity, str) else bytes(identity)
        digest = int.from_bytes(
            hashlib.sha256(b"uplink62676/reconnect\x00" + raw).digest()[:8], "big"
        )
        steps = round((max_start - min_start) / granularity)
        return min_start + (digest % (steps + 1)) * granularity

    def interval(self, attempt: int) -> float:
        """The wait before attempt ``attempt`` (1-based), without side effects."""
        if attempt < 1:
            raise ConfigurationError(f"attempts count from 1, got {attempt!r}")
        assert self.start is not None
        if attempt > 64:  # 2**63 * d0 is far beyond any cap
            return float(self.cap)
        return float(min(self.start * 2.0 ** (attempt - 1), self.cap))

    @property
    def attempt(self) -> int:
        """How many waits :meth:`next_wait` has handed out since the last reset."""
        return self._attempt

    def next_wait(self) -> float:
        """Wait before the next attempt; counts the attempt."""
        if self._immediate:
            self._immediate = False
            return 0.0
        self._attempt += 1
        return self.interval(self._attempt)

    def connected(self, now: float) -> None:
        """Note that the uplink reached ``Connected`` at ``now``."""
        self._connected_at = now

    def disconnected(self, now: float) -> None:
        """Note that the uplink dropped; the count restarts if it stayed up long enough (UPL-R25).
        """
        if self._connected_at is not None and now - self._connected_at >= self.stable_after:
            self._attempt = 0
        self._connected_at = None

    def reset(self) -> None:
        """A configuration change: the next attempt starts at once, then from interval(1)."""
        self._attempt = 0
        self._connected_at = None
        self._immediate = True
