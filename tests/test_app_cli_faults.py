"""Field faults with real processes and sockets (the operator's view of `cloud` and `device`).

* a front-door client that leaves frees the device's stream at once;
* a hung device (SIGSTOP) is dropped after ``--idle-timeout`` and requests fail fast;
* two parallel uplinks of one device coexist (uplink.md 9.3) instead of replacing each
  other forever;
* SIGTERM with requests in flight: they finish within ``--grace``, clients get an answer,
  no traceback, exit 0.
(UPL-45..49, UPL-51, UPL-R24, UPL-R27.)
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from _adapters_util import Pki, free_port, make_pki

CMD = [sys.executable, "-m", "uplink62676"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Camera(http.server.BaseHTTPRequestHandler):
    """A local web server: /stream sends without end (counting), /slow answers after 2 s."""

    sent = 0
    gone = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(2.0)
            self._plain(b"slow answer\n")
            return
        if self.path != "/stream":
            self._plain(b"ok\n")
            return
        self.send_response(200)
        self.send_header("content-type", "application/octet-stream")
        self.end_headers()
        chunk = b"v" * 65536
        try:
            while True:
                self.wfile.write(chunk)
                Camera.sent += len(chunk)
        except OSError:
            Camera.gone.set()

    def _plain(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def camera() -> Iterator[int]:
    Camera.sent = 0
    Camera.gone = threading.Event()
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Camera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Broker:
    def __init__(self, pki: Pki, *extra: str) -> None:
        self.listen, self.expose = free_port(), free_port()
        self.proc = subprocess.Popen(
            [*CMD, "cloud", "--listen", f"127.0.0.1:{self.listen}", "--expose",
             f"127.0.0.1:{self.expose}", "--cert", pki.cloud[0], "--key", pki.cloud[1],
             "--client-ca", pki.ca, "--expose-open", *extra], stderr=subprocess.PIPE, text=True,
            env=ENV)
        self.wait(lambda devices: devices == [])

    def devices(self) -> list[dict[str, object]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.expose}/devices", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def wait(self, ok: object, timeout: float = 20.0) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = self.devices()
                if ok(last):  # type: ignore[operator]
                    return last  # type: ignore[return-value]
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"condition not reached; last listing {last!r}")

    def url(self, device: str, path: str) -> str:
        return f"http://127.0.0.1:{self.expose}/devices/{device}{path}"


def _device(pki: Pki, broker: Broker, camera: int, *remotes: str,
            name: str = "cam-2") -> subprocess.Popen[str]:
    remote_args = [a for r in (remotes or ("/uplink",))
                   for a in ("--remote", f"https://localhost:{broker.listen}{r}")]
    return subprocess.Popen([*CMD, "device", *remote_args, "--cert", pki.devices[name][0],
                             "--key", pki.devices[name][1], "--ca", pki.ca,
                             "--forward", f"http://127.0.0.1:{camera}"],
                            stderr=subprocess.PIPE, text=True, env=ENV)


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


@pytest.fixture
def broker(pki: Pki) -> Iterator[Broker]:
    b = Broker(pki, "--idle-timeout", "3")
    yield b
    _stop(b.proc)


def test_client_that_leaves_frees_the_device_stream(pki: Pki, broker: Broker,
                                                   camera: int) -> None:
    """A client reads 1 MB of an endless answer and disconnects: the cloud resets the device's
    stream at once, the agent closes the camera connection, nothing more is pulled."""
    device = _device(pki, broker, camera)
    try:
        broker.wait(lambda d: len(d) == 1)
        with socket.create_connection(("127.0.0.1", broker.expose)) as client:
            client.sendall(b"GET /devices/cam-2/stream HTTP/1.1\r\nhost: x\r\n\r\n")
            got = 0
            while got < 1_000_000:
                got += len(client.recv(65536))
        assert Camera.gone.wait(5.0), "the camera connection stayed open after the client left"
        settled = Camera.sent
        time.sleep(1.0)
        assert Camera.sent - settled <= 4 * 65536  # no more octets pulled for nobody
    finally:
        rc, err = _stop(device)
    assert rc == 0 and "Traceback" not in err


def test_hung_device_is_dropped_and_requests_fail_fast(pki: Pki, broker: Broker,
                                                       camera: int) -> None:
    """UPL-R24, UPL-45..49 from the cloud's side: a SIGSTOPped device answers no PING; after
    --idle-timeout (3 s) it is dropped, its request in flight fails at once, new ones get 404."""
    device = _device(pki, broker, camera)
    try:
        broker.wait(lambda d: len(d) == 1)
        device.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(broker.url("cam-2", "/"), timeout=30)
        waited = time.monotonic() - started
        assert info.value.code in (502, 503, 504) and waited < 8.0, (info.value.code, waited)
        broker.wait(lambda d: d == [], timeout=5)
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(broker.url("cam-2", "/"), timeout=30)
        assert missing.value.code == 404 and time.monotonic() - started < 1.0
    finally:
        device.send_signal(signal.SIGCONT)
        _stop(device)
    broker.proc.send_signal(signal.SIGTERM)
    _, err = broker.proc.communicate(timeout=20)
    assert "answered no PING: dropping its uplink" in err


def test_parallel_uplinks_of_one_device_coexist(pki: Pki, broker: Broker, camera: int) -> None:
    """uplink.md 9.3: two uplinks of one device (different paths) stay up side by side; the
    registry lists both and they do not kick each other off."""
    device = _device(pki, broker, camera, "/uplink/a", "/uplink/b")
    try:
        listing = broker.wait(lambda d: len(d) == 1 and len(d[0]["uplinks"]) == 2)
        paths = sorted(u["path"] for u in listing[0]["uplinks"])  # type: ignore[union-attr]
        assert paths == ["/uplink/a", "/uplink/b"]
        time.sleep(3.0)
        assert len(broker.devices()[0]["uplinks"]) == 2  # type: ignore[arg-type]
        with urllib.request.urlopen(broker.url("cam-2", "/x"), timeout=10) as r:
            assert r.read() == b"ok\n"
    finally:
        rc, _ = _stop(device)
    assert rc == 0
    broker.proc.send_signal(signal.SIGTERM)
    _, cloud_log = broker.proc.communicate(timeout=20)
    assert "closing its predecessor" not in cloud_log


def test_sigterm_lets_requests_in_flight_finish(pki: Pki, camera: int) -> None:
    """SIGTERM of the cloud with a request in flight: the answer still arrives (within
    --grace), a request after it is refused cleanly, the cloud exits 0 without a traceback."""
    b = Broker(pki, "--grace", "5")
    device = _device(pki, b, camera)
    try:
        b.wait(lambda d: len(d) == 1)
        result: dict[str, object] = {}

        def slow() -> None:
            try:
                with urllib.request.urlopen(b.url("cam-2", "/slow"), timeout=20) as r:
                    result["body"] = r.read()
            except Exception as exc:
                result["error"] = exc

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.5)
        b.proc.send_signal(signal.SIGTERM)
        thread.join(15)
        _, err = b.proc.communicate(timeout=20)  # it stops by itself: no second signal
        rc = b.proc.returncode
        assert result.get("body") == b"slow answer\n", result
        assert rc == 0 and "Traceback" not in err and "CancelledError" not in err, err
    finally:
        _stop(device)


def test_sigterm_answers_503_when_the_grace_runs_out(pki: Pki, camera: int) -> None:
    """A request still waiting for its device when --grace ends gets 503 with Retry-After,
    not an empty reply."""
    b = Broker(pki, "--grace", "0.5")
    device = _device(pki, b, camera)
    try:
        b.wait(lambda d: len(d) == 1)
        result: dict[str, object] = {}

        def slow() -> None:
            try:
                urllib.request.urlopen(b.url("cam-2", "/slow"), timeout=20)
            except urllib.error.HTTPError as exc:
                result["status"] = exc.code
                result["retry"] = exc.headers.get("retry-after")
            except Exception as exc:
                result["error"] = exc

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.5)
        b.proc.send_signal(signal.SIGTERM)
        thread.join(15)
        _, err = b.proc.communicate(timeout=20)
        assert result.get("status") == 503 and result.get("retry") == "5", result
        assert b.proc.returncode == 0 and "Traceback" not in err, err
    finally:
        _stop(device)
