"""``uplink62676 demo``: every step of an uplink's life over loopback mTLS, exit 0, no set-up
(UPL-2, UPL-9, UPL-13, UPL-15, UPL-16, UPL-33, UPL-41, UPL-47, UPL-49, UPL-R24), and the
live-video example of resource queries through the front door (RQ-22)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time

import pytest

from uplink62676.app.demo import DEVICE_ID, run


def test_demo_run_prints_each_step() -> None:
    out = io.StringIO()
    started = time.monotonic()
    assert run(out) == 0
    assert time.monotonic() - started < 15
    text = out.getvalue()
    for step in ("sending upgrade request (Upgrade: h2c-reverse)",
                 "101, sending HTTP/2 preface",
                 "101 Switching Protocols, roles swapped",
                 f"device {DEVICE_ID} connected from",
                 "(mTLS)",
                 'userLevel="Operator"',
                 "cloud PING -> device -> PING ACK",
                 "device PING -> cloud -> PING ACK",
                 "GOAWAY NO_ERROR",
                 f"cloud dropped {DEVICE_ID}",
                 "demo: done"):
        assert step in text, step
    assert text.count("via the front door -> 200") == 3


def test_demo_runs_the_live_video_example() -> None:
    """RQ-22(a), RQ-12, RQ-9, RQ-11 (resource-query.md §11.1): after the uplink is up the demo
    subscribes through the expose port to media profiles within 100 m of an incident in the
    simulated city, prints them, and one camera going offline arrives as Changed."""
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    assert "live video example" in text and "--topic MediaProfile" in text
    assert "--radius 100" in text
    table = [line for line in text.splitlines() if line.startswith("demo:   ")]
    assert table[0].split()[1:] == ["TOKEN", "NAME", "DIST_M", "LAT", "LON", "OFFLINE"]
    rows = [line.split()[1:] for line in table[1:] if ":prof_" in line and "Changed" not in line]
    assert rows and all(float(r[-4]) <= 100 for r in rows)
    assert f"{len(rows)} media profile(s) within 100 m (Initialized)" in text
    changed = [line for line in text.splitlines() if "Changed" in line]
    assert len(changed) == 2 and all(line.endswith("offline=True") for line in changed)
    assert {line.split()[2] for line in changed} <= {r[0] for r in rows}


def test_demo_command_exits_zero() -> None:
    r = subprocess.run([sys.executable, "-m", "uplink62676", "demo"], capture_output=True,
                       text=True, timeout=30, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "demo: done" in r.stdout


def test_demo_plays_the_simulated_camera_through_the_cloud() -> None:
    """Issue 12: GetStreamUri through the front door names the RTSP gateway, and ffmpeg
    (installed in CI) decodes frames of the synthetic camera with RTSP Digest."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed for this test: apt-get install -y ffmpeg")
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    uri = re.search(r"via the front door -> (rtsp://127\.0\.0\.1:\d+/devices/"
                    rf"{DEVICE_ID}/media/\S+/main)", text)
    assert uri is not None, text
    decoded = re.search(r"ffmpeg decoded (\d+) H\.264 frames", text)
    assert decoded is not None and int(decoded.group(1)) >= 20, text
    assert "(RTSP Digest)" in text


def test_demo_without_ffmpeg_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("uplink62676.app.demo.shutil.which", lambda name: None)
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    assert "ffmpeg is not installed" in text and "apt-get install ffmpeg" in text
    assert "ffmpeg decoded" not in text and "demo: done" in text


def test_demo_shows_an_onvif_client_with_a_password() -> None:
    """Issue 'stock ONVIF clients': the demo's ONVIF client is refused without a password (401
    with a Digest challenge) and gets GetDeviceInformation with one -- zeep with the ONVIF
    WSDL (installed with the test extras) and WS-UsernameToken."""
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    assert "GetDeviceInformation without a password" in text and "-> 401 (Digest" in text
    assert "stock client zeep" in text and "Manufacturer 'uplink62676'" in text


def test_demo_without_zeep_uses_http_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    """With only `pip install .` (no zeep), the same call goes through with HTTP Digest."""
    from uplink62676.app import demo

    monkeypatch.setattr(demo, "_onvif_wsdl", lambda: None)
    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    assert "HTTP Digest as 'operator' -> 200, Manufacturer 'uplink62676'" in text
