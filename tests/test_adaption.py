"""Tests of uplink62676.adaption: token adaption of SOAP envelopes for a VSS.

Spec: tokens.md section 4 (TOK-17 .. TOK-26, TOK-R5), OQ-32; TOK-11, TOK-12, TOK-13.

Every envelope test checks the exact tokens rewritten, then undoes the expected
rewrite in the output and compares the canonical XML (C14N) with the input:
nothing else may change.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from uplink62676 import (
    AdaptionResult,
    ConfigurationError,
    SoapFault,
    TokenAdapter,
    TokenMapper,
    XmlRejectedError,
    adapt_request,
    adapt_response,
)
from uplink62676.adaption import RULES, OperationRule, Site, UriContext, compile_rules

ENV = "http://www.w3.org/2003/05/soap-envelope"
NS = {
    "s": ENV,
    "tt": "http://www.onvif.org/ver10/schema",
    "tr2": "http://www.onvif.org/ver20/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tse": "http://www.onvif.org/ver10/search/wsdl",
    "trp": "http://www.onvif.org/ver10/replay/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "x": "urn:example:vendor",
}
XMLNS = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items() if p != "s")


def envelope(body: str, *, declaration: bool = True) -> bytes:
    """A SOAP 1.2 envelope with a header, vendor namespace and the given body content."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if declaration else ""
    return (
        f'{head}<s:Envelope xmlns:s="{ENV}" {XMLNS}>'
        '<s:Header><wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing" '
        's:mustUnderstand="1">urn:action</wsa:Action></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


Expected = list[tuple[str, str, str]]  # (XPath selecting ONE attribute or text node, before, after)


def check(original: bytes, result: AdaptionResult, expected: Expected) -> None:
    """Exact rewrites happened where expected, and nothing else changed (C14N)."""
    assert Counter((r.before, r.after) for r in result.rewrites) == Counter(
        (b, a) for _, b, a in expected
    )
    out = etree.fromstring(result.envelope)
    for path, before, after in expected:
        found = out.xpath(path, namespaces=NS)
        assert isinstance(found, list) and len(found) == 1, path
        node = found[0]
        assert node == after, (path, node, after)
        parent = node.getparent()
        if node.is_attribute:
            parent.set(node.attrname, before)
        else:
            parent.text = before
    assert etree.tostring(out, method="c14n") == etree.tostring(
        etree.fromstring(original), method="c14n"
    )


@pytest.fixture
def mapper() -> TokenMapper:
    m = TokenMapper()
    m.add_device("cam-a", "A")
    m.add_device("cam-b", "B")
    m.add_device("nvr", "32010001071321008015")
    for token in ("prof_1", "prof_2", "preset_1", "vs_1"):
        m.to_remote("cam-a", token)
    m.to_remote("cam-b", "prof_1")
    for token in ("rec_1", "rec_2", "vs_1"):
        m.to_remote("nvr", token)
    return m


@pytest.fixture
def adapter(mapper: TokenMapper) -> TokenAdapter:
    return TokenAdapter(mapper)


# -- Media2 (TOK-17 .. TOK-19) ------------------------------------------------------


def test_tok17_get_profiles_request(adapter: TokenAdapter) -> None:
    """TOK-17: the profile token of GetProfiles goes remote -> local; the device is found."""
    original = envelope("<tr2:GetProfiles><tr2:Token>A:prof_1</tr2:Token>"
                        "<tr2:Type>VideoEncoder</tr2:Type></tr2:GetProfiles>")
    result = adapter.adapt_request(original)
    assert result.handled and result.device == "cam-a"
    assert result.operation == f"{{{NS['tr2']}}}GetProfiles"
    check(original, result, [("//tr2:Token/text()", "A:prof_1", "prof_1")])


def test_tok17_get_profiles_request_without_token(adapter: TokenAdapter) -> None:
    """TOK-17: no token -> nothing to map, no device: the same bytes object comes back."""
    original = envelope("<tr2:GetProfiles><tr2:Type>All</tr2:Type></tr2:GetProfiles>")
    result = adapter.adapt_request(original)
    assert result.handled and result.device is None and result.envelope is original
    assert not result.changed


def test_tok17_get_profiles_response(adapter: TokenAdapter) -> None:
    """TOK-17: profile and configuration tokens (and the resources they name) go local ->
    remote; unknown elements, vendor attributes and other values stay as they were."""
    profile = (
        '<tr2:Profiles token="{p}" fixed="true" x:vendor="keep"><tr2:Name>{p}</tr2:Name>'
        "<tr2:Configurations>"
        '<tr2:VideoSource token="vsc"><tt:Name>vsc</tt:Name><tt:UseCount>2</tt:UseCount>'
        "<tt:SourceToken>vs_1</tt:SourceToken></tr2:VideoSource>"
        '<tr2:VideoEncoder token="vec_{p}" GovLength="30"><tt:Name>e</tt:Name>'
        "<tt:Encoding>H264</tt:Encoding></tr2:VideoEncoder>"
        '<tr2:PTZ token="ptz"><tt:NodeToken>node</tt:NodeToken></tr2:PTZ>'
        '<tr2:AudioOutput token="ao"><tt:OutputToken>out</tt:OutputToken></tr2:AudioOutput>'
        '<x:Thermal token="vendor-token"><x:SourceToken>vs_1</x:SourceToken></x:Thermal>'
        "</tr2:Configurations></tr2:Profiles>"
    )
    original = envelope(
        "<tr2:GetProfilesResponse>" + profile.format(p="prof_1") + profile.format(p="prof_2")
        + "</tr2:GetProfilesResponse>"
    )
    result = adapter.adapt_response(original, device="cam-a")
    assert result.handled and result.device == "cam-a"
    expected: Expected = []
    for i, p in ((1, "prof_1"), (2, "prof_2")):
        base = f"(//tr2:Profiles)[{i}]"
        cfg = f"{base}/tr2:Configurations"
        expected += [
            (f"{base}/@token", p, f"A:{p}"),
            (f"{cfg}/tr2:VideoSource/@token", "vsc", "A:vsc"),
            (f"{cfg}/tr2:VideoSource/tt:SourceToken/text()", "vs_1", "A:vs_1"),
            (f"{cfg}/tr2:VideoEncoder/@token", f"vec_{p}", f"A:vec_{p}"),
            (f"{cfg}/tr2:PTZ/@token", "ptz", "A:ptz"),
            (f"{cfg}/tr2:PTZ/tt:NodeToken/text()", "node", "A:node"),
            (f"{cfg}/tr2:AudioOutput/@token", "ao", "A:ao"),
            (f"{cfg}/tr2:AudioOutput/tt:OutputToken/text()", "out", "A:out"),
        ]
    check(original, result, expected)
    assert result.envelope.startswith(b"<?xml")


@pytest.mark.parametrize(("op", "spec"), [("GetStreamUri", "TOK-18"),
                                          ("GetSnapshotUri", "TOK-19")])
def test_tok18_tok19_uri_requests(adapter: TokenAdapter, op: str, spec: str) -> None:
    """TOK-18, TOK-19: the profile token of GetStreamUri / GetSnapshotUri goes to local."""
    protocol = "<tr2:Protocol>RtspOverHttp</tr2:Protocol>" if op == "GetStreamUri" else ""
    original = envelope(f"<tr2:{op}>{protocol}<tr2:ProfileToken>B:prof_1</tr2:ProfileToken>"
                        f"</tr2:{op}>")
    result = adapter.adapt_request(original)
    assert result.device == "cam-b", spec
    check(original, result, [("//tr2:ProfileToken/text()", "B:prof_1", "prof_1")])


@pytest.mark.parametrize(("op", "prefix"), [("tr2:GetStreamUri", "tr2"),
                                            ("tr2:GetSnapshotUri", "tr2"),
                                            ("trp:GetReplayUri", "trp")])
def test_tok18_tok19_tok25_uris_go_through_the_streaming_proxy(
    mapper: TokenMapper, op: str, prefix: str
) -> None:
    """TOK-18, TOK-19, TOK-25: returned URIs are rewritten by the proxy hook, which learns
    the device, the operation and the request's tokens."""
    seen: list[UriContext] = []

    def proxy(ctx: UriContext) -> str:
        seen.append(ctx)
        return "rtsp://vss.example/proxy/" + ctx.device

    adapter = TokenAdapter(mapper, uri_rewriter=proxy)
    name = op.split(":")[1]
    token_elem = "RecordingToken" if prefix == "trp" else "ProfileToken"
    remote = "32010001071321008015:rec_1" if prefix == "trp" else "A:prof_1"
    request = adapter.adapt_request(envelope(
        f"<{op}><{prefix}:{token_elem}>{remote}</{prefix}:{token_elem}></{op}>"))
    device = request.device
    assert device is not None
    original = envelope(f"<{op}Response><{prefix}:Uri>rtsp://10.0.0.5/{name}</{prefix}:Uri>"
                        f"</{op}Response>")
    result = adapter.adapt_response(original, device=device, request=request)
    assert [(r.before, r.after) for r in result.uri_rewrites] == [
        (f"rtsp://10.0.0.5/{name}", f"rtsp://vss.example/proxy/{device}")
    ]
    assert seen == [UriContext(device, op, f"rtsp://10.0.0.5/{name}",
                               ((remote, remote.rpartition(":")[2]),))]
    out = etree.fromstring(result.envelope)
    uri = out.xpath(f"//{prefix}:Uri", namespaces=NS)[0]
    uri.text = f"rtsp://10.0.0.5/{name}"
    assert etree.tostring(out, method="c14n") == etree.tostring(
        etree.fromstring(original), method="c14n"
    )


def test_tok18_without_proxy_uris_pass_unchanged(adapter: TokenAdapter) -> None:
    """TOK-18: with no proxy hook configured the response is passed on byte for byte."""
    original = envelope("<tr2:GetStreamUriResponse><tr2:Uri>rtsp://cam/1</tr2:Uri>"
                        "</tr2:GetStreamUriResponse>")
    result = adapter.adapt_response(original, device="cam-a")
    assert result.handled and result.envelope is original and not result.changed


# -- PTZ (TOK-20) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "extra"),
    [
        ("AbsoluteMove", "<tptz:Position><tt:PanTilt x='0.5' y='0'/></tptz:Position>"),
        ("RelativeMove", "<tptz:Translation><tt:Zoom x='0.1'/></tptz:Translation>"),
        ("ContinuousMove", "<tptz:Velocity><tt:PanTilt x='1' y='0'/></tptz:Velocity>"
                           "<tptz:Timeout>PT1S</tptz:Timeout>"),
        ("Stop", "<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>false</tptz:Zoom>"),
        ("GetPresets", ""),
        ("SendAuxiliaryCommand", "<tptz:AuxiliaryData>tt:Wiper|On</tptz:AuxiliaryData>"),
    ],
)
def test_tok20_ptz_requests(adapter: TokenAdapter, op: str, extra: str) -> None:
    """TOK-20: the profile token of every listed PTZ operation goes remote -> local."""
    original = envelope(f"<tptz:{op}><tptz:ProfileToken>A:prof_2</tptz:ProfileToken>{extra}"
                        f"</tptz:{op}>")
    result = adapter.adapt_request(original)
    assert result.handled and result.device == "cam-a"
    check(original, result, [("//tptz:ProfileToken/text()", "A:prof_2", "prof_2")])


def test_tok20_tokr5_goto_preset_maps_profile_and_preset(adapter: TokenAdapter) -> None:
    """TOK-20, TOK-R5: GotoPreset's profile and (re-keyed) preset token go to local."""
    original = envelope("<tptz:GotoPreset><tptz:ProfileToken>A:prof_1</tptz:ProfileToken>"
                        "<tptz:PresetToken>A:preset_1</tptz:PresetToken>"
                        "<tptz:Speed><tt:Zoom x='1'/></tptz:Speed></tptz:GotoPreset>")
    result = adapter.adapt_request(original)
    check(original, result, [("//tptz:ProfileToken/text()", "A:prof_1", "prof_1"),
                             ("//tptz:PresetToken/text()", "A:preset_1", "preset_1")])


def test_tokr5_get_presets_response_rekeys_presets(adapter: TokenAdapter) -> None:
    """TOK-R5, OQ-32: preset tokens returned by GetPresets are re-keyed like the rest."""
    original = envelope("<tptz:GetPresetsResponse>"
                        '<tptz:Preset token="1"><tt:Name>Gate</tt:Name></tptz:Preset>'
                        '<tptz:Preset token="2"><tt:Name>Yard</tt:Name></tptz:Preset>'
                        "</tptz:GetPresetsResponse>")
    result = adapter.adapt_response(original, device="cam-a")
    check(original, result, [("(//tptz:Preset)[1]/@token", "1", "A:1"),
                             ("(//tptz:Preset)[2]/@token", "2", "A:2")])


def test_tokr5_set_and_remove_preset(adapter: TokenAdapter) -> None:
    """TOK-R5: SetPreset / RemovePreset map the preset token both ways."""
    original = envelope("<tptz:SetPresetResponse><tptz:PresetToken>7</tptz:PresetToken>"
                        "</tptz:SetPresetResponse>")
    result = adapter.adapt_response(original, device="cam-a")
    check(original, result, [("//tptz:PresetToken/text()", "7", "A:7")])
    request = envelope("<tptz:RemovePreset><tptz:ProfileToken>A:prof_1</tptz:ProfileToken>"
                       "<tptz:PresetToken>A:7</tptz:PresetToken></tptz:RemovePreset>")
    check(request, adapter.adapt_request(request),
          [("//tptz:ProfileToken/text()", "A:prof_1", "prof_1"),
           ("//tptz:PresetToken/text()", "A:7", "7")])


def test_tokr5_presets_left_alone_when_not_rekeyed(mapper: TokenMapper) -> None:
    """TOK-R5: with rekey_presets=False preset tokens pass through unchanged."""
    adapter = TokenAdapter(mapper, rekey_presets=False)
    original = envelope("<tptz:GotoPreset><tptz:ProfileToken>A:prof_1</tptz:ProfileToken>"
                        "<tptz:PresetToken>3</tptz:PresetToken></tptz:GotoPreset>")
    check(original, adapter.adapt_request(original),
          [("//tptz:ProfileToken/text()", "A:prof_1", "prof_1")])
    response = envelope('<tptz:GetPresetsResponse><tptz:Preset token="3"/>'
                        "</tptz:GetPresetsResponse>")
    assert adapter.adapt_response(response, device="cam-a").envelope is response


# -- Recording search and replay (TOK-21 .. TOK-25, OQ-32) --------------------------

RECORDING_INFO = (
    "<tt:RecordingToken>{rec}</tt:RecordingToken>"
    "<tt:Source><tt:SourceId>urn:src</tt:SourceId><tt:Name>Gate</tt:Name>"
    "<tt:Location>north</tt:Location><tt:Description>d</tt:Description>"
    "<tt:Address>http://cam</tt:Address></tt:Source>"
    "<tt:EarliestRecording>2024-01-01T00:00:00Z</tt:EarliestRecording>"
    "<tt:Content>c</tt:Content>"
    "<tt:Track><tt:TrackToken>VIDEO001</tt:TrackToken><tt:TrackType>Video</tt:TrackType>"
    "<tt:Description>v</tt:Description></tt:Track>"
    "<tt:Track><tt:TrackToken>AUDIO001</tt:TrackToken><tt:TrackType>Audio</tt:TrackType>"
    "<tt:Description>a</tt:Description></tt:Track>"
    "<tt:RecordingStatus>Recording</tt:RecordingStatus>"
)
P = "32010001071321008015"


def test_tok21_get_recording_information(adapter: TokenAdapter) -> None:
    """TOK-21: recording token in; recording and track tokens out."""
    request = envelope(f"<tse:GetRecordingInformation><tse:RecordingToken>{P}:rec_1"
                       "</tse:RecordingToken></tse:GetRecordingInformation>")
    result = adapter.adapt_request(request)
    assert result.device == "nvr"
    check(request, result, [("//tse:RecordingToken/text()", f"{P}:rec_1", "rec_1")])
    response = envelope("<tse:GetRecordingInformationResponse><tse:RecordingInformation>"
                        + RECORDING_INFO.format(rec="rec_1")
                        + "</tse:RecordingInformation></tse:GetRecordingInformationResponse>")
    check(response, adapter.adapt_response(response, device="nvr"), [
        ("//tt:RecordingToken/text()", "rec_1", f"{P}:rec_1"),
        ("(//tt:TrackToken)[1]/text()", "VIDEO001", f"{P}:VIDEO001"),
        ("(//tt:TrackToken)[2]/text()", "AUDIO001", f"{P}:AUDIO001"),
    ])


def find_request(op: str) -> bytes:
    return envelope(
        f"<tse:{op}>"
        + ("<tse:StartPoint>2024-01-01T00:00:00Z</tse:StartPoint>" if op == "FindEvents" else "")
        + "<tse:Scope>"
        f'<tt:IncludedSources Type="http://www.onvif.org/ver10/schema/Receiver">'
        f"<tt:Token>{P}:vs_1</tt:Token></tt:IncludedSources>"
        f"<tt:IncludedRecordings>{P}:rec_1</tt:IncludedRecordings>"
        f"<tt:IncludedRecordings>{P}:rec_2</tt:IncludedRecordings>"
        "<tt:RecordingInformationFilter>boolean(//Track[TrackType = &quot;Video&quot;])"
        "</tt:RecordingInformationFilter></tse:Scope>"
        + ("<tse:SearchFilter/><tse:IncludeStartState>false</tse:IncludeStartState>"
           if op == "FindEvents" else "")
        + f"<tse:MaxMatches>10</tse:MaxMatches><tse:KeepAliveTime>PT10S</tse:KeepAliveTime>"
        f"</tse:{op}>"
    )


def run_search_session(adapter: TokenAdapter, find: str, results: str,
                       result_body: str, expected_out: Expected) -> None:
    request = find_request(find)
    result = adapter.adapt_request(request)
    assert result.device == "nvr"
    check(request, result, [
        ("//tt:IncludedSources/tt:Token/text()", f"{P}:vs_1", "vs_1"),
        ("(//tt:IncludedRecordings)[1]/text()", f"{P}:rec_1", "rec_1"),
        ("(//tt:IncludedRecordings)[2]/text()", f"{P}:rec_2", "rec_2"),
    ])
    response = envelope(f"<tse:{find}Response><tse:SearchToken>search-9</tse:SearchToken>"
                        f"</tse:{find}Response>")
    found = adapter.adapt_response(response, device="nvr")
    check(response, found, [("//tse:SearchToken/text()", "search-9", f"{P}:search-9")])
    get = envelope(f"<tse:{results}><tse:SearchToken>{P}:search-9</tse:SearchToken>"
                   f"<tse:MinResults>1</tse:MinResults><tse:WaitTime>PT5S</tse:WaitTime>"
                   f"</tse:{results}>")
    got = adapter.adapt_request(get)
    assert got.device == "nvr"
    check(get, got, [("//tse:SearchToken/text()", f"{P}:search-9", "search-9")])
    out = envelope(f"<tse:{results}Response><tse:ResultList>"
                   f"<tt:SearchState>Completed</tt:SearchState>{result_body}"
                   f"</tse:ResultList></tse:{results}Response>")
    check(out, adapter.adapt_response(out, device="nvr"), expected_out)
    end = envelope(f"<tse:EndSearch><tse:SearchToken>{P}:search-9</tse:SearchToken>"
                   "</tse:EndSearch>")
    ended = adapter.adapt_request(end)
    assert ended.ended_sessions == (f"{P}:search-9",)
    check(end, ended, [("//tse:SearchToken/text()", f"{P}:search-9", "search-9")])
    with pytest.raises(SoapFault) as info:
        adapter.adapt_request(get)
    assert info.value.subcodes == ("ter:InvalidArgVal", "ter:InvalidToken")


def test_tok22_tok23_tok24_recording_search_session(adapter: TokenAdapter) -> None:
    """TOK-22, TOK-23, TOK-24, TOK-R5: FindRecordings scope tokens in, search token out;
    GetRecordingSearchResults maps the session and the results; EndSearch ends it."""
    body = ("<tt:RecordingInformation>" + RECORDING_INFO.format(rec="rec_2")
            + "</tt:RecordingInformation>")
    run_search_session(adapter, "FindRecordings", "GetRecordingSearchResults", body, [
        ("//tt:RecordingToken/text()", "rec_2", f"{P}:rec_2"),
        ("(//tt:TrackToken)[1]/text()", "VIDEO001", f"{P}:VIDEO001"),
        ("(//tt:TrackToken)[2]/text()", "AUDIO001", f"{P}:AUDIO001"),
    ])


def test_tokr5_oq32_find_events_session(adapter: TokenAdapter) -> None:
    """TOK-R5, OQ-32, TOK-26: FindEvents / GetEventSearchResults are adapted by the same
    rules, including the Source items of the events found."""
    body = (
        "<tt:Result><tt:RecordingToken>rec_1</tt:RecordingToken>"
        "<tt:TrackToken>VIDEO001</tt:TrackToken><tt:Time>2024-01-01T00:00:05Z</tt:Time>"
        "<tt:Event><wsnt:Topic Dialect='http://www.onvif.org/ver10/tev/topicExpression/"
        "ConcreteSet'>tns1:VideoSource/MotionAlarm</wsnt:Topic><wsnt:Message>"
        "<tt:Message UtcTime='2024-01-01T00:00:05Z'><tt:Source>"
        "<tt:SimpleItem Name='Source' Value='vs_1'/></tt:Source>"
        "<tt:Data><tt:SimpleItem Name='State' Value='true'/></tt:Data></tt:Message>"
        "</wsnt:Message></tt:Event><tt:StartStateEvent>false</tt:StartStateEvent></tt:Result>"
    )
    run_search_session(adapter, "FindEvents", "GetEventSearchResults", body, [
        ("//tt:Result/tt:RecordingToken/text()", "rec_1", f"{P}:rec_1"),
        ("//tt:Result/tt:TrackToken/text()", "VIDEO001", f"{P}:VIDEO001"),
        ("//tt:Source/tt:SimpleItem/@Value", "vs_1", f"{P}:vs_1"),
    ])


def test_tok25_get_replay_uri_request(adapter: TokenAdapter) -> None:
    """TOK-25: the recording token of GetReplayUri goes remote -> local."""
    original = envelope("<trp:GetReplayUri><trp:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream>"
                        "<tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport>"
                        f"</trp:StreamSetup><trp:RecordingToken>{P}:rec_2</trp:RecordingToken>"
                        "</trp:GetReplayUri>")
    result = adapter.adapt_request(original)
    assert result.device == "nvr"
    check(original, result, [("//trp:RecordingToken/text()", f"{P}:rec_2", "rec_2")])


# -- Events (TOK-26) ---------------------------------------------------------------

NOTIFICATION = (
    "<wsnt:NotificationMessage><wsnt:Topic Dialect='http://www.onvif.org/ver10/tev/"
    "topicExpression/ConcreteSet'>tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>"
    "<wsnt:Message><tt:Message UtcTime='2024-05-01T10:00:00Z' PropertyOperation='Changed'>"
    "<tt:Source><tt:SimpleItem Name='VideoSourceConfigurationToken' Value='vsc'/>"
    "<tt:SimpleItem Name='VideoAnalyticsConfigurationToken' Value='vac'/>"
    "<tt:SimpleItem Name='Rule' Value='MyMotion'/></tt:Source>"
    "<tt:Data><tt:SimpleItem Name='IsMotion' Value='true'/>"
    "<tt:SimpleItem Name='Token' Value='data-is-not-mapped'/></tt:Data>"
    "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
)
NOTIFICATION_EXPECTED: Expected = [
    ("{n}//tt:SimpleItem[@Name='VideoSourceConfigurationToken']/@Value", "vsc", "A:vsc"),
    ("{n}//tt:SimpleItem[@Name='VideoAnalyticsConfigurationToken']/@Value", "vac", "A:vac"),
]


@pytest.mark.parametrize("wrapper", ["wsnt:Notify", "tev:PullMessagesResponse"])
def test_tok26_forwarded_notifications_map_source_items(
    adapter: TokenAdapter, wrapper: str
) -> None:
    """TOK-26: token-valued Source items of forwarded notifications go local -> remote;
    other Source items and every Data item stay."""
    extra = ("<tev:CurrentTime>2024-05-01T10:00:01Z</tev:CurrentTime>"
             "<tev:TerminationTime>2024-05-01T10:01:00Z</tev:TerminationTime>"
             if wrapper.startswith("tev") else "")
    original = envelope(f"<{wrapper}>{extra}{NOTIFICATION}{NOTIFICATION}</{wrapper}>")
    result = adapter.adapt_response(original, device="cam-a")
    expected = [
        (path.format(n=f"(//wsnt:NotificationMessage)[{i}]"), before, after)
        for i in (1, 2)
        for path, before, after in NOTIFICATION_EXPECTED
    ]
    check(original, result, expected)


def test_tok26_source_item_predicate_is_configurable(mapper: TokenMapper) -> None:
    """TOK-26: which Source items hold tokens is the adapter's choice ("typically")."""
    adapter = TokenAdapter(mapper, source_item=lambda name: name == "Rule")
    original = envelope(f"<wsnt:Notify>{NOTIFICATION}</wsnt:Notify>")
    check(original, adapter.adapt_response(original, device="cam-a"),
          [("//tt:SimpleItem[@Name='Rule']/@Value", "MyMotion", "A:MyMotion")])


# -- Faults, routing and pass-through ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "subcode"),
    [
        ("<tr2:GetProfiles><tr2:Token>A:nope</tr2:Token></tr2:GetProfiles>", "ter:NoProfile"),
        ("<tr2:GetStreamUri><tr2:Protocol>RTSP</tr2:Protocol><tr2:ProfileToken>prof_1"
         "</tr2:ProfileToken></tr2:GetStreamUri>", "ter:NoProfile"),
        ("<tr2:GetSnapshotUri><tr2:ProfileToken>Z:1</tr2:ProfileToken></tr2:GetSnapshotUri>",
         "ter:NoProfile"),
        ("<tptz:Stop><tptz:ProfileToken>A:x</tptz:ProfileToken></tptz:Stop>", "ter:NoProfile"),
        ("<tptz:GotoPreset><tptz:ProfileToken>A:prof_1</tptz:ProfileToken>"
         "<tptz:PresetToken>A:none</tptz:PresetToken></tptz:GotoPreset>", "ter:NoToken"),
        ("<tse:GetRecordingInformation><tse:RecordingToken>x</tse:RecordingToken>"
         "</tse:GetRecordingInformation>", "ter:InvalidToken"),
        ("<tse:FindRecordings><tse:Scope><tt:IncludedSources><tt:Token>q</tt:Token>"
         "</tt:IncludedSources></tse:Scope><tse:KeepAliveTime>PT1S</tse:KeepAliveTime>"
         "</tse:FindRecordings>", "ter:InvalidSource"),
        ("<tse:EndSearch><tse:SearchToken>gone</tse:SearchToken></tse:EndSearch>",
         "ter:InvalidToken"),
        ("<trp:GetReplayUri><trp:RecordingToken></trp:RecordingToken></trp:GetReplayUri>",
         "ter:NoRecording"),
    ],
)
def test_tok13_unknown_tokens_raise_the_operations_fault(
    adapter: TokenAdapter, body: str, subcode: str
) -> None:
    """TOK-13, TOK-R2, tokens.md section 4: a token this VSS did not issue (even one that
    merely lacks its prefix) is the operation's own fault, env:Sender (HTTP 400)."""
    with pytest.raises(SoapFault) as info:
        adapter.adapt_request(envelope(body))
    fault = info.value
    assert (fault.code, fault.subcodes) == ("env:Sender", ("ter:InvalidArgVal", subcode))
    assert fault.http_status == 400 and "unknown token" in fault.reason


def test_tok11_tokens_of_two_devices_in_one_request_are_refused(adapter: TokenAdapter) -> None:
    """TOK-11: one request goes to one device; mixing prefixes is a fault."""
    mixed = envelope("<tptz:GotoPreset><tptz:ProfileToken>B:prof_1</tptz:ProfileToken>"
                     "<tptz:PresetToken>A:preset_1</tptz:PresetToken></tptz:GotoPreset>")
    with pytest.raises(SoapFault, match="another device") as info:
        adapter.adapt_request(mixed)
    assert info.value.subcodes == ("ter:InvalidArgVal", "ter:NoToken")
    single = envelope("<tptz:Stop><tptz:ProfileToken>B:prof_1</tptz:ProfileToken></tptz:Stop>")
    with pytest.raises(SoapFault, match="another device"):
        adapter.adapt_request(single, device="cam-a")
    assert adapter.adapt_request(single, device="cam-b").device == "cam-b"


def test_tokr5_operation_without_rule_passes_through(adapter: TokenAdapter) -> None:
    """TOK-R5: an operation the table does not list is passed on unchanged and reported."""
    original = envelope('<tds:GetDeviceInformation xmlns:tds="http://www.onvif.org/ver10/'
                        'device/wsdl"/>')
    result = adapter.adapt_request(original, device="cam-a")
    assert result.envelope is original and not result.handled
    assert result.operation == "{http://www.onvif.org/ver10/device/wsdl}GetDeviceInformation"
    assert result.device == "cam-a"
    response = envelope("<tse:GetRecordingSummaryResponse/>")
    assert adapter.adapt_response(response, device="nvr").envelope is response


def test_tokr5_fault_response_passes_through(adapter: TokenAdapter) -> None:
    """TOK-R5: a device's fault is forwarded as it is."""
    original = envelope("<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code>"
                        "<s:Reason><s:Text xml:lang='en'>no</s:Text></s:Reason></s:Fault>")
    result = adapter.adapt_response(original, device="cam-a")
    assert result.fault and not result.handled and result.envelope is original


def test_tokr5_envelope_errors(adapter: TokenAdapter) -> None:
    """TOK-R5: SOAP 1.1 is a VersionMismatch; a non-envelope is refused; DOCTYPE is refused;
    an empty Body carries no operation."""
    soap11 = (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/>'
              b"</e:Envelope>")
    with pytest.raises(SoapFault) as info:
        adapter.adapt_request(soap11)
    assert info.value.code == "env:VersionMismatch"
    with pytest.raises(SoapFault) as info:
        adapter.adapt_response(soap11, device="cam-a")
    assert info.value.code == "env:Receiver"
    with pytest.raises(SoapFault, match=r"not a SOAP 1\.2 envelope") as info:
        adapter.adapt_request(b"<a/>")
    assert info.value.code == "env:Sender"
    with pytest.raises(XmlRejectedError):
        adapter.adapt_request(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')
    empty = envelope("")
    result = adapter.adapt_request(empty)
    assert result.operation is None and result.envelope is empty


def test_tokr5_declaration_kept_or_left_out(adapter: TokenAdapter) -> None:
    """TOK-R5: the XML declaration is written only when the input had one."""
    body = "<tptz:Stop><tptz:ProfileToken>A:prof_1</tptz:ProfileToken></tptz:Stop>"
    without = adapter.adapt_request(envelope(body, declaration=False)).envelope
    assert without.startswith(b"<s:Envelope")
    assert adapter.adapt_request(envelope(body)).envelope.startswith(b"<?xml")


def test_tokr5_rules_are_data_and_cover_annex_b() -> None:
    """TOK-R5, TOK-17 .. TOK-26, OQ-32: the table lists every Annex B operation (with
    GetStreamUri for "GetStreamingUri") plus FindEvents/GetEventSearchResults, and a
    custom table compiles and drives the adapter."""
    names = {r.request for r in RULES} | {r.response for r in RULES}
    for op in ("tr2:GetProfiles", "tr2:GetStreamUri", "tr2:GetSnapshotUri",
               "tptz:AbsoluteMove", "tptz:ContinuousMove", "tptz:Stop", "tptz:GetPresets",
               "tptz:GotoPreset", "tptz:SendAuxiliaryCommand",
               "tse:GetRecordingInformation", "tse:FindRecordings",
               "tse:GetRecordingSearchResults", "tse:EndSearch", "trp:GetReplayUri",
               "tse:FindEvents", "tse:GetEventSearchResults", "wsnt:Notify",
               "tev:PullMessagesResponse"):
        assert op in names, op
    custom = compile_rules((OperationRule(
        "tr2:DeleteProfile", "tr2:DeleteProfileResponse", "ter:NoProfile",
        (Site("tr2:Token"),)),))
    mapper = TokenMapper()
    remote = mapper.to_remote("cam", "p1")
    adapter = TokenAdapter(mapper, rules=custom)
    original = envelope(f"<tr2:DeleteProfile><tr2:Token>{remote}</tr2:Token></tr2:DeleteProfile>")
    check(original, adapter.adapt_request(original), [("//tr2:Token/text()", remote, "p1")])
    get = envelope("<tr2:GetProfiles><tr2:Token>cam:p1</tr2:Token></tr2:GetProfiles>")
    assert not adapter.adapt_request(get).handled


def test_tok12_store_flushed_after_response() -> None:
    """TOK-12, TOK-11: new mappings made while adapting a response are saved once."""

    class Store:
        def __init__(self) -> None:
            self.saved: list[str] = []

        def load(self) -> str | None:
            return None

        def save(self, data: str) -> None:
            self.saved.append(data)

    store = Store()
    mapper = TokenMapper(store=store)
    original = envelope('<tptz:GetPresetsResponse><tptz:Preset token="1"/>'
                        '<tptz:Preset token="2"/></tptz:GetPresetsResponse>')
    adapt_response(original, mapper, device="cam")
    assert len(store.saved) == 1 and "cam:2" in store.saved[0]
    adapt_response(original, mapper, device="cam")
    assert len(store.saved) == 1  # nothing new


TOKEN_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    min_size=1, max_size=64,
)


@settings(max_examples=60, deadline=None)
@given(locals_=st.lists(TOKEN_TEXT, min_size=1, max_size=4, unique=True))
def test_tok12_tok17_round_trip_any_device_tokens(locals_: list[str]) -> None:
    """TOK-12, TOK-17: any device tokens come back unchanged after out -> in adaption."""
    mapper = TokenMapper()
    profiles = "".join(f"<tr2:Profiles token={etree_quote(t)}/>" for t in locals_)
    response = envelope(f"<tr2:GetProfilesResponse>{profiles}</tr2:GetProfilesResponse>")
    out = adapt_response(response, mapper, device="cam")
    remotes = etree.fromstring(out.envelope).xpath("//tr2:Profiles/@token", namespaces=NS)
    assert len(set(remotes)) == len(locals_)
    for remote, local in zip(remotes, locals_, strict=True):
        request = envelope(f"<tr2:GetProfiles><tr2:Token>{xml_text(remote)}</tr2:Token>"
                           "</tr2:GetProfiles>")
        back = adapt_request(request, mapper)
        assert back.device == "cam"
        token = etree.fromstring(back.envelope).xpath("//tr2:Token", namespaces=NS)[0]
        assert token.text == local


def etree_quote(value: str) -> str:
    """An attribute value literal for ``value`` (escaped by lxml itself)."""
    elem = etree.Element("a", v=value)
    return etree.tostring(elem).decode()[len("<a v="):-2]


def xml_text(value: str) -> str:
    elem = etree.Element("a")
    elem.text = value
    return etree.tostring(elem).decode()[len("<a>"):-len("</a>")]


def test_tok26_adapt_message_in_place(adapter: TokenAdapter) -> None:
    """TOK-26: an event service can map the Source items of a single tt:Message element."""
    message = etree.fromstring(
        f'<tt:Message xmlns:tt="{NS["tt"]}" UtcTime="2024-05-01T10:00:00Z"><tt:Source>'
        '<tt:SimpleItem Name="InputToken" Value="di_1"/><tt:SimpleItem Name="Rule" Value="r"/>'
        '</tt:Source><tt:Data><tt:SimpleItem Name="LogicalState" Value="true"/></tt:Data>'
        "</tt:Message>"
    )
    before = etree.tostring(message, method="c14n")
    rewrites = adapter.adapt_message(message, device="cam-a")
    assert [(r.before, r.after) for r in rewrites] == [("di_1", "A:di_1")]
    item = message.xpath("//tt:SimpleItem[@Name='InputToken']", namespaces=NS)[0]
    assert item.get("Value") == "A:di_1"
    item.set("Value", "di_1")
    assert etree.tostring(message, method="c14n") == before


def test_tok12_unregistered_device_gets_its_key_as_prefix(mapper: TokenMapper) -> None:
    """TOK-12, TOK-11: a response from a device seen for the first time registers it."""
    adapter = TokenAdapter(mapper)
    original = envelope("<tptz:SetPresetResponse><tptz:PresetToken>1</tptz:PresetToken>"
                        "</tptz:SetPresetResponse>")
    check(original, adapter.adapt_response(original, device="cam-new"),
          [("//tptz:PresetToken/text()", "1", "cam-new:1")])
    assert mapper.prefix_of("cam-new") == "cam-new"


def test_tokr5_bytearray_input_and_bad_proxy_uri(mapper: TokenMapper) -> None:
    """TOK-R5, TOK-18: buffers other than bytes are accepted; a proxy URI XML cannot carry
    becomes a Receiver fault, never an lxml exception."""
    adapter = TokenAdapter(mapper, uri_rewriter=lambda ctx: "rtsp://vss/\x00")
    request = bytearray(envelope("<tptz:Stop><tptz:ProfileToken>A:prof_1</tptz:ProfileToken>"
                                 "</tptz:Stop>"))
    assert adapter.adapt_request(request).device == "cam-a"
    response = envelope("<tr2:GetStreamUriResponse><tr2:Uri>rtsp://cam/1</tr2:Uri>"
                        "</tr2:GetStreamUriResponse>")
    with pytest.raises(SoapFault, match="XML cannot carry") as info:
        adapter.adapt_response(response, device="cam-a")
    assert info.value.code == "env:Receiver"


@pytest.mark.parametrize(
    "rule",
    [
        OperationRule("foo:Op", None, "ter:NoProfile"),
        OperationRule("tr2:Op", None, "ter:NoProfile", (Site("tr2:Token/text()"),)),
        OperationRule("tr2:Op", None, "ter:NoProfile", (Site("zz:Token"),)),
        OperationRule("tr2:Op", None, "ter:NoProfile", (Site("tr2:A[1]"),)),
        OperationRule("tr2:Op", "tr2:OpResponse", "ter:NoProfile", uris=("//tr2:Uri",)),
    ],
)
def test_tokr5_bad_custom_rules_are_configuration_errors(rule: OperationRule) -> None:
    """TOK-R5: a custom rule table is checked when compiled, never failing later in lxml."""
    with pytest.raises(ConfigurationError, match="adaption"):
        compile_rules((rule,))


def test_tokr5_envelope_size_limit_is_configurable(mapper: TokenMapper) -> None:
    """TOK-R5: the adapter refuses envelopes above its byte limit before parsing them."""
    original = envelope("<tptz:Stop><tptz:ProfileToken>A:prof_1</tptz:ProfileToken></tptz:Stop>")
    with pytest.raises(XmlRejectedError) as info:
        TokenAdapter(mapper, max_bytes=100).adapt_request(original)
    assert info.value.reason == "too-large"
    assert TokenAdapter(mapper, max_bytes=len(original)).adapt_request(original).changed
