"""``--device-ports`` across a cluster: Redis, HAProxy, three nodes (CLI subprocesses).

Every node listens on the device ports of the whole cluster, so on one machine each
node's front door has its own loopback address (127.0.0.2-4).  A device gets one
port from the shared table in Redis; every node lists it and answers on it, also
after the device's node was killed and the device came back through another.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from _cluster_util import Cluster, http_get, needs_servers

pytestmark = [needs_servers]

COUNT = 8
DEVICES = [f"dev-{i:03d}" for i in range(COUNT)]
HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def _free_range(size: int) -> tuple[int, int]:
    """``size`` consecutive ports free on every node's address."""
    for _ in range(200):
        low = random.randrange(30000, 60000 - size)
        try:
            for host in HOSTS:
                for port in range(low, low + size):
                    with socket.socket() as s:
                        s.bind((host, port))
        except OSError:
            continue
        return low, low + size - 1
    raise AssertionError("no free port range")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    low, high = _free_range(COUNT + 4)
    c = Cluster(tmp_path_factory.mktemp("cluster-ports"), n=3, refresh=1.0, hosts=HOSTS,
                extra=["--device-ports", f"{low}-{high}", "--port-idle-release", "60"])
    c.port_range = (low, high)  # type: ignore[attr-defined]
    try:
        c.start()
        c.start_fleet(COUNT)
        c.wait_listed(COUNT)
        yield c
    finally:
        c.stop()


def _ports(cluster: Cluster, node_index: int) -> dict[str, tuple[str, int | None]]:
    """``device -> (node holding it, its port)`` as one node's ``GET /devices`` lists it."""
    out: dict[str, tuple[str, int | None]] = {}
    for entry in cluster.listing(cluster.nodes[node_index]):
        urls = [str(u) for u in entry["urls"]]  # type: ignore[attr-defined]
        own = [u for u in urls if "/devices/" not in u]
        out[str(entry["id"])] = (str(entry["node"]),
                                 int(own[0].rstrip("/").rsplit(":", 1)[1]) if own else None)
    return out


def _alive(cluster: Cluster) -> list[int]:
    return [i for i, n in enumerate(cluster.nodes) if n.proc is not None and n.proc.poll() is None]


def _wait_ports(cluster: Cluster, timeout: float = 20.0) -> dict[str, tuple[str, int | None]]:
    """Until every live node lists every device with the same port; that listing."""
    deadline = time.monotonic() + timeout
    while True:
        listings = [_ports(cluster, i) for i in _alive(cluster)]
        first = listings[0]
        same = all({d: p for d, (_, p) in x.items()} == {d: p for d, (_, p) in first.items()}
                   for x in listings)
        if same and sorted(first) == DEVICES and all(p for _, p in first.values()):
            return first
        assert time.monotonic() < deadline, listings
        time.sleep(0.2)


async def _get_all(cluster: Cluster, ports: dict[str, int], nodes: list[int]
                   ) -> dict[tuple[str, str], tuple[int, bytes]]:
    async def one(device: str, i: int) -> tuple[tuple[str, str], tuple[int, bytes]]:
        node = cluster.nodes[i]
        status, _, body = await http_get(ports[device], "/who", 10, node.host)
        return (device, node.name), (status, body)

    return dict(await asyncio.gather(*(one(d, i) for d in ports for i in nodes)))


def test_a_device_has_one_port_on_every_node(cluster: Cluster) -> None:
    listing = _wait_ports(cluster)
    ports = {d: p for d, (_, p) in listing.items() if p is not None}
    low, high = cluster.port_range  # type: ignore[attr-defined]
    assert len(set(ports.values())) == COUNT  # never one port for two devices
    assert all(low <= p <= high for p in ports.values())
    assert {n for n, _ in listing.values()} == {"n1", "n2", "n3"}  # held on every node
    # every node answers on every device's port, local or forwarded to its holder
    results = asyncio.run(_get_all(cluster, ports, _alive(cluster)))
    bad = {k: v for k, v in results.items() if v[0] != 200 or not v[1].startswith(k[0].encode())}
    assert not bad, bad
    # the same in Redis: one table for the cluster
    stored = cluster.redis.cli("HGETALL", "uplink62676:ports:dev").split()
    assert dict(zip(stored[::2], map(int, stored[1::2]), strict=True)) == ports


def test_the_port_survives_the_device_moving_to_another_node(cluster: Cluster) -> None:
    before = _wait_ports(cluster)
    victims = sorted(d for d, (n, _) in before.items() if n == "n3")
    assert victims
    cluster.nodes[2].signal(signal.SIGKILL)
    cluster.nodes[2].proc.wait(5)  # type: ignore[union-attr]
    cluster.nodes[2].proc = None
    deadline = time.monotonic() + 30
    while True:  # the devices reconnect through HAProxy to n1 and n2
        after = _wait_ports(cluster)
        if all(after[d][0] in ("n1", "n2") for d in victims):
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.2)
    assert {d: p for d, (_, p) in after.items()} == {d: p for d, (_, p) in before.items()}
    ports = {d: p for d, (_, p) in after.items() if p is not None}
    results = asyncio.run(_get_all(cluster, {d: ports[d] for d in victims}, [0, 1]))
    bad = {k: v for k, v in results.items() if v[0] != 200 or not v[1].startswith(k[0].encode())}
    assert not bad, bad
