"""Live video through cloud + uplink + device agent against the camera directly, in one run.

A synthetic RTSP camera (in this process) answers DESCRIBE/SETUP/PLAY and then
sends interleaved RTP-sized frames (1400 octets, a send timestamp and a
sequence number in each).  The CLI cloud (TLS) and CLI device agents
(``--rtsp``) run as subprocesses; the players are RTSP/TCP readers here.

(1) one stream as fast as it goes: MB/s direct vs through the gateway;
(2) the added latency of a keyframe (median one-way time of a marked frame, ms);
(3) N concurrent 4 Mbit/s streams: all frames arrive in real time (>= 97 %
    of the expected octets, none lost) through the gateway, and the same
    streams through a plain TCP byte relay (the floor any tunnel must pay).
Cases are interleaved (A B A B ...) and ratios printed, as the machine's speed drifts.

Run: ``python benchmarks/video.py [--quick]``
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uplink62676.io.certs import CertificateAuthority

FRAME = 1400
RATE = 4_000_000 / 8  # octets per second of one 4 Mbit/s stream
PER_DEVICE = 12  # sessions per device agent (its MAX_CONCURRENT_STREAMS is 16)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the synthetic camera ------------------------------------------------------------------------

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=synthetic\r\nt=0 0\r\na=control:*\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n")


async def _camera_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         rate: float | None) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, uri = lines[0].split()[:2]
            cseq = next(v for k, _, v in (x.partition(": ") for x in lines) if k == "CSeq")
            extra = ""
            body = b""
            if method == "DESCRIBE":
                extra = f"Content-Base: {uri}/\r\nContent-Type: application/sdp\r\n"
                body = SDP
            elif method == "SETUP":
                extra = "Session: 1234;timeout=60\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n"
            writer.write(f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            if method == "PLAY":
                await _send_frames(writer, rate)
                return
    except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _send_frames(writer: asyncio.StreamWriter, rate: float | None) -> None:
    pad = b"\x00" * (FRAME - 16)
    seq = 0
    start = time.perf_counter()
    while True:
        burst = 8
        if writer.is_closing():
            return
        for _ in range(burst):
            payload = struct.pack("!dQ", time.perf_counter(), seq) + pad
            writer.write(b"$\x00" + struct.pack("!H", FRAME) + payload)
            seq += 1
        await writer.drain()
        if rate is not None:
            ahead = seq * FRAME / rate - (time.perf_counter() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)


# --- the player ----------------------------------------------------------------------------------


async def _play(url: str, host: str, port: int, duration: float) -> tuple[int, list[float]]:
    """Octets of RTP received in ``duration`` s after PLAY, and one-way delays (s)."""
    reader, writer = await asyncio.open_connection(host, port)
    cseq = 0

    async def ask(method: str, uri: str, extra: str = "") -> dict[str, str]:
        nonlocal cseq
        cseq += 1
        writer.write(f"{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        headers = {k.lower(): v for k, _, v in (x.partition(": ") for x in head[1:]) if k}
        await reader.readexactly(int(headers.get("content-length", "0")))
        return headers

    d = await ask("DESCRIBE", url)
    base = d.get("content-base", url + "/")
    s = await ask("SETUP", base + "trackID=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
    session = s["session"].split(";")[0]
    await ask("PLAY", base, f"Session: {session}\r\n")
    got = 0
    delays: list[float] = []
    end = time.perf_counter() + duration
    try:
        while time.perf_counter() < end:
            head = await asyncio.wait_for(reader.readexactly(4), end - time.perf_counter())
            size = struct.unpack("!H", head[2:])[0]
            payload = await reader.readexactly(size)
            got += size
            sent, seq = struct.unpack("!dQ", payload[:16])
            if seq % 50 == 0:  # a "keyframe": one in 50 frames is timed
                delays.append(time.perf_counter() - sent)
    except (TimeoutError, asyncio.IncompleteReadError, OSError):
        pass
    writer.close()
    return got, delays


# --- a plain TCP relay (the floor) ---------------------------------------------------------------


async def _relay_pair(a: asyncio.StreamReader, b: asyncio.StreamWriter) -> None:
    try:
        while data := await a.read(65536):
            b.write(data)
            await b.drain()
    except OSError:
        pass
    finally:
        b.close()


RELAY = """
import asyncio, sys
async def pair(a, b):
    try:
        while data := await a.read(65536):
            b.write(data); await b.drain()
    except OSError: pass
    finally: b.close()
async def client(r, w):
    cr, cw = await asyncio.open_connection('127.0.0.1', int(sys.argv[2]))
    await asyncio.gather(pair(r, cw), pair(cr, w))
async def main():
    s = await asyncio.start_server(client, '127.0.0.1', int(sys.argv[1]))
    print('ready', flush=True); await s.serve_forever()
asyncio.run(main())
"""


# --- the stack -----------------------------------------------------------------------------------


class Stack:
    def __init__(self, tmp: Path, camera_port: int, devices: int) -> None:
        ca = CertificateAuthority("bench CA")
        self.ca = ca.write_ca(tmp / "ca.pem")
        cert, key = ca.issue_cloud("localhost", "127.0.0.1").write(tmp, "cloud")
        self.listen, self.expose, self.rtsp = _port(), _port(), _port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "uplink62676", "-q"]
        self.procs = [subprocess.Popen([*cmd, "cloud", "--listen", f"127.0.0.1:{self.listen}",
                                        "--expose", f"127.0.0.1:{self.expose}", "--rtsp-listen",
                                        f"127.0.0.1:{self.rtsp}", "--cert", cert, "--key", key,
                                        "--client-ca", self.ca], env=env,
                                       stderr=subprocess.DEVNULL)]
        time.sleep(1.5)
        for i in range(devices):
            dcert, dkey = ca.issue_device(f"cam-{i}").write(tmp, f"cam-{i}")
            self.procs.append(subprocess.Popen(
                [*cmd, "device", "--remote", f"https://localhost:{self.listen}/u", "--cert", dcert,
                 "--key", dkey, "--ca", self.ca, "--rtsp", f"rtsp://127.0.0.1:{camera_port}"],
                env=env, stderr=subprocess.DEVNULL))
        self.devices = devices

    def url(self, i: int) -> str:
        return f"rtsp://127.0.0.1:{self.rtsp}/devices/cam-{i % self.devices}/live"

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(10)


async def _concurrent(urls: list[tuple[str, str, int]], duration: float) -> tuple[int, float]:
    results = await asyncio.gather(*(_play(u, h, p, duration) for u, h, p in urls))
    ok = sum(1 for got, _ in results if got >= 0.97 * RATE * duration)
    return ok, sum(got for got, _ in results) / duration / 1e6


async def main() -> None:
    quick = "--quick" in sys.argv
    rounds = 2 if quick else 4
    counts = [10, 20] if quick else [25, 50, 100]
    duration = 3.0 if quick else 5.0
    fast = await asyncio.start_server(lambda r, w: _camera_client(r, w, None), "127.0.0.1", 0)
    paced = await asyncio.start_server(lambda r, w: _camera_client(r, w, RATE), "127.0.0.1", 0)
    fast_port = fast.sockets[0].getsockname()[1]
    paced_port = paced.sockets[0].getsockname()[1]
    tmp = Path(tempfile.mkdtemp())
    devices = max(1, -(-max(counts) // PER_DEVICE))
    stack = Stack(tmp, fast_port, 1)
    paced_stack: Stack | None = None
    relay_port = _port()
    relay = subprocess.Popen([sys.executable, "-c", RELAY, str(relay_port), str(paced_port)],
                             stdout=subprocess.PIPE, text=True)
    assert relay.stdout is not None and relay.stdout.readline().startswith("ready")
    await asyncio.sleep(2.0)
    try:
        direct_mb, gw_mb, direct_lat, gw_lat = [], [], [], []
        for _ in range(rounds):  # (1) and (2), interleaved
            got, delays = await _play(f"rtsp://127.0.0.1:{fast_port}/live", "127.0.0.1",
                                      fast_port, duration)
            direct_mb.append(got / duration / 1e6)
            direct_lat.append(statistics.median(delays))
            got, delays = await _play(stack.url(0), "127.0.0.1", stack.rtsp, duration)
            gw_mb.append(got / duration / 1e6)
            gw_lat.append(statistics.median(delays) if delays else float("nan"))
        print(f"one stream, as fast as it goes: direct {statistics.median(direct_mb):7.1f} MB/s, "
              f"through cloud + uplink + agent {statistics.median(gw_mb):7.1f} MB/s, ratio "
              f"{statistics.median(g / d for g, d in zip(gw_mb, direct_mb, strict=True)):.2f}")
        print(f"keyframe one-way latency (paced by the player): direct "
              f"{1000 * statistics.median(direct_lat):.2f} ms, through the gateway "
              f"{1000 * statistics.median(gw_lat):.2f} ms")
        stack.close()
        # latency at a real-time rate (4 Mbit/s), where queues do not hide it
        paced_stack = Stack(tmp, paced_port, devices)
        await asyncio.sleep(2.0 + devices * 0.2)
        lat_d, lat_g = [], []
        for _ in range(rounds):
            _, d1 = await _play(f"rtsp://127.0.0.1:{paced_port}/live", "127.0.0.1", paced_port, 2)
            _, d2 = await _play(paced_stack.url(0), "127.0.0.1", paced_stack.rtsp, 2)
            lat_d.append(statistics.median(d1))
            lat_g.append(statistics.median(d2))
        print(f"keyframe latency at 4 Mbit/s: direct {1000 * statistics.median(lat_d):.2f} ms, "
              f"gateway {1000 * statistics.median(lat_g):.2f} ms, added "
              f"{1000 * (statistics.median(lat_g) - statistics.median(lat_d)):.2f} ms")
        for n in counts:  # (3), interleaved per count
            ok_g, mb_g = await _concurrent(
                [(paced_stack.url(i), "127.0.0.1", paced_stack.rtsp) for i in range(n)], duration)
            ok_r, mb_r = await _concurrent(
                [(f"rtsp://127.0.0.1:{relay_port}/live", "127.0.0.1", relay_port)] * n, duration)
            print(f"{n:4d} x 4 Mbit/s: gateway {ok_g:4d}/{n} in real time ({mb_g:5.1f} MB/s), "
                  f"TCP relay {ok_r:4d}/{n} ({mb_r:5.1f} MB/s), ratio {ok_g / max(ok_r, 1):.2f}")
    finally:
        if paced_stack is not None:
            paced_stack.close()
        relay.terminate()
        fast.close()
        paced.close()


if __name__ == "__main__":
    asyncio.run(main())
