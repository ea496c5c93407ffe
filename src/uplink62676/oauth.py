"""OAuth 2.0 client-credentials tokens for access-token uplinks (UPL-R16), sans-I/O.

An uplink in access-token mode names an authorization-server configuration
(``AuthorizationServer``).  Its ``ServerUri`` is the RFC 8414 metadata URL,
not the token endpoint, so getting a token is two HTTP exchanges: fetch the
metadata, take ``token_endpoint`` from it, then ask that endpoint for a token
with the client-credentials grant (RFC 6749 section 4.4), authenticating as
``ClientAuth`` says.  :class:`ClientCredentialsFlow` decides which request is
next and reads the answers; an adapter moves the bytes (see
:class:`uplink62676.threaded.oauth.TokenSource`).  Tokens are cached until
shortly before ``expires_in`` and never appear in a repr or an error.
"""

from __future__ import annotations

import base64
import enum
import json
from urllib.parse import quote_plus, urlencode, urlsplit

import attrs

from .errors import ConfigurationError, OAuthError

__all__ = [
    "AccessToken",
    "AuthorizationServerSettings",
    "ClientAuth",
    "ClientCredentialsFlow",
    "HttpRequest",
    "OAuthError",
]


class ClientAuth(enum.Enum):
    """How the device authenticates at the token endpoint (``ClientAuth``)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
    CLIENT_SECRET_POST = "client_secret_post"  # noqa: S105


#: Methods of advancedsecurity.wsdl this implementation does not offer yet.
_UNSUPPORTED_AUTH = {"client_secret_jwt", "private_key_jwt", "tls_client_auth",
                     "self_signed_tls_client_auth"}


def _redacted(value: object) -> str:
    return "None" if value is None else "'<redacted>'"


def _client_auth(value: ClientAuth | str) -> ClientAuth:
    if isinstance(value, ClientAuth):
        return value
    if value in _UNSUPPORTED_AUTH:
        raise ConfigurationError(
            f"ClientAuth {value!r} is not supported; use client_secret_basic or client_secret_post"
        )
    try:
        return ClientAuth(value)
    except ValueError:
        raise ConfigurationError(f"unknown ClientAuth {value!r}") from None


@attrs.frozen(slots=True)
class AuthorizationServerSettings:
    """The parts of ``tas:AuthorizationServerConfigurationData`` a token needs.

    Only ``Type = OAuthClientCredentials`` can serve an uplink: the other
    types need an interactive user (UPL-R16).
    """

    server_uri: str
    client_id: str
    client_secret: str = attrs.field(repr=_redacted)
    scope: str | None = None
    client_auth: ClientAuth = attrs.field(default=ClientAuth.CLIENT_SECRET_BASIC,
                                          converter=_client_auth)
    type: str = "OAuthClientCredentials"

    def __attrs_post_init__(self) -> None:
        if self.type != "OAuthClientCredentials":
            raise ConfigurationError(
                f"authorization server type {self.type!r} needs an interactive user and cannot "
                "serve an uplink; use OAuthClientCredentials"
            )
        if urlsplit(self.server_uri).scheme.lower() != "https":
            raise ConfigurationError(f"ServerUri must be an https URL, got {self.server_uri!r}")
        if not self.client_id:
            raise ConfigurationError("ClientID is required for the client-credentials grant")


@attrs.frozen(slots=True)
class HttpRequest:
    """One request for the adapter to send."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = attrs.field(
        repr=lambda h: repr(tuple((k, "<redacted>" if k.lower() == "authorization" else v)
                                  for k, v in h)))
    body: bytes = attrs.field(default=b"", repr=lambda b: f"<{len(b)} octets>")


@attrs.frozen(slots=True)
class AccessToken:
    """A bearer token and the instant (in the caller's ``now``) it stops being used."""

    value: str = attrs.field(repr=_redacted)
    expires_at: float | None


def _json_object(body: bytes, what: str) -> dict[str, object]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise OAuthError(f"{what} is not a JSON object")
    return value


class ClientCredentialsFlow:
    """Sans-I/O client-credentials flow: :meth:`next_request`, send it, :meth:`receive`.

    ``refresh_margin`` seconds before ``expires_in`` runs out the token is
    treated as expired, so an upgrade never carries a token about to lapse.
    """

    def __init__(self, config: AuthorizationServerSettings, *,
                 refresh_margin: float = 30.0) -> None:
        self.config = config
        self.refresh_margin = refresh_margin
        self.token_endpoint: str | None = None
        self._token: AccessToken | None = None
        self._pending: str | None = None  # "metadata" or "token"

    def token(self, now: float) -> str | None:
        """The cached token if it is still good at ``now``."""
        tok = self._token
        if tok is None or (tok.expires_at is not None and now >= tok.expires_at):
            return None
        return tok.value

    def invalidate(self) -> None:
        """Forget the token (the cloud answered 401 ``invalid_token``, UPL-R7)."""
        self._token = None

    def next_request(self, now: float) -> HttpRequest | None:
        """The request to send now, or None while a good token is cached."""
        if self.token(now) is not None:
            return None
        if self.token_endpoint is None:
            self._pending = "metadata"
            return HttpRequest("GET", self.config.server_uri, (("Accept", "application/json"),))
        self._pending = "token"
        form = {"grant_type": "client_credentials"}
        if self.config.scope:
            form["scope"] = self.config.scope
        headers = [("Content-Type", "application/x-www-form-urlencoded"),
                   ("Accept", "application/json")]
        if self.config.client_auth is ClientAuth.CLIENT_SECRET_BASIC:
            # RFC 6749 section 2.3.1: form-urlencode both parts before Basic.
            user = quote_plus(self.config.client_id)
            pair = f"{user}:{quote_plus(self.config.client_secret)}"
            headers.append(("Authorization", "Basic " + base64.b64encode(pair.encode()).decode()))
        else:
            form["client_id"] = self.config.client_id
            form["client_secret"] = self.config.client_secret
        return HttpRequest("POST", self.token_endpoint, tuple(headers), urlencode(form).encode())

    def receive(self, status: int, body: bytes, now: float) -> AccessToken | None:
        """Read the answer to the last request; returns the token once there is one."""
        pending, self._pending = self._pending, None
        if pending == "metadata":
            self._metadata(status, body)
            return None
        if pending == "token":
            self._token = self._token_response(status, body, now)
            return self._token
        raise OAuthError("no request is waiting for an answer")

    def _metadata(self, status: int, body: bytes) -> None:
        if status != 200:
            raise OAuthError(f"authorization-server metadata: HTTP {status}")
        meta = _json_object(body, "authorization-server metadata")
        endpoint = meta.get("token_endpoint")
        if not isinstance(endpoint, str) or urlsplit(endpoint).scheme.lower() != "https":
            raise OAuthError(f"metadata has no https token_endpoint (got {endpoint!r})")
        self.token_endpoint = endpoint

    def _token_response(self, status: int, body: bytes, now: float) -> AccessToken:
        try:
            answer = _json_object(body, "token response")
        except OAuthError:
            if status != 200:
                raise OAuthError(f"token endpoint: HTTP {status}") from None
            raise
        if status != 200:
            error = answer.get("error")
            code = error if isinstance(error, str) else None
            raise OAuthError(f"token endpoint: HTTP {status}" + (f" {code}" if code else ""),
                             error=code)
        value = answer.get("access_token")
        kind = answer.get("token_type")
        if not isinstance(value, str) or not value or any(c in value for c in " \r\n\t\0"):
            raise OAuthError("token response without a usable access_token")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise OAuthError(f"token_type must be Bearer (RFC 6750), got {kind!r}")
        expires_in = answer.get("expires_in")
        if expires_in is None:
            return AccessToken(value, None)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise OAuthError(f"invalid expires_in {expires_in!r}")
        if expires_in <= 0:
            raise OAuthError(f"invalid expires_in {expires_in!r}")
        lifetime = max(float(expires_in) - self.refresh_margin, float(expires_in) / 2)
        return AccessToken(value, now + lifetime)


def __getattr__(name: str) -> object:
    """Old names of renamed classes still resolve, with a DeprecationWarning."""
    from ._moved import renamed

    return renamed(__name__, name)
