"""Prometheus metrics and JSON logs for ``uplink62676 cloud`` and ``uplink62676 device``.

``--metrics HOST:PORT`` serves ``/metrics`` (the ``prometheus-client``
library: ``pip install 'uplink62676[metrics]'``).  The numbers come from the
adapters' observer hook (:mod:`uplink62676.io.observe`), so nothing here
touches a state machine.  ``--log-format json`` writes one JSON object per
log line with the fields ``ts``, ``level``, ``logger``, ``msg`` (plus
``exc`` and any extras); an extra whose name looks like a secret is redacted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
from collections.abc import Iterator
from typing import Any

from .. import events as ev
from ..errors import ConfigurationError
from ..frontdoor.events import RequestRefused, RequestRouted
from ..io.observe import (
    AttemptStarted,
    Observation,
    RequestDone,
    Transferred,
    UplinkStatusChanged,
)
from ..status import Status
from ..tunnel import ErrorCode
from .args import host_port

__all__ = ["INSTALL_HINT", "JsonFormatter", "Metrics", "add_operations_options",
           "start_metrics"]

log = logging.getLogger("uplink62676.metrics")

#: What to tell a user whose Python lacks the library.
INSTALL_HINT = ("--metrics needs the prometheus-client library: "
                "pip install 'uplink62676[metrics]' (or: pip install prometheus-client)")

#: Request latency buckets in seconds (a LAN round trip up to a long poll).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0)


def add_operations_options(parser: argparse.ArgumentParser) -> None:
    """``--metrics`` and ``--log-format`` on a ``cloud`` or ``device`` parser."""
    parser.add_argument("--metrics", type=host_port, metavar="HOST:PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics "
                             "(needs pip install 'uplink62676[metrics]')")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="log lines as text (default) or one JSON object per line")


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"0x{code:x}"


def _reason(error: str | None) -> str:
    """A short, bounded label from a device's Error text (never its details)."""
    if not error:
        return "none"
    return error.split(":", 1)[0].strip()[:40] or "none"


class Metrics:
    """The counters of one process; :meth:`observe` is the adapters' observer."""

    def __init__(self, role: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.role = role
        self.registry = CollectorRegistry()
        r, lab = self.registry, ["role"]
        self.connects = Counter("uplink62676_connects", "Uplinks that reached HTTP/2",
                                lab, registry=r)
        self.disconnects = Counter("uplink62676_disconnects",
                                   "Uplinks that ended, by who ended them and the code",
                                   [*lab, "reason"], registry=r)
        self.refusals = Counter("uplink62676_refusals", "Upgrades refused, by status",
                                [*lab, "reason"], registry=r)
        self.requests = Counter("uplink62676_requests",
                                "Tunneled requests by response status class",
                                [*lab, "status_class"], registry=r)
        self.latency = Histogram("uplink62676_request_seconds",
                                 "Tunneled request time to the response head",
                                 lab, buckets=_BUCKETS, registry=r)
        self.octets = Counter("uplink62676_uplink_bytes",
                              "Octets of uplinks (inside TLS) by direction",
                              [*lab, "direction"], registry=r)
        self.pings = Counter("uplink62676_pings", "PING ACKs received", lab, registry=r)
        self.dead = Counter("uplink62676_dead_links",
                            "Uplinks dropped after silence and unanswered PINGs", lab, registry=r)
        self.floods = Counter("uplink62676_flood_limit_trips",
                              "Uplinks ended with ENHANCE_YOUR_CALM by a flood limit",
                              lab, registry=r)
        self.attempts = Counter("uplink62676_reconnect_attempts",
                                "Connection attempts of a device's uplinks", lab, registry=r)
        self.frontdoor = Counter("uplink62676_frontdoor_requests",
                                 "Front-door requests by route", ["route"], registry=r)
        self.frontdoor_refused = Counter("uplink62676_frontdoor_refused",
                                         "Front-door requests refused before routing",
                                         registry=r)
        #: The HTTP server of ``/metrics`` (:func:`start_metrics`), if any.
        self.server: Any = None
        self._last: dict[str, Status] = {}
        self._sources: list[Any] = []
        self.registry.register(_StatusCollector(self))

    def close(self) -> None:
        """Stop serving the endpoint that :func:`start_metrics` opened."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def watch(self, source: Any) -> None:
        """Report the uplinks of a CloudServer or a DeviceAgent in ``uplink62676_uplinks``."""
        self._sources.append(source)

    def observe(self, item: Observation) -> None:
        """Count one observation (the adapters' ``observer`` hook)."""
        role = self.role
        if isinstance(item, Transferred):
            self.octets.labels(role, item.direction).inc(item.size)
        elif isinstance(item, RequestDone):
            klass = "failed" if item.status is None else f"{item.status // 100}xx"
            self.requests.labels(role, klass).inc()
            self.latency.labels(role).observe(item.seconds)
        elif isinstance(item, ev.Connected):
            self.connects.labels(role).inc()
        elif isinstance(item, ev.ConnectionTerminated):
            side = "peer" if item.by_peer else "local"
            self.disconnects.labels(role, f"{side} {_code_name(item.error_code)}").inc()
            if not item.by_peer and item.error_code == ErrorCode.ENHANCE_YOUR_CALM:
                self.floods.labels(role).inc()
        elif isinstance(item, ev.UpgradeRefused):
            reason = f"{item.status_code} {item.bearer_error}" if item.bearer_error else str(
                item.status_code)
            self.refusals.labels(role, reason).inc()
        elif isinstance(item, ev.PingAcknowledged):
            self.pings.labels(role).inc()
        elif isinstance(item, ev.LinkLost):
            self.dead.labels(role).inc()
        elif isinstance(item, AttemptStarted):
            self.attempts.labels(role).inc()
        elif isinstance(item, UplinkStatusChanged):
            self._device_status(item)
        elif isinstance(item, RequestRouted):
            self.frontdoor.labels(item.route.kind.value).inc()
        elif isinstance(item, RequestRefused):
            self.frontdoor_refused.inc()

    def _device_status(self, item: UplinkStatusChanged) -> None:
        before = self._last.get(item.remote_address, Status.OFFLINE)
        self._last[item.remote_address] = item.status
        if item.status is before:
            return
        if item.status is Status.CONNECTED:
            self.connects.labels(self.role).inc()
        elif before is Status.CONNECTED:
            self.disconnects.labels(self.role, _reason(item.error)).inc()
        elif item.status is Status.OFFLINE and (item.error or "").startswith("upgrade refused"):
            self.refusals.labels(self.role, item.error.split(":", 1)[1].strip()[:40]
                                 if item.error else "").inc()

    def uplinks(self) -> dict[str, int]:
        """Uplinks by Status, summed over the watched cloud servers and device agents."""
        counts = {s.value: 0 for s in Status}
        for source in self._sources:
            if hasattr(source, "connections"):  # a CloudServer
                connected = sum(len(source.uplinks(d.device_id)) for d in source.devices())
                counts[Status.CONNECTED.value] += connected
                counts[Status.CONNECTING.value] += max(source.connections - connected, 0)
            else:  # a DeviceAgent
                for spec in source.uplinks:
                    counts[source.status(spec.remote_address)[0].value] += 1
        return counts


class _StatusCollector:
    """``uplink62676_uplinks{role,status}``, read when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("uplink62676_uplinks", "Uplinks by status",
                                   labels=["role", "status"])
        for status, count in self.metrics.uplinks().items():
            family.add_metric([self.metrics.role, status], count)
        yield family


def start_metrics(address: tuple[str, int] | None, role: str, *sources: Any) -> Metrics | None:
    """Serve a new :class:`Metrics` of ``sources`` at ``http://HOST:PORT/metrics``.

    ``sources``: the CloudServer, ExposeServer or DeviceAgent to observe (their
    ``observer`` is set).  None without an address.  Raises
    :class:`~uplink62676.ConfigurationError` (with :data:`INSTALL_HINT`) without
    prometheus-client and :class:`OSError` when the address cannot be bound.
    """
    if address is None:
        return None
    try:
        from prometheus_client import start_http_server
    except ImportError:
        raise ConfigurationError(INSTALL_HINT) from None
    metrics = Metrics(role)
    server, _thread = start_http_server(address[1], addr=address[0], registry=metrics.registry)
    metrics.server = server
    for source in sources:
        source.observer = metrics.observe
        if hasattr(source, "uplinks"):
            metrics.watch(source)
    log.info("serving metrics on http://%s:%d/metrics", address[0], server.server_port)
    return metrics


_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_SECRET = ("token", "secret", "password", "passwd", "authorization", "key", "cookie")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        out: dict[str, Any] = {"ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                               "level": record.levelname, "logger": record.name,
                               "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        for name, value in record.__dict__.items():
            if name in _STANDARD or name.startswith("_") or name in out:
                continue
            secret = any(word in name.lower() for word in _SECRET)
            out[name] = "[redacted]" if secret else value
        return json.dumps(out, default=str, ensure_ascii=False)
