"""XML namespace URIs used across ONVIF, in one place (README section 5).

Prefixes here are the conventional ones we *emit*; parsers always resolve
names through the namespaces in scope and never compare prefixes.
"""

from __future__ import annotations

from typing import Final

from .errors import ConfigurationError

__all__ = ["PREFIXES", "qname"]

TT: Final = "http://www.onvif.org/ver10/schema"
TUP: Final = "http://www.onvif.org/ver10/uplink/wsdl"
TEV: Final = "http://www.onvif.org/ver10/events/wsdl"
TNS1: Final = "http://www.onvif.org/ver10/topics"
TER: Final = "http://www.onvif.org/ver10/error"
TDS: Final = "http://www.onvif.org/ver10/device/wsdl"
TRT: Final = "http://www.onvif.org/ver10/media/wsdl"
TR2: Final = "http://www.onvif.org/ver20/media/wsdl"
TPTZ: Final = "http://www.onvif.org/ver20/ptz/wsdl"
TSE: Final = "http://www.onvif.org/ver10/search/wsdl"
TRP: Final = "http://www.onvif.org/ver10/replay/wsdl"
ENV: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSADIS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
D: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSNT: Final = "http://docs.oasis-open.org/wsn/b-2"
WSNTW: Final = "http://docs.oasis-open.org/wsn/bw-2"
WSTOP: Final = "http://docs.oasis-open.org/wsn/t-1"
WSRF_BF: Final = "http://docs.oasis-open.org/wsrf/bf-2"
WSRF_R: Final = "http://docs.oasis-open.org/wsrf/r-2"
WSRF_RW: Final = "http://docs.oasis-open.org/wsrf/rw-2"
XS: Final = "http://www.w3.org/2001/XMLSchema"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"

#: Conventional prefix -> namespace URI, used when emitting XML and for the
#: prefixed names in :class:`uplink62676.errors.SoapFault`.
PREFIXES: Final[dict[str, str]] = {
    "env": ENV,
    "tt": TT,
    "tup": TUP,
    "tev": TEV,
    "tns1": TNS1,
    "ter": TER,
    "tds": TDS,
    "trt": TRT,
    "tr2": TR2,
    "tptz": TPTZ,
    "tse": TSE,
    "trp": TRP,
    "wsa": WSA,
    "wsnt": WSNT,
    "wstop": WSTOP,
    "wsrf-bf": WSRF_BF,
    "wsrf-r": WSRF_R,
    "xs": XS,
    "xsi": XSI,
}


def qname(prefixed: str) -> str:
    """Turn ``'ter:InvalidArgVal'`` into Clark notation ``'{uri}InvalidArgVal'``."""
    prefix, sep, local = prefixed.partition(":")
    if not sep or prefix not in PREFIXES:
        raise ConfigurationError(f"unknown prefixed name {prefixed!r}")
    return f"{{{PREFIXES[prefix]}}}{local}"
