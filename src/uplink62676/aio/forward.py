"""Device-side handler that forwards tunneled requests to a local HTTP/1.1 server.

This gives a legacy camera an uplink: every request the cloud sends through
the uplink is replayed to ``--forward http://127.0.0.1:80`` (one connection
per request) and the answer streamed back.  The header rules (UserLevel in
``X-Uplink-User-Level``, UPL-41; ``Authorization`` and an incoming
``X-Uplink-User-Level`` dropped, UPL-R19; body framing) live in
:func:`uplink62676.httpheaders.local_request_head`, the HTTP/1.1 client in
:class:`uplink62676.httpclient.Http1Client`; this module moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from ..errors import ConfigurationError, TransportError, UplinkError
from ..events import Event
from ..httpclient import Http1Client, ResponseBody, ResponseComplete, ResponseStarted
from ..httpheaders import local_request_head, strip_hop_by_hop
from ._common import Response
from .device import TunneledRequest

__all__ = ["HttpForwarder"]

log = logging.getLogger("uplink62676.forward")

_READ = 65536


def _failed(text: bytes) -> Response:
    return Response(502, (("content-type", "text/plain"),), text)


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
            return _failed(b"the device's local web server is not reachable\n")
        head = local_request_head(
            request.headers, method=request.method, host=self.host_header,
            user_level=request.user_level, content_length=request.content_length,
            body_complete=request.at_eof)
        client = Http1Client()
        upload: asyncio.Task[None] | None = None
        try:
            client.send_request(request.method, self.prefix + request.path, head.headers)
            writer.write(client.data_to_send())
            upload = asyncio.create_task(self._upload(client, writer, request, head.has_body))
            started, early = await self._head(client, reader)
        except (Exception, asyncio.CancelledError) as exc:
            if upload is not None:
                upload.cancel()
            writer.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("local server failed on %s %s: %r", request.method, request.path, exc)
            return _failed(b"the device's local web server failed\n")
        headers = tuple(strip_hop_by_hop(started.headers))
        return Response(started.status_code, headers,
                        self._download(client, reader, writer, upload, early))

    async def _upload(self, client: Http1Client, writer: asyncio.StreamWriter,
                      request: TunneledRequest, has_body: bool) -> None:
        with contextlib.suppress(Exception):
            if has_body:
                while chunk := await request.read():
                    client.send_body(chunk)
                    writer.write(client.data_to_send())
                    await writer.drain()
            client.end_body()
            writer.write(client.data_to_send())
            await writer.drain()

    async def _head(self, client: Http1Client,
                    reader: asyncio.StreamReader) -> tuple[ResponseStarted, list[Event]]:
        """The response head and the events that came with it (body octets, the end)."""
        while True:
            data = await asyncio.wait_for(reader.read(_READ), self.timeout)
            events = client.receive_data(data)
            for i, e in enumerate(events):
                if isinstance(e, ResponseStarted):
                    return e, events[i + 1:]

    async def _download(self, client: Http1Client, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, upload: asyncio.Task[None],
                        events: list[Event]) -> AsyncIterator[bytes]:
        try:
            while True:
                for e in events:
                    if isinstance(e, ResponseBody):
                        yield e.data
                    elif isinstance(e, ResponseComplete):
                        return
                try:
                    events = client.receive_data(await reader.read(_READ))
                except UplinkError as exc:
                    raise TransportError(f"local server broke HTTP/1.1: {exc}") from None
        finally:
            upload.cancel()
            writer.close()
