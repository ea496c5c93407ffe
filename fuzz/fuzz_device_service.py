"""Fuzz the device, Media and Media2 services (uplink62676.services.device / .media).

The first byte picks the service (device, Media, Media2), how the rest is used
(raw body, wrapped as the body element of an envelope, or a generated operation
with fuzzed values), the requester and the authority.  Every input must yield a
response with a sane status; 200 answers must parse as SOAP, faults as faults;
``now`` comes from the input too (any float GetSystemDateAndTime may see).
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import atheris
from _common import main

from uplink62676.errors import SoapFault
from uplink62676.namespaces import TEV, TR2, TRT, TUP
from uplink62676.services.device import DeviceInformation, DeviceService, ServiceEntry
from uplink62676.services.media import MediaProfile, MediaService
from uplink62676.soap import SoapResponse, parse_fault, parse_response

_HEAD = (b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
         b'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
         b'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
         b'xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" '
         b'xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body>')
_TAIL = b"</env:Body></env:Envelope>"
_MEDIA = MediaService([MediaProfile("p1", "Main", "vs", "/media/p1"),
                       MediaProfile("p2", "Sub", "vs", "/media/p2", encoding="H265")])
_DEVICE = DeviceService(DeviceInformation(hostname="fuzz"), [
    ServiceEntry(TEV, "/onvif/events_service"),
    ServiceEntry(TRT, "/onvif/media_service", capabilities=_MEDIA.media_capabilities),
    ServiceEntry(TR2, "/onvif/media2_service", capabilities=_MEDIA.media2_capabilities),
    ServiceEntry(TUP, "/onvif/uplink_service"),
])
_LEVELS = (None, "Anonymous", "User", "Administrator")
_AUTHORITIES = (None, "cam7.example:8443", "[2001:db8::7]:80", "", "a@b:1", "[")
_TYPES = (None, "application/soap+xml; charset=utf-8", "text/xml", "text/plain")
_EMPTY_OPS = ("GetScopes", "GetHostname", "GetWsdlUrl", "GetNetworkInterfaces",
              "GetDeviceInformation", "GetServiceCapabilities", "SystemReboot")
_WORDS = ("true", "false", "1", "All", "Media", "Events", "PTZ", "p1", "p2", "RTP-Unicast",
          "RTP-Multicast", "RTSP", "UDP", "HTTP", "TCP", "RtspUnicast", "RtspOverHttp",
          "VideoSource", "VideoEncoder", "")


def _generated(fdp: atheris.FuzzedDataProvider) -> bytes:
    def v() -> str:
        if fdp.ConsumeBool():
            return fdp.PickValueInList(list(_WORDS))
        return escape(fdp.ConsumeUnicodeNoSurrogates(12))

    ops = (
        lambda: "<tds:GetSystemDateAndTime/>",
        lambda: f"<tds:GetCapabilities><tds:Category>{v()}</tds:Category>"
                f"<tds:Category>{v()}</tds:Category></tds:GetCapabilities>",
        lambda: f"<tds:GetServices><tds:IncludeCapability>{v()}</tds:IncludeCapability>"
                "</tds:GetServices>",
        lambda: "<tds:GetServiceCapabilities/><tds:GetDeviceInformation/>",
        lambda: f"<tds:{fdp.PickValueInList(list(_EMPTY_OPS))}/>",
        lambda: f"<trt:GetStreamUri><trt:StreamSetup><tt:Stream>{v()}</tt:Stream>"
                f"<tt:Transport><tt:Protocol>{v()}</tt:Protocol></tt:Transport>"
                f"</trt:StreamSetup><trt:ProfileToken>{v()}</trt:ProfileToken></trt:GetStreamUri>",
        lambda: f"<trt:GetSnapshotUri><trt:ProfileToken>{v()}</trt:ProfileToken>"
                "</trt:GetSnapshotUri>",
        lambda: f"<trt:GetProfile><trt:ProfileToken>{v()}</trt:ProfileToken></trt:GetProfile>",
        lambda: "<trt:GetProfiles/>",
        lambda: f"<tr2:GetProfiles><tr2:Token>{v()}</tr2:Token><tr2:Type>{v()}</tr2:Type>"
                "</tr2:GetProfiles>",
        lambda: f"<tr2:GetStreamUri><tr2:Protocol>{v()}</tr2:Protocol>"
                f"<tr2:ProfileToken>{v()}</tr2:ProfileToken></tr2:GetStreamUri>",
        lambda: f"<tr2:GetSnapshotUri><tr2:ProfileToken>{v()}</tr2:ProfileToken>"
                "</tr2:GetSnapshotUri>",
        lambda: "<tr2:GetServiceCapabilities/>",
    )
    body = ops[fdp.ConsumeIntInRange(0, len(ops) - 1)]()
    return _HEAD + body.encode("utf-8", "replace") + _TAIL


def _check(resp: SoapResponse) -> None:
    assert resp.status in (200, 400, 415, 500), resp.status
    if resp.status == 200:
        parse_response(resp.body)
    elif resp.headers[0][1].startswith("application/soap+xml"):
        fault = parse_fault(resp.body)
        assert isinstance(fault, SoapFault)
        assert resp.status == (400 if fault.code == "env:Sender" else 500)


def target(data: bytes) -> None:
    if len(data) < 2:
        return
    selector, knobs, rest = data[0], data[1], data[2:]
    mode = (selector >> 2) % 3
    if mode == 0:
        body = rest
    elif mode == 1:
        body = _HEAD + rest + _TAIL
    else:
        body = _generated(atheris.FuzzedDataProvider(rest))
    content_type = _TYPES[1] if mode == 2 else _TYPES[(selector >> 4) % len(_TYPES)]
    origin = {"scheme": ("https", "http", None)[knobs % 3],
              "authority": _AUTHORITIES[(knobs >> 2) % len(_AUTHORITIES)]}
    requester = _LEVELS[(knobs >> 5) % len(_LEVELS)]
    which = selector % 3
    if which == 0:
        now = float(int.from_bytes(rest[:5] or b"\0", "big")) - 2**38  # also out of range
        resp = _DEVICE.handle(body, content_type, now=now, requester=requester, **origin)
    elif which == 1:
        resp = _MEDIA.handle_media(body, content_type, requester=requester, **origin)
    else:
        resp = _MEDIA.handle_media2(body, content_type, requester=requester, **origin)
    _check(resp)


if __name__ == "__main__":
    main(target)
