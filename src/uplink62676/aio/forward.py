"""Device-side handler that forwards tunneled requests to a local HTTP/1.1 server.

This gives a legacy camera an uplink: every request the cloud sends through
the uplink is replayed to ``--forward http://127.0.0.1:80`` (one connection
per request, h11 as the parser) and the answer streamed back.  The uplink's
UserLevel travels in ``X-Uplink-User-Level`` (UPL-41); ``Authorization`` and
any incoming ``X-Uplink-User-Level`` are dropped so the cloud cannot raise its
own level (UPL-R19).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import h11

from ..errors import ConfigurationError, TransportError
from ._common import HOP_BY_HOP, USER_LEVEL_HEADER, Response
from .device import TunneledRequest

__all__ = ["HttpForwarder"]

log = logging.getLogger("uplink62676.forward")

_DROP = HOP_BY_HOP | {b"authorization", USER_LEVEL_HEADER.encode()}


class HttpForwarder:
    """``async (TunneledRequest) -> Response`` that replays the request to ``url``."""

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"--forward needs an http:// or https:// URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.host_header = parts.netloc.rpartition("@")[2]
        https = parts.scheme == "https"
        self.ssl = (ssl_context or ssl.create_default_context()) if https else None
        self.timeout = timeout

    async def __call__(self, request: TunneledRequest) -> Response:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl), self.timeout)
        except (OSError, TimeoutError) as exc:
            log.warning("cannot reach the local server %s:%d: %s", self.host, self.port, exc)
            return Response(502, (("content-type", "text/plain"),),
                            b"the device's local web server is not reachable\n")
        conn = h11.Connection(h11.CLIENT)
        headers = [(k, v) for k, v in request.headers if k not in _DROP and k != b"content-length"]
        headers.insert(0, (b"host", self.host_header.encode()))
        headers.append((USER_LEVEL_HEADER.encode(), " ".join(request.user_level).encode()))
        if request.content_length is not None:
            headers.append((b"content-length", str(request.content_length).encode()))
            has_body = request.content_length > 0
        elif request.at_eof:
            has_body = False
            if request.method in ("POST", "PUT", "PATCH"):
                headers.append((b"content-length", b"0"))
        else:
            headers.append((b"transfer-encoding", b"chunked"))
            has_body = True
        try:
            writer.write(conn.send(h11.Request(method=request.method,
                                               target=(self.prefix + request.path).encode(),
                                               headers=headers)) or b"")
            upload = asyncio.create_task(self._upload(conn, writer, request, has_body))
            response = await self._head(conn, reader)
        except Exception as exc:
            writer.close()
            log.warning("local server failed on %s %s: %r", request.method, request.path, exc)
            return Response(502, (("content-type", "text/plain"),),
                            b"the device's local web server failed\n")
        out_headers = tuple((k, v) for k, v in response.headers
                            if bytes(k).lower() not in HOP_BY_HOP)
        return Response(response.status_code, out_headers,
                        self._download(conn, reader, writer, upload))

    async def _upload(self, conn: h11.Connection, writer: asyncio.StreamWriter,
                      request: TunneledRequest, has_body: bool) -> None:
        with contextlib.suppress(Exception):
            if has_body:
                while chunk := await request.read():
                    writer.write(conn.send(h11.Data(data=chunk)) or b"")
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()

    async def _head(self, conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Response:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), self.timeout)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.InformationalResponse):
                continue
            raise ConnectionError(f"unexpected {event!r}")

    async def _download(self, conn: h11.Connection, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter,
                        upload: asyncio.Task[None]) -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    raise TransportError(f"local server broke HTTP/1.1: {exc}") from None
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    try:
                        conn.receive_data(data)
                    except h11.RemoteProtocolError as exc:
                        raise TransportError(f"local server broke HTTP/1.1: {exc}") from None
                    continue
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return
                else:
                    return
        finally:
            upload.cancel()
            writer.close()
