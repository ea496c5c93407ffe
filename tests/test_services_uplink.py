"""Tests of the uplink configuration service (config-service.md sections 3, 4, 6, 7)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from uplink62676.config import Capabilities, Status, UplinkConfiguration
from uplink62676.errors import SoapFault
from uplink62676.namespaces import ENV, TUP
from uplink62676.services.access import AccessClass, AccessPolicy
from uplink62676.services.uplink import (
    ChangeKind,
    ConfigurationChange,
    Profile,
    StaticSecurityLookup,
    UplinkService,
)
from uplink62676.soap import SOAP_CONTENT_TYPE, SoapResponse, parse_fault, parse_response

ADMIN = "Administrator"
SECURITY = StaticSecurityLookup(
    certificates={"devcert-01", "devcert-02"},
    validation_policies={"cloud-ca-policy"},
    authorization_servers={"as-1"},
)


def envelope(body: str) -> bytes:
    return (
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl">'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def config_xml(
    address: str = "https://cloud.example.com/uplink",
    *,
    cert: str | None = "devcert-01",
    level: str = "Operator",
    status: str | None = None,
    policy: str | None = None,
    auth: str | None = None,
    error: str | None = None,
    extra: str = "",
) -> str:
    parts = [f"<tup:RemoteAddress>{address}</tup:RemoteAddress>"]
    if cert is not None:
        parts.append(f"<tup:CertificateID>{cert}</tup:CertificateID>")
    parts.append(f"<tup:UserLevel>{level}</tup:UserLevel>")
    if status is not None:
        parts.append(f"<tup:Status>{status}</tup:Status>")
    if policy is not None:
        parts.append(f"<tup:CertPathValidationPolicyID>{policy}</tup:CertPathValidationPolicyID>")
    if auth is not None:
        parts.append(f"<tup:AuthorizationServer>{auth}</tup:AuthorizationServer>")
    if error is not None:
        parts.append(f"<tup:Error>{error}</tup:Error>")
    return "<tup:Configuration>" + "".join(parts) + extra + "</tup:Configuration>"


def set_uplink(**kwargs: object) -> bytes:
    return envelope("<tup:SetUplink>" + config_xml(**kwargs) + "</tup:SetUplink>")  # type: ignore[arg-type]


def delete_uplink(address: str) -> bytes:
    return envelope(
        f"<tup:DeleteUplink><tup:RemoteAddress>{address}</tup:RemoteAddress></tup:DeleteUplink>")


GET_UPLINKS = envelope("<tup:GetUplinks/>")
GET_CAPS = envelope("<tup:GetServiceCapabilities/>")


class Recorder:
    def __init__(self) -> None:
        self.changes: list[ConfigurationChange] = []

    def __call__(self, change: ConfigurationChange) -> None:
        self.changes.append(change)


def make(**kwargs: object) -> UplinkService:
    kwargs.setdefault("security", SECURITY)
    return UplinkService(**kwargs)  # type: ignore[arg-type]


def call(service: UplinkService, body: bytes, level: str = ADMIN) -> SoapResponse:
    return service.handle(body, content_type=SOAP_CONTENT_TYPE, user_level=level)


def ok(service: UplinkService, body: bytes, level: str = ADMIN) -> etree._Element:
    resp = call(service, body, level)
    assert resp.status == 200, resp.body
    assert resp.headers == (("content-type", SOAP_CONTENT_TYPE),)
    return parse_response(resp.body).body


def fault(service: UplinkService, body: bytes, level: str = ADMIN) -> SoapFault:
    resp = call(service, body, level)
    f = parse_fault(resp.body, status=resp.status)
    assert resp.status == (400 if f.code == "env:Sender" else 500)  # CFG-R12
    return f


def chain(f: SoapFault) -> tuple[str, ...]:
    return (f.code, *f.subcodes)


def uplinks(service: UplinkService, level: str = ADMIN) -> list[etree._Element]:
    return list(ok(service, GET_UPLINKS, level))


def text(elem: etree._Element, name: str) -> str | None:
    return elem.findtext(f"{{{TUP}}}{name}")


# --------------------------------------------------------------------------- spec examples


def test_get_service_capabilities_spec_example() -> None:
    """CFG-1, CFG-11, CFG-12: the capabilities answer of config-service.md 3.1."""
    caps = Capabilities(4, ("https", "wss"), ("mTLS", "AccessToken"), True)
    body = ok(make(capabilities=caps), GET_CAPS, level="Anonymous")
    assert body.tag == f"{{{TUP}}}GetServiceCapabilitiesResponse"
    (elem,) = list(body)
    assert dict(elem.attrib) == {
        "MaxUplinks": "4", "Protocols": "https wss",
        "AuthorizationModes": "mTLS AccessToken", "StreamingOverUplink": "true"}


def test_set_uplink_spec_example_then_get_and_delete() -> None:
    """CFG-2, CFG-4, CFG-5, CFG-8, CFG-10: the SetUplink/GetUplinks/DeleteUplink examples."""
    svc = make()
    body = ok(svc, envelope(
        "<tup:SetUplink><tup:Configuration>"
        "<tup:RemoteAddress>wss://vms.example.net/uplink/ws</tup:RemoteAddress>"
        "<tup:UserLevel>Operator</tup:UserLevel>"
        "<tup:Status>Connected</tup:Status>"
        "<tup:AuthorizationServer>as-1</tup:AuthorizationServer>"
        "</tup:Configuration></tup:SetUplink>"))
    assert body.tag == f"{{{TUP}}}SetUplinkResponse"
    assert len(body) == 0
    (cfg,) = uplinks(svc)
    assert text(cfg, "RemoteAddress") == "wss://vms.example.net/uplink/ws"
    assert text(cfg, "Status") == "Offline"  # the request's Status was ignored (CFG-5)
    assert svc.configurations[0].authorization_mode == "AccessToken"  # CFG-8
    body = ok(svc, delete_uplink("wss://vms.example.net/uplink/ws"))
    assert body.tag == f"{{{TUP}}}DeleteUplinkResponse"
    assert uplinks(svc) == []


def test_get_uplinks_reports_live_status_and_error() -> None:
    """CFG-2, CFG-3, CFG-R4, UPL-R27: every uplink, live Status always, Error while failing."""
    live = {
        "https://cloud.example.com/uplink": (Status.CONNECTED, None),
        "wss://vms.example.net/uplink/ws": (Status.OFFLINE, "upgrade refused: 401 invalid_token"),
    }
    svc = make(status_provider=lambda address: live[address])
    ok(svc, set_uplink(policy="cloud-ca-policy"))
    ok(svc, set_uplink(address="wss://vms.example.net/uplink/ws", cert=None, auth="as-1",
                       level="Operator"))
    first, second = uplinks(svc, level="User")
    assert [etree.QName(c).localname for c in first] == [
        "RemoteAddress", "CertificateID", "UserLevel", "Status", "CertPathValidationPolicyID"]
    assert text(first, "Status") == "Connected"
    assert text(first, "Error") is None
    assert text(second, "Status") == "Offline"
    assert text(second, "Error") == "upgrade refused: 401 invalid_token"


def test_connecting_status_is_reported() -> None:
    """CFG-3: Connecting is one of the three reported states."""
    svc = make(status_provider=lambda address: (Status.CONNECTING, None))
    ok(svc, set_uplink())
    assert text(uplinks(svc)[0], "Status") == "Connecting"


# --------------------------------------------------------------------------- keying


def test_same_remote_address_replaces_and_keeps_creation_order() -> None:
    """CFG-6, CFG-R4: RemoteAddress is the key; updates keep the creation order."""
    svc = make()
    ok(svc, set_uplink(address="https://a.example/u"))
    ok(svc, set_uplink(address="https://b.example/u"))
    ok(svc, set_uplink(address="https://a.example/u", cert="devcert-02", level="User"))
    listed = uplinks(svc)
    assert [text(c, "RemoteAddress") for c in listed] == ["https://a.example/u",
                                                          "https://b.example/u"]
    assert text(listed[0], "CertificateID") == "devcert-02"
    assert text(listed[0], "UserLevel") == "User"


def test_set_uplink_is_a_whole_replacement() -> None:
    """CFG-R5, CFG-24, OQ-13: an absent optional element is removed, not kept."""
    svc = make()
    ok(svc, set_uplink(policy="cloud-ca-policy"))
    ok(svc, set_uplink())
    (cfg,) = uplinks(svc)
    assert text(cfg, "CertPathValidationPolicyID") is None
    # switching mode works because the old CertificateID is not kept
    ok(svc, set_uplink(cert=None, auth="as-1"))
    (cfg,) = uplinks(svc)
    assert text(cfg, "CertificateID") is None
    assert text(cfg, "AuthorizationServer") == "as-1"


def test_key_comparison_is_exact_after_whitespace_collapse() -> None:
    """CFG-R6, OQ-15: case-sensitive, no URI normalisation; whitespace collapsed."""
    svc = make()
    ok(svc, set_uplink(address="  https://Cloud.example.com/uplink \n"))
    ok(svc, set_uplink(address="https://cloud.example.com/uplink"))
    assert len(uplinks(svc)) == 2
    f = fault(svc, delete_uplink("https://cloud.example.com:443/uplink"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal", "ter:Address")
    ok(svc, delete_uplink(" https://Cloud.example.com/uplink"))
    assert [text(c, "RemoteAddress") for c in uplinks(svc)] == ["https://cloud.example.com/uplink"]


def test_status_and_error_in_request_are_ignored() -> None:
    """CFG-5, CFG-9, CFG-R5: Status and the read-only Error are ignored on SetUplink."""
    recorder = Recorder()
    svc = make(on_change=recorder)
    ok(svc, set_uplink(status="Connected", error="forged"))
    (cfg,) = uplinks(svc)
    assert text(cfg, "Status") == "Offline"
    assert text(cfg, "Error") is None
    assert recorder.changes[0].current is not None
    assert recorder.changes[0].current.status is None
    assert recorder.changes[0].current.error is None


def test_extensions_are_stored_and_returned() -> None:
    """CFG-36: extension elements sent by a client come back untouched."""
    svc = make()
    ok(svc, set_uplink(extra='<v:Proxy xmlns:v="urn:v" v:k="1">p<v:x/></v:Proxy>'))
    proxy = uplinks(svc)[0].find("{urn:v}Proxy")
    assert proxy is not None
    assert proxy.get("{urn:v}k") == "1"
    assert proxy.text == "p"


def test_strings_are_not_restricted() -> None:
    """CFG-22, CFG-23: any characters in strings; UTF-8 in, UTF-8 out."""
    cert = "zertifikat-\u00e4\u20ac-\U0001f512"
    svc = make(security=StaticSecurityLookup(certificates={cert}))
    ok(svc, set_uplink(cert=cert))
    resp = call(svc, GET_UPLINKS)
    assert cert.encode() in resp.body
    assert text(uplinks(svc)[0], "CertificateID") == cert


# --------------------------------------------------------------------------- faults (section 4)


def test_fault_certificate_id_unknown() -> None:
    """CFG-13: CertificateID names no certificate ->
    env:Sender/ter:InvalidArgVal/ter:CertificateID.
    """
    f = fault(make(), set_uplink(cert="nope"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal", "ter:CertificateID")


def test_fault_certificate_id_when_mtls_unsupported() -> None:
    """CFG-13, CFG-R11(4): a CertificateID on a device without mTLS is refused the same way."""
    svc = make(capabilities=Capabilities(4, ("https",), ("AccessToken",)))
    f = fault(svc, set_uplink())
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal", "ter:CertificateID")


def test_fault_validation_policy_unknown() -> None:
    """CFG-14: unknown CertPathValidationPolicyID ->
    ter:InvalidArgVal/ter:CertPathValidationPolicyID.
    """
    f = fault(make(), set_uplink(policy="other-policy"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal", "ter:CertPathValidationPolicyID")


def test_fault_authorization_server_unknown() -> None:
    """CFG-15: unknown AuthorizationServer ->
    ter:InvalidArgVal/ter:AuthorizationServerConfigurationToken.
    """
    f = fault(make(), set_uplink(cert=None, auth="as-9"))
    assert chain(f) == (
        "env:Sender", "ter:InvalidArgVal", "ter:AuthorizationServerConfigurationToken")


def test_fault_authorization_server_when_access_token_unsupported() -> None:
    """CFG-15, CFG-R11(5): access-token mode unsupported (incl. the JWT alias check)."""
    svc = make(capabilities=Capabilities(4, ("https",), ("mTLS",)))
    f = fault(svc, set_uplink(cert=None, auth="as-1"))
    assert chain(f) == (
        "env:Sender", "ter:InvalidArgVal", "ter:AuthorizationServerConfigurationToken")
    svc = make(capabilities=Capabilities(4, ("https",), ("JWT",)))  # OQ-10 alias
    ok(svc, set_uplink(cert=None, auth="as-1"))


@pytest.mark.parametrize(
    "address",
    ["ftp://cloud.example.com/u", "http://cloud.example.com/u", "cloud.example.com/uplink",
     "wss://vms.example.net/ws"],
)
def test_fault_protocol_not_supported(address: str) -> None:
    """CFG-16, UPL-R1: a scheme the device does not offer ->
    ter:InvalidArgs/ter:ProtocolNotSupported.
    """
    svc = make(capabilities=Capabilities(4, ("https",), ("mTLS",)))
    f = fault(svc, set_uplink(address=address))
    assert chain(f) == ("env:Sender", "ter:InvalidArgs", "ter:ProtocolNotSupported")


def test_scheme_comparison_is_case_insensitive() -> None:
    """UPL-R1, CFG-16: HTTPS is https."""
    ok(make(), set_uplink(address="HTTPS://cloud.example.com/uplink"))


def test_old_device_without_protocols_accepts_only_https() -> None:
    """CFG-R2, CFG-16: absent Protocols means https only."""
    svc = make(capabilities=Capabilities(max_uplinks=2))
    ok(svc, set_uplink())
    f = fault(svc, set_uplink(address="wss://vms.example.net/ws"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgs", "ter:ProtocolNotSupported")


def test_fault_missing_authentication() -> None:
    """CFG-17: neither CertificateID nor AuthorizationServer ->
    ter:InvalidArgs/ter:MissingAuthentication.
    """
    f = fault(make(), set_uplink(cert=None))
    assert chain(f) == ("env:Sender", "ter:InvalidArgs", "ter:MissingAuthentication")


def test_fault_ambiguous_authentication() -> None:
    """CFG-7, CFG-18: both present -> ter:InvalidArgs/ter:AmbiguousAuthentication (spec example)."""
    f = fault(make(), set_uplink(auth="as-1"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgs", "ter:AmbiguousAuthentication")
    assert f.reason == "CertificateID and AuthorizationServer must not both be given"


def test_fault_delete_unknown_address() -> None:
    """CFG-19, OQ-16: env:Sender (not ter:Sender) / ter:InvalidArgVal / ter:Address."""
    f = fault(make(), delete_uplink("https://cloud.example.com/uplink"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal", "ter:Address")
    assert f.reason == "RemoteAddress matches no stored uplink configuration"


def test_fault_max_uplinks_reached() -> None:
    """CFG-11, CFG-R7, OQ-14: a new key beyond MaxUplinks -> env:Receiver/ter:Action (HTTP 500)."""
    svc = make(capabilities=Capabilities(2, ("https", "wss"), ("mTLS", "AccessToken")))
    ok(svc, set_uplink(address="https://a.example/u"))
    ok(svc, set_uplink(address="https://b.example/u"))
    f = fault(svc, set_uplink(address="https://c.example/u"))
    assert chain(f) == ("env:Receiver", "ter:Action")
    # replacing an existing key is still fine at the limit
    ok(svc, set_uplink(address="https://a.example/u", level="User"))
    ok(svc, delete_uplink("https://b.example/u"))
    ok(svc, set_uplink(address="https://c.example/u"))


@pytest.mark.parametrize("level", ["Anonymous", "Extended", "Operator Anonymous", "Root", "",
                                   "onvif:Administrator", "PTZControl"])
def test_fault_user_level_invalid(level: str) -> None:
    """CFG-R8, CFG-32, OQ-17: only Administrator/Operator/User (roles only when supported)."""
    f = fault(make(), set_uplink(level=level))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal")


def test_user_roles_accepted_when_supported() -> None:
    """CFG-34, CFG-35, UPL-42: with user roles, UserLevel may list predefined and custom roles."""
    policy = AccessPolicy(roles={"PTZControl": {AccessClass.ACTUATE}}, roles_supported=True)
    svc = make(policy=policy)
    ok(svc, set_uplink(level="onvif:User PTZControl"))
    assert svc.configurations[0].user_level == ("onvif:User", "PTZControl")
    f = fault(svc, set_uplink(level="onvif:User Unknown"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal")


def test_check_order_follows_recommendation() -> None:
    """CFG-R11: first failing check wins: scheme, auth presence, cert, AS, policy, level, capacity.
    """
    svc = make(capabilities=Capabilities(1, ("https",), ("mTLS", "AccessToken")))
    ok(svc, set_uplink(address="https://full.example/u"))
    cases = [
        (dict(address="ftp://x/u", auth="as-1", level="Anonymous"), ("ter:InvalidArgs",
                                                                      "ter:ProtocolNotSupported")),
        (dict(address="https://n.example/u", auth="as-1", policy="bad"),
         ("ter:InvalidArgs", "ter:AmbiguousAuthentication")),
        (dict(address="https://n.example/u", cert=None, level="Anonymous"),
         ("ter:InvalidArgs", "ter:MissingAuthentication")),
        (dict(address="https://n.example/u", cert="bad", policy="bad"),
         ("ter:InvalidArgVal", "ter:CertificateID")),
        (dict(address="https://n.example/u", cert=None, auth="bad", policy="bad"),
         ("ter:InvalidArgVal", "ter:AuthorizationServerConfigurationToken")),
        (dict(address="https://n.example/u", policy="bad", level="Anonymous"),
         ("ter:InvalidArgVal", "ter:CertPathValidationPolicyID")),
        (dict(address="https://n.example/u", level="Anonymous"), ("ter:InvalidArgVal",)),
        (dict(address="https://n.example/u"), ("ter:Action",)),
    ]
    for kwargs, expected in cases:
        assert fault(svc, set_uplink(**kwargs)).subcodes == expected, kwargs


def test_remote_address_without_host_is_invalid_value() -> None:
    """CFG-R11: an https URI without a host is an unacceptable value."""
    f = fault(make(), set_uplink(address="https:/path-only"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal")


# --------------------------------------------------------------------------- generic faults


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<tup:SetUplink/>", id="set-without-configuration"),
        pytest.param("<tup:SetUplink>" + config_xml() + config_xml() + "</tup:SetUplink>",
                     id="set-two-configurations"),
        pytest.param("<tup:SetUplink><Configuration/></tup:SetUplink>", id="unqualified"),
        pytest.param("<tup:SetUplink><tup:Configuration><tup:UserLevel>User</tup:UserLevel>"
                     "</tup:Configuration></tup:SetUplink>", id="no-remote-address"),
        pytest.param("<tup:SetUplink>" + config_xml(
            cert="a</tup:CertificateID><tup:CertificateID>b") + "</tup:SetUplink>",
                     id="duplicate-element"),
        pytest.param("<tup:GetUplinks><tup:Filter/></tup:GetUplinks>", id="get-with-argument"),
        pytest.param("<tup:GetServiceCapabilities><x/></tup:GetServiceCapabilities>",
                     id="caps-with-argument"),
        pytest.param("<tup:DeleteUplink/>", id="delete-without-address"),
        pytest.param("<tup:DeleteUplink><tup:RemoteAddress><b/></tup:RemoteAddress>"
                     "</tup:DeleteUplink>", id="delete-address-not-text"),
        pytest.param("<tup:SetUplink>" + config_xml(auth="a" * 65, cert=None)
                     + "</tup:SetUplink>", id="reference-token-too-long"),
    ],
)
def test_schema_violations_are_invalid_args(body: str) -> None:
    """CFG-20, CFG-26, CFG-R11(1): wrong, missing or superfluous arguments ->
    env:Sender/ter:InvalidArgs.
    """
    f = fault(make(), envelope(body))
    assert chain(f) == ("env:Sender", "ter:InvalidArgs")
    assert f.reason == "Invalid Args"


@pytest.mark.parametrize(
    "body",
    ["<tup:UpgradeUplink/>", '<tds:GetDeviceInformation xmlns:tds="http://www.onvif.org/'
     'ver10/device/wsdl"/>', "<GetUplinks/>"],
)
def test_unknown_operation_is_action_not_supported(body: str) -> None:
    """CFG-21, CFG-R1: an operation this service does not implement ->
    env:Receiver/ter:ActionNotSupported.
    """
    f = fault(make(), envelope(body))
    assert chain(f) == ("env:Receiver", "ter:ActionNotSupported")
    assert f.reason == "Optional Action Not Implemented"


def test_dispatch_ignores_the_soap_action() -> None:
    """CFG-R1: dispatch on the body QName, never on the (possibly mangled) action."""
    svc = make()
    resp = svc.handle(GET_UPLINKS, user_level=ADMIN,
                      content_type=f'{SOAP_CONTENT_TYPE}; action="{TUP}/DeleteUplink"')
    assert parse_response(resp.body).body.tag == f"{{{TUP}}}GetUplinksResponse"


def test_malformed_requests_get_faults_or_http_errors() -> None:
    """CFG-25, CFG-26, CFG-27: malformed XML -> ter:WellFormed; no SOAP message -> HTTP 400/415."""
    svc = make()
    f = fault(svc, b"<env:Envelope")
    assert chain(f) == ("env:Sender", "ter:WellFormed")
    assert call(svc, b"").status == 400
    resp = svc.handle(GET_UPLINKS, content_type="application/json", user_level=ADMIN)
    assert resp.status == 415
    f = fault(svc, b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                   b"<s:Body><tup:GetUplinks xmlns:tup='" + TUP.encode() + b"'/></s:Body>"
                   b"</s:Envelope>")
    assert chain(f) == ("env:VersionMismatch",)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                     b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>' + GET_UPLINKS,
                     id="entity-expansion"),
        pytest.param(b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                     + delete_uplink("&x;"), id="xxe"),
        pytest.param(envelope("<tup:GetUplinks>" + "<a>" * 10_000 + "</a>" * 10_000
                              + "</tup:GetUplinks>"), id="deep"),
        pytest.param(envelope("<tup:GetUplinks>" + "<a/>" * 1_000_000 + "</tup:GetUplinks>"),
                     id="million-elements"),
        pytest.param(GET_UPLINKS.decode().encode("utf-16"), id="utf-16"),
        pytest.param(GET_UPLINKS.replace(b"GetUplinks/", b"GetUplinks\xff/"), id="bad-utf-8"),
    ],
)
def test_attack_corpus_through_the_service(data: bytes) -> None:
    """CFG-22, CFG-25, CFG-28: hostile XML is answered with an env:Sender fault, nothing leaks."""
    svc = make()
    ok(svc, set_uplink())
    resp = call(svc, data)
    assert resp.status == 400
    f = parse_fault(resp.body)
    assert f.code == "env:Sender"
    assert b"cloud.example.com" not in resp.body
    assert len(svc.configurations) == 1


# --------------------------------------------------------------------------- access control


@pytest.mark.parametrize(
    ("level", "allowed"),
    [
        ("Administrator", {"caps", "get", "set", "delete"}),
        ("Operator", {"caps", "get"}),
        ("User", {"caps", "get"}),
        ("Anonymous", {"caps"}),
        ("Extended", {"caps"}),
        ("", {"caps"}),
    ],
)
def test_every_operation_is_guarded_by_its_access_class(level: str, allowed: set[str]) -> None:
    """CFG-29, CFG-30, CFG-33, CFG-R3: PRE_AUTH / READ_SYSTEM / WRITE_SYSTEM x levels."""
    svc = make()
    ok(svc, set_uplink(address="https://seed.example/u"))
    requests = {
        "caps": GET_CAPS,
        "get": GET_UPLINKS,
        "set": set_uplink(),
        "delete": delete_uplink("https://seed.example/u"),
    }
    for name, body in requests.items():
        resp = call(svc, body, level)
        if name in allowed:
            assert resp.status == 200, (name, level)
        else:
            f = parse_fault(resp.body)
            assert resp.status == 400
            assert chain(f) == ("env:Sender", "ter:NotAuthorized"), (name, level)


def test_refusal_reveals_no_configuration_and_changes_nothing() -> None:
    """CFG-28, CFG-30, UPL-R19: NotAuthorized is checked first and its text is fixed."""
    recorder = Recorder()
    svc = make(on_change=recorder)
    ok(svc, set_uplink(address="https://secret.example/u"))
    for body in (set_uplink(cert="bad-id"), delete_uplink("https://secret.example/u"),
                 delete_uplink("https://unknown.example/u")):
        resp = call(svc, body, "Operator")
        assert chain(parse_fault(resp.body)) == ("env:Sender", "ter:NotAuthorized")
        assert b"secret" not in resp.body
    resp = call(svc, GET_UPLINKS, "Anonymous")
    assert b"secret" not in resp.body
    assert len(recorder.changes) == 1


def test_uplink_user_level_list_grants_union() -> None:
    """CFG-35, UPL-41, UPL-42: a tunneled request with 'User Administrator' may write."""
    svc = make()
    ok(svc, set_uplink(), level="User Administrator")
    assert svc.handle(set_uplink(), user_level=["User"]).status == 400


# --------------------------------------------------------------------------- change listener


def test_change_listener_sees_every_accepted_change_before_the_response() -> None:
    """CFG-R9, CFG-R10: created / updated / deleted, with the whole list to persist."""
    recorder = Recorder()
    svc = make(on_change=recorder)
    ok(svc, set_uplink(address="https://a.example/u"))
    ok(svc, set_uplink(address="https://b.example/u"))
    ok(svc, set_uplink(address="https://a.example/u", level="User"))
    ok(svc, set_uplink(address="https://a.example/u", level="User"))  # unchanged: no event
    ok(svc, delete_uplink("https://b.example/u"))
    kinds = [c.kind for c in recorder.changes]
    assert kinds == [ChangeKind.CREATED, ChangeKind.CREATED, ChangeKind.UPDATED,
                     ChangeKind.DELETED]
    last = recorder.changes[-1]
    assert last.remote_address == "https://b.example/u"
    assert last.current is None
    assert [c.remote_address for c in last.configurations] == ["https://a.example/u"]
    updated = recorder.changes[2]
    assert updated.previous is not None and updated.previous.user_level == ("Operator",)
    assert updated.current is not None and updated.current.user_level == ("User",)


def test_failed_persistence_rolls_back_and_reveals_nothing() -> None:
    """CFG-R9, CFG-28: if the listener fails, the change is undone and ter:Action answered."""
    def failing(change: ConfigurationChange) -> None:
        raise OSError("disk /dev/mmcblk0p3 full at 0xdeadbeef")

    seed = UplinkConfiguration("https://a.example/u", certificate_id="devcert-01")
    svc = make(configurations=[seed], on_change=failing)
    for body in (set_uplink(address="https://b.example/u"),
                 set_uplink(address="https://a.example/u", level="User"),
                 delete_uplink("https://a.example/u")):
        resp = call(svc, body)
        assert resp.status == 500
        assert chain(parse_fault(resp.body)) == ("env:Receiver", "ter:Action")
        assert b"mmcblk" not in resp.body
    assert svc.configurations == (
        UplinkConfiguration("https://a.example/u", certificate_id="devcert-01"),)


def test_failing_device_callbacks_become_action_faults() -> None:
    """CFG-28: a failing status provider or lookup yields ter:Action, no details."""
    class Broken:
        def has_certificate(self, certificate_id: str) -> bool:
            raise RuntimeError("keystore /secret locked")

        def has_validation_policy(self, policy_id: str) -> bool:
            return True

        def has_authorization_server(self, token: str) -> bool:
            return True

    def provider(address: str) -> tuple[Status, str | None]:
        raise RuntimeError("internal state")

    svc = UplinkService(security=Broken(), status_provider=provider)
    resp = call(svc, set_uplink())
    assert chain(parse_fault(resp.body)) == ("env:Receiver", "ter:Action")
    assert b"/secret" not in resp.body
    svc = UplinkService(configurations=[UplinkConfiguration("https://a/u", certificate_id="c")],
                        status_provider=provider)
    assert chain(parse_fault(call(svc, GET_UPLINKS).body)) == ("env:Receiver", "ter:Action")


def test_without_security_lookup_ids_are_not_checked() -> None:
    """CFG-13: a device without a key-store lookup accepts any ID (documented default)."""
    svc = UplinkService()
    ok(svc, set_uplink(cert="anything"))


def test_seed_configurations_must_have_distinct_keys() -> None:
    """CFG-6: the key is unique, also in what an adapter restores."""
    from uplink62676.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        UplinkService(configurations=[UplinkConfiguration("https://a/u"),
                                      UplinkConfiguration("https://a/u")])


# --------------------------------------------------------------------------- IEC-2022 strict


def test_strict_profile_capabilities_are_reduced() -> None:
    """CFG-R13, OQ-12: capabilities reduced to MaxUplinks."""
    svc = make(profile=Profile.IEC_2022_STRICT)
    (elem,) = list(ok(svc, GET_CAPS))
    assert dict(elem.attrib) == {"MaxUplinks": "4"}


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(dict(cert=None, auth="as-1"), id="authorization-server"),
        pytest.param(dict(cert=None), id="no-certificate"),
        pytest.param(dict(level="Operator User"), id="two-levels"),
        pytest.param(dict(policy="cloud-ca-policy"), id="policy"),
        pytest.param(dict(error="x"), id="error-element"),
    ],
)
def test_strict_profile_refuses_later_elements(kwargs: dict[str, str | None]) -> None:
    """CFG-R13: IEC-2022 schema: env:Sender/ter:InvalidArgs, not the ONVIF-later faults."""
    f = fault(make(profile=Profile.IEC_2022_STRICT), set_uplink(**kwargs))
    assert chain(f) == ("env:Sender", "ter:InvalidArgs")


def test_strict_profile_accepts_iec_configuration_https_only() -> None:
    """CFG-R13, UPL-R1: an IEC-era configuration works; only https is accepted."""
    svc = make(profile=Profile.IEC_2022_STRICT)
    ok(svc, set_uplink(level="Operator"))
    f = fault(svc, set_uplink(address="wss://vms.example.net/ws"))
    assert chain(f) == ("env:Sender", "ter:InvalidArgs", "ter:ProtocolNotSupported")


# --------------------------------------------------------------------------- properties

_field = st.none() | st.text(alphabet="ab-1 \u00e9<&", max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    address=st.sampled_from(["https://a.example/u", "wss://b.example/w", "ftp://c/", "", "x"]),
    cert=_field, auth=_field, policy=_field,
    level=st.sampled_from(["User", "Operator", "Administrator", "Anonymous", "", "A B"]),
    user=st.sampled_from(["Administrator", "User", "Anonymous"]),
)
def test_any_set_uplink_is_answered(address: str, cert: str | None, auth: str | None,
                                    policy: str | None, level: str, user: str) -> None:
    """CFG-25: every SetUplink gets 200 or a well-formed fault, and the state stays consistent."""
    from xml.sax.saxutils import escape

    def esc(v: str | None) -> str | None:
        return None if v is None else escape(v)

    svc = make(security=None)
    resp = call(svc, set_uplink(address=escape(address), cert=esc(cert), auth=esc(auth),
                                policy=esc(policy), level=level), user)
    if resp.status == 200:
        assert len(svc.configurations) == 1
        assert svc.configurations[0].authorization_mode is not None
    else:
        assert resp.status in (400, 500)
        parse_fault(resp.body)
        assert svc.configurations == ()


def test_envelope_namespace_is_soap12() -> None:
    """CFG-20: answers are SOAP 1.2 envelopes."""
    resp = call(make(), GET_CAPS)
    assert etree.fromstring(resp.body).tag == f"{{{ENV}}}Envelope"


def test_get_uplinks_reflects_updates_and_rollbacks() -> None:
    """CFG-2, CFG-6, CFG-R9: GetUplinks after an update or a rolled-back update is current."""
    fail = {"on": False}

    def listener(change: ConfigurationChange) -> None:
        if fail["on"]:
            raise OSError("full")

    svc = make(on_change=listener)
    ok(svc, set_uplink(level="Operator"))
    assert text(uplinks(svc)[0], "UserLevel") == "Operator"
    ok(svc, set_uplink(level="User"))
    assert text(uplinks(svc)[0], "UserLevel") == "User"
    fail["on"] = True
    fault(svc, set_uplink(level="Administrator"))
    assert text(uplinks(svc)[0], "UserLevel") == "User"
    assert svc.get_uplinks()[0].user_level == ("User",)


def test_error_text_is_escaped_and_made_xml_safe() -> None:
    """CFG-9, CFG-23, UPL-R27: any Error text from the device reaches the client intact
    where XML can carry it; characters XML cannot carry become U+FFFD."""
    svc = make(status_provider=lambda a: (Status.OFFLINE, "TLS <alert> & \x00 \"42\"\r"))
    ok(svc, set_uplink())
    (cfg,) = uplinks(svc)
    assert text(cfg, "Error") == "TLS <alert> & \ufffd \"42\"\r"
    assert svc.get_uplinks()[0].error == "TLS <alert> & \ufffd \"42\"\r"


@pytest.mark.parametrize("address", ["https://cloud.example/up link", "https://cloud.example:99999/u",
                                     "https://[::1/u", "https://cloud.example/%zz",
                                     "https://clöud.example/u"])
def test_fault_remote_address_not_uri_syntax(address: str) -> None:
    """CFG-4, UPL-R1: a RemoteAddress that is not RFC 3986 syntax is refused by SetUplink with
    env:Sender/ter:InvalidArgVal naming the problem, not accepted to fail on every attempt."""
    recorder = Recorder()
    svc = make(on_change=recorder)
    f = fault(svc, set_uplink(address=address))
    assert chain(f) == ("env:Sender", "ter:InvalidArgVal")
    assert "RemoteAddress" in f.reason
    assert not recorder.changes
