"""A cluster on loopback: Redis, HAProxy and three cloud nodes (CLI subprocesses), 300 devices.

The devices (one process, ``_cluster_fleet.py``) connect in plaintext through
HAProxy's TCP-mode uplink port -- 300 client certificates would only slow the
test; ``test_cluster_mtls.py`` proves that mTLS identities pass through HAProxy.
The tests run in order on one cluster: reach, Redis restart, node death, drain.
"""

from __future__ import annotations

import asyncio
import collections
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
