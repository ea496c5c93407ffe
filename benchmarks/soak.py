"""Soak: one cloud process, 1,000 device uplinks, steady traffic, drops and a SIGKILL.

* The cloud is the real CLI, ``python -m uplink62676 cloud --plaintext`` (INSECURE
  plaintext uplinks, so that 1,000 handshakes fit two shared cores), in its own process.
* A device process (this file, ``--device-child``) runs one asyncio ``DeviceAgent`` with
  ``--devices`` uplinks ``dev-NNNN`` answering a small body.  Every minute (``--quick``:
  once, at 30 s) it drops 10 % of them at random (``agent.remove``) and adds them back a
  second later (``agent.add``), and says which and when on its stdout.
* A second, small device process with 10 uplinks ``dev-kNNN`` is SIGKILLed in the middle
  of the run (``--quick``: at 40 s) and restarted 3 s later.
* This process sends ``--rate`` requests per second (default 100) to a random device,
  ``GET /devices/<id>/x``, over a few HTTP/1.1 keep-alive connections to the front door,
  and polls ``GET /devices`` every second to see who is registered.

A failed request is *explained* when its device was in a drop window: from the drop (or
the SIGKILL) until the first ``GET /devices`` after the re-add (or restart) that lists the
device again, widened by a margin.  The figures: requests answered / failed / unexplained
(goal 0), p50/p99 latency of the answered ones, the cloud's VmRSS at start (no device),
after warm-up (every device registered and asked once, + 8 s of traffic) and at the end, and
the growth after warm-up (goal < 10 MB).

Run: python benchmarks/soak.py [--quick] [--duration S] [--devices N] [--rate R]
(default 300 s; ``--quick`` 60 s.  The duration counts from the moment every device is
registered; connecting them comes before.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import os
import random
import resource
import signal
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
KILLED_DEVICES = 10
MARGIN_BEFORE = 1.0  # a request in flight when its uplink is dropped fails a little earlier
MARGIN_AFTER = 2.0  # the listing is polled once a second
WARM_UP = 8.0
CONNECTIONS = 4
REQUEST_TIMEOUT = 20.0


# --- the device processes ---------------------------------------------------------------------


def _say(*words: object) -> None:
    print(*words, flush=True)


async def _device_child(port: int, n: int, prefix: str, seed: int) -> None:
    from uplink62676.aio import DeviceAgent, Response, TunneledRequest, UplinkSpec
    from uplink62676.status import Status

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    _raise_fd_limit()
    rng = random.Random(seed)
    body = b"soak: hello from a device\n"

    async def handler(req: TunneledRequest) -> Response:
        return Response(200, [("content-type", "text/plain")], body)

    specs = {f"{prefix}{i:04d}": UplinkSpec(f"http://127.0.0.1:{port}/uplink/{prefix}{i:04d}",
                                            insecure_plaintext=True) for i in range(n)}
    ids = {s.remote_address: d for d, s in specs.items()}

    def on_status(address: str, status: Status, error: str | None) -> None:
        if status is Status.CONNECTED:
            _say("up", f"{time.monotonic():.3f}", ids[address])

    agent = DeviceAgent(handler, identity=f"soak-{prefix}", uplinks=specs.values(),
                        on_status=on_status)
    loop = asyncio.get_running_loop()
    await agent.start()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            words = line.split()
            if words[:1] != ["drop"]:
                continue
            chosen = rng.sample(sorted(specs), int(words[1]))
            _say("drop", f"{time.monotonic():.3f}", *chosen)
            await asyncio.gather(*(agent.remove(specs[d].remote_address) for d in chosen))
            await asyncio.sleep(1.0)  # gone for a moment, as a device that lost its link
            _say("readd", f"{time.monotonic():.3f}", *chosen)
            for d in chosen:
                await agent.add(specs[d])
    finally:
        await agent.stop()


# --- helpers ----------------------------------------------------------------------------------


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _die_with_parent() -> None:
    """In a child, before exec: SIGKILL it when this benchmark dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


async def _http_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    target: str) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 GET on a keep-alive connection: (status, body, connection still usable)."""
    writer.write(f"GET {target} HTTP/1.1\r\nHost: soak\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size + 2)
            del body[-2:]
    else:
        body = bytearray(await reader.readexactly(int(headers.get("content-length", "0"))))
    return status, bytes(body), headers.get("connection", "").lower() != "close"


# --- the benchmark ----------------------------------------------------------------------------


@dataclass
class Window:
    """A device's drop window: dropped (or killed) at ``start``, listed again at ``end``."""

    start: float
    back: float | None = None  # re-added or restarted
    end: float | None = None


@dataclass
class Run:
    ids: list[str]
    windows: dict[str, list[Window]] = field(default_factory=dict)
    waiting: dict[str, Window] = field(default_factory=dict)
    results: list[tuple[float, float, str, str]] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)
    vanished: list[tuple[float, str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    t0: float = 0.0

    def dropped(self, when: float, ids: list[str]) -> None:
        for d in ids:
            w = Window(when)
            self.windows.setdefault(d, []).append(w)
            self.waiting[d] = w

    def back(self, when: float, ids: list[str]) -> None:
        for d in ids:
            if (w := self.waiting.get(d)) is not None:
                w.back = when

    def explained(self, start: float, end: float, device: str) -> bool:
        for w in self.windows.get(device, ()):
            close = w.end if w.end is not None else float("inf")
            if w.start - MARGIN_BEFORE <= end and start <= close + MARGIN_AFTER:
                return True
        return False


async def _read_events(run: Run, stream: asyncio.StreamReader, name: str) -> None:
    while line := await stream.readline():
        words = line.decode().split()
        if not words:
            continue
        when = float(words[1]) if len(words) > 1 else time.monotonic()
        if words[0] == "drop":
            run.dropped(when, words[2:])
            shown = " ".join(words[2:7]) + (" ..." if len(words) > 7 else "")
            run.log.append(f"{when - run.t0:6.1f} s  {name}: dropped {len(words) - 2} uplinks "
                           f"({shown})")
        elif words[0] == "readd":
            run.back(when, words[2:])
            run.log.append(f"{when - run.t0:6.1f} s  {name}: re-added them")


async def _poll_listing(run: Run, port: int, stop: asyncio.Event) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while not stop.is_set():
        started = time.monotonic()
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            status, body, keep = await asyncio.wait_for(_http_get(*conn, "/devices"), 10)
            if status == 200:
                now = time.monotonic()
                listed = {e["id"] for e in json.loads(body)}
                for d in run.listed - listed:
                    if d not in run.waiting:
                        run.vanished.append((now, d))
                for d, w in list(run.waiting.items()):
                    if w.back is not None and w.back < started and d in listed:
                        w.end = now
                        del run.waiting[d]
                run.listed = listed
            if not keep:
                conn[1].close()
                conn = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            if conn is not None:
                conn[1].close()
            conn = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, 1.0 - (time.monotonic() - started)))
    if conn is not None:
        conn[1].close()


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter] | None


async def _request(run: Run, port: int, conn: Conn, device: str) -> Conn:
    """One GET to ``device`` through the front door, recorded; returns the connection to reuse."""
    start = time.monotonic()
    try:
        if conn is None:
            conn = await asyncio.open_connection("127.0.0.1", port)
        status, body, keep = await asyncio.wait_for(
            _http_get(*conn, f"/devices/{device}/x"), REQUEST_TIMEOUT)
        outcome = "ok" if status == 200 and body.startswith(b"soak:") else str(status)
        if not keep:
            conn[1].close()
            conn = None
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            TimeoutError, ValueError) as exc:
        outcome = type(exc).__name__
        if conn is not None:
            conn[1].close()
        conn = None
    run.results.append((start, time.monotonic(), device, outcome))
    return conn


async def _touch(run: Run, port: int, devices: list[str]) -> None:
    """Warm-up: one request to each device in turn (its first stream costs a little memory)."""
    conn: Conn = None
    for device in devices:
        conn = await _request(run, port, conn, device)
    if conn is not None:
        conn[1].close()


async def _traffic(run: Run, port: int, rate: float, k: int, stop: asyncio.Event,
                   rng: random.Random) -> None:
    interval = CONNECTIONS / rate
    next_at = time.monotonic() + k * interval / CONNECTIONS
    conn: Conn = None
    while not stop.is_set():
        now = time.monotonic()
        if next_at > now:
            await asyncio.sleep(next_at - now)
        next_at = max(next_at + interval, time.monotonic() - 1.0)  # no burst after a stall
        conn = await _request(run, port, conn, rng.choice(run.ids))
    if conn is not None:
        conn[1].close()


async def _start(argv: list[str], log_file: Path, stdin: int | None = None,
                 stdout: int | None = None) -> asyncio.subprocess.Process:
    with log_file.open("ab") as err:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=stdout if stdout is not None else asyncio.subprocess.DEVNULL,
            stderr=err, env=_env(), preexec_fn=_die_with_parent)


async def _stop(proc: asyncio.subprocess.Process | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        await asyncio.wait_for(proc.wait(), 8.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _device_argv(port: int, n: int, prefix: str, seed: int) -> list[str]:
    return [sys.executable, __file__, "--device-child", str(port), str(n), prefix, str(seed)]


async def _soak(args: argparse.Namespace, tmp: Path) -> bool:
    duration = args.duration if args.duration is not None else (60.0 if args.quick else 300.0)
    if args.quick:
        plan = [(30.0, "drop"), (40.0, "kill"), (43.0, "restart")]
    else:
        plan = [(t, "drop") for t in range(60, int(duration) - 30, 60)]
        plan += [(duration / 2, "kill"), (duration / 2 + 3, "restart")]
        plan.sort()
    n = args.devices
    drop_count = max(1, n // 10)
    rng = random.Random(args.seed)
    listen, expose = _free_port(), _free_port()
    cloud_log, dev_log = tmp / "cloud.log", tmp / "devices.log"
    run = Run([f"dev-{i:04d}" for i in range(n)] + [f"dev-k{i:04d}" for i in range(KILLED_DEVICES)])
    cloud = devices = killed = None
    readers: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        cloud = await _start([sys.executable, "-m", "uplink62676", "-q", "cloud",
                              "--listen", f"127.0.0.1:{listen}", "--expose", f"127.0.0.1:{expose}",
                              "--plaintext", "--expose-open", "--state-dir", str(tmp / "state")],
                             cloud_log)
        for _ in range(150):
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", expose)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the cloud's front door never came up")
        await asyncio.sleep(0.5)
        rss_start = _rss_kib(cloud.pid)
        t_connect = time.monotonic()
        devices = await _start(_device_argv(listen, n, "dev-", args.seed), dev_log,
                               stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        killed = await _start(_device_argv(listen, KILLED_DEVICES, "dev-k", args.seed + 1),
                              dev_log, stdin=asyncio.subprocess.PIPE,
                              stdout=asyncio.subprocess.PIPE)
        assert devices.stdout is not None and killed.stdout is not None
        readers += [asyncio.create_task(_read_events(run, devices.stdout, "devices")),
                    asyncio.create_task(_read_events(run, killed.stdout, "killed"))]
        tasks.append(asyncio.create_task(_poll_listing(run, expose, stop)))
        deadline = time.monotonic() + 90.0
        while len(run.listed) < len(run.ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(run.listed)} of {len(run.ids)} devices registered "
                                   f"after 90 s")
            await asyncio.sleep(0.2)
        connected_in = time.monotonic() - t_connect
        await asyncio.gather(*(_touch(run, expose, run.ids[k::CONNECTIONS])
                               for k in range(CONNECTIONS)))
        run.t0 = t0 = time.monotonic()
        print(f"{len(run.ids)} devices registered in {connected_in:.1f} s, each asked once; running "
              f"{duration:.0f} s at {args.rate:g} req/s", flush=True)
        tasks += [asyncio.create_task(_traffic(run, expose, args.rate, k, stop,
                                               random.Random(rng.random())))
                  for k in range(CONNECTIONS)]
        samples: list[tuple[float, int]] = []
        rss_warm = None
        steps = iter(plan)
        step = next(steps, None)
        while (now := time.monotonic() - t0) < duration:
            if rss_warm is None and now >= WARM_UP:
                rss_warm = _rss_kib(cloud.pid)
            if step is not None and now >= step[0]:
                if step[1] == "drop":
                    assert devices.stdin is not None
                    devices.stdin.write(f"drop {drop_count}\n".encode())
                    await devices.stdin.drain()
                elif step[1] == "kill":
                    when = time.monotonic()
                    killed.kill()
                    await killed.wait()
                    run.dropped(when, run.ids[n:])
                    run.log.append(f"{when - t0:6.1f} s  killed: SIGKILL, {KILLED_DEVICES} uplinks")
                else:
                    when = time.monotonic()
                    killed = await _start(_device_argv(listen, KILLED_DEVICES, "dev-k",
                                                       args.seed + 2), dev_log,
                                          stdin=asyncio.subprocess.PIPE,
                                          stdout=asyncio.subprocess.PIPE)
                    assert killed.stdout is not None
                    readers.append(asyncio.create_task(_read_events(run, killed.stdout, "killed")))
                    run.back(when, run.ids[n:])
                    run.log.append(f"{when - t0:6.1f} s  killed: restarted")
                step = next(steps, None)
            if int(now) % 10 == 0 and (not samples or now - samples[-1][0] > 5):
                samples.append((now, _rss_kib(cloud.pid)))
            await asyncio.sleep(0.1)
        rss_end = _rss_kib(cloud.pid)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), REQUEST_TIMEOUT + 5)
        cloud_alive = cloud.returncode is None
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        if devices is not None and devices.stdin is not None:
            with contextlib.suppress(Exception):
                devices.stdin.close()
        await asyncio.gather(_stop(devices), _stop(killed), return_exceptions=True)
        await _stop(cloud)
        for t in readers:
            t.cancel()

    # --- figures ------------------------------------------------------------------------------
    ok = [(e - s) * 1000 for s, e, _d, o in run.results if o == "ok"]
    failed = [(s, e, d, o) for s, e, d, o in run.results if o != "ok"]
    unexplained = [f for f in failed if not run.explained(f[0], f[1], f[2])]
    never_back = sorted(d for d, w in run.waiting.items())
    print(f"INSECURE plaintext uplinks (so that the handshakes fit two cores); "
          f"{n} + {KILLED_DEVICES} devices, {duration:.0f} s, {args.rate:g} req/s over "
          f"{CONNECTIONS} HTTP/1.1 keep-alive connections")
    for line in run.log:
        print("  " + line)
    print(f"requests: {len(run.results)} sent, {len(ok)} answered, {len(failed)} failed, "
          f"{len(unexplained)} unexplained (goal 0)")
    if failed:
        kinds: dict[str, int] = {}
        for f in failed:
            kinds[f[3]] = kinds.get(f[3], 0) + 1
        print("  failures by outcome: " + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
    for s, e, d, o in unexplained[:20]:
        print(f"  UNEXPLAINED at {s - t0:.2f}..{e - t0:.2f} s: {d} -> {o}")
    if never_back:
        print(f"  never listed again after their drop: {' '.join(never_back)}")
    if run.vanished:
        print(f"  left the listing outside a drop window: {len(run.vanished)} "
              f"(first: {', '.join(f'{d} at {t - t0:.1f} s' for t, d in run.vanished[:5])})")
    if ok:
        q = statistics.quantiles(ok, n=100)
        print(f"latency of answered requests: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms")
    assert rss_warm is not None
    growth = rss_end - rss_warm
    print(f"cloud VmRSS: start {rss_start / 1024:.1f} MiB, after warm-up {rss_warm / 1024:.1f} MiB "
          f"({len(run.ids)} devices, each asked once, + {WARM_UP:.0f} s), end {rss_end / 1024:.1f} MiB; "
          f"growth after warm-up {growth / 1024:+.1f} MiB (goal < 10 MB)")
    print("  samples: " + ", ".join(f"{t:.0f} s {r / 1024:.1f}" for t, r in samples))
    passed_failures = not unexplained and not never_back and cloud_alive
    passed_rss = growth * 1024 < 10_000_000
    print(f"unexplained failures: {'PASS' if passed_failures else 'MISS'}; "
          f"RSS growth: {'PASS' if passed_rss else 'MISS'}")
    if not passed_failures:
        print(f"  (cloud log {cloud_log}, device log {dev_log} kept)")
    return passed_failures and passed_rss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="60 s, one drop round, one SIGKILL")
    p.add_argument("--duration", type=float, help="seconds after warm-up (default 300, 60)")
    p.add_argument("--devices", type=int, default=1000, help="uplinks of the device process")
    p.add_argument("--rate", type=float, default=100.0, help="requests per second")
    p.add_argument("--seed", type=int, default=62676)
    args = p.parse_args()
    _raise_fd_limit()
    limit = (args.duration if args.duration is not None else (60 if args.quick else 300)) + 90 + 30
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))

    async def bounded() -> bool:
        main_task = asyncio.current_task()
        assert main_task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
        return await asyncio.wait_for(_soak(args, tmp), limit)

    try:
        passed = asyncio.run(bounded())
    except (asyncio.CancelledError, KeyboardInterrupt):
        print(f"interrupted: every process stopped (logs in {tmp})")
        sys.exit(130)
    if passed:
        for f in tmp.rglob("*"):
            if f.is_file():
                f.unlink()
        with contextlib.suppress(OSError):
            for d in sorted(tmp.rglob("*"), reverse=True):
                d.rmdir()
            tmp.rmdir()
    sys.exit(0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--device-child"]:
        port, count, prefix, seed = sys.argv[2:6]
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_device_child(int(port), int(count), prefix, int(seed)))
    else:
        main()
