"""asyncio device agent over real loopback TLS (UPL-2, 4, 41, 42, 45..51, R3, R7, R23..R27)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from _adapters_util import Pki, aio, fast_schedule, make_pki
from uplink62676 import InvalidTokenError
from uplink62676.aio import CloudServer, DeviceAgent, Response, TunneledRequest, UplinkSpec
from uplink62676.settings import CloudSettings, DeviceSettings
from uplink62676.status import Status
from uplink62676.uplink import CloudUplink


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def echo(req: TunneledRequest) -> Response:
    body = await req.body()
    return Response(200, (("content-type", "text/plain"),),
                    b"%s %s %s %d" % (req.method.encode(), req.path.encode(),
                                      " ".join(req.user_level).encode(), len(body)))


async def _cloud(pki: Pki, **kw: object) -> CloudServer:
    cloud = CloudServer(ssl_context=kw.pop("ctx", None) or pki.cloud_ctx(), **kw)  # type: ignore[arg-type]
    await cloud.start()
    return cloud


def _agent(pki: Pki, addresses: list[str], handler=echo, device: str = "cam-1",  # type: ignore[no-untyped-def]
           level: str = "Operator", **kw: object) -> DeviceAgent:
    specs = [UplinkSpec(a, pki.device_ctx(device), user_level=level) for a in addresses]
    return DeviceAgent(handler, identity=device, uplinks=specs, schedule_factory=fast_schedule,
                       **kw)  # type: ignore[arg-type]


@aio
async def test_mtls_uplink_serves_requests_with_user_level(pki: Pki) -> None:
    """UPL-2, UPL-4, UPL-33, UPL-41: device connects as TLS client; requests get the uplink's level."""
    cloud = await _cloud(pki)
    address = f"https://localhost:{cloud.port}/uplink"
    agent = _agent(pki, [address])
    await agent.start()
    try:
        assert await agent.wait_status(address, Status.CONNECTED) is None
        await cloud.wait_for_device("cam-1")
        r = await cloud.request("cam-1", "POST", "/onvif/device_service",
                                [("authorization", "Basic YWRtaW46YWRtaW4=")], b"x" * 5000)
        assert (r.status, r.body) == (200, b"POST /onvif/device_service Operator 5000")
        assert cloud.devices()[0].auth == "mTLS"
    finally:
        await agent.stop()
        await cloud.close()


@aio
async def test_user_roles_list(pki: Pki) -> None:
    """UPL-42: a UserLevel listing roles reaches the application as that list."""
    seen: list[tuple[str, ...]] = []

    async def handler(req: TunneledRequest) -> Response:
        seen.append(req.user_level)
        return Response(204)

    cloud = await _cloud(pki)
    address = f"https://localhost:{cloud.port}/u"
    agent = _agent(pki, [address], handler, level="onvif:Operator site:Viewer")
    async with agent:
        await cloud.wait_for_device("cam-1")
        assert (await cloud.request("cam-1", "GET", "/", body=None)).status == 204
    await cloud.close()
    assert seen == [("onvif:Operator", "site:Viewer")]


@aio
async def test_parallel_uplinks_independent(pki: Pki) -> None:
    """UPL-51, UPL-52: two uplinks up at once, each with its own status; one failing leaves the other."""
    a, b = await _cloud(pki), await _cloud(pki)
    addr_a, addr_b = f"https://localhost:{a.port}/x", f"https://127.0.0.1:{b.port}/y"
    agent = _agent(pki, [addr_a, addr_b])
    await agent.start()
    try:
        await agent.wait_status(addr_a, Status.CONNECTED)
        await agent.wait_status(addr_b, Status.CONNECTED)
        await b.close()
        await agent.wait_status(addr_b, Status.OFFLINE)
        assert agent.status(addr_a) == (Status.CONNECTED, None)
        assert (await a.request("cam-1", "GET", "/ping", body=None)).status == 200
    finally:
        await agent.stop()
        await a.close()


@aio
async def test_add_and_remove_at_run_time(pki: Pki) -> None:
    """UPL-51, UPL-R25: adding starts an uplink at once, removing stops it (cloud drops the device)."""
    cloud = await _cloud(pki)
    agent = _agent(pki, [])
    await agent.start()
    address = f"https://localhost:{cloud.port}/late"
    await agent.add(UplinkSpec(address, pki.device_ctx("cam-1"), user_level="User"))
    await cloud.wait_for_device("cam-1")
    await agent.remove(address)
    await cloud.wait_for_device("cam-1", present=False)
    assert agent.status(address) == (Status.OFFLINE, None)
    await agent.stop()
    await cloud.close()


@aio
async def test_cloud_dies_mid_request_then_reconnect_on_schedule(pki: Pki) -> None:
    """UPL-45, UPL-50, UPL-R25, R27: the cloud vanishes mid-request; the device goes Offline with a
    reason, waits its own interval and reconnects when the cloud is back."""
    started = asyncio.Event()

    async def slow(req: TunneledRequest) -> Response:
        started.set()
        await asyncio.sleep(10)
        return Response(200)

    cloud = await _cloud(pki)
    port = cloud.port
    address = f"https://localhost:{port}/up"
    agent = _agent(pki, [address], slow)
    await agent.start()
    try:
        await cloud.wait_for_device("cam-1")
        pending = asyncio.create_task(cloud.request("cam-1", "POST", "/slow", body=b"1"))
        await started.wait()
        await cloud.close()
        error = await agent.wait_status(address, Status.OFFLINE)
        assert error and ("GOAWAY" in error or "closed" in error)
        with pytest.raises(Exception):
            await pending
        cloud2 = await _cloud(pki)
        await cloud2.close()  # just to prove the port is reusable; restart on the same port:
        cloud3 = CloudServer(ssl_context=pki.cloud_ctx())
        await cloud3.start("127.0.0.1", port)
        await agent.wait_status(address, Status.CONNECTED, timeout=10)
        assert agent.attempts(address) >= 2
        await cloud3.close()
    finally:
        await agent.stop()


class _SilentCloud:
    """Accepts the upgrade, sends its preface, then never sends another octet."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0,
                                                 ssl=self.pki.cloud_ctx())
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = CloudUplink(settings=CloudSettings())
        while up.request is None:
            up.receive_data(await reader.read(4096), 0.0)
        up.accept(0.0)
        writer.write(up.data_to_send())
        while data := await reader.read(4096):
            self.received += data  # the device's SETTINGS, ACK, and later its PINGs

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()


@aio
async def test_silent_network_30_second_rule(pki: Pki) -> None:
    """UPL-46, UPL-47, UPL-48, UPL-R23: the clock is driven, not slept: PING after 10 s of silence,
    again after 20 s, and after more than 30 s the device closes with 'no traffic for 30 s'."""
    silent = _SilentCloud(pki)
    port = await silent.start()
    offset = [0.0]
    loop = asyncio.get_running_loop()
    address = f"https://localhost:{port}/quiet"
    agent = _agent(pki, [address], clock=lambda: loop.time() + offset[0])
    await agent.start()
    try:
        await agent.wait_status(address, Status.CONNECTED)
        await asyncio.sleep(0.1)
        before = bytes(silent.received)
        assert b"\x00\x00\x08\x06\x00" not in before  # no PING yet
        offset[0] = 10.5
        agent.poke()
        for _ in range(50):
            await asyncio.sleep(0.02)
            if b"\x00\x00\x08\x06\x00\x00\x00\x00\x00UPLK" in silent.received:
                break
        assert b"\x00\x00\x08\x06\x00\x00\x00\x00\x00UPLK" in silent.received
        assert agent.status(address)[0] is Status.CONNECTED
        offset[0] = 31.0
        agent.poke()
        error = await agent.wait_status(address, Status.OFFLINE, timeout=5)
        assert error == "no traffic for 30 s"
    finally:
        await agent.stop()
        await silent.close()


@aio
async def test_slow_reader_pauses_the_producer(pki: Pki) -> None:
    """UPL-R22 / design 'slow read': a cloud that does not read pauses the device's producer;
    memory stays bounded by windows + high_water, and resumes when the cloud reads."""
    produced = [0]

    async def endless() -> AsyncIterator[bytes]:
        while True:
            produced[0] += 16384
            yield b"v" * 16384

    async def handler(req: TunneledRequest) -> Response:
        return Response(200, (("content-type", "video/x-test"),), endless())

    cloud = await _cloud(pki)
    address = f"https://localhost:{cloud.port}/media"
    agent = _agent(pki, [address], handler, high_water=32 * 1024)
    await agent.start()
    try:
        await cloud.wait_for_device("cam-1")
        stream = await cloud.open_stream("cam-1", "GET", "/stream", body=None)
        await asyncio.sleep(0.5)
        stalled = produced[0]
        assert stalled <= 65535 + 32 * 1024 + 2 * 16384, stalled
        await asyncio.sleep(0.3)
        assert produced[0] == stalled  # paused, not growing
        got = 0
        while got < 1_000_000:
            got += len(await stream.read())
        assert produced[0] > stalled
        stream.cancel()
    finally:
        await agent.stop()
        await cloud.close()


@aio
async def test_request_body_is_acknowledged_only_as_read(pki: Pki) -> None:
    """Back-pressure towards the cloud: the device acknowledges body octets only as the handler
    reads them, so an upload to a handler that does not read stops at the window."""
    sent = [0]
    release = asyncio.Event()

    async def upload() -> AsyncIterator[bytes]:
        for _ in range(64):
            sent[0] += 16384
            yield b"u" * 16384

    async def handler(req: TunneledRequest) -> Response:
        await release.wait()
        return Response(200, (), str(len(await req.body())).encode())

    cloud = await _cloud(pki)
    address = f"https://localhost:{cloud.port}/up"
    agent = _agent(pki, [address], handler)
    await agent.start()
    try:
        await cloud.wait_for_device("cam-1")
        task = asyncio.create_task(cloud.request("cam-1", "POST", "/upload", body=upload()))
        await asyncio.sleep(0.5)
        assert sent[0] <= 65535 + 64 * 1024 + 3 * 16384, sent[0]
        release.set()
        r = await task
        assert r.body == str(64 * 16384).encode()
    finally:
        await agent.stop()
        await cloud.close()


@aio
async def test_access_token_good_and_bad(pki: Pki) -> None:
    """UPL-37, UPL-38, UPL-39, UPL-R7, R18: a bad token gets 401 Bearer invalid_token, the device
    records the reason and backs off; a good one connects in AccessToken mode."""

    def validate(token: str) -> str | None:
        if token == "good-token":
            return "cam-token"
        raise InvalidTokenError("unknown token")

    cloud = await _cloud(pki, ctx=pki.cloud_ctx(require=False), token_validator=validate)
    bad = f"https://localhost:{cloud.port}/bad"
    good = f"https://localhost:{cloud.port}/good"
    agent = DeviceAgent(echo, identity="cam-x", schedule_factory=fast_schedule, uplinks=[
        UplinkSpec(bad, pki.device_ctx(None), access_token="wrong-token"),
        UplinkSpec(good, pki.device_ctx(None), access_token=lambda: "good-token"),
    ])
    await agent.start()
    try:
        await cloud.wait_for_device("cam-token")
        assert cloud.device("cam-token").auth == "AccessToken"  # type: ignore[union-attr]
        for _ in range(100):
            if agent.attempts(bad) >= 2:
                break
            await asyncio.sleep(0.05)
        status, error = agent.status(bad)
        assert status is not Status.CONNECTED
        assert agent.attempts(bad) >= 2
        assert error == "upgrade refused: 401 invalid_token" or status is Status.CONNECTING
        assert "wrong-token" not in repr(agent.uplinks)
    finally:
        await agent.stop()
        await cloud.close()


@aio
async def test_missing_token_gets_bearer_challenge(pki: Pki) -> None:
    """UPL-R18: no certificate and no token -> 401 with a Bearer challenge, never 101."""
    cloud = await _cloud(pki, ctx=pki.cloud_ctx(require=False), token_validator=lambda t: None)
    address = f"https://localhost:{cloud.port}/none"
    agent = DeviceAgent(echo, identity="x", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx(None))])
    await agent.start()
    try:
        for _ in range(100):
            if agent.status(address)[1]:
                break
            await asyncio.sleep(0.02)
        assert agent.status(address)[1] == "upgrade refused: 401"
        assert cloud.devices() == []
    finally:
        await agent.stop()
        await cloud.close()


@aio
async def test_plaintext_only_when_asked_loudly(pki: Pki) -> None:
    """UPL-2: plaintext needs insecure_plaintext=True on both ends."""
    from uplink62676 import ConfigurationError, TransportError

    with pytest.raises(ConfigurationError):
        UplinkSpec("http://127.0.0.1:1/x")
    with pytest.raises(TransportError):
        CloudServer()
    cloud = CloudServer(insecure_plaintext=True)
    await cloud.start()
    address = f"http://127.0.0.1:{cloud.port}/plain-dev"
    agent = DeviceAgent(echo, identity="p", uplinks=[UplinkSpec(address, insecure_plaintext=True)],
                        schedule_factory=fast_schedule,
                        settings=DeviceSettings(max_concurrent_streams=4))
    async with agent:
        await cloud.wait_for_device("plain-dev")
        assert cloud.devices()[0].auth == "none"
    await cloud.close()


@pytest.mark.parametrize(
    ("cloud_cert", "device", "device_ca", "host", "expected"),
    [
        ("cloud_other_ca", "cam-1", None, "localhost", "TLS: unknown CA"),
        ("cloud_wrong_name", "cam-1", None, "localhost", "TLS: certificate name mismatch"),
        ("cloud", "cam-1", None, "127.0.0.2", None),  # IP literal not in the certificate
        ("cloud_expired", "cam-1", None, "localhost", "TLS: certificate has expired"),
        ("cloud", None, None, "localhost", "TLS: cloud requires a client certificate"),
        ("cloud", "intruder", None, "localhost", "TLS: peer rejected our certificate (unknown CA)"),
    ],
)
@aio
async def test_tls_refusals_give_precise_errors(pki: Pki, cloud_cert: str, device: str | None,
                                                device_ca: str | None, host: str,
                                                expected: str | None) -> None:
    """UPL-30, UPL-31, UPL-33, UPL-R27: every TLS refusal is an Offline uplink with a precise Error,
    and the cloud never lists the device."""
    cloud = CloudServer(ssl_context=pki.cloud_ctx(which=cloud_cert))
    await cloud.start("127.0.0.1" if host != "127.0.0.2" else "0.0.0.0")
    address = f"https://{host}:{cloud.port}/uplink"
    agent = DeviceAgent(echo, identity="d", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx(device, ca=device_ca))])
    await agent.start()
    try:
        for _ in range(200):
            if agent.status(address)[1]:
                break
            await asyncio.sleep(0.02)
        status, error = agent.status(address)
        assert status is not Status.CONNECTED and error is not None
        if expected is None:
            assert error == "TLS: certificate IP address mismatch"
        else:
            assert error.startswith(expected), error
        assert cloud.devices() == []
    finally:
        await agent.stop()
        await cloud.close()


@aio
async def test_handshake_bounded_by_a_timer(pki: Pki) -> None:
    """UPL-R4: TCP + TLS + upgrade + first SETTINGS are bounded (30 s); a cloud that never answers
    the upgrade makes a failed attempt when the (driven) clock passes the bound."""
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        await asyncio.sleep(30)

    server = await asyncio.start_server(mute, "127.0.0.1", 0, ssl=pki.cloud_ctx())
    port = server.sockets[0].getsockname()[1]
    offset = [0.0]
    loop = asyncio.get_running_loop()
    address = f"https://localhost:{port}/mute"
    agent = _agent(pki, [address], clock=lambda: loop.time() + offset[0])
    await agent.start()
    try:
        for _ in range(100):
            if agent.status(address)[0] is Status.CONNECTING and agent._runners[address].conn:
                break
            await asyncio.sleep(0.02)
        offset[0] = 30.5
        agent.poke()
        assert await agent.wait_status(address, Status.OFFLINE, 5) == \
            "handshake not finished within 30 s"
    finally:
        await agent.stop()
        server.close()


@aio
async def test_requests_beyond_max_concurrent_streams_queue(pki: Pki) -> None:
    """UPL-R22, UPL-19: the device advertises 16 concurrent streams; the cloud queues the 40 requests
    it is asked for at once instead of failing any."""
    active = [0, 0]

    async def slowish(req: TunneledRequest) -> Response:
        active[0] += 1
        active[1] = max(active[1], active[0])
        await asyncio.sleep(0.05)
        active[0] -= 1
        return Response(200, (), req.path.encode())

    cloud = await _cloud(pki)
    agent = _agent(pki, [f"https://localhost:{cloud.port}/q"], slowish)
    async with agent:
        await cloud.wait_for_device("cam-1")
        answers = await asyncio.gather(*(cloud.request("cam-1", "GET", f"/r{i}", body=None)
                                         for i in range(40)))
    await cloud.close()
    assert [a.body for a in answers] == [f"/r{i}".encode() for i in range(40)]
    assert active[1] == 16


@aio
async def test_stop_sends_goaway(pki: Pki) -> None:
    """UPL-R24: closing a live uplink sends GOAWAY NO_ERROR before the connection goes."""
    silent = _SilentCloud(pki)
    port = await silent.start()
    address = f"https://localhost:{port}/bye"
    agent = _agent(pki, [address])
    await agent.start()
    await agent.wait_status(address, Status.CONNECTED)
    await asyncio.sleep(0.05)
    await agent.stop()
    await asyncio.sleep(0.1)
    await silent.close()
    # GOAWAY: type 7, stream 0, last-stream-ID 0, NO_ERROR
    assert b"\x00\x00\x08\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" in silent.received


@aio
async def test_default_schedules_differ_per_device_and_uplink(pki: Pki) -> None:
    """UPL-50, UPL-R25, UPL-R26: each uplink's schedule is seeded from the device identity and its
    address, so devices (and a device's uplinks) do not reconnect in lockstep; intervals double
    from the individual d0 and stop at 30 s."""
    from uplink62676.aio.device import _default_schedule

    schedules = [_default_schedule(f"cam-{n}|https://cloud.example/u") for n in range(50)]
    starts = {s.start for s in schedules}
    assert len(starts) > 45
    assert all(s.min_start <= s.start <= s.max_start for s in schedules)  # type: ignore[operator]
    one = _default_schedule("cam-1|https://a.example/u")
    assert one.start != _default_schedule("cam-1|https://b.example/u").start
    waits = [one.next_wait() for _ in range(7)]
    assert waits[1] == 2 * waits[0] and waits[-1] == 30.0


@aio
async def test_cloud_cancel_stops_the_handler(pki: Pki) -> None:
    """A stream the cloud resets (RST_STREAM CANCEL) cancels the handler serving it."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long(req: TunneledRequest) -> Response:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    cloud = await _cloud(pki)
    agent = _agent(pki, [f"https://localhost:{cloud.port}/c"], long)
    async with agent:
        await cloud.wait_for_device("cam-1")
        task = asyncio.create_task(cloud.open_stream("cam-1", "GET", "/long", body=None))
        await started.wait()
        task.cancel()  # the cloud side gives up: RST_STREAM
        await asyncio.wait_for(cancelled.wait(), 5)
    await cloud.close()


@aio
async def test_websocket_uplink(pki: Pki) -> None:
    """UPL-7, UPL-20, UPL-26, UPL-27: a wss RemoteAddress runs h2c-reverse inside WebSocket
    frames through the same agent and cloud; requests work as over the native variant."""
    cloud = await _cloud(pki)
    address = f"wss://localhost:{cloud.port}/uplink/ws"
    agent = _agent(pki, [address])
    async with agent:
        await cloud.wait_for_device("cam-1")
        assert cloud.devices()[0].protocol == "h2c-reverse/websocket"
        r = await cloud.request("cam-1", "POST", "/onvif/x", body=b"w" * 70000)
        assert r.body == b"POST /onvif/x Operator 70000"
        assert 0 <= await agent.ping(address) < 5
    await cloud.close()
