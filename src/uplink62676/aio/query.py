"""asyncio I/O of resource queries: an HTTP/1.1 client and the loop around
:class:`~uplink62676.query.client.QueryClient`, used by ``uplink62676 query`` and the demo.

One keep-alive HTTP/1.1 connection (``https://`` with the system trust store)
to the event service, usually through a cloud's front door
(``http://HOST:PORT/devices/<id>/onvif/events_service``).  Pull-point
addresses a device returns name its own view of the request (the uplink's
``:authority``), so only their path and query are used, sent to the same
origin under the same ``/devices/<id>`` prefix as the service URL
(UPL-R21).  An answer overdue by ``Timeout`` + 10 s, a broken connection or
a front-door error re-subscribes on the next step (RQ-R13).

No protocol logic lives here: it moves requests, answers and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs

from ..errors import LocalProtocolError, TransportError, UplinkError
from ..httpclient import Http1Client, ResponseBody, ResponseComplete, ResponseStarted
from ..query.client import LIVENESS_GRACE, Query, QueryClient, unsubscribe_request
from ..query.resources import Notification, Resource

__all__ = ["HttpClient", "QueryRunner", "Step", "follow", "run_sync"]

_T = TypeVar("_T")

_READ = 65536
_MAX_BODY = 16 * 1024 * 1024


class _StaleConnection(Exception):
    """The server closed the connection before a single octet of the answer."""


class HttpClient:
    """One keep-alive HTTP/1.1 connection to ``origin``, reopened when needed."""

    def __init__(self, origin: str) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LocalProtocolError(f"need an http:// or https:// URL, got {origin!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.authority = parts.netloc
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._conn: Http1Client | None = None

    async def _open(self) -> None:
        ctx = ssl.create_default_context() if self.scheme == "https" else None
        try:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, ssl=ctx)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot connect to {self.authority}: {exc}") from None
        self._conn = Http1Client()

    async def close(self) -> None:
        """Close the connection, if one is open."""
        writer, self._writer, self._reader, self._conn = self._writer, None, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def post(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """POST ``body`` to ``target`` (path and query); returns ``(status, body)``.

        A kept-alive connection the server closed while idle is replaced once,
        but only when not a single octet of an answer arrived.
        """
        reused = self._conn is not None and self._conn.idle
        if not reused:
            await self.close()
            await self._open()
        try:
            return await self._exchange(target, body, content_type)
        except _StaleConnection:
            await self.close()
            if not reused:
                raise TransportError(f"{self.authority} closed the connection") from None
        except (OSError, ssl.SSLError, UplinkError) as exc:
            await self.close()
            raise TransportError(f"HTTP exchange with {self.authority} failed: {exc}") from None
        await self._open()
        try:
            return await self._exchange(target, body, content_type)
        except (OSError, ssl.SSLError, UplinkError, _StaleConnection) as exc:
            await self.close()
            raise TransportError(f"HTTP exchange with {self.authority} failed: {exc}") from None

    async def _exchange(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        conn, reader, writer = self._conn, self._reader, self._writer
        assert conn is not None and reader is not None and writer is not None
        if reader.at_eof() or writer.is_closing():
            raise _StaleConnection
        conn.send_request("POST", target, [
            ("host", self.authority), ("content-type", content_type),
            ("content-length", str(len(body)))], body)
        try:
            writer.write(conn.data_to_send())
            await writer.drain()
        except ConnectionError:
            raise _StaleConnection from None
        status, data = 0, bytearray()
        while True:
            try:
                chunk = await reader.read(_READ)
            except ConnectionResetError:
                chunk = b""
            if not chunk and conn.received == 0:
                raise _StaleConnection
            for event in conn.receive_data(chunk):
                if isinstance(event, ResponseStarted):
                    status = event.status_code
                elif isinstance(event, ResponseBody):
                    data += event.data
                    if len(data) > _MAX_BODY:
                        raise TransportError(f"answer larger than {_MAX_BODY} octets")
                elif isinstance(event, ResponseComplete):
                    if not event.reusable:
                        await self.close()
                    return status, bytes(data)


def _device_prefix(path: str) -> str:
    """``/devices/<id>`` when ``path`` goes through a cloud's front door, else ``""``."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "devices" and parts[2]:
        return f"/devices/{parts[2]}"
    return ""


@attrs.frozen(slots=True)
class Step:
    """What one request of a :class:`QueryRunner` brought.

    ``kind``: ``"subscribed"``, ``"batch"`` (``notifications`` may be empty:
    a live check, RQ-21) or ``"lost"`` (``reason`` says why; the next step
    re-subscribes, RQ-R13).  ``previous`` maps the tokens of ``Deleted``
    notifications to what the mirror held before.
    """

    kind: str
    notifications: tuple[Notification, ...] = ()
    previous: dict[str, Resource] = attrs.field(factory=dict)
    reason: str = ""


class QueryRunner:
    """Drives a :class:`QueryClient` over :class:`HttpClient` (no protocol logic here)."""

    def __init__(self, url: str, query: Query, *, timeout: float = 10.0,
                 message_limit: int = 100) -> None:
        parts = urlsplit(url)
        self.http = HttpClient(f"{parts.scheme}://{parts.netloc}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = _device_prefix(parts.path)
        self.client = QueryClient(url, query, timeout=timeout, message_limit=message_limit,
                                  id_seed=str(time.time_ns()).encode())

    def target(self, url: str) -> str:
        """Path and query to send ``url`` to on our origin (UPL-R21)."""
        parts = urlsplit(url)
        path = parts.path or "/"
        if f"{parts.scheme}://{parts.netloc}" != self.origin and not path.startswith(
                self.prefix + "/"):
            path = self.prefix + path
        return path + (f"?{parts.query}" if parts.query else "")

    async def step(self) -> Step:
        """Send the client's next request and feed it the answer."""
        loop = asyncio.get_running_loop()
        request = self.client.next_request(loop.time())
        if request is None:  # pragma: no cover - one request at a time
            raise LocalProtocolError("a request is already in flight")
        limit = self.client.timeout + LIVENESS_GRACE
        try:
            async with asyncio.timeout(limit):
                status, body = await self.http.post(self.target(request.url),
                                                    request.request.body,
                                                    request.request.content_type)
        except TimeoutError:
            await self.http.close()
            self.client.handle_timeout(loop.time() + limit)
            return Step("lost", reason=f"no answer within Timeout + {LIVENESS_GRACE:g} s")
        except TransportError as exc:
            self.client.connection_lost()
            return Step("lost", reason=str(exc))
        if status >= 300 and not body.lstrip().startswith(b"<"):
            # Not SOAP: the front door's 404 (unknown device) or 502 (device gone).
            self.client.connection_lost()
            text = body[:200].decode("utf-8", "replace").strip()
            return Step("lost", reason=f"HTTP {status} from {self.origin}: {text}")
        subscribing = self.client.address is None
        before = dict(self.client.mirror.resources)
        reconnects = self.client.reconnects
        self.client.receive(status, body, loop.time())  # SoapFault on a refused subscription
        if subscribing:
            return Step("subscribed")
        if self.client.reconnects != reconnects:
            return Step("lost", reason="the pull point is gone (ResourceUnknownFault)")
        batch = self.client.last_batch
        notes = tuple(n for n in (batch.notifications if batch else ())
                      if n.topic.startswith("Resource/"))
        return Step("batch", notes, {n.token: before[n.token] for n in notes
                                     if n.token in before and n.data is None})

    async def snapshot(self) -> list[Notification]:
        """Subscribe and pull until the initial set is complete (a short batch)."""
        notes: list[Notification] = []
        while True:
            step = await self.step()
            if step.kind == "lost":
                raise TransportError(step.reason)
            notes += step.notifications
            if step.kind == "batch" and len(step.notifications) < self.client.message_limit:
                return notes

    async def unsubscribe(self) -> None:
        """End the subscription (best effort)."""
        address = self.client.address
        if address is None:
            return
        req = unsubscribe_request(address)
        with contextlib.suppress(TransportError, TimeoutError):
            async with asyncio.timeout(5):
                await self.http.post(self.target(address), req.body, req.content_type)

    async def close(self) -> None:
        """Close the HTTP connection the runner uses."""
        await self.http.close()


async def follow(runner: QueryRunner, on_step: Callable[[Step], None],
                 duration: float | None = None) -> None:
    """Keep stepping until SIGINT/SIGTERM or ``duration`` seconds; ``on_step`` sees each step.

    After a lost step it waits a second before re-subscribing (no hot loop
    while the server is away).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    timer = loop.call_later(duration, stop.set) if duration is not None else None
    stopper = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            step_task = asyncio.ensure_future(runner.step())
            await asyncio.wait({step_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not step_task.done():
                step_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await step_task
                break
            step = step_task.result()
            on_step(step)
            if step.kind == "lost":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        stopper.cancel()
        if timer is not None:
            timer.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


def run_sync(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` in a fresh event loop (the command's entry point)."""
    return asyncio.run(main)

