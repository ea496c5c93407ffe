"""A cluster on loopback: Redis, HAProxy and three cloud nodes (CLI subprocesses), 300 devices.

The devices (one process, ``_cluster_fleet.py``) connect in plaintext through
HAProxy's TCP-mode uplink port -- 300 client certificates would only slow the
test; ``test_cluster_mtls.py`` proves that mTLS identities pass through HAProxy.
The tests run in order on one cluster: reach, Redis restart, node death, drain.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Iterator

import pytest

from _cluster_util import Cluster, fetch_all, http_get, needs_servers

pytestmark = [needs_servers]

COUNT = 300
DEVICES = [f"dev-{i:03d}" for i in range(COUNT)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"), n=3, refresh=1.0)
    try:
        c.start()
        c.start_fleet(COUNT)
        c.wait_listed(COUNT)
        yield c
    finally:
        c.stop()


def _holders(cluster: Cluster) -> dict[str, str]:
    listing = cluster.listing(next(n for n in cluster.nodes if n.proc is not None
                                   and n.proc.poll() is None))
    return {str(d["id"]): str(d["node"]) for d in listing}


def test_every_node_reaches_every_device(cluster: Cluster) -> None:
    holders = _holders(cluster)
    assert sorted(holders) == DEVICES
    spread = collections.Counter(holders.values())
    assert set(spread) == {"n1", "n2", "n3"}, spread  # leastconn spread the uplinks
    assert min(spread.values()) >= COUNT // 6, spread
    for node in cluster.nodes:  # from every node's front door, local or forwarded
        results = asyncio.run(fetch_all(node.expose, DEVICES))
        bad = {d: r[:2] for d, r in results.items() if r[0] != 200 or not r[1].startswith(
            d.encode())}
        assert not bad, f"from {node.name}: {dict(list(bad.items())[:5])}"
    # and through HAProxy's front-door port, whichever node it picks
    results = asyncio.run(fetch_all(cluster.frontdoor_port, DEVICES))
    assert all(r[0] == 200 for r in results.values())


def test_forwarded_request_is_served_as_if_local(cluster: Cluster) -> None:
    holders = _holders(cluster)
    device = next(d for d, n in holders.items() if n == "n2")
    local = asyncio.run(http_get(cluster.nodes[1].expose, f"/devices/{device}/who?x=1"))
    remote = asyncio.run(http_get(cluster.nodes[0].expose, f"/devices/{device}/who?x=1"))
    assert local[0] == remote[0] == 200
    assert local[2] == remote[2]
    assert local[1]["x-device"] == remote[1]["x-device"] == device
    # the device saw the client's origin both times (the node the client reached)
    assert remote[1]["x-authority"] == f"127.0.0.1:{cluster.nodes[0].expose}"
    assert local[1]["x-authority"] == f"127.0.0.1:{cluster.nodes[1].expose}"


def test_internal_port_refuses_strangers(cluster: Cluster) -> None:
    status, _, _ = asyncio.run(http_get(cluster.nodes[0].internal, "/devices"))
    assert status == 403


def test_redis_restart_nodes_keep_serving_and_reregister(cluster: Cluster) -> None:
    holders = _holders(cluster)
    remote = [d for d, n in holders.items() if n != "n1"][:50]
    cluster.redis.stop()
    time.sleep(0.5)
    # Redis is down: n1 serves its own devices and forwards by what its mirror knew
    results = asyncio.run(fetch_all(cluster.nodes[0].expose, remote))
    assert all(r[0] == 200 for r in results.values()), results
    status, headers, _ = asyncio.run(http_get(cluster.nodes[0].expose, "/devices/nobody/x"))
    assert status == 503 and "retry-after" in headers  # cannot know: not a 404
    cluster.redis.start()
    up = time.monotonic()
    while cluster.redis.device_keys() < COUNT:
        assert time.monotonic() - up < 2 * cluster.refresh + 1.0, cluster.redis.device_keys()
        time.sleep(0.05)
    elapsed = time.monotonic() - up
    assert elapsed <= cluster.refresh + 1.0, elapsed  # one refresh interval (+ reconnect)
    cluster.wait_listed(COUNT, timeout=10)
    status, _, _ = asyncio.run(http_get(cluster.nodes[0].expose, "/devices/nobody/x"))
    assert status == 404


def test_a_killed_node_devices_come_back_through_the_others(cluster: Cluster) -> None:
    holders = _holders(cluster)
    victims = sorted(d for d, n in holders.items() if n == "n3")
    assert victims
    cluster.nodes[2].signal(signal.SIGKILL)
    cluster.nodes[2].proc.wait(5)  # type: ignore[union-attr]
    cluster.nodes[2].proc = None
    killed = time.monotonic()
    # reconnect window (schedule capped at 2 s) + TTL (3 s) + slack for 100 reconnects
    budget = 2.0 + 3 * cluster.refresh + 10.0
    statuses: collections.Counter[int] = collections.Counter()
    slowest = 0.0
    while True:
        results = asyncio.run(fetch_all(cluster.nodes[0].expose, victims, timeout=8.0))
        statuses.update(r[0] for r in results.values())
        slowest = max(slowest, *(r[2] for r in results.values()))
        if all(r[0] == 200 for r in results.values()):
            break
        assert time.monotonic() - killed < budget, (statuses, {
            d: r[:2] for d, r in results.items() if r[0] != 200})
        time.sleep(0.2)
    recovered = time.monotonic() - killed
    print(f"\n{len(victims)} devices of the killed node reachable again after "
          f"{recovered:.1f} s; answers meanwhile {dict(statuses)}; slowest {slowest:.2f} s")
    assert set(statuses) <= {200, 502, 503}, statuses  # failures are clean answers
    assert slowest < 5.0  # never hangs
    listing = cluster.wait_listed(COUNT, timeout=10)
    assert {d["node"] for d in listing} <= {"n1", "n2"}


def test_sigterm_drains_a_node(cluster: Cluster) -> None:
    holders = _holders(cluster)
    moving = sorted(d for d, n in holders.items() if n == "n2")
    slow = moving[0]

    async def drain() -> tuple[tuple[int, dict[str, str], bytes], ...]:
        direct = asyncio.create_task(http_get(cluster.nodes[1].expose, f"/devices/{slow}/slow"))
        forwarded = asyncio.create_task(http_get(cluster.nodes[0].expose,
                                                 f"/devices/{slow}/slow"))
        await asyncio.sleep(0.5)
        cluster.nodes[1].signal(signal.SIGTERM)
        return await direct, await forwarded

    direct, forwarded = asyncio.run(drain())
    assert (direct[0], forwarded[0]) == (200, 200), (direct, forwarded)  # in flight: finished
    assert cluster.nodes[1].proc is not None
    assert cluster.nodes[1].proc.wait(15) == 0
    cluster.nodes[1].proc = None
    listing = cluster.wait_listed(COUNT, timeout=30)
    assert {d["node"] for d in listing} == {"n1"}
    results = asyncio.run(fetch_all(cluster.nodes[0].expose, moving))
    assert all(r[0] == 200 for r in results.values())
