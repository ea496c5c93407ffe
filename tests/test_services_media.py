"""Media (ver10) and Media2 (ver20) for a list of profiles (services/media.py; media.md §1-3).

Element order follows media.wsdl (ver10 and ver20) and onvif.xsd; URIs are built
from the request origin (DEV-29, DEV-R14, UPL-R21).  zeep interop lives in
tests/test_services_device.py.
"""

from __future__ import annotations

import pytest
from lxml import etree

from uplink62676.errors import ConfigurationError, SoapFault
from uplink62676.namespaces import TR2, TRT, TT
from uplink62676.services.media import MediaProfile, MediaService, media_access_class
from uplink62676.soap import SOAP_CONTENT_TYPE, parse_response

ORIGIN = {"scheme": "https", "authority": "cam7.uplink.example:8443"}
M1, M2, T = f"{{{TRT}}}", f"{{{TR2}}}", f"{{{TT}}}"
PROFILES = [
    MediaProfile("profile_1", "Main", "vs0", "/media/profile_1"),
    MediaProfile("profile_2", "Sub", "vs0", "/media/profile_2", width=640, height=360,
                 bitrate=512, fixed=False),
    MediaProfile("profile_3", "HEVC", "vs1", "/media/profile_3", encoding="H265"),
]


def _envelope(inner: str) -> bytes:
    return (f'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
            f'xmlns:trt="{TRT}" xmlns:tr2="{TR2}" xmlns:tt="{TT}"><env:Body>{inner}'
            f"</env:Body></env:Envelope>").encode()


def _call(inner: str, *, v2: bool = False, svc: MediaService | None = None,
          **kw: object) -> etree._Element:
    service = svc or MediaService(PROFILES)
    handle = service.handle_media2 if v2 else service.handle_media
    resp = handle(_envelope(inner), SOAP_CONTENT_TYPE, **{**ORIGIN, **kw})  # type: ignore[arg-type]
    return parse_response(resp.body, status=resp.status).body


def _fault(inner: str, *, v2: bool = False, **kw: object) -> SoapFault:
    with pytest.raises(SoapFault) as info:
        _call(inner, v2=v2, **kw)
    return info.value


def _tags(elem: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in elem]


_STREAM1 = ("<trt:GetStreamUri><trt:StreamSetup><tt:Stream>{stream}</tt:Stream><tt:Transport>"
            "<tt:Protocol>{proto}</tt:Protocol></tt:Transport></trt:StreamSetup>"
            "<trt:ProfileToken>{token}</trt:ProfileToken></trt:GetStreamUri>")


# --------------------------------------------------------------------------- Media ver10


def test_media1_get_profiles_structure() -> None:
    """DEV-29 (media.wsdl ver10): tt:Profile with token/fixed, Name, VideoSourceConfiguration,
    VideoEncoderConfiguration in onvif.xsd order; a shared source counts its uses; an H.265
    profile has no ver10 encoder (tt:VideoEncoding cannot say H265)."""
    body = _call("<trt:GetProfiles/>")
    profiles = body.findall(M1 + "Profiles")
    assert [(p.get("token"), p.get("fixed")) for p in profiles] == [
        ("profile_1", "true"), ("profile_2", "false"), ("profile_3", "true")]
    main = profiles[0]
    assert _tags(main) == ["Name", "VideoSourceConfiguration", "VideoEncoderConfiguration"]
    vsc = main.find(T + "VideoSourceConfiguration")
    assert vsc.get("token") == "vs0_cfg"
    assert _tags(vsc) == ["Name", "UseCount", "SourceToken", "Bounds"]
    assert vsc.findtext(T + "UseCount") == "2"
    assert vsc.findtext(T + "SourceToken") == "vs0"
    assert dict(vsc.find(T + "Bounds").attrib) == {"x": "0", "y": "0", "width": "1920",
                                                   "height": "1080"}
    enc = main.find(T + "VideoEncoderConfiguration")
    assert _tags(enc) == ["Name", "UseCount", "Encoding", "Resolution", "Quality", "RateControl",
                          "H264", "Multicast", "SessionTimeout"]
    assert enc.findtext(T + "Encoding") == "H264"
    assert [e.text for e in enc.find(T + "Resolution")] == ["1920", "1080"]
    assert _tags(enc.find(T + "RateControl")) == ["FrameRateLimit", "EncodingInterval",
                                                  "BitrateLimit"]
    assert _tags(enc.find(T + "Multicast")) == ["Address", "Port", "TTL", "AutoStart"]
    assert _tags(profiles[2]) == ["Name", "VideoSourceConfiguration"]


def test_media1_get_profile_and_unknown_token() -> None:
    """MED-1 (ver10 counterpart): GetProfile answers one trt:Profile; an unknown token is
    env:Sender / ter:InvalidArgVal / ter:NoProfile (HTTP 400)."""
    body = _call("<trt:GetProfile><trt:ProfileToken>profile_2</trt:ProfileToken>"
                 "</trt:GetProfile>")
    assert body.find(M1 + "Profile").get("token") == "profile_2"
    fault = _fault("<trt:GetProfile><trt:ProfileToken>nope</trt:ProfileToken></trt:GetProfile>")
    assert (fault.code, fault.subcodes, fault.http_status) == (
        "env:Sender", ("ter:InvalidArgVal", "ter:NoProfile"), 400)


def test_media1_stream_uri_from_origin_host() -> None:
    """UPL-R21, DEV-R14, media.md §3: tt:MediaUri = Uri, InvalidAfterConnect,
    InvalidAfterReboot, Timeout; RTP-Unicast over RTSP or UDP -> rtsp://<origin host>:<port>;
    over HTTP -> the web service's origin (MED-6, MED-R2)."""
    body = _call(_STREAM1.format(stream="RTP-Unicast", proto="RTSP", token="profile_1"))
    uri = body.find(M1 + "MediaUri")
    assert _tags(uri) == ["Uri", "InvalidAfterConnect", "InvalidAfterReboot", "Timeout"]
    assert [e.text for e in uri] == ["rtsp://cam7.uplink.example:554/media/profile_1", "false",
                                     "false", "PT0S"]
    udp = _call(_STREAM1.format(stream="RTP-Unicast", proto="UDP", token="profile_2"),
                svc=MediaService(PROFILES, rtsp_port=8554))
    assert udp.findtext(f"{M1}MediaUri/{T}Uri") == "rtsp://cam7.uplink.example:8554/media/profile_2"
    http = _call(_STREAM1.format(stream="RTP-Unicast", proto="HTTP", token="profile_1"))
    assert http.findtext(f"{M1}MediaUri/{T}Uri") == (
        "https://cam7.uplink.example:8443/media/profile_1")
    v6 = _call(_STREAM1.format(stream="RTP-Unicast", proto="RTSP", token="profile_1"),
               authority="[2001:db8::7]:8443")
    assert v6.findtext(f"{M1}MediaUri/{T}Uri") == "rtsp://[2001:db8::7]:554/media/profile_1"


def test_media1_stream_uri_faults() -> None:
    """media.md §3 faults: multicast and the deprecated TCP -> ter:InvalidStreamSetup (the
    capabilities say RTPMulticast and RTP_TCP false); unknown token -> ter:NoProfile; a
    missing StreamSetup -> ter:InvalidArgs."""
    for stream, proto in (("RTP-Multicast", "UDP"), ("RTP-Unicast", "TCP")):
        fault = _fault(_STREAM1.format(stream=stream, proto=proto, token="profile_1"))
        assert fault.subcodes == ("ter:InvalidArgVal", "ter:InvalidStreamSetup")
    fault = _fault(_STREAM1.format(stream="RTP-Unicast", proto="RTSP", token="x"))
    assert fault.subcodes == ("ter:InvalidArgVal", "ter:NoProfile")
    fault = _fault("<trt:GetStreamUri><trt:ProfileToken>profile_1</trt:ProfileToken>"
                   "</trt:GetStreamUri>")
    assert fault.subcodes == ("ter:InvalidArgs",)


def test_media1_snapshot_uri_and_capabilities() -> None:
    """MED-7 (ver10 counterpart), DEV-29: the snapshot URI is under the request origin;
    trt:Capabilities has ProfileCapabilities then StreamingCapabilities."""
    body = _call("<trt:GetSnapshotUri><trt:ProfileToken>profile_1</trt:ProfileToken>"
                 "</trt:GetSnapshotUri>", scheme="http", authority="vms.example")
    assert body.findtext(f"{M1}MediaUri/{T}Uri") == "http://vms.example/onvif/snapshot?profile=profile_1"
    caps = _call("<trt:GetServiceCapabilities/>").find(M1 + "Capabilities")
    assert caps.get("SnapshotUri") == "true"
    assert _tags(caps) == ["ProfileCapabilities", "StreamingCapabilities"]
    assert caps.find(M1 + "ProfileCapabilities").get("MaximumNumberOfProfiles") == "3"
    assert caps.find(M1 + "StreamingCapabilities").get("RTP_RTSP_TCP") == "true"
    fault = _fault("<trt:GetSnapshotUri><trt:ProfileToken>profile_1</trt:ProfileToken>"
                   "</trt:GetSnapshotUri>", svc=MediaService(PROFILES, snapshots=False))
    assert fault.subcodes == ("ter:ActionNotSupported",)


# --------------------------------------------------------------------------- Media2


def test_media2_get_profiles_without_type_med1_med2() -> None:
    """MED-1, MED-2: without Token all profiles, without Type no Configurations."""
    body = _call("<tr2:GetProfiles/>", v2=True)
    profiles = body.findall(M2 + "Profiles")
    assert [p.get("token") for p in profiles] == ["profile_1", "profile_2", "profile_3"]
    assert all(_tags(p) == ["Name"] for p in profiles)
    assert profiles[0].findtext(M2 + "Name") == "Main"


def test_media2_get_profiles_types_med2_med_r1() -> None:
    """MED-2, MED-R1: Type selects configurations in ConfigurationSet order; All means all;
    unknown Type values are ignored; tt:VideoEncoder2Configuration in onvif.xsd order."""
    body = _call("<tr2:GetProfiles><tr2:Type>All</tr2:Type><tr2:Type>Bogus</tr2:Type>"
                 "</tr2:GetProfiles>", v2=True)
    main = body.find(M2 + "Profiles")
    confs = main.find(M2 + "Configurations")
    assert _tags(confs) == ["VideoSource", "VideoEncoder"]
    enc = confs.find(M2 + "VideoEncoder")
    assert (enc.get("token"), enc.get("GovLength"), enc.get("Profile")) == (
        "profile_1_enc", "50", "Main")
    assert _tags(enc) == ["Name", "UseCount", "Encoding", "Resolution", "RateControl", "Quality"]
    assert _tags(enc.find(T + "RateControl")) == ["FrameRateLimit", "BitrateLimit"]
    assert confs.find(M2 + "VideoSource").findtext(T + "SourceToken") == "vs0"
    hevc = body.findall(M2 + "Profiles")[2]
    assert hevc.findtext(f"{M2}Configurations/{M2}VideoEncoder/{T}Encoding") == "H265"
    only = _call("<tr2:GetProfiles><tr2:Type>VideoEncoder</tr2:Type></tr2:GetProfiles>", v2=True)
    assert _tags(only.find(f"{M2}Profiles/{M2}Configurations")) == ["VideoEncoder"]
    unknown = _call("<tr2:GetProfiles><tr2:Type>Bogus</tr2:Type></tr2:GetProfiles>", v2=True)
    assert _tags(unknown.find(M2 + "Profiles")) == ["Name"]


def test_media2_get_profiles_token_med1() -> None:
    """MED-1: with Token exactly that profile, or ter:InvalidArgVal / ter:NoProfile."""
    body = _call("<tr2:GetProfiles><tr2:Token>profile_2</tr2:Token></tr2:GetProfiles>", v2=True)
    assert [p.get("token") for p in body.findall(M2 + "Profiles")] == ["profile_2"]
    fault = _fault("<tr2:GetProfiles><tr2:Token>nope</tr2:Token></tr2:GetProfiles>", v2=True)
    assert (fault.code, fault.subcodes) == ("env:Sender", ("ter:InvalidArgVal", "ter:NoProfile"))


@pytest.mark.parametrize(("protocol", "uri"), [
    ("RtspUnicast", "rtsp://cam7.uplink.example:554/media/profile_1"),
    ("RTSP", "rtsp://cam7.uplink.example:554/media/profile_1"),
    ("RtspOverHttp", "https://cam7.uplink.example:8443/media/profile_1"),
])
def test_media2_stream_uri_med3_med6(protocol: str, uri: str) -> None:
    """MED-3, MED-5, MED-6, MED-R2, UPL-R21: tr2:Uri from the origin; RtspOverHttp on the
    web service's authority; at most 128 octets."""
    body = _call(f"<tr2:GetStreamUri><tr2:Protocol>{protocol}</tr2:Protocol>"
                 f"<tr2:ProfileToken>profile_1</tr2:ProfileToken></tr2:GetStreamUri>", v2=True)
    assert _tags(body) == ["Uri"]
    assert body.findtext(M2 + "Uri") == uri
    assert len(uri.encode()) <= 128


def test_media2_stream_uri_faults() -> None:
    """media.md §3: an unsupported Protocol -> ter:InvalidStreamSetup; unknown token ->
    ter:NoProfile; a missing Protocol -> ter:InvalidArgs."""
    for protocol in ("RtspMulticast", "RtspsUnicast", "Nonsense"):
        fault = _fault(f"<tr2:GetStreamUri><tr2:Protocol>{protocol}</tr2:Protocol>"
                       "<tr2:ProfileToken>profile_1</tr2:ProfileToken></tr2:GetStreamUri>",
                       v2=True)
        assert (fault.code, fault.subcodes) == (
            "env:Sender", ("ter:InvalidArgVal", "ter:InvalidStreamSetup"))
    fault = _fault("<tr2:GetStreamUri><tr2:Protocol>RTSP</tr2:Protocol>"
                   "<tr2:ProfileToken>x</tr2:ProfileToken></tr2:GetStreamUri>", v2=True)
    assert fault.subcodes == ("ter:InvalidArgVal", "ter:NoProfile")
    fault = _fault("<tr2:GetStreamUri><tr2:ProfileToken>profile_1</tr2:ProfileToken>"
                   "</tr2:GetStreamUri>", v2=True)
    assert fault.subcodes == ("ter:InvalidArgs",)


def test_media2_snapshot_uri_med7() -> None:
    """MED-7, DEV-29: the snapshot URI is under the origin; a remote token is kept readable."""
    svc = MediaService([MediaProfile("32010201001320000001:prof_1", "Main",
                                     "32010201001320000001:vs_1", "/media/1/main")])
    body = _call("<tr2:GetSnapshotUri><tr2:ProfileToken>32010201001320000001:prof_1"
                 "</tr2:ProfileToken></tr2:GetSnapshotUri>", v2=True, svc=svc)
    assert body.findtext(M2 + "Uri") == (
        "https://cam7.uplink.example:8443/onvif/snapshot?profile=32010201001320000001:prof_1")


def test_media2_capabilities_section_3_2() -> None:
    """media.md §3.2, MED-3: tr2:Capabilities with SnapshotUri, ProfileCapabilities then
    StreamingCapabilities (RTSPStreaming, no RTP_TCP in Media2)."""
    caps = _call("<tr2:GetServiceCapabilities/>", v2=True).find(M2 + "Capabilities")
    assert caps.get("SnapshotUri") == "true"
    assert _tags(caps) == ["ProfileCapabilities", "StreamingCapabilities"]
    assert caps.find(M2 + "ProfileCapabilities").get("ConfigurationsSupported") == (
        "VideoSource VideoEncoder")
    streaming = caps.find(M2 + "StreamingCapabilities")
    assert streaming.get("RTSPStreaming") == "true"
    assert streaming.get("RTP_TCP") is None


# --------------------------------------------------------------------------- common


def test_wrong_namespace_and_unknown_operations_are_not_supported() -> None:
    """CFG-26: a Media2 operation at the Media service (and the reverse) and operations not
    implemented get env:Receiver / ter:ActionNotSupported."""
    for inner, v2 in (("<tr2:GetProfiles/>", False), ("<trt:GetProfiles/>", True),
                      ("<trt:GetVideoSources/>", False), ("<tr2:CreateProfile/>", True)):
        fault = _fault(inner, v2=v2)
        assert (fault.code, fault.subcodes) == ("env:Receiver", ("ter:ActionNotSupported",))


def test_access_classes_and_requester() -> None:
    """media.md §1, UPL-41: GetServiceCapabilities PRE_AUTH, the rest READ_MEDIA; Anonymous
    may read capabilities but not profiles."""
    assert media_access_class(f"{{{TR2}}}GetServiceCapabilities") == "PRE_AUTH"
    assert media_access_class("GetStreamUri") == "READ_MEDIA"
    assert _call("<trt:GetServiceCapabilities/>", requester="Anonymous") is not None
    fault = _fault("<tr2:GetProfiles/>", v2=True, requester="Anonymous")
    assert (fault.subcodes, fault.http_status) == (("ter:NotAuthorized",), 400)
    assert _call("<tr2:GetProfiles/>", v2=True, requester="User") is not None


def test_profile_and_service_validation() -> None:
    """Values refuse what would make invalid answers: relative paths, empty or over-long
    tokens (tt:ReferenceToken, 64), duplicate tokens, a port out of range."""
    with pytest.raises(ConfigurationError):
        MediaProfile("p", "n", "vs", "media/p")
    with pytest.raises(ConfigurationError):
        MediaProfile("", "n", "vs", "/media/p")
    with pytest.raises(ConfigurationError):
        MediaProfile("x" * 65, "n", "vs", "/media/p")
    with pytest.raises(ConfigurationError):
        MediaProfile("p", "n", "vs", "/media/p", width=0)
    with pytest.raises(ConfigurationError):
        MediaService([PROFILES[0], PROFILES[0]])
    with pytest.raises(ConfigurationError):
        MediaService(PROFILES, rtsp_port=0)


def test_simulated_vss_profiles_med1_med5() -> None:
    """MED-1, MED-5, TOK-7: every simulated camera contributes its prof_1/prof_2 remote tokens
    (video source vs_1); their stream URIs stay within 128 octets."""
    from uplink62676.app.simulate import SimulatedVss

    vss = SimulatedVss(3, change_rate=0.0)
    body = _call("<tr2:GetProfiles><tr2:Type>VideoSource</tr2:Type></tr2:GetProfiles>", v2=True,
                 svc=vss.media)
    tokens = [p.get("token") for p in body.findall(M2 + "Profiles")]
    assert tokens == [t for cam in vss.cameras for t in cam.tokens()[1:]]
    sources = {p.findtext(f"{M2}Configurations/{M2}VideoSource/{T}SourceToken")
               for p in body.findall(M2 + "Profiles")}
    assert sources == {cam.tokens()[0] for cam in vss.cameras}
    for token in tokens:
        uri = _call(f"<tr2:GetStreamUri><tr2:Protocol>RTSP</tr2:Protocol><tr2:ProfileToken>"
                    f"{token}</tr2:ProfileToken></tr2:GetStreamUri>", v2=True,
                    svc=vss.media).findtext(M2 + "Uri")
        assert len(uri.encode()) <= 128
