"""``uplink62676 certs``: a CA, a cloud certificate and device certificates for integrators.

``uplink62676 certs DIR --cloud NAME[,NAME...] --device ID [--device ID ...]``
writes ``DIR/ca.pem`` + ``DIR/ca.key`` (the CA), ``DIR/cloud.pem`` +
``DIR/cloud.key`` (a TLS server certificate for the DNS names and IP
addresses given) and ``DIR/<ID>.pem`` + ``DIR/<ID>.key`` per device (a TLS
client certificate whose subject CN is the device ID: the cloud takes the
device's identity from it, UPL-34).  Keys are written with mode 0600.  Run
again with new ``--device`` IDs on the same DIR: the existing CA signs them.
Nothing is ever overwritten.  At the end the command prints the ``cloud`` and
``device`` command lines that use the files.

Exit codes: 0 ok, 2 usage, 3 configuration (a file exists, the CA cannot be
read, a directory cannot be written).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

from ..deviceid import DeviceId
from ..errors import ConfigurationError, InvalidDeviceIdError
from ..io.certs import CertificateAuthority

__all__ = ["add_certs_parser", "make_certificates", "run_certs"]

#: A device ID becomes a file name: keep it to characters that are safe there.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def add_certs_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``certs`` on the command line's subparsers."""
    c: argparse.ArgumentParser = sub.add_parser(
        "certs", help="make a CA, a cloud certificate and device certificates (mTLS)",
        description="Write DIR/ca.pem + ca.key, DIR/cloud.pem + cloud.key for the --cloud names "
                    "and DIR/<ID>.pem + <ID>.key per --device (subject CN = device ID). Keys "
                    "are mode 0600. Run again with new --device IDs to add devices signed by "
                    "the same CA; existing files are never overwritten.")
    c.add_argument("directory", type=Path, metavar="DIR", help="where the files go (created)")
    c.add_argument("--cloud", metavar="NAME[,NAME...]",
                   help="DNS names and/or IP addresses of the cloud (its certificate's "
                        "subjectAltNames); needed the first time")
    c.add_argument("--device", action="append", default=[], metavar="ID",
                   help="a device ID (the certificate's CN; repeatable)")
    c.add_argument("--check-device-id", action="store_true",
                   help="refuse device IDs that are not 20-digit Annex A IDs")
    c.add_argument("--days", type=int, default=365, metavar="N",
                   help="validity of the new certificates in days (default 365)")
    return c


def _hosts(text: str) -> list[str]:
    hosts = [h.strip() for h in text.split(",") if h.strip()]
    if not hosts:
        raise ConfigurationError("--cloud needs at least one DNS name or IP address")
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*",
                                host):
                raise ConfigurationError(f"--cloud {host!r} is neither a DNS name nor an IP "
                                         "address") from None
    return hosts


def _device_ids(ids: list[str], strict: bool) -> list[str]:
    seen: list[str] = []
    for device in ids:
        if strict:
            try:
                DeviceId.parse(device)
            except InvalidDeviceIdError as exc:
                raise ConfigurationError(f"--device {device!r}: {exc}") from None
        if not _SAFE_ID.fullmatch(device) or device in ("ca", "cloud"):
            raise ConfigurationError(f"--device {device!r}: use letters, digits, '.', '_' or '-' "
                                     "(and not 'ca' or 'cloud'), it becomes a file name")
        if device in seen:
            raise ConfigurationError(f"--device {device!r} is given twice")
        seen.append(device)
    return seen


def make_certificates(directory: Path, cloud: str | None, devices: list[str], *,
                      check_device_id: bool = False, days: int = 365) -> list[Path]:
    """Write what ``uplink62676 certs`` writes; returns the new files.

    Raises :class:`~uplink62676.ConfigurationError` before writing anything if a
    target file exists, the CA cannot be loaded, or an argument is invalid.
    """
    if days < 1:
        raise ConfigurationError(f"--days must be >= 1, got {days}")
    hosts = _hosts(cloud) if cloud is not None else []
    ids = _device_ids(devices, check_device_id)
    ca_pem, ca_key = directory / "ca.pem", directory / "ca.key"
    have_ca = ca_pem.exists() or ca_key.exists()
    if not have_ca and not hosts:
        raise ConfigurationError(f"{directory} has no CA yet: the first run needs --cloud")
    if not hosts and not ids:
        raise ConfigurationError("nothing to make: give --cloud and/or --device")
    targets = ([directory / "cloud.pem", directory / "cloud.key"] if hosts else [])
    for device in ids:
        targets += [directory / f"{device}.pem", directory / f"{device}.key"]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise ConfigurationError(f"refusing to overwrite {', '.join(existing)}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if have_ca:
            ca = CertificateAuthority.load(ca_pem, ca_key)
        else:
            ca = CertificateAuthority("uplink62676 CA", days=max(days, 365) * 2)
            ca.write_ca(ca_pem)
            ca.write_key(ca_key)
            targets[:0] = [ca_pem, ca_key]
        not_after = _after(days)
        if hosts:
            ca.issue_cloud(*hosts, not_after=not_after).write(directory, "cloud")
        for device in ids:
            ca.issue_device(device, not_after=not_after).write(directory, device)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot make the certificates in {directory}: {exc}") from None
    return targets


def _after(days: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)


def _hint(directory: Path, cloud: str | None, devices: list[str], out: TextIO) -> None:
    d = shlex.quote(str(directory))
    host = (cloud.split(",")[0].strip() if cloud else None) or "CLOUD-HOST"
    if ":" in host:
        host = f"[{host}]"
    out.write("\nRun the cloud with:\n"
              f"  uplink62676 cloud --listen 0.0.0.0:8443 --expose 127.0.0.1:8080 \\\n"
              f"      --cert {d}/cloud.pem --key {d}/cloud.key --client-ca {d}/ca.pem\n")
    for device in devices or ["<ID>"]:
        out.write(f"Run device {device} with:\n"
                  f"  uplink62676 device --remote https://{host}:8443/uplink "
                  f"--forward http://127.0.0.1:80 \\\n"
                  f"      --ca {d}/ca.pem --cert {d}/{device}.pem --key {d}/{device}.key\n")


def run_certs(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Carry out ``uplink62676 certs``; returns the exit code."""
    out = out or sys.stdout
    try:
        written = make_certificates(args.directory, args.cloud, list(args.device),
                                    check_device_id=args.check_device_id, days=args.days)
    except ConfigurationError as exc:
        sys.stderr.write(f"uplink62676 certs: {exc}\n")
        return 3
    for path in written:
        mode = oct(os.stat(path).st_mode & 0o777)
        out.write(f"wrote {path} ({mode})\n")
    _hint(args.directory, args.cloud, list(args.device), out)
    return 0
