"""RTSP over HTTP tunnelling: the GET/POST channel pair (APL; MED-13..17, MED-R4..R6).

The pieces both ends share, sans-I/O: :class:`Base64Decoder` decodes the POST
body as a stream (MED-R5: CR, LF, space and tab dropped, 4-character quanta,
an incomplete quantum carried to the next read, a padded quantum ending only
itself); :func:`tunnel_channel` tells a tunnel GET or POST from other HTTP
requests; :func:`get_headers` / :func:`post_headers` are the cloud's request
heads through the uplink (UPL-58: a POST ``content-length`` for the tunnel's
lifetime, UPL-R28); :class:`CookieTable` binds the POST to its GET by exact
cookie equality (MED-14, MED-R4).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Final, Generic, TypeVar

from ..errors import RemoteProtocolError

__all__ = [
    "MEDIA_TYPE",
    "POST_CONTENT_LENGTH",
    "Base64Decoder",
    "CookieTable",
    "get_headers",
    "get_response_headers",
    "new_cookie",
    "post_headers",
    "sniff_tunnel_head",
    "tunnel_channel",
]

#: The tunnel's media type (APL).
MEDIA_TYPE: Final = "application/x-rtsp-tunnelled"
#: The POST channel's content-length through the uplink (UPL-58, UPL-R28).
POST_CONTENT_LENGTH: Final = 2_147_483_647
#: Longest cookie accepted (APL's example has 22 characters).
MAX_COOKIE: Final = 128

_DROP: Final = bytes.maketrans(b"", b"")
_B64: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


class Base64Decoder:
    """Streamed base64 decoding of a tunnel's POST body (MED-R5).

    ``T1BUSU9OUw==QUI=`` decodes to ``OPTIONSAB``: each padded quantum ends
    only itself.  Anything outside the base64 alphabet (after dropping
    whitespace) raises :class:`RemoteProtocolError` (answer RTSP 400, MED-R4).
    """

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    @property
    def pending(self) -> int:
        """Characters of an incomplete quantum held for the next call."""
        return len(self._carry)

    def feed(self, data: bytes) -> bytes:
        """Decode the next piece of a POST body; an unfinished quantum waits for the next call
        (MED-R5).
        """
        text = self._carry + bytes(data).translate(_DROP, b"\r\n \t")
        whole = len(text) - len(text) % 4
        self._carry = text[whole:]
        if not whole:
            return b""
        chunk = text[:whole]
        pad = chunk.find(b"=")
        try:
            if pad < 0 or (pad >= whole - 2 and chunk[pad:].strip(b"=") == b""):
                return base64.b64decode(chunk, validate=True)  # the common case: one piece
            out = bytearray()
            for i in range(0, whole, 4):  # padding inside: quantum by quantum
                out += base64.b64decode(chunk[i:i + 4], validate=True)
            return bytes(out)
        except (binascii.Error, ValueError):
            raise RemoteProtocolError("undecodable base64 in the tunnel's POST body",
                                      http_status=400) from None


def new_cookie(entropy: Callable[[int], bytes]) -> str:
    """A fresh random cookie of 22 URL-safe characters (MED-14)."""
    return base64.urlsafe_b64encode(entropy(16)).decode("ascii").rstrip("=")


def _value(headers: Iterable[tuple[str | bytes, str | bytes]], name: str) -> str | None:
    for k, v in headers:
        key = k.decode("latin-1") if isinstance(k, bytes) else k
        if key.lower() == name:
            return v.decode("latin-1") if isinstance(v, bytes) else v
    return None


def tunnel_channel(method: str, headers: Iterable[tuple[str | bytes, str | bytes]]
                   ) -> tuple[str, str] | None:
    """``("GET" | "POST", cookie)`` for a tunnel channel request, else None (MED-13, MED-14).

    A GET needs ``x-sessioncookie`` and ``Accept`` naming the tunnel's media
    type; a POST the cookie and that ``Content-Type``.
    """
    if method not in ("GET", "POST"):
        return None
    pairs = list(headers)
    cookie = _value(pairs, "x-sessioncookie")
    if cookie is None:
        return None
    cookie = cookie.strip()
    if not cookie or len(cookie) > MAX_COOKIE:
        return None
    wanted = _value(pairs, "accept" if method == "GET" else "content-type") or ""
    if MEDIA_TYPE not in wanted.lower():
        return None
    return method, cookie


def get_headers(cookie: str) -> list[tuple[str, str]]:
    """The GET channel's request headers through the uplink (transcript G)."""
    return [("x-sessioncookie", cookie), ("accept", MEDIA_TYPE), ("pragma", "no-cache"),
            ("cache-control", "no-cache")]


def post_headers(cookie: str, content_length: int | None = POST_CONTENT_LENGTH
                 ) -> list[tuple[str, str]]:
    """The POST channel's request headers (UPL-58; None: no content-length, UPL-R28)."""
    out = [("x-sessioncookie", cookie), ("content-type", MEDIA_TYPE), ("pragma", "no-cache"),
           ("cache-control", "no-cache")]
    if content_length is not None:
        out.append(("content-length", str(content_length)))
    return out


def get_response_headers() -> list[tuple[str, str]]:
    """The GET answer's headers: no content-length, the body open for the tunnel (MED-15)."""
    return [("content-type", MEDIA_TYPE), ("cache-control", "no-store"), ("pragma", "no-cache")]


T = TypeVar("T")


class CookieTable(Generic[T]):
    """Open GET channels by cookie; a POST binds by exact equality (MED-14, MED-R4).

    ``limit`` bounds the table (a GET beyond it is refused, 503).
    """

    __slots__ = ("_open", "limit")

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._open: dict[str, T] = {}

    def __len__(self) -> int:
        return len(self._open)

    def open(self, cookie: str, channel: T) -> None:
        """Register a GET; a cookie in use is 400, a full table 503 (MED-R4)."""
        if cookie in self._open:
            raise RemoteProtocolError("a tunnel GET with a cookie in use", http_status=400)
        if len(self._open) >= self.limit:
            raise RemoteProtocolError("too many open RTSP tunnels", http_status=503)
        self._open[cookie] = channel

    def bind(self, cookie: str) -> T:
        """The GET a POST belongs to; no such GET is 400 (MED-R4)."""
        channel = self._open.get(cookie)
        if channel is None:
            raise RemoteProtocolError("a tunnel POST whose cookie matches no open GET",
                                      http_status=400)
        return channel

    def close(self, cookie: str, channel: T | None = None) -> None:
        """Forget a GET (only ``channel``'s entry when given)."""
        if channel is None or self._open.get(cookie) is channel:
            self._open.pop(cookie, None)


def sniff_tunnel_head(data: bytes, max_head: int = 16 * 1024) -> tuple[str, str, str, int] | None:
    """``(GET|POST, cookie, path, head length)`` when ``data`` opens with a whole tunnel head.

    The front door's hook: a player's own RTSP-over-HTTP channel (``ffmpeg
    -rtsp_transport http``, VLC ``--rtsp-http``) is told apart from ordinary
    HTTP by its first octets.  Anything else (or an incomplete head) is None.
    """
    if not (data.startswith(b"GET ") or data.startswith(b"POST ")):
        return None
    end = data.find(b"\r\n\r\n", 0, max_head)
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        return None
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        headers.append((name.strip(), value.strip()))
    channel = tunnel_channel(parts[0], headers)
    if channel is None:
        return None
    return channel[0], channel[1], parts[1], end + 4
