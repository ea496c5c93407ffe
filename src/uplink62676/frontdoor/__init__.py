"""The cloud's HTTP front door, sans-I/O: plain HTTP clients reach devices through uplinks.

:class:`FrontDoorConnection` is one accepted client (HTTP/1.1 or HTTP/2 with
prior knowledge, told apart by the first 24 octets); a router picks a
:class:`Route` per request; :mod:`.answers` holds the answers the front door
makes itself.  :mod:`uplink62676.aio.expose` only moves bytes and time.
"""

from __future__ import annotations

from .answers import LocalAnswer, bad_gateway, device_listing, unknown_device
from .connection import FrontDoorConnection
from .events import PeerInfo, RequestRefused, RequestRouted
from .labels import device_from_label, device_label, has_label
from .limits import ClientLimits, busy
from .routing import (
    HostRouter,
    PathRouter,
    PortRouter,
    Route,
    RouteKind,
    Router,
    split_authority,
    split_device_path,
)
from .settings import FrontDoorSettings

__all__ = [
    "ClientLimits",
    "FrontDoorConnection",
    "FrontDoorSettings",
    "HostRouter",
    "LocalAnswer",
    "PathRouter",
    "PeerInfo",
    "PortRouter",
    "RequestRefused",
    "RequestRouted",
    "Route",
    "RouteKind",
    "Router",
    "bad_gateway",
    "busy",
    "device_from_label",
    "device_label",
    "device_listing",
    "has_label",
    "split_authority",
    "split_device_path",
    "unknown_device",
]
