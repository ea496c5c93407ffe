"""``uplink62676 query``: run a resource query against an event service and print the result.

The command's arguments, output and exit codes; the HTTP client and the
pull loop (asyncio, h11) live in :mod:`uplink62676.aio.query`.  URL is the
event service, usually through a cloud's front door
(``http://HOST:PORT/devices/<id>/onvif/events_service``).  Without
``--follow`` the command subscribes, pulls the initial ``Initialized`` set
with ``Timeout`` 0, unsubscribes and prints a table (token, name, distance
from ``--near``, lat, lon, offline); with ``--follow`` it keeps pulling with
``--timeout`` and prints every notification (Initialized/Changed/Deleted)
and a live-check line for each empty answer (RQ-21); an answer overdue by
``Timeout`` + 10 s, an unknown pull point or a lost path re-subscribes
(RQ-R13).  ``--json`` prints one JSON object per line instead.

Exit codes: 0 ok, 1 failure (message on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ..aio.query import QueryRunner, Step, follow, run_sync
from ..errors import SoapFault, UplinkError
from ..query.client import Query
from ..query.geodesy import geodesic_distance
from ..query.resources import Notification, Resource
from .args import http_url

__all__ = [
    "add_query_parser",
    "distance_m",
    "format_table",
    "query_command",
    "query_from_args",
    "resource_record",
    "run_query",
]


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
    def __init__(self, out: TextIO, as_json: bool, near: tuple[float, float] | None,
                 timeout: float, reconnects: Callable[[], int]) -> None:
        self.out, self.json, self.near = out, as_json, near
        self.timeout, self.reconnects = timeout, reconnects

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
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.json:
            self.line(json.dumps({"live_check": True, "time": stamp, "timeout_s": timeout}))
        else:
            self.line(f"live check {stamp}: PullMessages returned empty after {timeout:g} s, "
                      f"server alive (RQ-21)")

    def step(self, step: Step) -> None:
        """Print what a step of ``--follow`` brought."""
        if step.kind == "lost":
            self.lost(step.reason, self.reconnects())
        elif step.kind == "batch" and not step.notifications:
            self.live_check(self.timeout)
        for note in step.notifications:
            self.notification(note, step.previous.get(note.token or ""))

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
    q.add_argument("url", metavar="URL", type=http_url,
                   help="event service URL (http:// or https://)")
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


async def _run(args: argparse.Namespace, query: Query, out: TextIO) -> None:
    runner = QueryRunner(args.url, query, timeout=args.timeout if args.follow else 0.0)
    printer = _Printer(out, args.json, args.near, runner.client.timeout,
                       lambda: runner.client.reconnects)
    try:
        await runner.snapshot()
        printer.table(runner.client.mirror.resources)
        if args.follow:
            await follow(runner, printer.step, args.duration)
        await runner.unsubscribe()
    finally:
        await runner.close()


async def query_command(args: argparse.Namespace, out: TextIO | None = None,
                        err: TextIO | None = None) -> int:
    """The ``query`` command inside a running loop; returns the exit code (0 ok, 1 failure)."""
    stdout, stderr = out or sys.stdout, err or sys.stderr
    try:
        await _run(args, query_from_args(args), stdout)
        return 0
    except SoapFault as fault:
        print(f"query: the service refused the request: {fault}", file=stderr)
    except UplinkError as exc:
        print(f"query: {exc}", file=stderr)
    return 1


def run_query(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Run the ``query`` command (see :func:`query_command`)."""
    try:
        return run_sync(query_command(args, out, err))
    except KeyboardInterrupt:
        return 0
