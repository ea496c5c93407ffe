"""Throughput of the uplink tunnel against bare h2, measured in one run.

(a) a bare h2 client and server wired back to back in memory;
(b) CloudUplink <-> DeviceUplink wired the same way;
same payloads: a 600-octet SOAP POST answered with 1.5 KB, with 1 and with
100 streams in flight, and one 64 MiB streamed response; with ``--wss`` (b)
also over ``wss`` (HTTP/2 in masked WebSocket frames) for the 1-stream and bulk
cases (off by default to keep the run under a minute).  The cases are
interleaved (A B A B ...) because this machine's speed drifts; the printed
ratio b/a is the median of the per-round ratios.

Run: ``python benchmarks/tunnel.py [--quick] [--wss]``
"""

from __future__ import annotations

import collections
import shutil
import statistics
import sys
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events

from uplink62676 import events as ev
from uplink62676.settings import DeviceSettings
from uplink62676.uplink import CloudUplink, DeviceUplink

REQUEST = b"<s:Envelope>" + b"x" * 588
assert len(REQUEST) == 600
RESPONSE = b"y" * 1500
REQ_HEADERS = [("content-type", "application/soap+xml; charset=utf-8")]
BULK = 64 * 1024 * 1024
CHUNK = 16384


# --- (a) bare h2 --------------------------------------------------------------------------------


class SendQueue:
    """Per-stream send queue honouring flow control (what every h2 user writes)."""

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self.conn = conn
        self.queue: dict[int, collections.deque[bytes]] = {}

    def add(self, sid: int, chunks: list[bytes]) -> None:
        self.queue[sid] = collections.deque(chunks)
        self.flush()

    def flush(self) -> None:
        conn = self.conn
        for sid in list(self.queue):
            q = self.queue[sid]
            while q:
                window = conn.local_flow_control_window(sid)
                if window <= 0:
                    break
                chunk = q[0]
                n = min(window, len(chunk), CHUNK)
                last = n == len(chunk) and len(q) == 1
                conn.send_data(sid, chunk[:n], end_stream=last)
                if n == len(chunk):
                    q.popleft()
                else:
                    q[0] = chunk[n:]
            if not q:
                del self.queue[sid]


class BareH2:
    """The same work on bare h2, with the minimum an application must add:
    a per-stream send queue that respects flow control, and acknowledging
    received data."""

    def __init__(self) -> None:
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.client.initiate_connection()
        self.server.initiate_connection()
        self.server_q = SendQueue(self.server)
        self.client_q = SendQueue(self.client)
        self.received = 0
        self._bulk_sid = 0
        self._pump()

    def _pump(self) -> None:
        client, server = self.client, self.server
        while True:
            a = client.data_to_send()
            if a:
                for e in server.receive_data(a):
                    if isinstance(e, h2.events.DataReceived) and e.flow_controlled_length:
                        server.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    elif isinstance(e, h2.events.StreamEnded):
                        sid = e.stream_id
                        if sid == self._bulk_sid:
                            server.send_headers(sid, [(b":status", b"200")])
                            self.server_q.add(sid, [BULK_CHUNK] * (BULK // CHUNK))
                        else:
                            server.send_headers(
                                sid, [(b":status", b"200"), (b"content-length", b"1500")]
                            )
                            self.server_q.add(sid, [RESPONSE])
                self.server_q.flush()
            b = server.data_to_send()
            if b:
                for e in client.receive_data(b):
                    if isinstance(e, h2.events.DataReceived):
                        self.received += len(e.data)
                        if e.flow_controlled_length:
                            client.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                self.client_q.flush()
            if not a and not b:
                return

    def requests(self, n: int, in_flight: int) -> None:
        done = 0
        while done < n:
            batch = min(in_flight, n - done)
            for _ in range(batch):
                sid = self.client.get_next_available_stream_id()
                self.client.send_headers(
                    sid,
                    [
                        (b":method", b"POST"),
                        (b":scheme", b"https"),
                        (b":path", b"/onvif/device_service"),
                        (b":authority", b"dev"),
                        (b"content-type", b"application/soap+xml; charset=utf-8"),
                        (b"content-length", b"600"),
                    ],
                )
                self.client_q.add(sid, [REQUEST])
            self._pump()
            done += batch

    def bulk(self) -> None:
        self.received = 0
        sid = self.client.get_next_available_stream_id()
        self._bulk_sid = sid
        self.client.send_headers(
            sid,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":path", b"/bulk"),
                (b":authority", b"dev"),
            ],
            end_stream=True,
        )
        self._pump()
        assert self.received == BULK, self.received


BULK_CHUNK = b"z" * CHUNK


# --- (b) our uplink -------------------------------------------------------------------------------


class Ours:
    def __init__(self, uri: str = "https://cloud.example.com/uplink", max_streams: int = 16) -> None:
        # The device advertises 16 concurrent streams by default; bare h2 allows
        # 100, so the 100-in-flight case uses a device that allows 100 too.
        self.device = DeviceUplink(uri, settings=DeviceSettings(max_concurrent_streams=max_streams))
        self.cloud = CloudUplink()
        self.device.start(0.0)
        self.cloud.receive_data(self.device.data_to_send(), 0.0)
        self.cloud.accept(0.0, authority="dev")
        self.received = 0
        self._bulk_sid = 0
        self._pump()

    def _pump(self) -> None:
        device, cloud = self.device, self.cloud
        while True:
            a = cloud.data_to_send()
            if a:
                for e in device.receive_data(a, 0.0):
                    if isinstance(e, ev.StreamEnded):
                        if e.stream_id == self._bulk_sid:
                            device.send_response(e.stream_id, 200)
                            for off in range(0, BULK, CHUNK):
                                device.send_data(
                                    e.stream_id, BULK_CHUNK, end_stream=off + CHUNK >= BULK
                                )
                        else:
                            device.send_response(e.stream_id, 200, body=RESPONSE)
            b = device.data_to_send()
            if b:
                for e in cloud.receive_data(b, 0.0):
                    if isinstance(e, ev.DataReceived):
                        self.received += len(e.data)
            if not a and not b:
                return

    def requests(self, n: int, in_flight: int) -> None:
        done = 0
        while done < n:
            batch = min(in_flight, n - done)
            for _ in range(batch):
                self.cloud.send_request("POST", "/onvif/device_service", REQ_HEADERS, REQUEST)
            self._pump()
            done += batch

    def bulk(self) -> None:
        self.received = 0
        self._bulk_sid = self.cloud.send_request("GET", "/bulk", end_stream=True)
        self._pump()
        assert self.received == BULK, self.received


def _timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _one(which: str, case: str, n: int) -> None:
    """Child of --instructions: build one side, then do ``n`` units of one case."""
    obj: BareH2 | Ours = BareH2() if which == "bare" else Ours(max_streams=100)
    if case == "bulk":
        global BULK  # noqa: PLW0603 (the child process measures a smaller bulk transfer)
        BULK = n * 1024 * 1024
        if n:
            obj.bulk()
    elif n:
        obj.requests(n, 1 if case == "1" else 100)


def _instructions() -> int:
    import os
    import re
    import subprocess
    import tempfile

    if not shutil.which("valgrind"):
        print("--instructions needs valgrind (apt-get install valgrind)")
        return 1
    cases = [("1", 300, "request"), ("100", 300, "request"), ("bulk", 6, "MiB")]

    def count(which: str, case: str, n: int) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "cg")
            proc = subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                 __file__, "--child", which, case, str(n)],
                capture_output=True, text=True, check=True)
        m = re.search(r"Collected : (\d+)", proc.stderr)
        assert m, proc.stderr[-500:]
        return int(m.group(1))

    print("tunnel benchmark, instructions counted by callgrind (lower is better)")
    base = {w: count(w, "1", 0) for w in ("bare", "ours")}
    for case, n, unit in cases:
        per = {w: (count(w, case, n) - base[w]) / n for w in ("bare", "ours")}
        label = {"1": "1 stream", "100": "100 streams", "bulk": "bulk"}[case]
        print(f"  {label:12s} bare h2 {per['bare'] / 1e6:8.3f} M instr/{unit}   "
              f"uplink {per['ours'] / 1e6:8.3f} M instr/{unit}   "
              f"ratio bare/ours {per['bare'] / per['ours']:.3f} (speed ratio b/a)")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        _one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    if "--instructions" in sys.argv:
        return _instructions()
    quick = "--quick" in sys.argv
    rounds = 5 if quick else 9
    n = 2000 if quick else 5000
    wss = "--wss" in sys.argv
    results: dict[str, list[tuple[float, float]]] = {"1 stream": [], "100 streams": [], "bulk": []}
    if wss:
        results.update({"1 stream wss": [], "bulk wss": []})
    for _ in range(rounds):
        for label, flight in (("1 stream", 1), ("100 streams", 100)):
            bare = BareH2()
            ours = Ours(max_streams=max(16, flight))
            ta = _timed(lambda b=bare, f=flight: b.requests(n, f))
            tb = _timed(lambda o=ours, f=flight: o.requests(n, f))
            results[label].append((n / ta, n / tb))
        bulks = [("bulk", "https://c.example/u")] + [("bulk wss", "wss://c.example/u")] * wss
        for label, uri in bulks:
            bare = BareH2()
            ours = Ours(uri)
            ta = _timed(bare.bulk)
            tb = _timed(ours.bulk)
            results[label].append((BULK / ta / 1e6, BULK / tb / 1e6))
        if not wss:
            continue
        bare = BareH2()
        ours = Ours("wss://c.example/u")
        ta = _timed(lambda b=bare: b.requests(n, 1))
        tb = _timed(lambda o=ours: o.requests(n, 1))
        results["1 stream wss"].append((n / ta, n / tb))
    print(f"tunnel benchmark: {rounds} interleaved rounds, {n} requests per case")
    for label, pairs in results.items():
        unit = "MB/s" if label.startswith("bulk") else "req/s"
        a = statistics.median(p[0] for p in pairs)
        b = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        goal = {"bulk": 0.95, "bulk wss": 0.5, "1 stream wss": 0.8}.get(label, 0.90)
        print(
            f"  {label:12s} bare h2 {a:10.1f} {unit}   uplink {b:10.1f} {unit}   "
            f"ratio b/a {ratio:.3f} (goal >= {goal})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
