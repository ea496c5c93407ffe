"""Client side of the uplink configuration service (config-service.md section 3).

A cloud configures the uplinks of a device it reaches (often through an
uplink itself) with these helpers: ``build_*`` returns a
:class:`~uplink62676.soap.SoapRequest` (body, ``Content-Type`` with the SOAP
action as CFG-R1 asks, action) to POST to the service address; ``parse_*``
reads the answer, raising the device's :class:`~uplink62676.errors.SoapFault`
for a fault (HTTP 400 or 500, CFG-R12) and
:class:`~uplink62676.errors.RemoteProtocolError` for anything unusable.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from ..config import (
    Capabilities,
    UplinkConfiguration,
    capabilities_from_xml,
    configuration_from_xml,
    configuration_to_xml,
)
from ..errors import ConfigurationError, RemoteProtocolError
from ..namespaces import TUP
from ..soap import SoapRequest, build_request, parse_response
from .uplink import ACTIONS

__all__ = [
    "build_delete_uplink",
    "build_get_service_capabilities",
    "build_get_uplinks",
    "build_set_uplink",
    "parse_delete_uplink_response",
    "parse_get_service_capabilities_response",
    "parse_get_uplinks_response",
    "parse_set_uplink_response",
]

_NSMAP: Final = {"tup": TUP}


def _tup(name: str) -> str:
    return f"{{{TUP}}}{name}"


def _request(operation: str, *children: etree._Element) -> SoapRequest:
    elem = etree.Element(_tup(operation), nsmap=_NSMAP)
    elem.extend(children)
    return build_request(elem, ACTIONS[operation])


def build_get_service_capabilities() -> SoapRequest:
    """``tup:GetServiceCapabilities`` (CFG-1)."""
    return _request("GetServiceCapabilities")


def build_get_uplinks() -> SoapRequest:
    """``tup:GetUplinks`` (CFG-2)."""
    return _request("GetUplinks")


def build_set_uplink(config: UplinkConfiguration) -> SoapRequest:
    """``tup:SetUplink`` with ``config`` (CFG-4); Status and Error are not sent (CFG-5, CFG-R5)."""
    return _request("SetUplink", configuration_to_xml(config.without_runtime()))


def build_delete_uplink(remote_address: str) -> SoapRequest:
    """``tup:DeleteUplink`` for ``remote_address``, sent exactly as stored (CFG-10, CFG-R6)."""
    address = etree.Element(_tup("RemoteAddress"), nsmap=_NSMAP)
    address.text = remote_address
    return _request("DeleteUplink", address)


def _body(data: bytes, status: int, expected: str) -> etree._Element:
    env = parse_response(data, status=status)
    if env.body.tag != _tup(expected):
        raise RemoteProtocolError(
            f"expected tup:{expected}, got {env.body.tag!r}", http_status=status
        )
    return env.body


def parse_get_service_capabilities_response(data: bytes, status: int = 200) -> Capabilities:
    """Read ``tup:GetServiceCapabilitiesResponse``; absent attributes follow CFG-R2."""
    body = _body(data, status, "GetServiceCapabilitiesResponse")
    caps = [c for c in body if c.tag == _tup("Capabilities")]
    if len(caps) != 1:
        raise RemoteProtocolError("response must hold exactly one tup:Capabilities")
    try:
        return capabilities_from_xml(caps[0])
    except ConfigurationError as exc:
        raise RemoteProtocolError(f"invalid tup:Capabilities: {exc}") from None


def parse_get_uplinks_response(data: bytes, status: int = 200) -> list[UplinkConfiguration]:
    """Read ``tup:GetUplinksResponse``: every configuration with Status and Error (CFG-2, CFG-3)."""
    body = _body(data, status, "GetUplinksResponse")
    try:
        return [configuration_from_xml(c) for c in body if c.tag == _tup("Configuration")]
    except ConfigurationError as exc:
        raise RemoteProtocolError(f"invalid tup:Configuration: {exc}") from None


def parse_set_uplink_response(data: bytes, status: int = 200) -> None:
    """Read ``tup:SetUplinkResponse`` (empty) or raise the fault (CFG-13..18)."""
    _body(data, status, "SetUplinkResponse")


def parse_delete_uplink_response(data: bytes, status: int = 200) -> None:
    """Read ``tup:DeleteUplinkResponse`` (empty) or raise the fault (CFG-19)."""
    _body(data, status, "DeleteUplinkResponse")
