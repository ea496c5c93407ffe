"""Tests of the configuration values (config-service.md section 2: CFG-3, CFG-8, CFG-9, CFG-11,
CFG-12).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from uplink62676._xml import parse_xml
from uplink62676.config import (
    Capabilities,
    Status,
    UplinkConfiguration,
    capabilities_from_xml,
    capabilities_to_xml,
    configuration_from_xml,
    configuration_to_xml,
)
from uplink62676.errors import ConfigurationError
from uplink62676.namespaces import TUP

GET_UPLINKS_EXAMPLE = b"""
<tup:GetUplinksResponse xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl">
  <tup:Configuration>
    <tup:RemoteAddress>https://cloud.example.com/uplink</tup:RemoteAddress>
    <tup:CertificateID>devcert-01</tup:CertificateID>
    <tup:UserLevel>Operator</tup:UserLevel>
    <tup:Status>Connected</tup:Status>
    <tup:CertPathValidationPolicyID>cloud-ca-policy</tup:CertPathValidationPolicyID>
  </tup:Configuration>
  <tup:Configuration>
    <tup:RemoteAddress>wss://vms.example.net/uplink/ws</tup:RemoteAddress>
    <tup:UserLevel>onvif:User PTZControl</tup:UserLevel>
    <tup:Status>Offline</tup:Status>
    <tup:AuthorizationServer>as-1</tup:AuthorizationServer>
    <tup:Error>upgrade refused: 401 invalid_token</tup:Error>
  </tup:Configuration>
</tup:GetUplinksResponse>
"""


def cfg_elem(inner: bytes, attrs: bytes = b"") -> etree._Element:
    return parse_xml(
        b'<tup:Configuration xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl"' + attrs + b">"
        + inner + b"</tup:Configuration>"
    )


def test_spec_example_configurations_field_by_field() -> None:
    """CFG-3, CFG-8, CFG-9: every element of the GetUplinks example maps to its field."""
    root = parse_xml(GET_UPLINKS_EXAMPLE)
    first, second = (configuration_from_xml(c) for c in root)
    assert first == UplinkConfiguration(
        remote_address="https://cloud.example.com/uplink",
        certificate_id="devcert-01",
        user_level=("Operator",),
        status=Status.CONNECTED,
        cert_path_validation_policy_id="cloud-ca-policy",
    )
    assert second.user_level == ("onvif:User", "PTZControl")  # tt:StringList
    assert second.status is Status.OFFLINE
    assert second.authorization_server == "as-1"
    assert second.certificate_id is None
    assert second.error == "upgrade refused: 401 invalid_token"


def test_to_xml_uses_schema_order_and_round_trips() -> None:
    """CFG-20: elements in the schema's sequence order; parse(build(x)) == x."""
    config = UplinkConfiguration(
        remote_address="wss://vms.example.net/uplink/ws",
        user_level="onvif:User PTZControl",
        status=Status.CONNECTING,
        cert_path_validation_policy_id="p",
        authorization_server="as-1",
        error="no traffic for 30 s",
    )
    elem = configuration_to_xml(config)
    assert [etree.QName(c).localname for c in elem] == [
        "RemoteAddress", "UserLevel", "Status", "CertPathValidationPolicyID",
        "AuthorizationServer", "Error"]
    assert elem.findtext(f"{{{TUP}}}UserLevel") == "onvif:User PTZControl"
    assert configuration_from_xml(elem) == config


def test_iec_single_user_level_is_one_item_list() -> None:
    """CFG-R13: an IEC-era xs:string UserLevel is a valid one-item tt:StringList."""
    config = configuration_from_xml(cfg_elem(
        b"<tup:RemoteAddress>https://c/u</tup:RemoteAddress><tup:CertificateID>c</tup:CertificateID>"
        b"<tup:UserLevel>  Administrator\n</tup:UserLevel>"))
    assert config.user_level == ("Administrator",)


def test_online_is_read_as_connected() -> None:
    """CFG-3, CFG-R4, OQ-7: readers accept Online as Connected; we emit Connected."""
    config = configuration_from_xml(cfg_elem(
        b"<tup:RemoteAddress>https://c/u</tup:RemoteAddress><tup:UserLevel>User</tup:UserLevel>"
        b"<tup:Status>Online</tup:Status>"))
    assert config.status is Status.CONNECTED
    assert configuration_to_xml(config).findtext(f"{{{TUP}}}Status") == "Connected"


def test_unknown_status_is_read_as_none() -> None:
    """CFG-5: Status is output-only; an undefined value does not make the request invalid."""
    config = configuration_from_xml(cfg_elem(
        b"<tup:RemoteAddress>https://c/u</tup:RemoteAddress><tup:UserLevel>User</tup:UserLevel>"
        b"<tup:Status>Sleeping</tup:Status>"))
    assert config.status is None


def test_extensions_round_trip_untouched() -> None:
    """CFG-36: extension elements and attributes (xs:any / xs:anyAttribute) survive unchanged."""
    elem = cfg_elem(
        b"<tup:RemoteAddress>https://c/u</tup:RemoteAddress><tup:UserLevel>User</tup:UserLevel>"
        b'<v:Proxy xmlns:v="urn:vendor" v:mode="socks">q:name<v:Host>10.0.0.1</v:Host></v:Proxy>'
        b"<tup:FutureElement>42</tup:FutureElement>",
        attrs=b' xmlns:v="urn:vendor" xmlns:q="urn:q" v:flag="1"',
    )
    config = configuration_from_xml(elem)
    assert config.extension_attributes == (("{urn:vendor}flag", "1"),)
    assert len(config.extensions) == 2
    again = configuration_from_xml(configuration_to_xml(config))
    assert again == config
    out = configuration_to_xml(config)
    proxy = out.find("{urn:vendor}Proxy")
    assert proxy is not None
    assert proxy.get("{urn:vendor}mode") == "socks"
    assert proxy.findtext("{urn:vendor}Host") == "10.0.0.1"
    # the QName-valued text keeps its prefix binding
    assert proxy.nsmap.get("q") == "urn:q"
    assert out.get("{urn:vendor}flag") == "1"
    assert out[-1].tag == f"{{{TUP}}}FutureElement"


@pytest.mark.parametrize(
    "inner",
    [
        pytest.param(b"<tup:UserLevel>User</tup:UserLevel>", id="no-remote-address"),
        pytest.param(b"<tup:RemoteAddress>https://c/u</tup:RemoteAddress>", id="no-user-level"),
        pytest.param(
            b"<tup:RemoteAddress>https://c/u</tup:RemoteAddress>"
            b"<tup:RemoteAddress>https://c/v</tup:RemoteAddress><tup:UserLevel>User</tup:UserLevel>",
            id="twice"),
        pytest.param(
            b"<tup:RemoteAddress>https://c/u<tup:x/></tup:RemoteAddress>"
            b"<tup:UserLevel>User</tup:UserLevel>",
            id="nested"),
        pytest.param(
            b"<tup:RemoteAddress>https://c/u</tup:RemoteAddress><tup:UserLevel>User</tup:UserLevel>"
            b"<tup:AuthorizationServer>" + b"a" * 65 + b"</tup:AuthorizationServer>",
            id="token-too-long"),
        pytest.param(
            b"<tup:RemoteAddress>   </tup:RemoteAddress><tup:UserLevel>User</tup:UserLevel>",
            id="empty-address"),
    ],
)
def test_schema_violations_raise_configuration_error(inner: bytes) -> None:
    """CFG-20: a schema violation is our ConfigurationError, naming the problem."""
    with pytest.raises(ConfigurationError):
        configuration_from_xml(cfg_elem(inner))


def test_remote_address_whitespace_is_collapsed() -> None:
    """CFG-R6: xs:anyURI whitespace collapsing, no other normalisation."""
    config = configuration_from_xml(cfg_elem(
        b"<tup:RemoteAddress>\n  HTTPS://Cloud.Example.com/Uplink \n</tup:RemoteAddress>"
        b"<tup:UserLevel>User</tup:UserLevel>"))
    assert config.remote_address == "HTTPS://Cloud.Example.com/Uplink"


def test_value_validators_name_the_offending_value() -> None:
    """CFG-20: validators raise our error with the offending value in the message."""
    with pytest.raises(ConfigurationError, match="bad item"):
        UplinkConfiguration(remote_address="https://c", user_level=["bad item"])
    with pytest.raises(ConfigurationError, match="' https://c'"):
        UplinkConfiguration(remote_address=" https://c")
    with pytest.raises(ConfigurationError, match="-1"):
        Capabilities(max_uplinks=-1)
    with pytest.raises(ConfigurationError):
        UplinkConfiguration(remote_address="https://c", extensions=[b"<a><b></a>"])


def test_without_runtime_drops_status_and_error() -> None:
    """CFG-5, CFG-9: Status and Error are runtime values, not configuration."""
    config = UplinkConfiguration("https://c/u", status=Status.CONNECTED, error="x")
    assert config.without_runtime() == UplinkConfiguration("https://c/u")


# --------------------------------------------------------------------------- capabilities


def test_capabilities_spec_example() -> None:
    """CFG-11, CFG-12: MaxUplinks, Protocols, AuthorizationModes, StreamingOverUplink."""
    elem = parse_xml(
        b'<tup:Capabilities xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl" MaxUplinks="4" '
        b'Protocols="https wss" AuthorizationModes="mTLS AccessToken" StreamingOverUplink="true"/>'
    )
    caps = capabilities_from_xml(elem)
    assert caps == Capabilities(4, ("https", "wss"), ("mTLS", "AccessToken"), True)
    assert capabilities_from_xml(capabilities_to_xml(caps)) == caps


def test_capabilities_defaults_for_older_devices() -> None:
    """CFG-R2, OQ-18: absent Protocols -> https, AuthorizationModes -> mTLS, no limit assumed."""
    caps = capabilities_from_xml(parse_xml(
        b'<tup:Capabilities xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl" MaxUplinks="2"/>'))
    assert caps.max_uplinks == 2
    assert caps.effective_protocols() == ("https",)
    assert caps.effective_authorization_modes() == ("mTLS",)
    assert caps.streaming_over_uplink is None
    assert Capabilities().max_uplinks is None


def test_jwt_mode_is_read_as_access_token() -> None:
    """CFG-R2, OQ-10: accept JWT as an alias of AccessToken, emit AccessToken."""
    caps = capabilities_from_xml(parse_xml(
        b'<tup:Capabilities xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl" '
        b'AuthorizationModes="mTLS JWT"/>'))
    assert caps.authorization_modes == ("mTLS", "AccessToken")
    out = capabilities_to_xml(Capabilities(authorization_modes=("JWT",)))
    assert out.get("AuthorizationModes") == "AccessToken"
    assert Capabilities(authorization_modes=("JWT",)).effective_authorization_modes() == (
        "AccessToken",)


def test_capabilities_extensions_round_trip() -> None:
    """CFG-12: any other attribute and any element (lax) are kept."""
    elem = parse_xml(
        b'<tup:Capabilities xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl" xmlns:v="urn:v" '
        b'v:Relay="yes" MaxUplinks="1"><v:Extra>1</v:Extra></tup:Capabilities>')
    caps = capabilities_from_xml(elem)
    assert caps.extension_attributes == (("{urn:v}Relay", "yes"),)
    assert capabilities_from_xml(capabilities_to_xml(caps)) == caps


@pytest.mark.parametrize(
    "attrs",
    [b'MaxUplinks="many"', b'MaxUplinks="99999999999"', b'StreamingOverUplink="yes"'],
)
def test_capability_type_errors(attrs: bytes) -> None:
    """CFG-11, CFG-12: xs:int and xs:boolean are checked."""
    with pytest.raises(ConfigurationError):
        capabilities_from_xml(parse_xml(
            b'<tup:Capabilities xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl" '
            + attrs + b"/>"))


def test_boolean_lexical_forms() -> None:
    """CFG-12: xs:boolean accepts true/false/1/0."""
    for text, value in ((b"1", True), (b"0", False), (b" true ", True)):
        elem = parse_xml(
            b'<tup:Capabilities xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl" '
            b'StreamingOverUplink="' + text + b'"/>')
        assert capabilities_from_xml(elem).streaming_over_uplink is value


# --------------------------------------------------------------------------- properties

_item = st.from_regex(r"[A-Za-z:][A-Za-z0-9:._-]{0,15}", fullmatch=True)
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=30)
_address = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["https", "wss", "HTTPS"]),
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9/_~%-]{0,20}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(
    address=_address,
    levels=st.lists(_item, min_size=1, max_size=4),
    cert=st.none() | _text,
    status=st.none() | st.sampled_from(list(Status)),
    policy=st.none() | _text,
    token=st.none() | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    error=st.none() | _text,
)
def test_configuration_round_trip_property(
    address: str, levels: list[str], cert: str | None, status: Status | None,
    policy: str | None, token: str | None, error: str | None,
) -> None:
    """CFG-20, CFG-23: any configuration survives to_xml/from_xml; strings are not restricted."""
    config = UplinkConfiguration(
        remote_address=address, user_level=levels, certificate_id=cert, status=status,
        cert_path_validation_policy_id=policy, authorization_server=token, error=error)
    assert configuration_from_xml(configuration_to_xml(config)) == config


@settings(max_examples=100, deadline=None)
@given(
    max_uplinks=st.none() | st.integers(0, 2**31 - 1),
    protocols=st.none() | st.lists(_item, max_size=3),
    modes=st.none() | st.lists(st.sampled_from(["mTLS", "AccessToken"]), max_size=2),
    streaming=st.none() | st.booleans(),
)
def test_capabilities_round_trip_property(
    max_uplinks: int | None, protocols: list[str] | None, modes: list[str] | None,
    streaming: bool | None,
) -> None:
    """CFG-11, CFG-12: capabilities survive to_xml/from_xml."""
    caps = Capabilities(max_uplinks, protocols, modes, streaming)
    assert capabilities_from_xml(capabilities_to_xml(caps)) == caps


@pytest.mark.parametrize("bad", ["a\x00b", "\x1b[0m", "\ufffe"])
def test_strings_xml_cannot_carry_are_refused(bad: str) -> None:
    """CFG-23: nothing is restricted beyond what XML 1.0 itself cannot carry."""
    with pytest.raises(ConfigurationError):
        UplinkConfiguration("https://c/u", certificate_id=bad)
    with pytest.raises(ConfigurationError):
        UplinkConfiguration("https://c/u" + bad)
    with pytest.raises(ConfigurationError):
        UplinkConfiguration("https://c/u", user_level=["User" + bad])
