"""Access tokens by the OAuth 2.0 client-credentials grant (UPL-R16, UPL-37, UPL-38)."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
import trustme

from uplink62676.errors import ConfigurationError
from uplink62676.oauth import (
    AuthorizationServerSettings,
    ClientAuth,
    ClientCredentialsFlow,
    OAuthError,
)
from uplink62676.threaded.oauth import TokenSource
from uplink62676.uplink import DeviceUplink

SECRET = "s3cr3t pass/+"  # characters that need form-encoding before Basic


def _config(**kw: object) -> AuthorizationServerSettings:
    args: dict[str, object] = {"server_uri": "https://as.example.com/.well-known/openid-configuration",
                               "client_id": "cam 7", "client_secret": SECRET, "scope": "uplink"}
    args.update(kw)
    return AuthorizationServerSettings(**args)  # type: ignore[arg-type]


META = json.dumps({"issuer": "https://as.example.com",
                   "token_endpoint": "https://as.example.com/token"}).encode()


def _token(value: str = "tok-1", expires_in: object = 3600) -> bytes:
    return json.dumps({"access_token": value, "token_type": "Bearer",
                       "expires_in": expires_in}).encode()


def test_metadata_then_token_basic() -> None:
    """UPL-R16: metadata first (ServerUri is the RFC 8414 URL), then client_credentials with Basic."""
    flow = ClientCredentialsFlow(_config())
    req = flow.next_request(0.0)
    assert req is not None and (req.method, req.url) == ("GET", _config().server_uri)
    assert flow.receive(200, META, 0.0) is None
    req = flow.next_request(0.0)
    assert req is not None and (req.method, req.url) == ("POST", "https://as.example.com/token")
    form = parse_qs(req.body.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["uplink"]}
    auth = dict(req.headers)["Authorization"]
    assert base64.b64decode(auth.split()[1]).decode() == "cam+7:s3cr3t+pass%2F%2B"  # RFC 6749 2.3.1
    assert SECRET not in repr(req) and "Basic" not in repr(req)
    token = flow.receive(200, _token(), 10.0)
    assert token is not None and token.value == "tok-1" and token.expires_at == 10.0 + 3570
    assert "tok-1" not in repr(token)


def test_client_secret_post() -> None:
    """UPL-R16: client_secret_post puts the credentials in the form, not in a header."""
    flow = ClientCredentialsFlow(_config(client_auth="client_secret_post", scope=None))
    flow.next_request(0.0)
    flow.receive(200, META, 0.0)
    req = flow.next_request(0.0)
    assert req is not None
    assert "Authorization" not in dict(req.headers)
    assert parse_qs(req.body.decode()) == {"grant_type": ["client_credentials"],
                                           "client_id": ["cam 7"], "client_secret": [SECRET]}


def test_cached_until_shortly_before_expiry_and_invalidated() -> None:
    """UPL-R16, UPL-R7: the token is reused until expires_in minus a margin; a 401 invalid_token drops it."""
    flow = ClientCredentialsFlow(_config(), refresh_margin=30)
    flow.next_request(0.0)
    flow.receive(200, META, 0.0)
    flow.next_request(0.0)
    flow.receive(200, _token(expires_in=600), 100.0)
    assert flow.token(100.0) == "tok-1" and flow.next_request(669.0) is None
    assert flow.token(670.0) is None
    req = flow.next_request(670.0)
    assert req is not None and req.method == "POST"  # metadata is not fetched again
    flow.receive(200, _token("tok-2", None), 671.0)
    assert flow.token(10**9) == "tok-2"
    flow.invalidate()
    assert flow.token(672.0) is None


@pytest.mark.parametrize(
    ("step", "status", "body", "message"),
    [
        ("metadata", 404, b"", "HTTP 404"),
        ("metadata", 200, b"<html/>", "not JSON"),
        ("metadata", 200, json.dumps({"token_endpoint": "http://as/token"}).encode(), "https token_endpoint"),
        ("token", 400, json.dumps({"error": "invalid_client"}).encode(), "invalid_client"),
        ("token", 500, b"oops", "HTTP 500"),
        ("token", 200, json.dumps({"access_token": "a", "token_type": "mac"}).encode(), "Bearer"),
        ("token", 200, json.dumps({"token_type": "Bearer"}).encode(), "access_token"),
        ("token", 200, _token(expires_in=-5), "expires_in"),
    ],
)
def test_bad_answers_are_our_errors(step: str, status: int, body: bytes, message: str) -> None:
    """UPL-R16: every unusable answer is an OAuthError with a reason and never the secret."""
    flow = ClientCredentialsFlow(_config())
    flow.next_request(0.0)
    if step == "token":
        flow.receive(200, META, 0.0)
        flow.next_request(0.0)
    with pytest.raises(OAuthError, match=message) as info:
        flow.receive(status, body, 0.0)
    assert SECRET not in str(info.value)
    if message == "invalid_client":
        assert info.value.error == "invalid_client"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"type": "OAuthAuthorizationCode"}, "interactive user"),
        ({"client_auth": "private_key_jwt"}, "not supported"),
        ({"client_auth": "magic"}, "unknown ClientAuth"),
        ({"server_uri": "http://as.example.com/meta"}, "https"),
        ({"client_id": ""}, "ClientID"),
    ],
)
def test_unusable_configurations(kw: dict[str, object], message: str) -> None:
    """UPL-R16: only OAuthClientCredentials with a supported ClientAuth over https can serve an uplink."""
    with pytest.raises(ConfigurationError, match=message):
        _config(**kw)
    assert ClientAuth("client_secret_basic") is ClientAuth.CLIENT_SECRET_BASIC


# --- against a real authorization server over loopback TLS -----------------------------------


@pytest.fixture
def auth_server(tmp_path: object) -> Iterator[tuple[str, ssl.SSLContext, list[str]]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            hits.append("GET " + self.path)
            port = self.server.server_address[1]
            meta = {"issuer": f"https://127.0.0.1:{port}",
                    "token_endpoint": f"https://127.0.0.1:{port}/token"}
            self._answer(200, json.dumps(meta).encode())

        def do_POST(self) -> None:
            hits.append("POST " + self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            basic = self.headers.get("Authorization", "")
            user = base64.b64decode(basic.removeprefix("Basic ")).decode() if basic else ""
            form = parse_qs(body.decode())
            if user != "cam+7:s3cr3t+pass%2F%2B" or form.get("grant_type") != ["client_credentials"]:
                self._answer(401, json.dumps({"error": "invalid_client"}).encode())
                return
            self._answer(200, _token(f"tok-{len(hits)}", 60))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/.well-known/openid-configuration", client_ctx, hits
    finally:
        server.shutdown()
        server.server_close()


def test_token_source_over_real_https(auth_server: tuple[str, ssl.SSLContext, list[str]]) -> None:
    """UPL-R16, UPL-38: the device fetches, caches and refreshes its token, and sends it on the upgrade."""
    uri, ctx, hits = auth_server
    now = [1000.0]
    source = TokenSource(_config(server_uri=uri), ssl_context=ctx, clock=lambda: now[0])
    token = source()
    assert hits == ["GET /.well-known/openid-configuration", "POST /token"]
    assert source() == token and len(hits) == 2  # cached
    now[0] += 45  # past expires_in (60) minus the margin
    assert source() != token and hits[-1] == "POST /token" and len(hits) == 3
    device = DeviceUplink("https://cloud.example.com/uplink", access_token=source())
    device.start(now[0])
    assert f"Authorization: Bearer {source()}".encode() in device.data_to_send()
    with pytest.raises(ConfigurationError, match="must be a str"):
        DeviceUplink("https://cloud.example.com/uplink", access_token=source).start(0.0)  # type: ignore[arg-type]


def test_token_source_refused_credentials(auth_server: tuple[str, ssl.SSLContext, list[str]]) -> None:
    """UPL-R16: refused credentials give an OAuthError naming the RFC 6749 error, not a traceback."""
    uri, ctx, _ = auth_server
    source = TokenSource(_config(server_uri=uri, client_secret="wrong"), ssl_context=ctx)
    with pytest.raises(OAuthError) as info:
        source()
    assert info.value.error == "invalid_client" and "wrong" not in str(info.value)


def test_token_source_untrusted_server(auth_server: tuple[str, ssl.SSLContext, list[str]]) -> None:
    """UPL-R16: the authorization server's certificate is verified."""
    uri, _, _ = auth_server
    with pytest.raises(OAuthError, match="unreachable"):
        TokenSource(_config(server_uri=uri), ssl_context=ssl.create_default_context())()
