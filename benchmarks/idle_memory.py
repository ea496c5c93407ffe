"""Memory of idle uplinks in one cloud process (goal <= 64 KiB per uplink).

The cloud (this process) accepts N uplinks over loopback TLS (server-authenticated; the
device ID comes from the upgrade path).  A child process opens them with the sans-I/O
DeviceUplink on plain asyncio protocols, so only the cloud's memory is measured.  The
cloud's resident set size (VmRSS) is read before and after, and the cost per uplink is
compared with the raw dependency measured in the same run: the same number of idle TLS
connections, each holding only a bare h2 client connection after its preface.

Run: python benchmarks/idle_memory.py [N] [--plaintext]
(--plaintext: the loudly named insecure mode, if TLS handshakes for N connections are too
slow on a machine; the default is TLS.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import ssl
import sys
import tempfile
import time
from pathlib import Path

import h2.config
import h2.connection

from uplink62676.aio import CloudServer
from uplink62676.io.certs import CertificateAuthority
from uplink62676.io.tls import cloud_tls_context, device_tls_context
from uplink62676.settings import DeviceSettings
from uplink62676.uplink import DeviceUplink


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class _DeviceProto(asyncio.Protocol):
    def __init__(self, url: str, done: asyncio.Future[None] | None) -> None:
        self.uplink = DeviceUplink(url, settings=DeviceSettings(), allow_plaintext=True)
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.t = transport
        self.uplink.start(0.0)
        self.t.write(self.uplink.data_to_send())

    def data_received(self, data: bytes) -> None:
        self.uplink.receive_data(data, 0.0)
        out = self.uplink.data_to_send()
        if out:
            self.t.write(out)
        if self.done is not None and not self.done.done() and self.uplink.status.value == "Connected":
            self.done.set_result(None)


class _RawProto(asyncio.Protocol):
    """The raw dependency: an idle TLS connection holding one h2 client connection."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.c.initiate_connection()
        transport.write(self.c.data_to_send())
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.c.receive_data(data)


async def _devices(port: int, n: int, ca: str | None, raw: bool) -> None:
    """Child: open n connections and keep them idle until killed."""
    _raise_fd_limit()
    loop = asyncio.get_running_loop()
    ctx = device_tls_context(ca_file=ca) if ca else None
    scheme = "https" if ctx else "http"
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with gate:
            done: asyncio.Future[None] = loop.create_future()
            if raw:
                await loop.create_connection(_RawProto, "127.0.0.1", port, ssl=ctx,
                                             server_hostname="localhost" if ctx else None)
                return
            url = f"{scheme}://localhost:{port}/uplink/dev-{i:05d}"
            await loop.create_connection(lambda: _DeviceProto(url, done), "127.0.0.1", port,
                                         ssl=ctx, server_hostname="localhost" if ctx else None)
            await done

    await asyncio.gather(*(one(i) for i in range(n)))
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    await asyncio.Event().wait()


class _RawServer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.c.initiate_connection()
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.c.data_to_send())
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.c.receive_data(data)
        self.t.write(self.c.data_to_send())


async def _measure(n: int, plaintext: bool, tmp: str, raw: bool) -> tuple[float, float]:
    ctx: ssl.SSLContext | None = None
    ca_file = None
    if not plaintext:
        ca = CertificateAuthority()
        ca_file = ca.write_ca(f"{tmp}/ca.pem")
        cert, key = ca.issue_cloud("localhost", "127.0.0.1").write(tmp, "cloud")
        ctx = cloud_tls_context(cert_file=cert, key_file=key)
    loop = asyncio.get_running_loop()
    gc.collect()
    cloud: CloudServer | None = None
    if raw:
        server = await loop.create_server(_RawServer, "127.0.0.1", 0, ssl=ctx, backlog=4096)
        port = server.sockets[0].getsockname()[1]
    else:
        cloud = CloudServer(ssl_context=ctx, insecure_plaintext=plaintext, allow_anonymous=True)
        await cloud.start("127.0.0.1", 0)
        port = cloud.port
    await asyncio.sleep(0.2)
    gc.collect()
    before = _rss_kib()
    started = time.monotonic()
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", str(port), str(n), ca_file or "-",
        "raw" if raw else "uplink", stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), 50)
    assert line.strip() == b"ready", line
    if cloud is not None:
        assert len(cloud.devices()) == n, len(cloud.devices())
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.3)
    gc.collect()
    after = _rss_kib()
    child.kill()
    await child.wait()
    if cloud is not None:
        await cloud.close()
    else:
        server.close()
    return (after - before) / n, elapsed


async def _server_process(kind: str, n: int, plaintext: bool) -> None:
    logging.disable(logging.WARNING)
    _raise_fd_limit()
    with tempfile.TemporaryDirectory() as tmp:
        kib, seconds = await _measure(n, plaintext, tmp, raw=kind == "raw")
    print(f"{kib:.2f} {seconds:.2f}", flush=True)


def _run_server(kind: str, n: int, plaintext: bool) -> tuple[float, float]:
    import subprocess

    argv = [sys.executable, __file__, "--server", kind, str(n)]
    if plaintext:
        argv.append("--plaintext")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    kib, seconds = out.split()
    return float(kib), float(seconds)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 2000
    plaintext = "--plaintext" in sys.argv
    mode = "INSECURE plaintext" if plaintext else "TLS"
    # Each case in a fresh process (freed memory would be reused otherwise), A B order.
    # The baseline uses a quarter of the connections (cost per connection is linear) so
    # that both runs together stay well under a minute on two shared cores.
    raw_n = max(n // 4, 1)
    up_kib, up_s = _run_server("uplink", n, plaintext)
    raw_kib, raw_s = _run_server("raw", raw_n, plaintext)
    print(f"idle connections over loopback {mode}, cloud process RSS growth:")
    print(f"  {n} uplinks (CloudServer + CloudUplink)   {up_kib:7.1f} KiB per uplink "
          f"(goal <= 64 KiB; {up_s:.1f} s to connect)")
    print(f"  {raw_n} raw asyncio TLS + bare h2 conns    {raw_kib:7.1f} KiB per connection "
          f"({raw_s:.1f} s to connect)")
    print(f"  ratio uplink/raw: {up_kib / raw_kib:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        port, n, ca, kind = sys.argv[2:6]
        asyncio.run(_devices(int(port), int(n), None if ca == "-" else ca, kind == "raw"))
    elif sys.argv[1:2] == ["--server"]:
        asyncio.run(_server_process(sys.argv[2], int(sys.argv[3]), "--plaintext" in sys.argv))
    else:
        main()
