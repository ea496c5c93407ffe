"""``uplink62676 demo``: every step of an uplink's life over loopback mTLS, exit 0, no set-up
(UPL-2, UPL-9, UPL-13, UPL-15, UPL-16, UPL-33, UPL-41, UPL-47, UPL-49, UPL-R24)."""

from __future__ import annotations

import io
import subprocess
import sys
import time

from uplink62676.demo import DEVICE_ID, run


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


def test_demo_command_exits_zero() -> None:
    r = subprocess.run([sys.executable, "-m", "uplink62676", "demo"], capture_output=True,
                       text=True, timeout=30, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "demo: done" in r.stdout
