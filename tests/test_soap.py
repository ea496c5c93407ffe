"""Tests of the SOAP 1.2 codec (config-service.md section 5: CFG-20..28, CFG-37, CFG-R1, CFG-R12).
"""

from __future__ import annotations

import resource
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from uplink62676.errors import RemoteProtocolError, SoapFault
from uplink62676.namespaces import ENV, TER, TUP
from uplink62676.soap import (
    GENERIC_FAULTS,
    SOAP_CONTENT_TYPE,
    Envelope,
    build_envelope,
    build_request,
    fault_envelope,
    fault_response,
    generic_fault,
    handle_request,
    parse_envelope,
    parse_fault,
    parse_response,
    soap_action,
)

ENV_OPEN = (
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
    b' xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl">'
)


def envelope(body: bytes, header: bytes = b"") -> bytes:
    head = b"<env:Header>" + header + b"</env:Header>" if header else b""
    return ENV_OPEN + head + b"<env:Body>" + body + b"</env:Body></env:Envelope>"


def fault_of(data: bytes) -> SoapFault:
    with pytest.raises(SoapFault) as info:
        parse_envelope(data)
    return info.value


def chain(fault: SoapFault) -> tuple[str, ...]:
    return (fault.code, *fault.subcodes)


# --------------------------------------------------------------------------- parsing


def test_parse_spec_example_dispatches_on_body_qname() -> None:
    """CFG-20, CFG-R1: document/literal: the single body child and its QName."""
    env = parse_envelope(envelope(b"<tup:GetUplinks/>"))
    assert isinstance(env, Envelope)
    assert env.operation == f"{{{TUP}}}GetUplinks"
    assert env.headers == ()
    assert env.version == "1.2"


def test_prefixes_do_not_matter() -> None:
    """CFG-20: names are resolved through namespaces, never prefixes."""
    data = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
        b'<s:Body><GetUplinks xmlns="http://www.onvif.org/ver10/uplink/wsdl"/></s:Body>'
        b"</s:Envelope>"
    )
    assert parse_envelope(data).operation == f"{{{TUP}}}GetUplinks"


def test_headers_are_exposed_and_ws_addressing_is_accepted() -> None:
    """CFG-R1: messages with or without WS-Addressing headers are accepted."""
    header = (
        b'<wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing" '
        b'env:mustUnderstand="true">http://www.onvif.org/ver10/uplink/wsdl/GetUplinks</wsa:Action>'
    )
    env = parse_envelope(envelope(b"<tup:GetUplinks/>", header))
    assert len(env.headers) == 1
    assert etree.QName(env.headers[0]).localname == "Action"


def test_version_mismatch_for_soap11() -> None:
    """CFG-26: a SOAP 1.1 envelope is answered with env:VersionMismatch."""
    data = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<s:Body><GetUplinks/></s:Body></s:Envelope>"
    )
    fault = fault_of(data)
    assert chain(fault) == ("env:VersionMismatch",)
    assert fault.reason == "SOAP version mismatch"
    assert fault.http_status == 500


def test_version_mismatch_for_non_envelope_root() -> None:
    """CFG-26: the root is not the SOAP 1.2 Envelope -> env:VersionMismatch."""
    assert chain(fault_of(b"<tup:GetUplinks xmlns:tup='urn:x'/>")) == ("env:VersionMismatch",)


def test_version_mismatch_response_carries_upgrade_header() -> None:
    """CFG-25: the VersionMismatch fault names the supported envelope (SOAP 1.2 Upgrade)."""
    resp = fault_response(generic_fault("env:VersionMismatch"))
    root = etree.fromstring(resp.body)
    upgrade = root.find(f"{{{ENV}}}Header/{{{ENV}}}Upgrade/{{{ENV}}}SupportedEnvelope")
    assert upgrade is not None
    assert upgrade.get("qname") == "env:Envelope"


def test_missing_body_is_no_tag() -> None:
    """CFG-26: an expected element (env:Body) is absent -> env:Sender/ter:Tag."""
    data = ENV_OPEN + b"<env:Header/></env:Envelope>"
    fault = fault_of(data)
    assert chain(fault) == ("env:Sender", "ter:Tag")
    assert fault.reason == "No Tag"


def test_empty_body_is_no_tag() -> None:
    """CFG-26: a request body without operation element -> env:Sender/ter:Tag."""
    assert chain(fault_of(envelope(b""))) == ("env:Sender", "ter:Tag")


def test_body_in_wrong_namespace_is_namespace_error() -> None:
    """CFG-26: wrong or missing SOAP namespace -> env:Sender/ter:Namespace."""
    data = ENV_OPEN + b"<Body><tup:GetUplinks/></Body></env:Envelope>"
    fault = fault_of(data)
    assert chain(fault) == ("env:Sender", "ter:Namespace")
    assert fault.reason == "Namespace Error"


def test_unexpected_envelope_child_is_tag_mismatch() -> None:
    """CFG-26: an element whose name is not the expected one -> ter:TagMismatch."""
    data = ENV_OPEN + b"<env:Body><tup:GetUplinks/></env:Body><env:Body/></env:Envelope>"
    assert chain(fault_of(data)) == ("env:Sender", "ter:TagMismatch")
    data = ENV_OPEN + b"<env:Trailer/><env:Body><tup:GetUplinks/></env:Body></env:Envelope>"
    assert chain(fault_of(data)) == ("env:Sender", "ter:TagMismatch")
    data = ENV_OPEN + b"<env:Body><tup:GetUplinks/></env:Body><env:Header/></env:Envelope>"
    assert chain(fault_of(data)) == ("env:Sender", "ter:TagMismatch")


def test_two_body_children_is_invalid_args() -> None:
    """CFG-20, CFG-26: document/literal has one body child; more is superfluous (ter:InvalidArgs).
    """
    fault = fault_of(envelope(b"<tup:GetUplinks/><tup:GetUplinks/>"))
    assert chain(fault) == ("env:Sender", "ter:InvalidArgs")
    assert fault.http_status == 400


def test_must_understand_unknown_header() -> None:
    """CFG-26: a mustUnderstand header block that cannot be processed -> env:MustUnderstand."""
    header = b'<x:Secret xmlns:x="urn:x" env:mustUnderstand="1"/>'
    fault = fault_of(envelope(b"<tup:GetUplinks/>", header))
    assert chain(fault) == ("env:MustUnderstand",)
    assert fault.reason == "SOAP header blocks not understood"
    # Not targeted at us, or not mandatory: fine.
    ok = b'<x:Secret xmlns:x="urn:x" env:mustUnderstand="false"/>'
    assert parse_envelope(envelope(b"<tup:GetUplinks/>", ok)).headers
    none_role = (
        b'<x:Secret xmlns:x="urn:x" env:mustUnderstand="true" '
        b'env:role="http://www.w3.org/2003/05/soap-envelope/role/none"/>'
    )
    assert parse_envelope(envelope(b"<tup:GetUplinks/>", none_role)).headers


def test_ws_security_header_is_understood_and_ignored() -> None:
    """CFG-26, UPL-R19: a mustUnderstand WS-Security header does not fail the request."""
    header = (
        b'<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/'
        b'oasis-200401-wss-wssecurity-secext-1.0.xsd" env:mustUnderstand="1"/>'
    )
    assert parse_envelope(envelope(b"<tup:GetUplinks/>", header)).operation.endswith("GetUplinks")


def test_encoding_style_is_data_encoding_unknown() -> None:
    """CFG-20, CFG-26: literal only; an encodingStyle -> env:DataEncodingUnknown."""
    body = (
        b'<tup:GetUplinks env:encodingStyle="http://www.w3.org/2003/05/soap-encoding"/>'
    )
    fault = fault_of(envelope(body))
    assert chain(fault) == ("env:DataEncodingUnknown",)
    assert fault.reason == "Unsupported SOAP data encoding"


def test_malformed_xml_is_well_formed_error() -> None:
    """CFG-26: malformed XML -> env:Sender/ter:WellFormed with the normative reason."""
    fault = fault_of(b"<env:Envelope xmlns:env='" + ENV.encode() + b"'><env:Body>")
    assert chain(fault) == ("env:Sender", "ter:WellFormed")
    assert fault.reason == "Well-formed Error"


def test_fault_reason_reveals_no_parser_internals() -> None:
    """CFG-28: internal error details (parser messages, line numbers) are not reported."""
    resp = handle_request(b"<a><b></a>", SOAP_CONTENT_TYPE, lambda env: None)
    assert resp.status == 400
    assert b"line" not in resp.body.lower()
    assert b"libxml" not in resp.body.lower()


# --------------------------------------------------------------------------- attack corpus

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
    + envelope(b"<tup:GetUplinks>&lol9;</tup:GetUplinks>")
)
XXE_FILE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + envelope(b"<tup:DeleteUplink><tup:RemoteAddress>&x;</tup:RemoteAddress></tup:DeleteUplink>")
)
XXE_NETWORK = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>'
    + envelope(b"<tup:GetUplinks/>")
)
PLAIN_DOCTYPE = b"<!DOCTYPE env:Envelope>" + envelope(b"<tup:GetUplinks/>")
DEEP = envelope(b"<a>" * 10_000 + b"</a>" * 10_000)
MILLION_ELEMENTS = envelope(b"<tup:GetUplinks>" + b"<a/>" * 1_000_000 + b"</tup:GetUplinks>")
MANY_SMALL_ELEMENTS = envelope(b"<tup:GetUplinks>" + b"<a/>" * 200_000 + b"</tup:GetUplinks>")
UTF16 = envelope(b"<tup:GetUplinks/>").decode().encode("utf-16")
LATIN1 = (
    b'<?xml version="1.0" encoding="ISO-8859-1"?>'
    + envelope(b"<tup:GetUplinks>\xe9</tup:GetUplinks>")
)
INVALID_UTF8 = envelope(b"<tup:GetUplinks>\xc3\x28\xff</tup:GetUplinks>")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(BILLION_LAUGHS, ("env:Sender", "ter:WellFormed"), id="billion-laughs"),
        pytest.param(XXE_FILE, ("env:Sender", "ter:WellFormed"), id="xxe-file"),
        pytest.param(XXE_NETWORK, ("env:Sender", "ter:WellFormed"), id="xxe-network"),
        pytest.param(PLAIN_DOCTYPE, ("env:Sender", "ter:WellFormed"), id="doctype"),
        pytest.param(DEEP, ("env:Sender", "ter:WellFormed"), id="deep-10000"),
        pytest.param(MILLION_ELEMENTS, ("env:Sender", "ter:InvalidArgs"), id="million-elements"),
        pytest.param(MANY_SMALL_ELEMENTS, ("env:Sender", "ter:InvalidArgs"), id="200k-elements"),
        pytest.param(UTF16, ("env:Sender", "ter:WellFormed"), id="utf-16"),
        pytest.param(LATIN1, ("env:Sender", "ter:WellFormed"), id="latin-1"),
        pytest.param(INVALID_UTF8, ("env:Sender", "ter:WellFormed"), id="invalid-utf-8"),
    ],
)
def test_attack_corpus_is_refused_quickly(data: bytes, expected: tuple[str, ...]) -> None:
    """CFG-22, CFG-25: hostile XML is refused with a fault, quickly, never parsed into a tree."""
    start = time.perf_counter()
    fault = fault_of(data)
    assert time.perf_counter() - start < 2.0
    if expected[1] == "ter:WellFormed" and chain(fault)[1] == "ter:InvalidArgs":
        # 10,000-deep nesting may trip the depth limit before libxml2's own.
        expected = ("env:Sender", "ter:InvalidArgs")
    assert chain(fault) == expected


def test_fifty_megabyte_body_is_refused_before_parsing() -> None:
    """CFG-25, CFG-37: a 50 MB body is refused by size, fast and without growing memory."""
    data = envelope(b"<tup:GetUplinks>" + b"x" * (50 * 1024 * 1024) + b"</tup:GetUplinks>")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    resp = handle_request(data, SOAP_CONTENT_TYPE, lambda env: None)
    elapsed = time.perf_counter() - start
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert resp.status == 400
    assert parse_fault(resp.body).subcodes == ("ter:InvalidArgs",)
    assert elapsed < 0.5
    assert grown_kib < 8 * 1024  # far less than the 50 MB input


def test_wrong_namespace_of_everything_is_version_mismatch() -> None:
    """CFG-26: an Envelope in a made-up namespace is not SOAP 1.2."""
    data = b'<e:Envelope xmlns:e="urn:fake"><e:Body><x/></e:Body></e:Envelope>'
    assert chain(fault_of(data)) == ("env:VersionMismatch",)


# --------------------------------------------------------------------------- building


def test_build_envelope_is_utf8_with_declaration() -> None:
    """CFG-22: answers are UTF-8; CFG-23: no characters are restricted."""
    elem = etree.Element(f"{{{TUP}}}Error", nsmap={"tup": TUP})
    elem.text = "caf\u00e9 \u2603 \U0001f600 <&>"
    data = build_envelope(elem)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert "\u2603".encode() in data
    env = parse_envelope(data)
    assert env.body.text == "caf\u00e9 \u2603 \U0001f600 <&>"


def test_build_envelope_copies_elements_that_belong_to_a_tree() -> None:
    """CFG-20: building a response leaves the caller's tree intact."""
    parent = etree.Element("p")
    child = etree.SubElement(parent, f"{{{TUP}}}GetUplinks")
    build_envelope([child], header=[etree.Element("{urn:x}H")])
    assert child.getparent() is parent


def test_build_request_carries_action_in_content_type() -> None:
    """CFG-R1: emit the action parameter on requests we send."""
    action = f"{TUP}/GetUplinks"
    req = build_request(etree.Element(f"{{{TUP}}}GetUplinks"), action)
    assert req.content_type.startswith("application/soap+xml; charset=utf-8")
    assert soap_action(req.content_type) == action
    assert parse_envelope(req.body).operation == f"{{{TUP}}}GetUplinks"


@pytest.mark.parametrize(
    ("header", "action"),
    [
        ('application/soap+xml; charset=utf-8; action="urn:a;b"', "urn:a;b"),
        ("application/soap+xml;action=urn:x", "urn:x"),
        ('application/soap+xml; ACTION="http://x/y"', "http://x/y"),
        ("application/soap+xml; charset=utf-8", None),
        ("", None),
        (None, None),
    ],
)
def test_soap_action_from_content_type(header: str | None, action: str | None) -> None:
    """CFG-R1: the SOAP 1.2 action travels as the content-type action parameter."""
    assert soap_action(header) == action


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("name", sorted(GENERIC_FAULTS))
def test_every_generic_fault_round_trips(name: str) -> None:
    """CFG-25, CFG-26, CFG-R12: every Table 5 fault, its reason, status and parse-back."""
    fault = generic_fault(name)
    resp = fault_response(fault)
    assert resp.headers == (("content-type", SOAP_CONTENT_TYPE),)
    assert resp.status == (400 if fault.code == "env:Sender" else 500)
    back = parse_fault(resp.body, status=resp.status)
    assert back == fault
    assert back.reason == GENERIC_FAULTS[name][2]


def test_fault_layout_matches_config_service_example() -> None:
    """CFG-25: Code/Value, nested Subcode chain, Reason/Text xml:lang; prefixes declared."""
    fault = SoapFault(
        "env:Sender",
        ("ter:InvalidArgs", "ter:AmbiguousAuthentication"),
        "CertificateID and AuthorizationServer must not both be given",
    )
    root = etree.fromstring(fault_envelope(fault))
    felem = root.find(f"{{{ENV}}}Body/{{{ENV}}}Fault")
    assert felem is not None
    assert [etree.QName(c).localname for c in felem] == ["Code", "Reason"]
    values = felem.findall(f".//{{{ENV}}}Value")
    assert [v.text for v in values] == [
        "env:Sender", "ter:InvalidArgs", "ter:AmbiguousAuthentication"]
    for value in values:  # QName prefixes resolve in scope
        prefix = (value.text or "").split(":")[0]
        assert value.nsmap[prefix] in (ENV, TER)
    text = felem.find(f"{{{ENV}}}Reason/{{{ENV}}}Text")
    assert text is not None
    assert text.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"


def test_fault_with_detail_round_trips() -> None:
    """CFG-25: ONVIF may carry application information in env:Detail."""
    detail = b'<x:Info xmlns:x="urn:x">more</x:Info>'
    fault = SoapFault("env:Receiver", ("ter:Action",), "Action Failed", detail=detail)
    assert parse_fault(fault_envelope(fault)) == fault


def test_fault_with_foreign_subcode_namespace() -> None:
    """CFG-26: subcodes outside ter round-trip in Clark notation."""
    fault = SoapFault("env:Sender", ("{urn:vendor}Busy",), "busy")
    back = parse_fault(fault_envelope(fault))
    assert back.subcodes == ("{urn:vendor}Busy",)


def test_parse_fault_resolves_prefixes_through_scope() -> None:
    """CFG-26: clients read fault QNames through the in-scope declarations."""
    data = (
        b'<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Body><S:Fault>'
        b'<S:Code><S:Value>S:Sender</S:Value><S:Subcode>'
        b'<S:Value xmlns:e="http://www.onvif.org/ver10/error">e:NotAuthorized</S:Value>'
        b"</S:Subcode></S:Code><S:Reason><S:Text xml:lang='de'>nein</S:Text>"
        b"<S:Text xml:lang='en'>no</S:Text></S:Reason></S:Fault></S:Body></S:Envelope>"
    )
    fault = parse_fault(data, status=400)
    assert chain(fault) == ("env:Sender", "ter:NotAuthorized")
    assert fault.reason == "no"
    assert fault.http_status == 400


def test_parse_fault_with_undeclared_prefix_is_remote_error() -> None:
    """CFG-26: a fault whose code prefixes are undeclared is the peer's protocol error."""
    data = envelope(
        b"<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode>"
        b"<env:Value>ter:InvalidArgs</env:Value></env:Subcode></env:Code>"
        b"<env:Reason><env:Text xml:lang='en'>x</env:Text></env:Reason></env:Fault>"
    )
    with pytest.raises(RemoteProtocolError):
        parse_fault(data)


def test_parse_response_raises_fault_for_400_and_500() -> None:
    """CFG-R12: clients accept a fault with either 400 or 500."""
    body = fault_envelope(generic_fault("ter:InvalidArgVal"))
    for status in (400, 500, 200):
        with pytest.raises(SoapFault) as info:
            parse_response(body, status=status)
        assert info.value.subcodes == ("ter:InvalidArgVal",)


def test_parse_response_rejects_plain_http_errors() -> None:
    """CFG-37: a non-SOAP error status is handled as HTTP prescribes (RemoteProtocolError)."""
    with pytest.raises(RemoteProtocolError) as info:
        parse_response(b"Bad Gateway", status=502)
    assert info.value.http_status == 502
    with pytest.raises(RemoteProtocolError):
        parse_response(envelope(b"<tup:GetUplinksResponse/>"), status=503)


def test_parse_response_accepts_empty_body() -> None:
    """CFG-20: a response body may be empty."""
    env = parse_response(envelope(b""))
    assert env.body.tag == f"{{{ENV}}}Body"


# --------------------------------------------------------------------------- HTTP face


def test_handle_request_http_errors_when_no_soap_message() -> None:
    """CFG-27, CFG-37, Table 6: no SOAP message -> HTTP error, not a SOAP fault."""
    empty = handle_request(b"", SOAP_CONTENT_TYPE, lambda env: None)
    assert empty.status == 400
    assert not empty.body.startswith(b"<?xml")
    blank = handle_request(b"   \n", None, lambda env: None)
    assert blank.status == 400
    media = handle_request(envelope(b"<tup:GetUplinks/>"), "text/plain", lambda env: None)
    assert media.status == 415


def test_handle_request_refuses_other_charsets() -> None:
    """CFG-22: the device speaks UTF-8; another declared charset is unsupported media."""
    resp = handle_request(
        envelope(b"<tup:GetUplinks/>"), "application/soap+xml; charset=iso-8859-1",
        lambda env: None)
    assert resp.status == 415


def test_handle_request_success_and_fault() -> None:
    """CFG-22, CFG-25: a handler result becomes a 200 UTF-8 envelope, a SoapFault a fault."""
    ok = handle_request(
        envelope(b"<tup:GetUplinks/>"), "application/soap+xml; charset=UTF-8",
        lambda env: etree.Element(f"{{{TUP}}}GetUplinksResponse"))
    assert ok.status == 200
    assert ok.headers == (("content-type", SOAP_CONTENT_TYPE),)
    assert parse_response(ok.body).operation == f"{{{TUP}}}GetUplinksResponse"

    def refuse(env: Envelope) -> None:
        raise generic_fault("ter:ActionNotSupported")

    bad = handle_request(envelope(b"<tup:GetUplinks/>"), None, refuse)
    assert bad.status == 500
    assert chain(parse_fault(bad.body)) == ("env:Receiver", "ter:ActionNotSupported")


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_fault(data: bytes) -> None:
    """CFG-25: every input either parses or yields a SoapFault, nothing else."""
    try:
        parse_envelope(data)
    except SoapFault as fault:
        assert fault.code.startswith("env:")


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    code=st.sampled_from(["env:Sender", "env:Receiver", "env:MustUnderstand"]),
    subcodes=st.lists(_names.map(lambda n: f"ter:{n}"), max_size=4),
    reason=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40
    ).map(str.strip),
)
def test_fault_round_trip_property(code: str, subcodes: list[str], reason: str) -> None:
    """CFG-25, CFG-26: serialize then parse gives the same fault and status."""
    fault = SoapFault(code, subcodes, reason)
    resp = fault_response(fault)
    assert parse_fault(resp.body) == fault
    assert resp.status == (400 if code == "env:Sender" else 500)
