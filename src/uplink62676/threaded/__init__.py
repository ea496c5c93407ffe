"""Threaded adapter: the device end on blocking sockets and threads (no asyncio loop)."""

from __future__ import annotations

from ..aio._common import Response, UplinkSpec
from .device import BlockingHandler, DeviceAgent, TunneledRequest

__all__ = ["BlockingHandler", "DeviceAgent", "Response", "TunneledRequest", "UplinkSpec"]
