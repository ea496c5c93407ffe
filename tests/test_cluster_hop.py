"""The internal hop between nodes waits as long as the node the client reached (in process).

An RTSP tunnel's POST is never answered (its head is awaited without a limit): the
holder's internal front door must not give up on it after its own timeout.  Two
CloudServers with ClusterNodes (internal timeout 1 s) on a real Redis, one device.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest

from uplink62676.aio._common import Response, UplinkSpec
from uplink62676.aio.cloud import CloudServer
from uplink62676.aio.device import DeviceAgent, TunneledRequest
from uplink62676.errors import TransportError

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    from _cluster_util import Redis

    server = Redis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.port
    server.stop()


async def _slow(req: TunneledRequest) -> Response:
    await asyncio.sleep(1.5)
    return Response(200, (), b"late but there")


def test_a_forwarded_request_waits_as_long_as_its_caller(redis_port: int) -> None:
    from uplink62676.aio.cluster import ClusterNode

    async def run() -> None:
        clouds = [CloudServer(insecure_plaintext=True, allow_anonymous=True) for _ in range(2)]
        nodes = [ClusterNode(c, redis_url=f"redis://127.0.0.1:{redis_port}/0",
                             node_id=f"hop{i}", listen=("127.0.0.1", 0), secret=b"x" * 16,
                             refresh=0.5, timeout=1.0, prefix="hop:")
                 for i, c in enumerate(clouds)]
        agent = None
        try:
            for cloud, node in zip(clouds, nodes, strict=True):
                await cloud.start()
                await node.start()
            agent = DeviceAgent(_slow, identity="hop", uplinks=[UplinkSpec(
                f"http://127.0.0.1:{clouds[0].port}/cam-9", insecure_plaintext=True)])
            await agent.start()
            await clouds[0].wait_for_device("cam-9")
            async with asyncio.timeout(5):
                while nodes[1].mirror.lookup("cam-9", 0.0) is None:  # hop1 heard of it
                    await asyncio.sleep(0.05)
            # no limit at the caller: the holder (whose front door gives up after 1 s) waits too
            async with asyncio.timeout(8):
                stream = await clouds[1].open_stream("cam-9", "GET", "/", body=None,
                                                     timeout=None)
            assert (stream.status, await stream.body()) == (200, b"late but there")
            # a caller's limit is the holder's too
            stream = await clouds[1].open_stream("cam-9", "GET", "/", body=None, timeout=10)
            assert stream.status == 200
            with pytest.raises(TransportError, match=r"did not answer within 0\.5 s"):
                await clouds[1].open_stream("cam-9", "GET", "/", body=None, timeout=0.5)
        finally:
            if agent is not None:
                await agent.stop()
            for cloud, node in zip(clouds, nodes, strict=True):
                await node.close()
                await cloud.close()

    asyncio.run(run())
