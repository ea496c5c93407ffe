"""The event service over SOAP: bytes in, bytes out (events.md sections 1-17, RQ-3)."""

from __future__ import annotations

import pytest
from lxml import etree

from uplink62676.query.pullpoint import PullPointManager, PullPointSettings
from uplink62676.query.resources import GeoLocation, Resource, ResourceRegistry
from uplink62676.query.xstime import parse_datetime
from uplink62676.services.events import EventService, EventServiceSettings, PendingResponse
from uplink62676.soap import SoapResponse

T0 = 1_772_352_930.0
ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
TEV = "http://www.onvif.org/ver10/events/wsdl"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
WSTOP = "http://docs.oasis-open.org/wsn/t-1"
TT = "http://www.onvif.org/ver10/schema"
TNS1 = "http://www.onvif.org/ver10/topics"
WSRF_BF = "http://docs.oasis-open.org/wsrf/bf-2"
NSDECL = (f'xmlns:env="{ENV}" xmlns:wsa="{WSA}" xmlns:tev="{TEV}" xmlns:wsnt="{WSNT}" '
          f'xmlns:tt="{TT}" xmlns:tns1="{TNS1}"')
H2 = {":scheme": "https", ":authority": "cloud.example:443",
      "content-type": "application/soap+xml; charset=utf-8"}
ACT = "http://www.onvif.org/ver10/events/wsdl/"


def envelope(body: str, action: str = "", to: str = "", msg_id: str = "urn:uuid:1") -> bytes:
    head = f"<wsa:Action>{action}</wsa:Action><wsa:MessageID>{msg_id}</wsa:MessageID>"
    if to:
        head += f"<wsa:To>{to}</wsa:To>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {NSDECL}><env:Header>{head}'
            f"</env:Header><env:Body>{body}</env:Body></env:Envelope>").encode()


def service(n: int = 3, **cfg) -> EventService:
    reg = ResourceRegistry(
        Resource(f"32010001071321008015:prof_{i}", "MediaProfile", f"Gate {i}",
                 GeoLocation(118.7781, 32.0436, 12.0),
                 ("onvif://www.onvif.org/location/city/nanjing",), False)
        for i in range(n))
    return EventService(PullPointManager(reg, PullPointSettings(**cfg)))


def call(svc, body: str, path: str = "/onvif/events_service", now: float = T0,
         headers=None, **kw) -> SoapResponse | PendingResponse:
    return svc.handle("POST", path, headers or H2, envelope(body, **kw), now)


def parse(resp: SoapResponse) -> tuple[etree._Element, etree._Element]:
    root = etree.fromstring(resp.body)
    header = root.find(f"{{{ENV}}}Header")
    body = root.find(f"{{{ENV}}}Body")[0]
    return header, body


def action_of(header) -> str:
    return header.find(f"{{{WSA}}}Action").text


def subscribe(svc, filter_xml: str = "", extra: str = "", headers=None, now=T0) -> str:
    flt = f"<tev:Filter>{filter_xml}</tev:Filter>" if filter_xml else ""
    resp = call(svc, f"<tev:CreatePullPointSubscription>{flt}{extra}"
                     "</tev:CreatePullPointSubscription>", headers=headers, now=now)
    assert resp.status == 200, resp.body
    _, body = parse(resp)
    return body.find(f"{{{TEV}}}SubscriptionReference/{{{WSA}}}Address").text


def path_of(address: str) -> str:
    return address.split("cloud.example:443", 1)[-1]


def pull_body(timeout="PT10S", limit=100) -> str:
    return (f"<tev:PullMessages><tev:Timeout>{timeout}</tev:Timeout>"
            f"<tev:MessageLimit>{limit}</tev:MessageLimit></tev:PullMessages>")


def fault_parts(resp: SoapResponse) -> tuple[str, etree._Element | None]:
    header, fault = parse(resp)
    assert fault.tag == f"{{{ENV}}}Fault"
    assert action_of(header) == "http://www.w3.org/2005/08/addressing/soap/fault"  # EVT-58
    code = fault.find(f"{{{ENV}}}Code/{{{ENV}}}Value").text
    detail = fault.find(f"{{{ENV}}}Detail")
    return code, detail[0] if detail is not None and len(detail) else None


# ----------------------------------------------------------------------------- capabilities


def test_get_service_capabilities_evt1_evt4() -> None:
    """EVT-1, EVT-4, RQ-20: capabilities are PRE_AUTH; everything else needs READ_MEDIA;
    WSPullPointSupport is announced (event.wsdl; stock clients look for it)."""
    svc = service()
    resp = svc.handle("POST", "/onvif/events_service", H2,
                      envelope("<tev:GetServiceCapabilities/>"), T0, requester="Anonymous")
    header, body = parse(resp)
    assert action_of(header) == ACT + "EventPortType/GetServiceCapabilitiesResponse"
    caps = body.find(f"{{{TEV}}}Capabilities")
    assert caps.get("MaxPullPoints") == "64"
    assert caps.get("PersistentNotificationStorage") == "true"
    assert caps.get("MaxNotificationProducers") == "0"
    assert caps.get("WSPullPointSupport") == "true"
    assert caps.get("WSSubscriptionPolicySupport") == "false"
    denied = svc.handle("POST", "/onvif/events_service", H2,
                        envelope("<tev:CreatePullPointSubscription/>"), T0, requester="Anonymous")
    assert denied.status == 400 and b"NotAuthorized" in denied.body
    ok = svc.handle("POST", "/onvif/events_service", H2,
                    envelope("<tev:CreatePullPointSubscription/>"), T0, requester="User")
    assert ok.status == 200


def test_ws_addressing_evt2_evt_r1() -> None:
    """EVT-2, EVT-R1: responses carry the output action and RelatesTo the request MessageID."""
    header, _ = parse(call(service(), "<tev:GetEventProperties/>", msg_id="urn:uuid:abc"))
    assert action_of(header) == ACT + "EventPortType/GetEventPropertiesResponse"
    assert header.find(f"{{{WSA}}}RelatesTo").text == "urn:uuid:abc"


def test_get_event_properties_rq3() -> None:
    """RQ-3, RQ-5, EVT-5, EVT-6, EVT-9, EVT-10, EVT-50, EVT-51, EVT-53, EVT-R10, OQ-35: 17.1 layout;
    the resource description in the order tt:ItemListDescription's sequence demands."""
    resp = call(service(), "<tev:GetEventProperties/>")
    assert b'<wstop:TopicSet xmlns="">' in resp.body  # EVT-R10
    _, body = parse(resp)
    tags = [etree.QName(c).localname for c in body]
    assert tags == ["TopicNamespaceLocation", "FixedTopicSet", "TopicSet",
                    "TopicExpressionDialect", "TopicExpressionDialect",
                    "MessageContentFilterDialect", "MessageContentSchemaLocation"]
    assert body[1].tag == f"{{{WSNT}}}FixedTopicSet" and body[1].text == "true"
    dialects = [e.text for e in body.iterfind(f"{{{WSNT}}}TopicExpressionDialect")]
    assert dialects == ["http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete",
                        "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"]
    assert body.find(f"{{{TEV}}}MessageContentFilterDialect").text == \
        "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
    assert body.find(f"{{{TEV}}}MessageContentSchemaLocation").text.endswith("onvif.xsd")
    assert body.find(f"{{{TEV}}}ProducerPropertiesFilterDialect") is None
    topic_set = body.find(f"{{{WSTOP}}}TopicSet")
    resource = topic_set.find(f"{{{TNS1}}}Resource")
    leaves = {c.tag: c for c in resource}
    assert set(leaves) == {"MediaProfile", "VideoSource"}  # children in no namespace
    for leaf in leaves.values():
        assert leaf.get(f"{{{WSTOP}}}topic") == "true"
        md = leaf.find(f"{{{TT}}}MessageDescription")
        assert md.get("IsProperty") == "true"
        assert md.find(f"{{{TT}}}Key") is None
        src = md.find(f"{{{TT}}}Source/{{{TT}}}SimpleItemDescription")
        assert (src.get("Name"), src.get("Type")) == ("Token", "tt:ReferenceToken")
        data = [(etree.QName(d).localname, d.get("Name"), d.get("Type"))
                for d in md.find(f"{{{TT}}}Data")]
        # tt:ItemListDescription is a sequence: SimpleItemDescriptions, then ElementItem ones.
        assert data == [("SimpleItemDescription", "Name", "xs:string"),
                        ("SimpleItemDescription", "Scope", "xs:string"),
                        ("SimpleItemDescription", "Offline", "xs:boolean"),
                        ("ElementItemDescription", "Location", "tt:GeoLocation")]
        names = [d.get("Name") for d in md.iter() if d.get("Name")]
        assert len(names) == len(set(names))
    begin = topic_set.find(f"{{{TNS1}}}EventBuffer/Begin")
    assert begin.find(f"{{{TT}}}MessageDescription").get("IsProperty") == "false"


def test_no_content_dialect_would_be_empty_uri_evt8() -> None:
    """EVT-7, EVT-8: this server supports ItemFilter, so it lists exactly that dialect."""
    _, body = parse(call(service(), "<tev:GetEventProperties/>"))
    values = [e.text for e in body.iterfind(f"{{{TEV}}}MessageContentFilterDialect")]
    assert values == ["http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"]


# ----------------------------------------------------------------------------- subscribe


def test_create_response_addresses_from_request_evt14() -> None:
    """EVT-11, EVT-14, EVT-18, EVT-R1, UPL-R21: address from :scheme/:authority; UTC times."""
    svc = service()
    resp = call(svc, "<tev:CreatePullPointSubscription><tev:InitialTerminationTime>PT2M"
                     "</tev:InitialTerminationTime></tev:CreatePullPointSubscription>")
    header, body = parse(resp)
    assert action_of(header) == ACT + "EventPortType/CreatePullPointSubscriptionResponse"
    addr = body.find(f"{{{TEV}}}SubscriptionReference/{{{WSA}}}Address").text
    assert addr.startswith("https://cloud.example:443/onvif/events/pullpoint/")
    assert body.find(f"{{{WSNT}}}CurrentTime").text == "2026-03-01T08:15:30Z"
    assert body.find(f"{{{WSNT}}}TerminationTime").text == "2026-03-01T08:17:30Z"
    other = subscribe(svc, headers={"Host": "192.168.10.20"})
    assert other.startswith("http://192.168.10.20/onvif/events/pullpoint/") and other != addr


def test_create_nil_termination_and_policy() -> None:
    """EVT-R3, EVT-16: xsi:nil InitialTerminationTime -> default; ChangedOnly policy honoured."""
    svc = service(1)
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    addr = subscribe(svc, extra=f'<tev:InitialTerminationTime {xsi} xsi:nil="true"/>'
                                "<tev:SubscriptionPolicy><tev:ChangedOnly>true</tev:ChangedOnly>"
                                "</tev:SubscriptionPolicy>")
    assert svc.manager.termination_time(addr.rsplit("/", 1)[1]) == T0 + 60
    pending = call(svc, pull_body(), path=path_of(addr))
    assert isinstance(pending, PendingResponse)
    bad = call(svc, "<tev:CreatePullPointSubscription><tev:SubscriptionPolicy>"
                    '<x:Pause xmlns:x="urn:x"/></tev:SubscriptionPolicy>'
                    "</tev:CreatePullPointSubscription>")
    _, detail = fault_parts(bad)
    assert detail.tag == f"{{{WSNT}}}UnrecognizedPolicyRequestFault"


def test_filter_fault_envelope_evt17_evt58_evt59_evt60() -> None:
    """EVT-17, EVT-58, EVT-59, EVT-60, events.md 17.6: InvalidFilterFault as a receiver fault."""
    resp = call(service(), '<tev:CreatePullPointSubscription><tev:Filter>'
                           '<x:ColourFilter xmlns:x="urn:example:filters"/></tev:Filter>'
                           "</tev:CreatePullPointSubscription>")
    assert resp.status == 500
    code, detail = fault_parts(resp)
    assert code.endswith(":Receiver")
    assert detail.tag == f"{{{WSNT}}}InvalidFilterFault"
    assert detail.find(f"{{{WSRF_BF}}}Timestamp").text == "2026-03-01T08:15:30Z"
    uf = detail.find(f"{{{WSNT}}}UnknownFilter").text
    prefix, local = uf.split(":")
    assert local == "ColourFilter" and detail.nsmap[prefix] == "urn:example:filters"


@pytest.mark.parametrize(("itt", "fault"), [
    ("P1Y", "UnacceptableInitialTerminationTimeFault"),
    ("2026-03-01T07:15:30Z", "UnacceptableInitialTerminationTimeFault"),
])
def test_unacceptable_initial_termination_evt61(itt, fault) -> None:
    """EVT-61: MinimumTime/MaximumTime in the fault; retrying with MaximumTime succeeds."""
    svc = service()
    resp = call(svc, "<tev:CreatePullPointSubscription><tev:InitialTerminationTime>"
                     f"{itt}</tev:InitialTerminationTime></tev:CreatePullPointSubscription>")
    _, detail = fault_parts(resp)
    assert detail.tag == f"{{{WSNT}}}{fault}"
    hi = detail.find(f"{{{WSNT}}}MaximumTime").text
    lo = detail.find(f"{{{WSNT}}}MinimumTime").text
    assert lo.endswith("Z") and hi.endswith("Z") and T0 <= parse_datetime(lo) <= parse_datetime(hi)
    ok = call(svc, "<tev:CreatePullPointSubscription><tev:InitialTerminationTime>"
                   f"{hi}</tev:InitialTerminationTime></tev:CreatePullPointSubscription>")
    assert ok.status == 200


def test_max_pull_points_fault() -> None:
    """EVT-18, EVT-R3: beyond MaxPullPoints -> SubscribeCreationFailedFault."""
    svc = service(max_pull_points=1)
    subscribe(svc)
    _, detail = fault_parts(call(svc, "<tev:CreatePullPointSubscription/>"))
    assert detail.tag == f"{{{WSNT}}}SubscribeCreationFailedFault"


# ----------------------------------------------------------------------------- pulling


def test_pull_messages_layout_evt39_evt41_evt44_rq5() -> None:
    """EVT-20, EVT-26, EVT-39..EVT-42, EVT-44, EVT-45, EVT-R9, RQ-5, RQ-6, RQ-R2."""
    svc = service(1)
    addr = subscribe(svc)
    resp = call(svc, pull_body(), path=path_of(addr), msg_id="urn:uuid:pull")
    header, body = parse(resp)
    assert action_of(header) == ACT + "PullPointSubscription/PullMessagesResponse"
    assert header.find(f"{{{WSA}}}RelatesTo").text == "urn:uuid:pull"
    assert body[0].tag == f"{{{TEV}}}CurrentTime" and body[0].text.endswith("Z")
    assert body[1].tag == f"{{{TEV}}}TerminationTime" and body[1].text.endswith("Z")
    (nm,) = body.iterfind(f"{{{WSNT}}}NotificationMessage")
    assert nm.find(f"{{{WSNT}}}SubscriptionReference") is None
    producer = nm.find(f"{{{WSNT}}}ProducerReference/{{{WSA}}}Address")  # EVT-40
    assert producer.text == "https://cloud.example:443/onvif/events_service"
    topic = nm.find(f"{{{WSNT}}}Topic")
    assert topic.get("Dialect") == "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
    prefix, path = topic.text.split(":")
    assert topic.nsmap[prefix] == TNS1 and path == "Resource/MediaProfile"
    (msg,) = nm.find(f"{{{WSNT}}}Message")
    assert msg.tag == f"{{{TT}}}Message"
    assert msg.get("PropertyOperation") == "Initialized" and msg.get("UtcTime").endswith("Z")
    src = msg.find(f"{{{TT}}}Source")
    assert [(i.get("Name"), i.get("Value")) for i in src] == [
        ("Token", "32010001071321008015:prof_0")]
    assert src.find(f"{{{TT}}}ElementItem") is None
    data = msg.find(f"{{{TT}}}Data")
    items = [(etree.QName(i).localname, i.get("Name")) for i in data]
    assert items == [("SimpleItem", "Name"), ("SimpleItem", "Scope"),
                     ("SimpleItem", "Offline"), ("ElementItem", "Location")]
    (geo,) = data[3]
    assert geo.tag == f"{{{TT}}}GeoLocation"
    assert (geo.get("lon"), geo.get("lat"), geo.get("elevation")) == ("118.7781", "32.0436", "12")


@pytest.mark.parametrize("route", ["path", "query", "wsa-to"])
def test_pull_point_routing_evt_r1(route) -> None:
    """EVT-R1: the pull point is found by path, by ?id=, or by wsa:To."""
    svc = service(1)
    addr = subscribe(svc)
    pid = addr.rsplit("/", 1)[1]
    if route == "path":
        resp = call(svc, pull_body(), path=path_of(addr))
    elif route == "query":
        resp = call(svc, pull_body(), path=f"/onvif/events/pullpoint?id={pid}")
    else:
        resp = call(svc, pull_body(), path="/onvif/events_service", to=addr)
    assert resp.status == 200 and b"Initialized" in resp.body


def test_long_poll_through_the_service_rq21() -> None:
    """EVT-24, EVT-25, RQ-21: a pending answer completes on a change or as a heartbeat."""
    svc = service(1)
    path = path_of(subscribe(svc))
    call(svc, pull_body(), path=path)
    pending = call(svc, pull_body("PT20S"), path=path, now=T0 + 1, msg_id="urn:uuid:p2")
    assert isinstance(pending, PendingResponse) and pending.deadline == T0 + 21
    assert svc.next_deadline() == T0 + 21
    ((done, resp),) = svc.set_offline("32010001071321008015:prof_0", True, T0 + 2)
    assert done is pending
    header, body = parse(resp)
    assert header.find(f"{{{WSA}}}RelatesTo").text == "urn:uuid:p2"
    assert body.find(f".//{{{TT}}}Message").get("PropertyOperation") == "Changed"
    pending = call(svc, pull_body("PT5S"), path=path, now=T0 + 3)
    assert svc.handle_timeout(T0 + 7.9) == []
    ((done, resp),) = svc.handle_timeout(T0 + 8)
    _, body = parse(resp)
    assert done is pending and body.find(f"{{{WSNT}}}NotificationMessage") is None
    assert body.find(f"{{{TEV}}}CurrentTime").text == "2026-03-01T08:15:38Z"


def test_second_pull_and_cancel_evt28() -> None:
    """EVT-28: a second PullMessages while one is blocked -> UnableToGetMessagesFault."""
    svc = service(0)
    path = path_of(subscribe(svc))
    pending = call(svc, pull_body(), path=path)
    _, detail = fault_parts(call(svc, pull_body(), path=path))
    assert detail.tag == f"{{{WSNT}}}UnableToGetMessagesFault"
    svc.cancel(pending)
    assert isinstance(call(svc, pull_body(), path=path), PendingResponse)


@pytest.mark.parametrize(("timeout", "expected"), [
    ("-PT5S", "ter:InvalidArgVal"), ("soon", "ter:InvalidArgs"), ("", "ter:InvalidArgs"),
    ("PT10M", "tev:PullMessagesFaultResponse"), ("P1M", "tev:PullMessagesFaultResponse"),
])
def test_pull_timeout_faults_evt_r2_evt29(timeout, expected) -> None:
    """EVT-R2, EVT-29, EVT-R13, OQ-29, events.md 17.5: negative / malformed / too long Timeout."""
    svc = service(0)
    path = path_of(subscribe(svc))
    resp = call(svc, pull_body(timeout), path=path)
    code, detail = fault_parts(resp)
    if expected.startswith("ter:"):
        assert resp.status == 400 and code.endswith(":Sender")
        assert expected.split(":")[1].encode() in resp.body
    else:
        assert resp.status == 500 and code.endswith(":Receiver")
        assert detail.tag == f"{{{TEV}}}PullMessagesFaultResponse"
        assert detail.find(f"{{{TEV}}}MaxTimeout").text == "PT2M"
        assert detail.find(f"{{{TEV}}}MaxMessageLimit").text == "1000"


def test_bad_message_limit_and_missing_elements() -> None:
    """EVT-R2: a MessageLimit that is not an xs:int -> ter:InvalidArgs."""
    svc = service(0)
    path = path_of(subscribe(svc))
    assert b"InvalidArgs" in call(svc, pull_body(limit="many"), path=path).body
    assert b"InvalidArgs" in call(svc, "<tev:PullMessages/>", path=path).body


def test_unknown_pull_point_resource_unknown() -> None:
    """EVT-R8: an unknown pull point -> wsrf-r:ResourceUnknownFault, HTTP 500."""
    resp = call(service(), pull_body(), path="/onvif/events/pullpoint/nope")
    assert resp.status == 500
    _, detail = fault_parts(resp)
    assert detail.tag == "{http://docs.oasis-open.org/wsrf/r-2}ResourceUnknownFault"


# ----------------------------------------------------------------------------- manager ops


def test_renew_unsubscribe_sync_seek_envelopes() -> None:
    """EVT-31, EVT-32, EVT-34, EVT-37, EVT-62, events.md 17.7: the subscription-manager ops."""
    svc = service(1)
    path = path_of(subscribe(svc))
    resp = call(svc, "<wsnt:Renew><wsnt:TerminationTime>PT5M</wsnt:TerminationTime></wsnt:Renew>",
                path=path, now=T0 + 30)
    header, body = parse(resp)
    assert action_of(header) == \
        "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewResponse"
    assert [etree.QName(c).localname for c in body] == ["TerminationTime", "CurrentTime"]
    assert body[0].text == "2026-03-01T08:21:00Z" and body[1].text == "2026-03-01T08:16:00Z"
    call(svc, pull_body(), path=path)
    resp = call(svc, "<tev:SetSynchronizationPoint/>", path=path)
    header, body = parse(resp)
    assert body.tag == f"{{{TEV}}}SetSynchronizationPointResponse"
    assert b"Initialized" in call(svc, pull_body(), path=path).body
    resp = call(svc, "<tev:Seek><tev:UtcTime>2026-03-01T07:00:00Z</tev:UtcTime>"
                     "<tev:Reverse>false</tev:Reverse></tev:Seek>", path=path)
    assert parse(resp)[1].tag == f"{{{TEV}}}SeekResponse"
    assert b"tns1:EventBuffer/Begin" in call(svc, pull_body(), path=path).body
    pending = call(svc, pull_body(), path=path)
    resp = call(svc, "<wsnt:Unsubscribe/>", path=path)
    assert parse(resp)[1].tag == f"{{{WSNT}}}UnsubscribeResponse"
    ((done, fault),) = svc.take_completed()
    assert done is pending and fault.status == 500 and b"ResourceUnknownFault" in fault.body
    assert call(svc, "<wsnt:Unsubscribe/>", path=path).status == 500


def test_renew_fault_and_seek_without_storage() -> None:
    """EVT-R2, EVT-34: bad Renew time -> UnacceptableTerminationTimeFault; no storage -> no Seek."""
    svc = service(1, history=0)
    path = path_of(subscribe(svc))
    _, detail = fault_parts(call(svc, "<wsnt:Renew><wsnt:TerminationTime>-PT1M"
                                      "</wsnt:TerminationTime></wsnt:Renew>", path=path))
    assert detail.tag == f"{{{WSNT}}}UnacceptableTerminationTimeFault"
    resp = call(svc, "<tev:Seek><tev:UtcTime>2026-03-01T07:00:00Z</tev:UtcTime></tev:Seek>",
                path=path)
    assert b"ActionNotSupported" in resp.body


def test_http_level_errors() -> None:
    """EVT-4 (framework): only POSTed SOAP is served; unknown operations are refused."""
    svc = service()
    assert svc.handle("GET", "/onvif/events_service", H2, b"", T0).status == 405
    assert svc.handle("POST", "/onvif/events_service", H2, b"", T0).status == 400
    assert svc.handle("POST", "/onvif/events_service", {"content-type": "text/plain"},
                      envelope("<tev:GetEventProperties/>"), T0).status == 415
    assert b"WellFormed" in svc.handle("POST", "/onvif/events_service", H2, b"<x", T0).body
    assert b"ActionNotSupported" in call(svc, '<x:Foo xmlns:x="urn:x"/>').body
    assert b"ActionNotSupported" in call(svc, "<tev:GetEventProperties/>", path="/other").body


def test_config_validation() -> None:
    """RQ-R7: the haversine metric exists only as an explicit option."""
    from uplink62676.errors import LocalProtocolError

    with pytest.raises(LocalProtocolError, match="flat"):
        EventServiceSettings(location_metric="flat")
    hav = EventService(config=EventServiceSettings(location_metric="haversine"))
    hav.put_resource(Resource("A:1", location=GeoLocation(0.0, 0.0009)), T0)
    flt = ("<tt:LocationFilter><tt:lon>0</tt:lon><tt:lat>0</tt:lat><tt:radius>100</tt:radius>"
           "</tt:LocationFilter>")
    assert isinstance(call(hav, pull_body(), path=path_of(subscribe(hav, flt))), PendingResponse)
    geo = service(0)
    geo.put_resource(Resource("A:1", location=GeoLocation(0.0, 0.0009)), T0)
    assert b"Initialized" in call(geo, pull_body(), path=path_of(subscribe(geo, flt))).body


def test_producer_reference_can_be_turned_off() -> None:
    """EVT-40: ProducerReference is a should; the service can leave it out."""
    svc = EventService(config=EventServiceSettings(producer_reference=False))
    svc.put_resource(Resource("A:1"), T0)
    resp = call(svc, pull_body(), path=path_of(subscribe(svc)))
    assert b"ProducerReference" not in resp.body and b"Initialized" in resp.body


def test_deleted_carries_no_data_evt48() -> None:
    """EVT-48, RQ-10: a Deleted notification has the Source token and no Data."""
    svc = service(1)
    path = path_of(subscribe(svc))
    call(svc, pull_body(), path=path)
    svc.remove_resource("32010001071321008015:prof_0", T0 + 1)
    _, body = parse(call(svc, pull_body(), path=path, now=T0 + 2))
    msg = body.find(f".//{{{TT}}}Message")
    assert msg.get("PropertyOperation") == "Deleted"
    assert msg.find(f"{{{TT}}}Data") is None
    assert msg.find(f"{{{TT}}}Source/{{{TT}}}SimpleItem").get("Value") == \
        "32010001071321008015:prof_0"


def test_bytes_headers_from_h2() -> None:
    """EVT-R1, UPL-R21: h2-style bytes header pairs build the pull-point address too."""
    svc = service(0)
    resp = svc.handle("POST", "/onvif/events_service",
                      [(b":scheme", b"https"), (b":authority", b"dev.uplink"),
                       (b"content-type", b"application/soap+xml")],
                      envelope("<tev:CreatePullPointSubscription/>"), T0)
    assert b"https://dev.uplink/onvif/events/pullpoint/" in resp.body
