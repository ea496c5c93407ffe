"""Answers the front door makes itself: the device list, 404, 405, 502 (text or JSON).

Values, not I/O: the connection turns one into a status line (or
``:status``), headers and a body on whichever HTTP version the client speaks.
The texts are part of the interface (clients and tests read them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import attrs

__all__ = ["LocalAnswer", "bad_gateway", "device_listing", "device_urls", "unknown_device"]

_TEXT = b"text/plain; charset=utf-8"


@attrs.frozen(slots=True)
class LocalAnswer:
    """A complete response: ``status``, ``content_type`` and ``body`` (length added on send).

    ``extra``: more header fields (``retry-after``, a challenge), sent after those two.
    """

    status: int
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} octets>")
    content_type: bytes = _TEXT
    extra: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def text(cls, status: int, text: str) -> LocalAnswer:
        """A plain-text answer with this status."""
        return cls(status, text.encode("utf-8"))

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Response headers: content type, length, and any extra ones."""
        return ((b"content-type", self.content_type),
                (b"content-length", str(len(self.body)).encode()), *self.extra)


def device_listing(devices: Sequence[dict[str, Any]]) -> LocalAnswer:
    """``GET /devices``: the connected devices as a JSON array."""
    return LocalAnswer(200, json.dumps(list(devices), indent=1).encode() + b"\n",
                       b"application/json")


def device_urls(device_id: str, *, scheme: str, authority: str, label: str | None = None,
                domain: str | None = None, device_port: int | None = None) -> list[str]:
    """Every URL by which ``device_id`` is reachable, for ``GET /devices``.

    ``authority``: how the listing's client reached the front door (its
    ``Host``), so the URLs work from where it stands: the path route
    ``/devices/<id>/`` (ID percent-encoded), the virtual host ``<label>.<domain>``
    on the same port, and the device's own ``device_port`` on the same host.
    """
    host, _, port = authority.rpartition(":") if not authority.endswith("]") else (
        authority, "", "")
    if not host or not port.isdigit():
        host, port = authority, ""
    urls = [f"{scheme}://{authority}/devices/{quote(device_id, safe='')}/"]
    if label is not None and domain:
        urls.append(f"{scheme}://{label}.{domain}{':' + port if port else ''}/")
    if device_port is not None:
        urls.append(f"{scheme}://{host}:{device_port}/")
    return urls


def unknown_device(device_id: str) -> LocalAnswer:
    """404 for a device that has no uplink now."""
    return LocalAnswer.text(404, f"no device {device_id!r} is connected (see GET /devices)\n")


def bad_gateway(device_id: str, reason: str) -> LocalAnswer:
    """502: the device went away (or never answered) before its response head."""
    return LocalAnswer.text(502, f"device {device_id!r}: {reason}\n")


NOT_FOUND = LocalAnswer.text(404, "use /devices (list) or /devices/<device-id>/<path>\n")
LISTING_METHOD = LocalAnswer.text(405, "GET /devices lists the connected devices\n")
