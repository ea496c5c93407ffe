"""Issue 10 end to end: stock ONVIF clients and curl through real ``cloud`` + ``device`` processes.

``python -m uplink62676 cloud --users FILE --device-ports --expose-domain dev.localhost``
(plain, and TLS with ``--expose-cert``) and ``device --simulate 3`` over an mTLS
uplink.  The clients, unpatched:

* **onvif-zeep-async** (Home Assistant's library) in its own virtual environment
  (its top-level ``onvif`` clashes with onvif-python's): made once by the
  ``zeep_async_python`` fixture under ``$XDG_CACHE_HOME/uplink62676-test-venvs``
  (``pip install onvif-zeep-async``) and reused; ``UPLINK62676_ZEEP_ASYNC_PYTHON``
  names a ready interpreter instead.  It authenticates SOAP with WS-UsernameToken
  only (its HTTP Digest is for snapshots).
* **onvif-python** (``ONVIFClient``, this environment) with WS-UsernameToken and
  with HTTP Digest only.
* **curl** and raw HTTP/2 frames for refusals, replays and floods.

``*.localhost`` is loopback (RFC 6761); where this system's resolver lacks it,
the client scripts map it at ``getaddrinfo`` (see ``tests/stockclients``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _adapters_util import free_port
from uplink62676.io.certs import CertificateAuthority

HERE = Path(__file__).parent
SRC = str(HERE.parent / "src")
SCRIPTS = HERE / "stockclients"
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "PYTHONUNBUFFERED": "1"}
CMD = [sys.executable, "-m", "uplink62676"]
DOMAIN = "dev.localhost"
ALICE = ("alice", "Alice-pw-1")
BOB = ("bob", "Bob-pw-22")
ALICE_TOKEN = "YWxpY2UtYmVhcmVyLXRva2VuLTAx"
SOAP = "application/soap+xml; charset=utf-8"
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope '
            'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">{header}<s:Body>{body}</s:Body>'
            '</s:Envelope>')


# --------------------------------------------------------------------------- the venv

def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "uplink62676-test-venvs"


def _has_zeep_async(python: Path) -> bool:
    r = subprocess.run([str(python), "-c", "from onvif import ONVIFCamera; import aiohttp"],
                       capture_output=True, timeout=120, check=False)
    return r.returncode == 0


@pytest.fixture(scope="session")
def zeep_async_python() -> str:
    """The python of a virtual environment with stock onvif-zeep-async (made when missing)."""
    given = os.environ.get("UPLINK62676_ZEEP_ASYNC_PYTHON")
    if given:
        return given
    home = _cache_root() / "onvif-zeep-async"
    python = home / "bin" / "python"
    if python.exists() and _has_zeep_async(python):
        return str(python)
    build = home.with_name(f"{home.name}.build-{os.getpid()}")
    shutil.rmtree(build, ignore_errors=True)
    build.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(build)], check=True, timeout=300)
    r = subprocess.run([str(build / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "onvif-zeep-async"],
                       capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        shutil.rmtree(build, ignore_errors=True)
        pytest.fail(f"cannot install onvif-zeep-async into a venv: {r.stderr[-2000:]}")
    shutil.rmtree(home, ignore_errors=True)
    build.rename(home)  # bin/python finds its site-packages beside pyvenv.cfg, wherever it is
    return str(python)


# --------------------------------------------------------------------------- the broker

class Broker:
    """A real ``cloud`` and ``device --simulate 3`` pair (stderr of the cloud in a file)."""

    def __init__(self, tmp: Path, *, tls: bool) -> None:
        self.tmp, self.tls = tmp, tls
        ca = CertificateAuthority("stock-clients test CA")
        self.ca = ca.write_ca(tmp / "ca.pem")
        cert, key = ca.issue_cloud("localhost", "127.0.0.1", f"*.{DOMAIN}").write(tmp, "cloud")
        dcert, dkey = ca.issue_device("cam-1").write(tmp, "cam-1")
        users = tmp / "users.txt"
        users.write_text(f"# test users\n{ALICE[0]} {ALICE[1]} cam-* token={ALICE_TOKEN}\n"
                         f"{BOB[0]} {BOB[1]} other-*\n")
        users.chmod(0o600)
        self.listen, self.port, self.low = free_port(), free_port(), free_port()
        self.log = tmp / "cloud.log"
        tls_args = ["--expose-cert", cert, "--expose-key", key] if tls else []
        with open(self.log, "w") as log:
            self.cloud = subprocess.Popen(
                [*CMD, "-vv", "cloud", "--listen", f"127.0.0.1:{self.listen}", "--expose",
                 f"127.0.0.1:{self.port}", "--cert", cert, "--key", key, "--client-ca", self.ca,
                 "--users", str(users), "--device-ports", f"{self.low}-{self.low}",
                 "--state-dir", str(tmp / "state"), "--expose-domain", DOMAIN, *tls_args],
                stderr=log, env=ENV)
        self.device = subprocess.Popen(
            [*CMD, "device", "--remote", f"https://localhost:{self.listen}/uplink", "--ca",
             self.ca, "--cert", dcert, "--key", dkey, "--simulate", "3", "--change-rate", "0"],
            stderr=subprocess.DEVNULL, env=ENV)
        deadline = time.monotonic() + 20
        while True:
            r = self.curl("--digest", "-u", ":".join(ALICE), f"{self.base}/devices")
            if r.returncode == 0 and b'"urls"' in r.stdout and \
                    json.loads(r.stdout)[0]["urls"][-1].endswith(f":{self.low}/"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"broker not ready: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://localhost:{self.port}"

    def curl(self, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        trust = ["--cacert", self.ca] if self.tls else []
        return subprocess.run(["curl", "-sS", *trust, *args], input=data, capture_output=True,
                              timeout=30, check=False)

    def mark(self) -> int:
        return self.log.stat().st_size

    def since(self, mark: int) -> str:
        with open(self.log) as f:
            f.seek(mark)
            return f.read()

    def close(self) -> None:
        for proc in (self.device, self.cloud):
            proc.terminate()
        for proc in (self.device, self.cloud):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("plain"), tls=False)
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("tls"), tls=True)
    yield broker
    broker.close()


def _address(broker: Broker, route: str) -> tuple[str, int]:
    """(host, port) a stock client is given: the device's own port, or its virtual host."""
    return ("localhost", broker.low) if route == "port" else (f"cam-1.{DOMAIN}", broker.port)


def _check_client_result(out: dict[str, object], broker: Broker, host: str, port: int) -> None:
    assert "error" not in out, out
    origin = f"{broker.scheme}://{host}:{port}"
    xaddrs = out["xaddrs"]
    assert isinstance(xaddrs, list) and xaddrs
    assert all(x.startswith(origin + "/onvif/") for x in xaddrs), xaddrs
    assert out["manufacturer"] == "uplink62676"
    assert len(out["profiles"]) == 6  # type: ignore[arg-type]
    # the media URI names the cloud's host as the client reached it (RTSP gateway: later)
    assert str(out["stream_uri"]).startswith(f"rtsp://{host}:"), out["stream_uri"]
    assert str(out["pullpoint"]).startswith(origin + "/onvif/events"), out["pullpoint"]
    topics = out["topics"]
    assert isinstance(topics, list) and any("Resource/" in t for t in topics), topics


# --------------------------------------------------------------------------- stock clients

@pytest.mark.parametrize("route", ["port", "host"])
@pytest.mark.parametrize("front", ["plain", "tls"])
def test_onvif_zeep_async(zeep_async_python: str, request: pytest.FixtureRequest, front: str,
                          route: str) -> None:
    """ONVIFCamera(host, port, user, password): update_xaddrs, GetDeviceInformation,
    GetProfiles, GetStreamUri and a pull-point manager receiving resource events, by the
    device's own port and by its virtual host, plain and TLS; WS-UsernameToken only."""
    broker: Broker = request.getfixturevalue(front)
    host, port = _address(broker, route)
    mark = broker.mark()
    r = subprocess.run([zeep_async_python, str(SCRIPTS / "zeep_async_client.py"),
                        f"https://{host}" if broker.tls else host, str(port), *ALICE],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    _check_client_result(json.loads(r.stdout.splitlines()[-1]), broker, host, port)
    log = broker.since(mark)
    assert "usernametoken: 'alice'" in log and "digest: 'alice'" not in log


@pytest.mark.parametrize(("front", "route", "mechanism"), [
    ("plain", "port", "usernametoken"), ("plain", "host", "digest"),
    ("tls", "host", "usernametoken"), ("tls", "port", "digest")])
def test_onvif_python(request: pytest.FixtureRequest, front: str, route: str,
                      mechanism: str) -> None:
    """ONVIFClient(host, port, user, password) the same way, once with HTTP Digest only
    (http_digest=True) and once with WS-UsernameToken only; over TLS it verifies the
    front door's certificate against the test CA."""
    broker: Broker = request.getfixturevalue(front)
    host, port = _address(broker, route)
    flags = (["digest"] if mechanism == "digest" else []) + (["https"] if broker.tls else [])
    mark = broker.mark()
    r = subprocess.run([sys.executable, str(SCRIPTS / "onvif_python_client.py"), host,
                        str(port), *ALICE, *flags], capture_output=True, text=True, timeout=120,
                       check=False, env={**ENV, "REQUESTS_CA_BUNDLE": broker.ca})
    assert r.returncode == 0, r.stderr[-3000:]
    _check_client_result(json.loads(r.stdout.splitlines()[-1]), broker, host, port)
    log = broker.since(mark)
    other = "digest" if mechanism == "usernametoken" else "usernametoken"
    assert f"{mechanism}: 'alice'" in log and f"{other}: 'alice'" not in log


# --------------------------------------------------------------------------- curl & co

def _soap(op: str, header: str = "") -> bytes:
    return ENVELOPE.format(header=header, body=f"<tds:{op}/>").encode()


def _status_and_body(r: subprocess.CompletedProcess[bytes]) -> tuple[int, bytes]:
    body, _, status = r.stdout.rpartition(b"\n")
    return int(status), body


def test_curl_digest_and_wrong_password(plain: Broker) -> None:
    """curl --digest reaches the device; a wrong password is 401 with Digest challenges
    (MD5 and SHA-256); no credentials is 401 too, PRE_AUTH GetSystemDateAndTime passes."""
    url = f"{plain.base}/devices/cam-1/onvif/device_service"
    w = ["-w", "\n%{http_code}", "-H", f"content-type: {SOAP}", "--data-binary", "@-"]
    status, body = _status_and_body(plain.curl("--digest", "-u", ":".join(ALICE), *w, url,
                                               data=_soap("GetDeviceInformation")))
    assert status == 200 and b"Simulated VSS" in body
    r = plain.curl("-i", "--digest", "-u", "alice:wrong", url, "--data-binary", "@-", "-H",
                   f"content-type: {SOAP}", data=_soap("GetDeviceInformation"))
    head = r.stdout.split(b"\r\n\r\n")[-2].lower()
    assert r.stdout.startswith(b"HTTP/1.1 401") and head.count(b"www-authenticate: digest") == 2
    assert b"algorithm=sha-256" in head
    status, _ = _status_and_body(plain.curl(*w, url, data=_soap("GetDeviceInformation")))
    assert status == 401
    status, body = _status_and_body(plain.curl(*w, url, data=_soap("GetSystemDateAndTime")))
    assert status == 200 and b"SystemDateAndTime" in body


def test_bearer_token_only_over_tls(plain: Broker, tls: Broker) -> None:
    """An API client's bearer token works over TLS and is refused without it (DEV-15/19)."""
    auth = ["-H", f"authorization: Bearer {ALICE_TOKEN}", "-w", "\n%{http_code}"]
    status, body = _status_and_body(tls.curl(*auth, f"{tls.base}/devices"))
    assert status == 200 and json.loads(body)[0]["id"] == "cam-1"
    assert _status_and_body(plain.curl(*auth, f"{plain.base}/devices"))[0] == 401


def test_other_users_device_is_a_missing_device(plain: Broker) -> None:
    """User B asking for user A's device gets exactly the 404 of a device that is not
    connected; its device list is empty."""
    w = ["-w", "\n%{http_code}", "-H", f"content-type: {SOAP}", "--data-binary", "@-",
         "--digest", "-u", ":".join(BOB)]
    theirs = plain.curl(*w, f"{plain.base}/devices/cam-1/onvif/device_service",
                        data=_soap("GetDeviceInformation"))
    missing = plain.curl(*w, f"{plain.base}/devices/cam-1/onvif/device_service".replace(
        "cam-1", "cam-9"), data=_soap("GetDeviceInformation"))
    (s1, b1), (s2, b2) = _status_and_body(theirs), _status_and_body(missing)
    assert s1 == s2 == 404 and b1 == b2.replace(b"cam-9", b"cam-1")
    assert json.loads(plain.curl("--digest", "-u", ":".join(BOB),
                                 f"{plain.base}/devices").stdout) == []


def _username_token(user: str, password: str, nonce: bytes) -> str:
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode())
                              .digest()).decode()
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    profile = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-"
               "profile-1.0")
    return (f'<s:Header><wsse:Security xmlns:wsse="{wsse}" xmlns:wsu="{wsu}"><wsse:UsernameToken>'
            f"<wsse:Username>{user}</wsse:Username><wsse:Password Type=\"{profile}"
            f'#PasswordDigest">{digest}</wsse:Password><wsse:Nonce EncodingType="'
            f'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0'
            f'#Base64Binary">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
            "</s:Header>")


def test_replayed_username_token_is_not_authorized(plain: Broker) -> None:
    """The same WS-UsernameToken (nonce) twice: the second is env:Sender / ter:NotAuthorized."""
    body = _soap("GetDeviceInformation", _username_token(*ALICE, os.urandom(16)))
    w = ["-w", "\n%{http_code}", "-H", f"content-type: {SOAP}", "--data-binary", "@-"]
    url = f"http://127.0.0.1:{plain.low}/onvif/device_service"
    status, answer = _status_and_body(plain.curl(*w, url, data=body))
    assert status == 200 and b"Simulated VSS" in answer
    status, answer = _status_and_body(plain.curl(*w, url, data=body))
    assert status == 400 and b"NotAuthorized" in answer and b"Sender" in answer


def test_path_route_answers_point_back_through_the_cloud(plain: Broker) -> None:
    """On /devices/<id>/ the XAddrs of GetServices carry the prefix (DEV-R16)."""
    r = plain.curl("--digest", "-u", ":".join(ALICE), "-H", f"content-type: {SOAP}",
                   "--data-binary", "@-", f"{plain.base}/devices/cam-1/onvif/device_service",
                   data=ENVELOPE.format(header="", body="<tds:GetServices><tds:IncludeCapability>"
                                        "false</tds:IncludeCapability></tds:GetServices>")
                   .encode())
    xaddrs = [part.split(b"<", 1)[0] for part in r.stdout.split(b"XAddr>")[1::2]]
    assert xaddrs and all(x.startswith(f"{plain.base}/devices/cam-1/onvif/".encode())
                          for x in xaddrs), r.stdout[:2000]


def _frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", sid) + payload


def _literal(name: bytes, value: bytes) -> bytes:
    """HPACK literal header field without indexing (new name), no Huffman (RFC 7541 6.2.2)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def test_h2_rapid_reset_flood_is_goaway_and_good_clients_unharmed(tls: Broker) -> None:
    """A client that opens and resets streams in a loop on a real TLS socket (ALPN h2) gets
    GOAWAY ENHANCE_YOUR_CALM; an authenticated curl --http2 works right after.  (curl 7.88
    cannot reuse an h2 connection for Digest's second request, so the good client uses its
    bearer token, one request.)"""
    block = (_literal(b":method", b"GET") + _literal(b":scheme", b"http")
             + _literal(b":path", b"/devices") + _literal(b":authority", b"localhost"))
    burst = bytearray(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0))
    for i in range(3000):
        sid = 2 * i + 1
        burst += _frame(1, 0x4 | 0x1, sid, block) + _frame(3, 0, sid, struct.pack(">I", 8))
    goaway = None
    ctx = ssl.create_default_context(cafile=tls.ca)
    ctx.set_alpn_protocols(["h2"])
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls.port), timeout=10),
                         server_hostname="localhost") as s:
        assert s.selected_alpn_protocol() == "h2"
        with contextlib.suppress(OSError):  # the front door may close before reading it all
            s.sendall(bytes(burst))
        data = b""
        deadline = time.monotonic() + 10
        while goaway is None and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            pos = 0
            while len(data) - pos >= 9:
                length = int.from_bytes(data[pos:pos + 3], "big")
                if len(data) - pos < 9 + length:
                    break
                if data[pos + 3] == 7:
                    goaway = struct.unpack(">II", data[pos + 9:pos + 17])
                pos += 9 + length
    assert goaway is not None and goaway[1] == 0xB  # ENHANCE_YOUR_CALM
    r = tls.curl("--http2", "-H", f"authorization: Bearer {ALICE_TOKEN}", f"{tls.base}/devices")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["id"] == "cam-1"
