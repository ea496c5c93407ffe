"""Client side of the uplink configuration service (config-service.md section 3).

A cloud configures the uplinks of a device it reaches (often through an
uplink itself) with :class:`UplinkServiceClient`: each operation has a method
that returns a :class:`~uplink62676.soap.SoapRequest` (body, ``Content-Type``
with the SOAP action as CFG-R1 asks, action) to POST to :attr:`path`, and a
``read_*`` method for the answer, raising the device's
:class:`~uplink62676.errors.SoapFault` for a fault (HTTP 400 or 500, CFG-R12)
and :class:`~uplink62676.errors.RemoteProtocolError` for anything unusable.
Sans-I/O, like :class:`~uplink62676.query.client.QueryClient`: the caller
moves the bytes.
"""

from __future__ import annotations

import warnings
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

__all__ = ["DEFAULT_SERVICE_PATH", "UplinkServiceClient"]

#: Where devices usually serve the uplink configuration service.
DEFAULT_SERVICE_PATH: Final = "/onvif/uplink_service"

_NSMAP: Final = {"tup": TUP}


def _tup(name: str) -> str:
    return f"{{{TUP}}}{name}"


def _request(operation: str, *children: etree._Element) -> SoapRequest:
    elem = etree.Element(_tup(operation), nsmap=_NSMAP)
    elem.extend(children)
    return build_request(elem, ACTIONS[operation])


def _build_get_service_capabilities() -> SoapRequest:
    """``tup:GetServiceCapabilities`` (CFG-1)."""
    return _request("GetServiceCapabilities")


def _build_get_uplinks() -> SoapRequest:
    """``tup:GetUplinks`` (CFG-2)."""
    return _request("GetUplinks")


def _build_set_uplink(config: UplinkConfiguration) -> SoapRequest:
    """``tup:SetUplink`` with ``config`` (CFG-4); Status and Error are not sent (CFG-5, CFG-R5)."""
    return _request("SetUplink", configuration_to_xml(config.without_runtime()))


def _build_delete_uplink(remote_address: str) -> SoapRequest:
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


def _parse_get_service_capabilities_response(data: bytes, status: int = 200) -> Capabilities:
    """Read ``tup:GetServiceCapabilitiesResponse``; absent attributes follow CFG-R2."""
    body = _body(data, status, "GetServiceCapabilitiesResponse")
    caps = [c for c in body if c.tag == _tup("Capabilities")]
    if len(caps) != 1:
        raise RemoteProtocolError("response must hold exactly one tup:Capabilities")
    try:
        return capabilities_from_xml(caps[0])
    except ConfigurationError as exc:
        raise RemoteProtocolError(f"invalid tup:Capabilities: {exc}") from None


def _parse_get_uplinks_response(data: bytes, status: int = 200) -> list[UplinkConfiguration]:
    """Read ``tup:GetUplinksResponse``: every configuration with Status and Error (CFG-2, CFG-3)."""
    body = _body(data, status, "GetUplinksResponse")
    try:
        return [configuration_from_xml(c) for c in body if c.tag == _tup("Configuration")]
    except ConfigurationError as exc:
        raise RemoteProtocolError(f"invalid tup:Configuration: {exc}") from None


def _parse_set_uplink_response(data: bytes, status: int = 200) -> None:
    """Read ``tup:SetUplinkResponse`` (empty) or raise the fault (CFG-13..18)."""
    _body(data, status, "SetUplinkResponse")


def _parse_delete_uplink_response(data: bytes, status: int = 200) -> None:
    """Read ``tup:DeleteUplinkResponse`` (empty) or raise the fault (CFG-19)."""
    _body(data, status, "DeleteUplinkResponse")


class UplinkServiceClient:
    """Requests to, and answers of, one device's uplink configuration service (section 3).

    ``path`` is the service address to POST to (a path through the cloud's
    tunnel, or a full URL for a direct client); it is not used to build the
    bodies.  The object holds no other state, so one may serve many calls.
    """

    __slots__ = ("path",)

    def __init__(self, path: str = DEFAULT_SERVICE_PATH) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"UplinkServiceClient({self.path!r})"

    # --- requests -----------------------------------------------------------------------------

    def get_service_capabilities(self) -> SoapRequest:
        """``tup:GetServiceCapabilities`` (CFG-1)."""
        return _build_get_service_capabilities()

    def get_uplinks(self) -> SoapRequest:
        """``tup:GetUplinks`` (CFG-2)."""
        return _build_get_uplinks()

    def set_uplink(self, config: UplinkConfiguration) -> SoapRequest:
        """``tup:SetUplink`` with ``config`` (CFG-4); Status and Error are not sent (CFG-5, R5)."""
        return _build_set_uplink(config)

    def delete_uplink(self, remote_address: str) -> SoapRequest:
        """``tup:DeleteUplink`` for ``remote_address``, sent exactly as stored (CFG-10, CFG-R6)."""
        return _build_delete_uplink(remote_address)

    # --- answers ------------------------------------------------------------------------------

    def read_service_capabilities(self, data: bytes, status: int = 200) -> Capabilities:
        """Read ``tup:GetServiceCapabilitiesResponse``; absent attributes follow CFG-R2."""
        return _parse_get_service_capabilities_response(data, status)

    def read_uplinks(self, data: bytes, status: int = 200) -> list[UplinkConfiguration]:
        """Read ``tup:GetUplinksResponse``: every configuration with Status and Error (CFG-2, 3)."""
        return _parse_get_uplinks_response(data, status)

    def read_set_uplink(self, data: bytes, status: int = 200) -> None:
        """Read ``tup:SetUplinkResponse`` (empty) or raise the fault (CFG-13..18)."""
        _parse_set_uplink_response(data, status)

    def read_delete_uplink(self, data: bytes, status: int = 200) -> None:
        """Read ``tup:DeleteUplinkResponse`` (empty) or raise the fault (CFG-19)."""
        _parse_delete_uplink_response(data, status)


#: The free functions of 0.1, now methods of :class:`UplinkServiceClient`.
_OLD_FUNCTIONS: Final = {
    "build_get_service_capabilities": "get_service_capabilities",
    "build_get_uplinks": "get_uplinks",
    "build_set_uplink": "set_uplink",
    "build_delete_uplink": "delete_uplink",
    "parse_get_service_capabilities_response": "read_service_capabilities",
    "parse_get_uplinks_response": "read_uplinks",
    "parse_set_uplink_response": "read_set_uplink",
    "parse_delete_uplink_response": "read_delete_uplink",
}


def __getattr__(name: str) -> object:
    """The 0.1 free functions still resolve, with a DeprecationWarning."""
    method = _OLD_FUNCTIONS.get(name)
    if method is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"{__name__}.{name} is now UplinkServiceClient().{method}; "
                  f"the old name will be removed in 0.3", DeprecationWarning, stacklevel=2)
    return getattr(UplinkServiceClient(), method)
