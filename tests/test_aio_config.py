"""Device with a configuration store: a cloud reconfigures it through its own uplink
(UPL-8, UPL-36, UPL-40, UPL-41, UPL-51, UPL-R25, UPL-R27; CFG-2, CFG-3, CFG-4, CFG-10, CFG-36)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _adapters_util import Pki, aio, fast_schedule, make_pki
from uplink62676 import SoapFault
from uplink62676.aio import CloudServer, DeviceAgent, Response, TunneledRequest, UplinkSpec
from uplink62676.aio.config import SERVICE_PATH, ConfiguredDevice
from uplink62676.config import UplinkConfiguration
from uplink62676.io.store import ConfigStore
from uplink62676.services.uplink_client import UplinkServiceClient
from uplink62676.status import Status


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def fallback(req: TunneledRequest) -> Response:
    return Response(404)


@aio
async def test_cloud_reconfigures_device_through_its_uplink(pki: Pki, tmp_path: Path) -> None:
    a = CloudServer(ssl_context=pki.cloud_ctx())
    b = CloudServer(ssl_context=pki.cloud_ctx())
    await a.start()
    await b.start()
    addr_a, addr_b = f"https://localhost:{a.port}/a", f"https://localhost:{b.port}/b"
    store_path = tmp_path / "uplinks.xml"
    ConfigStore(store_path).save([UplinkConfiguration(addr_a, "Administrator",
                                                      certificate_id="dev-cert")])

    def spec(address: str, level: tuple[str, ...]) -> UplinkSpec:
        return UplinkSpec(address, pki.device_ctx("cam-1"), user_level=level)

    configured = ConfiguredDevice(store_path, fallback, spec, apply_delay=0.05)
    agent = DeviceAgent(configured, identity="cam-1", uplinks=configured.initial(),
                        schedule_factory=fast_schedule)
    configured.agent = agent
    await agent.start()
    try:
        await a.wait_for_device("cam-1")

        async def call(cloud: CloudServer, request: object) -> tuple[int, bytes]:
            r = await cloud.request("cam-1", "POST", SERVICE_PATH,
                                    [("content-type", request.content_type)],  # type: ignore[attr-defined]
                                    request.body)  # type: ignore[attr-defined]
            return r.status, r.body

        status, body = await call(a, UplinkServiceClient().get_service_capabilities())
        caps = UplinkServiceClient().read_service_capabilities(body, status)
        # UPL-8, UPL-36, UPL-40: what the adapters implement is what the device reports.
        assert caps.effective_protocols() == ("https", "wss")
        assert set(caps.effective_authorization_modes()) == {"mTLS", "AccessToken"}

        status, body = await call(a, UplinkServiceClient().get_uplinks())
        [entry] = UplinkServiceClient().read_uplinks(body, status)
        assert entry.remote_address == addr_a and entry.status is Status.CONNECTED  # CFG-3

        status, body = await call(a, UplinkServiceClient().set_uplink(
            UplinkConfiguration(addr_b, "Administrator", certificate_id="dev-cert")))
        UplinkServiceClient().read_set_uplink(body, status)
        await b.wait_for_device("cam-1")  # started at once (UPL-R25), in parallel (UPL-51)
        assert {c.remote_address for c in ConfigStore(store_path).load()} == {addr_a, addr_b}

        status, body = await call(b, UplinkServiceClient().delete_uplink(addr_a))
        assert status == 200
        await a.wait_for_device("cam-1", present=False)
        assert [c.remote_address for c in ConfigStore(store_path).load()] == [addr_b]

        status, body = await call(b, UplinkServiceClient().get_uplinks())
        assert [c.remote_address for c in UplinkServiceClient().read_uplinks(body, status)] == [addr_b]
    finally:
        await agent.stop()
        await a.close()
        await b.close()


@aio
async def test_user_level_limits_the_service(pki: Pki, tmp_path: Path) -> None:
    """UPL-41, UPL-R19: an uplink with UserLevel User may read but not change the configuration."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    address = f"https://localhost:{cloud.port}/u"
    store_path = tmp_path / "uplinks.xml"
    ConfigStore(store_path).save([UplinkConfiguration(address, "User", certificate_id="c")])
    configured = ConfiguredDevice(
        store_path, fallback,
        lambda a, lv: UplinkSpec(a, pki.device_ctx("cam-1"), user_level=lv))
    agent = DeviceAgent(configured, identity="cam-1", uplinks=configured.initial(),
                        schedule_factory=fast_schedule)
    configured.agent = agent
    async with agent:
        await cloud.wait_for_device("cam-1")
        req = UplinkServiceClient().set_uplink(UplinkConfiguration("https://x.example/u", "Administrator",
                                                   certificate_id="c"))
        r = await cloud.request("cam-1", "POST", SERVICE_PATH,
                                [("content-type", req.content_type)], req.body)
        with pytest.raises(SoapFault) as info:
            UplinkServiceClient().read_set_uplink(r.body, r.status)
        assert "NotAuthorized" in str(info.value.subcodes)
        assert (await cloud.request("cam-1", "GET", "/other", body=None)).status == 404
    await cloud.close()
