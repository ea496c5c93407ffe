"""The cluster's device-port allocation rule (sans-I/O), against a model and against Redis.

The model is a dict ``device -> (port, seen)``: a claim keeps a live lease or takes
the lowest port no live lease holds.  A second property runs the same operations
through the Lua script of ``uplink62676.aio.clusterports`` on real Redis (with the
clock passed in) and compares the table, key for key, with :class:`SharedPortTable`.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink62676.frontdoor.sharedports import SharedPortTable

LOW, HIGH, IDLE = 100, 103, 1000  # four ports, leases released after 1 s unseen
DEVICES = ["a", "b", "c", "d", "e", "f"]
device_lists = st.lists(st.sampled_from(DEVICES), max_size=4)
ops = st.lists(st.one_of(
    st.tuples(st.just("claim"), device_lists),
    st.tuples(st.just("touch"), device_lists),
    st.tuples(st.just("advance"), st.integers(0, 800)),
), max_size=50)


@given(ops)
def test_allocation_follows_the_model(operations: list[tuple[object, object]]) -> None:
    table = SharedPortTable(LOW, HIGH, IDLE)
    model: dict[str, tuple[int, int]] = {}
    now = 10_000

    def expire() -> set[tuple[str, int]]:
        gone = {(d, p) for d, (p, seen) in model.items() if seen + IDLE <= now}
        for d, _ in gone:
            del model[d]
        return gone

    for kind, arg in operations:
        if kind == "advance":
            assert isinstance(arg, int)
            now += arg
            continue
        assert isinstance(arg, list)
        result = table.claim(arg, now) if kind == "claim" else table.touch(arg, now)
        assert set(result.released) == expire()
        want: list[int | None] = []
        for d in arg:
            if d in model:
                model[d] = (model[d][0], now)
            elif kind == "claim":
                free = sorted(set(range(LOW, HIGH + 1)) - {p for p, _ in model.values()})
                if free:
                    model[d] = (free[0], now)
            want.append(model[d][0] if d in model else None)
        assert list(result.ports) == want
        # one port per device, one device per port, all in range
        assert sorted(table.leases(), key=lambda x: x[0]) == sorted(
            (d, p) for d, (p, _) in model.items())
        for d, (p, seen) in model.items():
            assert table.lookup(d) == p and table.device_at(p) == d and table.seen(d) == seen
            assert LOW <= p <= HIGH


def test_a_mirror_follows_the_events() -> None:
    store = SharedPortTable(LOW, HIGH, IDLE)
    mirror = SharedPortTable(LOW, HIGH, IDLE)
    for step, devices in enumerate((["a", "b"], ["c"], [], ["a", "d", "e"])):
        result = store.claim(devices, 10_000 + step * 600)
        for d, p in result.released:
            assert mirror.released(d, p)
        for d, p in result.assigned:
            assert mirror.assigned(d, p)
        assert mirror.leases() == store.leases()
    copy = SharedPortTable(LOW, HIGH, IDLE)
    copy.replace_all(store.leases())
    assert copy.leases() == store.leases()
    # a new range drops what falls outside it
    dropped = store.set_range(LOW + 1, HIGH)
    assert all(p == LOW for _, p in dropped) and all(p > LOW for _, p in store.leases())


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        pytest.fail("needs redis-server: apt-get install -y redis-server (the README test command)")
    from _cluster_util import Redis

    server = Redis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.port
    server.stop()


KEYS = ["t:ports:dev", "t:ports:port", "t:ports:seen", "t:ports:free", "t:ports:range"]


@settings(max_examples=40, deadline=None)
@given(operations=ops)
def test_the_redis_script_follows_the_same_rule(redis_port: int,
                                                operations: list[tuple[object, object]]) -> None:
    import redis.asyncio as aioredis

    from uplink62676.aio import clusterports

    async def run() -> None:
        r = aioredis.Redis(port=redis_port, decode_responses=True)
        pubsub = r.pubsub()
        try:
            await r.flushdb()
            await pubsub.subscribe("t:ports")
            sha = await r.script_load(clusterports._CLAIM)
            table = SharedPortTable(LOW, HIGH, IDLE)
            mirror = SharedPortTable(LOW, HIGH, IDLE)
            now = 10_000
            for kind, arg in operations:
                if kind == "advance":
                    assert isinstance(arg, int)
                    now += arg
                    continue
                assert isinstance(arg, list)
                got = await r.evalsha(sha, len(KEYS), *KEYS, LOW, HIGH, IDLE, "t:ports", kind,
                                      now, *arg)
                result = table.claim(arg, now) if kind == "claim" else table.touch(arg, now)
                assert [int(p) or None for p in got] == list(result.ports)
                ports = {d: int(p) for d, p in (await r.hgetall(KEYS[0])).items()}
                assert ports == {d: table.lookup(d) for d in DEVICES if table.lookup(d)}
                assert {int(p): d for p, d in (await r.hgetall(KEYS[1])).items()} == {
                    p: d for d, p in ports.items()}
                seen = {d: int(s) for d, s in await r.zrange(KEYS[2], 0, -1, withscores=True)}
                assert seen == {d: table.seen(d) for d in ports}
                free = [int(p) for p in await r.zrange(KEYS[3], 0, -1)]
                assert free == sorted(set(range(LOW, HIGH + 1)) - set(ports.values()))
                # the events tell a mirror everything
                while (message := await pubsub.get_message(timeout=0.05)) is not None:
                    if message["type"] != "message":
                        continue
                    what, port, device = str(message["data"]).split(" ", 2)
                    if what == "P":
                        mirror.assigned(device, int(port))
                    else:
                        assert mirror.released(device, int(port))
                assert mirror.leases() == table.leases()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await r.aclose()

    asyncio.run(run())
