"""The cloud's front door: curl (HTTP/1.1 and h2c) and nghttp reach devices through uplinks
(UPL-3, UPL-4, UPL-19, UPL-43, UPL-44, UPL-R20)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _adapters_util import Pki, aio, fast_schedule, make_pki
from uplink62676 import ConfigurationError
from uplink62676.aio import CloudServer, DeviceAgent, Response, TunneledRequest, UplinkSpec
from uplink62676.aio.expose import ExposeServer, split_device_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


hang = asyncio.Event()


async def handler(req: TunneledRequest) -> Response:
    body = await req.body()
    if req.path.startswith("/hang"):
        await asyncio.sleep(30)
    if req.path.startswith("/big"):
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"b" * 16384
        return Response(200, (("content-type", "application/octet-stream"),), chunks())
    info = {"method": req.method, "path": req.path, "level": list(req.user_level),
            "len": len(body), "authority": req.authority, "scheme": req.scheme,
            "ct": req.header("content-type")}
    return Response(200, (("content-type", "application/json"),), json.dumps(info).encode())


class _Setup:
    async def __aenter__(self) -> _Setup:
        self.cloud = CloudServer(ssl_context=self.pki.cloud_ctx())
        await self.cloud.start()
        self.expose = ExposeServer(self.cloud)
        await self.expose.start()
        self.address = f"https://localhost:{self.cloud.port}/uplink"
        self.agent = DeviceAgent(handler, identity="cam-1", schedule_factory=fast_schedule,
                                 uplinks=[UplinkSpec(self.address, self.pki.device_ctx("cam-1"),
                                                     user_level="Operator")])
        await self.agent.start()
        await self.cloud.wait_for_device("cam-1")
        self.base = f"http://127.0.0.1:{self.expose.port}"
        return self

    def __init__(self, pki: Pki) -> None:
        self.pki = pki

    async def __aexit__(self, *exc: object) -> None:
        await self.agent.stop()
        await self.expose.close()
        await self.cloud.close()


async def _run(*argv: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin), 20)
    return proc.returncode or 0, out, err


@pytest.mark.parametrize("mode", ["--http1.1", "--http2-prior-knowledge"])
@aio
async def test_curl_reaches_device(pki: Pki, mode: str) -> None:
    """UPL-3, UPL-4, UPL-44: curl over HTTP/1.1 and h2c reaches the device; path rewritten,
    body streamed, UserLevel attached (UPL-41)."""
    async with _Setup(pki) as s:
        rc, out, err = await _run("curl", "-sS", mode, "-X", "POST",
                                  "-H", "content-type: application/soap+xml",
                                  "--data-binary", "@-",
                                  f"{s.base}/devices/cam-1/onvif/device_service?x=1",
                                  stdin=b"<e/>" * 3000)
        assert rc == 0, err
        info = json.loads(out)
        assert info == {"method": "POST", "path": "/onvif/device_service?x=1",
                        "level": ["Operator"], "len": 12000,
                        "authority": f"127.0.0.1:{s.expose.port}",
                        "scheme": "http", "ct": "application/soap+xml"}
        rc, out, err = await _run("curl", "-sS", mode, f"{s.base}/devices/cam-1/big")
        assert rc == 0 and out == b"b" * (64 * 16384), err


@aio
async def test_nghttp_reaches_device(pki: Pki) -> None:
    """UPL-19: an independent HTTP/2 client (nghttp2) talks h2c to the front door."""
    async with _Setup(pki) as s:
        rc, out, err = await _run("nghttp", "-n", "-s", f"{s.base}/devices/cam-1/a",
                                  f"{s.base}/devices/cam-1/b", f"{s.base}/devices")
        assert rc == 0, err
        assert out.count(b"/devices/cam-1/") == 2 and b"/devices" in out
        rc, out, err = await _run("nghttp", f"{s.base}/devices/cam-1/onvif/x")
        assert rc == 0 and json.loads(out)["path"] == "/onvif/x"


@aio
async def test_h2load_drives_load_through_the_uplink(pki: Pki) -> None:
    """UPL-4, UPL-R22: nghttp2's h2load drives 400 requests, 10 connections x 10 streams, through
    the front door and the uplink's 16-stream limit; every one succeeds."""
    async with _Setup(pki) as s:
        rc, out, err = await _run("h2load", "-n", "400", "-c", "10", "-m", "10",
                                  f"{s.base}/devices/cam-1/onvif/device_service")
        assert rc == 0, err
        text = out.decode()
        assert "400 succeeded, 0 failed, 0 errored" in text, text
        assert "status codes: 400 2xx" in text, text


@aio
async def test_devices_listing_and_404(pki: Pki) -> None:
    """GET /devices lists id, since, peer, auth, protocol and urls; an unknown device is a clear
    404."""
    async with _Setup(pki) as s:
        _, out, _ = await _run("curl", "-sS", f"{s.base}/devices")
        listing = json.loads(out)
        assert [d["id"] for d in listing] == ["cam-1"]
        assert set(listing[0]) == {"id", "since", "peer", "auth", "protocol", "urls", "uplinks"}
        assert listing[0]["urls"] == [f"{s.base}/devices/cam-1/"]
        assert listing[0]["auth"] == "mTLS" and listing[0]["protocol"] == "h2c-reverse"
        _, out, _ = await _run("curl", "-sS", "-w", "%{http_code}", f"{s.base}/devices/ghost/x")
        assert out.endswith(b"404") and b"no device 'ghost' is connected" in out
        _, out, _ = await _run("curl", "-sS", "--http2-prior-knowledge", "-w", "%{http_code}",
                               f"{s.base}/devices/ghost/x")
        assert out.endswith(b"404")


@pytest.mark.parametrize("mode", ["--http1.1", "--http2-prior-knowledge"])
@aio
async def test_device_gone_is_502_and_dropped(pki: Pki, mode: str) -> None:
    """The device dies mid-request: the client gets 502 and the device leaves /devices."""
    async with _Setup(pki) as s:
        curl = asyncio.create_task(_run("curl", "-sS", mode, "-w", "%{http_code}",
                                        f"{s.base}/devices/cam-1/hang"))
        await asyncio.sleep(0.5)
        await s.agent.stop()
        _, out, err = await curl
        assert out.endswith(b"502"), (out, err)
        await s.cloud.wait_for_device("cam-1", present=False)
        _, out, _ = await _run("curl", "-sS", f"{s.base}/devices")
        assert json.loads(out) == []


@given(st.text())
def test_split_device_path_round_trip(tail: str) -> None:
    """Every /devices/... path splits into an id without '/' or '?' and a rest that maps back."""
    device_id, rest = split_device_path("/devices/" + tail)
    assert "/" not in device_id and "?" not in device_id and rest.startswith("/")
    if rest == "/" and tail == device_id:
        return
    assert tail == device_id + (rest[1:] if rest.startswith("/?") else rest)


def test_split_device_path_rejects_other_paths() -> None:
    with pytest.raises(ConfigurationError):
        split_device_path("/other")
    assert split_device_path("/devices/cam-1?x=1") == ("cam-1", "/?x=1")
    assert split_device_path("/devices/cam-1") == ("cam-1", "/")
