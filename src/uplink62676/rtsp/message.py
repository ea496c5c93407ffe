"""RTSP 1.0 messages and interleaved binary frames on one byte stream (RFC 2326, MED-12).

:class:`RtspReader` splits a byte stream into :class:`RtspRequest`,
:class:`RtspResponse` and :class:`Interleaved` items.  A ``$`` (0x24) starts a
binary frame (channel, 16-bit length, payload); anything else starts an RTSP
message.  Consecutive frames come out as one :class:`Interleaved` run without
being copied per packet, so a relay passes RTP through by length only.  Heads
and bodies are bounded: a peer that exceeds them gets a
:class:`~uplink62676.errors.RemoteProtocolError` (the status to answer with in
``http_status``), never unbounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import attrs

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_BODY",
    "MAX_HEAD",
    "Headers",
    "Interleaved",
    "RtspMessage",
    "RtspReader",
    "RtspRequest",
    "RtspResponse",
    "header",
    "replace_header",
    "serialize",
]

#: Longest message head read (request/status line and headers), in octets.
MAX_HEAD: Final = 16 * 1024
#: Longest message body (an SDP or a GET_PARAMETER reply), in octets.
MAX_BODY: Final = 256 * 1024
#: RTSP methods a reader accepts in a request line (RFC 2326 section 10, ONVIF's set).
METHODS: Final = frozenset({
    "OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER",
    "SET_PARAMETER", "ANNOUNCE", "RECORD", "REDIRECT"})

Headers = tuple[tuple[str, str], ...]
_TOKEN_CHARS: Final = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                b"abcdefghijklmnopqrstuvwxyz")


def _headers(value: Iterable[tuple[str, str]]) -> Headers:
    return tuple((str(k), str(v)) for k, v in value)


def header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    low = name.lower()
    for k, v in headers:
        if k.lower() == low:
            return v
    return None


def replace_header(headers: Headers, name: str, value: str | None) -> Headers:
    """``headers`` without ``name``; unless ``value`` is None, ``name: value`` in its place."""
    low = name.lower()
    out: list[tuple[str, str]] = []
    placed = value is None
    for k, v in headers:
        if k.lower() == low:
            if not placed:
                out.append((k, value))  # type: ignore[arg-type]
                placed = True
            continue
        out.append((k, v))
    if not placed:
        out.append((name, value))  # type: ignore[arg-type]
    return tuple(out)


@attrs.frozen(slots=True)
class RtspRequest:
    """An RTSP request: ``method uri RTSP/1.0``, headers in order, a body."""

    method: str
    uri: str
    headers: Headers = attrs.field(default=(), converter=_headers)
    body: bytes = attrs.field(default=b"", repr=lambda b: f"<{len(b)} octets>")

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive name), or ``None``."""
        return header(self.headers, name)


@attrs.frozen(slots=True)
class RtspResponse:
    """An RTSP response: ``RTSP/1.0 status reason``, headers in order, a body."""

    status: int
    reason: str
    headers: Headers = attrs.field(default=(), converter=_headers)
    body: bytes = attrs.field(default=b"", repr=lambda b: f"<{len(b)} octets>")

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive name), or ``None``."""
        return header(self.headers, name)


RtspMessage = RtspRequest | RtspResponse


@attrs.frozen(slots=True)
class Interleaved:
    """One or more whole ``$`` frames, as they came (MED-12); ``frames`` counts them."""

    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} octets>")
    frames: int = 1


def serialize(message: RtspMessage) -> bytes:
    """The wire form of a message; ``Content-Length`` is set to the body's length."""
    body = message.body
    keep = body or header(message.headers, "content-length") is not None
    headers = replace_header(message.headers, "Content-Length",
                             str(len(body)) if keep else None)
    if isinstance(message, RtspRequest):
        if not message.method or any(c not in _TOKEN_CHARS for c in message.method.encode()):
            raise LocalProtocolError(f"not an RTSP method: {message.method!r}")
        first = f"{message.method} {message.uri} RTSP/1.0"
    else:
        first = f"RTSP/1.0 {message.status} {message.reason}"
    lines = [first, *(f"{k}: {v}" for k, v in headers)]
    text = "\r\n".join(lines) + "\r\n\r\n"
    if any(c in text[:-4].replace("\r\n", "") for c in "\r\n\x00"):
        raise LocalProtocolError("CR, LF or NUL inside an RTSP header")
    return text.encode("utf-8") + body


def _bad(message: str, status: int = 400) -> RemoteProtocolError:
    return RemoteProtocolError(message, http_status=status)


def _parse_head(head: bytes) -> tuple[RtspRequest | RtspResponse, int]:
    """Parse a head (without the blank line): the message (no body) and its Content-Length."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    first = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name or any(c not in _TOKEN_CHARS for c in name.encode("utf-8")):
            raise _bad(f"malformed RTSP header line {line[:80]!r}")
        headers.append((name, value.strip()))
    length_text = header(tuple(headers), "content-length")
    length = 0
    if length_text is not None:
        if not length_text.isdigit() or len(length_text) > 9:
            raise _bad(f"bad Content-Length {length_text[:20]!r}")
        length = int(length_text)
        if length > MAX_BODY:
            raise _bad(f"RTSP body of {length} octets exceeds {MAX_BODY}", 413)
    if first.startswith("RTSP/"):
        version, _, rest = first.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != "RTSP/1.0" or len(code) != 3 or not code.isdigit():
            raise _bad(f"malformed RTSP status line {first[:80]!r}")
        return RtspResponse(int(code), reason, headers), length
    parts = first.split(" ")
    if len(parts) != 3 or parts[2] != "RTSP/1.0" or not parts[1]:
        if len(parts) == 3 and parts[2].startswith("RTSP/"):
            raise _bad(f"unsupported RTSP version {parts[2][:20]!r}", 505)
        raise _bad(f"malformed RTSP request line {first[:80]!r}")
    if parts[0] not in METHODS:
        raise _bad(f"unknown RTSP method {parts[0][:32]!r}", 501)
    return RtspRequest(parts[0], parts[1], headers), length


class RtspReader:
    """Splits an RTSP/TCP byte stream into messages and interleaved frame runs (MED-12).

    :meth:`feed` takes any split of the stream and returns what became
    complete.  After a :class:`RemoteProtocolError` the stream is unusable.
    """

    __slots__ = ("_buf", "_failed", "_pending", "max_body", "max_head")

    def __init__(self, *, max_head: int = MAX_HEAD, max_body: int = MAX_BODY) -> None:
        self.max_head = max_head
        self.max_body = max_body
        self._buf = bytearray()
        self._pending: tuple[RtspMessage, int] | None = None  # a head waiting for its body
        self._failed = False

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message or frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[RtspMessage | Interleaved]:
        """Parse as much of the stream as has arrived: RTSP messages and interleaved frames."""
        if self._failed:
            raise LocalProtocolError("the RTSP stream already failed")
        buf = self._buf
        if not buf and self._pending is None:
            view = memoryview(data)  # the common case: nothing held, no copy
        else:
            buf += data
            view = memoryview(buf)
        out: list[RtspMessage | Interleaved] = []
        pos = 0
        end = len(view)
        try:
            while pos < end:
                if self._pending is not None:
                    message, length = self._pending
                    if end - pos < length:
                        break
                    out.append(attrs.evolve(message, body=bytes(view[pos:pos + length])))
                    pos += length
                    self._pending = None
                    continue
                if view[pos] == 0x24:
                    start, frames = pos, 0
                    while pos + 4 <= end and view[pos] == 0x24:
                        size = 4 + (view[pos + 2] << 8 | view[pos + 3])
                        if pos + size > end:
                            break
                        pos += size
                        frames += 1
                    if frames:
                        out.append(Interleaved(bytes(view[start:pos]), frames))
                        continue
                    break
                if view[pos] in (0x0D, 0x0A):  # stray CR LF between messages
                    pos += 1
                    continue
                found = bytes(view[pos:min(end, pos + self.max_head + 4)]).find(b"\r\n\r\n")
                if found < 0:
                    if end - pos > self.max_head:
                        raise _bad(f"RTSP head longer than {self.max_head} octets", 431)
                    break
                message, length = _parse_head(bytes(view[pos:pos + found]))
                if length > self.max_body:
                    raise _bad(f"RTSP body of {length} octets exceeds {self.max_body}", 413)
                pos += found + 4
                if length:
                    self._pending = (message, length)
                else:
                    out.append(message)
        except RemoteProtocolError:
            self._failed = True
            raise
        rest = view[pos:]
        if view.obj is buf:
            rest.release()
            view.release()
            del buf[:pos]
        else:
            buf += rest
        return out
