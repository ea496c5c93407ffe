"""Real parts for the video tests: a GStreamer camera, the CLI cloud and device, log watching."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _adapters_util import Pki, free_port

HERE = Path(__file__).resolve().parent
CMD = [sys.executable, "-m", "uplink62676"]
#: Debian's interpreter: GStreamer's ``gi`` bindings are not on PyPI.
SYSTEM_PYTHON = "/usr/bin/python3"
TOOLS = ("ffmpeg", "ffprobe", "gst-launch-1.0")
APT = ("ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
       "gstreamer1.0-plugins-ugly gstreamer1.0-rtsp python3-gi gir1.2-gst-rtsp-server-1.0")


def require_tools() -> None:
    """Fail (never skip) when a player or the camera cannot run: CI installs them."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        missing.append(SYSTEM_PYTHON)
    if missing:
        pytest.fail(f"video tests need {missing}: apt-get install -y {APT}")


class Proc:
    """A subprocess whose stderr lines are collected with the time they arrived."""

    def __init__(self, argv: list[str], *, stdout: bool = False) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE,
                                     stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                     text=True, env=env)
        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_line(self, text: str, timeout: float = 15.0, after: float = 0.0) -> float:
        """When a line containing ``text`` arrived (after ``after``); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if at >= after and text in line:
                    return at
            if self.proc.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no {text!r} in the log:\n" + self.log())

    def log(self) -> str:
        return "\n".join(line for _, line in self.lines[-40:])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_camera(kbps: int = 800, pattern: str = "ball",
                 mounts: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([SYSTEM_PYTHON, str(HERE / "_rtsp_camera.py"), "0", str(kbps),
                             pattern, ",".join(mounts)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        pytest.fail(f"the GStreamer camera did not start: {line!r}")
    return proc, int(line.split()[1])


class Stack:
    """Camera + CLI cloud (mTLS, --rtsp-listen) + CLI device (--rtsp) on loopback."""

    def __init__(self, pki: Pki, *, transport: str = "auto", kbps: int = 800,
                 pattern: str = "ball", extra: tuple[str, ...] = (),
                 device_extra: tuple[str, ...] = (), mounts: tuple[str, ...] = ()) -> None:
        self.pki = pki
        self.transport = transport
        self.device_extra = device_extra
        self.camera, self.camera_port = start_camera(kbps, pattern, mounts)
        self.listen, self.expose, self.rtsp = free_port(), free_port(), free_port()
        self.cloud = Proc([*CMD, "cloud", "--listen", f"127.0.0.1:{self.listen}",
                           "--expose", f"127.0.0.1:{self.expose}",
                           "--rtsp-listen", f"127.0.0.1:{self.rtsp}",
                           "--rtsp-transport", transport, "--cert", pki.cloud[0],
                           "--key", pki.cloud[1], "--client-ca", pki.ca,
                           *(() if "--users" in extra else ("--expose-open",)), *extra])
        self.cloud.wait_line("RTSP gateway on")
        self.device = self.start_device()

    def start_device(self) -> Proc:
        device = Proc([*CMD, "device", "--remote", f"https://localhost:{self.listen}/uplink",
                       "--cert", self.pki.devices["cam-1"][0],
                       "--key", self.pki.devices["cam-1"][1], "--ca", self.pki.ca,
                       "--rtsp", f"rtsp://127.0.0.1:{self.camera_port}", *self.device_extra])
        self.cloud.wait_line("device cam-1 connected", after=time.monotonic() - 0.1)
        return device

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.rtsp}/devices/cam-1/stream"

    @property
    def http_url(self) -> str:
        return f"rtsp://127.0.0.1:{self.expose}/devices/cam-1/stream"

    def close(self) -> None:
        self.device.stop()
        self.cloud.stop()
        if self.camera.poll() is None:
            self.camera.terminate()
            try:
                self.camera.wait(5)
            except subprocess.TimeoutExpired:
                self.camera.kill()


def stack(pki: Pki, **kw: object) -> Iterator[Stack]:
    require_tools()
    s = Stack(pki, **kw)  # type: ignore[arg-type]
    try:
        yield s
    finally:
        s.close()


def ffmpeg_frames(url: str, *, http: bool = False, frames: int = 100,
                  timeout: float = 40.0) -> int:
    """Decode ``frames`` video frames with ffmpeg; the number it decoded."""
    r = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-stats",
                        "-rtsp_transport", "http" if http else "tcp", "-i", url,
                        "-frames:v", str(frames), "-f", "null", "-"],
                       capture_output=True, text=True, timeout=timeout, check=False)
    found = [int(p.split()[0]) for p in r.stderr.replace("\r", "\n").split("frame=")[1:]
             if p.split() and p.split()[0].isdigit()]
    assert r.returncode == 0, r.stderr[-2000:]
    return max(found, default=0)


def ffmpeg_player(url: str) -> subprocess.Popen[str]:
    """A long-running ffmpeg player (for the fault tests)."""
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
                             "-rtsp_transport", "tcp", "-i", url, "-f", "null", "-"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
