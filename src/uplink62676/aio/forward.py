"""Device-side handler that forwards tunneled requests to a local HTTP/1.1 server.

This gives a legacy camera an uplink: every request the cloud sends through
the uplink is replayed to ``--forward http://127.0.0.1:80`` (one connection
per request) and the answer streamed back.  The header rules (UserLevel in
``X-Uplink-User-Level``, UPL-41; ``Authorization`` and an incoming
``X-Uplink-User-Level`` dropped, UPL-R19; body framing) live in
:func:`uplink62676.httpheaders.local_request_head`, the HTTP/1.1 client in
:class:`uplink62676.httpclient.Http1Client`; the camera's URIs in SOAP answers
become the tunneled request's origin and ``wsa:To`` the camera's URL again
(:class:`uplink62676.camerarewrite.CameraRewriting`, DEV-R16/R17); this module
moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from ..camerarewrite import CameraRewriting, is_soap
from ..errors import ConfigurationError, TransportError, UplinkError
from ..events import Event
from ..frontdoor.rewrite import SoapUriFilter
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
                 timeout: float = 30.0, rtsp: str | None = None) -> None:
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
        # ``rtsp``: the camera's RTSP server bridged by ``--rtsp``; its stream URIs then
        # name the tunneled origin's host (UPL-R21), which the cloud maps to its gateway.
        self.rewriting = CameraRewriting(f"{parts.scheme}://{parts.netloc}{self.prefix}",
                                         rtsp_url=rtsp)

    async def __call__(self, request: TunneledRequest) -> Response:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl), self.timeout)
        except (OSError, TimeoutError) as exc:
            log.warning("cannot reach the local server %s:%d: %s", self.host, self.port, exc)
            return _failed(b"the device's local web server is not reachable\n")
        binding = self.rewriting.bind(request.scheme, request.authority)
        whole: bytes | None = None
        headers = list(request.headers)
        length = request.content_length
        if binding is not None:
            headers += binding.forwarding_headers()
            ctype = request.header("content-type")
            if is_soap(ctype) and length is not None and 0 < length <= binding.max_body:
                try:
                    whole = binding.request_body(await request.body(binding.max_body), ctype)
                except UplinkError:
                    writer.close()
                    return _failed(b"the request body could not be read\n")
                length = len(whole)
        head = local_request_head(
            headers, method=request.method, host=self.host_header,
            user_level=request.user_level, content_length=length,
            body_complete=request.at_eof or whole is not None)
        client = Http1Client()
        upload: asyncio.Task[None] | None = None
        try:
            client.send_request(request.method, self.prefix + request.path, head.headers)
            writer.write(client.data_to_send())
            upload = asyncio.create_task(self._upload(client, writer, request, head.has_body,
                                                      whole))
            started, early = await self._head(client, reader)
        except (Exception, asyncio.CancelledError) as exc:
            if upload is not None:
                upload.cancel()
            writer.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.warning("local server failed on %s %s: %r", request.method, request.path, exc)
            return _failed(b"the device's local web server failed\n")
        answer = tuple(strip_hop_by_hop(started.headers))
        body = self._download(client, reader, writer, upload, early)
        ctype = next((v.decode("latin-1") for n, v in answer if n == b"content-type"), None)
        flt = binding.response_filter(ctype) if binding is not None else None
        if flt is not None:
            answer = tuple(h for h in answer if h[0] != b"content-length")
            body = _filtered(body, flt)
        return Response(started.status_code, answer, body)

    async def _upload(self, client: Http1Client, writer: asyncio.StreamWriter,
                      request: TunneledRequest, has_body: bool, whole: bytes | None) -> None:
        with contextlib.suppress(Exception):
            if whole is not None:
                if whole:
                    client.send_body(whole)
            elif has_body:
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


async def _filtered(body: AsyncIterator[bytes], flt: SoapUriFilter) -> AsyncIterator[bytes]:
    """``body`` through the camera binding's URI filter."""
    async for chunk in body:
        if out := flt.feed(chunk):
            yield out
    if tail := flt.end():
        yield tail
