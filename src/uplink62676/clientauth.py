"""Client authentication at the cloud's front door, as a camera does it (core-device.md 3-4).

:class:`ClientAuthenticator` takes one request (method, target, headers, the
SOAP body or its parsed envelope, the TLS flag, the client's address, ``now``)
and returns a decision value; the adapter only turns it into bytes:

* :class:`PreAuth` -- an operation of class ``PRE_AUTH`` (GetSystemDateAndTime,
  ...): pass it on without credentials, ignoring any that came with it
  (DEV-3, DEV-R1).  The operation is read from the body; a SOAP action naming
  another operation makes the request an ordinary one.
* :class:`Allowed` -- the credentials passed; ``can_see`` filters devices.
* :class:`Challenge` -- answer ``401`` with fresh Digest challenges (no
  credentials, DEV-16; wrong HTTP credentials; ``stale=true``, DEV-24).
* :class:`SoapNotAuthorized` -- answer ``400`` with ``env:Sender /
  ter:NotAuthorized`` (a failed UsernameToken, DEV-R10; a UsernameToken-only
  front door, DEV-17).

Precedence (DEV-18, DEV-R7): HTTP credentials are checked first; when a
``wsse:Security`` header is present too, it must pass as well and both users
must be allowed to see a device.  Basic and Bearer are refused without TLS
(DEV-15, DEV-19).  Failed attempts are rate-limited per client address (IPv6
by /64) with a token bucket driven by ``now``; a throttled address gets the
same refusal without its credentials being checked.  ``now`` is wall-clock
POSIX seconds: ``wsu:Created`` is compared against it.  Every decision's
``description`` is safe to log: no password, digest response or token.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs

from . import httpauth, wsse
from ._ratelimit import TokenBucket
from .errors import AuthenticationError, ConfigurationError, SoapFault
from .namespaces import TDS
from .soap import Envelope, fault_response, generic_fault, parse_envelope, soap_action
from .users import Users

__all__ = [
    "DEFAULT_PRE_AUTH",
    "Allowed",
    "Challenge",
    "ClientAuthSettings",
    "ClientAuthenticator",
    "Decision",
    "PreAuth",
    "SoapNotAuthorized",
    "without_credentials",
]

#: ``PRE_AUTH`` operations (core-device.md section 4, DEV-28) as Clark names;
#: ``{*}Name`` matches ``Name`` in any namespace (every service's
#: GetServiceCapabilities is ``PRE_AUTH``).
DEFAULT_PRE_AUTH: Final = frozenset({
    *(f"{{{TDS}}}{op}" for op in (
        "GetWsdlUrl", "GetServices", "GetServiceCapabilities", "GetCapabilities",
        "GetHostname", "GetSystemDateAndTime", "GetEndpointReference")),
    "{*}GetServiceCapabilities",
})


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ConfigurationError(f"ClientAuthSettings.{attribute.name} must be > 0: {value!r}")


@attrs.frozen(slots=True)
class ClientAuthSettings:
    """How the front door authenticates.

    ``http_digest``: offer and accept Digest (False: UsernameToken only, DEV-17).
    ``basic`` / ``bearer``: accept those schemes (over TLS only, always).
    ``failure_burst`` failed attempts per client address at once, refilled
    at ``failure_rate`` per second; at most ``max_clients`` addresses tracked.
    """

    digest: httpauth.DigestSettings = attrs.field(factory=httpauth.DigestSettings)
    username_token: wsse.UsernameTokenSettings = attrs.field(factory=wsse.UsernameTokenSettings)
    http_digest: bool = True
    basic: bool = True
    bearer: bool = True
    failure_burst: float = attrs.field(default=10.0, validator=_positive)
    failure_rate: float = attrs.field(default=0.2, validator=_positive)
    max_clients: int = attrs.field(default=10_000, validator=_positive)
    pre_auth_operations: frozenset[str] = attrs.field(default=DEFAULT_PRE_AUTH, converter=frozenset)


@attrs.frozen(slots=True)
class Allowed:
    """Authenticated: ``users`` (one, or two when HTTP and WS-Security both passed)."""

    users: tuple[str, ...]
    mechanisms: tuple[str, ...]
    description: str

    @property
    def user(self) -> str:
        """The first authenticated user (the HTTP one when both passed)."""
        return self.users[0]


@attrs.frozen(slots=True)
class PreAuth:
    """A ``PRE_AUTH`` operation (Clark name): served without credentials (DEV-3, DEV-R1)."""

    operation: str
    description: str


@attrs.frozen(slots=True)
class Challenge:
    """Answer ``status`` 401 with ``headers`` (``www-authenticate``, maybe ``retry-after``).

    ``stale``: the credentials were right but the nonce old (not a failure);
    ``throttled``: the address is over its failure limit, nothing was checked.
    """

    headers: tuple[tuple[str, str], ...]
    description: str
    throttled: bool = False
    stale: bool = False
    status: int = 401


@attrs.frozen(slots=True)
class SoapNotAuthorized:
    """Answer ``status`` 400 with the ``env:Sender / ter:NotAuthorized`` fault ``body``."""

    headers: tuple[tuple[str, str], ...]
    body: bytes = attrs.field(repr=False)
    description: str
    throttled: bool = False
    status: int = 400


Decision = Allowed | PreAuth | Challenge | SoapNotAuthorized


def without_credentials(
    headers: Iterable[tuple[str | bytes, str | bytes]],
) -> list[tuple[str | bytes, str | bytes]]:
    """``headers`` without ``Authorization`` and ``Proxy-Authorization`` (DEV-R18)."""
    drop = ("authorization", "proxy-authorization")
    return [(n, v) for n, v in headers if _text(n).lower() not in drop]


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes | bytearray) else value


def _safe(value: str | None, limit: int = 64) -> str:
    """A quoted, escaped, bounded form of a client-chosen string for the log."""
    if value is None:
        return "-"
    return ascii(value[:limit]) + ("..." if len(value) > limit else "")


def client_key(address: str) -> str:
    """The rate-limit key of a client address: the IPv4 address or the IPv6 /64."""
    host = address.strip()
    if host.startswith("[") and "]" in host:
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return address[:128]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@attrs.define(slots=True)
class _Client:
    """Failure state of one client address."""

    bucket: TokenBucket
    blocked_until: float
    last_failure: float


class ClientAuthenticator:
    """Decides, per request, whether a front-door client may go on (see the module doc).

    ``entropy(n)`` returns ``n`` unpredictable octets (``secrets.token_bytes``).
    ``users`` may be replaced at any time (the adapter re-read the file).
    """

    __slots__ = ("_clients", "_digest", "_fault", "_tokens", "settings", "users")

    def __init__(
        self,
        users: Users,
        entropy: Callable[[int], bytes],
        settings: ClientAuthSettings | None = None,
    ) -> None:
        self.settings = settings or ClientAuthSettings()
        self.users = users
        self._digest = httpauth.DigestVerifier(self.settings.digest, entropy)
        self._tokens = wsse.UsernameTokenVerifier(self.settings.username_token)
        self._clients: dict[str, _Client] = {}
        self._fault = fault_response(generic_fault("ter:NotAuthorized"))

    # ------------------------------------------------------------------ public

    def can_see(self, who: str | Allowed, device_id: str) -> bool:
        """May the user (or every user of an :class:`Allowed`) see ``device_id``?"""
        names = who.users if isinstance(who, Allowed) else (who,)
        return all(self.users.can_see(name, device_id) for name in names)

    def challenge(self, now: float, *, stale: bool = False) -> tuple[tuple[str, str], ...]:
        """Fresh ``www-authenticate`` headers (e.g. for a 401 the adapter makes itself)."""
        if self.settings.http_digest:
            return self._digest.challenge(now, stale=stale)
        return (("www-authenticate", f'Bearer realm="{self.settings.digest.realm}"'),)

    def authenticate(
        self,
        *,
        method: str,
        target: str,
        headers: Iterable[tuple[str | bytes, str | bytes]],
        now: float,
        client: str,
        tls: bool,
        body: bytes | None = None,
        envelope: Envelope | None = None,
    ) -> Decision:
        """Decide on one request.  ``body`` (SOAP bytes) or ``envelope`` (already parsed)
        gives the operation and the WS-Security header; neither for plain HTTP requests.
        """
        authorization: list[str] = []
        action: str | None = None
        for raw_name, raw_value in headers:
            name = _text(raw_name).lower()
            if name == "authorization":
                authorization.append(_text(raw_value))
            elif name == "content-type" and action is None:
                action = soap_action(_text(raw_value))
            elif name == "soapaction":
                action = _text(raw_value).strip().strip('"') or action
        if envelope is None and body:
            envelope = _try_envelope(body)
        if envelope is not None:
            operation = envelope.operation
            if self._is_pre_auth(operation, action):
                return PreAuth(operation, f"PRE_AUTH {operation} from {_safe(client)}")
        key = client_key(client)
        throttled = self._throttled(key, now)
        users: list[str] = []
        mechanisms: list[str] = []
        if authorization:
            if throttled:
                return self._http_refusal(now, f"throttled {_safe(client)}", throttled=True)
            result = self._check_http(
                authorization, method=method, target=target, tls=tls, now=now, client=client)
            if isinstance(result, Challenge):
                if not result.stale:
                    self._failed(key, now)
                return result
            users.append(result[0])
            mechanisms.append(result[1])
        if envelope is not None and wsse.has_security_header(envelope.headers):
            if throttled:
                return self._soap_refusal(f"throttled {_safe(client)}", throttled=True)
            user, reason = self._check_username_token(envelope, tls, now)
            if user is None:
                self._failed(key, now)
                return self._soap_refusal(f"UsernameToken refused from {_safe(client)}: {reason}")
            if user not in users:
                users.append(user)
            mechanisms.append("usernametoken")
        if not users:
            text = f"no credentials from {_safe(client)}"
            if not self.settings.http_digest and envelope is not None:
                return self._soap_refusal(text)
            return Challenge(self.challenge(now), text)
        who = ", ".join(_safe(u) for u in users)
        return Allowed(tuple(users), tuple(mechanisms),
                       f"{'+'.join(mechanisms)}: {who} from {_safe(client)}")

    def tracked_clients(self) -> int:
        """How many client addresses the failure limiter holds."""
        return len(self._clients)

    # ------------------------------------------------------------------ checks

    def _is_pre_auth(self, operation: str, action: str | None) -> bool:
        ops = self.settings.pre_auth_operations
        local = operation.rpartition("}")[2]
        if operation not in ops and "{*}" + local not in ops:
            return False
        return action is None or action.rstrip("/").rpartition("/")[2] == local

    def _check_http(
        self, values: list[str], *, method: str, target: str, tls: bool, now: float, client: str
    ) -> tuple[str, str] | Challenge:
        where = f"from {_safe(client)}"
        if len(values) > 1:
            return self._http_refusal(now, f"http: {len(values)} Authorization headers {where}")
        try:
            credentials = httpauth.parse_authorization(values[0])
        except AuthenticationError as exc:
            return self._http_refusal(now, f"http: unreadable Authorization {where}: {exc}")
        scheme = credentials.scheme
        s = self.settings
        if scheme == "digest" and s.http_digest:
            outcome = self._digest.verify(credentials, method=method, target=target,
                                          password_of=self.users.password_of, now=now)
            if outcome.ok and outcome.user is not None:
                return outcome.user, "digest"
            text = f"user {_safe(outcome.user)} {where}: {outcome.reason}"
            if outcome.stale:
                return Challenge(self._digest.challenge(now, stale=True), f"digest: stale {text}",
                                 stale=True)
            return self._http_refusal(now, f"digest: refused {text}")
        if scheme in ("basic", "bearer") and not tls:
            return self._http_refusal(now, f"{scheme}: refused without TLS {where}")
        if scheme == "basic" and s.basic:
            try:
                user, password = httpauth.decode_basic(credentials)
            except AuthenticationError as exc:
                return self._http_refusal(now, f"basic: {exc} {where}")
            if _password_matches(self.users.password_of(user), password):
                return user, "basic"
            return self._http_refusal(now, f"basic: refused user {_safe(user)} {where}")
        if scheme == "bearer" and s.bearer and credentials.token68 is not None:
            found = self.users.user_for_token(credentials.token68)
            if found is not None:
                return found.name, "bearer"
            return self._http_refusal(now, f"bearer: unknown token {where}")
        return self._http_refusal(now, f"http: scheme {_safe(scheme, 16)} not accepted {where}")

    def _check_username_token(
        self, envelope: Envelope, tls: bool, now: float
    ) -> tuple[str | None, str]:
        try:
            token = wsse.find_username_token(envelope.headers)
        except AuthenticationError as exc:
            return None, str(exc)
        if token is None:  # pragma: no cover - has_security_header said yes
            return None, "no UsernameToken"
        outcome = self._tokens.verify(token, password_of=self.users.password_of, now=now, tls=tls)
        if outcome.ok:
            return outcome.user, outcome.reason
        return None, f"user {_safe(outcome.user)}: {outcome.reason}"

    # ------------------------------------------------------------------ answers

    def _http_refusal(self, now: float, description: str, *, throttled: bool = False) -> Challenge:
        headers = self.challenge(now)
        if throttled:
            retry = max(1, round(1.0 / self.settings.failure_rate))
            headers = (*headers, ("retry-after", str(retry)))
        return Challenge(headers, description, throttled)

    def _soap_refusal(self, description: str, *, throttled: bool = False) -> SoapNotAuthorized:
        return SoapNotAuthorized(self._fault.headers, self._fault.body, description, throttled)

    # ------------------------------------------------------------------ rate limit

    def _throttled(self, key: str, now: float) -> bool:
        entry = self._clients.get(key)
        return entry is not None and now < entry.blocked_until

    def _failed(self, key: str, now: float) -> None:
        s = self.settings
        clients = self._clients
        entry = clients.pop(key, None)
        if entry is None:
            refill = s.failure_burst / s.failure_rate
            while clients:  # forget addresses whose bucket is full again, then the oldest
                oldest = next(iter(clients))
                if now - clients[oldest].last_failure > refill or len(clients) >= s.max_clients:
                    del clients[oldest]
                else:
                    break
            entry = _Client(TokenBucket(s.failure_burst, s.failure_rate, now), now, now)
        if not entry.bucket.take(now):
            entry.blocked_until = now + 1.0 / s.failure_rate
        entry.last_failure = now
        clients[key] = entry


_NOBODY: Final = "\x00uplink62676-no-such-user\x00"


def _password_matches(expected: str | None, given: str) -> bool:
    secret = _NOBODY if expected is None else expected
    return hmac.compare_digest(secret.encode("utf-8"), given.encode("utf-8")) and (
        expected is not None)


def _try_envelope(body: bytes) -> Envelope | None:
    """The parsed envelope of a SOAP body, or ``None`` (the device will fault on it)."""
    try:
        return parse_envelope(body)
    except SoapFault:
        return None
