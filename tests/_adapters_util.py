"""Shared helpers of the adapter tests: throw-away PKI, fast schedules, raw peers."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
from pathlib import Path

import attrs

from uplink62676.io.certs import CertificateAuthority
from uplink62676.io.tls import cloud_tls_context, device_tls_context
from uplink62676.liveness import ReconnectSchedule


@attrs.define
class Pki:
    dir: Path
    ca: str
    other_ca: str
    cloud: tuple[str, str]
    cloud_wrong_name: tuple[str, str]
    cloud_expired: tuple[str, str]
    cloud_other_ca: tuple[str, str]
    devices: dict[str, tuple[str, str]]
    device_other_ca: tuple[str, str]

    def cloud_ctx(
        self, *, client_ca: bool = True, require: bool | None = None, which: str = "cloud"
    ) -> ssl.SSLContext:
        cert, key = getattr(self, which)
        return cloud_tls_context(
            cert_file=cert,
            key_file=key,
            client_ca_file=self.ca if client_ca else None,
            require_client_cert=require,
        )

    def device_ctx(self, device: str | None = "cam-1", *, ca: str | None = None) -> ssl.SSLContext:
        if device is None:
            return device_tls_context(ca_file=ca or self.ca)
        cert, key = self.devices.get(device, self.device_other_ca)
        return device_tls_context(ca_file=ca or self.ca, cert_file=cert, key_file=key)


def make_pki(tmp: Path) -> Pki:
    ca = CertificateAuthority("test CA")
    other = CertificateAuthority("some other CA")
    now = datetime.datetime.now(datetime.UTC)
    past = now - datetime.timedelta(days=10)
    return Pki(
        dir=tmp,
        ca=ca.write_ca(tmp / "ca.pem"),
        other_ca=other.write_ca(tmp / "other-ca.pem"),
        cloud=ca.issue_cloud("localhost", "127.0.0.1").write(tmp, "cloud"),
        cloud_wrong_name=ca.issue_cloud("cloud.example.test").write(tmp, "cloud-wrong"),
        cloud_expired=ca.issue_cloud(
            "localhost", "127.0.0.1", not_before=past - datetime.timedelta(days=5), not_after=past
        ).write(tmp, "cloud-expired"),
        cloud_other_ca=other.issue_cloud("localhost", "127.0.0.1").write(tmp, "cloud-other"),
        devices={
            name: ca.issue_device(name).write(tmp, name) for name in ("cam-1", "cam-2", "cam-3")
        },
        device_other_ca=other.issue_device("intruder").write(tmp, "intruder"),
    )


def fast_schedule(identity: str) -> ReconnectSchedule:
    """Reconnect quickly in tests (the real schedule starts at 1..5 s)."""
    return ReconnectSchedule(identity=identity, min_start=0.05, max_start=0.1, cap=0.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_handshake(
    client: ssl.SSLContext, server: ssl.SSLContext, server_hostname: str | None
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake in memory (no sockets); raises the client's or server's SSLError."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client.wrap_bio(c_in, c_out, server_side=False, server_hostname=server_hostname)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done_c = done_s = False
    for _ in range(20):
        if not done_c:
            try:
                cli.do_handshake()
                done_c = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        if not done_s:
            try:
                srv.do_handshake()
                done_s = True
            except ssl.SSLWantReadError:
                pass
        c_in.write(s_out.read())
        if done_c and done_s:
            # TLS 1.3: the server's verdict on the client certificate arrives after.
            with contextlib.suppress(ssl.SSLWantReadError):
                cli.read(1)
            return cli, srv
    raise AssertionError("handshake did not finish")


def aio(fn):  # type: ignore[no-untyped-def]
    """Run an ``async def`` test with ``asyncio.run`` and a 30 s ceiling."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 30))

    return wrapper
