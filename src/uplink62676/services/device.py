"""The smallest device service a VSS behind an uplink needs: ``tds:GetServices`` (UPL-59).

Sans-I/O: SOAP bytes in, a :class:`~uplink62676.soap.SoapResponse` out.  The
XAddrs are built from the origin the request came through (``:scheme`` and
``:authority``), so a client that follows them comes back through the same
cloud (UPL-59, UPL-R21).
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from ..namespaces import TDS, TEV
from ..soap import Envelope, SoapResponse, generic_fault, handle_request

__all__ = ["DEVICE_SERVICE_PATH", "get_services_body", "handle_device_service"]

#: Where the minimal device service (GetServices only) answers.
DEVICE_SERVICE_PATH: Final = "/onvif/device_service"


def get_services_body(base: str, events_path: str) -> etree._Element:
    """``tds:GetServicesResponse`` naming the device and event services under ``base``."""
    resp = etree.Element(f"{{{TDS}}}GetServicesResponse", nsmap={"tds": TDS})
    for namespace, path, (major, minor) in ((TDS, DEVICE_SERVICE_PATH, (2, 6)),
                                            (TEV, events_path, (2, 6))):
        svc = etree.SubElement(resp, f"{{{TDS}}}Service")
        etree.SubElement(svc, f"{{{TDS}}}Namespace").text = namespace
        etree.SubElement(svc, f"{{{TDS}}}XAddr").text = base + path
        version = etree.SubElement(svc, f"{{{TDS}}}Version")
        etree.SubElement(version, f"{{{TDS}}}Major").text = str(major)
        etree.SubElement(version, f"{{{TDS}}}Minor").text = str(minor)
    return resp


def handle_device_service(body: bytes, content_type: str | None, *, scheme: str | None,
                          authority: str | None, events_path: str) -> SoapResponse:
    """Answer one device-service request: GetServices, or ``ter:ActionNotSupported``."""
    base = f"{scheme or 'https'}://{authority or 'localhost'}"

    def dispatch(envelope: Envelope) -> etree._Element:
        if envelope.operation != f"{{{TDS}}}GetServices":
            raise generic_fault("ter:ActionNotSupported")
        return get_services_body(base, events_path)

    return handle_request(body, content_type, dispatch)
