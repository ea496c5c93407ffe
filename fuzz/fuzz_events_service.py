"""Fuzz target: the event service's SOAP handler (events.md sections 1-9).

Input bytes are POSTed as a request body to the service path and to a live
pull point; input starting with ``!`` is instead wrapped as the body element
of a SOAP envelope, and input starting with ``#`` drives a generator of the
service's operations with fuzzed values, so the operation handlers, not only
the envelope parser, see it.  The handler must answer (a response or a pending poll) and never
raise anything but UplinkError.
"""

from __future__ import annotations

import atheris
from _common import main

from uplink62676.query.resources import GeoLocation, Resource
from uplink62676.services.events import EventService

_NS = (b'xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
       b'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
       b'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
       b'xmlns:tt="http://www.onvif.org/ver10/schema" '
       b'xmlns:tns1="http://www.onvif.org/ver10/topics"')
_CREATE = b"<env:Envelope " + _NS + b"><env:Body><tev:CreatePullPointSubscription/>" \
    b"</env:Body></env:Envelope>"
_T0 = 1_772_352_930.0
_HEADERS = {"host": "vss", "content-type": "application/soap+xml"}


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def _generated(fdp: atheris.FuzzedDataProvider) -> bytes:
    def t() -> str:
        return _esc(fdp.ConsumeUnicodeNoSurrogates(16))

    ops = [
        lambda: f"<tev:PullMessages><tev:Timeout>{t()}</tev:Timeout>"
                f"<tev:MessageLimit>{t()}</tev:MessageLimit></tev:PullMessages>",
        lambda: f"<wsnt:Renew><wsnt:TerminationTime>{t()}</wsnt:TerminationTime></wsnt:Renew>",
        lambda: f"<tev:Seek><tev:UtcTime>{t()}</tev:UtcTime><tev:Reverse>{t()}</tev:Reverse>"
                "</tev:Seek>",
        lambda: "<tev:SetSynchronizationPoint/>",
        lambda: "<wsnt:Unsubscribe/>",
        lambda: f"<tev:CreatePullPointSubscription><tev:InitialTerminationTime>{t()}"
                "</tev:InitialTerminationTime><tev:SubscriptionPolicy><tev:ChangedOnly>"
                f"{t()}</tev:ChangedOnly></tev:SubscriptionPolicy>"
                "</tev:CreatePullPointSubscription>",
        lambda: "<tev:GetEventProperties/>",
        lambda: "<tev:GetServiceCapabilities/>",
    ]
    body = ops[fdp.ConsumeIntInRange(0, len(ops) - 1)]()
    return (b"<env:Envelope " + _NS + b"><env:Body>" + body.encode("utf-8", "replace")
            + b"</env:Body></env:Envelope>")


def target(data: bytes) -> None:
    svc = EventService()
    svc.put_resource(Resource("A:1", "MediaProfile", "n", GeoLocation(1.0, 2.0)), _T0)
    created = svc.handle("POST", "/onvif/events_service", _HEADERS, _CREATE, _T0)
    path = created.body.split(b"<wsa:Address>http://vss")[1].split(b"<")[0].decode()
    if data.startswith(b"#"):
        data = b"!" + _generated(atheris.FuzzedDataProvider(data[1:])).split(
            b"<env:Body>", 1)[1].rsplit(b"</env:Body>", 1)[0]
    if data.startswith(b"!"):
        body = b"<env:Envelope " + _NS + b"><env:Body>" + data[1:] + b"</env:Body></env:Envelope>"
    else:
        body = data
    for p in ("/onvif/events_service", path):
        svc.handle("POST", p, _HEADERS, body, _T0 + 1)
        svc.take_completed()
    svc.handle_timeout(_T0 + 1000)


if __name__ == "__main__":
    main(target)
