"""The cloud's front door: plain HTTP clients reach devices through their uplinks.

:class:`ExposeServer` listens on one port and speaks HTTP/1.1 (h11) and
HTTP/2 with prior knowledge (h2c, h2) on it, told apart by the first 24
octets.  ``/devices/<device-id>/<rest>`` is forwarded as ``/<rest>`` to that
device through :meth:`CloudServer.open_stream`, bodies streamed both ways
with flow control on every hop; ``GET /devices`` lists the connected
devices as JSON.  Unknown device: ``404``; device gone before the answer:
``502`` (after the head was sent the client's stream is reset instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h11

from ..errors import ConfigurationError, TransportError
from ._common import HOP_BY_HOP
from .cloud import CloudServer, ResponseStream

__all__ = ["ExposeServer", "split_device_path"]

log = logging.getLogger("uplink62676.expose")

_MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_READ = 65536


def _forward_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k[:1] != b":" and k not in HOP_BY_HOP]


class _Answer:
    """A locally made answer (404, 502, the device list)."""

    def __init__(self, status: int, body: bytes,
                 content_type: bytes = b"text/plain; charset=utf-8") -> None:
        self.status = status
        self.body = body
        self.headers = [(b"content-type", content_type),
                        (b"content-length", str(len(body)).encode())]


def split_device_path(path: str) -> tuple[str, str]:
    """``/devices/<id>/<rest>`` -> ``(id, "/<rest>")``; the query stays with the rest.

    ``path`` must start with ``/devices/``; an empty id is returned as ``""``.
    """
    if not path.startswith("/devices/"):
        raise ConfigurationError(f"not a device path: {path[:100]!r}")
    rest = path[len("/devices/"):]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    device_id, tail = rest[:cut], rest[cut:]
    return device_id, tail if tail.startswith("/") else "/" + tail


def _unknown(device_id: str) -> _Answer:
    return _Answer(404, f"no device {device_id!r} is connected (see GET /devices)\n".encode())


class ExposeServer:
    """HTTP/1.1 + h2c front door of a :class:`CloudServer`.

    ``timeout`` bounds the wait for a device's response head.  It is longer
    than the longest PullMessages long poll a client may ask for (events.md:
    at least 60 s), so resource queries with ``--follow`` pass through.
    """

    def __init__(self, cloud: CloudServer, *, timeout: float = 120.0) -> None:
        self.cloud = cloud
        self.timeout = timeout
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._client, host, port, limit=_READ,
                                                  backlog=1024)
        log.info("exposing devices on http://%s:%d/devices/<device-id>/... (HTTP/1.1 and h2c)",
                 host, self.port)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    # --- routing ------------------------------------------------------------------------------

    async def _route(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes] | None,
    ) -> ResponseStream | _Answer:
        if path.split("?", 1)[0].rstrip("/") == "/devices":
            if method not in ("GET", "HEAD"):
                return _Answer(405, b"GET /devices lists the connected devices\n")
            listing = [d.to_json() for d in self.cloud.devices()]
            return _Answer(200, json.dumps(listing, indent=1).encode() + b"\n", b"application/json")
        if not path.startswith("/devices/"):
            return _Answer(404, b"use /devices (list) or /devices/<device-id>/<path>\n")
        device_id, target = split_device_path(path)
        if self.cloud.device(device_id) is None:
            return _unknown(device_id)
        try:
            return await self.cloud.open_stream(device_id, method, target,
                                                _forward_headers(headers), body,
                                                timeout=self.timeout)
        except KeyError:
            return _unknown(device_id)
        except TransportError as exc:
            log.warning("request to %s failed: %s", device_id, exc)
            return _Answer(502, f"device {device_id!r}: {exc}\n".encode())

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            first = b""
            while len(first) < len(_MAGIC) and _MAGIC.startswith(first):
                chunk = await reader.read(len(_MAGIC) - len(first))
                if not chunk:
                    break
                first += chunk
            if first == _MAGIC:
                await _H2Front(self, reader, writer).run(first)
            elif first:
                await _H1Front(self, reader, writer).run(first)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, TransportError):
            pass
        except (h11.ProtocolError, h2.exceptions.H2Error) as exc:
            log.info("front-door client broke HTTP: %s", exc)
        except Exception:  # one client's failure never takes the front door down
            log.exception("front-door connection failed")
        finally:
            self._tasks.discard(task)
            writer.close()


class _H1Front:
    def __init__(self, server: ExposeServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)

    async def _next(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(_READ)
            self.conn.receive_data(data)

    async def _send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def run(self, first: bytes) -> None:
        self.conn.receive_data(first)
        while True:
            try:
                event = await self._next()
            except h11.RemoteProtocolError as exc:
                with contextlib.suppress(h11.LocalProtocolError):
                    await self._send(h11.Response(status_code=exc.error_status_hint,
                                                  headers=[("content-length", "0")]))
                return
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                return
            if not await self._exchange(event):
                return
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is not h11.DONE:
                return
            self.conn.start_next_cycle()

    async def _exchange(self, request: h11.Request) -> bool:
        method = request.method.decode()
        headers = [(bytes(k).lower(), bytes(v)) for k, v in request.headers]
        peek = await self._next()
        body: bytes | AsyncIterator[bytes] | None
        body = None if isinstance(peek, h11.EndOfMessage) else self._body(peek)
        answer = await self.server._route(method, request.target.decode("latin-1"), headers, body)
        if isinstance(answer, _Answer):
            # Drain an unread body so the connection stays usable.
            if body is not None and not isinstance(body, bytes):
                async for _ in body:
                    pass
            await self._send(h11.Response(status_code=answer.status, headers=answer.headers))
            if method != "HEAD":
                await self._send(h11.Data(data=answer.body))
            await self._send(h11.EndOfMessage())
            return True
        out_headers = _forward_headers(list(answer.headers))
        await self._send(h11.Response(status_code=answer.status, headers=out_headers))
        try:
            async for chunk in answer:
                await self._send(h11.Data(data=chunk))
        except TransportError as exc:
            log.warning("device went away mid-response: %s", exc)
            return False  # cannot signal an error after the head in HTTP/1.1: close
        await self._send(h11.EndOfMessage())
        return True

    async def _body(self, first: object) -> AsyncIterator[bytes]:
        event = first
        while True:
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            else:
                raise TransportError("client closed while sending the body")
            event = await self._next()


class _H2Stream:
    __slots__ = ("chunks", "ended", "more", "reset", "task")

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[tuple[bytes, int] | None] = asyncio.Queue()
        self.ended = False
        self.reset = False
        self.more = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class _H2Front:
    def __init__(self, server: ExposeServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.streams: dict[int, _H2Stream] = {}
        self.window = asyncio.Event()
        self.flush_pending = False

    def flush(self) -> None:
        if not self.flush_pending:
            self.flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self.flush_pending = False
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    async def run(self, first: bytes) -> None:
        self.conn.initiate_connection()
        self.flush()
        data = first
        try:
            while data:
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.flush()
                    return
                for e in events:
                    self._event(e)
                self.flush()
                await self.writer.drain()
                data = await self.reader.read(_READ)
        finally:
            for s in self.streams.values():
                s.reset = True
                if s.task is not None:
                    s.task.cancel()

    def _event(self, e: h2.events.Event) -> None:
        if isinstance(e, h2.events.RequestReceived):
            s = _H2Stream()
            self.streams[e.stream_id] = s
            # Decided now: later events of this batch may end the stream before the task runs.
            has_body = e.stream_ended is None
            s.task = asyncio.create_task(self._exchange(e.stream_id, list(e.headers), s, has_body))
        elif isinstance(e, h2.events.DataReceived):
            s2 = self.streams.get(e.stream_id)
            if s2 is None:
                self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
            else:
                s2.chunks.put_nowait((e.data, e.flow_controlled_length))
        elif isinstance(e, h2.events.StreamEnded):
            if (s3 := self.streams.get(e.stream_id)) is not None:
                s3.ended = True
                s3.chunks.put_nowait(None)
        elif isinstance(e, h2.events.StreamReset):
            if (s4 := self.streams.pop(e.stream_id, None)) is not None:
                s4.reset = True
                s4.chunks.put_nowait(None)
                if s4.task is not None:
                    s4.task.cancel()
        elif isinstance(e, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.window.set()
            self.window = asyncio.Event()

    async def _body(self, sid: int, s: _H2Stream) -> AsyncIterator[bytes]:
        while True:
            item = await s.chunks.get()
            if item is None:
                if s.reset:
                    raise TransportError("client reset the stream")
                return
            data, fcl = item
            with contextlib.suppress(h2.exceptions.H2Error, KeyError):
                self.conn.acknowledge_received_data(fcl, sid)
                self.flush()
            yield data

    async def _exchange(self, sid: int, raw: list[tuple[bytes, bytes]], s: _H2Stream,
                        has_body: bool) -> None:
        pseudo = {k: v for k, v in raw if k[:1] == b":"}
        headers = [(k, v) for k, v in raw if k[:1] != b":"]
        method = pseudo.get(b":method", b"GET").decode()
        path = pseudo.get(b":path", b"/").decode("latin-1")
        body = self._body(sid, s) if has_body else None
        try:
            answer = await self.server._route(method, path, headers, body)
            if isinstance(answer, _Answer):
                self.conn.send_headers(sid, [(b":status", str(answer.status).encode()),
                                             *answer.headers],
                                       end_stream=method == "HEAD")
                if method != "HEAD":
                    await self._send(sid, answer.body, True)
                self.flush()
                return
            self.conn.send_headers(sid, [(b":status", str(answer.status).encode()),
                                         *_forward_headers(list(answer.headers))])
            self.flush()
            try:
                async for chunk in answer:
                    await self._send(sid, chunk, False)
                    await self.writer.drain()
            except TransportError as exc:
                log.warning("device went away mid-response: %s", exc)
                self.conn.reset_stream(sid, 2)  # INTERNAL_ERROR
                self.flush()
                return
            await self._send(sid, b"", True)
        except (h2.exceptions.H2Error, KeyError, ConnectionError, TransportError):
            return
        except Exception:
            log.exception("front-door stream %d failed", sid)
            with contextlib.suppress(h2.exceptions.H2Error, KeyError):
                self.conn.reset_stream(sid, 2)
                self.flush()
        finally:
            self.streams.pop(sid, None)

    async def _send(self, sid: int, data: bytes, end: bool) -> None:
        view = memoryview(data)
        while view:
            window = self.conn.local_flow_control_window(sid)
            if window <= 0:
                waiter = self.window
                await waiter.wait()
                continue
            n = min(window, len(view), self.conn.max_outbound_frame_size)
            self.conn.send_data(sid, bytes(view[:n]))
            view = view[n:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()
