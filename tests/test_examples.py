"""Every program in ``examples/`` runs with no arguments and exits 0 (the docs include them)."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _env(tmp_path: pathlib.Path) -> dict[str, str]:
    """This checkout's package first; ``uplink62676`` and ``python3`` run this interpreter."""
    shim = tmp_path / "bin"
    shim.mkdir()
    for name, argv in (("uplink62676", f'"{sys.executable}" -m uplink62676'),
                       ("python3", f'"{sys.executable}"')):
        (shim / name).write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        (shim / name).chmod(0o755)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(shim), env.get("PATH", "")])
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("name", "expected"), [
    ("firmware_device.py", "GetUplinks -> "),  # the configuration service reports Connected
    ("cloud_vms.py", "media profiles"),  # the resource query found some
])
def test_python_example_runs(name: str, expected: str, tmp_path: pathlib.Path) -> None:
    run = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=_env(tmp_path), check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert expected in run.stdout and "Traceback" not in run.stderr, run.stdout + run.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="the integrator script uses curl")
def test_integrator_script_runs(tmp_path: pathlib.Path) -> None:
    """certs -> cloud -> device -> query -> curl (and zeep when installed), as pasted."""
    env = _env(tmp_path)
    env.update(DIR=str(tmp_path / "work"), LISTEN=f"127.0.0.1:{_free_port()}",
               EXPOSE=f"127.0.0.1:{_free_port()}")
    (tmp_path / "work").mkdir()
    run = subprocess.run(["bash", str(EXAMPLES / "integrator.sh")], capture_output=True,
                         text=True, timeout=180, cwd=tmp_path, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "40 resource(s)" in run.stdout, run.stdout
    assert "XAddr " in run.stdout and "/onvif/events_service" in run.stdout
    assert (tmp_path / "work" / "pki" / "ca.key").stat().st_mode & 0o077 == 0


def test_examples_are_short() -> None:
    for path in EXAMPLES.iterdir():
        assert len(path.read_text().splitlines()) <= 90, path
