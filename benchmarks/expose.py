"""h2load through the cloud's front door vs. the same h2load at a bare asyncio + h2 server.

Case A: h2load (h2c) -> ExposeServer -> CloudServer -> uplink (loopback TLS, mTLS) ->
DeviceAgent answering a SOAP-sized body from memory (in a child process, as a real device is
another machine; both processes and h2load share this machine's two cores).  Case B: h2load (h2c) -> a bare
asyncio Protocol around h2 answering the same body.  The cases alternate A B A B ... in one
run (this machine's speed drifts) and the ratio A/B of requests per second is printed
(goal >= 0.5), with p50/p99 latency taken from h2load's per-request log.

With Digest authentication on (issue 10): case D is case A through a second front door
with a users file (:class:`~uplink62676.frontdoor.auth.FrontDoorAuth`); h2load cannot
answer a challenge, so it sends one precomputed ``Authorization: Digest`` (nc=1) on every
request of ONE connection: the first is verified, the rest hit the per-connection cache
(a second connection with the same nc would be a replay).  So D runs with ``-c 1`` and is
compared with A and B at ``-c 1`` too: floor D/A(-c 1) no regression, D/B(-c 1) reported.

Run: python benchmarks/expose.py   (needs h2load from nghttp2-client)
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

import h2.config
import h2.connection
import h2.events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _adapters_util import fast_schedule, make_pki
from uplink62676.aio import CloudServer, DeviceAgent, Response, TunneledRequest, UplinkSpec
from uplink62676.aio.expose import ExposeServer
from uplink62676.frontdoor.auth import FrontDoorAuth
from uplink62676.httpauth import digest_response
from uplink62676.io.usersfile import front_door_auth
from uplink62676.settings import DeviceSettings
from uplink62676.users import parse_users

BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="http://www.w3.org/'
        b'2003/05/soap-envelope"><env:Body><tds:GetDeviceInformationResponse xmlns:tds="http://'
        b'www.onvif.org/ver10/device/wsdl"><tds:Manufacturer>uplink62676</tds:Manufacturer>'
        b"<tds:Model>bench</tds:Model><tds:FirmwareVersion>1.0</tds:FirmwareVersion>"
        b"<tds:SerialNumber>32010001071321008015</tds:SerialNumber><tds:HardwareId>1"
        b"</tds:HardwareId></tds:GetDeviceInformationResponse></env:Body></env:Envelope>")
REQUESTS = 3000
CLIENTS = 10
STREAMS = 10
ROUNDS = 3


class _Bare(asyncio.Protocol):
    """The raw dependency: h2 answering from memory, nothing else."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.t = transport
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                      header_encoding=None))
        self.c.initiate_connection()
        self.t.write(self.c.data_to_send())

    def data_received(self, data: bytes) -> None:
        for e in self.c.receive_data(data):
            if isinstance(e, h2.events.RequestReceived):
                self.c.send_headers(e.stream_id, [(b":status", b"200"),
                                                  (b"content-type", b"application/soap+xml"),
                                                  (b"content-length", str(len(BODY)).encode())])
                self.c.send_data(e.stream_id, BODY, end_stream=True)
            elif isinstance(e, h2.events.DataReceived):
                self.c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        self.t.write(self.c.data_to_send())


async def _device(req: TunneledRequest) -> Response:
    if not req.at_eof:
        await req.body()
    return Response(200, (("content-type", "application/soap+xml"),), BODY)


async def _h2load(url: str, log: Path, clients: int = CLIENTS,
                  header: str | None = None) -> tuple[float, float, float]:
    extra = ["-H", header] if header else []
    proc = await asyncio.create_subprocess_exec(
        "h2load", "-n", str(REQUESTS), "-c", str(clients), "-m", str(STREAMS), *extra,
        f"--log-file={log}", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode()
    rps = 0.0
    for line in text.splitlines():
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split()[0])
        if line.startswith("requests:") and f"{REQUESTS} succeeded" not in line:
            raise SystemExit(f"h2load failed: {line}")
    latencies = sorted(int(row.split()[2]) for row in log.read_text().splitlines() if row.strip())
    p50 = latencies[len(latencies) // 2] / 1000
    p99 = latencies[int(len(latencies) * 0.99)] / 1000
    return rps, p50, p99


def _digest_header(auth: FrontDoorAuth, uri: str) -> str:
    """One valid ``Authorization: Digest`` (MD5, qop=auth, nc=1) for ``GET uri``."""
    import time

    nonce = auth.authenticator.challenge(time.time())[0][1].split('nonce="')[1].split('"')[0]
    realm = auth.authenticator.settings.digest.realm
    cnonce = "0a4f113b"
    response = digest_response(algorithm="MD5", username="bench", realm=realm,
                               password="Bench-pw-1", method="GET", uri=uri, nonce=nonce,
                               nc="00000001", cnonce=cnonce)
    return (f'authorization: Digest username="bench", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}", '
            f'response="{response}"')


async def main() -> None:
    logging.disable(logging.INFO)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        cloud = CloudServer(ssl_context=pki.cloud_ctx())
        await cloud.start()
        expose = ExposeServer(cloud)
        await expose.start()
        auth = front_door_auth(parse_users("bench Bench-pw-1 *\n"))
        guarded = ExposeServer(cloud, authorize=auth)
        await guarded.start()
        cert, key = pki.devices["cam-1"]
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--device", f"https://localhost:{cloud.port}/b", pki.ca,
            cert, key)
        await cloud.wait_for_device("cam-1", timeout=20)
        bare = await loop.create_server(_Bare, "127.0.0.1", 0)
        bare_port = bare.sockets[0].getsockname()[1]
        urls = {"expose": f"http://127.0.0.1:{expose.port}/devices/cam-1/onvif/device_service",
                "bare": f"http://127.0.0.1:{bare_port}/onvif/device_service"}
        path = "/devices/cam-1/onvif/device_service"
        urls["digest"] = f"http://127.0.0.1:{guarded.port}{path}"
        results: dict[str, list[tuple[float, float, float]]] = {
            "expose": [], "bare": [], "digest": [], "expose1": [], "bare1": []}
        for _ in range(ROUNDS):
            for case in ("expose", "bare"):
                results[case].append(await _h2load(urls[case], Path(tmp) / f"{case}.log"))
            # one connection each: the Digest header is verified once, then cached
            results["digest"].append(await _h2load(urls["digest"], Path(tmp) / "d.log", 1,
                                                   _digest_header(auth, path)))
            results["expose1"].append(await _h2load(urls["expose"], Path(tmp) / "e.log", 1))
            results["bare1"].append(await _h2load(urls["bare"], Path(tmp) / "b.log", 1))
        print(f"h2load -n {REQUESTS} -c {CLIENTS} -m {STREAMS}, {len(BODY)}-octet SOAP answer, "
              f"{ROUNDS} interleaved rounds")
        for case, label in (("expose", "front door + cloud + uplink (TLS) + device"),
                            ("bare", "bare asyncio + h2 server")):
            rows = results[case]
            print(f"  {label:45s} {statistics.median(r[0] for r in rows):9.0f} req/s   "
                  f"p50 {statistics.median(r[1] for r in rows):6.2f} ms   "
                  f"p99 {statistics.median(r[2] for r in rows):6.2f} ms")
        ratios = [a[0] / b[0] for a, b in zip(results["expose"], results["bare"], strict=True)]
        print(f"  ratio expose/bare (req/s): median {statistics.median(ratios):.2f} "
              f"(per round: {', '.join(f'{r:.2f}' for r in ratios)}; goal >= 0.5)")
        print("one connection (-c 1):")
        for case, label in (("digest", "front door WITH Digest + cloud + device"),
                            ("expose1", "front door, no auth + cloud + device"),
                            ("bare1", "bare asyncio + h2 server")):
            rows = results[case]
            print(f"  {label:45s} {statistics.median(r[0] for r in rows):9.0f} req/s   "
                  f"p50 {statistics.median(r[1] for r in rows):6.2f} ms   "
                  f"p99 {statistics.median(r[2] for r in rows):6.2f} ms")
        for num, den, goal in (("digest", "bare1", "goal >= 0.5"),
                               ("digest", "expose1", "floor: no regression")):
            ratios = [a[0] / b[0] for a, b in zip(results[num], results[den], strict=True)]
            print(f"  ratio {num}/{den} (req/s): median {statistics.median(ratios):.2f} "
                  f"(per round: {', '.join(f'{r:.2f}' for r in ratios)}; {goal})")
        child.terminate()
        await child.wait()
        await expose.close()
        await guarded.close()
        await cloud.close()
        bare.close()


async def device(url: str, ca: str, cert: str, key: str) -> None:
    from uplink62676.io.tls import device_tls_context

    logging.disable(logging.INFO)
    ctx = device_tls_context(ca_file=ca, cert_file=cert, key_file=key)
    # UPL-R22 allows 16-100 concurrent streams; a device answering from memory takes 100.
    agent = DeviceAgent(_device, identity="cam-1", schedule_factory=fast_schedule,
                        uplinks=[UplinkSpec(url, ctx)],
                        settings=DeviceSettings(max_concurrent_streams=100))
    await agent.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--device"]:
        asyncio.run(device(*sys.argv[2:6]))
    else:
        asyncio.run(main())
