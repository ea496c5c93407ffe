"""A simulated city behind a real uplink: cloud + expose port + device agent + VssHost, loopback TLS."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import attrs

from _adapters_util import Pki, fast_schedule
from uplink62676.aio import CloudServer, DeviceAgent, UplinkSpec
from uplink62676.aio.device import Handler
from uplink62676.aio.expose import ExposeServer
from uplink62676.aio.vss import VssHost
from uplink62676.app.simulate import SimulatedVss
from uplink62676.query.client import (
    PullBatch,
    Query,
    SubscriptionRef,
    create_subscription_request,
    parse_pull_response,
    parse_subscription_response,
    pull_messages_request,
)

DEVICE = "cam-1"


@attrs.define
class City:
    cloud: CloudServer
    expose: ExposeServer
    vss: SimulatedVss
    host: VssHost
    agent: DeviceAgent

    @property
    def url(self) -> str:
        """The event service through the cloud's front door."""
        return f"http://127.0.0.1:{self.expose.port}/devices/{DEVICE}/onvif/events_service"

    async def subscribe(self, query: Query) -> SubscriptionRef:
        """CreatePullPointSubscription through the uplink (cloud -> device)."""
        req = create_subscription_request(query, message_id="urn:uuid:1")
        r = await self.cloud.request(DEVICE, "POST", "/onvif/events_service",
                                     [("content-type", req.content_type)], req.body)
        return parse_subscription_response(r.body, r.status)

    async def pull(self, address: str, timeout: float = 10.0, limit: int = 100) -> PullBatch:
        """PullMessages at the pull point's path (UPL-R21: only path and query are used)."""
        req = pull_messages_request(address, timeout=timeout, limit=limit, message_id="urn:uuid:2")
        parts = urlsplit(address)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        r = await self.cloud.request(DEVICE, "POST", path, [("content-type", req.content_type)],
                                     req.body)
        return parse_pull_response(r.body, r.status)


@contextlib.asynccontextmanager
async def city(pki: Pki, cameras: int = 1000, *, seed: int = 7, change_rate: float = 0.0,
               user_level: str = "User", fallback: Handler | None = None,
               device_service: bool = True) -> AsyncIterator[City]:
    """Everything up and the device connected; torn down afterwards."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    expose = ExposeServer(cloud)
    await expose.start("127.0.0.1", 0)
    vss = SimulatedVss(cameras, seed=seed, now=time.time(), change_rate=change_rate)
    host = VssHost(vss, fallback=fallback, device_service=device_service)
    host.start()
    spec = UplinkSpec(f"https://localhost:{cloud.port}/uplink", pki.device_ctx(DEVICE),
                      user_level=user_level)
    agent = DeviceAgent(host, identity=DEVICE, uplinks=[spec], schedule_factory=fast_schedule)
    await agent.start()
    try:
        await cloud.wait_for_device(DEVICE, timeout=10)
        yield City(cloud, expose, vss, host, agent)
    finally:
        await agent.stop()
        await host.close()
        await expose.close()
        await cloud.close()
