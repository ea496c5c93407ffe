"""Threaded device agent (plain sockets + threads) against the asyncio cloud over loopback TLS
(UPL-2, 4, 41, 45..51, R23..R27)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from _adapters_util import Pki, fast_schedule, make_pki
from uplink62676.aio import CloudServer
from uplink62676.status import Status
from uplink62676.threaded import DeviceAgent, Response, TunneledRequest, UplinkSpec

T = TypeVar("T")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class CloudThread:
    """An asyncio CloudServer on a loop of its own thread."""

    def __init__(self, pki: Pki, port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def make() -> CloudServer:
            cloud = CloudServer(ssl_context=pki.cloud_ctx())
            await cloud.start("127.0.0.1", port)
            return cloud

        self.cloud = self.run(make())
        self.port = self.cloud.port

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.cloud.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def echo(req: TunneledRequest) -> Response:
    body = req.body()
    return Response(200, (("content-type", "text/plain"),),
                    b"%s %s %d" % (req.path.encode(), " ".join(req.user_level).encode(), len(body)))


def test_threaded_uplink_serves_with_user_level(pki: Pki) -> None:
    """UPL-2, UPL-4, UPL-41: a threaded device serves requests with its uplink's UserLevel."""
    c = CloudThread(pki)
    address = f"https://localhost:{c.port}/t"
    agent = DeviceAgent(echo, identity="cam-1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1"), user_level="Operator")])
    with agent:
        agent.wait_status(address, Status.CONNECTED)
        c.run(c.cloud.wait_for_device("cam-1"))
        r = c.run(c.cloud.request("cam-1", "POST", "/onvif/x", body=b"z" * 100_000))
        assert r.body == b"/onvif/x Operator 100000"
        assert 0 <= agent.ping(address) < 5
    c.run(c.cloud.wait_for_device("cam-1", present=False))
    c.close()


def test_threaded_parallel_and_cloud_restart(pki: Pki) -> None:
    """UPL-45, UPL-50, UPL-51: two uplinks in parallel; the one whose cloud dies goes Offline
    with a reason and comes back on its schedule while the other stays up."""
    a, b = CloudThread(pki), CloudThread(pki)
    addr_a, addr_b = f"https://localhost:{a.port}/a", f"https://localhost:{b.port}/b"
    agent = DeviceAgent(echo, identity="cam-1", schedule_factory=fast_schedule, uplinks=[
        UplinkSpec(addr_a, pki.device_ctx("cam-1")), UplinkSpec(addr_b, pki.device_ctx("cam-1"))])
    with agent:
        agent.wait_status(addr_a, Status.CONNECTED)
        agent.wait_status(addr_b, Status.CONNECTED)
        port_b = b.port
        b.close()
        error = agent.wait_status(addr_b, Status.OFFLINE)
        assert error
        assert agent.status(addr_a) == (Status.CONNECTED, None)
        b2 = CloudThread(pki, port_b)
        agent.wait_status(addr_b, Status.CONNECTED)
        assert agent.attempts(addr_b) >= 2
        b2.close()
    a.close()


def test_threaded_silence_rule_with_driven_clock(pki: Pki) -> None:
    """UPL-46..48, UPL-R23: with the clock moved (not slept) past 30 s the link is declared dead.
    The cloud stays silent because the device's PING is the only traffic and we jump past it."""
    c = CloudThread(pki)
    offset = [0.0]
    address = f"https://localhost:{c.port}/q"
    agent = DeviceAgent(echo, identity="cam-1", schedule_factory=fast_schedule,
                        clock=lambda: time.monotonic() + offset[0],
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1"))])
    with agent:
        agent.wait_status(address, Status.CONNECTED)
        time.sleep(0.1)  # the cloud's last frames of the set-up arrive before the jump
        offset[0] = 31.0  # more than 30 s without a single octet from the cloud
        agent.poke()
        error = agent.wait_status(address, Status.OFFLINE, timeout=5)
        assert error == "no traffic for 30 s"
        agent.wait_status(address, Status.CONNECTED)  # and it reconnects
    c.close()


def test_threaded_slow_reader_bounded(pki: Pki) -> None:
    """Slow reader: a response generator is paused while the cloud does not read."""
    produced = [0]

    def media(req: TunneledRequest) -> Response:
        def gen() -> Iterator[bytes]:
            while True:
                produced[0] += 16384
                yield b"m" * 16384
        return Response(200, (), gen())

    c = CloudThread(pki)
    address = f"https://localhost:{c.port}/m"
    agent = DeviceAgent(media, identity="cam-1", schedule_factory=fast_schedule,
                        high_water=32 * 1024,
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1"))])
    with agent:
        c.run(c.cloud.wait_for_device("cam-1"))
        stream = c.run(c.cloud.open_stream("cam-1", "GET", "/live", body=None))
        time.sleep(0.5)
        stalled = produced[0]
        assert stalled <= 65535 + 32 * 1024 + 2 * 16384
        time.sleep(0.2)
        assert produced[0] == stalled

        async def drain() -> int:
            got = 0
            while got < 500_000:
                got += len(await stream.read())
            stream.cancel()
            return got

        assert c.run(drain()) >= 500_000
        assert produced[0] > stalled
    c.close()


def test_threaded_tls_refusals(pki: Pki) -> None:
    """UPL-31: a cloud certificate from an unknown CA is refused with a precise Error."""
    c = CloudThread(pki)
    address = f"https://localhost:{c.port}/w"
    agent = DeviceAgent(echo, identity="cam-1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1", ca=pki.other_ca))])
    with agent:
        deadline = time.monotonic() + 5
        while agent.status(address)[1] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert agent.status(address)[1].startswith("TLS: unknown CA")  # type: ignore[union-attr]
    c.close()


def test_threaded_add_remove_and_missing_client_cert(pki: Pki) -> None:
    """UPL-33, UPL-51, UPL-R27: run-time changes start/stop uplinks; a device without a client
    certificate is refused by an mTLS cloud with a precise Error."""
    c = CloudThread(pki)
    good = f"https://localhost:{c.port}/g"
    bare = f"https://127.0.0.1:{c.port}/n"
    agent = DeviceAgent(echo, identity="cam-1", schedule_factory=fast_schedule)
    with agent:
        agent.set_uplinks([UplinkSpec(good, pki.device_ctx("cam-1")),
                           UplinkSpec(bare, pki.device_ctx(None))])
        agent.wait_status(good, Status.CONNECTED)
        deadline = time.monotonic() + 5
        while agent.status(bare)[1] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert agent.status(bare)[1] == "TLS: cloud requires a client certificate"
        agent.set_uplinks([])
        assert agent.uplinks == ()
        c.run(c.cloud.wait_for_device("cam-1", present=False))
    c.close()


def test_threaded_websocket_uplink(pki: Pki) -> None:
    """UPL-7, UPL-20, UPL-27: the threaded device runs a wss uplink too."""
    c = CloudThread(pki)
    address = f"wss://localhost:{c.port}/ws"
    agent = DeviceAgent(echo, identity="cam-1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(address, pki.device_ctx("cam-1"), user_level="User")])
    with agent:
        agent.wait_status(address, Status.CONNECTED)
        c.run(c.cloud.wait_for_device("cam-1"))
        r = c.run(c.cloud.request("cam-1", "POST", "/w", body=b"q" * 50_000))
        assert r.body == b"/w User 50000"
    c.close()
