"""A synthetic RTSP camera on loopback (the demo, benchmarks): any path plays the same stream.

:class:`SyntheticCamera` answers OPTIONS, DESCRIBE, SETUP (interleaved over TCP
only), PLAY, GET_PARAMETER and TEARDOWN, and after PLAY sends the pictures of
:class:`~uplink62676.rtsp.synthetic.SyntheticStream` in real time (``fps``) as
interleaved RTP.  Not a camera for production: no authentication, one stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from ..errors import UplinkError
from ..rtsp.message import Interleaved, RtspReader, RtspRequest, RtspResponse, serialize
from ..rtsp.synthetic import SyntheticStream, sdp

__all__ = ["SyntheticCamera"]


class _Client:
    def __init__(self, camera: SyntheticCamera, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.camera, self.reader, self.writer = camera, reader, writer
        self.session = secrets.token_hex(6)
        self.channel = 0
        self.playing: asyncio.Task[None] | None = None

    async def run(self) -> None:
        parser = RtspReader()
        try:
            while data := await self.reader.read(65536):
                for item in parser.feed(data):
                    if isinstance(item, RtspRequest):
                        self.answer(item)
                    elif not isinstance(item, Interleaved | RtspResponse):
                        break
                await self.writer.drain()
        except (OSError, UplinkError):
            pass
        finally:
            if self.playing is not None:
                self.playing.cancel()
            self.writer.close()

    def answer(self, request: RtspRequest) -> None:
        headers: list[tuple[str, str]] = [("CSeq", request.header("cseq") or "0")]
        body = b""
        status = 200
        method = request.method
        if method == "OPTIONS":
            headers.append(("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"))
        elif method == "DESCRIBE":
            headers += [("Content-Type", "application/sdp"),
                        ("Content-Base", request.uri.rstrip("/") + "/")]
            body = sdp(self.camera.stream)
        elif method == "SETUP":
            transport = request.header("transport") or ""
            if "interleaved" not in transport.lower():
                status = 461
            else:
                with contextlib.suppress(ValueError):
                    self.channel = int(transport.lower().split("interleaved=")[1].split("-")[0])
                headers += [("Transport", f"RTP/AVP/TCP;unicast;interleaved={self.channel}-"
                                          f"{self.channel + 1}"),
                            ("Session", f"{self.session};timeout=60")]
        elif method == "PLAY":
            headers += [("Session", self.session), ("Range", "npt=0.000-")]
            if self.playing is None:
                self.playing = asyncio.create_task(self.play())
        elif method == "TEARDOWN":
            if self.playing is not None:
                self.playing.cancel()
                self.playing = None
        elif method != "GET_PARAMETER":
            status = 501
        reason = {200: "OK", 461: "Unsupported Transport", 501: "Not Implemented"}[status]
        self.writer.write(serialize(RtspResponse(status, reason, tuple(headers), body)))

    async def play(self) -> None:
        loop = asyncio.get_running_loop()
        stream = self.camera.stream
        start = loop.time()
        seq = 1
        index = 0
        while True:
            data, seq = stream.frame(index, seq, self.channel)
            self.writer.write(data)
            self.camera.frames_sent += 1
            index += 1
            await asyncio.sleep(max(0.0, start + index / stream.fps - loop.time()))


class SyntheticCamera:
    """An RTSP server on ``host:port`` (0: any free port) serving ``stream`` on every path."""

    def __init__(self, stream: SyntheticStream | None = None) -> None:
        self.stream = stream or SyntheticStream()
        self.frames_sent = 0
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen for players on ``host:port`` (0: any free port)."""
        self._server = await asyncio.start_server(self._serve, host, port)

    @property
    def port(self) -> int:
        """The TCP port the camera listens on."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await _Client(self, reader, writer).run()
        finally:
            self._clients.discard(task)

    async def close(self) -> None:
        """Stop listening and end every player's session."""
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
