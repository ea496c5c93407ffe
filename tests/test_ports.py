"""A front-door port per device (issue 10 item 1): the sans-I/O PortAssigner, its file format,
and the crash-safe store beside the broker."""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_io_store import _Injector
from uplink62676.errors import ConfigStoreError, ConfigurationError
from uplink62676.frontdoor.portformat import decode_leases, encode_leases
from uplink62676.frontdoor.ports import PortAssigner, PortLease, parse_port_range
from uplink62676.io.atomic import atomic_write
from uplink62676.io.portstore import PortStore

DAY = 86400.0


def test_lowest_free_port_kept_while_online_and_idle() -> None:
    ports = PortAssigner(7000, 7002, idle_release=7 * DAY)
    assert [ports.assign(d, 0.0) for d in ("a", "b", "c", "d")] == [7000, 7001, 7002, None]
    assert ports.assign("a", 5.0) == 7000  # again: the same
    ports.disconnected("b", 10.0)
    assert ports.next_deadline() == 10.0 + 7 * DAY
    assert ports.assign("d", 10.0 + 7 * DAY - 1) is None  # b's lease still runs
    assert ports.assign("b", 20.0) == 7001 and ports.next_deadline() is None  # back in time
    ports.disconnected("b", 30.0)
    assert ports.assign("d", 30.0 + 7 * DAY) == 7001  # b's lease ran out: d gets the port
    assert ports.lookup("b") is None and ports.device_at(7001) == "d"
    assert ports.release("a") == 7000 and ports.release("a") is None
    assert ports.assign("e", 0.0) == 7000


def test_expire_returns_what_it_freed() -> None:
    ports = PortAssigner(1, 10, idle_release=100.0)
    ports.assign("a", 0.0)
    ports.assign("b", 0.0)
    ports.disconnected("a", 0.0)
    ports.disconnected("b", 50.0)
    assert ports.expire(99.0) == []
    assert ports.expire(100.0) == [PortLease("a", 1, 0.0)]
    assert [lease.device_id for lease in ports.leases()] == ["b"]


def test_restored_leases() -> None:
    """A broker restart: leases come back; one stored as connected is offline since the restart;
    leases outside the (new) range and duplicates are dropped."""
    stored = [PortLease("a", 7001, None), PortLease("b", 7000, 5.0), PortLease("c", 9000, None),
              PortLease("d", 7001, None), PortLease("a", 7002, None)]
    ports = PortAssigner(7000, 7003, idle_release=DAY, leases=stored, now=1000.0)
    assert ports.leases() == [PortLease("b", 7000, 5.0), PortLease("a", 7001, 1000.0)]
    assert ports.assign("a", 1001.0) == 7001 and ports.assign("new", 1001.0) == 7002
    assert ports.expire(5.0 + DAY) == [PortLease("b", 7000, 5.0)]


@given(st.lists(st.tuples(st.sampled_from(["assign", "gone", "release"]),
                          st.sampled_from("abcdefg"), st.floats(0, 10.0)), max_size=60))
def test_assigner_invariants(ops: list[tuple[str, str, float]]) -> None:
    """Whatever happens: one port per device, one device per port, all within the range, and a
    connected device never loses its port."""
    ports = PortAssigner(100, 104, idle_release=3.0)
    now = 0.0
    online: set[str] = set()
    for op, device, step in ops:
        now += step
        if op == "assign":
            if ports.assign(device, now) is not None:
                online.add(device)
        elif op == "gone":
            ports.disconnected(device, now)
            online.discard(device)
        else:
            ports.release(device)
            online.discard(device)
        leases = ports.leases()
        assert len({lease.port for lease in leases}) == len({lease.device_id for lease in leases})
        assert all(100 <= lease.port <= 104 for lease in leases)
        assert all(ports.lookup(d) is not None for d in online)
        assert len(leases) <= 5


def test_parse_port_range() -> None:
    assert parse_port_range("7000-7099") == (7000, 7099)
    for bad in ("7000", "0-10", "10-5", "a-b", "1-70000"):
        with pytest.raises(ConfigurationError):
            parse_port_range(bad)


@given(st.lists(st.tuples(st.text(min_size=1), st.integers(1, 65535),
                          st.none() | st.floats(0, 4e9)), max_size=8))
def test_format_round_trip(items: list[tuple[str, int, float | None]]) -> None:
    leases = [PortLease(d, p, t) for d, p, t in items]
    data = encode_leases(leases, (1, 65535))
    assert decode_leases(data) == leases
    assert json.loads(data)["format"] == 1


def test_format_refuses_what_it_is_not() -> None:
    for bad in (b"", b"[]", b'{"format": 1}', b'{"format": "1", "leases": []}',
                b'{"format": 1, "leases": [{"device": "a", "port": 0}]}',
                b'{"format": 1, "leases": [{"device": "", "port": 1}]}',
                b'{"format": 1, "leases": [{"device": "a", "port": 1, "offline_since": "x"}]}',
                b"\xff"):
        with pytest.raises(ConfigurationError):
            decode_leases(bad)


def test_store_round_trip_and_corrupt_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state" / "device-ports.json"
    store = PortStore(path)
    assert store.load() == []
    leases = [PortLease("cam-1", 7000, None), PortLease("CAM_2", 7001, 12.5)]
    store.save(leases, (7000, 7001))  # creates the directory
    assert store.load() == leases
    path.write_bytes(b'{"format": 1, "leases": [')
    assert store.load() == []
    assert (tmp_path / "state" / "device-ports.json.corrupt-1").exists() and not path.exists()
    path.write_bytes(b'{"format": 99, "leases": []}')
    with pytest.raises(ConfigStoreError, match="newer"):
        store.load()
    assert path.exists()


def test_stale_temporaries_are_removed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "device-ports.json"
    (tmp_path / ".device-ports.json.abc.tmp").write_bytes(b"half")
    PortStore(path).load()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failure_at_every_step_leaves_old_or_new(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inject an OSError at each os call of a save: the file reads as the old or the new
    leases, no temporary file is left, and the error is ours (ConfigStoreError)."""
    path = tmp_path / "device-ports.json"
    old = [PortLease("a", 1, None)]
    new = [PortLease("a", 1, 3.0), PortLease("b", 2, None)]
    with monkeypatch.context() as m:
        probe = _Injector(m, None)
        PortStore(path).save(old, (1, 9))
        steps = probe.count
    assert steps >= 8
    outcomes = set()
    for k in range(1, steps + 1):
        PortStore(path).save(old, (1, 9))
        with monkeypatch.context() as m:
            _Injector(m, k)
            with pytest.raises(ConfigStoreError):
                PortStore(path).save(new, (1, 9))
        loaded = PortStore(path).load()
        assert loaded in (old, new), k
        outcomes.add("new" if loaded == new else "old")
        assert [p.name for p in tmp_path.iterdir()] == ["device-ports.json"], k
    assert outcomes == {"old", "new"}


def test_atomic_write_replaces(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "f")
    atomic_write(path, b"one")
    atomic_write(path, b"two")
    with open(path, "rb") as handle:
        assert handle.read() == b"two"
    assert os.listdir(tmp_path) == ["f"]
