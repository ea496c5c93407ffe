"""Client side of resource queries and the section 11 examples end to end (RQ-2, RQ-21, RQ-22,
RQ-R13, EVT-33, EVT-49)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from geographiclib.geodesic import Geodesic
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from uplink62676.app.simulate import SimulatedVss
from uplink62676.errors import LocalProtocolError, RemoteProtocolError, SoapFault
from uplink62676.query.client import (
    ClientState,
    Query,
    QueryClient,
    ResourceMirror,
    create_subscription_request,
    parse_pull_response,
    parse_subscription_response,
    pull_messages_request,
    renew_request,
    set_synchronization_point_request,
    unsubscribe_request,
)
from uplink62676.query.filters import MATCH_STRCMP0, compile_filter
from uplink62676.query.messages import NSMAP, append_notification, parse_notification
from uplink62676.query.resources import (
    GeoLocation,
    Notification,
    PropertyOperation,
    Resource,
)
from uplink62676.services.events import EventService, PendingResponse

T0 = 1_772_352_930.0
G = Geodesic.WGS84
INCIDENT = (32.0436, 118.7781)  # lat, lon
ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"


def post(svc, req, now):
    """What an adapter does: POST the body to the request's URL path."""
    headers = {":scheme": "https", ":authority": "vss.example",
               "content-type": req.request.content_type}
    return svc.handle("POST", urlsplit(req.url).path + (
        "?" + urlsplit(req.url).query if urlsplit(req.url).query else ""),
        headers, req.request.body, now)


def run(client: QueryClient, svc, now: float):
    """One request/response round; returns mirror changes (or the pending poll)."""
    req = client.next_request(now)
    resp = post(svc, req, now)
    if isinstance(resp, PendingResponse):
        return resp
    return client.receive(resp.status, resp.body, now)


# ----------------------------------------------------------------------------- requests


def test_query_filter_round_trip_rq_r5() -> None:
    """RQ-R5, RQ-R6: the filter a Query emits compiles to the same selection on the server."""
    q = Query(near=INCIDENT, radius=100, prefix="32010001071321008015",
              scopes=["onvif://www.onvif.org/location",
                      ("onvif://www.onvif.org/name/x", MATCH_STRCMP0)],
              select=["/Name", "/Location"], topics=["MediaProfile"],
              content='boolean(//tt:SimpleItem[@Name="Offline" and @Value="false"])')
    elem = q.filter_element()
    assert all(c.prefix in ("tt", "wsnt") for c in elem)
    f = compile_filter(elem)
    good = Resource("32010001071321008015:prof_1", "MediaProfile", "x",
                    GeoLocation(118.7781, 32.0436),
                    ("onvif://www.onvif.org/location/city/a", "onvif://www.onvif.org/name/x"),
                    False)
    assert f.matches(good)
    assert f.view(good) == Resource(good.token, good.kind, "x", good.location)
    assert f.locations[0].radius == 100 and f.prefixes == ("32010001071321008015",)
    assert Query().filter_element() is None
    with pytest.raises(LocalProtocolError):
        Query(near=INCIDENT)


@settings(max_examples=100, deadline=None)
@given(st.floats(-90, 90), st.floats(-180, 180), st.floats(0, 1e6, allow_subnormal=False),
       st.booleans())
def test_query_location_round_trip(lat, lon, radius, unknown) -> None:
    """RQ-R7: lon/lat survive the XML round trip exactly; radius as an xs:float."""
    f = compile_filter(Query(near=(lat, lon), radius=radius,
                             include_unknown=unknown).filter_element())
    loc = f.locations[0]
    assert (loc.lat, loc.lon, loc.include_unknown) == (lat, lon, unknown)
    assert loc.radius == pytest.approx(radius, rel=1e-7, abs=1e-30)


def test_topics_dialect_choice() -> None:
    """EVT-54, EVT-55: one kind -> Concrete; several or //. -> ConcreteSet."""
    one = Query(topics=["VideoSource"]).filter_element()[0]
    assert one.get("Dialect").endswith("/Concrete") and one.text == "tns1:Resource/VideoSource"
    two = Query(topics=["VideoSource", "tns1:Resource/MediaProfile"]).filter_element()[0]
    assert two.get("Dialect").endswith("/ConcreteSet")
    assert two.text == "tns1:Resource/VideoSource|tns1:Resource/MediaProfile"


def test_request_builders_evt_r1() -> None:
    """EVT-R1, EVT-33, EVT-49: actions in Content-Type and wsa headers; wsa:To = pull point."""
    addr = "https://vss/onvif/events/pullpoint/7"
    for req, action in (
        (create_subscription_request(Query(), message_id="urn:uuid:1"),
         "EventPortType/CreatePullPointSubscriptionRequest"),
        (pull_messages_request(addr, timeout=20, limit=50), "PullMessagesRequest"),
        (renew_request(addr, 300), "SubscriptionManager/RenewRequest"),
        (unsubscribe_request(addr), "SubscriptionManager/UnsubscribeRequest"),
        (set_synchronization_point_request(addr), "SetSynchronizationPointRequest"),
    ):
        assert req.action.endswith(action) and req.action in req.content_type
        root = etree.fromstring(req.body)
        assert root.find(f"{{{ENV}}}Header/{{{WSA}}}Action").text == req.action
    to = etree.fromstring(pull_messages_request(addr).body).find(f"{{{ENV}}}Header/{{{WSA}}}To")
    assert to.text == addr
    assert b"<tev:Timeout>PT20S</tev:Timeout>" in pull_messages_request(addr, timeout=20).body
    assert b"PT5M" in renew_request(addr, 300).body


def test_parse_responses_and_faults() -> None:
    """EVT-14, EVT-26, EVT-58: responses parse; faults come back as SoapFault values."""
    svc = EventService()
    resp = svc.handle("POST", "/onvif/events_service", {"host": "h"},
                      create_subscription_request(Query()).body, T0)
    ref = parse_subscription_response(resp.body, resp.status)
    assert ref.address.startswith("http://h/") and ref.termination_time == T0 + 60
    bad = svc.handle("POST", "/onvif/events/pullpoint/zz", {"host": "h"},
                     pull_messages_request("http://h/x").body, T0)
    with pytest.raises(SoapFault) as info:
        parse_pull_response(bad.body, bad.status)
    assert b"ResourceUnknownFault" in info.value.detail
    with pytest.raises(RemoteProtocolError):
        parse_pull_response(resp.body, 200)  # not a PullMessagesResponse
    with pytest.raises(RemoteProtocolError):
        parse_pull_response(b"garbage", 200)


def test_notification_round_trip_rq19() -> None:
    """RQ-19, RQ-R2, EVT-41, EVT-48, EVT-R9: notification XML is transport independent."""
    from lxml import etree

    parent = etree.Element("{urn:x}batch", nsmap=NSMAP)
    full = Resource("P:vs_1", "VideoSource", "Line 1 <gate> & \"8\"",
                    GeoLocation(118.7781, 32.0436, 12.5),
                    ("onvif://www.onvif.org/location/city/nanjing", "onvif://x/y"), False)
    notes = [
        Notification("Resource/VideoSource", T0 + 0.2, PropertyOperation.INITIALIZED,
                     full.token, full),
        Notification("Resource/VideoSource", T0, PropertyOperation.CHANGED, "P:vs_1",
                     Resource("P:vs_1", "VideoSource", location=GeoLocation(lon=1.0))),
        Notification("Resource/VideoSource", T0, PropertyOperation.DELETED, "P:vs_1"),
        Notification("EventBuffer/Begin", T0),
    ]
    for n in notes:
        append_notification(parent, n)
    back = [parse_notification(nm) for nm in etree.fromstring(etree.tostring(parent))]
    assert back == notes


# ----------------------------------------------------------------------------- mirror


def test_mirror_applies_operations_oq30() -> None:
    """RQ-2, EVT-47, OQ-30: Initialized/Changed replace, Deleted removes (Init->Del ok)."""
    m = ResourceMirror()
    a, a2 = Resource("A:1", name="a"), Resource("A:1", name="b")
    ch = m.apply([Notification("Resource/MediaProfile", T0, PropertyOperation.INITIALIZED,
                               "A:1", a)])
    assert ch[0].old is None and ch[0].new == a and m.get("A:1") == a
    m.apply([Notification("Resource/MediaProfile", T0, PropertyOperation.CHANGED, "A:1", a2)])
    assert m.get("A:1") == a2
    ch = m.apply([Notification("Resource/MediaProfile", T0, PropertyOperation.DELETED, "A:1")])
    assert ch[0].new is None and "A:1" not in m and len(m) == 0
    assert m.apply([Notification("Resource/MediaProfile", T0, PropertyOperation.DELETED,
                                 "B:1")]) == []


# ----------------------------------------------------------------------------- e2e


def _incident_vss() -> EventService:
    """A VSS with cameras at, near and far from the incident, profiles and sources."""
    svc = EventService()
    spots = {"near": 40.0, "edge_in": 99.9, "edge_out": 100.1, "far": 800.0}
    for i, (label, dist) in enumerate(spots.items()):
        p = G.Direct(INCIDENT[0], INCIDENT[1], 30.0 * i, dist)
        loc = GeoLocation(p["lon2"], p["lat2"], 10.0)
        prefix = f"3201000107132100801{i}"
        scopes = ("onvif://www.onvif.org/location/city/nanjing",)
        svc.put_resource(Resource(f"{prefix}:vs_1", "VideoSource", f"{label} source", loc,
                                  scopes, False), T0)
        for prof in ("prof_1", "prof_2"):
            svc.put_resource(Resource(f"{prefix}:{prof}", "MediaProfile", f"{label} {prof}",
                                      loc, scopes, False), T0)
    svc.put_resource(Resource("nowhere:prof_1", "MediaProfile", "no location"), T0)
    return svc


def test_live_video_example_rq22() -> None:
    """RQ-22, RQ-2, RQ-9..RQ-11, RQ-21, EVT-46, resource-query.md 11.1: profiles within 100 m."""
    svc = _incident_vss()
    client = QueryClient("https://vss.example/onvif/events_service",
                         Query(near=INCIDENT, radius=100, topics=["MediaProfile"]),
                         timeout=10, message_limit=100)
    assert run(client, svc, T0) == [] and client.state is ClientState.PULLING  # step 2-3
    changes = run(client, svc, T0 + 1)  # step 4: Initialized for every profile in the area
    assert sorted(c.token for c in changes) == [
        "32010001071321008010:prof_1", "32010001071321008010:prof_2",
        "32010001071321008011:prof_1", "32010001071321008011:prof_2"]
    pending = run(client, svc, T0 + 2)  # repeat until an answer comes back empty at timeout
    assert isinstance(pending, PendingResponse)
    ((done, resp),) = svc.handle_timeout(T0 + 12)
    assert done is pending and client.receive(resp.status, resp.body, T0 + 12) == []
    # step 8: cameras change while the client keeps pulling
    pending = run(client, svc, T0 + 13)
    (_, resp), = svc.set_offline("32010001071321008010:prof_1", True, T0 + 14)
    (change,) = client.receive(resp.status, resp.body, T0 + 14)
    assert change.new.offline is True and change.old.offline is False
    pending = run(client, svc, T0 + 15)
    moved = G.Direct(INCIDENT[0], INCIDENT[1], 0.0, 50.0)
    (_, resp), = svc.update_resource("32010001071321008012:prof_1", T0 + 16,
                                     location=GeoLocation(moved["lon2"], moved["lat2"]))
    (entered,) = client.receive(resp.status, resp.body, T0 + 16)
    assert entered.old is None and entered.token == "32010001071321008012:prof_1"
    run(client, svc, T0 + 17)
    (_, resp), = svc.remove_resource("32010001071321008011:prof_2", T0 + 18)
    (gone,) = client.receive(resp.status, resp.body, T0 + 18)
    assert gone.new is None
    # the mirror now equals the server's filtered state (RQ-R3)
    f = compile_filter(client.query.filter_element())
    expected = {r.token: r for r in svc.registry if f.matches(r)}
    assert client.mirror.resources == expected


def test_forensic_example() -> None:
    """RQ-2, RQ-18, resource-query.md 11.2: video sources near the incident, then one by token."""
    svc = _incident_vss()
    client = QueryClient("https://vss.example/onvif/events_service",
                         Query(near=INCIDENT, radius=100, topics=["VideoSource"]))
    run(client, svc, T0)
    changes = run(client, svc, T0 + 1)
    tokens = sorted(c.token for c in changes)
    assert tokens == ["32010001071321008010:vs_1", "32010001071321008011:vs_1"]
    assert all(c.new.kind == "VideoSource" for c in changes)
    # RQ-18: subscribe to one resource by its source token with a content filter
    one = QueryClient("https://vss.example/onvif/events_service", Query(
        topics=["tns1:Resource//."],
        content=f'boolean(//tt:SimpleItem[@Name="Token" and @Value="{tokens[0]}"])'))
    run(one, svc, T0 + 2)
    (only,) = run(one, svc, T0 + 3)
    assert only.token == tokens[0]


def test_lost_pull_point_resynchronizes_rq_r13() -> None:
    """RQ-R13: ResourceUnknownFault or a late answer -> new subscription, mirror replaced."""
    svc = _incident_vss()
    client = QueryClient("https://vss.example/onvif/events_service",
                         Query(near=INCIDENT, radius=100, topics=["MediaProfile"]), timeout=5)
    run(client, svc, T0)
    run(client, svc, T0 + 1)
    assert len(client.mirror) == 4
    old_address = client.address
    svc.manager.unsubscribe(old_address.rsplit("/", 1)[1], T0 + 2)  # server lost it
    svc.remove_resource("32010001071321008010:prof_1", T0 + 2)
    assert run(client, svc, T0 + 3) == []
    assert client.state is ClientState.IDLE and client.reconnects == 1
    run(client, svc, T0 + 4)  # re-subscribe: mirror replaced, not merged
    assert len(client.mirror) == 0 and client.address != old_address
    run(client, svc, T0 + 5)
    assert len(client.mirror) == 3 and "32010001071321008010:prof_1" not in client.mirror
    # a pull whose answer never arrives: dead after Timeout + 10 s
    req = client.next_request(T0 + 6)
    assert req is not None and client.next_request(T0 + 6) is None
    assert client.next_deadline() == T0 + 6 + 5 + 10
    assert not client.handle_timeout(T0 + 20.9)
    assert client.handle_timeout(T0 + 21) and client.reconnects == 2
    assert client.next_request(T0 + 22).url.endswith("/onvif/events_service")


def test_client_against_simulated_vss() -> None:
    """RQ-2, RQ-11, RQ-21: a mirror of a simulated city stays exact while cameras toggle."""
    vss = SimulatedVss(40, seed=7, now=T0, change_rate=1.0)
    client = QueryClient("https://vss.example/onvif/events_service",
                         Query(near=(32.0436, 118.7781), radius=3000, topics=["MediaProfile"]),
                         timeout=5, message_limit=1000)
    now = T0
    for _ in range(60):
        req = client.next_request(now)
        if req is not None:
            resp = post(vss, req, now)
            if not isinstance(resp, PendingResponse):
                client.receive(resp.status, resp.body, now)
                continue
        now = min(vss.next_deadline(), now + 5)
        for _pending, resp in vss.handle_timeout(now):
            client.receive(resp.status, resp.body, now)
    vss.stop_changes()
    while True:  # drain: pull until an answer comes back empty at its timeout
        req = client.next_request(now)
        if req is not None:
            resp = post(vss, req, now)
            if not isinstance(resp, PendingResponse):
                client.receive(resp.status, resp.body, now)
                continue
        now = vss.next_deadline()
        ((_pending, resp),) = vss.handle_timeout(now)
        if not client.receive(resp.status, resp.body, now):
            break
    f = compile_filter(client.query.filter_element())
    assert client.mirror.resources == {r.token: r for r in vss.service.registry if f.matches(r)}
    assert any(r.offline for r in client.mirror.resources.values())


def test_reader_tolerates_order_and_vendor_items_evt43_evt52() -> None:
    """EVT-43, EVT-52, RQ-R2, OQ-25, OQ-28: any item order, vendor items ignored, all Scopes."""
    xml = """<wsnt:NotificationMessage xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"
        xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:t="http://www.onvif.org/ver10/topics">
      <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
        >t:Resource/VideoSource</wsnt:Topic>
      <wsnt:Message><tt:Message UtcTime="2026-03-01T08:15:31.2Z" PropertyOperation="Changed">
        <tt:Source><tt:SimpleItem Name="Token" Value="P:vs_1"/></tt:Source>
        <tt:Data>
          <tt:ElementItem Name="Location"><tt:GeoLocation lat="32.5" lon="118"/></tt:ElementItem>
          <tt:SimpleItem Name="Scope" Value="onvif://a/1"/>
          <tt:SimpleItem Name="vnd:Colour" Value="red"/>
          <tt:SimpleItem Name="Name" Value="x"/>
          <tt:SimpleItem Name="Scope" Value="onvif://a/2"/>
        </tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"""
    n = parse_notification(etree.fromstring(xml.encode()))
    assert n.utc_time == T0 + 1.2 and n.operation is PropertyOperation.CHANGED
    assert n.data == Resource("P:vs_1", "VideoSource", "x", GeoLocation(118.0, 32.5),
                              ("onvif://a/1", "onvif://a/2"))
    with pytest.raises(RemoteProtocolError):
        parse_notification(etree.fromstring(xml.replace("t:Resource", "x:Resource").encode()))
    with pytest.raises(RemoteProtocolError):
        parse_notification(etree.fromstring(xml.replace('"Changed"', '"Moved"').encode()))


_names = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=20)
_coords = st.one_of(st.none(), st.floats(-180, 180))


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[abc_09]{1,10}:[abc_09]{1,20}", fullmatch=True),
       st.sampled_from(["MediaProfile", "Track"]),
       st.one_of(st.none(), _names), st.one_of(st.none(), st.builds(GeoLocation, _coords,
                                                                   _coords, _coords)),
       st.lists(_names, max_size=3), st.one_of(st.none(), st.booleans()),
       st.sampled_from(list(PropertyOperation)), st.floats(0, 4e9))
def test_notification_xml_round_trip(token, kind, name, loc, scopes, offline, op, t) -> None:
    """RQ-5..RQ-8, RQ-R2, EVT-41, EVT-48: any resource notification survives write + read."""
    r = Resource(token, kind, name, loc, tuple(scopes), offline)
    note = Notification(r.topic, round(t, 3), op, token,
                        None if op is PropertyOperation.DELETED else r)
    parent = etree.Element("{urn:x}batch", nsmap=NSMAP)
    append_notification(parent, note, "http://vss/onvif/events_service")
    back = parse_notification(etree.fromstring(etree.tostring(parent))[0])
    assert back.operation is op and back.token == token and back.data == note.data
    assert back.utc_time == pytest.approx(note.utc_time, abs=0.0005)


def test_client_values_are_checked() -> None:
    """RQ-R13: bad client parameters and unrepresentable values raise our error."""
    with pytest.raises(LocalProtocolError, match="x00"):
        Query(prefix="A\x00").filter_element()
    with pytest.raises(LocalProtocolError):
        pull_messages_request("http://x/\x01")
    with pytest.raises(LocalProtocolError, match="timeout"):
        QueryClient("http://x/", Query(), timeout=60, termination=60)
    with pytest.raises(LocalProtocolError, match="message_limit"):
        QueryClient("http://x/", Query(), message_limit=0)
    client = QueryClient("http://x/", Query())
    with pytest.raises(LocalProtocolError, match="idle"):
        client.receive(200, b"", T0)
    client.next_request(T0)
    client.connection_lost()
    assert client.state is ClientState.IDLE and client.next_deadline() is None
