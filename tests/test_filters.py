"""Subscription filters: parse once, evaluate many (RQ-12..RQ-18, EVT-54..EVT-57).

Covers the location, prefix, scope and select filters, topic expressions,
the ItemFilter content dialect, their AND combination and every fault.
"""

from __future__ import annotations

import pytest
from geographiclib.geodesic import Geodesic
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from uplink62676._xml import parse_xml
from uplink62676.errors import NotificationFault, UplinkError
from uplink62676.namespaces import TNS1, TT, WSNT
from uplink62676.query.filters import (
    CONCRETE,
    CONCRETE_SET,
    ITEM_FILTER,
    MATCH_RFC2396,
    MATCH_STRCMP0,
    ResourceFilter,
    compile_content,
    compile_filter,
    scope_matches,
)
from uplink62676.query.resources import GeoLocation, Resource

NS = (
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
    'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:tns1="http://www.onvif.org/ver10/topics"'
)
G = Geodesic.WGS84


def flt(inner: str, **kw) -> ResourceFilter:
    elem = parse_xml(f"<tev:Filter {NS}>{inner}</tev:Filter>".encode())
    return compile_filter(elem, now=1_772_352_930.0, **kw)


def fault_of(inner: str) -> NotificationFault:
    with pytest.raises(NotificationFault) as info:
        flt(inner)
    assert info.value.code == "env:Receiver"
    assert info.value.http_status == 500
    return info.value


def unknown_filters(fault: NotificationFault) -> list[str]:
    detail = etree.fromstring(fault.detail)
    return [e.text for e in detail.iter(f"{{{WSNT}}}UnknownFilter")]


def res(token="A:1", kind="MediaProfile", lat=None, lon=None, scopes=(), name="n",
        offline=False) -> Resource:
    loc = GeoLocation(lon, lat) if lat is not None or lon is not None else None
    return Resource(token, kind, name, loc, scopes, offline)


def loc_filter(lon, lat, radius, unknown=None, prefix="tt", height=None) -> str:
    p = f"{prefix}:" if prefix else ""
    extra = f"<{p}includeUnknown>{unknown}</{p}includeUnknown>" if unknown is not None else ""
    h = f"<{p}height>{height}</{p}height>" if height is not None else ""
    return (f"<{p}LocationFilter><{p}lon>{lon}</{p}lon><{p}lat>{lat}</{p}lat>{h}"
            f"<{p}radius>{radius}</{p}radius>{extra}</{p}LocationFilter>")


# ----------------------------------------------------------------------------- location


RQ_R8 = [
    ((0, 0), (0, 0.00090), 100, True, False),
    ((0, 0), (0, 0.00091), 100, False, False),
    ((0, 60), (0, 60.00089), 100, True, True),
    ((0, 60), (0, 60.00090), 100, False, False),
    ((179.99955, 0), (-179.99956, 0), 100, True, True),
    ((179.99955, 0), (-179.99955, 0), 100, False, False),
    ((179.9995, 0), (-179.9995, 0), 100, False, False),
    ((179.9995, 0), (-179.9995, 0), 111.5, True, True),
    ((0, 89.99955), (180, 89.99956), 100, True, True),
    ((0, 89.99955), (180, 89.99955), 100, False, False),
]


@pytest.mark.parametrize(("centre", "point", "radius", "inside", "hav"), RQ_R8)
def test_location_filter_rq_r8(centre, point, radius, inside, hav) -> None:
    """RQ-R7, RQ-R8: the ten vectors decide as the table says, in both metrics."""
    f = flt(loc_filter(centre[0], centre[1], radius))
    r = res(lon=point[0], lat=point[1])
    assert f.matches(r) is inside
    assert flt(loc_filter(centre[0], centre[1], radius), metric="haversine").matches(r) is hav


def test_location_unknown_rq13() -> None:
    """RQ-13, RQ-R2, RQ-R8 vector 11: unknown location matches only with includeUnknown=true."""
    no_loc = res()
    half = Resource("A:2", location=GeoLocation(lon=118.0))
    assert not flt(loc_filter(0, 0, 100)).matches(no_loc)
    assert not flt(loc_filter(0, 0, 100, "false")).matches(half)
    assert flt(loc_filter(0, 0, 100, "true")).matches(no_loc)
    assert flt(loc_filter(0, 0, 100, "1")).matches(half)


@pytest.mark.parametrize("lat", [-70.0, -20.0, 0.0, 32.0436, 51.5, 75.0])
@pytest.mark.parametrize("az", [0.0, 45.0, 90.0, 200.0])
def test_location_boundary_oracle(lat, az) -> None:
    """RQ-R7: oracle points 3 mm inside / outside a 100 m circle; boundary inclusive."""
    f = flt(loc_filter(118.7781, lat, 100))
    for s, inside in ((99.997, True), (100.003, False)):
        p = G.Direct(lat, 118.7781, az, s)
        assert f.matches(res(lat=p["lat2"], lon=p["lon2"])) is inside


def test_location_antimeridian_and_pole_oracle() -> None:
    """RQ-R7: circles straddling ±180° and covering the pole; box must not reject insiders."""
    f = flt(loc_filter(179.9999, 10.0, 500))
    p = G.Direct(10.0, 179.9999, 90.0, 499.99)
    assert p["lon2"] < 0
    assert f.matches(res(lat=p["lat2"], lon=p["lon2"]))
    q = G.Direct(10.0, 179.9999, 90.0, 500.01)
    assert not f.matches(res(lat=q["lat2"], lon=q["lon2"]))
    polar = flt(loc_filter(0, 89.999, 300))
    over = G.Direct(89.999, 0.0, 0.0, 299.99)  # goes over the pole to lon 180
    assert polar.matches(res(lat=over["lat2"], lon=over["lon2"]))
    far = G.Direct(89.999, 0.0, 0.0, 300.01)
    assert not polar.matches(res(lat=far["lat2"], lon=far["lon2"]))


def test_location_radius_is_float_and_inclusive() -> None:
    """RQ-R7: radius is an xs:float converted exactly; distance == radius matches."""
    f = flt(loc_filter(0, 0, 0))
    assert f.matches(res(lat=0.0, lon=0.0))
    assert not f.matches(res(lat=0.0000001, lon=0.0))
    assert flt(loc_filter(0, 0, "INF")).matches(res(lat=-45.0, lon=179.0))
    assert f.locations[0].radius == 0.0
    assert flt(loc_filter(0, 0, "100.1")).locations[0].radius == pytest.approx(100.1, abs=1e-5)
    assert flt(loc_filter(0, 0, "100.1")).locations[0].radius != 100.1


def test_location_height_ignored_by_default_and_3d_option() -> None:
    """RQ-R7: height ignored by default; the 3-D option uses sqrt(d^2 + dh^2)."""
    r = Resource("A:1", location=GeoLocation(0.0, 0.0, 90.0))
    assert flt(loc_filter(0, 0, 50, height=0)).matches(r)
    assert not flt(loc_filter(0, 0, 50, height=0), use_height=True).matches(r)
    assert flt(loc_filter(0, 0, 50, height=60), use_height=True).matches(r)


@pytest.mark.parametrize("bad", [
    loc_filter(181, 0, 100), loc_filter(0, -90.5, 100), loc_filter(0, 0, -1),
    loc_filter(0, 0, "NaN"), loc_filter("x", 0, 100), loc_filter(0, 0, 100, "yes"),
    loc_filter("INF", 0, 100), "<tt:LocationFilter><tt:lon>0</tt:lon><tt:lat>0</tt:lat>"
    "</tt:LocationFilter>", "<tt:LocationFilter><tt:lon>0</tt:lon><tt:lon>0</tt:lon>"
    "<tt:lat>0</tt:lat><tt:radius>1</tt:radius></tt:LocationFilter>",
    "<tt:LocationFilter><tt:lon>0</tt:lon><tt:lat>0</tt:lat><tt:radius>1</tt:radius>"
    "<tt:colour>red</tt:colour></tt:LocationFilter>",
])
def test_location_faults(bad) -> None:
    """RQ-R5, RQ-R7: bad values -> InvalidFilterFault naming tt:LocationFilter as received."""
    fault = fault_of(bad)
    assert fault.fault == "wsnt:InvalidFilterFault"
    assert unknown_filters(fault) == ["tt:LocationFilter"]


@pytest.mark.parametrize("prefix", ["tt", "tev", ""])
def test_lenient_namespaces(prefix) -> None:
    """RQ-R5, OQ-20: filters in tt, tev or no namespace, children qualified or not."""
    f = flt(loc_filter(0, 0, 100, prefix=prefix))
    assert f.matches(res(lat=0.0, lon=0.0))
    unqualified_children = f"<{prefix + ':' if prefix else ''}PrefixFilter><Prefix>A</Prefix>" \
        f"</{prefix + ':' if prefix else ''}PrefixFilter>"
    assert flt(unqualified_children).matches(res("A:1"))


def test_unknown_filter_element_fault() -> None:
    """RQ-R5, EVT-R3, events.md 17.6: an unknown element is listed by its QName as received."""
    fault = flt_fault = fault_of('<x:ColourFilter xmlns:x="urn:example:filters"/>')
    assert flt_fault.fault == "wsnt:InvalidFilterFault"
    detail = etree.fromstring(fault.detail)
    (uf,) = detail.iter(f"{{{WSNT}}}UnknownFilter")
    prefix, local = uf.text.split(":")
    assert local == "ColourFilter" and uf.nsmap[prefix] == "urn:example:filters"
    assert detail.find("{http://docs.oasis-open.org/wsrf/bf-2}Timestamp").text.endswith("Z")
    fault = fault_of('<ColourFilter xmlns="urn:x"/><tt:Other/>')
    names = unknown_filters(fault)
    assert len(names) == 2 and names[1] == "tt:Other"


def test_producer_properties_not_supported() -> None:
    """EVT-10: no producer-properties dialect is offered; the filter is refused."""
    fault = fault_of('<wsnt:ProducerProperties Dialect="urn:x">x</wsnt:ProducerProperties>')
    assert fault.fault == "wsnt:InvalidProducerPropertiesExpressionFault"


# ----------------------------------------------------------------------------- prefix


def test_prefix_filter_rq14_rq_r9() -> None:
    """RQ-14, RQ-R9, OQ-22: token starts with Prefix + ':'; nested prefixes select a sub-tree."""
    f = flt("<tt:PrefixFilter><tt:Prefix>A</tt:Prefix></tt:PrefixFilter>")
    assert f.matches(res("A:1")) and f.matches(res("A:prof_2"))
    assert not f.matches(res("AB:1")) and not f.matches(res("a:1"))
    nested = flt("<tt:PrefixFilter><tt:Prefix>X</tt:Prefix></tt:PrefixFilter>")
    assert nested.matches(res("X:A:1"))
    assert flt("<tt:PrefixFilter><tt:Prefix>X:A</tt:Prefix></tt:PrefixFilter>").matches(
        res("X:A:1"))


@pytest.mark.parametrize("bad", [
    "<tt:PrefixFilter><tt:Prefix> </tt:Prefix></tt:PrefixFilter>",
    "<tt:PrefixFilter/>",
    "<tt:PrefixFilter><tt:Prefix>A</tt:Prefix><tt:Prefix>B</tt:Prefix></tt:PrefixFilter>",
])
def test_prefix_faults(bad) -> None:
    """RQ-R9: an empty or missing Prefix -> InvalidFilterFault naming the PrefixFilter."""
    assert unknown_filters(fault_of(bad)) == ["tt:PrefixFilter"]


def test_recordings_presented_edge_style_rq23() -> None:
    """RQ-23: recordings under the originating camera's prefix are selected by its prefix."""
    f = flt("<tt:PrefixFilter><tt:Prefix>32010001071321008015</tt:Prefix></tt:PrefixFilter>"
            "<wsnt:TopicExpression Dialect=\"" + CONCRETE + "\">tns1:Resource/Recording"
            "</wsnt:TopicExpression>")
    assert f.matches(res("32010001071321008015:rec_1", kind="Recording"))
    assert not f.matches(res("nvr7:rec_1", kind="Recording"))


# ----------------------------------------------------------------------------- scope

DEVICE = (
    "onvif://www.onvif.org/Profile/Streaming",
    "onvif://www.onvif.org/hardware/D1-566",
    "onvif://www.onvif.org/location/country/china",
    "onvif://www.onvif.org/location/city/bejing",
    "onvif://www.onvif.org/location/building/headquarter",
    "onvif://www.onvif.org/location/floor/R5",
    "onvif://www.onvif.org/name/ARV-453",
)


@pytest.mark.parametrize(("s", "t", "rule", "expected"), [
    ("onvif://www.onvif.org", "onvif://www.onvif.org/name/ARV-453", None, True),
    ("ONVIF://WWW.ONVIF.ORG/location", "onvif://www.onvif.org/location/city/x", None, True),
    ("onvif://www.onvif.org/Location", "onvif://www.onvif.org/location/city/x", None, False),
    ("onvif://www.onvif.org/hardware/D1", "onvif://www.onvif.org/hardware/D1-566", None, False),
    ("onvif://www.onvif.org/a/../b", "onvif://www.onvif.org/a/../b", None, False),
    ("onvif://www.onvif.org/a/./b", "onvif://www.onvif.org/a/b", None, False),
    ("onvif://www.onvif.org/name/ARV-453", "onvif://www.onvif.org/name/ARV-453",
     MATCH_STRCMP0, True),
    ("onvif://www.onvif.org/name/ARV-453", "onvif://www.onvif.org/name/arv-453",
     MATCH_STRCMP0, False),
    ("onvif://www.onvif.org/location/city/", "onvif://www.onvif.org/location/city/bejing",
     None, False),
    ("onvif://www.onvif.org/location/city", "onvif://www.onvif.org/location/city", None, True),
    ("onvif://www.onvif.org/location/city", "onvif://www.onvif.org/location/city/bejing",
     MATCH_RFC2396, True),
    ("onvif://www.onvif.org/location/%63ity", "onvif://www.onvif.org/location/city/x",
     None, True),
    ("onvif://www.onvif.org/n/%7e", "onvif://www.onvif.org/n/~", None, True),
    ("onvif://www.onvif.org/n/%2f", "onvif://www.onvif.org/n/%2F", None, True),
    ("onvif://www.onvif.org/location?x=1#f", "onvif://www.onvif.org/location/city", None, True),
    ("onvif://www.onvif.org/location", "onvif://other.org/location/city", None, False),
    ("http://www.onvif.org/location", "onvif://www.onvif.org/location/city", None, False),
    ("not a uri", "not a uri", None, False),
    ("onvif://www.onvif.org/%zz", "onvif://www.onvif.org/%zz", None, False),
])
def test_scope_rule_vectors(s, t, rule, expected) -> None:
    """RQ-15, RQ-16, RQ-R10, RQ-R11, OQ-23: the section 7.1 rules and vectors."""
    if rule is None:
        assert scope_matches(s, t) is expected
        rule_attr = ""
    else:
        assert scope_matches(s, t, rule) is expected
        rule_attr = f' Match="{rule}"'
    f = flt(f"<tt:ScopeFilter><tt:Scope{rule_attr}>{s.replace('&', '&amp;')}</tt:Scope>"
            "</tt:ScopeFilter>")
    assert f.matches(res(scopes=(t,))) is expected


def test_scope_combination_all_of_any_of() -> None:
    """RQ-15, RQ-R11: every filter scope must match some resource scope (Probe semantics)."""
    dev = res(scopes=DEVICE)
    for s in ("onvif://www.onvif.org", "onvif://www.onvif.org/location/country/china"):
        assert flt(f"<tt:ScopeFilter><tt:Scope>{s}</tt:Scope></tt:ScopeFilter>").matches(dev)
    assert not flt("<tt:ScopeFilter><tt:Scope>onvif://www.onvif.org/hardware/D1</tt:Scope>"
                   "</tt:ScopeFilter>").matches(dev)
    both = ("<tt:Scope>onvif://www.onvif.org/location/city/bejing</tt:Scope>"
            "<tt:Scope>onvif://www.onvif.org/hardware/D1-566</tt:Scope>")
    assert flt(f"<tt:ScopeFilter>{both}</tt:ScopeFilter>").matches(dev)
    three = both + "<tt:Scope>onvif://www.onvif.org/name/X</tt:Scope>"
    assert not flt(f"<tt:ScopeFilter>{three}</tt:ScopeFilter>").matches(dev)
    assert not flt("<tt:ScopeFilter><tt:Scope>onvif://www.onvif.org</tt:Scope>"
                   "</tt:ScopeFilter>").matches(res(scopes=()))


def test_scope_faults() -> None:
    """RQ-R10: an unsupported Match rule or an empty ScopeFilter -> InvalidFilterFault."""
    bad_rule = ('<tt:ScopeFilter><tt:Scope Match="urn:x">onvif://www.onvif.org</tt:Scope>'
                "</tt:ScopeFilter>")
    assert unknown_filters(fault_of(bad_rule)) == ["tt:ScopeFilter"]
    assert unknown_filters(fault_of("<ScopeFilter/>")) == ["ScopeFilter"]


# ----------------------------------------------------------------------------- select


def test_select_filter_rq17_rq_r12() -> None:
    """RQ-17, RQ-R12, OQ-24: /Name keeps Name, /Scope/Location keeps location scopes only."""
    r = Resource("A:1", "VideoSource", "gate", GeoLocation(1.0, 2.0),
                 ("onvif://www.onvif.org/location/city/nanjing",
                  "onvif://www.onvif.org/hardware/IPC",
                  "onvif://www.onvif.org/Location/building/b1",
                  "http://example.com/location/x"), True)
    f = flt("<SelectFilter><Path>/Name</Path><Path>/Scope/Location</Path></SelectFilter>")
    v = f.view(r)
    assert v.token == "A:1" and v.kind == "VideoSource" and v.name == "gate"
    assert v.location is None and v.offline is None
    assert v.scopes == ("onvif://www.onvif.org/location/city/nanjing",
                        "onvif://www.onvif.org/Location/building/b1")
    assert flt("<tt:SelectFilter><tt:Path>/Scope</tt:Path></tt:SelectFilter>").view(r).scopes \
        == r.scopes
    assert flt("<tt:SelectFilter><tt:Path>/Location</tt:Path><tt:Path>/Offline</tt:Path>"
               "</tt:SelectFilter>").view(r) == Resource("A:1", "VideoSource", None,
                                                         r.location, (), True)
    nothing = flt("<tt:SelectFilter><tt:Path>/Colour</tt:Path><tt:Path>/Name/x</tt:Path>"
                  "</tt:SelectFilter>").view(r)
    assert nothing == Resource("A:1", "VideoSource")
    assert flt("").view(r) is r


def test_select_filters_merge() -> None:
    """RQ-R6: several SelectFilter elements are merged (union of paths)."""
    r = Resource("A:1", name="x", offline=False)
    f = flt("<tt:SelectFilter><tt:Path>/Name</tt:Path></tt:SelectFilter>"
            "<tt:SelectFilter><tt:Path>/Offline</tt:Path></tt:SelectFilter>")
    assert f.view(r) == r


@pytest.mark.parametrize("path", ["Name", "/", "//Name", "/Name[1]", "/1a", "/Na me", ""])
def test_select_faults(path) -> None:
    """RQ-R12: syntax outside /Step(/Step)* -> InvalidFilterFault naming the SelectFilter."""
    assert unknown_filters(fault_of(
        f"<tt:SelectFilter><tt:Path>{path}</tt:Path></tt:SelectFilter>")) == ["tt:SelectFilter"]


# ----------------------------------------------------------------------------- topics


def topic(text: str, dialect: str = CONCRETE_SET, extra_ns: str = "") -> str:
    return f'<wsnt:TopicExpression Dialect="{dialect}"{extra_ns}>{text}</wsnt:TopicExpression>'


@pytest.mark.parametrize(("expr", "dialect", "kinds"), [
    ("tns1:Resource/MediaProfile", CONCRETE, {"MediaProfile"}),
    ("  tns1:Resource/MediaProfile \n", CONCRETE, {"MediaProfile"}),
    ("tns1:Resource//.", CONCRETE_SET, {"MediaProfile", "VideoSource", "Recording"}),
    ("tns1:Resource/MediaProfile|tns1:Resource/VideoSource", CONCRETE_SET,
     {"MediaProfile", "VideoSource"}),
    ("tns1:Resource//. | tns1:EventBuffer/Begin", CONCRETE_SET,
     {"MediaProfile", "VideoSource", "Recording"}),
    ("t:Resource/VideoSource", CONCRETE, {"VideoSource"}),
])
def test_topic_expressions(expr, dialect, kinds) -> None:
    """EVT-54, EVT-55, EVT-R11, RQ-R1: Concrete and ConcreteSet selection of resource kinds."""
    f = flt(topic(expr, dialect, ' xmlns:t="http://www.onvif.org/ver10/topics"'))
    for kind in ("MediaProfile", "VideoSource", "Recording"):
        assert f.matches(res(kind=kind)) is (kind in kinds)
    t = f.topics[0]
    assert t.matches(TNS1, ("EventBuffer", "Begin")) is ("EventBuffer" in expr)


@pytest.mark.parametrize(("expr", "dialect", "fault"), [
    ("tns1:Resource/MediaProfile", "urn:x", "wsnt:TopicExpressionDialectUnknownFault"),
    ("tns1:Resource//.", CONCRETE, "wsnt:InvalidTopicExpressionFault"),
    ("tns1:Resource/A|tns1:Resource/B", CONCRETE, "wsnt:InvalidTopicExpressionFault"),
    ("zz:Resource/MediaProfile", CONCRETE, "wsnt:InvalidTopicExpressionFault"),
    ("tns1:Resource/Media Profile", CONCRETE, "wsnt:InvalidTopicExpressionFault"),
    ("tns1:Resource/", CONCRETE, "wsnt:InvalidTopicExpressionFault"),
    ("tns1:Resource/*", CONCRETE_SET, "wsnt:InvalidTopicExpressionFault"),
    ("tns1:Resource", CONCRETE, "wsnt:TopicNotSupportedFault"),
    ("tns1:Resource/Colour", CONCRETE, "wsnt:TopicNotSupportedFault"),
    ("tt:Resource/MediaProfile", CONCRETE, "wsnt:TopicNotSupportedFault"),
])
def test_topic_faults(expr, dialect, fault) -> None:
    """EVT-R11: dialect, syntax/prefix and not-supported faults."""
    assert fault_of(topic(expr, dialect)).fault == fault


def test_topic_prefix_resolved_by_namespace_not_text() -> None:
    """EVT-R11: the prefix is resolved through in-scope declarations, never compared as text."""
    other = ' xmlns:tns1="urn:not-onvif"'
    assert fault_of(topic("tns1:Resource/MediaProfile", CONCRETE, other)).fault \
        == "wsnt:TopicNotSupportedFault"


def test_known_topics_parameter() -> None:
    """RQ-3, EVT-R11: a topic outside the server's topic set is not supported."""
    known = frozenset({(TNS1, ("Resource", "MediaProfile"))})
    with pytest.raises(NotificationFault):
        flt(topic("tns1:Resource/VideoSource", CONCRETE), known_topics=known)
    assert flt(topic("tns1:Resource//."), known_topics=known).matches(res())


# ----------------------------------------------------------------------------- content


def content(expr: str, dialect: str = ITEM_FILTER) -> str:
    esc = expr.replace("&", "&amp;").replace("<", "&lt;")
    return f'<wsnt:MessageContent Dialect="{dialect}">{esc}</wsnt:MessageContent>'


@pytest.mark.parametrize(("expr", "expected"), [
    ('boolean(//tt:SimpleItem[@Name="Token" and @Value="A:1"])', True),
    ('boolean(//tt:SimpleItem[@Name="Token" and @Value="A:2"])', False),
    ("boolean(//tt:SimpleItem[@Name='Offline' and @Value='true'])", True),
    ('boolean(//tt:SimpleItem[@Name="Offline" and @Value="true"]) and '
     'not(boolean(//tt:ElementItem[@Name="Location"]))', False),
    ('boolean(//tt:SimpleItem[@Name="Token" and (@Value="A:vs1" or @Value="A:1")])', True),
    ('boolean(//tt:ElementItem[@Name="Location"])', True),
    ('boolean(//tt:ElementItem[@Value="x"])', False),
    ('boolean(//tt:ElementItem[not(@Value="x")])', True),
    ('boolean(//tt:SimpleItem[@Name="Scope" and @Value="onvif://www.onvif.org/a"])', True),
    ('boolean(//tt:SimpleItem[@Name="X"]) or boolean(//tt:SimpleItem[@Name="Name"])', True),
    ('boolean(//tt:SimpleItem[@Name="X"]) or boolean(//tt:SimpleItem[@Name="Y"]) and '
     'boolean(//tt:SimpleItem[@Name="Name"])', False),
    ('(boolean(//tt:SimpleItem[@Name="X"]) or boolean(//tt:SimpleItem[@Name="Name"])) and '
     'boolean(//tt:SimpleItem[@Name="Token"])', True),
    ('not ( boolean ( // tt : SimpleItem [ @Name = "Name" ] ) )', False),
    ('boolean(//SimpleItem[@Name="Name"])', True),
])
def test_item_filter(expr, expected) -> None:
    """EVT-56, EVT-57, EVT-R12, RQ-18: the ItemFilter subset over a resource event's items."""
    r = Resource("A:1", name="n", location=GeoLocation(1.0, 2.0),
                 scopes=("onvif://www.onvif.org/a",), offline=True)
    assert flt(content(expr)).matches(r) is expected


@pytest.mark.parametrize("expr", [
    "", "true()", 'boolean(//tt:SimpleItem[@Name="a")', 'boolean(//tt:Foo[@Name="a"])',
    'boolean(//xx:SimpleItem[@Name="a"])', 'boolean(//tt:SimpleItem[@Type="a"])',
    'boolean(//tt:SimpleItem[@Name=a])', 'boolean(/tt:SimpleItem[@Name="a"])',
    'boolean(//tt:SimpleItem[@Name="a"]) and', 'boolean(//tt:SimpleItem[@Name="a"]) xor x',
    "(" * 100 + 'boolean(//tt:SimpleItem[@Name="a"])' + ")" * 100, '"unterminated',
])
def test_item_filter_faults(expr) -> None:
    """EVT-R12: anything outside the grammar -> InvalidMessageContentExpressionFault."""
    assert fault_of(content(expr)).fault == "wsnt:InvalidMessageContentExpressionFault"


def test_item_filter_prefix_must_denote_tt() -> None:
    """EVT-57: the item prefix must denote the ONVIF schema namespace (resolved, not compared)."""
    other = ('<wsnt:MessageContent Dialect="' + ITEM_FILTER + '" xmlns:x="' + TT + '">'
             'boolean(//x:SimpleItem[@Name="Name"])</wsnt:MessageContent>')
    assert flt(other).matches(res())
    bad = ('<wsnt:MessageContent Dialect="' + ITEM_FILTER + '" xmlns:tt="urn:x">'
           'boolean(//tt:SimpleItem[@Name="Name"])</wsnt:MessageContent>')
    assert fault_of(bad).fault == "wsnt:InvalidMessageContentExpressionFault"


def test_item_filter_unknown_dialect() -> None:
    """EVT-R12: an unknown content dialect -> InvalidFilterFault."""
    fault = fault_of(content("x", "urn:xpath"))
    assert fault.fault == "wsnt:InvalidFilterFault"
    assert unknown_filters(fault) == ["wsnt:MessageContent"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='()[]/@=:"\' andorbooleanSimpleItemElementItemNameValuett', max_size=80))
def test_item_filter_parser_total(text) -> None:
    """EVT-R12: every input either compiles or raises our fault (never another exception)."""
    elem = etree.Element(f"{{{WSNT}}}MessageContent", Dialect=ITEM_FILTER, nsmap={"tt": TT})
    elem.text = text
    try:
        c = compile_content(elem, 0.0)
    except UplinkError:
        return
    assert c.evaluate([("Name", "x")], ["Location"]) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Name", "Value"]),
                          st.text(alphabet="abc:/ -", max_size=6)), min_size=1, max_size=4),
       st.sampled_from([" and ", " or "]))
def test_item_filter_round_trip(comps, joiner) -> None:
    """EVT-56: a generated expression evaluates as the equivalent Python predicate."""
    attr = joiner.join(f'@{a}="{v}"' for a, v in comps)
    elem = etree.Element(f"{{{WSNT}}}MessageContent", Dialect=ITEM_FILTER, nsmap={"tt": TT})
    elem.text = f"boolean(//tt:SimpleItem[{attr}])"
    c = compile_content(elem, 0.0)
    items = [("abc", "a:b"), ("Name", "x")]

    def one(n, v):
        tests = [(n if a == "Name" else v) == val for a, val in comps]
        return all(tests) if joiner == " and " else any(tests)

    assert c.evaluate(items) is any(one(n, v) for n, v in items)


# ----------------------------------------------------------------------------- combination


def test_components_and_rq_r6() -> None:
    """RQ-12, RQ-R6, EVT-R4: all four filters plus topic and content, combined with AND."""
    f = flt(topic("tns1:Resource/MediaProfile", CONCRETE)
            + loc_filter(118.7781, 32.0436, 100)
            + "<tt:PrefixFilter><tt:Prefix>32010001071321008015</tt:Prefix></tt:PrefixFilter>"
            + "<tt:ScopeFilter><tt:Scope>onvif://www.onvif.org/location</tt:Scope>"
            "</tt:ScopeFilter>"
            + content('boolean(//tt:SimpleItem[@Name="Offline" and @Value="false"])')
            + "<tt:SelectFilter><tt:Path>/Name</tt:Path><tt:Path>/Location</tt:Path>"
            "</tt:SelectFilter>")
    good = Resource("32010001071321008015:prof_1", "MediaProfile", "Gate 8",
                    GeoLocation(118.7781, 32.0436), ("onvif://www.onvif.org/location/city/nj",),
                    False)
    assert f.matches(good)
    import attrs

    for change in ({"kind": "VideoSource"}, {"token": "32010001071321008016:prof_1"},
                   {"location": GeoLocation(118.79, 32.0436)}, {"scopes": ()},
                   {"offline": True}):
        assert not f.matches(attrs.evolve(good, **change)), change
    assert f.view(good) == Resource(good.token, good.kind, "Gate 8", good.location)
    assert f.select_all([good, attrs.evolve(good, offline=True)]) == [good]


def test_no_filter_selects_everything_evt12() -> None:
    """EVT-12: without a Filter everything is delivered."""
    f = compile_filter(None)
    assert f.matches(res(kind="Recording")) and f.view(res()) == res()
    assert flt("").matches(res())


def test_filter_is_parsed_once() -> None:
    """RQ-R6 (design): a compiled filter is a reusable value; evaluation does not re-parse."""
    f = flt(loc_filter(0, 0, 100) + "<tt:ScopeFilter><tt:Scope>onvif://a/b</tt:Scope>"
            "</tt:ScopeFilter>")
    rs = [res(f"A:{i}", lat=0.0, lon=i * 1e-4, scopes=("onvif://a/b/c",)) for i in range(20)]
    assert [r.token for r in f.select_all(rs)] == [f"A:{i}" for i in range(9)]
    assert isinstance(f.locations[0].lat, float)


@settings(max_examples=300, deadline=None)
@given(st.floats(-89.99, 89.99), st.floats(-180, 180), st.floats(1, 50_000),
       st.floats(0, 360), st.floats(0, 0.999))
def test_haversine_option_box_is_conservative(lat, lon, radius, bearing, frac) -> None:
    """RQ-R7: with the haversine option, points inside the sphere circle are never boxed out."""
    import math

    from uplink62676.query.filters import LocationFilter

    f = LocationFilter(lon, lat, radius, metric="haversine")
    d = radius * frac / 6_371_008.8
    p1, b = math.radians(lat), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = math.radians(lon) + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                                        math.cos(d) - math.sin(p1) * math.sin(p2))
    lon2 = (math.degrees(l2) + 180) % 360 - 180
    assert f.matches_location(GeoLocation(lon2, math.degrees(p2)))


@settings(max_examples=500, deadline=None)
@given(st.floats(-89.5, 89.5), st.floats(-180, 180), st.floats(1, 30_000),
       st.floats(0, 360), st.one_of(st.floats(0, 2), st.floats(0.995, 1.02)))
def test_location_filter_agrees_with_oracle(lat, lon, radius, azimuth, frac) -> None:
    """RQ-R7: box, sure-accept shortcut and exact distance together decide like GeographicLib."""
    from uplink62676.query.filters import LocationFilter

    p = G.Direct(lat, lon, azimuth, radius * frac)
    ref = G.Inverse(lat, lon, p["lat2"], p["lon2"])["s12"]
    if abs(ref - radius) < 1e-3:
        return
    got = LocationFilter(lon, lat, radius).matches_location(GeoLocation(p["lon2"], p["lat2"]))
    assert got is (ref <= radius)
