"""Threaded adapter: the device end on blocking sockets and threads (no asyncio loop)."""

from __future__ import annotations

from ..io.common import Response, UplinkSpec
from .device import BlockingHandler, DeviceAgent, TunneledRequest
from .oauth import TokenSource

__all__ = [
    "BlockingHandler",
    "DeviceAgent",
    "Response",
    "TokenSource",
    "TunneledRequest",
    "UplinkSpec",
]
