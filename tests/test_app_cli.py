"""The command line: --help everywhere, exit codes, and cloud + device end to end
(UPL-2, UPL-33, UPL-38, UPL-41, UPL-R19)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _adapters_util import Pki, free_port, make_pki
from uplink62676 import ConfigurationError
from uplink62676.app.cli import (
    EXIT_CONFIG,
    EXIT_LISTEN,
    EXIT_USAGE,
    main,
    parse_tokens,
    read_tokens,
)

CMD = [sys.executable, "-m", "uplink62676"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("argv", [["--help"], ["cloud", "--help"], ["device", "--help"],
                                  ["demo", "--help"]])
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: uplink62676" in out
    if argv[0] == "cloud":
        assert "--expose" in out and "--plaintext" in out and "INSECURE" in out
        for option in ("--expose-domain", "--device-ports", "--state-dir", "--port-idle-release",
                       "--expose-cert", "--expose-client-ca", "--max-requests-per-client"):
            assert option in out
    if argv[0] == "device":
        assert "--forward" in out and "--user-level" in out and "--config" in out


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as none:
        main([])
    assert none.value.code == EXIT_USAGE
    for argv in (["cloud", "--listen", "nope", "--expose", "1.2.3.4:1"],
                 ["cloud", "--listen", "127.0.0.1:1", "--expose", "127.0.0.1:2"],  # no cert
                 ["device", "--forward", "http://127.0.0.1:1"]):               # no remote
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == EXIT_USAGE


def test_configuration_error_exit_code(tmp_path: Path) -> None:
    """Unreadable certificate files end with exit code 3 and a message naming the file."""
    r = subprocess.run([*CMD, "cloud", "--listen", "127.0.0.1:0", "--expose", "127.0.0.1:0",
                        "--cert", str(tmp_path / "none.pem"), "--key", str(tmp_path / "none.key"),
                        "--allow-anonymous-devices"],
                       capture_output=True, text=True, timeout=20, check=False)
    assert r.returncode == EXIT_CONFIG
    assert "none.pem" in r.stderr


def test_cannot_listen_exit_code(pki: Pki) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([*CMD, "cloud", "--listen", f"127.0.0.1:{port}", "--expose",
                            "127.0.0.1:0", "--cert", pki.cloud[0], "--key", pki.cloud[1],
                            "--client-ca", pki.ca],
                           capture_output=True, text=True, timeout=20, check=False)
    assert r.returncode == EXIT_LISTEN
    assert "cannot listen" in r.stderr


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# token device\nabc cam-1\n\n def  cam-2 \n")
    assert read_tokens(path) == {"abc": "cam-1", "def": "cam-2"}
    path.write_text("only-one-field\n")
    with pytest.raises(Exception, match="expected 'TOKEN DEVICE-ID'"):
        read_tokens(path)


@given(st.text())
def test_parse_tokens_total(text: str) -> None:
    """Every token file either parses into whitespace-free pairs or raises ConfigurationError."""
    try:
        tokens = parse_tokens(text)
    except ConfigurationError as exc:
        assert "expected 'TOKEN DEVICE-ID'" in str(exc)
        return
    for token, device in tokens.items():
        assert token and device and token.split() == [token] and device.split() == [device]


class _Echo(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        data = json.dumps({"path": self.path, "method": self.command, "len": len(body),
                           "level": self.headers.get("x-uplink-user-level"),
                           "auth": self.headers.get("authorization")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _wait_devices(expose: int, want: int, timeout: float = 15) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{expose}/devices", timeout=2) as r:
                listing = json.loads(r.read())
            if len(listing) == want:
                return listing  # type: ignore[no-any-return]
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"devices did not reach {want}")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def test_cloud_and_device_end_to_end_mtls(pki: Pki, local_server: int) -> None:
    """UPL-2, UPL-33, UPL-41, UPL-R19: CLI cloud (mTLS) + CLI device forwarding to a local HTTP/1.1
    server; curl through --expose reaches it with the UserLevel header and no Authorization."""
    listen, expose = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cloud = subprocess.Popen([*CMD, "cloud", "--expose-open", "--listen", f"127.0.0.1:{listen}", "--expose",
                              f"127.0.0.1:{expose}", "--cert", pki.cloud[0], "--key", pki.cloud[1],
                              "--client-ca", pki.ca], stderr=subprocess.PIPE, text=True, env=env)
    _wait_devices(expose, 0)
    device = subprocess.Popen([*CMD, "device", "--remote", f"https://localhost:{listen}/uplink",
                               "--cert", pki.devices["cam-2"][0], "--key", pki.devices["cam-2"][1],
                               "--ca", pki.ca, "--user-level", "Operator",
                               "--forward", f"http://127.0.0.1:{local_server}"],
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        listing = _wait_devices(expose, 1)
        assert listing[0]["id"] == "cam-2" and listing[0]["auth"] == "mTLS"
        for mode in ("--http1.1", "--http2-prior-knowledge"):
            r = subprocess.run(["curl", "-sS", mode, "-H", "authorization: Basic c2VjcmV0",
                                "--data-binary", "hello", f"http://127.0.0.1:{expose}/devices/cam-2/"
                                "onvif/device_service"], capture_output=True, timeout=20, check=False)
            info = json.loads(r.stdout)
            assert info == {"path": "/onvif/device_service", "method": "POST", "len": 5,
                            "level": "Operator", "auth": None}
    finally:
        rc_d, err_d = _stop(device)
        rc_c, err_c = _stop(cloud)
    assert rc_d == 0 and rc_c == 0
    assert "101 Switching Protocols" in err_d and "connected" in err_d
    assert "device cam-2 connected" in err_c


def test_cloud_tokens_end_to_end(pki: Pki, local_server: int, tmp_path: Path) -> None:
    """UPL-37, UPL-38, UPL-39, UPL-R7: token mode through the CLI; a wrong token is logged as a 401
    refusal with its reason (never the token itself) and retried on the schedule."""
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret-token cam-tok\n")
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret-token\n")
    bad.write_text("wrong-token\n")
    listen, expose = free_port(), free_port()
    cloud = subprocess.Popen([*CMD, "cloud", "--expose-open", "--listen", f"127.0.0.1:{listen}", "--expose",
                              f"127.0.0.1:{expose}", "--cert", pki.cloud[0], "--key", pki.cloud[1],
                              "--tokens", str(tokens)], stderr=subprocess.PIPE, text=True)
    _wait_devices(expose, 0)  # the cloud listens: the first attempts reach it
    devices = [subprocess.Popen([*CMD, "device", "--remote", f"https://localhost:{listen}/u",
                                 "--ca", pki.ca, "--token", str(t), "--id", name,
                                 "--forward", f"http://127.0.0.1:{local_server}"],
                                stderr=subprocess.PIPE, text=True)
               for t, name in ((good, "good"), (bad, "bad"))]
    try:
        listing = _wait_devices(expose, 1)
        assert listing[0]["id"] == "cam-tok" and listing[0]["auth"] == "AccessToken"
        time.sleep(0.5)
    finally:
        results = [_stop(d) for d in devices]
        rc_c, err_c = _stop(cloud)
    assert all(rc == 0 for rc, _ in results) and rc_c == 0
    bad_log = results[1][1]
    assert "upgrade refused: 401 invalid_token" in bad_log
    assert "wrong-token" not in bad_log and "s3cret-token" not in err_c
    assert "reconnecting in" in bad_log


def test_device_with_config_store(pki: Pki, local_server: int, tmp_path: Path) -> None:
    """UPL-41, UPL-R27, CFG-2, CFG-3: `device --config` takes its uplinks from the store and serves
    the configuration service through the uplink; GetUplinks via the cloud's front door shows it
    Connected; other paths still reach the local server."""
    from uplink62676.config import UplinkConfiguration
    from uplink62676.io.store import ConfigStore
    from uplink62676.services.uplink_client import UplinkServiceClient
    from uplink62676.status import Status

    listen, expose = free_port(), free_port()
    store = tmp_path / "uplinks.xml"
    remote = f"https://localhost:{listen}/uplink"
    ConfigStore(store).save([UplinkConfiguration(remote, "Administrator", certificate_id="dev")])
    cloud = subprocess.Popen([*CMD, "cloud", "--expose-open", "--listen", f"127.0.0.1:{listen}", "--expose",
                              f"127.0.0.1:{expose}", "--cert", pki.cloud[0], "--key", pki.cloud[1],
                              "--client-ca", pki.ca], stderr=subprocess.PIPE, text=True)
    _wait_devices(expose, 0)
    device = subprocess.Popen([*CMD, "device", "--config", str(store),
                               "--cert", pki.devices["cam-3"][0], "--key", pki.devices["cam-3"][1],
                               "--ca", pki.ca, "--forward", f"http://127.0.0.1:{local_server}"],
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_devices(expose, 1)
        request = UplinkServiceClient().get_uplinks()
        r = subprocess.run(["curl", "-sS", "-H", f"content-type: {request.content_type}",
                            "--data-binary", "@-", "-w", "\n%{http_code}",
                            f"http://127.0.0.1:{expose}/devices/cam-3/onvif/uplink_service"],
                           input=request.body, capture_output=True, timeout=20, check=False)
        body, _, code = r.stdout.rpartition(b"\n")
        [entry] = UplinkServiceClient().read_uplinks(body, int(code))
        assert entry.remote_address == remote and entry.status is Status.CONNECTED
        r = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{expose}/devices/cam-3/other"],
                           capture_output=True, timeout=20, check=False)
        assert json.loads(r.stdout)["level"] == "Administrator"
    finally:
        rc_d, err_d = _stop(device)
        rc_c, _ = _stop(cloud)
    assert rc_d == 0 and rc_c == 0, err_d


def test_cloud_device_ports_and_virtual_hosts_survive_a_restart(pki: Pki, local_server: int,
                                                                tmp_path: Path) -> None:
    """Issue 10 item 1 through the real CLI: `cloud --device-ports --state-dir --expose-domain`
    + `device --forward`; the device is reachable on its own port and by virtual host with the
    whole path (no prefix), GET /devices lists all three URLs, and after a broker restart the
    device gets the same port back from the state file."""
    listen, expose, low = free_port(), free_port(), free_port()
    state = tmp_path / "state"
    argv = [*CMD, "cloud", "--expose-open", "--listen", f"127.0.0.1:{listen}", "--expose", f"127.0.0.1:{expose}",
            "--cert", pki.cloud[0], "--key", pki.cloud[1], "--client-ca", pki.ca,
            "--device-ports", f"{low}-{low + 2}", "--state-dir", str(state),
            "--expose-domain", "cloud.test"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cloud = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    _wait_devices(expose, 0)
    device = subprocess.Popen([*CMD, "device", "--remote", f"https://localhost:{listen}/uplink",
                               "--cert", pki.devices["cam-2"][0], "--key", pki.devices["cam-2"][1],
                               "--ca", pki.ca, "--forward", f"http://127.0.0.1:{local_server}"],
                              stderr=subprocess.PIPE, text=True, env=env)

    def urls() -> list[str]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            [entry] = _wait_devices(expose, 1)
            if len(entry["urls"]) == 3:
                return entry["urls"]  # type: ignore[return-value]
            time.sleep(0.1)
        raise AssertionError("no port URL listed")

    def get(url: str, *extra: str) -> dict[str, object]:
        r = subprocess.run(["curl", "-sS", *extra, url], capture_output=True, timeout=20,
                           check=False)
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    try:
        first = urls()
        assert first == [f"http://127.0.0.1:{expose}/devices/cam-2/",
                         f"http://cam-2.cloud.test:{expose}/", f"http://127.0.0.1:{low}/"]
        assert get(f"http://127.0.0.1:{low}/onvif/device_service")["path"] == \
            "/onvif/device_service"
        assert get(f"http://cam-2.cloud.test:{expose}/onvif/device_service", "--resolve",
                   f"cam-2.cloud.test:{expose}:127.0.0.1")["path"] == "/onvif/device_service"
        rc_c, err_c = _stop(cloud)
        assert rc_c == 0 and f"device cam-2 on its own port http://127.0.0.1:{low}/" in err_c
        stored = json.loads((state / "device-ports.json").read_text())
        assert stored["leases"][0]["device"] == "cam-2" and stored["leases"][0]["port"] == low
        cloud = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
        assert urls() == first  # the device reconnected and has its port again
        assert get(f"http://127.0.0.1:{low}/again")["path"] == "/again"
    finally:
        rc_d, _ = _stop(device)
        rc_c, _ = _stop(cloud)
    assert rc_d == 0 and rc_c == 0


def test_cloud_tls_front_door_cli(pki: Pki, local_server: int) -> None:
    """`cloud --expose-cert/--expose-key`: curl --http2 over TLS reaches the device."""
    listen, expose = free_port(), free_port()
    cloud = subprocess.Popen([*CMD, "cloud", "--expose-open", "--listen", f"127.0.0.1:{listen}", "--expose",
                              f"127.0.0.1:{expose}", "--cert", pki.cloud[0], "--key", pki.cloud[1],
                              "--client-ca", pki.ca, "--expose-cert", pki.cloud[0],
                              "--expose-key", pki.cloud[1]], stderr=subprocess.PIPE, text=True)
    device = subprocess.Popen([*CMD, "device", "--remote", f"https://localhost:{listen}/uplink",
                               "--cert", pki.devices["cam-3"][0], "--key", pki.devices["cam-3"][1],
                               "--ca", pki.ca, "--forward", f"http://127.0.0.1:{local_server}"],
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        out = b""
        while time.monotonic() < deadline:
            r = subprocess.run(["curl", "-sS", "--http2", "--cacert", pki.ca, "-w",
                                "\n%{http_version}", f"https://localhost:{expose}/devices/cam-3/x"],
                               capture_output=True, timeout=20, check=False)
            out = r.stdout
            if out.endswith(b"\n2") and b'"path": "/x"' in out:
                break
            time.sleep(0.2)
        assert out.endswith(b"\n2") and b'"path": "/x"' in out, out
    finally:
        rc_d, _ = _stop(device)
        rc_c, err_c = _stop(cloud)
    assert rc_d == 0 and rc_c == 0
    assert "https://127.0.0.1" in err_c and "h2 over TLS" in err_c
