"""The device-port file's format: versioned JSON of the port leases (no file I/O here).

:mod:`uplink62676.io.portstore` writes it crash-safely.  Self-describing
(``"format": 1``); a newer release reads every older format, a newer format is
refused with :class:`~uplink62676.storeformat.NewerFormatError`::

    {"format": 1, "range": [7000, 7099],
     "leases": [{"device": "cam-1", "port": 7000, "offline_since": null}]}

``offline_since``: epoch seconds since the device went away, null while connected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Final

from ..errors import ConfigurationError
from ..storeformat import NewerFormatError
from .ports import PortLease

__all__ = ["MAX_PORT_FILE_BYTES", "PORT_FORMAT_VERSION", "decode_leases", "encode_leases"]

PORT_FORMAT_VERSION: Final = 1
#: The largest device-port file read (65535 leases of long IDs fit easily).
MAX_PORT_FILE_BYTES: Final = 32 * 1024 * 1024


def encode_leases(leases: Iterable[PortLease], port_range: tuple[int, int]) -> bytes:
    """The file's bytes (one lease per line, so a diff stays readable)."""
    lines = [json.dumps({"device": lease.device_id, "port": lease.port,
                         "offline_since": lease.offline_since}, ensure_ascii=False)
             for lease in leases]
    head = f'{{"format": {PORT_FORMAT_VERSION}, "range": [{port_range[0]}, {port_range[1]}],'
    body = ",\n  ".join(lines)
    return (head + (f'\n "leases": [\n  {body}\n ]}}\n' if lines else ' "leases": []}\n')
            ).encode("utf-8")


def _lease(item: Any) -> PortLease:
    if not isinstance(item, dict):
        raise ConfigurationError(f"a lease must be an object, got {item!r:.80}")
    device, port, since = item.get("device"), item.get("port"), item.get("offline_since")
    if not isinstance(device, str) or not device:
        raise ConfigurationError(f"lease without a device ID: {item!r:.80}")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigurationError(f"lease of {device!r:.80} has no valid port: {port!r:.20}")
    if since is not None and (isinstance(since, bool) or not isinstance(since, int | float)
                              or not math.isfinite(since)):
        raise ConfigurationError(f"lease of {device!r:.80}: bad offline_since {since!r:.20}")
    return PortLease(device, port, None if since is None else float(since))


def decode_leases(data: bytes) -> list[PortLease]:
    """The leases in a device-port file; ConfigurationError when it is not one."""
    if len(data) > MAX_PORT_FILE_BYTES:
        raise ConfigurationError(f"device-port file larger than {MAX_PORT_FILE_BYTES} octets")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("leases"), list):
        raise ConfigurationError("not a device-port file (no 'leases' list)")
    version = doc.get("format")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigurationError(f"format version {version!r:.20} is not a number")
    if version > PORT_FORMAT_VERSION:
        raise NewerFormatError(f"device-port format {version} is newer than this release "
                               f"reads ({PORT_FORMAT_VERSION})")
    return [_lease(item) for item in doc["leases"]]
