"""Which way a front-door request goes: to a device, to the device list, or nowhere.

A router is a plain callable ``(method, target, authority) -> Route``; three exist:

* :class:`PathRouter`: ``/devices/<id>/<rest>`` goes to ``<id>`` as ``/<rest>``;
* :class:`HostRouter`: ``Host: <label>.DOMAIN[:port]`` goes to the device of
  ``<label>`` (:mod:`.labels`) with the whole target as is; other hosts fall back;
* :class:`PortRouter`: every request on a device's own front-door port goes to it.

Stock ONVIF clients take a host and a port and call ``/onvif/device_service``:
the last two let them reach a device without a path prefix.  A route keeps the
``prefix`` its URL had before ``target`` so that the answers' URIs can be
rewritten (DEV-R16: only the path route needs it).  The router knows nothing
of which devices are connected; the adapter checks that.
"""

from __future__ import annotations

import enum
from typing import Protocol
from urllib.parse import unquote

import attrs

from ..errors import ConfigurationError
from .answers import LISTING_METHOD, NOT_FOUND, LocalAnswer
from .labels import device_from_label

__all__ = ["HostRouter", "PathRouter", "PortRouter", "Route", "RouteKind", "Router",
           "split_authority", "split_device_path"]


class RouteKind(enum.Enum):
    """Where a front-door request goes: a device, the device listing, or a local answer."""

    DEVICE = "device"  # forward to ``device_id`` as ``target``
    LISTING = "listing"  # the JSON list of connected devices
    LOCAL = "local"  # answered by the front door itself (``answer``)


@attrs.frozen(slots=True)
class Route:
    """Where one request goes; ``target`` is the path (and query) the device sees.

    ``prefix``: what the client's path had before ``target`` (``/devices/<id>``
    on the path route, ``""`` by virtual host or port).
    """

    kind: RouteKind
    device_id: str = ""
    target: str = ""
    answer: LocalAnswer | None = None
    prefix: str = ""

    @classmethod
    def device(cls, device_id: str, target: str, prefix: str = "") -> Route:
        """A route that forwards the request to ``device_id`` as ``target``."""
        return cls(RouteKind.DEVICE, device_id, target, prefix=prefix)

    @classmethod
    def local(cls, answer: LocalAnswer) -> Route:
        """A route answered by the front door itself."""
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
    """``/devices`` (GET or HEAD: the list) and ``/devices/<id>/<rest>`` (to that device).

    The ``<id>`` segment is percent-decoded (``/devices/cam%201/`` is ``cam 1``), so
    that every ID has a URL (``GET /devices`` lists them encoded).
    """

    prefix: str = "/devices"

    def __call__(self, method: str, target: str, authority: str | None) -> Route:
        if target.split("?", 1)[0].rstrip("/") == self.prefix:
            return LISTING if method in ("GET", "HEAD") else Route.local(LISTING_METHOD)
        if not target.startswith(self.prefix + "/"):
            return Route.local(NOT_FOUND)
        device_id, rest = split_device_path("/devices/" + target[len(self.prefix) + 1:])
        decoded = unquote(device_id) if "%" in device_id else device_id
        return Route.device(decoded, rest, f"{self.prefix}/{device_id}")


def split_authority(authority: str) -> tuple[str, int | None]:
    """``host[:port]`` (``[v6]:port`` too) -> (lowercase host without a final dot, port)."""
    host, port = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        if end > 0:
            host, rest = authority[:end + 1], authority[end + 1:]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
    elif authority.count(":") == 1:
        host, _, text = authority.partition(":")
        if text.isdigit():
            port = int(text)
    return host.lower().rstrip("."), port


#: 404 for ``<label>.DOMAIN`` where the label names no device.
NO_SUCH_HOST = LocalAnswer.text(404, "this host name names no device (see GET /devices)\n")
#: 400 for a request target that is not a path (absolute or authority form).
NOT_A_PATH = LocalAnswer.text(400, "the request target must be a path (/...)\n")


def _domain(value: str) -> str:
    return str(value).lower().strip(".")


@attrs.frozen(slots=True)
class HostRouter:
    """``<label>.DOMAIN[:port]`` -> that device, target as is; other hosts -> ``fallback``.

    The bare ``DOMAIN`` (and any other host, or none) goes to ``fallback``, the
    :class:`PathRouter` by default, so ``GET /devices`` and the path route stay.
    A label that names no device (:func:`.labels.device_from_label`) is a 404.
    """

    domain: str = attrs.field(converter=_domain)
    fallback: Router = attrs.field(factory=PathRouter)

    @domain.validator
    def _check(self, _attr: attrs.Attribute[str], value: str) -> None:
        if not value or any(not part or len(part) > 63 for part in value.split(".")):
            raise ConfigurationError(f"not a domain name: {value!r}")

    def label_of(self, authority: str | None) -> str | None:
        """The left-most label when ``authority`` is ``<label>.DOMAIN[:port]``, else None."""
        if not authority:
            return None
        host, _ = split_authority(authority)
        head, dot, tail = host.partition(".")
        return head if dot and head and tail == self.domain else None

    def __call__(self, method: str, target: str, authority: str | None) -> Route:
        label = self.label_of(authority)
        if label is None:
            return self.fallback(method, target, authority)
        device_id = device_from_label(label)
        if device_id is None:
            return Route.local(NO_SUCH_HOST)
        if not target.startswith("/"):
            return Route.local(NOT_A_PATH)
        return Route.device(device_id, target)


@attrs.frozen(slots=True)
class PortRouter:
    """Every request on one device's own front-door port goes to that device, target as is."""

    device_id: str

    def __call__(self, method: str, target: str, authority: str | None) -> Route:
        if not target.startswith("/"):
            return Route.local(NOT_A_PATH)
        return Route.device(self.device_id, target)
