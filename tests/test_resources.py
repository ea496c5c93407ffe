"""Resource registry and PropertyOperation rules (RQ-1..RQ-11, RQ-R3, OQ-41)."""

from __future__ import annotations

import tracemalloc

import pytest

from uplink62676._xml import parse_xml
from uplink62676.errors import LocalProtocolError
from uplink62676.query.filters import compile_filter
from uplink62676.query.resources import (
    RESOURCE_KINDS,
    GeoLocation,
    PropertyOperation,
    Resource,
    ResourceChange,
    ResourceRegistry,
    initialized,
    resource_topic,
    translate,
)

T0 = 1_772_352_930.0
NS = ('xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
      'xmlns:tt="http://www.onvif.org/ver10/schema"')


def flt(inner: str):
    return compile_filter(parse_xml(f"<tev:Filter {NS}>{inner}</tev:Filter>".encode()))


NEAR = ("<tt:LocationFilter><tt:lon>0</tt:lon><tt:lat>0</tt:lat><tt:radius>100</tt:radius>"
        "</tt:LocationFilter>")


def test_resource_value_rq5_rq6_rq7() -> None:
    """RQ-1, RQ-5, RQ-6, RQ-7: a resource is a token plus optional Data items, as a value."""
    r = Resource("A:1")
    assert r.kind == "MediaProfile" and r.topic == "Resource/MediaProfile"
    assert (r.name, r.location, r.scopes, r.offline) == (None, None, (), None)
    assert resource_topic("VideoSource") == ("http://www.onvif.org/ver10/topics",
                                             ("Resource", "VideoSource"))
    with pytest.raises(LocalProtocolError, match="''"):
        Resource("")
    with pytest.raises(LocalProtocolError, match="a/b"):
        Resource("A:1", "a/b")
    with pytest.raises(AttributeError):
        r.name = "x"  # type: ignore[misc]
    with pytest.raises(LocalProtocolError, match="'north'"):
        GeoLocation(lon=1, lat="north")
    assert GeoLocation(lon=1, lat=2).lon == 1.0
    with pytest.raises(LocalProtocolError, match="'yes'"):
        Resource("A:1", offline="yes")
    with pytest.raises(LocalProtocolError, match="onvif://x"):
        Resource("A:1", scopes="onvif://x")
    with pytest.raises(LocalProtocolError, match="None"):
        Resource("A:1", scopes=[None])
    for bad in ({"token": "A:\x00"}, {"name": "a\x01"}, {"scopes": ["onvif://\ufffe"]}):
        with pytest.raises(LocalProtocolError, match="XML"):
            Resource(**{"token": "A:1", **bad})


def test_resource_kinds_rq4_rq_r1() -> None:
    """RQ-4, RQ-R1, OQ-26: media configurations, profiles and the ONVIF type names."""
    for kind in ("VideoSourceConfiguration", "MaskConfiguration", "MediaProfile",
                 "VideoSource", "PTZNode", "Recording", "RecordingJob"):
        assert kind in RESOURCE_KINDS
    assert Resource("A:1", "VendorThing").topic == "Resource/VendorThing"


def test_repeated_scopes_rq8() -> None:
    """RQ-8, OQ-25: several Scope entries per resource, shared between resources of a device."""
    a = Resource("A:1", scopes=["onvif://x/a", "onvif://x/b"])
    b = Resource("A:2", scopes=("onvif://x/a", "onvif://x/b"))
    assert a.scopes == ("onvif://x/a", "onvif://x/b")
    assert a.scopes is b.scopes


def test_registry_changes() -> None:
    """RQ-2, RQ-9, RQ-10: additions, changes and removals become ResourceChange values."""
    reg = ResourceRegistry()
    r = Resource("A:1", name="x")
    c = reg.put(r, T0)
    assert c == ResourceChange(None, r, T0) and c.token == "A:1"
    assert reg.put(r, T0 + 1) is None
    c2 = reg.update("A:1", T0 + 2, name="y")
    assert c2 is not None and c2.old == r and c2.new.name == "y"
    c3 = reg.set_offline("A:1", True, T0 + 3)
    assert c3 is not None and c3.new.offline is True
    assert reg.set_offline("A:1", True, T0 + 4) is None
    assert len(reg) == 1 and "A:1" in reg and reg.get("A:1").offline
    c4 = reg.remove("A:1", T0 + 5)
    assert c4 is not None and c4.new is None and c4.token == "A:1"
    assert reg.remove("A:1", T0 + 6) is None
    with pytest.raises(LocalProtocolError, match="A:1"):
        reg.update("A:1", T0, name="z")
    reg.put(Resource("B:1", "VideoSource"), T0)
    with pytest.raises(LocalProtocolError, match="kind"):
        reg.put(Resource("B:1", "MediaProfile"), T0)
    with pytest.raises(LocalProtocolError, match="colour"):
        reg.update("B:1", T0, colour="red")


def test_translate_without_filter() -> None:
    """RQ-9, RQ-10, EVT-47, OQ-30: Initialized on add, Changed on change, Deleted on removal."""
    r = Resource("A:1", name="x")
    n = translate(ResourceChange(None, r, T0), None)
    assert n.operation is PropertyOperation.INITIALIZED and n.data == r and n.utc_time == T0
    n = translate(ResourceChange(r, Resource("A:1", name="y"), T0 + 1), None)
    assert n.operation is PropertyOperation.CHANGED and n.data.name == "y"
    n = translate(ResourceChange(r, None, T0 + 2), None)
    assert n.operation is PropertyOperation.DELETED and n.data is None and n.token == "A:1"
    assert n.utc_time == T0 + 2  # RQ-R4: time of the change


def test_offline_transition_only_when_item_reported_rq11() -> None:
    """RQ-11: online/offline yields Changed only if the event carries the Offline item."""
    on = Resource("A:1", name="x", offline=False)
    off = Resource("A:1", name="x", offline=True)
    assert translate(ResourceChange(on, off, T0), None).operation is PropertyOperation.CHANGED
    hidden = flt("<tt:SelectFilter><tt:Path>/Name</tt:Path></tt:SelectFilter>")
    assert translate(ResourceChange(on, off, T0), hidden) is None
    shown = flt("<tt:SelectFilter><tt:Path>/Offline</tt:Path></tt:SelectFilter>")
    n = translate(ResourceChange(on, off, T0), shown)
    assert n.operation is PropertyOperation.CHANGED and n.data.offline is True
    assert n.data.name is None


def test_state_transitions_rq_r3() -> None:
    """RQ-R3, OQ-41: entering the filtered set = Initialized, leaving = Deleted."""
    f = flt(NEAR)
    inside = Resource("A:1", location=GeoLocation(0.0, 0.0))
    outside = Resource("A:1", location=GeoLocation(0.01, 0.0))
    moved_inside = Resource("A:1", location=GeoLocation(0.0001, 0.0))
    assert translate(ResourceChange(outside, inside, T0), f).operation \
        is PropertyOperation.INITIALIZED
    assert translate(ResourceChange(inside, outside, T0), f).operation \
        is PropertyOperation.DELETED
    assert translate(ResourceChange(inside, moved_inside, T0), f).operation \
        is PropertyOperation.CHANGED
    assert translate(ResourceChange(outside, Resource("A:1", location=GeoLocation(0.02, 0)),
                                    T0), f) is None
    assert translate(ResourceChange(inside, None, T0), f).operation is PropertyOperation.DELETED
    assert translate(ResourceChange(outside, None, T0), f) is None


def test_changed_only_evt16() -> None:
    """EVT-16, OQ-42: under ChangedOnly no Initialized and no Deleted, Changed still flows."""
    a, b = Resource("A:1", name="x"), Resource("A:1", name="y")
    assert translate(ResourceChange(None, a, T0), None, changed_only=True) is None
    assert translate(ResourceChange(a, None, T0), None, changed_only=True) is None
    assert translate(ResourceChange(a, b, T0), None, True).operation is PropertyOperation.CHANGED


def test_initialized_report_rq9_rq_r4() -> None:
    """RQ-9, RQ-R4, EVT-37: the initial/synchronization report is Initialized at generation time."""
    f = flt("<tt:SelectFilter><tt:Path>/Name</tt:Path></tt:SelectFilter>")
    n = initialized(Resource("A:1", name="x", offline=True), f, T0 + 9)
    assert n.operation is PropertyOperation.INITIALIZED and n.utc_time == T0 + 9
    assert n.data == Resource("A:1", name="x") and n.key == ("Resource/MediaProfile", "A:1")


def test_100k_resources_are_cheap() -> None:
    """RQ-2 (scale): 100,000 resources with locations and shared scopes in < 600 B each."""
    scopes = ("onvif://www.onvif.org/location/city/nanjing", "onvif://www.onvif.org/hardware/x")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    reg = ResourceRegistry()
    for i in range(100_000):
        reg.put(Resource(f"{32010001071321000000 + i // 4}:prof_{i % 4}", "MediaProfile",
                         f"cam {i}", GeoLocation(118.7 + i * 1e-6, 32.0 + i * 1e-6),
                         scopes, False), T0)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(reg) == 100_000
    assert used / 100_000 < 600


@pytest.mark.parametrize("token", ["A" * 30 + ":" + "b" * 34, "nocolon", "A:", ":b"])
def test_resource_tokens_are_remote_tokens_rq6_tok1(token: str) -> None:
    """RQ-6, TOK-1, TOK-7, TOK-8: a resource is named by ``Prefix:LocalToken`` of at most 64
    characters; anything else is refused with our error naming the value."""
    with pytest.raises(LocalProtocolError, match="remote token"):
        Resource(token)  # so no registry can hold or emit one either
