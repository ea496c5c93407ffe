"""``cloud --users FILE`` / ``--expose-open`` through the real CLI (issue 10 item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from _adapters_util import free_port

SRC = str(Path(__file__).parent.parent / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
CMD = [sys.executable, "-m", "uplink62676", "cloud", "--plaintext", "--listen", "127.0.0.1:0",
       "--expose"]


def _cloud(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, "127.0.0.1:0", *args], capture_output=True, text=True,
                          timeout=20, env=ENV, check=False)


def test_users_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    """Exit code 3 and one clear line naming the mode; the password is not printed."""
    users = tmp_path / "users"
    users.write_text("alice Secret-pw-1 *\n")
    users.chmod(0o644)
    r = _cloud("--users", str(users))
    assert r.returncode == 3
    lines = [line for line in r.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 1 and "group or others" in lines[0] and "0644" in lines[0]
    assert "Secret-pw-1" not in r.stderr


def test_users_file_bad_line_names_the_line(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# comment\nalice Secret-pw-1 *\nbob only-two\n")
    users.chmod(0o600)
    r = _cloud("--users", str(users))
    assert r.returncode == 3 and "line 3" in r.stderr and "only-two" not in r.stderr


def test_missing_users_file_is_a_configuration_error(tmp_path: Path) -> None:
    r = _cloud("--users", str(tmp_path / "nope"))
    assert r.returncode == 3 and "cannot read users file" in r.stderr


def test_users_and_expose_open_exclude_each_other(tmp_path: Path) -> None:
    r = _cloud("--users", str(tmp_path / "u"), "--expose-open")
    assert r.returncode == 2


def _serve(*args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen([*CMD, f"127.0.0.1:{port}", *args], stderr=subprocess.PIPE,
                            text=True, env=ENV)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://127.0.0.1:{port}/devices"], capture_output=True, text=True,
                           timeout=10, check=False)
        if r.stdout not in ("", "000"):
            return proc, int(r.stdout)
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("cloud did not start")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    return err


def test_without_users_every_request_is_401() -> None:
    proc, status = _serve()
    err = _stop(proc)
    assert status == 401 and "every request is refused with 401" in err


def test_expose_open_warns_loudly() -> None:
    proc, status = _serve("--expose-open")
    err = _stop(proc)
    assert status == 200
    assert any("WARNING" in line and "--expose-open" in line for line in err.splitlines())
