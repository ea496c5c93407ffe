"""RTSP URL rewriting between a gateway's public URLs and a device's own (MED-R14).

A :class:`UrlMap` pairs two bases (scheme + authority + path prefix).
Requests going to the device get their Request-URI mapped public -> private and
lose ``Authorization`` / ``Proxy-Authorization`` (the gateway authenticates
players itself); responses coming back get ``Content-Base``,
``Content-Location``, ``Location``, every ``url=`` of ``RTP-Info`` and absolute
SDP ``a=control:`` lines mapped private -> public, with ``Content-Length``
recomputed.  ``CSeq``, ``Session``, ``Transport`` and relative controls stay as
they are.  :class:`StreamRewriter` applies this to a whole RTSP/TCP byte stream
and passes interleaved frames through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import attrs

from .message import (
    Interleaved,
    RtspMessage,
    RtspReader,
    RtspRequest,
    RtspResponse,
    replace_header,
    serialize,
)

__all__ = ["StreamRewriter", "UrlMap", "rewrite_request", "rewrite_response", "rewrite_sdp"]

_DROPPED = frozenset({"authorization", "proxy-authorization"})
_URL_HEADERS = frozenset({"content-base", "content-location", "location"})


def _split_base(base: str) -> tuple[str, str]:
    """``(scheme://authority lower-cased, path without a trailing slash)``."""
    parts = urlsplit(base)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}", parts.path.rstrip("/")


def _swap(url: str, frm: tuple[str, str], to: tuple[str, str]) -> str | None:
    origin, prefix = frm
    if len(url) < len(origin) or url[:len(origin)].lower() != origin:
        return None
    rest = url[len(origin):]
    if rest and rest[0] not in "/?":
        return None  # another port or host that merely starts alike
    if prefix:
        if not rest.startswith(prefix) or rest[len(prefix):len(prefix) + 1] not in ("", "/", "?"):
            return None
        rest = rest[len(prefix):]
    return to[0] + to[1] + rest


@attrs.frozen(slots=True)
class UrlMap:
    """``public`` (what players use) <-> ``private`` (what the device knows) RTSP bases."""

    public: str
    private: str

    def to_private(self, url: str) -> str:
        """A public URL on the device's base; other URLs unchanged."""
        swapped = _swap(url, _split_base(self.public), _split_base(self.private))
        return url if swapped is None else swapped

    def to_public(self, url: str) -> str:
        """A device URL on the gateway's base; other URLs unchanged."""
        swapped = _swap(url, _split_base(self.private), _split_base(self.public))
        return url if swapped is None else swapped


def rewrite_request(request: RtspRequest, urls: UrlMap) -> RtspRequest:
    """The request as the device should see it (MED-R14, client -> device)."""
    headers = tuple((k, v) for k, v in request.headers if k.lower() not in _DROPPED)
    uri = request.uri if request.uri == "*" else urls.to_private(request.uri)
    return attrs.evolve(request, uri=uri, headers=headers)


def _rtp_info(value: str, convert: Callable[[str], str]) -> str:
    entries = []
    for entry in value.split(","):
        params = []
        for param in entry.split(";"):
            name, sep, url = param.strip().partition("=")
            params.append(f"{name}={convert(url)}" if sep and name.lower() == "url"
                          else param.strip())
        entries.append(";".join(params))
    return ",".join(entries)


def rewrite_sdp(body: bytes, convert: Callable[[str], str]) -> bytes:
    """Map absolute ``a=control:`` URLs of an SDP body; other lines byte-exact."""
    lines = body.split(b"\n")
    changed = False
    for i, line in enumerate(lines):
        if line[:10].lower() == b"a=control:":
            raw = line[10:]
            cr = raw.endswith(b"\r")
            url = (raw[:-1] if cr else raw).decode("utf-8", "replace").strip()
            if "://" in url:
                new = convert(url)
                if new != url:
                    lines[i] = b"a=control:" + new.encode("utf-8") + (b"\r" if cr else b"")
                    changed = True
    return b"\n".join(lines) if changed else body


def rewrite_response(response: RtspResponse, urls: UrlMap) -> RtspResponse:
    """The response as the player should see it (MED-R14, device -> client)."""
    headers: list[tuple[str, str]] = []
    sdp = False
    for k, value in response.headers:
        low = k.lower()
        v = value
        if low in _URL_HEADERS:
            v = urls.to_public(value)
        elif low == "rtp-info":
            v = _rtp_info(value, urls.to_public)
        elif low == "content-type" and value.split(";")[0].strip().lower() == "application/sdp":
            sdp = True
        headers.append((k, v))
    body = rewrite_sdp(response.body, urls.to_public) if sdp else response.body
    out = attrs.evolve(response, headers=tuple(headers), body=body)
    if body is not response.body:
        out = attrs.evolve(out, headers=replace_header(out.headers, "Content-Length",
                                                       str(len(body))))
    return out


class StreamRewriter:
    """Rewrites one direction of an RTSP/TCP byte stream; frames pass through untouched.

    ``feed(data)`` returns ``(octets to pass on, messages seen)``: the messages
    (rewritten) let a gateway watch CSeq, Session and TEARDOWN replies.
    """

    __slots__ = ("_reader", "to_device", "urls")

    def __init__(self, urls: UrlMap, *, to_device: bool) -> None:
        self.urls = urls
        self.to_device = to_device
        self._reader = RtspReader()

    @property
    def buffered(self) -> int:
        """Octets held back waiting for the rest of a message."""
        return self._reader.buffered

    def rewrite(self, message: RtspMessage) -> RtspMessage:
        """Rewrite the URLs of one message in this direction's sense (MED-R14)."""
        if isinstance(message, RtspRequest):
            return rewrite_request(message, self.urls) if self.to_device else message
        return message if self.to_device else rewrite_response(message, self.urls)

    def feed(self, data: bytes) -> tuple[bytes, list[RtspMessage]]:
        """Pass a piece of the stream; returns the octets to forward and the RTSP messages seen."""
        items = self._reader.feed(data)
        if len(items) == 1 and isinstance(items[0], Interleaved):
            return items[0].data, []  # the hot path: RTP only
        out: list[bytes] = []
        seen: list[RtspMessage] = []
        for item in items:
            if isinstance(item, Interleaved):
                out.append(item.data)
            else:
                message = self.rewrite(item)
                seen.append(message)
                out.append(serialize(message))
        return b"".join(out), seen
