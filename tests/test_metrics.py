"""``--metrics`` and ``--log-format json``: a real cloud and device, scraped with urllib."""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from uplink62676 import events as ev
from uplink62676.app.cli import main
from uplink62676.app.metrics import JsonFormatter, Metrics
from uplink62676.io.observe import RequestDone, UplinkStatusChanged
from uplink62676.status import Status

pytest.importorskip("prometheus_client")

DEVICE = "32010001071321008015"
ROOT = pathlib.Path(__file__).resolve().parent.parent
GET_SERVICES = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
                b'<GetServices xmlns="http://www.onvif.org/ver10/device/wsdl"><IncludeCapability>'
                b'false</IncludeCapability></GetServices></s:Body></s:Envelope>')


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z0-9_]+)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.status == 200
        return str(answer.read().decode())


def _wait(predicate, what: str, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_counters_move_with_a_real_cloud_and_device(tmp_path: pathlib.Path) -> None:
    """Connects, requests by class, latency, bytes, PINGs, attempts, uplinks by status."""
    pki = tmp_path / "pki"
    assert main(["certs", str(pki), "--cloud", "localhost", "--device", DEVICE]) == 0
    listen, expose, cloud_metrics, device_metrics = _port(), _port(), _port(), _port()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    help_text = subprocess.run([sys.executable, "-m", "uplink62676", "cloud", "--help"],
                               capture_output=True, text=True, env=env, check=True).stdout
    cloud_log, device_log = tmp_path / "cloud.log", tmp_path / "device.log"
    cloud = subprocess.Popen(
        [sys.executable, "-m", "uplink62676", "cloud", "--listen", f"127.0.0.1:{listen}",
         "--expose", f"127.0.0.1:{expose}", "--cert", str(pki / "cloud.pem"),
         "--key", str(pki / "cloud.key"), "--client-ca", str(pki / "ca.pem"),
         "--idle-timeout", "2", "--metrics", f"127.0.0.1:{cloud_metrics}",
         "--log-format", "json", *(["--expose-open"] if "--expose-open" in help_text else [])],
        env=env, stderr=cloud_log.open("w"))
    device = subprocess.Popen(
        [sys.executable, "-m", "uplink62676", "device", "--remote",
         f"https://localhost:{listen}/uplink", "--ca", str(pki / "ca.pem"),
         "--cert", str(pki / f"{DEVICE}.pem"), "--key", str(pki / f"{DEVICE}.key"),
         "--simulate", "3", "--change-rate", "0", "--metrics", f"127.0.0.1:{device_metrics}"],
        env=env, stderr=device_log.open("w"))
    try:
        _wait(lambda: _value(_scrape(cloud_metrics), "uplink62676_uplinks", status="Connected")
              == 1, "the device in the cloud's metrics")
        before = _scrape(cloud_metrics)
        request = urllib.request.Request(
            f"http://127.0.0.1:{expose}/devices/{DEVICE}/onvif/device_service", GET_SERVICES,
            {"content-type": "application/soap+xml"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        _wait(lambda: _value(_scrape(cloud_metrics), "uplink62676_pings_total") >= 1,
              "a PING ACK (idle timeout 2 s)")
        after = _scrape(cloud_metrics)
        assert _value(after, "uplink62676_connects_total", role="cloud") == 1
        assert (_value(after, "uplink62676_requests_total", status_class="2xx")
                == _value(before, "uplink62676_requests_total", status_class="2xx") + 1)
        assert _value(after, "uplink62676_request_seconds_count") >= 1
        for direction in ("in", "out"):
            assert (_value(after, "uplink62676_uplink_bytes_total", direction=direction)
                    > _value(before, "uplink62676_uplink_bytes_total", direction=direction))
        assert _value(after, "uplink62676_frontdoor_requests_total", route="device") >= 1
        assert _value(after, "uplink62676_flood_limit_trips_total") == 0
        dev = _scrape(device_metrics)
        assert _value(dev, "uplink62676_uplinks", role="device", status="Connected") == 1
        assert _value(dev, "uplink62676_connects_total", role="device") == 1
        assert _value(dev, "uplink62676_reconnect_attempts_total") >= 1
        assert _value(dev, "uplink62676_requests_total", role="device", status_class="2xx") >= 1
        assert _value(dev, "uplink62676_uplink_bytes_total", direction="in") > 0
    finally:
        for proc in (device, cloud):
            proc.terminate()
        for proc in (device, cloud):
            assert proc.wait(timeout=20) == 0
    lines = cloud_log.read_text().splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "msg"} <= set(record), record
    assert any("connected" in json.loads(line)["msg"] for line in lines)
    assert "BEGIN" not in cloud_log.read_text()  # no key material


def test_the_observer_counts_refusals_floods_and_device_disconnects() -> None:
    m = Metrics("cloud")
    m.observe(ev.UpgradeRefused(401, "bad token", (), bearer_error="invalid_token"))
    m.observe(ev.UpgradeRefused(404, "no such path", ()))
    m.observe(ev.ConnectionTerminated(0xB, None, False, "PING flood"))
    m.observe(RequestDone(None, 0.5))
    m.observe(RequestDone(503, 0.01))
    d = Metrics("device")
    for status, error in ((Status.CONNECTING, None), (Status.CONNECTED, None),
                          (Status.OFFLINE, "no traffic for 30 s"), (Status.CONNECTING, None),
                          (Status.OFFLINE, "upgrade refused: 401 invalid_token")):
        d.observe(UplinkStatusChanged("https://c/u", status, error))
    from prometheus_client import generate_latest

    text = generate_latest(m.registry).decode()
    assert _value(text, "uplink62676_refusals_total", reason="401 invalid_token") == 1
    assert _value(text, "uplink62676_refusals_total", reason="404") == 1
    assert _value(text, "uplink62676_flood_limit_trips_total") == 1
    assert _value(text, "uplink62676_disconnects_total", reason="local ENHANCE_YOUR_CALM") == 1
    assert _value(text, "uplink62676_requests_total", status_class="failed") == 1
    assert _value(text, "uplink62676_requests_total", status_class="5xx") == 1
    text = generate_latest(d.registry).decode()
    assert _value(text, "uplink62676_connects_total") == 1
    assert _value(text, "uplink62676_disconnects_total", reason="no traffic for 30 s") == 1
    assert _value(text, "uplink62676_refusals_total", reason="401 invalid_token") == 1


def test_json_log_lines_have_stable_fields_and_redact_secret_extras() -> None:
    import logging

    record = logging.makeLogRecord({"name": "uplink62676.cloud", "levelno": logging.INFO,
                                    "levelname": "INFO", "msg": "device %s connected",
                                    "args": (DEVICE,), "device": DEVICE,
                                    "access_token": "s3cr3t"})
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["msg"] == f"device {DEVICE} connected" and data["logger"] == "uplink62676.cloud"
    assert data["level"] == "INFO" and data["ts"].endswith("Z") and data["device"] == DEVICE
    assert data["access_token"] == "[redacted]" and "s3cr3t" not in line


def test_metrics_without_the_library_say_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    from uplink62676.app.metrics import start_metrics
    from uplink62676.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"pip install 'uplink62676\[metrics\]'"):
        start_metrics(("127.0.0.1", 0), "cloud")
