"""Real Redis, real HAProxy and real cloud nodes (CLI subprocesses) on loopback ports."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _adapters_util import free_port
from uplink62676.app.haproxy import haproxy_config

CMD = [sys.executable, "-m", "uplink62676"]
FLEET = Path(__file__).with_name("_cluster_fleet.py")
SECRET = "cluster-test-secret-0123456789"

needs_servers = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("haproxy") is None,
    reason="needs redis-server and haproxy (apt install redis-server haproxy)")


async def http_get(port: int, path: str, timeout: float = 10.0,
                   host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 GET (``Connection: close``); raises TimeoutError past ``timeout``."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                         "Connection: close\r\n\r\n".encode())
            data = await reader.read()
        finally:
            writer.close()
    if not data:
        raise ConnectionResetError("closed without an answer")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


class Redis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--notify-keyspace-events", "Ex", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], check=False,
                             capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip()

    def device_keys(self) -> int:
        return int(self.cli("EVAL", "return #redis.call('KEYS', ARGV[1])", "0",
                            "uplink62676:dev:*") or 0)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Node:
    def __init__(self, name: str, redis_port: int, secret_file: Path, refresh: float,
                 extra: list[str], host: str = "127.0.0.1", rtsp: bool = False) -> None:
        self.name = name
        #: The front door's (and the device ports') address: nodes on one machine that all
        #: listen on the cluster's device ports need one loopback address each.
        self.host = host
        self.listen, self.expose, self.internal = free_port(), free_port(), free_port()
        self.rtsp = free_port() if rtsp else None
        if rtsp:
            extra = [*extra, "--rtsp-listen", f"127.0.0.1:{self.rtsp}"]
        self.argv = [*CMD, "cloud", "--listen", f"127.0.0.1:{self.listen}",
                     "--expose", f"{host}:{self.expose}", "--expose-open",
                     "--registry", f"redis://127.0.0.1:{redis_port}/0", "--node-id", name,
                     "--node-listen", f"127.0.0.1:{self.internal}", "--grace", "5",
                     "--registry-refresh", str(refresh), *extra]
        if "--node-cert" not in extra:
            self.argv += ["--plaintext", "--node-secret-file", str(secret_file)]
        self.log = secret_file.parent / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("ab"), env=dict(os.environ))

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                status, _, _ = asyncio.run(http_get(self.expose, "/devices", 2, self.host))
                if status == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"node {self.name} not ready"
            time.sleep(0.1)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc


class Cluster:
    """Redis + ``n`` nodes + HAProxy (uplink and front-door ports)."""

    def __init__(self, tmp: Path, n: int = 3, refresh: float = 1.0,
                 extra: list[str] | None = None, hosts: list[str] | None = None,
                 rtsp: bool = False) -> None:
        self.tmp = tmp
        self.redis = Redis(tmp)
        secret = tmp / "node-secret"
        secret.write_text(SECRET)
        secret.chmod(0o600)
        self.refresh = refresh
        self.nodes = [Node(f"n{i + 1}", self.redis.port, secret, refresh, extra or [],
                           host=hosts[i] if hosts else "127.0.0.1", rtsp=rtsp)
                      for i in range(n)]
        self.uplink_port, self.frontdoor_port = free_port(), free_port()
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.fleet: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.redis.start()
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text(haproxy_config(
            uplink_bind=("127.0.0.1", self.uplink_port),
            uplink_nodes=[(n.name, ("127.0.0.1", n.listen)) for n in self.nodes],
            frontdoor_bind=("127.0.0.1", self.frontdoor_port),
            frontdoor_nodes=[(n.name, (n.host, n.expose)) for n in self.nodes],
            check_interval="500ms", maxconn=4000))
        self.haproxy = subprocess.Popen(["haproxy", "-f", str(cfg), "-db"],
                                        stdout=subprocess.DEVNULL,
                                        stderr=(self.tmp / "haproxy.log").open("ab"))
        deadline = time.monotonic() + 10
        while True:
            try:
                asyncio.run(http_get(self.frontdoor_port, "/devices", 2))
                break
            except OSError:
                assert time.monotonic() < deadline, (self.tmp / "haproxy.log").read_text()
                time.sleep(0.1)

    def start_fleet(self, count: int, scheme: str = "http") -> None:
        self.fleet = subprocess.Popen(
            [sys.executable, str(FLEET), f"{scheme}://127.0.0.1:{self.uplink_port}/uplink",
             str(count)], stdout=subprocess.DEVNULL,
            stderr=(self.tmp / "fleet.log").open("ab"))

    def listing(self, node: Node) -> list[dict[str, object]]:
        status, _, body = asyncio.run(http_get(node.expose, "/devices", 10, node.host))
        assert status == 200, body
        result: list[dict[str, object]] = json.loads(body)
        return result

    def wait_listed(self, count: int, timeout: float = 60) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while True:
            alive = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
            listings = [self.listing(n) for n in alive]
            if all(len(x) == count for x in listings):
                return listings[0]
            assert time.monotonic() < deadline, (
                f"listed {[len(x) for x in listings]}, want {count}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.fleet is not None and self.fleet.poll() is None:
            self.fleet.terminate()
            try:
                self.fleet.wait(10)
            except subprocess.TimeoutExpired:
                self.fleet.kill()
        for node in self.nodes:
            node.stop()
        if self.haproxy is not None:
            self.haproxy.terminate()
            self.haproxy.wait(10)
        self.redis.stop()


async def fetch_all(port: int, devices: list[str], path: str = "/who", timeout: float = 10.0,
                    concurrency: int = 50) -> dict[str, tuple[int, bytes, float]]:
    """GET /devices/<id><path> for every device: ``id -> (status, body, seconds)``."""
    gate = asyncio.Semaphore(concurrency)
    out: dict[str, tuple[int, bytes, float]] = {}

    async def one(device: str) -> None:
        async with gate:
            started = time.monotonic()
            try:
                status, _, body = await http_get(port, f"/devices/{device}{path}", timeout)
            except (OSError, TimeoutError) as exc:
                status, body = -1, repr(exc).encode()
            out[device] = (status, body, time.monotonic() - started)

    await asyncio.gather(*(one(d) for d in devices))
    return out
