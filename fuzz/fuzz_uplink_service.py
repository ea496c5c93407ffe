"""Fuzz the uplink configuration service handler (uplink62676.services.uplink).

The first byte picks the requester level, the content type and whether the
rest is wrapped into a SetUplink/DeleteUplink envelope (to get past the
envelope checks quickly).  Every input must yield a response with a sane
status; SOAP answers must be parseable; nothing else may escape.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import atheris
from _common import main

from uplink62676.errors import SoapFault
from uplink62676.services.uplink import StaticSecurityLookup, UplinkService
from uplink62676.soap import parse_fault, parse_response

_LEVELS = ("Administrator", "Operator", "User", "Anonymous", "onvif:User x", "")
_TYPES = (None, "application/soap+xml; charset=utf-8", "text/xml", "text/plain",
          "application/soap+xml; charset=latin-1")
_HEAD = (b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
         b'xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl"><env:Body>')
_WRAPS = (
    (b"", b""),
    (_HEAD + b"<tup:SetUplink><tup:Configuration>",
     b"</tup:Configuration></tup:SetUplink></env:Body></env:Envelope>"),
    (_HEAD + b"<tup:DeleteUplink>", b"</tup:DeleteUplink></env:Body></env:Envelope>"),
    (_HEAD, b"</env:Body></env:Envelope>"),
)
_SERVICE = UplinkService(security=StaticSecurityLookup({"c"}, {"p"}, {"a"}))


_ADDRESSES = ("https://a.example/u", "wss://b.example/w", "HTTPS://a.example/u", "ftp://c/",
              "https:/nohost", "", "https://a.example/u ")
_VALUES = ("c", "p", "a", "x", "", "Operator", "User Administrator", "Anonymous", "onvif:User")
_ELEMENTS = ("CertificateID", "UserLevel", "Status", "CertPathValidationPolicyID",
             "AuthorizationServer", "Error", "Unknown")


def _structured(data: bytes) -> bytes:
    """A SetUplink or DeleteUplink envelope whose fields the fuzzer chooses."""
    fdp = atheris.FuzzedDataProvider(data)
    address = escape(fdp.PickValueInList(list(_ADDRESSES)) + fdp.ConsumeUnicodeNoSurrogates(4))
    if fdp.ConsumeBool():
        return (_HEAD + b"<tup:DeleteUplink><tup:RemoteAddress>" + address.encode()
                + b"</tup:RemoteAddress></tup:DeleteUplink></env:Body></env:Envelope>")
    parts = [f"<tup:RemoteAddress>{address}</tup:RemoteAddress>"]
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList(list(_ELEMENTS))
        value = fdp.PickValueInList(list(_VALUES)) if fdp.ConsumeBool() else (
            fdp.ConsumeUnicodeNoSurrogates(70))
        parts.append(f"<tup:{name}>{escape(value)}</tup:{name}>")
    return (_HEAD + b"<tup:SetUplink><tup:Configuration>" + "".join(parts).encode()
            + b"</tup:Configuration></tup:SetUplink></env:Body></env:Envelope>")


def target(data: bytes) -> None:
    if not data:
        return
    selector, rest = data[0], data[1:]
    if selector & 0x80 and not selector & 0x40:
        body = _structured(rest)
        content_type = _TYPES[1]
        level = _LEVELS[0] if selector & 1 else _LEVELS[(selector >> 1) % len(_LEVELS)]
    else:
        prefix, suffix = _WRAPS[selector % len(_WRAPS)]
        body = prefix + rest + suffix
        content_type = _TYPES[(selector >> 2) % len(_TYPES)]
        level = _LEVELS[(selector >> 5) % len(_LEVELS)]
    resp = _SERVICE.handle(body, content_type=content_type, user_level=level)
    assert resp.status in (200, 400, 415, 500), resp.status
    if resp.status == 200:
        parse_response(resp.body)
    elif resp.headers[0][1].startswith("application/soap+xml"):
        fault = parse_fault(resp.body)
        assert isinstance(fault, SoapFault)
        assert resp.status == (400 if fault.code == "env:Sender" else 500)
    # keep the state small so the fuzzer does not hit MaxUplinks forever
    for config in _SERVICE.configurations[2:]:
        _SERVICE.delete_uplink(config.remote_address)


if __name__ == "__main__":
    main(target)
