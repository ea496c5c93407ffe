"""A token bucket driven by the caller's clock (for the HTTP/2 flood counters)."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``burst`` tokens at once, refilled at ``rate`` per second of ``now``."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, burst: float, rate: float, now: float = 0.0) -> None:
        self.burst = float(burst)
        self.rate = float(rate)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token; False when the bucket is empty (the limit is crossed)."""
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
