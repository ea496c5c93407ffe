"""The cluster registry's rules (sans-I/O), against a simple model, operations in any order.

The model is a dict of ``device -> (node, epoch, registered at)``, expiry checked on
every read.  A second property runs the same operations against real Redis with the
Lua scripts of ``uplink62676.aio.cluster`` (the registry the nodes share) and compares
the holders with :class:`ClusterRegistry`.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink62676.clusterregistry import ClusterRegistry, Registration

TTL = 3.0
devices = st.sampled_from(["a", "b", "c"])
nodes = st.sampled_from(["n1", "n2", "n3"])
ops = st.lists(st.one_of(
    st.tuples(st.just("register"), devices, nodes, st.integers(1, 6)),
    st.tuples(st.just("unregister"), devices, nodes, st.integers(1, 6)),
    st.tuples(st.just("advance"), st.floats(0.0, 2.0)),
), max_size=60)


def _reg(device: str, node: str, epoch: int) -> Registration:
    return Registration(device, node, f"{node}:1", "h2c-reverse /", epoch)


@given(ops)
def test_registry_follows_the_model(operations: list[tuple[object, ...]]) -> None:
    registry = ClusterRegistry(ttl=TTL)
    model: dict[str, tuple[str, int, float]] = {}
    now = 0.0

    def live(device: str) -> tuple[str, int, float] | None:
        entry = model.get(device)
        if entry is not None and entry[2] + TTL <= now:
            del model[device]
            return None
        return entry

    for op in operations:
        if op[0] == "advance":
            now += float(op[1])  # type: ignore[arg-type]
            continue
        _, device, node, epoch = op
        assert isinstance(device, str) and isinstance(node, str) and isinstance(epoch, int)
        current = live(device)
        if op[0] == "register":
            expected = current is None or current[1] <= epoch
            assert registry.register(_reg(device, node, epoch), now) is expected
            if expected:
                model[device] = (node, epoch, now)
        else:
            expected = current is not None and current[:2] == (node, epoch)
            assert registry.unregister(device, node, epoch, now) is expected
            if expected:
                del model[device]
        for d in ("a", "b", "c"):
            reg, entry = registry.lookup(d, now), live(d)
            assert ((reg.node, reg.epoch) if reg else None) == (entry[:2] if entry else None)
        assert [r.device_id for r in registry.devices(now)] == sorted(
            d for d in ("a", "b", "c") if live(d) is not None)
        # a new registration always wins
        for d in ("a", "b", "c"):
            assert registry.next_epoch(d, now) > (live(d) or ("", 0, 0.0))[1]


redis_ops = st.lists(st.one_of(
    st.tuples(st.just("register"), devices, nodes, st.integers(1, 6)),
    st.tuples(st.just("unregister"), devices, nodes, st.integers(1, 6)),
), max_size=30)


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> object:
    if shutil.which("redis-server") is None:
        pytest.fail("needs redis-server: apt-get install -y redis-server (the README test command)")
    from _cluster_util import Redis

    server = Redis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.port
    server.stop()


@settings(max_examples=40, deadline=None)
@given(operations=redis_ops)
def test_the_redis_scripts_follow_the_same_rules(redis_port: int,
                                                 operations: list[tuple[object, ...]]) -> None:
    import redis.asyncio as aioredis

    from uplink62676.aio import cluster

    async def run() -> None:
        r = aioredis.Redis(port=redis_port, decode_responses=True)
        try:
            await r.flushdb()
            reg_sha = await r.script_load(cluster._REGISTER)
            unreg_sha = await r.script_load(cluster._UNREGISTER)
            registry = ClusterRegistry()
            for op in operations:
                kind, device, node, epoch = op
                assert isinstance(device, str) and isinstance(node, str)
                assert isinstance(epoch, int)
                key = f"t:dev:{device}"
                if kind == "register":
                    got = await r.evalsha(reg_sha, 1, key, node, "addr", "u", str(epoch), "[]",
                                          60000, "t:events", "[]")
                    assert (int(got) != 0) is registry.register(_reg(device, node, epoch), 0.0)
                else:
                    got = await r.evalsha(unreg_sha, 1, key, node, str(epoch), "t:events", "[]")
                    assert bool(got) is registry.unregister(device, node, epoch, 0.0)
                for d in ("a", "b", "c"):
                    fields = await r.hgetall(f"t:dev:{d}")
                    reg = registry.lookup(d, 0.0)
                    assert ((fields["node"], int(fields["epoch"])) if fields else None) == (
                        (reg.node, reg.epoch) if reg else None)
        finally:
            await r.aclose()

    asyncio.run(run())


def test_a_new_registration_in_redis_gets_a_newer_epoch(redis_port: int) -> None:
    import redis.asyncio as aioredis

    from uplink62676.aio import cluster

    async def run() -> list[int]:
        r = aioredis.Redis(port=redis_port, decode_responses=True)
        try:
            sha = await r.script_load(cluster._REGISTER)
            args = ("addr", "u")
            first = int(await r.evalsha(sha, 1, "t:dev:x", "n1", *args, "0", "[]", 60000,
                                        "t:events", "[]"))
            second = int(await r.evalsha(sha, 1, "t:dev:x", "n2", *args, "0", "[]", 60000,
                                         "t:events", "[]"))
            stale = int(await r.evalsha(sha, 1, "t:dev:x", "n1", *args, str(first), "[]",
                                        60000, "t:events", "[]"))
            return [first, second, stale]
        finally:
            await r.aclose()

    first, second, stale = asyncio.run(run())
    assert second > first > 0 and stale == 0  # the old node's refresh lost
