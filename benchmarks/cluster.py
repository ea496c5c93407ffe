"""Cluster costs: a request forwarded between nodes against one served by the holder.

Two cluster nodes (CloudServer + front door + ClusterNode) and one device run in
this process with a real ``redis-server`` started here; the same requests go to
the holding node's front door (local) and to the other node's (forwarded),
interleaved A B A B, and the process CPU time per request is compared (forwarded
includes both nodes' work: the hop's HTTP/2 client and the holder's internal
door).  With ``h2load`` installed, req/s of each path too.  Then the Redis cost of
the registry: one refresh pipeline of 10,000 devices (time, commands), i.e. Redis
operations per second per 10,000 devices at the default refresh interval (10 s).

``--quick`` (CI): fewer requests and devices, well under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from uplink62676.aio._common import Response, UplinkSpec
from uplink62676.aio.cloud import CloudServer
from uplink62676.aio.cluster import ClusterNode
from uplink62676.aio.device import DeviceAgent, TunneledRequest
from uplink62676.aio.expose import ExposeServer
from uplink62676.deviceregistry import DeviceInfo
from uplink62676.liveness import ReconnectSchedule

SECRET = b"benchmark-secret-0123456789"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _handler(req: TunneledRequest) -> Response:
    return Response(200, (), b"ok\n")


async def _get_many(port: int, path: str, n: int, concurrency: int = 8) -> None:
    async def worker(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))


def _h2load(port: int, path: str, n: int) -> float | None:
    if shutil.which("h2load") is None:
        return None
    out = subprocess.run(["h2load", "-n", str(n), "-c", "4", "-m", "8",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         check=False, timeout=120).stdout
    for line in out.splitlines():
        if line.startswith("finished in"):
            return float(line.split(",")[1].split()[0])
    return None


async def main(quick: bool) -> None:
    requests = 400 if quick else 4000
    fleet = 2000 if quick else 10_000
    tmp = tempfile.mkdtemp()
    rport = _port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--save", "",
                              "--appendonly", "no", "--notify-keyspace-events", "Ex",
                              "--dir", tmp], stdout=subprocess.DEVNULL)
    try:
        await asyncio.sleep(0.3)
        url = f"redis://127.0.0.1:{rport}/0"
        nodes = []
        for name in ("a", "b"):
            cloud = CloudServer(insecure_plaintext=True, allow_anonymous=True)
            await cloud.start()
            expose = ExposeServer(cloud)
            await expose.start()
            cluster = ClusterNode(cloud, redis_url=url, node_id=name, listen=("127.0.0.1", 0),
                                  secret=SECRET, refresh=10.0)
            await cluster.start()
            nodes.append((cloud, expose, cluster))
        agent = DeviceAgent(_handler, identity="bench", uplinks=[UplinkSpec(
            f"http://127.0.0.1:{nodes[0][0].port}/uplink/cam", insecure_plaintext=True)],
            schedule_factory=lambda i: ReconnectSchedule(identity=i, min_start=0.05,
                                                         max_start=0.1))
        await agent.start()
        while nodes[1][0].device("cam") is None:
            await asyncio.sleep(0.05)
        local, forwarded = nodes[0][1].port, nodes[1][1].port
        await _get_many(local, "/devices/cam/x", 80)
        await _get_many(forwarded, "/devices/cam/x", 80)
        cpu = {"local": 0.0, "forwarded": 0.0}
        wall = {"local": 0.0, "forwarded": 0.0}
        for _ in range(4):  # A B A B
            for case, port in (("local", local), ("forwarded", forwarded)):
                c0, w0 = time.process_time(), time.perf_counter()
                await _get_many(port, "/devices/cam/x", requests // 4)
                cpu[case] += time.process_time() - c0
                wall[case] += time.perf_counter() - w0
        per = {k: v / requests * 1e6 for k, v in cpu.items()}
        print(f"CPU per request (whole cluster process, HTTP/1.1 keep-alive, 8 clients): "
              f"local {per['local']:.0f} us, forwarded {per['forwarded']:.0f} us, "
              f"ratio {per['forwarded'] / per['local']:.2f}")
        print(f"req/s: local {requests / wall['local']:.0f}, forwarded "
              f"{requests / wall['forwarded']:.0f}")
        loop = asyncio.get_running_loop()
        h2 = await loop.run_in_executor(None, lambda: (
            _h2load(local, "/devices/cam/x", requests * 2),
            _h2load(forwarded, "/devices/cam/x", requests * 2)))
        if h2[0] and h2[1]:
            print(f"h2load req/s: local {h2[0]:.0f}, forwarded {h2[1]:.0f}, "
                  f"ratio {h2[1] / h2[0]:.2f}")
        await agent.stop()
        # the registry's Redis cost: one refresh of `fleet` devices on node a
        cluster = nodes[0][2]
        for i in range(fleet):
            cluster._changed(f"dev-{i:05d}", DeviceInfo(f"dev-{i:05d}", time.time(),
                                                        "127.0.0.1:1", "anonymous"), chain=False)
        cluster._new.clear()
        await cluster._write(True)  # first registration (new epochs)
        before = cluster.stats["commands"]
        t0 = time.perf_counter()
        await cluster._write(True)  # a refresh: one pipeline
        took = time.perf_counter() - t0
        per_10k = (cluster.stats["commands"] - before) * 10_000 / fleet / cluster.refresh
        print(f"refresh of {fleet} devices: one pipeline, {cluster.stats['commands'] - before} "
              f"script calls, {took * 1000:.0f} ms; Redis ops/s per 10,000 devices at "
              f"refresh {cluster.refresh:g} s: {per_10k:.0f}")
        for cloud, expose, cluster in nodes:
            await cluster.close()
            await expose.close()
            await cloud.close()
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    if shutil.which("redis-server") is None:
        print("cluster benchmark skipped: no redis-server")
        sys.exit(0)
    asyncio.run(main(parser.parse_args().quick))
