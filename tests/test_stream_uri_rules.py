"""The rtsp:// URIs of GetStreamUri answers, mapped to the cloud's RTSP gateway (sans-I/O).

Agent side (``device --forward --rtsp``): the camera's LAN RTSP origin becomes
``rtsp://<tunneled origin host>:554`` (UPL-R21).  Cloud side (:class:`RtspUriRules`):
``rtsp://<client host>:554/x`` becomes the gateway's URL for the device on every
route.  Gateway: ``rtsp://<label>.DOMAIN:PORT/x`` routes by its host.
"""

from __future__ import annotations

import pytest

from uplink62676.camerarewrite import CameraRewriting
from uplink62676.errors import ConfigurationError
from uplink62676.frontdoor.events import RequestRouted
from uplink62676.frontdoor.rewrite import CloudRewriter, RtspUriRules
from uplink62676.frontdoor.routing import Route
from uplink62676.rtsp.gateway import parse_route

SOAP = "application/soap+xml; charset=utf-8"
MEDIA = ('<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/'
         '05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://'
         'www.onvif.org/ver10/schema" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl">'
         '<env:Body><trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{uri}</tt:Uri>'
         '<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>'
         '<tr2:GetStreamUriResponse><tr2:Uri>{uri}</tr2:Uri></tr2:GetStreamUriResponse>'
         '</env:Body></env:Envelope>')


def _request(authority: str, prefix: str = "", device: str = "cam-1") -> RequestRouted:
    return RequestRouted(stream_id=1, method="POST", target="/onvif/media_service",
                         authority=authority, headers=(),
                         route=Route.device(device, "/onvif/media_service", prefix))


def _through(rewriter: CloudRewriter, request: RequestRouted, uri: str) -> str:
    flt = rewriter.response_body(request, 200, ((b"content-type", SOAP.encode()),))
    assert flt is not None
    body = MEDIA.format(uri=uri).encode()
    out = (flt.feed(body) + flt.end()).decode()
    first = out.split("<tt:Uri>")[1].split("<")[0]
    assert out.split("<tr2:Uri>")[1].split("<")[0] == first  # Media2 alike
    return first


@pytest.mark.parametrize(("authority", "prefix", "device_uri", "expected"), [
    # path route: the gateway's /devices/<id>/ prefix
    ("127.0.0.1:8080", "/devices/cam-1", "rtsp://127.0.0.1:554/media/a/main",
     "rtsp://127.0.0.1:8554/devices/cam-1/media/a/main"),
    ("127.0.0.1:8080", "/devices/cam-1", "rtsp://127.0.0.1/media/a/main",  # default port
     "rtsp://127.0.0.1:8554/devices/cam-1/media/a/main"),
    # virtual host: the host routes on the gateway too
    ("cam-1.cloud.example:8443", "", "rtsp://cam-1.cloud.example:554/stream?x=1",
     "rtsp://cam-1.cloud.example:8554/stream?x=1"),
    # the device's own port: the gateway's path route
    ("cloud.example:20001", "", "rtsp://cloud.example:554/stream",
     "rtsp://cloud.example:8554/devices/cam-1/stream"),
    # another host or port: not the device's answer for this origin, left alone
    ("127.0.0.1:8080", "/devices/cam-1", "rtsp://10.0.0.9:554/stream",
     "rtsp://10.0.0.9:554/stream"),
    ("127.0.0.1:8080", "/devices/cam-1", "rtsp://127.0.0.1:8555/stream",
     "rtsp://127.0.0.1:8555/stream"),
])
def test_cloud_maps_the_devices_rtsp_uris_to_the_gateway(authority: str, prefix: str,
                                                         device_uri: str, expected: str) -> None:
    rewriter = CloudRewriter(extra_rules=RtspUriRules(8554, domain="cloud.example"))
    assert _through(rewriter, _request(authority, prefix), device_uri) == expected


def test_ids_that_need_quoting_and_bad_ports() -> None:
    rules = RtspUriRules(8554)
    (rule,) = rules(_request("cloud.example:20001", device="a b"))
    assert rule.target_prefix == "/devices/a%20b"
    assert rules(_request("", "/devices/x")) == ()
    with pytest.raises(ConfigurationError):
        RtspUriRules(0)


def test_agent_maps_the_cameras_lan_rtsp_uri_to_the_tunneled_origin() -> None:
    rw = CameraRewriting("http://192.168.1.20", rtsp_url="rtsp://192.168.1.20:8554")
    binding = rw.bind("http", "127.0.0.1:8080")
    assert binding is not None
    flt = binding.response_filter(SOAP)
    assert flt is not None
    body = MEDIA.format(uri="rtsp://192.168.1.20:8554/stream1").encode()
    out = flt.feed(body) + flt.end()
    assert out == body.replace(b"rtsp://192.168.1.20:8554/stream1", b"rtsp://127.0.0.1/stream1")
    # with a path prefix in --rtsp, as the bridge strips it
    rw = CameraRewriting("http://192.168.1.20", rtsp_url="rtsp://192.168.1.20/live")
    binding = rw.bind("http", "cam.example")
    assert binding is not None
    flt = binding.response_filter(SOAP)
    assert flt is not None
    body = MEDIA.format(uri="rtsp://192.168.1.20/live/ch1").encode()
    assert flt.feed(body) + flt.end() == body.replace(b"rtsp://192.168.1.20/live/ch1",
                                                      b"rtsp://cam.example/ch1")
    # without --rtsp the rtsp:// URIs stay
    plain = CameraRewriting("http://192.168.1.20").bind("http", "cam.example")
    assert plain is not None
    flt = plain.response_filter(SOAP)
    assert flt is not None
    body = MEDIA.format(uri="rtsp://192.168.1.20/live/ch1").encode()
    assert flt.feed(body) + flt.end() == body
    with pytest.raises(ConfigurationError):
        CameraRewriting("http://192.168.1.20", rtsp_url="http://192.168.1.20")


def test_gateway_routes_by_virtual_host() -> None:
    def by_host(host: str) -> str | None:
        return host.split(".", maxsplit=1)[0] if host.endswith(".cloud.example") else None

    route = parse_route("rtsp://cam-1.cloud.example:8554/media/a/main?x=1",
                        device_of_host=by_host)
    assert route is not None
    assert (route.device_id, route.path, route.public_base) == (
        "cam-1", "/media/a/main?x=1", "rtsp://cam-1.cloud.example:8554")
    assert route.urls.to_public("rtsp://cam-1/media/a/main/track1") == \
        "rtsp://cam-1.cloud.example:8554/media/a/main/track1"
    route = parse_route("rtsp://other.example:8554/devices/cam-2/s", device_of_host=by_host)
    assert route is not None and (route.device_id, route.path) == ("cam-2", "/s")
    assert parse_route("rtsp://other.example:8554/s", device_of_host=by_host) is None
    assert parse_route("rtsp://cam-1.cloud.example:8554/s") is None  # no hosts: path only
