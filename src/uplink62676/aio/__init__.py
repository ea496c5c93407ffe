"""asyncio adapter: the device agent, the cloud server and its HTTP front door.

Thin by design: it moves bytes and time between sockets and the sans-I/O
state machines of :mod:`uplink62676.uplink`.
"""

from __future__ import annotations

from ._common import Response, UplinkSpec
from .cloud import CloudResponse, CloudServer, DeviceInfo, ResponseStream, UpgradeContext
from .device import DeviceAgent, TunneledRequest
from .expose import ExposeServer
from .query import HttpClient, QueryRunner
from .vss import VssHost

__all__ = [
    "CloudResponse",
    "CloudServer",
    "DeviceAgent",
    "DeviceInfo",
    "ExposeServer",
    "HttpClient",
    "QueryRunner",
    "Response",
    "ResponseStream",
    "TunneledRequest",
    "UpgradeContext",
    "UplinkSpec",
    "VssHost",
]
