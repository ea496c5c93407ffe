"""The front door with real peers: virtual hosts, a port per device, TLS (curl and nghttp over
h2 via ALPN), the per-client bound, GET /devices URLs, and the auth/rewrite hooks
(UPL-59, UPL-R21, DEV-R14, DEV-R18; issue 10 items 1 and 5)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from _adapters_util import Pki, aio, fast_schedule, free_port, make_pki
from test_aio_expose import _run, handler
from uplink62676.aio import CloudServer, DeviceAgent, UplinkSpec
from uplink62676.aio.expose import ExposeServer
from uplink62676.frontdoor import FrontDoorSettings, LocalAnswer, RequestRouted
from uplink62676.frontdoor.hooks import Decision
from uplink62676.frontdoor.ports import PortAssigner
from uplink62676.io.portstore import PortStore
from uplink62676.io.tls import frontdoor_tls_context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class _Setup:
    def __init__(self, pki: Pki, devices: tuple[str, ...] = ("cam-1",), **expose: Any) -> None:
        self.pki, self.devices, self.kwargs = pki, devices, expose

    async def __aenter__(self) -> _Setup:
        self.cloud = CloudServer(ssl_context=self.pki.cloud_ctx())
        await self.cloud.start()
        self.expose = ExposeServer(self.cloud, **self.kwargs)
        await self.expose.start()
        address = f"https://localhost:{self.cloud.port}/uplink"
        self.agents = [DeviceAgent(handler, identity=d, schedule_factory=fast_schedule,
                                   uplinks=[UplinkSpec(address, self.pki.device_ctx(d))])
                       for d in self.devices]
        for agent in self.agents:
            await agent.start()
        for d in self.devices:
            await self.cloud.wait_for_device(d)
        self.base = f"{self.expose.scheme}://127.0.0.1:{self.expose.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for agent in self.agents:
            await agent.stop()
        await self.expose.close()
        await self.cloud.close()


async def _json(*argv: str) -> Any:
    rc, out, err = await _run("curl", "-sS", *argv)
    assert rc == 0, err
    return json.loads(out)


@aio
async def test_virtual_host_reaches_the_device_with_the_whole_path(pki: Pki) -> None:
    """curl with -H Host: and with --resolve: <label>.DOMAIN goes to that device, path as is,
    and the device sees the client's origin as :authority (UPL-59); the bare domain still
    serves /devices and the path route."""
    async with _Setup(pki, ("cam-1", "cam-2"), domain="cloud.test") as s:
        port = s.expose.port
        info = await _json("-H", f"Host: cam-2.cloud.test:{port}",
                           f"{s.base}/onvif/device_service?x=1")
        assert info["path"] == "/onvif/device_service?x=1"
        assert info["authority"] == f"cam-2.cloud.test:{port}" and info["scheme"] == "http"
        info = await _json("--http2-prior-knowledge", "--resolve",
                           f"cam-1.cloud.test:{port}:127.0.0.1",
                           f"http://cam-1.cloud.test:{port}/onvif/media")
        assert info["path"] == "/onvif/media" and info["authority"] == f"cam-1.cloud.test:{port}"
        listing = await _json("-H", f"Host: cloud.test:{port}", f"{s.base}/devices")
        assert [d["urls"] for d in listing] == [
            [f"http://cloud.test:{port}/devices/{d}/", f"http://{d}.cloud.test:{port}/"]
            for d in ("cam-1", "cam-2")]
        info = await _json(f"{s.base}/devices/cam-1/a")
        assert info["path"] == "/a"
        _, out, _ = await _run("curl", "-sS", "-w", "%{http_code}", "-H",
                               "Host: ghost.cloud.test", f"{s.base}/x")
        assert out.endswith(b"404") and b"no device 'ghost' is connected" in out


@aio
async def test_device_ports_open_on_connect_and_survive_a_restart(pki: Pki, tmp_path) -> None:
    """Each device gets its own port (all paths go to it); the table is kept in the state file,
    so a new broker gives the same device the same port."""
    low = free_port()
    path = tmp_path / "device-ports.json"

    def setup() -> _Setup:
        store = PortStore(path)  # as the CLI does: the assigner starts from the stored leases
        return _Setup(pki, ("cam-2", "cam-1"),
                      device_ports=PortAssigner(low, low + 3, leases=store.load(),
                                                now=time.time()),
                      port_store=store)

    async with setup() as s:
        ports = {d: s.expose.ports.lookup(d) for d in ("cam-1", "cam-2")}  # type: ignore[union-attr]
        assert set(ports.values()) <= set(range(low, low + 4)) and len(set(ports.values())) == 2
        for _ in range(50):
            if all(s.expose.device_port(d) for d in ports):
                break
            await asyncio.sleep(0.05)
        info = await _json(f"http://127.0.0.1:{ports['cam-1']}/onvif/device_service")
        assert info["path"] == "/onvif/device_service"
        assert info["authority"] == f"127.0.0.1:{ports['cam-1']}"
        listing = await _json(f"{s.base}/devices")
        assert {d["id"]: d["urls"][-1] for d in listing} == {
            d: f"http://127.0.0.1:{p}/" for d, p in ports.items()}
    stored = json.loads(path.read_text())
    assert {lease["device"]: lease["port"] for lease in stored["leases"]} == ports
    async with setup() as s:
        assert {d: s.expose.ports.lookup(d) for d in ports} == ports  # type: ignore[union-attr]


@aio
async def test_range_exhausted_is_logged_and_the_path_still_works(
        pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    low = free_port()
    async with _Setup(pki, ("cam-1", "cam-2"), device_ports=PortAssigner(low, low)) as s:
        assert "no free device port" in caplog.text
        for d in ("cam-1", "cam-2"):
            assert (await _json(f"{s.base}/devices/{d}/p"))["path"] == "/p"


@pytest.mark.parametrize("mode", ["--http1.1", "--http2"])
@aio
async def test_tls_front_door_with_curl(pki: Pki, mode: str) -> None:
    """TLS on the front door: curl --http2 negotiates h2 by ALPN, --http1.1 gets HTTP/1.1; on a
    device's own port the device sees :scheme https and the client's authority."""
    ctx = frontdoor_tls_context(cert_file=pki.cloud[0], key_file=pki.cloud[1])
    low = free_port()
    async with _Setup(pki, ssl_context=ctx, device_ports=PortAssigner(low, low)) as s:
        url = f"https://localhost:{s.expose.port}"
        rc, out, err = await _run("curl", "-sS", mode, "--cacert", pki.ca, "-w",
                                  "\n%{http_version}", f"{url}/devices/cam-1/onvif/x")
        assert rc == 0, err
        body, _, version = out.rpartition(b"\n")
        assert version == (b"2" if mode == "--http2" else b"1.1")
        info = json.loads(body)
        # path route: the client's origin too (answers' URIs get the prefix, DEV-R16)
        assert info["path"] == "/onvif/x" and info["authority"] == f"localhost:{s.expose.port}"
        for _ in range(50):
            if s.expose.device_port("cam-1"):
                break
            await asyncio.sleep(0.05)
        info = await _json(mode, "--cacert", pki.ca, f"https://localhost:{low}/onvif/x")
        assert info["scheme"] == "https" and info["authority"] == f"localhost:{low}"
        listing = await _json("--cacert", pki.ca, f"{url}/devices")
        assert listing[0]["urls"] == [f"{url}/devices/cam-1/", f"https://localhost:{low}/"]


@aio
async def test_tls_front_door_with_nghttp(pki: Pki) -> None:
    ctx = frontdoor_tls_context(cert_file=pki.cloud[0], key_file=pki.cloud[1])
    async with _Setup(pki, ssl_context=ctx) as s:
        url = f"https://localhost:{s.expose.port}"
        rc, out, err = await _run("nghttp", "-v", f"{url}/devices/cam-1/onvif/y")
        assert rc == 0, err
        assert b"The negotiated protocol: h2" in out and b"\"path\": \"/onvif/y\"" in out


@aio
async def test_per_client_bound_with_real_connections(pki: Pki) -> None:
    """Three slow requests on three connections from one address with a bound of 2: one of
    them is refused with 503 and Retry-After before it reaches the device."""
    settings = FrontDoorSettings(max_requests_per_client=2, retry_after=3)
    async with _Setup(pki, settings=settings) as s:
        runs = [asyncio.create_task(_run("curl", "-sS", "-i", f"{s.base}/devices/cam-1/hang"))
                for _ in range(2)]
        for _ in range(100):
            if s.expose.limits.in_flight("127.0.0.1") == 2:
                break
            await asyncio.sleep(0.02)
        _, out, _ = await _run("curl", "-sS", "-i", f"{s.base}/devices/cam-1/x")
        assert out.startswith(b"HTTP/1.1 503") and b"retry-after: 3" in out.lower()
        _, out, err2 = await _run("curl", "-sS", "-i", "--http2-prior-knowledge",
                               f"{s.base}/devices/cam-1/x")
        assert out == b"" and b"tried 5 times" in err2  # REFUSED_STREAM: curl retries, then stops
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)


@aio
async def test_hooks_authorize_and_rewrite(pki: Pki) -> None:
    """The hooks: authorize sees the peer and may refuse (the device sees nothing) or filter
    the listing; the rewriter changes the headers to the device and the answer's body."""
    seen: list[RequestRouted] = []

    def authorize(request: RequestRouted) -> Decision:
        seen.append(request)
        if request.route.target.startswith("/secret"):
            return Decision(False, LocalAnswer.text(401, "who are you?\n"))
        return Decision(may_see=lambda device_id: device_id != "cam-2")

    class Upper:
        def request_headers(self, request: RequestRouted) -> tuple[tuple[bytes, bytes], ...]:
            return ((b"content-type", b"text/forwarded"),)

        def response_body(self, request: RequestRouted, status: int, headers: object) -> Any:
            class Filter:
                def feed(self, data: bytes) -> bytes:
                    return data.upper()

                def end(self) -> bytes:
                    return b"!"
            return Filter()

    async with _Setup(pki, ("cam-1", "cam-2"), authorize=authorize, rewriter=Upper()) as s:
        _, out, _ = await _run("curl", "-sS", "-w", "%{http_code}", f"{s.base}/devices/cam-1/secret")
        assert out == b"who are you?\n401"
        assert seen[-1].peer is not None and seen[-1].peer.address == "127.0.0.1"
        assert not seen[-1].peer.tls
        _, out, _ = await _run("curl", "-sS", f"{s.base}/devices/cam-1/open")
        assert out.endswith(b"!") and b'"CT": "TEXT/FORWARDED"' in out and b'"/OPEN"' in out
        listing = await _json(f"{s.base}/devices")
        assert [d["id"] for d in listing] == ["cam-1"]
