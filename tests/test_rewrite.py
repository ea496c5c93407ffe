"""Tests of uplink62676.urirewrite and uplink62676.origins: URIs that point back through the cloud.

Spec: core-device.md section 5 (DEV-29 the URI-bearing fields, DEV-R14 the
request origin, DEV-R15 untrusted forwarding headers, DEV-R16 the broker's
rewrite, DEV-R17 wsa:To and the forwarding headers, DEV-R18 credentials),
uplink.md UPL-59, UPL-R21; media.md MED-8 (host-less RTSPWebSocketUri).
"""

from __future__ import annotations

import difflib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink62676._xml import parse_xml
from uplink62676.errors import ConfigurationError, RemoteProtocolError
from uplink62676.origins import (
    ForwardedElement,
    Origin,
    PublicOrigin,
    forwarding_headers,
    parse_forwarded,
    public_origin,
    without_forwarding_headers,
)
from uplink62676.urirewrite import RewriteResult, UriRewriter, UriRule, rewrite_soap_uris

SOAP = "application/soap+xml; charset=utf-8"
CAMERA = "http://192.168.1.20"
CLOUD = "https://cloud.example:8443/devices/cam7"
FORWARD = UriRewriter(UriRule.of(CAMERA, CLOUD))

NS = (
    'xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema"'
)


def changes(old: bytes, new: bytes) -> list[tuple[int, int]]:
    """Offsets ``[i1, i2)`` of ``old`` that differ from ``new``, found by diffing (not by our code)."""
    ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    return [(i1, i2) for tag, i1, i2, _, _ in ops if tag != "equal"]


def uri_spans(body: bytes) -> list[tuple[int, int]]:
    """Offsets of the URI text of every element/attribute ending in Uri/XAddr/Address/To."""
    pattern = rb"""(?:XAddr|Uri|Address|To)(?:>|=["'])[ \t\r\n]*(?:<!\[CDATA\[)?([^<"']*)"""
    return [m.span(1) for m in re.finditer(pattern, body)]


def assert_only_uris_changed(old: bytes, new: bytes) -> None:
    """Every octet outside the URIs of ``old`` is in ``new``, in order and unchanged."""
    spans = uri_spans(old)
    for i1, i2 in changes(old, new):
        assert any(a <= i1 and i2 <= b for a, b in spans), (i1, i2, old[i1 - 20 : i2 + 20])


# --------------------------------------------------------------------------- golden bodies

GET_SERVICES = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope {NS}>
  <env:Body>
    <tds:GetServicesResponse>
      <tds:Service>
        <tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace>
        <tds:XAddr>http://192.168.1.20/onvif/device_service</tds:XAddr>
        <tds:Version><tt:Major>26</tt:Major><tt:Minor>6</tt:Minor></tds:Version>
      </tds:Service>
      <tds:Service>
        <tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace>
        <tds:XAddr>http://192.168.1.20:80/onvif/events_service</tds:XAddr>
        <tds:Version><tt:Major>26</tt:Major><tt:Minor>6</tt:Minor></tds:Version>
      </tds:Service>
      <tds:Service>
        <tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace>
        <tds:XAddr>
          http://192.168.1.20/onvif/media_service?profile=a&amp;x=1
        </tds:XAddr>
        <tds:Version><tt:Major>26</tt:Major><tt:Minor>6</tt:Minor></tds:Version>
      </tds:Service>
      <tds:Service>
        <tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace>
        <tds:XAddr>HTTP://192.168.1.20/onvif/media2_service</tds:XAddr>
        <tds:Capabilities><tr2:Capabilities xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"
            SnapshotUri="true"><tr2:StreamingCapabilities RTSPStreaming="true"
            RTSPWebSocketUri="ws:/onvif/ws_stream"/></tr2:Capabilities></tds:Capabilities>
        <tds:Version><tt:Major>26</tt:Major><tt:Minor>6</tt:Minor></tds:Version>
      </tds:Service>
      <tds:Service>
        <tds:Namespace>http://www.onvif.org/ver10/uplink/wsdl</tds:Namespace>
        <tds:XAddr>http://192.168.1.20/onvif/uplink_service</tds:XAddr>
        <tds:Version><tt:Major>26</tt:Major><tt:Minor>6</tt:Minor></tds:Version>
      </tds:Service>
    </tds:GetServicesResponse>
  </env:Body>
</env:Envelope>
""".encode()

GET_SERVICES_REWRITTEN = GET_SERVICES.replace(
    b">http://192.168.1.20/onvif/device_service<",
    b">https://cloud.example:8443/devices/cam7/onvif/device_service<",
).replace(
    b">http://192.168.1.20:80/onvif/events_service<",
    b">https://cloud.example:8443/devices/cam7/onvif/events_service<",
).replace(
    b"          http://192.168.1.20/onvif/media_service?profile=a&amp;x=1\n",
    b"          https://cloud.example:8443/devices/cam7/onvif/media_service?profile=a&amp;x=1\n",
).replace(
    b">HTTP://192.168.1.20/onvif/media2_service<",
    b">https://cloud.example:8443/devices/cam7/onvif/media2_service<",
).replace(
    b">http://192.168.1.20/onvif/uplink_service<",
    b">https://cloud.example:8443/devices/cam7/onvif/uplink_service<",
).replace(
    b'RTSPWebSocketUri="ws:/onvif/ws_stream"',
    b'RTSPWebSocketUri="ws:/devices/cam7/onvif/ws_stream"',
)


def test_dev29_get_services_five_xaddrs_golden() -> None:
    """DEV-29, DEV-R16, UPL-59: every tds:Service/tds:XAddr gets the public origin + prefix."""
    result = FORWARD.rewrite(GET_SERVICES, SOAP)
    assert result == RewriteResult(GET_SERVICES_REWRITTEN, 6, None)
    assert result.body == GET_SERVICES_REWRITTEN  # the golden body, octet for octet


def test_dev_r16_get_services_only_the_origins_change() -> None:
    """DEV-R16: diffing shows changes only inside the URIs; namespaces and the rest untouched."""
    rewritten = FORWARD.rewrite(GET_SERVICES, SOAP).body
    assert changes(GET_SERVICES, rewritten)
    assert_only_uris_changed(GET_SERVICES, rewritten)
    for a, b in uri_spans(GET_SERVICES):  # and inside them, path and query are kept
        uri = GET_SERVICES[a:b].strip()
        assert uri.split(b"/", 3)[-1] in rewritten


def test_dev_r16_reverse_restores_the_camera_origin() -> None:
    """DEV-R16, DEV-R17: the reversed rule maps the public origin back (default port spelled once)."""
    there = FORWARD.rewrite(GET_SERVICES, SOAP).body
    back = FORWARD.reversed().rewrite(there, SOAP)
    assert back.count == 6
    expected = GET_SERVICES.replace(b"http://192.168.1.20:80/", b"http://192.168.1.20/").replace(
        b"HTTP://192.168.1.20/", b"http://192.168.1.20/")
    assert back.body == expected


GET_STREAM_URI = f"""<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope {NS} xmlns:trt="http://www.onvif.org/ver10/media/wsdl">
  <env:Body>
    <trt:GetStreamUriResponse>
      <trt:MediaUri>
        <tt:Uri>rtsp://192.168.1.20:554/media/profile_1?transport=tcp&amp;v=2</tt:Uri>
        <tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>
        <tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>
        <tt:Timeout>PT0S</tt:Timeout>
      </trt:MediaUri>
    </trt:GetStreamUriResponse>
  </env:Body>
</env:Envelope>
""".encode()

GET_SNAPSHOT_URI2 = b"""<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
  xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"><env:Body><tr2:GetSnapshotUriResponse>
<tr2:Uri>http://192.168.1.20/snapshot?profile=p1</tr2:Uri></tr2:GetSnapshotUriResponse>
</env:Body></env:Envelope>"""


def test_dev29_get_stream_uri_rtsp_left_alone_without_its_rule() -> None:
    """DEV-29, DEV-R16: an rtsp:// URI is untouched until the RTSP endpoint has a rule."""
    result = FORWARD.rewrite(GET_STREAM_URI, SOAP)
    assert result == RewriteResult(GET_STREAM_URI, 0, None)


def test_dev29_get_stream_uri_golden_with_an_rtsp_rule() -> None:
    """DEV-29, DEV-R16, MED-R12: trt:MediaUri/tt:Uri with an rtsp rule, query and escapes kept."""
    rw = UriRewriter([UriRule.of(CAMERA, CLOUD),
                      UriRule.of("rtsp://192.168.1.20", "rtsp://rtsp.cloud.example/cam7")])
    result = rw.rewrite(GET_STREAM_URI, SOAP)
    assert result.count == 1
    assert result.body == GET_STREAM_URI.replace(
        b">rtsp://192.168.1.20:554/media/", b">rtsp://rtsp.cloud.example/cam7/media/")
    assert_only_uris_changed(GET_STREAM_URI, result.body)


def test_dev29_media2_snapshot_uri() -> None:
    """DEV-29: tr2:Uri of GetSnapshotUri (Media2)."""
    result = FORWARD.rewrite(GET_SNAPSHOT_URI2, "text/xml")
    assert result.body == GET_SNAPSHOT_URI2.replace(
        b"http://192.168.1.20/snapshot", b"https://cloud.example:8443/devices/cam7/snapshot")


CREATE_PULL_POINT = b"""<?xml version='1.0' encoding='utf-8'?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
    xmlns:a="http://www.w3.org/2005/08/addressing"
    xmlns:tev="http://www.onvif.org/ver10/events/wsdl"
    xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">
 <s:Header><a:Action>http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionResponse</a:Action></s:Header>
 <s:Body>
  <tev:CreatePullPointSubscriptionResponse>
   <tev:SubscriptionReference>
    <a:Address>https://32010001071321008015/onvif/events/pullpoint?id=7</a:Address>
    <a:ReferenceParameters><x:Id xmlns:x="urn:x">https://32010001071321008015/keep</x:Id></a:ReferenceParameters>
   </tev:SubscriptionReference>
   <wsnt:CurrentTime>2026-03-01T08:15:30Z</wsnt:CurrentTime>
   <wsnt:TerminationTime>2026-03-01T08:25:30Z</wsnt:TerminationTime>
  </tev:CreatePullPointSubscriptionResponse>
 </s:Body>
</s:Envelope>"""


def test_dev29_create_pull_point_subscription_reference_golden() -> None:
    """DEV-29, DEV-R16, UPL-R21: the path route rewrites the uplink authority, not ReferenceParameters."""
    rule = UriRule.of("https://32010001071321008015",
                      "https://vms.example.com/devices/32010001071321008015")
    result = rewrite_soap_uris(CREATE_PULL_POINT, "application/soap+xml", rule)
    expected = CREATE_PULL_POINT.replace(
        b"<a:Address>https://32010001071321008015/onvif",
        b"<a:Address>https://vms.example.com/devices/32010001071321008015/onvif")
    assert result == RewriteResult(expected, 1, None)
    assert_only_uris_changed(CREATE_PULL_POINT, result.body)
    assert b"<x:Id xmlns:x=\"urn:x\">https://32010001071321008015/keep</x:Id>" in result.body


GET_CAPABILITIES = f"""<env:Envelope {NS}><env:Body><tds:GetCapabilitiesResponse>
<tds:Capabilities>
<tt:Device><tt:XAddr>http://192.168.1.20/onvif/device_service</tt:XAddr></tt:Device>
<tt:Events><tt:XAddr>http://192.168.1.20/onvif/events_service</tt:XAddr>
<tt:WSPullPointSupport>true</tt:WSPullPointSupport></tt:Events>
<tt:Extension><tt:Recording><tt:XAddr>http://192.168.1.20/onvif/recording</tt:XAddr>
</tt:Recording></tt:Extension>
</tds:Capabilities></tds:GetCapabilitiesResponse></env:Body></env:Envelope>""".encode()


def test_dev29_get_capabilities_every_tt_xaddr() -> None:
    """DEV-29, DEV-6: every tt:XAddr of GetCapabilities, in extensions too."""
    result = FORWARD.rewrite(GET_CAPABILITIES, SOAP)
    assert result.count == 3
    assert result.body == GET_CAPABILITIES.replace(
        b">http://192.168.1.20/", b">https://cloud.example:8443/devices/cam7/")


def test_dev29_system_uris() -> None:
    """DEV-29: GetSystemUris' SystemLog/Uri, SupportInfoUri and SystemBackupUri."""
    body = f"""<env:Envelope {NS}><env:Body><tds:GetSystemUrisResponse>
<tds:SystemLogUris><tt:SystemLog><tt:Type>System</tt:Type>
<tt:Uri>http://192.168.1.20/log</tt:Uri></tt:SystemLog></tds:SystemLogUris>
<tds:SupportInfoUri>http://192.168.1.20/support</tds:SupportInfoUri>
<tds:SystemBackupUri>http://192.168.1.20/backup</tds:SystemBackupUri>
</tds:GetSystemUrisResponse></env:Body></env:Envelope>""".encode()
    result = FORWARD.rewrite(body, SOAP)
    assert result.count == 3
    assert result.body == body.replace(b">http://192.168.1.20/",
                                       b">https://cloud.example:8443/devices/cam7/")


def test_dev_r16_other_uris_are_left_alone() -> None:
    """DEV-R16: namespaces, WsdlUrl, foreign XAddrs, tt:Uri or wsa:Address elsewhere stay."""
    body = f"""<env:Envelope {NS} xmlns:wsa="http://www.w3.org/2005/08/addressing"
xmlns:o="urn:other"><env:Body>
<tds:GetWsdlUrlResponse><tds:WsdlUrl>http://192.168.1.20/wsdl</tds:WsdlUrl></tds:GetWsdlUrlResponse>
<tds:Namespace>http://192.168.1.20/ns</tds:Namespace>
<o:XAddr>http://192.168.1.20/foreign</o:XAddr>
<XAddr>http://192.168.1.20/no-namespace</XAddr>
<tds:XAddr>http://192.168.1.20/not-in-a-service</tds:XAddr>
<tt:Other><tt:Uri>http://192.168.1.20/elsewhere</tt:Uri></tt:Other>
<wsa:EndpointReference><wsa:Address>http://192.168.1.20/epr</wsa:Address></wsa:EndpointReference>
<tt:NTP><tt:DNSname>192.168.1.20</tt:DNSname></tt:NTP>
</env:Body></env:Envelope>""".encode()
    assert FORWARD.rewrite(body, SOAP) == RewriteResult(body, 0, None)


def test_dev_r16_origin_comparison() -> None:
    """DEV-R16: hosts case-insensitive, default ports explicit, IPv6 bracketed, other ports differ."""
    rw = UriRewriter([UriRule.of("http://Cam.Local", "https://c.example"),
                      UriRule.of("http://[FE80:0::1]:8080", "https://d.example")])
    assert rw.rewrite_uri("http://cam.local:80/x") == "https://c.example/x"
    assert rw.rewrite_uri("HTTP://CAM.LOCAL/x") == "https://c.example/x"
    assert rw.rewrite_uri("http://cam.local:080") == "https://c.example"
    assert rw.rewrite_uri("http://cam.local:8080/x") is None
    assert rw.rewrite_uri("https://cam.local/x") is None
    assert rw.rewrite_uri("http://cam.localx/x") is None
    assert rw.rewrite_uri("http://[fe80::1]:8080/y?q") == "https://d.example/y?q"
    assert rw.rewrite_uri("http://[fe80::2]:8080/y") is None
    assert rw.rewrite_uri("http://user:pw@cam.local/x") == "https://user:pw@c.example/x"
    assert rw.rewrite_uri("  http://cam.local/x\n") == "https://c.example/x"
    assert Origin.parse("http://cam") == Origin.parse("http://CAM:80")
    assert Origin.parse("https://cam:443/") == Origin("https", "cam", 443)
    assert str(Origin.parse("https://[::1]:8443")) == "https://[::1]:8443"


def test_dev_r16_prefixes_match_whole_segments() -> None:
    """DEV-R16: a source prefix matches whole path segments; the longer prefix wins."""
    rw = UriRewriter([
        UriRule.of("https://cloud.example/devices/cam7", "http://10.0.0.7"),
        UriRule.of("https://cloud.example/devices/cam7/sub", "http://10.0.0.8/x"),
    ])
    assert rw.rewrite_uri("https://cloud.example/devices/cam7/onvif") == "http://10.0.0.7/onvif"
    assert rw.rewrite_uri("https://cloud.example/devices/cam7?q=1") == "http://10.0.0.7?q=1"
    assert rw.rewrite_uri("https://cloud.example/devices/cam77/onvif") is None
    assert rw.rewrite_uri("https://cloud.example/devices/cam7/sub/a") == "http://10.0.0.8/x/a"
    body = (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:tt="http://www.onvif.org/ver10/schema"><e:Body>'
            b"<tt:XAddr>https://cloud.example/devices/cam77/a</tt:XAddr>"
            b"<tt:XAddr>https://cloud.example/devices/cam7</tt:XAddr>"
            b"<tt:XAddr>https://cloud.example/devices/cam7/sub?x</tt:XAddr></e:Body></e:Envelope>")
    result = rw.rewrite(body, "text/xml")
    assert result.body == body.replace(
        b">https://cloud.example/devices/cam7<", b">http://10.0.0.7<").replace(
        b">https://cloud.example/devices/cam7/sub?x", b">http://10.0.0.8/x?x")


def test_dev_r17_wsa_to_in_requests_goes_back_to_the_device() -> None:
    """DEV-R17: the public wsa:To of a request is rewritten back to the device-side URL."""
    request = b"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>
<a:Action>http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest</a:Action>
<a:To s:mustUnderstand="1">https://cloud.example:8443/devices/cam7/onvif/events/pullpoint?id=7</a:To>
</s:Header><s:Body><tev:PullMessages xmlns:tev="http://www.onvif.org/ver10/events/wsdl">
<tev:Timeout>PT5S</tev:Timeout><tev:MessageLimit>10</tev:MessageLimit></tev:PullMessages>
</s:Body></s:Envelope>"""
    rw = UriRewriter(UriRule.of(CAMERA, CLOUD).reversed(), fields="request")
    result = rw.rewrite(request, SOAP)
    assert result.count == 1
    assert result.body == request.replace(
        b"https://cloud.example:8443/devices/cam7/onvif/", b"http://192.168.1.20/onvif/")
    # A response rewriter does not touch wsa:To, a request rewriter no XAddr.
    assert UriRewriter(UriRule.of(CAMERA, CLOUD).reversed()).rewrite(request, SOAP).count == 0
    assert rw.rewrite(GET_SERVICES, SOAP).count == 0
    both = UriRewriter(UriRule.of(CAMERA, CLOUD), fields="both")
    assert both.rewrite(GET_SERVICES, SOAP).count == 6


# --------------------------------------------------------------------------- what passes unchanged

@pytest.mark.parametrize("content_type", [
    None, "", "text/plain", "application/json", "multipart/related; type=application/xop+xml",
    "application/soap+xmlx", "text/html; charset=utf-8",
])
def test_dev_r16_only_soap_content_types(content_type: str | None) -> None:
    """DEV-R16: non-SOAP answers pass unchanged (the same object) and say why."""
    result = FORWARD.rewrite(GET_SERVICES, content_type)
    assert result.body is GET_SERVICES and result == RewriteResult(GET_SERVICES, 0, "not-soap")


@pytest.mark.parametrize("content_type", [
    "application/soap+xml", "APPLICATION/SOAP+XML; charset=UTF-8; action=\"x;y\"",
    "text/xml", "application/xml ; charset=utf-8",
])
def test_dev_r16_soap_content_types_with_parameters(content_type: str) -> None:
    """DEV-R16: the three SOAP/XML media types, any case, with parameters."""
    assert FORWARD.rewrite(GET_SERVICES, content_type).count == 6


def test_dev_r16_oversized_bodies_pass_unchanged() -> None:
    """DEV-R16: a body above the limit (1 MiB by default) is not parsed."""
    rw = UriRewriter(UriRule.of(CAMERA, CLOUD), max_bytes=len(GET_SERVICES) - 1)
    assert rw.rewrite(GET_SERVICES, SOAP) == RewriteResult(GET_SERVICES, 0, "too-large")
    padding = b"<!--" + b"x" * (1024 * 1024) + b"-->"
    big = GET_SERVICES.replace(b"</env:Envelope>", b"</env:Envelope>" + padding)
    assert FORWARD.rewrite(big, SOAP) == RewriteResult(big, 0, "too-large")
    assert UriRewriter(UriRule.of(CAMERA, CLOUD), max_bytes=len(GET_SERVICES)).rewrite(
        GET_SERVICES, SOAP).count == 6


@pytest.mark.parametrize(("body", "reason"), [
    (b"<env:Envelope><tds:XAddr>http://192.168.1.20/</tds:XAddr>", "malformed"),
    (b'<!DOCTYPE x [<!ENTITY e "http://192.168.1.20/">]><x><tt:XAddr xmlns:tt="u">&e;'
     b"</tt:XAddr></x>", "doctype"),
    (b"<a><tt:XAddr xmlns:tt='u'>http://192.168.1.20/</tt:XAddr></b>", "malformed"),
])
def test_dev_r16_unparseable_bodies_pass_unchanged(body: bytes, reason: str) -> None:
    """DEV-R16: a body the hardened parser refuses is returned as it is, with the reason."""
    assert FORWARD.rewrite(body, SOAP) == RewriteResult(body, 0, reason)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_dev_r16_utf16_body_is_left_alone(codec: str) -> None:
    """DEV-R16: a body in an encoding that is not ASCII-based changes nothing, and says so."""
    body = GET_SERVICES.decode().replace('encoding="UTF-8"', f'encoding="{codec}"').encode(codec)
    assert FORWARD.rewrite(body, SOAP) == RewriteResult(body, 0, "encoding")


def test_dev_r16_latin1_body_is_rewritten() -> None:
    """DEV-R16: an ASCII-based encoding (ISO-8859-1) is rewritten; other octets stay."""
    body = _xaddrs("http://192.168.1.20/caf\u00e9").replace(b"UTF-8", b"ISO-8859-1")
    body = body.decode("utf-8").encode("latin-1")
    result = FORWARD.rewrite(body, SOAP)
    assert result.body == body.replace(b"http://192.168.1.20/",
                                       b"https://cloud.example:8443/devices/cam7/")


def test_dev_r16_body_without_candidates_is_not_parsed() -> None:
    """DEV-R16: an answer with no URI element at all is returned as it is (not even parsed)."""
    body = b"<not even xml <<< XAddrs"
    assert FORWARD.rewrite(body, SOAP) == RewriteResult(body, 0, None)


# --------------------------------------------------------------------------- escaping, CDATA, UTF-8

def _xaddrs(*contents: str, extra: str = "") -> bytes:
    services = "".join(f"<tds:Service><tds:XAddr>{c}</tds:XAddr></tds:Service>" for c in contents)
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {NS}><env:Body>{extra}'
            f"<tds:GetServicesResponse>{services}</tds:GetServicesResponse>"
            "</env:Body></env:Envelope>").encode()


@pytest.mark.parametrize(("content", "expected"), [
    ("http://192.168.1.20/a?x=1&amp;y=2", "https://cloud.example:8443/devices/cam7/a?x=1&amp;y=2"),
    ("&#104;ttp://192.168.1.20/a", "https://cloud.example:8443/devices/cam7/a"),
    ("http://192.168.1.20&#47;a", "https://cloud.example:8443/devices/cam7/a"),
    ("<![CDATA[http://192.168.1.20/a?x=1&y=2]]>",
     "<![CDATA[https://cloud.example:8443/devices/cam7/a?x=1&y=2]]>"),
    (" \r\n\t<![CDATA[ http://192.168.1.20/b ]]>\n",
     " \r\n\t<![CDATA[https://cloud.example:8443/devices/cam7/b]]>\n"),
    ("http://192.168.1.20<!-- c -->/c", "https://cloud.example:8443/devices/cam7/c"),
    ("http://192.168.1.20/caf\u00e9/\u6f22", "https://cloud.example:8443/devices/cam7/caf\u00e9/\u6f22"),
    ("\n  http://192.168.1.20:80  \n", "\n  https://cloud.example:8443/devices/cam7  \n"),
    ("http://192.168.1.20:/d", "https://cloud.example:8443/devices/cam7/d"),
    ("http://192.168.1.20:8080/d", "http://192.168.1.20:8080/d"),
    ("http://192.168.1.200/d", "http://192.168.1.200/d"),
    ("http:/192.168.1.20/d", "http:/192.168.1.20/d"),
    ("", ""),
])
def test_dev_r16_xml_escapes_whitespace_cdata_utf8(content: str, expected: str) -> None:
    """DEV-R16: escapes in the text, whitespace around the URI, CDATA, UTF-8 paths."""
    body = _xaddrs(content, extra="<tds:Manufacturer>M\u00fcller &amp; S\u00f6hne</tds:Manufacturer>")
    result = FORWARD.rewrite(body, SOAP)
    assert result.body == _xaddrs(expected, extra="<tds:Manufacturer>M\u00fcller &amp; S\u00f6hne"
                                                  "</tds:Manufacturer>")
    assert result.count == (content != expected)
    parse_xml(result.body)


def test_dev_r16_look_alikes_in_comments_cdata_and_pis_are_not_elements() -> None:
    """DEV-R16: a start tag inside a comment, CDATA or PI is not an element to rewrite."""
    extra = ("<!-- <tds:Service><tds:XAddr>http://192.168.1.20/c</tds:XAddr></tds:Service> -->"
             "<tt:Note><![CDATA[<tds:XAddr>http://192.168.1.20/d</tds:XAddr>]]></tt:Note>"
             "<?pi <tds:XAddr>http://192.168.1.20/e</tds:XAddr>?>")
    body = _xaddrs("http://192.168.1.20/a", "http://192.168.1.20/b", extra=extra)
    result = FORWARD.rewrite(body, SOAP)
    assert result.count == 2
    assert result.body == _xaddrs("https://cloud.example:8443/devices/cam7/a",
                                  "https://cloud.example:8443/devices/cam7/b", extra=extra)


def test_dev_r16_tags_with_attributes_and_odd_spacing() -> None:
    """DEV-R16: start tags with attributes (a '>' in a value), other prefixes, default namespace."""
    body = (b'<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body>'
            b'<GetServicesResponse xmlns="http://www.onvif.org/ver10/device/wsdl"><Service>'
            b'<XAddr a="x>y" b=\'"\'\n>http://192.168.1.20/a</XAddr></Service>'
            b'<Service><d:XAddr xmlns:d="http://www.onvif.org/ver10/device/wsdl"\t>'
            b"http://192.168.1.20/b</d:XAddr ></Service></GetServicesResponse></Body></Envelope>")
    result = FORWARD.rewrite(body, "text/xml")
    assert result.count == 2
    assert result.body == body.replace(b">http://192.168.1.20/",
                                       b">https://cloud.example:8443/devices/cam7/")


def test_med8_hostless_websocket_uri_gets_the_prefix() -> None:
    """MED-8, DEV-R16: ws:/path (no host) becomes ws:/<prefix>/path; escapes in attributes."""
    body = (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"><e:Body>'
            b"<tr2:GetServiceCapabilitiesResponse><tr2:Capabilities>"
            b"<tr2:StreamingCapabilities RTSPStreaming='true' RTSPWebSocketUri='wss:/ws?a=1&amp;b'>"
            b"</tr2:StreamingCapabilities></tr2:Capabilities></tr2:GetServiceCapabilitiesResponse>"
            b"</e:Body></e:Envelope>")
    result = FORWARD.rewrite(body, SOAP)
    assert result.body == body.replace(b"'wss:/ws?a=1&amp;b'", b"'wss:/devices/cam7/ws?a=1&amp;b'")
    assert FORWARD.reversed().rewrite(result.body, SOAP).body == body
    # without a prefix change there is nothing to do for a host-less URI
    same = UriRewriter(UriRule.of(CAMERA, "https://cloud.example"))
    assert same.rewrite(body, SOAP).count == 0


def test_rule_values_refuse_bad_input() -> None:
    """Rules and origins raise our ConfigurationError with the offending value."""
    for bad in ("192.168.1.20", "http://", "http://a b", "http://[::1", "http://h:99999",
                "http://u@h", "foo://h"):
        with pytest.raises(ConfigurationError):
            UriRule.of(bad, CLOUD)
    with pytest.raises(ConfigurationError):
        UriRule.of(CAMERA, "https://cloud.example/pre fix")
    with pytest.raises(ConfigurationError):
        UriRule.of(CAMERA, "https://cloud.example/a?q")
    with pytest.raises(ConfigurationError):
        UriRewriter([CAMERA])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        UriRewriter(UriRule.of(CAMERA, CLOUD), fields="all")  # type: ignore[arg-type]
    assert UriRule.of(CAMERA, CLOUD + "/").target_prefix == "/devices/cam7"


# --------------------------------------------------------------------------- property tests

_SEGMENT = st.text("abcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=1, max_size=8)
_PATHS = st.lists(_SEGMENT, max_size=3).map(lambda p: "".join("/" + s for s in p))
_QUERY = st.one_of(st.just(""), st.lists(_SEGMENT, min_size=1, max_size=3).map(
    lambda q: "?" + "&amp;".join(q)))
_OTHER_ORIGINS = st.sampled_from(["http://192.168.1.21", "http://192.168.1.20:8080",
                                  "https://192.168.1.20", "rtsp://192.168.1.20",
                                  "http://cam.example"])
_WS = st.sampled_from(["", " ", "\n  ", "\t"])


@st.composite
def _documents(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Pieces of a document and the same pieces as the forward rewrite must make them."""
    pieces: list[str] = []
    expected: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["xaddr", "other", "namespace", "text", "comment", "cdata",
                                     "capability"]))
        path = draw(_PATHS) + draw(_QUERY)
        lead, trail = draw(_WS), draw(_WS)
        if kind == "xaddr":
            before = f"<tds:Service><tds:XAddr>{lead}http://192.168.1.20{path}{trail}"
            after = f"<tds:Service><tds:XAddr>{lead}https://cloud.example:8443/devices/cam7{path}{trail}"
            pieces.append(before + "</tds:XAddr></tds:Service>")
            expected.append(after + "</tds:XAddr></tds:Service>")
            continue
        if kind == "other":
            piece = (f"<tds:Service><tds:XAddr>{lead}{draw(_OTHER_ORIGINS)}{path}{trail}"
                     "</tds:XAddr></tds:Service>")
        elif kind == "namespace":
            piece = f"<tds:Namespace>http://192.168.1.20{path}</tds:Namespace>"
        elif kind == "text":
            piece = f"<tt:Name>http://192.168.1.20{path} &lt;&gt; \u00e9</tt:Name>"
        elif kind == "comment":
            # "--" is not allowed inside an XML comment: such a body is malformed
            piece = f"<!-- <tds:XAddr>http://192.168.1.20{path.replace('-', '_')}</tds:XAddr> -->"
        elif kind == "cdata":
            piece = f"<tt:Note><![CDATA[<tt:XAddr>http://192.168.1.20{path}</tt:XAddr>]]></tt:Note>"
        else:
            piece = f'<tr2:StreamingCapabilities RTSPWebSocketUri="http://192.168.1.21{path}"/>'
        pieces.append(piece)
        expected.append(piece)
    return pieces, expected


def _wrap(pieces: list[str]) -> bytes:
    return (f'<?xml version="1.0"?>\n<env:Envelope {NS} '
            'xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"><env:Body>'
            f"<tds:GetServicesResponse>{''.join(pieces)}</tds:GetServicesResponse>"
            "</env:Body></env:Envelope>\n").encode()


@settings(max_examples=200, deadline=None)
@given(_documents())
def test_dev_r16_property_only_the_uri_spans_change(doc: tuple[list[str], list[str]]) -> None:
    """DEV-R16: random documents with URIs in random places: only those spans change."""
    pieces, expected = doc
    body = _wrap(pieces)
    result = FORWARD.rewrite(body, SOAP)
    assert result.body == _wrap(expected)
    assert result.count == sum(a != b for a, b in zip(pieces, expected, strict=True))
    assert_only_uris_changed(body, result.body)


@settings(max_examples=200, deadline=None)
@given(_documents())
def test_dev_r16_r17_property_forward_then_reverse_is_the_original(
    doc: tuple[list[str], list[str]],
) -> None:
    """DEV-R16, DEV-R17: the reversed rewriter undoes the forward rewrite exactly."""
    body = _wrap(doc[0])
    there = FORWARD.rewrite(body, SOAP).body
    assert FORWARD.reversed().rewrite(there, SOAP).body == body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([b"<tds:XAddr>", b"<tt:XAddr>", b"</tds:XAddr>",
                                                 b"http://192.168.1.20/", b"<![CDATA[", b"]]>"]))
def test_dev_r16_property_junk_never_raises(junk: bytes, needle: bytes) -> None:
    """DEV-R16: any octets give a result; a body that is not rewritten comes back unchanged."""
    body = GET_SERVICES[:400] + junk + needle + GET_SERVICES[400:]
    result = FORWARD.rewrite(body, SOAP)
    if result.count == 0:
        assert result.body == body
    else:
        parse_xml(result.body)


# --------------------------------------------------------------------------- forwarding headers

def test_dev_r17_forwarding_headers_spec_example() -> None:
    """DEV-R17: Forwarded (RFC 7239, IPv6 and ports quoted) and X-Forwarded-* for the device."""
    headers = forwarding_headers(Origin.parse("https://vms.example.com"), client="2001:db8::7",
                                 client_port=52100, prefix="/devices/cam7")
    assert headers == (
        (b"forwarded", b'for="[2001:db8::7]:52100";proto=https;host=vms.example.com'),
        (b"x-forwarded-for", b"2001:db8::7"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"vms.example.com"),
        (b"x-forwarded-port", b"443"),
        (b"x-forwarded-prefix", b"/devices/cam7"),
    )


def test_dev_r17_forwarding_headers_ports_ipv4_and_no_client() -> None:
    """DEV-R17: a non-default port goes into host (quoted); IPv4 for is a token."""
    headers = dict(forwarding_headers(Origin.parse("http://cloud.example:8080"),
                                      client="192.0.2.7", by="_broker"))
    assert headers[b"forwarded"] == b'for=192.0.2.7;by=_broker;proto=http;host="cloud.example:8080"'
    assert headers[b"x-forwarded-host"] == b"cloud.example:8080"
    assert headers[b"x-forwarded-port"] == b"8080"
    assert b"x-forwarded-prefix" not in headers
    bare = dict(forwarding_headers(Origin.parse("https://[2001:db8::1]:8443")))
    assert bare[b"forwarded"] == b'proto=https;host="[2001:db8::1]:8443"'
    assert b"x-forwarded-for" not in bare
    with pytest.raises(ConfigurationError):
        forwarding_headers(Origin.parse("https://a"), client="not an address")
    with pytest.raises(ConfigurationError):
        forwarding_headers(Origin.parse("https://a"), prefix="/a b")


def test_dev_r17_untrusted_forwarding_headers_are_dropped() -> None:
    """DEV-R17, DEV-R15: a broker drops forwarding headers it received before adding its own."""
    received = [(b"Host", b"x"), (b"Forwarded", b"for=1.2.3.4"), (b"X-Forwarded-Host", b"evil"),
                (b"x-forwarded-prefix", b"/x"), (b"content-type", b"text/xml")]
    assert without_forwarding_headers(received) == [(b"Host", b"x"), (b"content-type", b"text/xml")]


def test_dev_r14_parse_forwarded_round_trip() -> None:
    """DEV-R14 (2): the device end reads what the broker sent."""
    for origin, client, port in (("https://vms.example.com", "2001:db8::7", 52100),
                                 ("http://cloud.example:8080", "192.0.2.1", None)):
        headers = forwarding_headers(Origin.parse(origin), client=client, client_port=port,
                                     prefix="/devices/cam7")
        (element,) = parse_forwarded(dict(headers)[b"forwarded"])
        assert element.proto == Origin.parse(origin).scheme
        assert element.host == Origin.parse(origin).authority
        assert element.for_ == (f"[{client}]:{port}" if port else client)
        assert public_origin(headers) == PublicOrigin(Origin.parse(origin), "/devices/cam7")


def test_dev_r14_parse_forwarded_elements() -> None:
    """DEV-R14: several hops, case-insensitive names, quoted-pairs, whitespace, unknown params."""
    value = b'for=192.0.2.43, For="[2001:db8:cafe::17]";PROTO=HTTPS ;by=unknown;ext="a\\"b",for=_x'
    assert parse_forwarded(value) == (
        ForwardedElement(for_="192.0.2.43"),
        ForwardedElement(for_="[2001:db8:cafe::17]", proto="https", by="unknown"),
        ForwardedElement(for_="_x"),
    )
    assert parse_forwarded("host=a") == (ForwardedElement(host="a"),)


@pytest.mark.parametrize("value", [
    b"", b"for", b"for=", b"=x", b"for=a;for=b", b'for="unterminated', b"for=a,,for=b",
    b"for=a;", b"for=a b", b"for=\xff", b"for=" + b"a" * 5000,
    b",".join([b"for=a"] * 17), b"for=a,", b'for="a"b',
])
def test_dev_r14_parse_forwarded_refuses_junk(value: bytes) -> None:
    """DEV-R14: malformed or oversized Forwarded values raise RemoteProtocolError (400)."""
    with pytest.raises(RemoteProtocolError) as info:
        parse_forwarded(value)
    assert info.value.http_status == 400


def test_dev_r14_public_origin_fallbacks() -> None:
    """DEV-R14 (2): the last Forwarded element wins; X-Forwarded-Proto/-Host otherwise."""
    assert public_origin([(b"content-type", b"text/xml")]) is None
    two = [(b"forwarded", b"host=evil.example;proto=http"),
           (b"Forwarded", b'host="vms.example:8443";proto=https')]
    assert public_origin(two) == PublicOrigin(Origin("https", "vms.example", 8443))
    x = [(b"X-Forwarded-Proto", b"https"), (b"X-Forwarded-Host", b"vms.example, other"),
         (b"X-Forwarded-Prefix", b"/devices/cam7/")]
    assert public_origin(x) == PublicOrigin(Origin("https", "vms.example", 443), "/devices/cam7")
    assert public_origin([(b"forwarded", b"host=vms.example")], default_scheme="https") == \
        PublicOrigin(Origin("https", "vms.example", 443))
    for bad in ([(b"forwarded", b"host=a b")], [(b"x-forwarded-host", b"a@b")],
                [(b"x-forwarded-host", b"a"), (b"x-forwarded-host", b"b")],
                [(b"x-forwarded-host", b"a"), (b"x-forwarded-prefix", b"/a?b")],
                [(b"forwarded", b'host="[::1"')]):
        with pytest.raises(RemoteProtocolError):
            public_origin(bad)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_dev_r14_parse_forwarded_property_our_errors_only(value: bytes) -> None:
    """DEV-R14: any octets parse into elements or raise RemoteProtocolError, nothing else."""
    try:
        elements = parse_forwarded(value)
    except RemoteProtocolError:
        return
    assert 1 <= len(elements) <= 16


def test_cloud_rewriter_memo_follows_the_client_and_its_host() -> None:
    """DEV-R17: the forwarding headers are computed once per client and Host, and a client-sent
    X-Forwarded-Host or Authorization never passes; the memo keeps each client apart."""
    from uplink62676.frontdoor import PathRouter, PeerInfo
    from uplink62676.frontdoor.events import RequestRouted
    from uplink62676.frontdoor.rewrite import CloudRewriter

    rewriter = CloudRewriter()
    route = PathRouter()("GET", "/devices/cam7/onvif/device_service", "a.example:8080")

    def request(authority: str | None, address: str, port: int) -> RequestRouted:
        return RequestRouted(1, "GET", "/devices/cam7/onvif/device_service", authority,
                             ((b"Authorization", b"Digest x"), (b"x-forwarded-host", b"evil"),
                              (b"accept", b"*/*")), route, peer=PeerInfo(address, port))

    for _ in range(2):  # the second time from the memo
        a = rewriter.request_headers(request("a.example:8080", "192.0.2.1", 1000))
        b = rewriter.request_headers(request("b.example", "192.0.2.2", 2000))
        none = rewriter.request_headers(request(None, "192.0.2.2", 2000))
        assert (b"accept", b"*/*") in a and not any(n.lower() == b"authorization" for n, _ in a)
        assert dict(a)[b"x-forwarded-host"] == b"a.example:8080"
        assert dict(a)[b"x-forwarded-for"] == b"192.0.2.1"
        assert dict(b)[b"x-forwarded-host"] == b"b.example"
        assert dict(b)[b"x-forwarded-port"] == b"80"
        assert none == ((b"accept", b"*/*"),)
