"""Which devices are connected to the cloud, and through which uplink, sans-I/O.

The registry maps a device ID to the uplinks that serve it (opaque *handles*: the
adapter's connection objects, or keys when the registry lives elsewhere) and to the
:class:`DeviceInfo` that ``GET /devices`` shows.  It holds the rules of who stays
(uplink.md section 9.3): a device may keep **parallel uplinks** -- different upgrade
paths or mechanisms, told apart by :attr:`DeviceInfo.uplink` -- and they coexist; a
**reconnect of the same uplink** replaces its predecessor, which the caller then closes
(a device that reconnects while its old connection lingers must not be listed twice);
requests go to the newest uplink first.

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
    #: Which of the device's uplinks this is: the upgrade request's path (uplink.md 9.3).
    path: str = "/"
    #: In a cluster: the node that holds this uplink (None: this process, no cluster).
    node: str | None = None

    @property
    def uplink(self) -> str:
        """The key of this uplink among the device's parallel ones: mechanism and path."""
        return f"{self.protocol} {self.path}"

    def to_json(self) -> dict[str, Any]:
        """The entry as ``GET /devices`` lists it: ``id``, ``since`` (UTC), ``peer``, ``auth``,
        ``protocol``.
        """
        since = datetime.datetime.fromtimestamp(self.since, tz=datetime.UTC)
        return {
            "id": self.device_id,
            "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "peer": self.peer,
            "auth": self.auth,
            "protocol": self.protocol,
            **({"node": self.node} if self.node is not None else {}),
        }

    def uplink_json(self) -> dict[str, Any]:
        """This uplink alone, for the ``uplinks`` list of ``GET /devices``."""
        entry = self.to_json()
        del entry["id"]
        entry["path"] = self.path
        return entry


class DeviceRegistry(Protocol[H]):
    """Connected devices and their uplinks' handles."""

    def register(self, info: DeviceInfo, handle: H) -> tuple[H, ...]:
        """Record ``handle`` as ``info.device_id``'s uplink ``info.uplink``; returns the
        handles to close (the predecessor of that same uplink)."""
        ...

    def unregister(self, device_id: str, handle: H) -> bool:
        """Forget ``handle``; True when that removed the device (no uplink of it is left)."""
        ...

    def lookup(self, device_id: str) -> H | None:
        """The handle that serves ``device_id`` now (its newest uplink)."""
        ...

    def handles(self, device_id: str) -> list[H]:
        """Every uplink handle of ``device_id``, newest first."""
        ...

    def uplinks(self, device_id: str) -> list[DeviceInfo]:
        """Every uplink of ``device_id`` as ``GET /devices`` shows it, newest first."""
        ...

    def info(self, device_id: str) -> DeviceInfo | None:
        """What the registry knows of ``device_id``."""
        ...

    def devices(self) -> list[DeviceInfo]:
        """All connected devices, ordered by ID."""
        ...


class InMemoryDeviceRegistry(Generic[H]):
    """Parallel uplinks per device, the newest first; plain dicts."""

    __slots__ = ("_entries", "_seq")

    def __init__(self) -> None:
        # device -> uplink key -> (handle, info, registration number)
        self._entries: dict[str, dict[str, tuple[H, DeviceInfo, int]]] = {}
        self._seq = 0

    def register(self, info: DeviceInfo, handle: H) -> tuple[H, ...]:
        """Record an uplink; returns the handle it displaced under the same uplink key (to close),
        or ().
        """
        self._seq += 1
        uplinks = self._entries.setdefault(info.device_id, {})
        old = uplinks.get(info.uplink)
        uplinks[info.uplink] = (handle, info, self._seq)
        if old is None or old[0] is handle:
            return ()
        return (old[0],)

    def unregister(self, device_id: str, handle: H) -> bool:
        """Forget an uplink by its handle; False when it was not (or no longer) registered."""
        uplinks = self._entries.get(device_id)
        if uplinks is None:
            return False
        for key, (known, _, _) in uplinks.items():
            if known is handle:
                del uplinks[key]
                break
        else:
            return False  # already replaced by a newer uplink: that one stays
        if uplinks:
            return False
        del self._entries[device_id]
        return True

    def _newest_first(self, device_id: str) -> list[tuple[H, DeviceInfo, int]]:
        uplinks = self._entries.get(device_id)
        if not uplinks:
            return []
        return sorted(uplinks.values(), key=lambda entry: -entry[2])

    def lookup(self, device_id: str) -> H | None:
        """The handle of a device's newest uplink, or ``None``: where its requests go."""
        entries = self._newest_first(device_id)
        return entries[0][0] if entries else None

    def handles(self, device_id: str) -> list[H]:
        """The handles of all uplinks of a device, newest first."""
        return [entry[0] for entry in self._newest_first(device_id)]

    def info(self, device_id: str) -> DeviceInfo | None:
        """Details of a device's newest uplink, or ``None`` when it has none."""
        entries = self._newest_first(device_id)
        return entries[0][1] if entries else None

    def uplinks(self, device_id: str) -> list[DeviceInfo]:
        """Details of all uplinks of a device, newest first."""
        return [entry[1] for entry in self._newest_first(device_id)]

    def devices(self) -> list[DeviceInfo]:
        """Every connected device, sorted by ID, with its newest uplink's details."""
        return [info for k in sorted(self._entries) if (info := self.info(k)) is not None]

    def __len__(self) -> int:
        return len(self._entries)
