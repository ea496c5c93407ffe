"""GetStreamUri through the cloud returns a URI that plays (issue 12 item 3, MED-R12, UPL-R21).

One GStreamer camera, the CLI cloud with ``--users``, ``--rtsp-listen``,
``--device-ports`` and ``--expose-domain localhost``, and two CLI device agents:

* ``cam-1``: ``device --simulate 1 --rtsp rtsp://CAMERA`` -- the simulated
  media service answers ``rtsp://<origin host>:554/media/<camera>/main``, the
  camera serves that path;
* ``cam-2``: ``device --forward http://ONVIF --rtsp rtsp://CAMERA`` -- a camera's
  own ONVIF media service (here :class:`MediaService` behind a plain HTTP
  server) answers its LAN URI ``rtsp://127.0.0.1:<camera port>/stream``.

A stock client (onvif-python ``ONVIFClient``) or a plain SOAP POST asks for the
stream URI through the cloud; ffmpeg plays what it got, with alice's password.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _adapters_util import Pki, free_port, make_pki
from _video_util import CMD, Proc, Stack, ffmpeg_frames, stack
from uplink62676.app.simulate import SimulatedVss
from uplink62676.services.media import MediaProfile, MediaService

pytestmark = pytest.mark.video

HERE = Path(__file__).resolve().parent
ALICE = ("alice", "wonder-land")
DOMAIN = "localhost"
_CAMERA = SimulatedVss(1, seed=0).cameras[0]
MAIN, SUB = (p.stream_path for p in _CAMERA.media_profiles())
TOKEN = _CAMERA.tokens()[1]
MEDIA1 = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/'
          '05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://'
          'www.onvif.org/ver10/schema"><s:Body><trt:GetStreamUri><trt:StreamSetup><tt:Stream>'
          'RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport>'
          '</trt:StreamSetup><trt:ProfileToken>{token}</trt:ProfileToken></trt:GetStreamUri>'
          '</s:Body></s:Envelope>')
MEDIA2 = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/'
          '05/soap-envelope" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"><s:Body>'
          '<tr2:GetStreamUri><tr2:Protocol>RtspUnicast</tr2:Protocol><tr2:ProfileToken>{token}'
          '</tr2:ProfileToken></tr2:GetStreamUri></s:Body></s:Envelope>')


class _OnvifCamera(http.server.BaseHTTPRequestHandler):
    """A camera's own ONVIF media service on its LAN address (one profile, ``/stream``)."""

    media: MediaService

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        answer = self.media.handle_media(body, self.headers.get("content-type"), scheme="http",
                                         authority=self.headers.get("host"))
        self.send_response(answer.status)
        self.send_header("content-type", "application/soap+xml; charset=utf-8")
        self.send_header("content-length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, *args: object) -> None:
        pass


class Broker:
    def __init__(self, s: Stack, low: int, onvif: http.server.HTTPServer, cam2: Proc) -> None:
        self.s, self.low, self.onvif, self.cam2 = s, low, onvif, cam2


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("streamuri")
    pki: Pki = make_pki(tmp)
    users = tmp / "users"
    users.write_text(f"{ALICE[0]} {ALICE[1]} cam-*\nbob builder other-*\n")
    users.chmod(0o600)
    low = free_port()
    for s in stack(pki, mounts=(MAIN, SUB),
                   extra=("--users", str(users), "--device-ports", f"{low}-{low + 1}",
                          "--state-dir", str(tmp / "state"), "--expose-domain", DOMAIN,
                          "--rtsp-max-sessions-per-user", "8",
                          "--rtsp-max-sessions-per-device", "8"),
                   device_extra=("--simulate", "1", "--change-rate", "0")):
        handler = type("Handler", (_OnvifCamera,), {"media": MediaService(
            [MediaProfile("main", "main stream", "vs", "/stream")], rtsp_port=s.camera_port)})
        onvif = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=onvif.serve_forever, daemon=True).start()
        cam2 = Proc([*CMD, "device", "--remote",
                     f"https://localhost:{s.listen}/uplink", "--cert", pki.devices["cam-2"][0],
                     "--key", pki.devices["cam-2"][1], "--ca", pki.ca,
                     "--forward", f"http://127.0.0.1:{onvif.server_port}",
                     "--rtsp", f"rtsp://127.0.0.1:{s.camera_port}"])
        try:
            s.cloud.wait_line("device cam-2 connected")
            deadline = time.monotonic() + 15
            while True:  # the device's own port is leased once it is up
                try:
                    socket.create_connection(("127.0.0.1", low), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield Broker(s, low, onvif, cam2)
        finally:
            cam2.stop()
            onvif.shutdown()


def _with_password(uri: str) -> str:
    return uri.replace("rtsp://", f"rtsp://{ALICE[0]}:{ALICE[1]}@", 1)


def _soap(url: str, body: str) -> str:
    r = subprocess.run(["curl", "-sS", "--digest", "-u", ":".join(ALICE), "-H",
                        "content-type: application/soap+xml; charset=utf-8", "--data-binary",
                        "@-", url], input=body.encode(), capture_output=True, timeout=30,
                       check=False)
    assert r.returncode == 0, r.stderr
    text = r.stdout.decode()
    found = re.search(r"<(?:tt|tr2):Uri>([^<]*)</", text)
    assert found is not None, text
    return found.group(1)


def test_onvif_python_by_the_devices_own_port(broker: Broker) -> None:
    """ONVIFClient at the device's own front-door port: GetStreamUri names the gateway's
    path route for the device, and ffmpeg plays it."""
    s = broker.s
    r = subprocess.run([sys.executable, str(HERE / "stockclients" / "onvif_python_client.py"),
                        "localhost", str(broker.low), *ALICE], capture_output=True, text=True,
                       timeout=120, check=False, env=dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert "error" not in out, out
    uri = out["stream_uri"]
    assert uri == f"rtsp://localhost:{s.rtsp}/devices/cam-1{MAIN}", uri
    assert ffmpeg_frames(_with_password(uri), frames=50) >= 50


def test_media2_by_path_plays(broker: Broker) -> None:
    """Media2 GetStreamUri (``tr2:Uri``) on the path route ``/devices/cam-1/``."""
    s = broker.s
    uri = _soap(f"http://127.0.0.1:{s.expose}/devices/cam-1/onvif/media2_service",
                MEDIA2.format(token=TOKEN))
    assert uri == f"rtsp://127.0.0.1:{s.rtsp}/devices/cam-1{MAIN}", uri
    assert ffmpeg_frames(_with_password(uri), frames=50) >= 50


def test_forwarded_cameras_lan_uri_plays(broker: Broker) -> None:
    """``device --forward http://CAMERA --rtsp rtsp://CAMERA``: the camera's LAN URI
    ``rtsp://127.0.0.1:<camera port>/stream`` becomes the cloud's, and plays."""
    s = broker.s
    uri = _soap(f"http://127.0.0.1:{s.expose}/devices/cam-2/onvif/media_service",
                MEDIA1.format(token="main"))
    assert uri == f"rtsp://127.0.0.1:{s.rtsp}/devices/cam-2/stream", uri
    assert ffmpeg_frames(_with_password(uri), frames=50) >= 50


def _digest(user: str, password: str, challenge: str, method: str, uri: str) -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    ha1 = hashlib.md5(f"{user}:{params['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    if "qop" in params:
        cnonce, nc = "0a4f113b", "00000001"
        response = hashlib.md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}".encode())
        return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}"'
                f', uri="{uri}", response="{response.hexdigest()}", qop=auth, nc={nc}, '
                f'cnonce="{cnonce}"')
    response = hashlib.md5(f"{ha1}:{params['nonce']}:{ha2}".encode())
    return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
            f'uri="{uri}", response="{response.hexdigest()}"')


class _RtspClient:
    """Just enough RTSP/TCP to play a URL whose host the resolver does not know."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.sock.settimeout(10)
        self.buf = b""
        self.cseq = 0
        self.auth: str | None = None

    def _head(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            while self.buf[:1] == b"$" and len(self.buf) >= 4:  # interleaved before a reply
                size = int.from_bytes(self.buf[2:4], "big")
                if len(self.buf) < 4 + size:
                    break
                self.buf = self.buf[4 + size:]
            self.buf += self.sock.recv(65536)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        size = int(headers.get("content-length", "0"))
        while len(self.buf) < size:
            self.buf += self.sock.recv(65536)
        body, self.buf = self.buf[:size], self.buf[size:]
        return int(lines[0].split()[1]), headers, body

    def ask(self, method: str, uri: str, *extra: str) -> tuple[int, dict[str, str], bytes]:
        for _ in range(2):
            self.cseq += 1
            lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {self.cseq}", *extra]
            if self.auth is not None:
                lines.append("Authorization: " + _digest(*ALICE, self.auth, method, uri))
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            status, headers, body = self._head()
            if status != 401 or self.auth is not None:
                return status, headers, body
            self.auth = headers["www-authenticate"]
        return status, headers, body

    def frames(self, count: int) -> int:
        seen = 0
        deadline = time.monotonic() + 20
        while seen < count and time.monotonic() < deadline:
            if len(self.buf) >= 4 and self.buf[:1] == b"$":
                size = int.from_bytes(self.buf[2:4], "big")
                if len(self.buf) >= 4 + size:
                    self.buf = self.buf[4 + size:]
                    seen += 1
                    continue
            self.buf += self.sock.recv(65536)
        return seen


def test_onvif_python_by_virtual_host_and_the_gateway_routes_by_host(broker: Broker) -> None:
    """ONVIFClient at ``cam-1.localhost``: the URI keeps the virtual host and names the RTSP
    port; the gateway routes ``rtsp://cam-1.localhost:PORT/<path>`` by its host."""
    s = broker.s
    r = subprocess.run([sys.executable, str(HERE / "stockclients" / "onvif_python_client.py"),
                        f"cam-1.{DOMAIN}", str(s.expose), *ALICE, "digest"],
                       capture_output=True, text=True, timeout=120, check=False,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert "error" not in out, out
    uri = out["stream_uri"]
    assert uri == f"rtsp://cam-1.{DOMAIN}:{s.rtsp}{MAIN}", uri
    client = _RtspClient(s.rtsp)
    try:
        status, headers, sdp = client.ask("DESCRIBE", uri, "Accept: application/sdp")
        assert status == 200, (status, headers)
        assert b"H264" in sdp
        base = headers.get("content-base", uri).rstrip("/")
        assert base.startswith(f"rtsp://cam-1.{DOMAIN}:{s.rtsp}/"), base
        control = re.findall(rb"a=control:(\S+)", sdp)[-1].decode()
        track = control if control.startswith("rtsp://") else f"{base}/{control}"
        status, headers, _ = client.ask("SETUP", track,
                                        "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
        assert status == 200, (status, headers)
        session = headers["session"].split(";")[0]
        status, _, _ = client.ask("PLAY", uri, f"Session: {session}")
        assert status == 200
        assert client.frames(50) >= 50
        # another user's device by host is a 404, as on the front door
        status, _, _ = client.ask("DESCRIBE", f"rtsp://nobody.{DOMAIN}:{s.rtsp}/x")
        assert status in (400, 404)
    finally:
        client.sock.close()
