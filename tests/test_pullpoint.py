"""Pull-point subscriptions as a sans-I/O state machine (events.md sections 4-10)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from uplink62676._xml import parse_xml
from uplink62676.errors import LocalProtocolError, NotificationFault, UplinkError
from uplink62676.namespaces import TEV, WSNT
from uplink62676.query.filters import compile_filter
from uplink62676.query.pullpoint import (
    PendingPull,
    PullPointManager,
    PullPointSettings,
    PullResult,
)
from uplink62676.query.resources import (
    GeoLocation,
    PropertyOperation,
    Resource,
    ResourceRegistry,
)
from uplink62676.query.xstime import (
    format_datetime,
    format_duration,
    parse_datetime,
    parse_duration,
)

T0 = 1_772_352_930.0  # 2026-03-01T08:15:30Z
INIT, CHANGED, DELETED = (PropertyOperation.INITIALIZED, PropertyOperation.CHANGED,
                          PropertyOperation.DELETED)
NS = ('xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
      'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
      'xmlns:tt="http://www.onvif.org/ver10/schema" '
      'xmlns:tns1="http://www.onvif.org/ver10/topics"')


def flt(inner: str):
    return compile_filter(parse_xml(f"<tev:Filter {NS}>{inner}</tev:Filter>".encode()))


def manager(n: int = 3, **cfg) -> PullPointManager:
    reg = ResourceRegistry(Resource(f"A:{i}", name=f"r{i}", offline=False) for i in range(n))
    return PullPointManager(reg, PullPointSettings(**cfg))


def pull(m, pid, now, timeout=10.0, limit=100):
    return m.pull(pid, now, timeout=timeout, message_limit=limit)


def ops(result) -> list[tuple[str, str]]:
    return [(n.operation.value, n.token) for n in result.messages]


def fault_name(exc_info) -> str:
    return exc_info.value.fault


# ----------------------------------------------------------------------------- create


def test_create_defaults_and_unique_ids() -> None:
    """EVT-11, EVT-18, EVT-19, EVT-R3: default PT60S, every pull point its own id."""
    m = manager()
    a = m.create(None, T0)
    b = m.create(None, T0, client="c1")
    c = m.create(None, T0, client="c1")
    assert a.termination_time == T0 + 60 and a.current_time == T0
    assert len({a.id, b.id, c.id}) == 3 and len(m) == 3


@pytest.mark.parametrize(("value", "expected"), [
    ("PT2M", T0 + 120), (" PT0.5S ", T0 + 0.5), ("PT1H", T0 + 3600),
    ("2026-03-01T08:20:30Z", T0 + 300), ("2026-03-01T09:20:30+01:00", T0 + 300),
    ("2026-03-01T08:20:30", T0 + 300), (T0 + 42, T0 + 42),
])
def test_initial_termination_time_forms(value, expected) -> None:
    """EVT-13, EVT-3, EVT-R2: absolute UTC (Z, offset, no zone) and relative durations."""
    assert manager().create(None, T0, initial_termination=value).termination_time == expected


@pytest.mark.parametrize("value", ["P1Y", "2026-03-01T07:15:30Z", "-PT5S", "soon", "PT2H"])
def test_unacceptable_initial_termination_time_evt61(value) -> None:
    """EVT-61, EVT-R2, EVT-R3: the fault states Min/MaximumTime; retrying with MaximumTime works."""
    m = manager()
    with pytest.raises(NotificationFault) as info:
        m.create(None, T0, initial_termination=value)
    assert fault_name(info) == "wsnt:UnacceptableInitialTerminationTimeFault"
    detail = etree.fromstring(info.value.detail)
    lo = detail.find(f"{{{WSNT}}}MinimumTime").text
    hi = detail.find(f"{{{WSNT}}}MaximumTime").text
    assert lo.endswith("Z") and hi.endswith("Z")
    assert T0 <= parse_datetime(lo) <= parse_datetime(hi)
    assert m.create(None, T0 + 1, initial_termination=hi).termination_time == parse_datetime(hi)
    assert m.create(None, T0 + 1, initial_termination=lo).termination_time == parse_datetime(lo)


def test_limits_subscribe_creation_failed() -> None:
    """EVT-18, EVT-R3: beyond MaxPullPoints or the per-client limit -> SubscribeCreationFailed."""
    m = manager(max_pull_points=3, max_pull_points_per_client=2)
    m.create(None, T0, client="a")
    m.create(None, T0, client="a")
    with pytest.raises(NotificationFault) as info:
        m.create(None, T0, client="a")
    assert fault_name(info) == "wsnt:SubscribeCreationFailedFault"
    m.create(None, T0, client="b")
    with pytest.raises(NotificationFault) as info:
        m.create(None, T0, client="c")
    assert fault_name(info) == "wsnt:SubscribeCreationFailedFault"
    # expired pull points free their slot (EVT-38)
    assert m.create(None, T0 + 61, client="c").id


def test_config_validation() -> None:
    """EVT-21: the maximum Timeout must allow at least one minute."""
    with pytest.raises(LocalProtocolError, match="59"):
        PullPointSettings(max_timeout=59)
    with pytest.raises(LocalProtocolError, match="max_queue"):
        PullPointSettings(max_queue=0)


# ----------------------------------------------------------------------------- pulling


def test_initial_report_and_message_limit_evt23_evt46() -> None:
    """EVT-46, EVT-23, RQ-9: every existing resource as Initialized; the rest stays queued."""
    m = manager(5)
    sid = m.create(None, T0).id
    r1 = pull(m, sid, T0 + 1, limit=2)
    assert isinstance(r1, PullResult) and ops(r1) == [("Initialized", "A:0"),
                                                      ("Initialized", "A:1")]
    assert all(n.utc_time == T0 + 1 for n in r1.messages)  # RQ-R4: generation time
    r2 = pull(m, sid, T0 + 2, limit=10)
    assert [t for _, t in ops(r2)] == ["A:2", "A:3", "A:4"]
    assert isinstance(pull(m, sid, T0 + 3), PendingPull)


def test_long_poll_completes_on_change_evt24() -> None:
    """EVT-24: a blocked poll answers at once when a change arrives, without waiting for more."""
    m = manager(1)
    sid = m.create(None, T0).id
    pull(m, sid, T0)
    pending = pull(m, sid, T0 + 1, timeout=20)
    assert isinstance(pending, PendingPull) and pending.deadline == T0 + 21
    assert m.next_deadline() == T0 + 21
    done = m.update_resource("A:0", T0 + 5, name="renamed")
    assert len(done) == 1 and done[0].pending is pending and pending.done
    assert ops(done[0].result) == [("Changed", "A:0")]
    assert done[0].result.current_time == T0 + 5
    assert m.handle_timeout(T0 + 30) == []


def test_timeout_answers_empty_heartbeat_evt25_rq21() -> None:
    """EVT-25, EVT-30, RQ-21: nothing produced -> empty answer at the timeout, not before."""
    m = manager(0)
    sid = m.create(None, T0).id
    pending = pull(m, sid, T0, timeout=10)
    assert m.handle_timeout(T0 + 9.999) == []
    (done,) = m.handle_timeout(T0 + 10)
    assert done.pending is pending and done.result.messages == ()
    assert done.result.current_time == T0 + 10


def test_zero_timeout_answers_at_once() -> None:
    """EVT-25: a zero Timeout has elapsed at once, so an empty answer is immediate."""
    m = manager(0)
    sid = m.create(None, T0).id
    assert pull(m, sid, T0, timeout=0).messages == ()


def test_termination_time_follows_pulls_evt15_evt_r5() -> None:
    """EVT-15, EVT-R5: after a response the pull point lives at least Timeout longer."""
    m = manager(1)
    sid = m.create(None, T0, initial_termination="PT5S").id
    r = pull(m, sid, T0 + 1, timeout=60)
    assert r.termination_time == T0 + 61
    pending = pull(m, sid, T0 + 2, timeout=60)
    (done,) = m.handle_timeout(T0 + 62)
    assert done.pending is pending and done.result.termination_time == T0 + 122
    assert m.termination_time(sid) == T0 + 122


def test_concurrent_pull_unable_to_get_messages_evt28() -> None:
    """EVT-28, EVT-R5: a second PullMessages while one is blocked is refused."""
    m = manager(0)
    sid = m.create(None, T0).id
    pending = pull(m, sid, T0)
    with pytest.raises(NotificationFault) as info:
        pull(m, sid, T0 + 1)
    assert fault_name(info) == "wsnt:UnableToGetMessagesFault"
    m.cancel(pending)
    assert pending.done
    assert isinstance(pull(m, sid, T0 + 2), PendingPull)


def test_timeout_above_maximum_evt29_evt21_evt22() -> None:
    """EVT-29, EVT-21, EVT-22: PT1M works, above max -> fault; big limits are capped."""
    m = manager(3, max_timeout=120, max_message_limit=2)
    sid = m.create(None, T0).id
    with pytest.raises(NotificationFault) as info:
        pull(m, sid, T0, timeout=600)
    assert fault_name(info) == "tev:PullMessagesFaultResponse"
    detail = etree.fromstring(info.value.detail)
    assert detail.find(f"{{{TEV}}}MaxTimeout").text == "PT2M"
    assert detail.find(f"{{{TEV}}}MaxMessageLimit").text == "2"
    r = pull(m, sid, T0, timeout=60, limit=10_000)
    assert len(r.messages) == 2
    assert len(pull(m, sid, T0, timeout=60, limit=0).messages) == 1  # EVT-R5: <= 0 -> 1


# ----------------------------------------------------------------------------- manager ops


def test_renew_evt31_evt62_evt_r6() -> None:
    """EVT-31, EVT-62, EVT-R6, OQ-27: Renew is accepted on pull points; bad values fault."""
    m = manager()
    sid = m.create(None, T0).id
    s = m.renew(sid, T0 + 10, "PT5M")
    assert s.termination_time == T0 + 310 and s.current_time == T0 + 10
    assert m.renew(sid, T0 + 20, None).termination_time == T0 + 80
    with pytest.raises(NotificationFault) as info:
        m.renew(sid, T0 + 20, "PT10H")
    assert fault_name(info) == "wsnt:UnacceptableTerminationTimeFault"
    with pytest.raises(NotificationFault) as info:
        m.renew("nope", T0, "PT1M")
    assert fault_name(info) == "wsrf-r:ResourceUnknownFault"


def test_unsubscribe_evt32_evt_r8() -> None:
    """EVT-32, EVT-R8: Unsubscribe ends the pull point at once; later calls get ResourceUnknown."""
    m = manager(0)
    sid = m.create(None, T0).id
    pending = pull(m, sid, T0)
    (done,) = m.unsubscribe(sid, T0 + 1)
    assert done.pending is pending and done.result.fault == "wsrf-r:ResourceUnknownFault"
    for call in (lambda: pull(m, sid, T0 + 2), lambda: m.unsubscribe(sid, T0 + 2),
                 lambda: m.set_synchronization_point(sid, T0 + 2)):
        with pytest.raises(NotificationFault) as info:
            call()
        assert fault_name(info) == "wsrf-r:ResourceUnknownFault"
    assert sid not in m


def test_expiry_evt38() -> None:
    """EVT-38, EVT-R8: a pull point lives until its termination time (lazy + eager expiry)."""
    m = manager(0)
    a = m.create(None, T0, initial_termination="PT10S").id
    b = m.create(None, T0, initial_termination="PT20S").id
    assert m.next_deadline() == T0 + 10
    assert isinstance(pull(m, a, T0 + 10, timeout=0), PullResult)  # still alive at TT
    with pytest.raises(NotificationFault):
        pull(m, a, T0 + 10.5, timeout=0)
    m.handle_timeout(T0 + 21)
    assert b not in m and len(m) == 0 and m.next_deadline() is None


def test_synchronization_point_evt37_evt_r7() -> None:
    """EVT-37, EVT-R7, EVT-49: everything re-reported as Initialized, after waiting messages."""
    m = manager(2)
    sid = m.create(flt("<tt:SelectFilter><tt:Path>/Name</tt:Path></tt:SelectFilter>"), T0).id
    pull(m, sid, T0)
    m.update_resource("A:1", T0 + 1, name="new")
    m.set_synchronization_point(sid, T0 + 2)
    r = pull(m, sid, T0 + 3)
    assert ops(r) == [("Changed", "A:1"), ("Initialized", "A:0"), ("Initialized", "A:1")]
    assert r.messages[2].data == Resource("A:1", name="new")


def test_sync_point_wakes_blocked_poll() -> None:
    """EVT-37, EVT-24: a synchronization point answers a blocked poll."""
    m = manager(1)
    sid = m.create(None, T0).id
    pull(m, sid, T0)
    pending = pull(m, sid, T0 + 1)
    (done,) = m.set_synchronization_point(sid, T0 + 2)
    assert done.pending is pending and ops(done.result) == [("Initialized", "A:0")]


def test_changed_only_policy_evt16() -> None:
    """EVT-16, OQ-42: ChangedOnly -> no initial report, no Initialized/Deleted, no sync report."""
    m = manager(2)
    sid = m.create(None, T0, changed_only=True).id
    assert isinstance(pull(m, sid, T0, timeout=5), PendingPull)
    m.handle_timeout(T0 + 5)
    m.put_resource(Resource("B:1"), T0 + 6)
    m.remove_resource("A:0", T0 + 7)
    m.set_synchronization_point(sid, T0 + 8)
    m.update_resource("A:1", T0 + 9, name="x")
    assert ops(pull(m, sid, T0 + 10)) == [("Changed", "A:1")]


def test_filtered_transitions_rq_r3() -> None:
    """RQ-R3, OQ-41: moving into / out of the circle gives Initialized / Deleted."""
    reg = ResourceRegistry([Resource("A:1", location=GeoLocation(0.0, 0.0))])
    m = PullPointManager(reg)
    sid = m.create(flt("<tt:LocationFilter><tt:lon>0</tt:lon><tt:lat>0</tt:lat>"
                       "<tt:radius>100</tt:radius></tt:LocationFilter>"), T0).id
    assert ops(pull(m, sid, T0)) == [("Initialized", "A:1")]
    m.update_resource("A:1", T0 + 1, location=GeoLocation(0.01, 0.0))
    m.update_resource("A:1", T0 + 2, location=GeoLocation(0.02, 0.0))
    m.update_resource("A:1", T0 + 3, location=GeoLocation(0.0, 0.0005))
    m.put_resource(Resource("A:2", location=GeoLocation(5.0, 5.0)), T0 + 4)
    assert ops(pull(m, sid, T0 + 5)) == [("Deleted", "A:1"), ("Initialized", "A:1")]


def test_changes_during_initial_report() -> None:
    """EVT-46, OQ-30: a change before the initial report reaches the client is folded into it."""
    m = manager(3)
    sid = m.create(None, T0).id
    m.update_resource("A:0", T0 + 1, name="early")  # not yet reported: no Changed
    m.remove_resource("A:1", T0 + 2)  # never reported: no Deleted
    m.put_resource(Resource("B:9"), T0 + 3)
    r = pull(m, sid, T0 + 4)
    assert ops(r) == [("Initialized", "A:0"), ("Initialized", "A:2"), ("Initialized", "B:9")]
    assert r.messages[0].data.name == "early"


def test_delete_and_readd_during_sync_report_keeps_order() -> None:
    """EVT-37, OQ-30: delete + re-add during a pending sync report keeps the resource."""
    m = manager(2)
    sid = m.create(None, T0).id
    pull(m, sid, T0)
    m.set_synchronization_point(sid, T0 + 1)
    m.remove_resource("A:0", T0 + 2)
    m.put_resource(Resource("A:0", name="back"), T0 + 3)
    r = pull(m, sid, T0 + 4)
    assert ops(r) == [("Initialized", "A:1"), ("Deleted", "A:0"), ("Initialized", "A:0")]


def test_queue_overflow_coalesces_property_transitions_evt_r8() -> None:
    """EVT-R8: on overflow property transitions are coalesced per topic+token, never dropped."""
    m = manager(3, max_queue=4)
    sid = m.create(None, T0, initial_termination="PT5M").id
    pull(m, sid, T0)
    for i in range(50):
        m.update_resource(f"A:{i % 3}", T0 + 1 + i, name=f"v{i}")
    m.put_resource(Resource("C:1"), T0 + 60)
    m.remove_resource("C:1", T0 + 61)  # Initialized + Deleted coalesce to nothing
    m.remove_resource("A:2", T0 + 62)  # Changed + Deleted -> Deleted (at the next overflow)
    m.update_resource("A:0", T0 + 63, name="final")
    r = pull(m, sid, T0 + 70)
    assert sorted(ops(r)) == [("Changed", "A:0"), ("Changed", "A:1"), ("Deleted", "A:2")]
    last = {n.token: n.data.name for n in r.messages if n.data}
    assert last == {"A:0": "final", "A:1": "v49"}


def test_seek_evt34_evt35_evt36_evt27() -> None:
    """EVT-34, EVT-35, EVT-36, EVT-27, OQ-39: Seek replays stored messages in UtcTime order,
    aborts the initial report and emits EventBuffer/Begin once."""
    m = manager(1)
    assert m.persistent_storage
    m.update_resource("A:0", T0 + 10, name="a")
    m.update_resource("A:0", T0 + 20, name="b")
    m.put_resource(Resource("B:1"), T0 + 30)
    sid = m.create(None, T0 + 40).id  # initial report pending ...
    m.seek(sid, T0 + 41, T0 + 15)  # ... and aborted by Seek
    r = pull(m, sid, T0 + 42)
    assert ops(r) == [("Changed", "A:0"), ("Initialized", "B:1")]
    assert [n.utc_time for n in r.messages] == sorted(n.utc_time for n in r.messages)
    m.seek(sid, T0 + 43, T0)  # before the start of the buffer
    r = pull(m, sid, T0 + 44)
    assert r.messages[0].topic == "EventBuffer/Begin" and r.messages[0].operation is None
    assert len(r.messages) == 4
    m.seek(sid, T0 + 44.5, T0 + 20)  # EVT-35: forward includes UtcTime == argument
    assert [n.utc_time for n in pull(m, sid, T0 + 44.6).messages] == [T0 + 20, T0 + 30]
    m.seek(sid, T0 + 45, T0 + 20, reverse=True)  # reverse includes UtcTime == argument
    r = pull(m, sid, T0 + 46)
    assert [n.utc_time for n in r.messages[:2]] == [T0 + 20, T0 + 10]
    assert r.messages[-1].topic == "EventBuffer/Begin"
    assert sum(n.topic == "EventBuffer/Begin" for n in r.messages) == 1


def test_seek_without_storage() -> None:
    """EVT-34: Seek needs persistent storage."""
    m = manager(1, history=0)
    sid = m.create(None, T0).id
    assert not m.persistent_storage
    with pytest.raises(LocalProtocolError):
        m.seek(sid, T0, T0)


def test_history_is_bounded() -> None:
    """EVT-R8: stored messages are bounded; the buffer start moves with the oldest."""
    m = manager(1, history=3)
    for i in range(10):
        m.update_resource("A:0", T0 + i, name=str(i))
    sid = m.create(None, T0 + 20).id
    m.seek(sid, T0 + 20, T0 + 6)
    r = pull(m, sid, T0 + 21)
    assert r.messages[0].topic == "EventBuffer/Begin"
    assert [n.data.name for n in r.messages[1:]] == ["7", "8", "9"]


def test_times_are_utc_z_evt3() -> None:
    """EVT-3, EVT-14, EVT-26: times format as UTC with Z."""
    assert format_datetime(T0) == "2026-03-01T08:15:30Z"
    assert format_datetime(T0 + 0.12) == "2026-03-01T08:15:30.120Z"


@settings(max_examples=300, deadline=None)
@given(st.floats(0, 4e9))
def test_datetime_round_trip_evt3(epoch) -> None:
    """EVT-3, EVT-R2: format/parse of xs:dateTime round-trips to the millisecond, always with Z."""
    text = format_datetime(epoch)
    assert text.endswith("Z")
    assert parse_datetime(text) == pytest.approx(epoch, abs=0.0005 + 1e-6)  # half a ms + float error


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**7), st.sampled_from([0, 0.5, 0.25]))
def test_duration_round_trip_evt_r2(seconds, frac) -> None:
    """EVT-R2: PTnHnMnS durations round-trip; P1M is added calendar-wise."""
    d = parse_duration(format_duration(seconds + frac))
    assert d.length_from(T0) == seconds + frac and not d.negative
    assert parse_duration("P1M").length_from(T0) == 31 * 86400  # March has 31 days
    assert parse_duration("-P1Y2M").length_from(T0) < -400 * 86400


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="PYMDTHS0123456789.-+:Z ", max_size=30))
def test_time_parsers_are_total(text) -> None:
    """EVT-R2: every text is a duration/dateTime or our LocalProtocolError, nothing else."""
    for parser in (parse_duration, parse_datetime):
        with contextlib.suppress(UplinkError):
            parser(text)


def test_overflow_with_distinct_properties_stays_cheap_evt_r8() -> None:
    """EVT-R8: distinct property transitions are never dropped, even far beyond the limit."""
    m = manager(0, max_queue=10, history=0)
    sid = m.create(None, T0, initial_termination="PT10M").id
    for i in range(5000):
        m.put_resource(Resource(f"B:{i}"), T0 + 1)
    r = pull(m, sid, T0 + 2, limit=1000)
    assert len(r.messages) == 1000
    total = 1000
    while True:
        got = pull(m, sid, T0 + 3, timeout=0, limit=1000).messages
        if not got:
            break
        total += len(got)
    assert total == 5000
