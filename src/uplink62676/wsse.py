"""WS-Security UsernameToken in the SOAP header, server side (core-device.md section 3.3).

``Password = Base64(SHA-1(nonce || created || password))`` with the *decoded*
nonce octets and the exact characters of ``wsu:Created`` (DEV-26).  A token
needs both a nonce and ``Created`` (DEV-25); ``Created`` must lie within a
clock-skew window of ``now`` and a (username, nonce) pair is accepted once
(DEV-27, DEV-R9: +-300 s, a 600 s cache, nonces of 8 octets or more, constant
time comparison, ``PasswordText`` only over TLS).

The replay cache is bounded: when it is full its oldest entry is dropped and
every token created up to that entry's ``Created`` is refused from then on, so
a forgotten nonce can never be replayed (an honest client's next token is newer).

:func:`strip_security_headers` removes every ``wsse:Security`` header block from
envelope bytes, octet for octet, before a request goes on to a device (DEV-R18).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import attrs
from lxml import etree

from ._xml import parse_xml
from .errors import AuthenticationError, ConfigurationError, XmlRejectedError
from .namespaces import ENV, SOAP11_ENV

__all__ = [
    "BASE64_BINARY",
    "PASSWORD_DIGEST",
    "PASSWORD_TEXT",
    "WSSE",
    "WSU",
    "TokenOutcome",
    "UsernameToken",
    "UsernameTokenSettings",
    "UsernameTokenVerifier",
    "find_username_token",
    "has_security_header",
    "parse_created",
    "password_digest",
    "strip_security_headers",
]

WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_UTP: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_DIGEST: Final = _UTP + "#PasswordDigest"
PASSWORD_TEXT: Final = _UTP + "#PasswordText"
BASE64_BINARY: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary")

_SECURITY: Final = f"{{{WSSE}}}Security"
_TOKEN: Final = f"{{{WSSE}}}UsernameToken"
_USERNAME: Final = f"{{{WSSE}}}Username"
_PASSWORD: Final = f"{{{WSSE}}}Password"
_NONCE: Final = f"{{{WSSE}}}Nonce"
_CREATED: Final = f"{{{WSU}}}Created"
_MAX_USERNAME: Final = 256
_MAX_PASSWORD: Final = 1024
_MAX_NONCE_TEXT: Final = 1024


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """``Base64(SHA-1(nonce || created || password))`` (DEV-26), padded, no line breaks."""
    raw = hashlib.sha1(
        nonce + created.encode("utf-8") + password.encode("utf-8"), usedforsecurity=False
    ).digest()
    return base64.b64encode(raw).decode("ascii")


@attrs.frozen(slots=True, repr=False)
class UsernameToken:
    """A ``wsse:UsernameToken`` as read: ``password`` is the digest (``is_digest``,
    ``#PasswordDigest``) or the clear text (``#PasswordText``).

    The repr leaves out the password and the nonce.
    """

    username: str
    password: str
    is_digest: bool
    nonce: bytes | None
    created: str | None

    def __repr__(self) -> str:
        return (f"UsernameToken(username={self.username!r}, is_digest={self.is_digest!r}, "
                f"created={self.created!r})")


def has_security_header(headers: Iterable[etree._Element]) -> bool:
    """Does any SOAP header block belong to ``wsse:Security``?"""
    return any(h.tag == _SECURITY for h in headers)


def find_username_token(headers: Iterable[etree._Element]) -> UsernameToken | None:
    """The UsernameToken of the SOAP header blocks, or ``None`` without ``wsse:Security``.

    A ``wsse:Security`` header that holds no single, readable UsernameToken
    raises :class:`AuthenticationError` (a credential we cannot check is a
    failed one).  Children are accepted in any order.
    """
    blocks = [h for h in headers if h.tag == _SECURITY]
    if not blocks:
        return None
    if len(blocks) > 1:
        raise AuthenticationError("more than one wsse:Security header")
    tokens = [c for c in blocks[0] if c.tag == _TOKEN]
    if len(tokens) != 1:
        raise AuthenticationError(f"wsse:Security holds {len(tokens)} UsernameTokens, not one")
    fields: dict[str, etree._Element] = {}
    for child in tokens[0]:
        if child.tag in (_USERNAME, _PASSWORD, _NONCE, _CREATED):
            if child.tag in fields:
                raise AuthenticationError(f"UsernameToken repeats {etree.QName(child).localname}")
            fields[str(child.tag)] = child
    username_el = fields.get(_USERNAME)
    password_el = fields.get(_PASSWORD)
    if username_el is None or password_el is None:
        raise AuthenticationError("UsernameToken lacks Username or Password")
    username = (username_el.text or "").strip()
    password = password_el.text or ""
    if not username or len(username) > _MAX_USERNAME or len(password) > _MAX_PASSWORD:
        raise AuthenticationError("UsernameToken: Username empty, or Username/Password too long")
    kind = (password_el.get("Type") or PASSWORD_TEXT).strip()
    is_digest = kind == PASSWORD_DIGEST
    if is_digest:
        password = password.strip()
    elif kind != PASSWORD_TEXT:
        raise AuthenticationError("UsernameToken: unknown Password Type")
    nonce: bytes | None = None
    nonce_el = fields.get(_NONCE)
    if nonce_el is not None:
        encoding = (nonce_el.get("EncodingType") or BASE64_BINARY).strip()
        if encoding != BASE64_BINARY:
            raise AuthenticationError("UsernameToken: Nonce EncodingType is not Base64Binary")
        nonce = _decode_base64(nonce_el.text or "")
    created_el = fields.get(_CREATED)
    created = None if created_el is None else (created_el.text or "").strip()
    return UsernameToken(username, password, is_digest, nonce, created)


def _decode_base64(text: str) -> bytes:
    if len(text) > _MAX_NONCE_TEXT:
        raise AuthenticationError("UsernameToken: Nonce too long")
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise AuthenticationError("UsernameToken: Nonce is not Base64") from None


_DATETIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,12})?(Z|[+-]\d{2}:\d{2})")


def parse_created(text: str) -> float:
    """POSIX seconds of an ``xs:dateTime`` with ``Z`` or an offset (DEV-R9).

    Without a zone the instant is unknown, so it is refused like any other
    malformed value (:class:`AuthenticationError`).
    """
    m = _DATETIME.fullmatch(text.strip())
    if m is None:
        raise AuthenticationError("Created is not an xs:dateTime with a time zone")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = float(m.group(7)) if m.group(7) else 0.0
    zone = m.group(8)
    try:
        if zone == "Z":
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        extra = 0
        if hour == 24 and minute == second == 0:  # xs:dateTime allows 24:00:00
            hour, extra = 0, 86400
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()
    except (ValueError, OverflowError):
        raise AuthenticationError("Created is not a valid date and time") from None
    return stamp + extra + fraction


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ConfigurationError(f"UsernameTokenSettings.{attribute.name} must be >= 0: {value!r}")


@attrs.frozen(slots=True)
class UsernameTokenSettings:
    """Freshness and replay rules (DEV-27, DEV-R9).

    ``clock_skew`` in seconds either side of ``now``; a (username, nonce) pair
    is remembered for ``nonce_cache_seconds`` (at least twice the skew, so a
    token is forgotten only after the window has refused it); at most
    ``max_cached_nonces`` pairs.  ``text_over_tls``: accept ``PasswordText``
    on TLS connections (never without TLS).
    """

    clock_skew: float = attrs.field(default=300.0, validator=_non_negative)
    nonce_cache_seconds: float = attrs.field(default=600.0, validator=_non_negative)
    max_cached_nonces: int = attrs.field(default=100_000, validator=_non_negative)
    min_nonce_octets: int = attrs.field(default=8, validator=_non_negative)
    max_nonce_octets: int = attrs.field(default=64, validator=_non_negative)
    text_over_tls: bool = True

    def __attrs_post_init__(self) -> None:
        if self.nonce_cache_seconds < 2 * self.clock_skew:
            raise ConfigurationError(
                "UsernameTokenSettings.nonce_cache_seconds must be >= 2 * clock_skew, got "
                f"{self.nonce_cache_seconds!r} < 2 * {self.clock_skew!r}")
        if self.max_cached_nonces < 1 or self.min_nonce_octets > self.max_nonce_octets:
            raise ConfigurationError(
                "UsernameTokenSettings: max_cached_nonces >= 1 and "
                "min_nonce_octets <= max_nonce_octets required")


@attrs.frozen(slots=True)
class TokenOutcome:
    """What :meth:`UsernameTokenVerifier.verify` found; ``reason`` is log-safe."""

    ok: bool
    user: str | None
    reason: str


_NOBODY: Final = "\x00uplink62676-no-such-user\x00"


class UsernameTokenVerifier:
    """Verifies UsernameTokens against passwords, with a bounded replay cache."""

    __slots__ = ("_floor", "_seen", "settings")

    def __init__(self, settings: UsernameTokenSettings | None = None) -> None:
        self.settings = settings or UsernameTokenSettings()
        self._seen: dict[tuple[str, bytes], tuple[float, float]] = {}  # -> (expires, created)
        self._floor: float | None = None  # tokens created at or before: refused

    def verify(
        self,
        token: UsernameToken,
        *,
        password_of: Callable[[str], str | None],
        now: float,
        tls: bool,
    ) -> TokenOutcome:
        """Check ``token`` at wall-clock ``now`` (POSIX seconds, UTC).

        Every failure looks the same to the client (DEV-R10); ``reason`` tells
        the log which check failed.
        """
        s = self.settings
        user = token.username
        self._prune(now)
        if token.nonce is None or token.created is None:
            return TokenOutcome(False, user, "token lacks Nonce or Created (DEV-25)")
        if not token.is_digest and not (tls and s.text_over_tls):
            return TokenOutcome(False, user, "PasswordText refused without TLS")
        if not s.min_nonce_octets <= len(token.nonce) <= s.max_nonce_octets:
            return TokenOutcome(False, user, f"nonce of {len(token.nonce)} octets")
        try:
            created = parse_created(token.created)
        except AuthenticationError as exc:
            return TokenOutcome(False, user, str(exc))
        if abs(created - now) > s.clock_skew:
            return TokenOutcome(False, user, f"Created {created - now:+.0f} s from now")
        key = (user, token.nonce)
        if key in self._seen:
            return TokenOutcome(False, user, "nonce replayed")
        if self._floor is not None and created <= self._floor:
            return TokenOutcome(False, user, "token older than the replay cache remembers")
        password = password_of(user)
        secret = _NOBODY if password is None else password
        if token.is_digest:
            expected = password_digest(token.nonce, token.created, secret).encode("ascii")
        else:
            expected = secret.encode("utf-8")
        if not hmac.compare_digest(expected, token.password.encode("utf-8")) or password is None:
            why = "unknown user" if password is None else "wrong password"
            return TokenOutcome(False, user, why)
        self._remember(key, now + s.nonce_cache_seconds, created)
        kind = "digest" if token.is_digest else "text"
        return TokenOutcome(True, user, f"UsernameToken ({kind}) accepted")

    def _prune(self, now: float) -> None:
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest][0] > now:
                break
            del seen[oldest]

    def _remember(self, key: tuple[str, bytes], expires: float, created: float) -> None:
        seen = self._seen
        while len(seen) >= self.settings.max_cached_nonces:
            oldest = next(iter(seen))
            dropped = seen.pop(oldest)[1]
            if self._floor is None or dropped > self._floor:
                self._floor = dropped
        seen[key] = (expires, created)

    def cached_nonces(self) -> int:
        """How many (username, nonce) pairs the replay cache holds."""
        return len(self._seen)


# --------------------------------------------------------------------------- stripping

_START_TAG: Final = re.compile(
    rb"""<[^\s/>!?]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>""")
_ENVELOPES: Final = frozenset({f"{{{ENV}}}Envelope", f"{{{SOAP11_ENV}}}Envelope"})


def strip_security_headers(data: bytes) -> bytes:
    """``data`` without its ``wsse:Security`` header blocks; every other octet unchanged.

    The envelope is parsed with the hardened parser first (SOAP 1.2 or 1.1);
    bytes that do not parse raise :class:`~uplink62676.errors.XmlRejectedError`
    (they must not reach a device either).  Without such a block, or for XML
    that is not a SOAP envelope, ``data`` is returned as it is.
    """
    root = parse_xml(data, require_utf8=True)
    if root.tag not in _ENVELOPES:
        return data
    header_tag = str(root.tag).replace("}Envelope", "}Header")
    children = [c for c in root if isinstance(c.tag, str)]
    header_index = next((i for i, c in enumerate(children) if c.tag == header_tag), None)
    if header_index is None:
        return data
    blocks = [c for c in children[header_index] if isinstance(c.tag, str)]
    targets = {i for i, b in enumerate(blocks) if b.tag == _SECURITY}
    if not targets:
        return data
    spans = _element_spans(bytes(data), header_index, targets)
    if len(spans) != len(targets):
        raise XmlRejectedError("malformed", "could not locate the wsse:Security header blocks")
    out: list[bytes] = []
    pos = 0
    for start, end in spans:
        out.append(data[pos:start])
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def _element_spans(data: bytes, header_index: int, targets: set[int]) -> list[tuple[int, int]]:
    """Octet ranges of the header blocks numbered ``targets`` (well-formed input only)."""
    counts: list[int] = []  # element children seen so far, per open element
    kinds: list[int] = []  # 0 other, 1 the Header, 2 a target block
    starts: list[int] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        lt = data.find(b"<", pos)
        if lt < 0:
            return spans
        for opener, closer in ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>")):
            if data.startswith(opener, lt):
                end = data.find(closer, lt + len(opener))
                if end < 0:
                    return spans
                pos = end + len(closer)
                break
        else:
            if data.startswith(b"</", lt):
                end = data.find(b">", lt)
                if end < 0 or not kinds:
                    return spans
                counts.pop()
                if kinds.pop() == 2:
                    spans.append((starts.pop(), end + 1))
                pos = end + 1
                continue
            m = _START_TAG.match(data, lt)
            if m is None:
                return spans
            index = 0
            if counts:
                index = counts[-1]
                counts[-1] += 1
            depth = len(counts) + 1
            kind = 0
            if depth == 2 and index == header_index:
                kind = 1
            elif depth == 3 and kinds[-1] == 1 and index in targets:
                kind = 2
            if m.group(1):
                if kind == 2:
                    spans.append((lt, m.end()))
            else:
                counts.append(0)
                kinds.append(kind)
                if kind == 2:
                    starts.append(lt)
            pos = m.end()
