"""Device-side RTSP bridge: what the cloud tunnels through the uplink, to the camera's RTSP server.

``uplink62676 device --rtsp rtsp://CAMERA[:PORT]`` puts :class:`RtspBridge`
in front of the other handlers.  It serves both streaming transports of
uplink.md section 10 and only moves bytes; the codecs live in
:mod:`uplink62676.rtsp`:

* RTSP over HTTP tunnelling (transcript G, MED-13..17): a GET with
  ``x-sessioncookie`` opens a TCP connection to the camera and is answered at
  once (200, no content-length, MED-15); the camera's octets are its body.  The
  POST with the same cookie carries base64 (decoded as a stream, MED-R5) to that
  connection and is never answered.  When the POST ends the GET stays (MED-R6);
  when the GET ends the camera connection closes.
* RFC 8441 extended CONNECT, ``:protocol websocket``, sub-protocol
  ``rtsp.onvif.org`` (transcript F, UPL-56/57): the device is the WebSocket
  server and never masks.

RTSP URLs are mapped between the uplink's authority (``rtsp://<device-id>/…``,
MED-R9) and the camera's own base, so the camera sees its own URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from ..errors import ConfigurationError, RemoteProtocolError, TransportError, UplinkError
from ..rtsp.httptunnel import Base64Decoder, CookieTable, get_response_headers, tunnel_channel
from ..rtsp.rewrite import StreamRewriter, UrlMap
from ..websocket import WebSocketFraming
from ._common import Response
from .device import Handler, TunneledRequest

__all__ = ["WEBSOCKET_PATH", "WEBSOCKET_PROTOCOL", "RtspBridge"]

log = logging.getLogger("uplink62676.rtspbridge")

#: The sub-protocol of RTSP over WebSocket (MED-18).
WEBSOCKET_PROTOCOL = "rtsp.onvif.org"
#: Where the bridge says it serves RTSP over WebSocket (``RTSPWebSocketUri``, MED-8).
WEBSOCKET_PATH = "/rtsp-over-websocket"
_READ = 65536


class _Camera:
    """One TCP connection to the camera and the URL map of its tunnel."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 urls: UrlMap) -> None:
        self.reader = reader
        self.writer = writer
        self.to_camera = StreamRewriter(urls, to_device=True)
        self.from_camera = StreamRewriter(urls, to_device=False)
        self.posts = 0

    async def write(self, rtsp: bytes) -> None:
        data, _ = self.to_camera.feed(rtsp)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The camera's octets, rewritten, until it closes."""
        try:
            while data := await self.reader.read(_READ):
                out, _ = self.from_camera.feed(data)
                if out:
                    yield out
        except (OSError, RemoteProtocolError) as exc:
            log.info("camera connection ended: %s", exc)
        finally:
            self.close()

    def close(self) -> None:
        self.writer.close()


class RtspBridge:
    """A device handler: RTSP tunnels go to the camera, other requests to ``fallback``."""

    def __init__(self, camera_url: str, fallback: Handler | None = None, *,
                 connect_timeout: float = 10.0, max_tunnels: int = 64) -> None:
        parts = urlsplit(camera_url)
        if parts.scheme != "rtsp" or not parts.hostname:
            raise ConfigurationError(f"--rtsp needs an rtsp://HOST[:PORT] URL, got {camera_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 554
        self.base = f"rtsp://{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}"
        self.fallback = fallback
        self.connect_timeout = connect_timeout
        self.tunnels: CookieTable[_Camera] = CookieTable(max_tunnels)

    async def _connect(self, request: TunneledRequest) -> _Camera:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"camera {self.host}:{self.port} not reachable: {exc}") from None
        return _Camera(reader, writer, UrlMap(f"rtsp://{request.authority or 'device'}", self.base))

    async def __call__(self, request: TunneledRequest) -> Response:
        if request.method == "CONNECT" and request.protocol == "websocket":
            return await self._websocket(request)
        channel = tunnel_channel(request.method, request.headers)
        if channel is None:
            if self.fallback is not None:
                return await self.fallback(request)
            return Response(404, (("content-type", "text/plain"),), b"not found\n")
        kind, cookie = channel
        if kind == "GET":
            return await self._get(request, cookie)
        return await self._post(request, cookie)

    async def _get(self, request: TunneledRequest, cookie: str) -> Response:
        try:
            camera = await self._connect(request)
        except TransportError as exc:
            log.warning("%s", exc)
            return Response(502, (("content-type", "text/plain"),), b"camera not reachable\n")
        try:
            self.tunnels.open(cookie, camera)
        except RemoteProtocolError as exc:
            camera.close()
            return Response(exc.http_status or 400, (("content-type", "text/plain"),),
                            f"{exc}\n".encode())
        log.info("RTSP tunnel opened (GET, stream %d)", request.stream_id)
        return Response(200, get_response_headers(), self._get_body(cookie, camera))

    async def _get_body(self, cookie: str, camera: _Camera) -> AsyncIterator[bytes]:
        try:
            async for chunk in camera.chunks():
                yield chunk
        finally:
            self.tunnels.close(cookie, camera)
            camera.close()
            log.info("RTSP tunnel closed")

    async def _post(self, request: TunneledRequest, cookie: str) -> Response:
        try:
            camera = self.tunnels.bind(cookie)
        except RemoteProtocolError as exc:
            return Response(exc.http_status or 400, (("content-type", "text/plain"),),
                            f"{exc}\n".encode())
        decoder = Base64Decoder()
        camera.posts += 1
        try:
            while chunk := await request.read():
                await camera.write(decoder.feed(chunk))
        except RemoteProtocolError as exc:  # undecodable base64 or broken RTSP (MED-R4)
            log.info("RTSP tunnel POST refused: %s", exc)
            camera.writer.write(b"RTSP/1.0 400 Bad Request\r\n\r\n")
            camera.close()
        except (TransportError, OSError):
            pass  # RST_STREAM CANCEL (UPL-60) or the camera went: the GET decides (MED-R6)
        finally:
            camera.posts -= 1
        return Response(200, (), b"")

    async def _websocket(self, request: TunneledRequest) -> Response:
        offered = [p.strip() for p in (request.header("sec-websocket-protocol") or "").split(",")]
        if WEBSOCKET_PROTOCOL not in offered:
            return Response(400, (("content-type", "text/plain"),),
                            b"sub-protocol rtsp.onvif.org required\n")
        try:
            camera = await self._connect(request)
        except TransportError as exc:
            log.warning("%s", exc)
            return Response(502, (), b"")
        framing = WebSocketFraming(client=False)
        out: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def upload() -> None:
            try:
                while chunk := await request.read():
                    rtsp, closed = framing.receive_data(chunk, 0.0)
                    if rtsp:
                        await camera.write(rtsp)
                    if control := framing.data_to_send():
                        await out.put(control)
                    if closed is not None:
                        break
            except (UplinkError, OSError):
                pass
            finally:
                camera.close()
                await out.put(None)

        task = asyncio.create_task(upload())

        async def download() -> AsyncIterator[bytes]:
            reader = asyncio.create_task(self._pump_camera(camera, framing, out))
            try:
                while (item := await out.get()) is not None:
                    yield item
            finally:
                reader.cancel()
                task.cancel()
                camera.close()
                log.info("RTSP over WebSocket closed")

        log.info("RTSP over WebSocket opened (stream %d)", request.stream_id)
        return Response(200, (("sec-websocket-protocol", WEBSOCKET_PROTOCOL),), download())

    @staticmethod
    async def _pump_camera(camera: _Camera, framing: WebSocketFraming,
                           out: asyncio.Queue[bytes | None]) -> None:
        async for chunk in camera.chunks():
            while out.qsize() > 64:  # the uplink reads slower than the camera sends
                await asyncio.sleep(0.01)
            await out.put(framing.data_to_send(chunk))
        framing.close()
        with contextlib.suppress(Exception):
            await out.put(framing.data_to_send())
        await out.put(None)
