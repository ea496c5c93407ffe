"""Which way a front-door request goes: to a device, to the device list, or nowhere.

A router is a plain callable ``(method, target, authority) -> Route`` so
that routing by virtual host (``<label>.DOMAIN``) or by a per-device port
can be added as other routers without touching the connection.  The router
knows nothing of which devices are connected; the adapter checks that.
"""

from __future__ import annotations

import enum
from typing import Protocol

import attrs

from ..errors import ConfigurationError
from .answers import LISTING_METHOD, NOT_FOUND, LocalAnswer

__all__ = ["PathRouter", "Route", "RouteKind", "Router", "split_device_path"]


class RouteKind(enum.Enum):
    DEVICE = "device"  # forward to ``device_id`` as ``target``
    LISTING = "listing"  # the JSON list of connected devices
    LOCAL = "local"  # answered by the front door itself (``answer``)


@attrs.frozen(slots=True)
class Route:
    """Where one request goes; ``target`` is the path (and query) the device sees."""

    kind: RouteKind
    device_id: str = ""
    target: str = ""
    answer: LocalAnswer | None = None

    @classmethod
    def device(cls, device_id: str, target: str) -> Route:
        return cls(RouteKind.DEVICE, device_id, target)

    @classmethod
    def local(cls, answer: LocalAnswer) -> Route:
        return cls(RouteKind.LOCAL, answer=answer)


LISTING = Route(RouteKind.LISTING)


class Router(Protocol):
    """Picks the route of one request (``authority``: ``:authority`` or ``Host``, if any)."""

    def __call__(self, method: str, target: str, authority: str | None) -> Route: ...


def split_device_path(path: str) -> tuple[str, str]:
    """``/devices/<id>/<rest>`` -> ``(id, "/<rest>")``; the query stays with the rest.

    ``path`` must start with ``/devices/``; an empty id is returned as ``""``.
    """
    if not path.startswith("/devices/"):
        raise ConfigurationError(f"not a device path: {path[:100]!r}")
    rest = path[len("/devices/"):]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    device_id, tail = rest[:cut], rest[cut:]
    return device_id, tail if tail.startswith("/") else "/" + tail


@attrs.frozen(slots=True)
class PathRouter:
    """``/devices`` (GET or HEAD: the list) and ``/devices/<id>/<rest>`` (to that device)."""

    prefix: str = "/devices"

    def __call__(self, method: str, target: str, authority: str | None) -> Route:
        if target.split("?", 1)[0].rstrip("/") == self.prefix:
            return LISTING if method in ("GET", "HEAD") else Route.local(LISTING_METHOD)
        if not target.startswith(self.prefix + "/"):
            return Route.local(NOT_FOUND)
        device_id, rest = split_device_path("/devices/" + target[len(self.prefix) + 1:])
        return Route.device(device_id, rest)
