"""Live video through cloud + uplink + device agent against the camera directly, in one run.

A synthetic RTSP camera (a subprocess of this script) answers DESCRIBE/SETUP/PLAY
and then sends interleaved RTP-sized frames (1400 octets, a send timestamp and a
sequence number in each), as fast as it can or paced at 4 Mbit/s.  The CLI
cloud (TLS, ``--expose-open``) and CLI device agents (``--rtsp``; a device
agent takes 16 concurrent streams, ``DeviceSettings.max_concurrent_streams``,
so ``PER_DEVICE`` sessions go to each of several agents) run as subprocesses;
the players are RTSP/TCP readers here that check every sequence number.
Every phase is bounded (timeouts on each exchange, on each phase, on the run).

(1) one stream as fast as it goes: MB/s direct vs through the gateway;
(2) the added latency of a keyframe (median one-way time of a marked frame, ms);
(3) N concurrent 4 Mbit/s streams: all frames arrive in real time (>= 97 %
    of the expected octets, none lost) through the gateway, and the same
    streams through a plain TCP byte relay (the floor any tunnel must pay).
Cases are interleaved (A B A B ...) and ratios printed, as the machine's speed drifts.

Run: ``python -u benchmarks/video.py [--quick]`` (quick: fewer rounds, 10 and 20 streams,
well within 60 s; the full run tries 25, 50, 100 and 150 streams).
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


async def _play(url: str, host: str, port: int, duration: float) -> tuple[int, list[float], int]:
    """Octets of RTP received in ``duration`` s after PLAY, one-way delays (s), frames lost.

    Bounded: the set-up has 10 s, the whole play ``duration + 10`` s.
    """
    try:
        return await asyncio.wait_for(_play_unbounded(url, host, port, duration), duration + 10)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, KeyError):
        return 0, [], -1


async def _play_unbounded(url: str, host: str, port: int,
                          duration: float) -> tuple[int, list[float], int]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    cseq = 0

    async def ask(method: str, uri: str, extra: str = "") -> dict[str, str]:
        nonlocal cseq
        cseq += 1
        writer.write(f"{method} {uri} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n".encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
        lines = head.split("\r\n")
        if " 200 " not in lines[0] + " ":
            raise OSError(f"{method}: {lines[0]}")
        headers = {k.lower(): v for k, _, v in (x.partition(": ") for x in lines[1:]) if k}
        await reader.readexactly(int(headers.get("content-length", "0")))
        return headers

    try:
        d = await ask("DESCRIBE", url)
        base = d.get("content-base", url + "/")
        s = await ask("SETUP", base + "trackID=0",
                      "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        session = s["session"].split(";")[0]
        await ask("PLAY", base, f"Session: {session}\r\n")
        got = lost = 0
        expected: int | None = None
        delays: list[float] = []
        buf = b""
        end = time.perf_counter() + duration
        while (left := end - time.perf_counter()) > 0:
            try:
                data = await asyncio.wait_for(reader.read(262144), left)
            except TimeoutError:
                break
            if not data:
                break
            buf += data
            pos = 0
            while len(buf) - pos >= 4 + 16:  # whole frames only; a "$" head, then the payload
                size = (buf[pos + 2] << 8) | buf[pos + 3]
                if len(buf) - pos < 4 + size:
                    break
                sent, seq = struct.unpack_from("!dQ", buf, pos + 4)
                if expected is not None and seq != expected:
                    lost += max(0, seq - expected)
                expected = seq + 1
                if seq % 50 == 0:  # a "keyframe": one in 50 frames is timed
                    delays.append(time.perf_counter() - sent)
                got += size
                pos += 4 + size
            buf = buf[pos:]
        return got, delays, lost
    finally:
        writer.close()


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
import asyncio, logging, sys
logging.getLogger('asyncio').setLevel(logging.CRITICAL)
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
                                        "--client-ca", self.ca, "--expose-open"], env=env,
                                       stderr=subprocess.DEVNULL)]
        _wait_port(self.rtsp, 15)
        for i in range(devices):
            dcert, dkey = ca.issue_device(f"cam-{i}").write(tmp, f"cam-{i}")
            self.procs.append(subprocess.Popen(
                [*cmd, "device", "--remote", f"https://localhost:{self.listen}/u", "--cert", dcert,
                 "--key", dkey, "--ca", self.ca, "--rtsp", f"rtsp://127.0.0.1:{camera_port}"],
                env=env, stderr=subprocess.DEVNULL))
        self.devices = devices
        deadline = time.monotonic() + 20 + devices
        while _connected(self.expose) < devices:  # every agent's uplink is up
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                self.close()
                raise SystemExit(f"benchmark: {devices} device agent(s) did not connect")
            time.sleep(0.2)

    def url(self, i: int) -> str:
        return f"rtsp://127.0.0.1:{self.rtsp}/devices/cam-{i % self.devices}/live"

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"benchmark: nothing listens on {port}") from None
            time.sleep(0.1)


def _connected(expose: int) -> int:
    """How many devices the cloud lists (GET /devices on the open front door)."""
    try:
        with socket.create_connection(("127.0.0.1", expose), 2) as c:
            c.settimeout(2)
            c.sendall(b"GET /devices HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
    except OSError:
        return 0
    return data.count(b'"urls"')


async def _concurrent(urls: list[tuple[str, str, int]], duration: float) -> tuple[int, float]:
    """Streams in real time with no frame lost (>= 97 % of the octets), and total MB/s."""
    results = await asyncio.gather(*(_play(u, h, p, duration) for u, h, p in urls))
    ok = sum(1 for got, _, lost in results if lost == 0 and got >= 0.97 * RATE * duration)
    return ok, sum(got for got, _, _ in results) / duration / 1e6


async def _cameras() -> None:
    """``--cameras``: the two synthetic cameras (as fast as it goes, 4 Mbit/s) in their own
    process, so their cost does not share the players' event loop."""
    fast = await asyncio.start_server(lambda r, w: _camera_client(r, w, None), "127.0.0.1", 0)
    paced = await asyncio.start_server(lambda r, w: _camera_client(r, w, RATE), "127.0.0.1", 0,
                                       backlog=1024)
    print(f"ports {fast.sockets[0].getsockname()[1]} {paced.sockets[0].getsockname()[1]}",
          flush=True)
    await asyncio.Event().wait()


def _start_cameras() -> tuple[subprocess.Popen[str], int, int]:
    proc = subprocess.Popen([sys.executable, "-u", __file__, "--cameras"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ports":
        proc.kill()
        raise SystemExit("benchmark: the synthetic camera did not start")
    return proc, int(line[1]), int(line[2])


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def main(quick: bool) -> None:
    rounds = 2 if quick else 4
    counts = [10, 20] if quick else [25, 50, 100, 150]
    duration = 3.0 if quick else 5.0
    cameras, fast_port, paced_port = _start_cameras()
    tmp = Path(tempfile.mkdtemp())
    devices = max(1, -(-max(counts) // PER_DEVICE))
    stack: Stack | None = None
    paced_stack: Stack | None = None
    relay_port = _port()
    relay = subprocess.Popen([sys.executable, "-c", RELAY, str(relay_port), str(paced_port)],
                             stdout=subprocess.PIPE, text=True)
    assert relay.stdout is not None and relay.stdout.readline().startswith("ready")
    try:
        stack = Stack(tmp, fast_port, 1)
        direct_mb, gw_mb, direct_lat, gw_lat = [], [], [], []
        for _ in range(rounds):  # (1) and (2), interleaved
            got, delays, _ = await _play(f"rtsp://127.0.0.1:{fast_port}/live", "127.0.0.1",
                                         fast_port, duration)
            direct_mb.append(got / duration / 1e6)
            direct_lat.append(_median(delays))
            got, delays, _ = await _play(stack.url(0), "127.0.0.1", stack.rtsp, duration)
            gw_mb.append(got / duration / 1e6)
            gw_lat.append(_median(delays))
        ratios = [g / d for g, d in zip(gw_mb, direct_mb, strict=True) if d]
        print(f"one stream, as fast as it goes: direct {_median(direct_mb):7.1f} MB/s, "
              f"through cloud + uplink + agent {_median(gw_mb):7.1f} MB/s, ratio "
              f"{_median(ratios):.2f}")
        print(f"keyframe one-way latency (paced by the player): direct "
              f"{1000 * _median(direct_lat):.2f} ms, through the gateway "
              f"{1000 * _median(gw_lat):.2f} ms")
        stack.close()
        stack = None
        # latency at a real-time rate (4 Mbit/s), where queues do not hide it
        paced_stack = Stack(tmp, paced_port, devices)
        lat_d, lat_g = [], []
        for _ in range(rounds):
            _, d1, _ = await _play(f"rtsp://127.0.0.1:{paced_port}/live", "127.0.0.1",
                                   paced_port, 2)
            _, d2, _ = await _play(paced_stack.url(0), "127.0.0.1", paced_stack.rtsp, 2)
            lat_d.append(_median(d1))
            lat_g.append(_median(d2))
        print(f"keyframe latency at 4 Mbit/s: direct {1000 * _median(lat_d):.2f} ms, "
              f"gateway {1000 * _median(lat_g):.2f} ms, added "
              f"{1000 * (_median(lat_g) - _median(lat_d)):.2f} ms")
        best_g = best_r = 0
        for n in counts:  # (3), interleaved per count
            ok_g, mb_g = await _concurrent(
                [(paced_stack.url(i), "127.0.0.1", paced_stack.rtsp) for i in range(n)], duration)
            ok_r, mb_r = await _concurrent(
                [(f"rtsp://127.0.0.1:{relay_port}/live", "127.0.0.1", relay_port)] * n, duration)
            if ok_g == n:
                best_g = n
            if ok_r == n:
                best_r = n
            print(f"{n:4d} x 4 Mbit/s: gateway {ok_g:4d}/{n} in real time, none lost "
                  f"({mb_g:5.1f} MB/s), TCP relay {ok_r:4d}/{n} ({mb_r:5.1f} MB/s), ratio "
                  f"{ok_g / max(ok_r, 1):.2f}", flush=True)
        print(f"concurrent 4 Mbit/s streams with no frame lost (of {counts}): gateway {best_g}, "
              f"TCP relay {best_r}, ratio {best_g / max(best_r, 1):.2f} (goal: gateway >= 100; "
              f"{devices} device agents of {PER_DEVICE} sessions, cameras and players in other "
              f"processes on the same {os.cpu_count()} cores)")
    finally:
        for s in (stack, paced_stack):
            if s is not None:
                s.close()
        relay.terminate()
        cameras.terminate()


if __name__ == "__main__":
    if "--cameras" in sys.argv:
        import logging

        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # players that went away
        asyncio.run(_cameras())
    else:
        quick = "--quick" in sys.argv
        try:
            asyncio.run(asyncio.wait_for(main(quick), 60 if quick else 900))
        except TimeoutError:
            raise SystemExit("benchmark: did not finish in time") from None
