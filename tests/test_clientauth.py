"""Tests of uplink62676.clientauth: the front door's authentication decision.

Spec: core-device.md section 3.1 (DEV-15 .. DEV-19, DEV-R7), DEV-3 / DEV-R1
(PRE_AUTH), DEV-24 (stale), DEV-R10 / DEV-R12 (the SOAP refusal), DEV-R18
(credentials are not forwarded).  Interop: curl --digest, urllib and requests
against a loopback HTTP server whose only logic is the authenticator.
"""

from __future__ import annotations

import base64
import http.server
import itertools
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from uplink62676.clientauth import (
    Allowed,
    Challenge,
    ClientAuthenticator,
    ClientAuthSettings,
    PreAuth,
    SoapNotAuthorized,
    client_key,
    without_credentials,
)
from uplink62676.httpauth import digest_response
from uplink62676.users import parse_users
from uplink62676.wsse import parse_created, password_digest

TOKEN = "Zm9vYmFyYmF6cXV4LXRva2VuLTE2"
USERS = parse_users(f"operator Uplink-62676 cam-*\nbob pw2 door-* token={TOKEN}\n")
NONCE = bytes.fromhex("8c1a2b3d4e5f60718293a4b5c6d7e8f9")
CREATED = "2026-03-01T08:15:30Z"
NOW = parse_created(CREATED) + 5
URI = "/onvif/device_service"
TDS = "http://www.onvif.org/ver10/device/wsdl"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST_TYPE = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile"
               "-1.0#PasswordDigest")


def entropy():
    counter = itertools.count(1)
    return lambda n: bytes((next(counter) * 7 + i) % 256 for i in range(n))


def make(**settings: object) -> ClientAuthenticator:
    return ClientAuthenticator(USERS, entropy(), ClientAuthSettings(**settings))  # type: ignore[arg-type]


def soap(operation: str, *, user: str | None = None, password: str = "Uplink-62676",
         nonce: bytes = NONCE, created: str = CREATED) -> bytes:
    header = ""
    if user is not None:
        digest = password_digest(nonce, created, password)
        header = (f'<e:Header><w:Security xmlns:w="{WSSE_NS}" xmlns:u="{WSU_NS}">'
                  f"<w:UsernameToken><w:Username>{user}</w:Username>"
                  f'<w:Password Type="{DIGEST_TYPE}">{digest}</w:Password>'
                  f"<w:Nonce>{base64.b64encode(nonce).decode()}</w:Nonce>"
                  f"<u:Created>{created}</u:Created></w:UsernameToken></w:Security></e:Header>")
    return (f'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope">{header}'
            f'<e:Body><t:{operation} xmlns:t="{TDS}"/></e:Body></e:Envelope>').encode()


def decide(auth: ClientAuthenticator, *, headers: list[tuple[str, str]] | None = None,
           body: bytes | None = None, tls: bool = False, client: str = "192.0.2.7",
           now: float = NOW, method: str = "POST", target: str = URI):
    return auth.authenticate(method=method, target=target, headers=headers or [], body=body,
                             tls=tls, client=client, now=now)


def digest_header(challenge: str, *, user: str = "operator", password: str = "Uplink-62676",
                  nc: str = "00000001", method: str = "POST", uri: str = URI) -> str:
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    response = digest_response(algorithm=p["algorithm"], username=user, realm=p["realm"],
                               password=password, method=method, uri=uri, nonce=p["nonce"],
                               nc=nc, cnonce="0a4f113b9c2d")
    return (f'Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
            f'algorithm={p["algorithm"]}, response="{response}", qop=auth, nc={nc}, '
            f'cnonce="0a4f113b9c2d", opaque="{p["opaque"]}"')


# --------------------------------------------------------------------------- decisions


def test_no_credentials_gets_a_digest_challenge() -> None:
    """DEV-16, DEV-22: 401 with one challenge per algorithm."""
    out = decide(make(), body=soap("GetDeviceInformation"))
    assert isinstance(out, Challenge) and out.status == 401 and not out.throttled
    assert [v.split(",")[0] for n, v in out.headers if n == "www-authenticate"] == [
        'Digest realm="uplink62676"'] * 2


def test_username_token_only_front_door() -> None:
    """DEV-17: without Digest, a SOAP request without credentials gets 400 NotAuthorized."""
    out = decide(make(http_digest=False), body=soap("GetDeviceInformation"))
    assert isinstance(out, SoapNotAuthorized) and out.status == 400
    assert b"ter:NotAuthorized" in out.body and b"env:Sender" in out.body
    assert ("content-type", "application/soap+xml; charset=utf-8") in out.headers


@pytest.mark.parametrize("operation", ["GetSystemDateAndTime", "GetCapabilities", "GetServices",
                                       "GetServiceCapabilities", "GetWsdlUrl", "GetHostname"])
def test_pre_auth_passes_and_ignores_bad_credentials(operation: str) -> None:
    """DEV-3, DEV-R1: PRE_AUTH operations pass without (and despite wrong) credentials."""
    auth = make()
    out = decide(auth, body=soap(operation))
    assert isinstance(out, PreAuth) and out.operation == f"{{{TDS}}}{operation}"
    wrong = decide(auth, body=soap(operation, user="operator", password="nope"),
                   headers=[("Authorization", "Digest garbage")])
    assert isinstance(wrong, PreAuth)
    assert auth.tracked_clients() == 0  # ignored, not counted as failures


def test_pre_auth_action_must_agree_with_the_body() -> None:
    """The operation is read from the body; a SOAP action naming another one refuses PRE_AUTH."""
    auth = make()
    good = [("Content-Type", f'application/soap+xml; action="{TDS}/GetSystemDateAndTime"')]
    assert isinstance(decide(auth, body=soap("GetSystemDateAndTime"), headers=good), PreAuth)
    lying = [("content-type", f'application/soap+xml; action="{TDS}/GetSystemDateAndTime"')]
    assert isinstance(decide(auth, body=soap("SystemReboot"), headers=lying), Challenge)
    mismatch = [("SOAPAction", f'"{TDS}/SystemReboot"')]
    assert isinstance(decide(auth, body=soap("GetSystemDateAndTime"), headers=mismatch),
                      Challenge)
    events = soap("GetServiceCapabilities").replace(TDS.encode(), b"urn:other-service")
    assert isinstance(decide(auth, body=events), PreAuth)


def test_digest_round_trip_wrong_password_and_stale() -> None:
    """DEV-23, DEV-24: right -> Allowed; wrong -> fresh challenge; expired nonce -> stale=true."""
    auth = make()
    first = decide(auth, body=soap("GetDeviceInformation"))
    assert isinstance(first, Challenge)
    challenge = first.headers[0][1]
    ok = decide(auth, headers=[("authorization", digest_header(challenge))])
    assert isinstance(ok, Allowed) and ok.user == "operator" and ok.mechanisms == ("digest",)
    assert auth.can_see(ok, "cam-1") and not auth.can_see(ok, "door-1")
    wrong = decide(auth, headers=[("authorization", digest_header(challenge, password="x"))])
    assert isinstance(wrong, Challenge) and "stale=false" in wrong.headers[0][1]
    assert "x" not in wrong.description.split("from")[0].replace("digest", "")
    replay = decide(auth, headers=[("authorization", digest_header(challenge))])
    assert isinstance(replay, Challenge) and "nc replayed" in replay.description
    stale = decide(auth, headers=[("authorization", digest_header(challenge, nc="00000009"))],
                   now=NOW + 301)
    assert isinstance(stale, Challenge) and stale.stale and "stale=true" in stale.headers[0][1]


def test_username_token_decisions() -> None:
    """DEV-R10: a failed UsernameToken -> 400 NotAuthorized; a replayed nonce too."""
    auth = make()
    ok = decide(auth, body=soap("GetDeviceInformation", user="operator"))
    assert isinstance(ok, Allowed) and ok.mechanisms == ("usernametoken",)
    replay = decide(auth, body=soap("GetDeviceInformation", user="operator"))
    assert isinstance(replay, SoapNotAuthorized) and "replayed" in replay.description
    late = decide(auth, body=soap("GetScopes", user="operator", nonce=bytes(16)), now=NOW + 400)
    assert isinstance(late, SoapNotAuthorized)
    wrong = decide(auth, body=soap("GetScopes", user="operator", password="x", nonce=bytes(16)))
    assert isinstance(wrong, SoapNotAuthorized) and b"NotAuthorized" in wrong.body


def test_both_levels_must_pass() -> None:
    """DEV-18, DEV-R7: HTTP first; then WS-Security; both users must see the device."""
    auth = make()
    challenge = auth.challenge(NOW)[0][1]
    basic = "Basic " + base64.b64encode(b"bob:pw2").decode()
    both = decide(auth, headers=[("authorization", digest_header(challenge))],
                  body=soap("GetScopes", user="operator"))
    assert isinstance(both, Allowed) and both.users == ("operator",)
    assert both.mechanisms == ("digest", "usernametoken")
    mixed = decide(auth, headers=[("authorization", basic)], tls=True,
                   body=soap("GetScopes", user="operator", nonce=bytes(range(16))))
    assert isinstance(mixed, Allowed) and mixed.users == ("bob", "operator")
    assert not auth.can_see(mixed, "cam-1") and not auth.can_see(mixed, "door-1")
    bad_http = decide(auth, headers=[("authorization", digest_header(challenge, password="x"))],
                      body=soap("GetScopes", user="operator", nonce=bytes(range(1, 17))))
    assert isinstance(bad_http, Challenge)
    bad_ws = decide(auth, headers=[("authorization", basic)], tls=True,
                    body=soap("GetScopes", user="operator", password="x"))
    assert isinstance(bad_ws, SoapNotAuthorized)


def test_basic_and_bearer_only_over_tls() -> None:
    """DEV-15, DEV-19: Basic and Bearer without TLS are refused, over TLS accepted."""
    auth = make()
    basic = [("Authorization", "Basic " + base64.b64encode(b"bob:pw2").decode())]
    refused = decide(auth, headers=basic, method="GET", target="/devices")
    assert isinstance(refused, Challenge) and "without TLS" in refused.description
    assert isinstance(decide(auth, headers=basic, tls=True), Allowed)
    wrong = [("Authorization", "Basic " + base64.b64encode(b"bob:nope").decode())]
    assert isinstance(decide(auth, headers=wrong, tls=True), Challenge)
    bearer = [("Authorization", f"Bearer {TOKEN}")]
    assert isinstance(decide(auth, headers=bearer), Challenge)
    ok = decide(auth, headers=bearer, tls=True)
    assert isinstance(ok, Allowed) and ok.user == "bob" and ok.mechanisms == ("bearer",)
    assert TOKEN not in ok.description and TOKEN not in repr(ok)
    assert isinstance(decide(auth, headers=[("Authorization", "Bearer nope")], tls=True),
                      Challenge)
    assert isinstance(decide(make(basic=False), headers=basic, tls=True), Challenge)


@pytest.mark.parametrize("value", ["Negotiate abc", "Digest a=\"", "", "Basic !!", "Bearer"])
def test_unreadable_or_unknown_schemes_are_failures(value: str) -> None:
    auth = make()
    out = decide(auth, headers=[("Authorization", value)], tls=True)
    assert isinstance(out, Challenge) and auth.tracked_clients() == 1


def test_two_authorization_headers_refused() -> None:
    auth = make()
    basic = "Basic " + base64.b64encode(b"bob:pw2").decode()
    out = decide(auth, headers=[("authorization", basic), ("authorization", basic)], tls=True)
    assert isinstance(out, Challenge)


def test_failures_are_rate_limited_per_address() -> None:
    """Failed attempts per client address: a burst, then refusals without checking."""
    auth = make(failure_burst=3, failure_rate=0.5)
    wrong = [("authorization", "Basic " + base64.b64encode(b"bob:x").decode())]
    right = [("authorization", "Basic " + base64.b64encode(b"bob:pw2").decode())]
    for _ in range(4):
        assert isinstance(decide(auth, headers=wrong, tls=True), Challenge)
    blocked = decide(auth, headers=right, tls=True, now=NOW + 0.1)
    assert isinstance(blocked, Challenge) and blocked.throttled
    assert ("retry-after", "2") in blocked.headers
    soap_blocked = decide(auth, body=soap("GetScopes", user="operator"), now=NOW + 0.1)
    assert isinstance(soap_blocked, SoapNotAuthorized) and soap_blocked.throttled
    # Other addresses are not affected; PRE_AUTH and credential-less requests still work.
    assert isinstance(decide(auth, headers=right, tls=True, client="192.0.2.8"), Allowed)
    assert isinstance(decide(auth, body=soap("GetSystemDateAndTime"), now=NOW + 0.1), PreAuth)
    assert not decide(auth, now=NOW + 0.1).throttled  # type: ignore[union-attr]
    assert isinstance(decide(auth, headers=right, tls=True, now=NOW + 3), Allowed)


def test_rate_limiter_memory_is_bounded() -> None:
    auth = make(max_clients=50)
    wrong = [("authorization", "Basic " + base64.b64encode(b"bob:x").decode())]
    for i in range(500):
        decide(auth, headers=wrong, tls=True, client=f"10.0.{i // 256}.{i % 256}")
    assert auth.tracked_clients() <= 50


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.7", "192.0.2.7"), ("192.0.2.7:5000", "192.0.2.7"),
    ("2001:db8::1", "2001:db8::/64"), ("[2001:db8::2]:443", "2001:db8::/64"),
    ("::ffff:192.0.2.9", "192.0.2.9"), ("unix-socket", "unix-socket"),
])
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


def test_descriptions_are_log_safe() -> None:
    """No password, digest response or token in a description; odd names are escaped."""
    auth = make()
    challenge = auth.challenge(NOW)[0][1]
    header = digest_header(challenge, password="hunter2")
    response = re.search(r'response="([^"]+)"', header).group(1)  # type: ignore[union-attr]
    out = decide(auth, headers=[("authorization", header)])
    assert response not in out.description and "hunter2" not in out.description
    evil = "Basic " + base64.b64encode(b"ev\nil\x1b:pw").decode()
    out = decide(auth, headers=[("authorization", evil)], tls=True)
    assert "\n" not in out.description and "\x1b" not in out.description


def test_without_credentials() -> None:
    """DEV-R18: Authorization headers are not forwarded."""
    headers = [("Host", "x"), (b"authorization", b"Digest a=b"), ("Proxy-Authorization", "y")]
    assert without_credentials(headers) == [("Host", "x")]


def test_users_can_be_replaced() -> None:
    auth = make()
    auth.users = parse_users("carol pw3 *\n")
    basic = [("authorization", "Basic " + base64.b64encode(b"carol:pw3").decode())]
    assert isinstance(decide(auth, headers=basic, tls=True), Allowed)
    assert auth.can_see("carol", "anything") and not auth.can_see("operator", "cam-1")


# --------------------------------------------------------------------------- interop


@pytest.fixture
def server() -> Iterator[str]:
    """A loopback HTTP server whose only logic is ClientAuthenticator."""
    auth = ClientAuthenticator(USERS, __import__("secrets").token_bytes)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with lock:
                decision = auth.authenticate(
                    method=self.command, target=self.path, headers=list(self.headers.items()),
                    body=body, tls=False, client=self.client_address[0], now=time.time())
            if isinstance(decision, Allowed):
                payload = f"hello {decision.user}\n".encode()
                self.send_response(200)
            elif isinstance(decision, Challenge):
                payload = b"Unauthorized\n"
                self.send_response(decision.status)
                for name, value in decision.headers:
                    self.send_header(name, value)
            else:
                payload = b"other\n"
                self.send_response(400)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _handle  # noqa: N815

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_digest(server: str) -> None:
    """curl --digest authenticates (twice on one nonce: nc 1, 2); a wrong password gets 401."""
    url = f"{server}/onvif/device_service"
    out = subprocess.run(
        ["curl", "-sS", "--digest", "-u", "operator:Uplink-62676", url, url,
         "-w", "%{http_code}\n"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.count("hello operator") == 2 and out.stdout.count("200") == 2
    out = subprocess.run(
        ["curl", "-sS", "--digest", "-u", "operator:wrong", url, "-o", "/dev/null",
         "-w", "%{http_code}"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout == "401"


def test_urllib_digest(server: str) -> None:
    """urllib's HTTPDigestAuthHandler (MD5, the first challenge) authenticates."""
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, server, "operator", "Uplink-62676")
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(manager))
    with opener.open(f"{server}/onvif/device_service", timeout=10) as response:
        assert response.status == 200 and response.read() == b"hello operator\n"


def test_requests_digest(server: str) -> None:
    """requests' HTTPDigestAuth (it reads both challenges and takes SHA-256) authenticates."""
    requests = pytest.importorskip("requests")
    from requests.auth import HTTPDigestAuth

    session = requests.Session()
    session.auth = HTTPDigestAuth("operator", "Uplink-62676")
    for _ in range(2):
        response = session.post(f"{server}/onvif/device_service?x=1", data=b"<a/>", timeout=10)
        assert response.status_code == 200 and response.text == "hello operator\n"
    wrong = requests.get(f"{server}/devices", auth=HTTPDigestAuth("operator", "nope"), timeout=10)
    assert wrong.status_code == 401
