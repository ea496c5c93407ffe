"""A legacy camera behind ``device --forward``: its LAN URIs become the client's origin
(DEV-R16), ``wsa:To`` goes back to the camera's URL and forwarding headers name the
client's origin (DEV-R17); through a real cloud, front door and curl."""

from __future__ import annotations

import asyncio

import pytest

from _adapters_util import Pki, aio, fast_schedule, free_port, make_pki
from uplink62676.aio import CloudServer, DeviceAgent, UplinkSpec
from uplink62676.aio.expose import ExposeServer
from uplink62676.aio.forward import HttpForwarder
from uplink62676.camerarewrite import CameraRewriting
from uplink62676.frontdoor.ports import PortAssigner

ANSWER = ('<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="http://www.w3.org/'
          '2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body>'
          '<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/'
          'media/wsdl</tds:Namespace><tds:XAddr>{cam}/cam/onvif/media</tds:XAddr>'
          '</tds:Service></tds:GetServicesResponse></env:Body></env:Envelope>')
REQUEST = ('<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="'
           'http://www.w3.org/2005/08/addressing"><env:Header><wsa:To>{to}/onvif/device_service'
           '</wsa:To></env:Header><env:Body><GetServices xmlns="http://www.onvif.org/ver10/'
           'device/wsdl"/></env:Body></env:Envelope>')


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_camera_rewriting_both_ways() -> None:
    rw = CameraRewriting("http://192.168.1.20:8080/cam")
    b = rw.bind("https", "cam-1.example:8443")
    assert b is not None and rw.bind("https", None) is None
    flt = b.response_filter("application/soap+xml")
    assert flt is not None
    body = ANSWER.format(cam="http://192.168.1.20:8080").encode()
    out = flt.feed(body) + flt.end()
    assert out == body.replace(b"http://192.168.1.20:8080/cam", b"https://cam-1.example:8443")
    assert b.response_filter("image/jpeg") is None
    req = REQUEST.format(to="https://cam-1.example:8443").encode()
    assert b.request_body(req, "application/soap+xml") == req.replace(
        b"https://cam-1.example:8443", b"http://192.168.1.20:8080/cam")
    assert dict(b.forwarding_headers())[b"x-forwarded-host"] == b"cam-1.example:8443"


@aio
async def test_forwarded_camera_answers_point_back_through_the_cloud(pki: Pki) -> None:
    seen: dict[str, bytes] = {}

    async def camera(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        seen["head"], seen["body"] = head, await reader.readexactly(length)
        answer = ANSWER.format(cam=f"http://127.0.0.1:{port}").encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/soap+xml\r\ncontent-length: "
                     + str(len(answer)).encode() + b"\r\nconnection: close\r\n\r\n" + answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(camera, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cloud = CloudServer(ssl_context=pki.cloud_ctx())
    await cloud.start()
    low = free_port()
    expose = ExposeServer(cloud, device_ports=PortAssigner(low, low))
    await expose.start()
    agent = DeviceAgent(HttpForwarder(f"http://127.0.0.1:{port}/cam"), identity="cam-1",
                        schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(f"https://localhost:{cloud.port}/uplink",
                                            pki.device_ctx("cam-1"))])
    await agent.start()
    try:
        await cloud.wait_for_device("cam-1")
        for _ in range(50):
            if expose.device_port("cam-1"):
                break
            await asyncio.sleep(0.05)
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "-H", "content-type: application/soap+xml", "--data-binary", "@-",
            f"http://127.0.0.1:{low}/onvif/device_service", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(REQUEST.format(to=f"http://127.0.0.1:{low}").encode())
        assert f"<tds:XAddr>http://127.0.0.1:{low}/onvif/media</tds:XAddr>".encode() in out
        assert f"<wsa:To>http://127.0.0.1:{port}/cam/onvif/device_service".encode() \
            in seen["body"]
        head = seen["head"].lower()
        assert f"x-forwarded-host: 127.0.0.1:{low}".encode() in head
        assert b"forwarded: " in head and b"x-forwarded-proto: http" in head
    finally:
        await agent.stop()
        await expose.close()
        await cloud.close()
        server.close()
