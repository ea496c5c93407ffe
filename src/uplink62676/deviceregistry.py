"""Which devices are connected to the cloud, and through which uplink, sans-I/O.

The registry maps a device ID to the uplink that serves it (an opaque *handle*: the
adapter's connection object, or a key when the registry lives elsewhere) and to the
:class:`DeviceInfo` that ``GET /devices`` shows.  It holds the one rule of who stays:
a newer uplink of a device replaces the older one, which the caller then closes (a device
that reconnects while its old connection lingers must not be listed twice).

:class:`DeviceRegistry` is the small interface the cloud adapter needs, so that other
rules (parallel uplinks of one device) and other stores (a cluster's shared one) can
stand in for :class:`InMemoryDeviceRegistry`.
"""

from __future__ import annotations

import datetime
from typing import Any, Generic, Protocol, TypeVar

import attrs

__all__ = ["DeviceInfo", "DeviceRegistry", "InMemoryDeviceRegistry"]

H = TypeVar("H")


@attrs.frozen(slots=True)
class DeviceInfo:
    """A connected device as ``GET /devices`` shows it (``since``: epoch seconds)."""

    device_id: str
    since: float
    peer: str
    auth: str
    protocol: str = "h2c-reverse"

    def to_json(self) -> dict[str, Any]:
        since = datetime.datetime.fromtimestamp(self.since, tz=datetime.UTC)
        return {
            "id": self.device_id,
            "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "peer": self.peer,
            "auth": self.auth,
            "protocol": self.protocol,
        }


class DeviceRegistry(Protocol[H]):
    """Connected devices and their uplinks' handles."""

    def register(self, info: DeviceInfo, handle: H) -> tuple[H, ...]:
        """Record ``handle`` as ``info.device_id``'s uplink; returns the handles to close."""
        ...

    def unregister(self, device_id: str, handle: H) -> bool:
        """Forget ``handle``; True when that removed the device (it is gone now)."""
        ...

    def lookup(self, device_id: str) -> H | None:
        """The handle that serves ``device_id`` now."""
        ...

    def info(self, device_id: str) -> DeviceInfo | None:
        """What the registry knows of ``device_id``."""
        ...

    def devices(self) -> list[DeviceInfo]:
        """All connected devices, ordered by ID."""
        ...


class InMemoryDeviceRegistry(Generic[H]):
    """One uplink per device, the newest wins; a plain dict."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, tuple[H, DeviceInfo]] = {}

    def register(self, info: DeviceInfo, handle: H) -> tuple[H, ...]:
        old = self._entries.get(info.device_id)
        self._entries[info.device_id] = (handle, info)
        if old is None or old[0] is handle:
            return ()
        return (old[0],)

    def unregister(self, device_id: str, handle: H) -> bool:
        entry = self._entries.get(device_id)
        if entry is None or entry[0] is not handle:
            return False  # already replaced by a newer uplink: that one stays
        del self._entries[device_id]
        return True

    def lookup(self, device_id: str) -> H | None:
        entry = self._entries.get(device_id)
        return entry[0] if entry is not None else None

    def info(self, device_id: str) -> DeviceInfo | None:
        entry = self._entries.get(device_id)
        return entry[1] if entry is not None else None

    def devices(self) -> list[DeviceInfo]:
        return [self._entries[k][1] for k in sorted(self._entries)]

    def __len__(self) -> int:
        return len(self._entries)
