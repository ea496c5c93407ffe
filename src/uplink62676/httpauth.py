"""HTTP authentication at a front door: Digest (RFC 7616 / RFC 2617), Basic, Bearer.

Server side only, sans-I/O (core-device.md section 3.2; DEV-15, DEV-19, DEV-21 ..
DEV-24, DEV-R8).  :func:`parse_authorization` reads an ``Authorization`` value
into :class:`Credentials` or raises :class:`~uplink62676.errors.AuthenticationError`
(never an ``IndexError`` or ``ValueError`` from inside).  :class:`DigestVerifier`
makes challenges and checks answers.

Server nonces are stateless: ``base64url(issue-ms || salt || HMAC-SHA256(secret,
issue-ms || salt)[:16])`` with a secret drawn once from the caller's ``entropy``,
so any nonce we issued is recognised, and its age read, without a table.  Only
replay protection keeps state: the highest ``nc`` seen per nonce, in a table of
bounded size.  When the table is full its oldest entry is dropped and every
nonce issued up to that one becomes *stale* (answered ``stale=true``), so a
forgotten nonce can never be replayed.  A right answer for an expired or
unknown nonce (a broker restart) also gets ``stale=true``: the client retries
with the fresh nonce without asking its user again (DEV-24).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import attrs

from .errors import AuthenticationError, ConfigurationError

__all__ = [
    "DIGEST_ALGORITHMS",
    "MAX_AUTHORIZATION_LENGTH",
    "Credentials",
    "DigestOutcome",
    "DigestSettings",
    "DigestVerifier",
    "decode_basic",
    "digest_challenge",
    "digest_ha1",
    "digest_response",
    "parse_authorization",
]

#: Longest ``Authorization`` value read, in characters (longer: refused unread).
MAX_AUTHORIZATION_LENGTH: Final = 8192
#: Most auth-params in one header (a Digest answer has about ten).
MAX_PARAMS: Final = 32

_HASHES: Final[Mapping[str, Callable[[bytes], str]]] = MappingProxyType({
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
})
#: Algorithms a :class:`DigestVerifier` can offer (RFC 7616 section 3.2).
DIGEST_ALGORITHMS: Final = frozenset({"MD5", "MD5-sess", "SHA-256", "SHA-256-sess"})
_CANONICAL: Final = {name.upper(): name for name in DIGEST_ALGORITHMS}

# --------------------------------------------------------------------------- parsing

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_QUOTED: Final = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_QUOTED_PAIR: Final = re.compile(r"\\(.)", re.DOTALL)
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_OWS: Final = re.compile(r"[ \t]*")
_LIST_GAP: Final = re.compile(r"[ \t,]*")


def _frozen(params: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(params))


@attrs.frozen(slots=True, repr=False)
class Credentials:
    """An ``Authorization`` value: the scheme (lower case) and either auth-params
    (names lower case, values unquoted) or a token68 (Basic, Bearer).

    The repr shows the scheme and parameter names only: values may be secrets.
    """

    scheme: str
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)
    token68: str | None = None

    def __repr__(self) -> str:
        shown = f"params={sorted(self.params)}" if self.token68 is None else "token68=<hidden>"
        return f"Credentials(scheme={self.scheme!r}, {shown})"


def parse_authorization(
    value: str | bytes, *, max_length: int = MAX_AUTHORIZATION_LENGTH
) -> Credentials:
    """Parse ``credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`` (RFC 7235).

    Quoted strings with escapes, commas inside quotes, empty list elements and
    any case of names are read; duplicate names, stray characters, control
    characters and values over ``max_length`` raise :class:`AuthenticationError`.
    Octets are read as ISO-8859-1, so each character is one octet of the wire.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, str):
        text = value
    else:
        raise AuthenticationError(f"Authorization must be str or bytes, not {type(value).__name__}")
    if len(text) > max_length:
        raise AuthenticationError(f"Authorization of {len(text)} characters exceeds {max_length}")
    if _CONTROL.search(text):
        raise AuthenticationError("Authorization contains a control character")
    text = text.strip(" \t")
    match = _TOKEN.match(text)
    if match is None:
        raise AuthenticationError("Authorization does not start with a scheme name")
    scheme = match.group().lower()
    pos = match.end()
    if pos == len(text):
        return Credentials(scheme)
    if text[pos] not in " \t":
        raise AuthenticationError("Authorization: scheme name not followed by a space")
    pos = _OWS.match(text, pos).end()  # type: ignore[union-attr]  # always matches
    if _TOKEN68.fullmatch(text, pos):
        return Credentials(scheme, {}, text[pos:])
    return Credentials(scheme, _parse_params(text, pos), None)


def _parse_params(text: str, pos: int) -> dict[str, str]:
    params: dict[str, str] = {}
    end = len(text)
    while True:
        pos = _LIST_GAP.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            break
        name = _TOKEN.match(text, pos)
        if name is None:
            raise AuthenticationError(f"Authorization: expected a parameter name at {pos}")
        pos = _OWS.match(text, name.end()).end()  # type: ignore[union-attr]
        if pos >= end or text[pos] != "=":
            raise AuthenticationError(f"Authorization: expected '=' at {pos}")
        pos = _OWS.match(text, pos + 1).end()  # type: ignore[union-attr]
        if pos < end and text[pos] == '"':
            quoted = _QUOTED.match(text, pos)
            if quoted is None:
                raise AuthenticationError(f"Authorization: unterminated quoted string at {pos}")
            value = _QUOTED_PAIR.sub(r"\1", quoted.group(1))
            pos = quoted.end()
        else:
            token = _TOKEN.match(text, pos)
            if token is None:
                raise AuthenticationError(f"Authorization: expected a value at {pos}")
            value = token.group()
            pos = token.end()
        key = name.group().lower()
        if key in params:
            raise AuthenticationError(f"Authorization: parameter {key!r} given twice")
        params[key] = value
        if len(params) > MAX_PARAMS:
            raise AuthenticationError(f"Authorization: more than {MAX_PARAMS} parameters")
        pos = _OWS.match(text, pos).end()  # type: ignore[union-attr]
        if pos < end and text[pos] != ",":
            raise AuthenticationError(f"Authorization: expected ',' at {pos}")
    if not params:
        raise AuthenticationError("Authorization: no parameters after the scheme")
    return params


def decode_basic(credentials: Credentials) -> tuple[str, str]:
    """``(user, password)`` of Basic credentials (RFC 7617; UTF-8, ISO-8859-1 as fallback)."""
    if credentials.scheme != "basic" or credentials.token68 is None:
        raise AuthenticationError("not Basic credentials with a token68")
    try:
        raw = base64.b64decode(credentials.token68, validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationError("Basic credentials are not valid Base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    user, sep, password = text.partition(":")
    if not sep or _CONTROL.search(text):
        raise AuthenticationError("Basic credentials lack the ':' or contain a control character")
    return user, password


# --------------------------------------------------------------------------- computing


def _canonical(algorithm: str) -> str:
    name = _CANONICAL.get(algorithm.upper())
    if name is None:
        raise AuthenticationError(f"unsupported digest algorithm {algorithm[:32]!r}")
    return name


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def digest_ha1(
    algorithm: str,
    username: str | bytes,
    realm: str,
    password: str,
    *,
    nonce: str = "",
    cnonce: str = "",
) -> str:
    """``HA1`` as lower-case hex; ``-sess`` variants fold in ``nonce`` and ``cnonce``."""
    name = _canonical(algorithm)
    h = _HASHES[name.removesuffix("-sess")]
    ha1 = h(_as_bytes(username) + b":" + realm.encode("utf-8") + b":" + password.encode("utf-8"))
    if name.endswith("-sess"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode("latin-1"))
    return ha1


def digest_response(
    *,
    algorithm: str,
    username: str | bytes,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str = "auth",
) -> str:
    """``response = H(HA1:nonce:nc:cnonce:qop:HA2)`` with ``HA2 = H(method:uri)`` (qop=auth)."""
    name = _canonical(algorithm)
    h = _HASHES[name.removesuffix("-sess")]
    ha1 = digest_ha1(name, username, realm, password, nonce=nonce, cnonce=cnonce)
    ha2 = h(f"{method}:{uri}".encode("latin-1", "replace"))
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode("latin-1", "replace"))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def digest_challenge(
    *, realm: str, nonce: str, opaque: str, algorithms: tuple[str, ...], stale: bool = False
) -> tuple[str, ...]:
    """One ``WWW-Authenticate`` value per algorithm, in that order (DEV-22), same nonce in all."""
    return tuple(
        f"Digest realm={_quote(realm)}, qop=\"auth\", nonce={_quote(nonce)}, "
        f"opaque={_quote(opaque)}, algorithm={algorithm}, stale={'true' if stale else 'false'}"
        for algorithm in algorithms
    )


# --------------------------------------------------------------------------- verifying


def _check_algorithms(_: object, __: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ConfigurationError("DigestSettings.algorithms must name at least one algorithm")
    for name in value:
        if name not in DIGEST_ALGORITHMS:
            raise ConfigurationError(
                f"DigestSettings.algorithms: {name!r} is not one of {sorted(DIGEST_ALGORITHMS)}")
    if len(set(value)) != len(value):
        raise ConfigurationError(f"DigestSettings.algorithms repeats a name: {value!r}")


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ConfigurationError(f"DigestSettings.{attribute.name} must be > 0, got {value!r}")


def _check_realm(_: object, __: object, value: str) -> None:
    if not value or _CONTROL.search(value) or len(value) > 128:
        raise ConfigurationError(
            f"DigestSettings.realm {value!r} must be 1-128 printable characters")


@attrs.frozen(slots=True)
class DigestSettings:
    """How a :class:`DigestVerifier` challenges.

    ``algorithms`` in order of preference, one challenge each (DEV-22; MD5
    first: what every ONVIF client can do, DEV-21).  ``nonce_lifetime`` in
    seconds of ``now`` (DEV-R8: a few minutes); ``max_tracked_nonces`` bounds
    the replay table.
    """

    realm: str = attrs.field(default="uplink62676", validator=_check_realm)
    algorithms: tuple[str, ...] = attrs.field(
        default=("MD5", "SHA-256"), converter=tuple, validator=_check_algorithms)
    nonce_lifetime: float = attrs.field(default=300.0, validator=_positive)
    max_tracked_nonces: int = attrs.field(default=10_000, validator=_positive)


@attrs.frozen(slots=True)
class DigestOutcome:
    """What :meth:`DigestVerifier.verify` found.

    ``user`` is set when the answer was right; ``ok`` when it may also be
    accepted (right, fresh nonce, ``nc`` not replayed); ``stale`` when it was
    right for an expired or unknown nonce (answer ``stale=true``).  ``reason``
    is log-safe: it never holds the response, a password or a hash.
    """

    ok: bool
    user: str | None
    stale: bool
    reason: str


_NC: Final = re.compile(r"[0-9A-Fa-f]{8}")
_NONCE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_NOBODY: Final = "\x00uplink62676-no-such-user\x00"


def _fail(reason: str, user: str | None = None) -> DigestOutcome:
    return DigestOutcome(False, user, False, reason)


class DigestVerifier:
    """Issues Digest challenges and verifies ``Authorization: Digest`` answers.

    ``entropy(n)`` returns ``n`` unpredictable octets (``secrets.token_bytes`` in
    an adapter); it is called once for the server secret and once per nonce.
    """

    __slots__ = ("_entropy", "_floor_ms", "_opaque", "_secret", "_seen", "settings")

    def __init__(self, settings: DigestSettings, entropy: Callable[[int], bytes]) -> None:
        self.settings = settings
        self._entropy = entropy
        secret = entropy(32)
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise ConfigurationError("entropy(32) must return 32 octets")
        self._secret = secret
        self._opaque = hmac.new(secret, b"opaque", hashlib.sha256).hexdigest()[:16]
        self._seen: dict[str, tuple[int, int]] = {}  # nonce -> (issue ms, highest nc)
        self._floor_ms: int | None = None  # nonces issued at or before: stale

    @property
    def opaque(self) -> str:
        """The ``opaque`` value of every challenge (clients echo it)."""
        return self._opaque

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def new_nonce(self, now: float) -> str:
        """A fresh server nonce carrying its issue time ``now``."""
        salt = self._entropy(8)
        if not isinstance(salt, bytes) or len(salt) != 8:
            raise ConfigurationError("entropy(8) must return 8 octets")
        payload = int(now * 1000).to_bytes(8, "big", signed=True) + salt
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode("ascii").rstrip("=")

    def _issue_ms(self, nonce: str) -> int | None:
        """The issue time of a nonce we made, or ``None`` for any other string."""
        if not _NONCE.fullmatch(nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce + "=")
        payload, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        return int.from_bytes(payload[:8], "big", signed=True)

    def challenge(self, now: float, *, stale: bool = False) -> tuple[tuple[str, str], ...]:
        """``www-authenticate`` headers with a fresh nonce, one per algorithm (DEV-22)."""
        values = digest_challenge(
            realm=self.settings.realm, nonce=self.new_nonce(now), opaque=self._opaque,
            algorithms=self.settings.algorithms, stale=stale)
        return tuple(("www-authenticate", value) for value in values)

    def verify(
        self,
        credentials: Credentials,
        *,
        method: str,
        target: str,
        password_of: Callable[[str], str | None],
        now: float,
    ) -> DigestOutcome:
        """Check a Digest answer to a request ``method target`` (DEV-23, DEV-24, DEV-R8).

        ``password_of(user)`` gives a user's password or ``None``.  Order: shape,
        realm, algorithm, qop, opaque, uri = request target, the response itself
        (compared in constant time), then the nonce's age and ``nc`` (strictly
        increasing per nonce; a repeat is refused with ``stale=false``).
        """
        if credentials.scheme != "digest":
            return _fail("not Digest credentials")
        p = credentials.params
        try:
            raw_user = _digest_username(p)
        except AuthenticationError as exc:
            return _fail(str(exc))
        try:
            user = raw_user.decode("utf-8")
        except UnicodeDecodeError:
            return _fail("username is not UTF-8")
        for key in ("realm", "nonce", "uri", "response", "qop", "nc", "cnonce"):
            if key not in p:
                return _fail(f"parameter {key!r} missing", user)
        if p["realm"] != self.settings.realm:
            return _fail("realm does not match", user)
        try:
            algorithm = _canonical(p.get("algorithm", "MD5"))
        except AuthenticationError as exc:
            return _fail(str(exc), user)
        if algorithm not in self.settings.algorithms:
            return _fail(f"algorithm {algorithm} not offered", user)
        if p["qop"].lower() != "auth":
            return _fail("qop is not 'auth'", user)
        if "opaque" in p and not hmac.compare_digest(p["opaque"].encode("latin-1"),
                                                     self._opaque.encode("ascii")):
            return _fail("opaque does not match", user)
        if p.get("userhash", "false").lower() != "false":
            return _fail("userhash is not offered", user)
        nc_text, nonce, cnonce = p["nc"], p["nonce"], p["cnonce"]
        if not _NC.fullmatch(nc_text):
            return _fail("nc is not 8 hex digits", user)
        if not cnonce or len(cnonce) > 256 or len(nonce) > 256:
            return _fail("cnonce empty, or cnonce or nonce over 256 characters", user)
        if not _uri_matches(p["uri"], target):
            return _fail("uri does not match the request target", user)
        password = password_of(user)
        expected = digest_response(
            algorithm=algorithm, username=raw_user, realm=self.settings.realm,
            password=_NOBODY if password is None else password, method=method,
            uri=p["uri"], nonce=nonce, nc=nc_text, cnonce=cnonce, qop="auth")
        given = p["response"].lower()
        if not hmac.compare_digest(expected.encode("ascii"), given.encode("latin-1")):
            return _fail("unknown user" if password is None else "wrong response", user)
        if password is None:  # pragma: no cover - a dummy password cannot match
            return _fail("unknown user", user)
        return self._check_nonce(user, nonce, int(nc_text, 16), now)

    def _check_nonce(self, user: str, nonce: str, nc: int, now: float) -> DigestOutcome:
        issued = self._issue_ms(nonce)
        now_ms = int(now * 1000)
        if issued is None:
            return DigestOutcome(False, user, True, "nonce not issued here (answer right)")
        age_ms = now_ms - issued
        if age_ms > self.settings.nonce_lifetime * 1000 or age_ms < -1000:
            self._seen.pop(nonce, None)
            return DigestOutcome(False, user, True, "nonce expired (answer right)")
        seen = self._seen.get(nonce)
        if seen is None:
            if self._floor_ms is not None and issued <= self._floor_ms:
                return DigestOutcome(False, user, True, "nonce forgotten (answer right)")
            self._remember(nonce, issued, nc, now_ms)
        elif nc <= seen[1]:
            return _fail("nc replayed (not above the highest seen)", user)
        else:
            self._seen[nonce] = (issued, nc)
        return DigestOutcome(True, user, False, "digest accepted")

    def _remember(self, nonce: str, issued: int, nc: int, now_ms: int) -> None:
        seen = self._seen
        lifetime_ms = self.settings.nonce_lifetime * 1000
        while seen:
            oldest = next(iter(seen))
            oldest_issued = seen[oldest][0]
            if now_ms - oldest_issued > lifetime_ms:
                del seen[oldest]
            elif len(seen) >= self.settings.max_tracked_nonces:
                del seen[oldest]
                if self._floor_ms is None or oldest_issued > self._floor_ms:
                    self._floor_ms = oldest_issued
            else:
                break
        seen[nonce] = (issued, nc)

    def tracked_nonces(self) -> int:
        """How many nonces the replay table holds (at most ``max_tracked_nonces``)."""
        return len(self._seen)


def _digest_username(params: Mapping[str, str]) -> bytes:
    """The username octets: ``username``, or RFC 7616 ``username*`` (RFC 5987 UTF-8)."""
    if "username" in params:
        if "username*" in params:
            raise AuthenticationError("both 'username' and 'username*' given")
        return params["username"].encode("latin-1")
    ext = params.get("username*")
    if ext is None:
        raise AuthenticationError("parameter 'username' missing")
    charset, sep, rest = ext.partition("'")
    _, sep2, encoded = rest.partition("'")
    if not (sep and sep2) or charset.lower() != "utf-8":
        raise AuthenticationError("username* is not UTF-8''<percent-encoded>")
    try:
        return unquote(encoded, encoding="utf-8", errors="strict").encode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationError("username* is not valid UTF-8") from None


def _uri_matches(uri: str, target: str) -> bool:
    """The ``uri`` directive names the request target (origin or absolute form)."""
    if uri == target:
        return True
    try:
        a, b = urlsplit(uri), urlsplit(target)
    except ValueError:
        return False
    if bool(a.scheme) == bool(b.scheme):
        return False
    absolute = a if a.scheme else b
    origin = target if a.scheme else uri
    path = (absolute.path or "/") + (f"?{absolute.query}" if absolute.query else "")
    return path == origin
