"""Threaded adapter: the device end on blocking sockets and threads (no asyncio loop)."""

from __future__ import annotations

from ..aio._common import Response, UplinkSpec
from .device import DeviceAgent, Handler, TunneledRequest

__all__ = ["DeviceAgent", "Handler", "Response", "TunneledRequest", "UplinkSpec"]
