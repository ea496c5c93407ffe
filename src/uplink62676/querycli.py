"""``uplink62676 query``: run a resource query against an event service and print the result.

The I/O around the sans-I/O :class:`~uplink62676.query.client.QueryClient`:
one keep-alive HTTP/1.1 connection (h11, over asyncio; ``https://`` with the
system trust store) to the event service, usually through the cloud's front
door (``http://HOST:PORT/devices/<id>/onvif/events_service``).

Pull-point addresses a device returns name its own view of the request (the
uplink's ``:authority``), so only their path and query are used and they go
to the same origin, under the same ``/devices/<id>`` prefix as the URL
(UPL-R21).  Without ``--follow`` the command subscribes, pulls the initial
``Initialized`` set with ``Timeout`` 0, unsubscribes and prints a table; with
``--follow`` it keeps pulling with ``--timeout`` and prints every
notification and a live-check line for each empty answer (RQ-21); an answer
overdue by ``Timeout`` + 10 s or an unknown pull point re-subscribes (RQ-R13).

Exit codes: 0 ok, 1 failure (message on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import ssl
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

import attrs
import h11

from .errors import LocalProtocolError, SoapFault, TransportError, UplinkError
from .query.client import (
    LIVENESS_GRACE,
    Query,
    QueryClient,
    unsubscribe_request,
)
from .query.geodesy import geodesic_distance
from .query.resources import Notification, Resource

__all__ = [
    "HttpClient",
    "QueryRunner",
    "Step",
    "add_query_parser",
    "distance_m",
    "resource_record",
    "run_query",
]

_READ = 65536
_MAX_BODY = 16 * 1024 * 1024


class HttpClient:
    """One keep-alive HTTP/1.1 connection (h11) to ``origin``, reopened when needed."""

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
        self._conn: h11.Connection | None = None

    async def _open(self) -> None:
        ctx = ssl.create_default_context() if self.scheme == "https" else None
        try:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, ssl=ctx)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot connect to {self.authority}: {exc}") from None
        self._conn = h11.Connection(h11.CLIENT)

    async def close(self) -> None:
        writer, self._writer, self._reader, self._conn = self._writer, None, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def post(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """POST ``body`` to ``target`` (path and query); returns ``(status, body)``."""
        if self._conn is None or self._conn.our_state is not h11.IDLE:
            await self.close()
            await self._open()
        try:
            return await self._exchange(target, body, content_type)
        except (OSError, ssl.SSLError, h11.ProtocolError) as exc:
            await self.close()
            raise TransportError(f"HTTP exchange with {self.authority} failed: {exc}") from None

    async def _exchange(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        conn, reader, writer = self._conn, self._reader, self._writer
        assert conn is not None and reader is not None and writer is not None
        writer.write(conn.send(h11.Request(method="POST", target=target, headers=[
            ("host", self.authority), ("content-type", content_type),
            ("content-length", str(len(body)))])) or b"")
        writer.write((conn.send(h11.Data(data=body)) or b"")
                     + (conn.send(h11.EndOfMessage()) or b""))
        await writer.drain()
        status, data = 0, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(_READ)
                if not chunk:
                    raise TransportError(f"{self.authority} closed the connection")
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                data += event.data
                if len(data) > _MAX_BODY:
                    raise TransportError(f"answer larger than {_MAX_BODY} octets")
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise TransportError(f"{self.authority} closed the connection")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
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
        await self.http.close()


# ---------------------------------------------------------------------- output


def distance_m(resource: Resource | None, near: tuple[float, float] | None) -> float | None:
    """Geodesic distance in metres from ``near`` (lat, lon), if both are known."""
    loc = resource.location if resource is not None else None
    if near is None or loc is None or loc.lat is None or loc.lon is None:
        return None
    return geodesic_distance(near[0], near[1], loc.lat, loc.lon)


def _operation(note: Notification) -> str:
    return note.operation.value if note.operation is not None else "Initialized"


def resource_record(token: str, resource: Resource | None, near: tuple[float, float] | None,
                    operation: str) -> dict[str, Any]:
    """One ``--json`` object: token, name, lat, lon, distance_m, scopes, offline, operation."""
    loc = resource.location if resource is not None else None
    dist = distance_m(resource, near)
    return {
        "token": token,
        "kind": resource.kind if resource is not None else None,
        "name": resource.name if resource is not None else None,
        "lat": loc.lat if loc is not None else None,
        "lon": loc.lon if loc is not None else None,
        "distance_m": round(dist, 1) if dist is not None else None,
        "scopes": list(resource.scopes) if resource is not None else [],
        "offline": resource.offline if resource is not None else None,
        "operation": operation,
    }


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """The resource table: token, name, distance, lat, lon, offline."""
    head = ("TOKEN", "NAME", "DIST_M", "LAT", "LON", "OFFLINE")
    rows = [(r["token"], r["name"] or "-",
             "-" if r["distance_m"] is None else f"{r['distance_m']:.1f}",
             "-" if r["lat"] is None else f"{r['lat']:.6f}",
             "-" if r["lon"] is None else f"{r['lon']:.6f}",
             "-" if r["offline"] is None else ("yes" if r["offline"] else "no")) for r in records]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def _sorted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["distance_m"] is None, r["distance_m"] or 0.0,
                                          r["token"]))


class _Printer:
    def __init__(self, out: TextIO, as_json: bool, near: tuple[float, float] | None) -> None:
        self.out, self.json, self.near = out, as_json, near

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def table(self, resources: dict[str, Resource]) -> None:
        records = _sorted([resource_record(t, r, self.near, "Initialized")
                           for t, r in resources.items()])
        if self.json:
            for r in records:
                self.line(json.dumps(r, sort_keys=True))
        else:
            self.line(format_table(records))
            self.line(f"{len(records)} resource(s)")

    def notification(self, note: Notification, previous: Resource | None) -> None:
        data = note.data if note.data is not None else previous
        rec = resource_record(note.token or "-", data, self.near, _operation(note))
        if self.json:
            self.line(json.dumps(rec, sort_keys=True))
            return
        dist = "" if rec["distance_m"] is None else f"  {rec['distance_m']:.1f} m"
        state = "" if rec["offline"] is None else ("  offline" if rec["offline"] else "  online")
        self.line(f"{rec['operation']:<11}  {rec['token']}  {rec['name'] or '-'}{dist}{state}")

    def live_check(self, timeout: float) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.json:
            self.line(json.dumps({"live_check": True, "time": stamp, "timeout_s": timeout}))
        else:
            self.line(f"live check {stamp}: PullMessages returned empty after {timeout:g} s, "
                      f"server alive (RQ-21)")

    def lost(self, reason: str, reconnects: int) -> None:
        if self.json:
            self.line(json.dumps({"lost": reason, "reconnects": reconnects}))
        else:
            self.line(f"lost: {reason}; re-subscribing (re-subscription #{reconnects}, RQ-R13)")


# ---------------------------------------------------------------------- command


def _lat_lon(text: str) -> tuple[float, float]:
    try:
        lat_s, lon_s = text.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAT,LON, got {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"LAT,LON out of range: {text!r}")
    return lat, lon


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def add_query_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``query`` sub-command to the CLI's sub-parsers."""
    q: argparse.ArgumentParser = sub.add_parser(
        "query", help="run a resource query against an event service and print the resources",
        description="Subscribe to resource events (IEC 62676-2-33 clause 7) at URL, e.g. "
                    "http://127.0.0.1:8080/devices/<id>/onvif/events_service through a "
                    "cloud's --expose port, and print the matching resources as a table. "
                    "With --follow keep pulling and print Initialized/Changed/Deleted "
                    "notifications and a live-check line for every empty answer.",
        epilog="Exit codes: 0 ok, 1 failure, 2 usage.")
    q.add_argument("url", metavar="URL", help="event service URL (http:// or https://)")
    q.add_argument("--topic", action="append", default=[], metavar="KIND",
                   help="resource kind (MediaProfile, VideoSource, ...) or topic path; "
                        "repeatable (default: every resource)")
    q.add_argument("--near", type=_lat_lon, metavar="LAT,LON",
                   help="centre of the location filter (needs --radius)")
    q.add_argument("--radius", type=_positive, metavar="M", help="radius in metres")
    q.add_argument("--prefix", metavar="P", help="remote-token prefix filter (e.g. a device ID)")
    q.add_argument("--scope", action="append", default=[], metavar="URI",
                   help="scope filter (repeatable; all must match)")
    q.add_argument("--select", action="append", default=[], metavar="PATH",
                   help="select filter path such as /Name (repeatable)")
    q.add_argument("--follow", action="store_true",
                   help="keep pulling and print changes as they arrive (Ctrl-C ends)")
    q.add_argument("--for", dest="duration", type=_positive, metavar="S",
                   help="with --follow: stop after S seconds")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.add_argument("--timeout", type=_positive, default=10.0, metavar="S",
                   help="PullMessages Timeout with --follow, in seconds (default 10)")
    return q


def query_from_args(args: argparse.Namespace) -> Query:
    """The :class:`Query` the arguments describe (LocalProtocolError when inconsistent)."""
    return Query(near=args.near, radius=args.radius, prefix=args.prefix,
                 scopes=tuple(args.scope), select=tuple(args.select), topics=tuple(args.topic))


async def _follow(runner: QueryRunner, printer: _Printer, duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
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
            if step.kind == "lost":
                printer.lost(step.reason, runner.client.reconnects)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)  # no hot loop while it is down
            elif step.kind == "batch" and not step.notifications:
                printer.live_check(runner.client.timeout)
            for note in step.notifications:
                printer.notification(note, step.previous.get(note.token or ""))
    finally:
        stopper.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def _run(args: argparse.Namespace, query: Query, out: TextIO) -> None:
    printer = _Printer(out, args.json, args.near)
    runner = QueryRunner(args.url, query, timeout=args.timeout if args.follow else 0.0)
    try:
        await runner.snapshot()
        printer.table(runner.client.mirror.resources)
        if args.follow:
            await _follow(runner, printer, args.duration)
        await runner.unsubscribe()
    finally:
        await runner.close()


def run_query(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Run the ``query`` command; returns the exit code (0 ok, 1 failure)."""
    stdout, stderr = out or sys.stdout, err or sys.stderr
    try:
        query = query_from_args(args)
        asyncio.run(_run(args, query, stdout))
        return 0
    except SoapFault as fault:
        print(f"query: the service refused the subscription: {fault}", file=stderr)
    except UplinkError as exc:
        print(f"query: {exc}", file=stderr)
    except KeyboardInterrupt:
        return 0
    return 1

