"""Reconnect schedule and watchdog (uplink.md section 9)."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uplink62676.errors import ConfigurationError
from uplink62676.liveness import ReconnectSchedule, Watchdog
from uplink62676.settings import LivenessSettings


@pytest.mark.parametrize(
    ("d0", "expected"),
    [(3.0, [3, 6, 12, 24, 30, 30]), (2.0, [2, 4, 8, 16, 30, 30]), (5.0, [5, 10, 20, 30, 30])],
)
def test_r26_vectors(d0: float, expected: list[int]) -> None:
    """UPL-50, UPL-R25, UPL-R26: doubling from an individual start, capped at 30 s."""
    schedule = ReconnectSchedule(start=d0)
    assert [schedule.next_wait() for _ in expected] == expected


def test_start_derived_from_identity() -> None:
    """UPL-50, UPL-R25: d0 in [1 s, 5 s], stable per device,
    different between devices."""
    a = ReconnectSchedule(identity="32010001071321008015")
    b = ReconnectSchedule(identity="32010001071321008016")
    assert a.start == ReconnectSchedule(identity="32010001071321008015").start
    assert a.start != b.start
    assert a.start is not None and 1.0 <= a.start <= 5.0
    assert a.interval(1) == a.start and a.interval(7) == 30.0


def test_reset_after_stable_connection() -> None:
    """UPL-R25: the count restarts once an uplink stayed Connected 30 s; not before."""
    s = ReconnectSchedule(start=2.0)
    assert [s.next_wait() for _ in range(3)] == [2, 4, 8]
    s.connected(100.0)
    s.disconnected(129.9)
    assert s.next_wait() == 16
    s.connected(200.0)
    s.disconnected(230.0)
    assert s.next_wait() == 2  # waits interval(1) before the first reconnect too


def test_configuration_change_starts_at_once() -> None:
    """UPL-R25: a configuration change (SetUplink) starts a new attempt immediately."""
    s = ReconnectSchedule(start=3.0)
    s.next_wait()
    s.next_wait()
    s.reset()
    assert s.next_wait() == 0.0
    assert s.next_wait() == 3.0


def test_bad_schedule_values() -> None:
    with pytest.raises(ConfigurationError):
        ReconnectSchedule()
    with pytest.raises(ConfigurationError):
        ReconnectSchedule(start=-1)
    with pytest.raises(ConfigurationError):
        ReconnectSchedule(start=1).interval(0)


def _max_share(times: list[float], window: float = 0.1) -> float:
    times = sorted(times)
    best = 0
    for i, t in enumerate(times):
        j = bisect.bisect_right(times, t + window)
        best = max(best, j - i)
    return best / len(times)


@pytest.mark.parametrize("scheme", ["3201000107132{n:07d}", "camera-{n}", "serial:{n:x}"])
def test_ten_thousand_devices_spread_out(scheme: str) -> None:
    """UPL-50, UPL-R25: 10,000 devices losing the cloud at once spread their first three attempts:
    no 100 ms window (sliding, boundaries included) holds more than 3.5 % of any one attempt.

    The start values lie in R25's [1 s, 5 s]; the maximum of a uniform sample of 10,000 over
    4 s in a 100 ms window is about 3 %, so 3.5 % leaves room for the scan statistic only."""
    ids = [scheme.format(n=n) for n in range(10_000)]
    schedules = [ReconnectSchedule(identity=i) for i in ids]
    elapsed = [0.0] * len(schedules)
    for _attempt in range(3):
        for k, s in enumerate(schedules):
            elapsed[k] += s.next_wait()
        share = _max_share(elapsed)
        assert share <= 0.035, share


@given(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
def test_watchdog_schedule(t0: float) -> None:
    """UPL-47, UPL-48, UPL-R23: PING at +10 s and +20 s, dead only after more than +30 s."""
    w = Watchdog(LivenessSettings(), t0)
    assert w.next_deadline() == t0 + 10
    assert w.due(t0 + 9.99) is None
    assert w.due(t0 + 10) == "ping"
    assert w.next_deadline() == t0 + 20
    assert w.due(t0 + 20) == "ping"
    assert w.due(t0 + 30) is None
    assert w.next_deadline() > t0 + 30
    assert w.due(w.next_deadline()) == "dead"


def test_liveness_settings_validated() -> None:
    with pytest.raises(ConfigurationError, match="before dead_after"):
        LivenessSettings(ping_after=(10, 40), dead_after=30)
    with pytest.raises(ConfigurationError, match="ascend"):
        LivenessSettings(ping_after=(20, 10))
