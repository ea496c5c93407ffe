"""How many requests one client address may have in flight, across its connections.

One connection is already bounded (HTTP/1.1: one exchange at a time; HTTP/2:
``FrontDoorSettings.http2.max_concurrent_streams``), but a client can open many
connections.  :class:`ClientLimits` is one counter per client address, shared by
every connection of a front door (the adapter passes the peer address and nothing
else); past ``max_per_client`` a request is refused -- HTTP/1.1 503 with
``Retry-After``, HTTP/2 ``RST_STREAM REFUSED_STREAM`` (safe to retry, RFC 9113
§8.7) -- before any device sees it.  Issue 10, item 5.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from .answers import LocalAnswer
from .events import PeerInfo

__all__ = ["Admission", "ClientLimits", "busy"]


def busy(retry_after: int) -> LocalAnswer:
    """503 with ``Retry-After`` for a client past its bound of requests in flight."""
    return LocalAnswer(503, b"too many requests in flight from your address; retry later\n",
                       extra=((b"retry-after", str(retry_after).encode()),))


class ClientLimits:
    """Requests in flight per client address; one instance per front door, not thread-safe."""

    __slots__ = ("_counts", "max_per_client")

    def __init__(self, max_per_client: int = 128) -> None:
        if isinstance(max_per_client, bool) or not isinstance(max_per_client, int) \
                or max_per_client < 1:
            raise ConfigurationError(f"max_per_client must be >= 1, got {max_per_client!r}")
        self.max_per_client = max_per_client
        self._counts: dict[str, int] = {}

    def acquire(self, address: str) -> bool:
        """Count one more request of ``address``; False (nothing counted) past the bound."""
        n = self._counts.get(address, 0)
        if n >= self.max_per_client:
            return False
        self._counts[address] = n + 1
        return True

    def release(self, address: str) -> None:
        """One request of ``address`` is over (once per successful :meth:`acquire`)."""
        n = self._counts.get(address, 0)
        if n <= 1:
            self._counts.pop(address, None)
        else:
            self._counts[address] = n - 1

    def in_flight(self, address: str) -> int:
        """Requests this client address has in progress."""
        return self._counts.get(address, 0)

    def __len__(self) -> int:
        """Addresses with requests in flight (the table never holds idle ones)."""
        return len(self._counts)


class Admission:
    """One connection's share of :class:`ClientLimits`: its peer, what it holds, its answer."""

    __slots__ = ("_address", "_limits", "busy", "peer")

    def __init__(self, limits: ClientLimits | None, peer: PeerInfo | None,
                 retry_after: int = 1) -> None:
        self._limits = limits
        self.peer = peer
        self._address = peer.address if peer is not None else ""
        self.busy = busy(retry_after)

    def admit(self) -> bool:
        """Take one slot for a new request; False: refuse it."""
        return self._limits is None or self._limits.acquire(self._address)

    def leave(self) -> None:
        """Give back one slot taken by :meth:`admit`."""
        if self._limits is not None:
            self._limits.release(self._address)
