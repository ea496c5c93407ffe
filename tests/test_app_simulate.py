"""The simulated VSS (application layer): cameras, resources, changes (RQ-4, RQ-8, RQ-11, RQ-R1)."""

from __future__ import annotations

from uplink62676.app.simulate import CITY_CENTRE, SimulatedVss
from uplink62676.deviceid import DeviceId
from uplink62676.query.client import Query, create_subscription_request, pull_messages_request
from uplink62676.query.geodesy import geodesic_distance
from uplink62676.services.events import PendingResponse

T0 = 1_772_352_930.0


def test_cameras_and_resources_rq4_rq8() -> None:
    """RQ-4, RQ-8, RQ-R1, TOK-27: 20-digit device-ID prefixes, a source and two profiles each."""
    vss = SimulatedVss(50, seed=1, now=T0, spread=2000)
    reg = vss.service.registry
    assert len(reg) == 150
    kinds = sorted({r.kind for r in reg})
    assert kinds == ["MediaProfile", "VideoSource"]
    for cam in vss.cameras:
        assert str(DeviceId.parse(cam.device_id)) == cam.device_id
        assert cam.device_id[10:13] == "132"  # IPC
        for token in cam.tokens():
            prefix, local = token.rsplit(":", 1)
            assert prefix == cam.device_id and local in ("vs_1", "prof_1", "prof_2")
        r = reg.get(cam.tokens()[1])
        assert len(r.scopes) == 5 and r.offline is False
        d = geodesic_distance(CITY_CENTRE[0], CITY_CENTRE[1], r.location.lat, r.location.lon)
        assert d < 2000 * 1.01
    assert len({c.device_id for c in vss.cameras}) == 50


def test_seeded_determinism() -> None:
    """RQ-2: the same seed gives the same city and the same change schedule."""
    a = SimulatedVss(20, seed=3, now=T0)
    b = SimulatedVss(20, seed=3, now=T0)
    assert list(a.service.registry) == list(b.service.registry)
    assert a.next_deadline() == b.next_deadline()
    c = SimulatedVss(20, seed=4, now=T0)
    assert list(a.service.registry) != list(c.service.registry)


def test_toggles_flow_to_subscribers_rq11() -> None:
    """RQ-11, RQ-21: offline/online toggles reach a blocked poll through handle_timeout."""
    vss = SimulatedVss(10, seed=5, now=T0, change_rate=0.5)
    hdr = {"host": "vss"}
    resp = vss.handle("POST", "/onvif/events_service", hdr,
                      create_subscription_request(Query(topics=["VideoSource"])).body, T0)
    addr = resp.body.split(b"<wsa:Address>")[1].split(b"<")[0].decode()
    path = addr.split("vss", 1)[1]
    first = vss.handle("POST", path, hdr, pull_messages_request(addr, limit=1000).body, T0)
    assert first.body.count(b"Initialized") == 10
    pending = vss.handle("POST", path, hdr, pull_messages_request(addr, timeout=60).body, T0)
    assert isinstance(pending, PendingResponse)
    now, answered = T0, []
    while not answered:
        now = vss.next_deadline()
        answered = vss.handle_timeout(now)
    ((done, resp),) = answered
    assert done is pending and resp.status == 200
    assert b"Changed" in resp.body or now == pending.deadline


def test_explicit_changes() -> None:
    """RQ-9, RQ-10, RQ-11: offline, rename, remove and add produce registry changes."""
    vss = SimulatedVss(3, seed=9, now=T0, change_rate=0)
    assert vss.next_deadline() is None
    token = vss.cameras[0].tokens()[0]
    vss.set_camera_offline(0, True, T0)
    assert vss.service.registry.get(token).offline is True
    vss.rename_camera(0, T0)
    assert "(rev 1)" in vss.service.registry.get(token).name
    vss.remove_camera(1, T0)
    assert len(vss.service.registry) == 6
    vss.add_camera(1, T0)
    assert len(vss.service.registry) == 9
    vss.stop_changes()
    assert vss.handle_timeout(T0 + 1000) == [] and vss.take_completed() == []
