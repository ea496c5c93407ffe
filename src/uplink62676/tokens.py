"""Reference tokens, remote tokens and the token context (tokens.md sections 1-3).

ONVIF addresses every resource by an opaque ``tt:ReferenceToken`` (at most 64
characters, no other rule).  A VSS that exposes the resources of its devices
gives each one a *remote token* ``Prefix:LocalToken`` with one prefix per
device (TOK-7, TOK-11).  This module holds:

* :class:`ReferenceToken` -- validation of any token (TOK-1, TOK-5) and the
  stricter rules we apply when *generating* one (TOK-R1, TOK-4);
* :class:`RemoteToken` -- the ``Prefix:LocalToken`` value: total parsing
  (a value or a precise :class:`~uplink62676.errors.InvalidTokenError`),
  composition with the 36/64 limits and the last-colon split (TOK-R2);
* :class:`TokenContext` -- the client-side record of which server issued
  which token, refusing to send a token elsewhere (TOK-15, TOK-R4).

The VSS-side table ``remote token <-> (device, local token)`` that is
persisted across restarts, :class:`~uplink62676.tokenmap.TokenMapper`, lives
in :mod:`uplink62676.tokenmap`; importing it (or ``LocalRef``, ``MappingStore``)
from here still works but is deprecated.

Limits count characters (code points), not octets; comparison is exact and
case-sensitive; whitespace is significant.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any, Final, final

import attrs

from .deviceid import DeviceId
from .errors import InvalidTokenError, LocalProtocolError

__all__ = [
    "MAX_LOCAL_TOKEN_LENGTH",
    "MAX_PREFIX_LENGTH",
    "MAX_TOKEN_LENGTH",
    "ReferenceToken",
    "RemoteToken",
    "TokenContext",
    "has_prefix",
    "split_token",
    "validate_reference_token",
]

#: TOK-1 / TOK-8: a token (and so a whole remote token) has at most 64 characters.
MAX_TOKEN_LENGTH: Final = 64
#: TOK-4 / TOK-9: a local token has at most 36 characters (a UUID's text form).
MAX_LOCAL_TOKEN_LENGTH: Final = 36
#: 64 - 1 - 36: the longest prefix that still leaves room for any local token.
MAX_PREFIX_LENGTH: Final = MAX_TOKEN_LENGTH - 1 - MAX_LOCAL_TOKEN_LENGTH

# Characters an XML 1.0 document can carry at all (the Char production).
_NON_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_WHITESPACE: Final = re.compile("[ \t\n\r]")
# TOK-R1: the characters we use when we *generate* a token.
_GENERATED: Final = re.compile(r"[A-Za-z0-9._-]+")
_GENERATED_PREFIX: Final = re.compile(r"[A-Za-z0-9._-]+(?::[A-Za-z0-9._-]+)*")
_UUID_TEXT: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _show(value: str) -> str:
    """``repr`` of an offending value, shortened so error messages stay bounded."""
    if len(value) <= 80:
        return repr(value)
    return f"{value[:72]!r}... ({len(value)} characters)"


def _xml_chars_ok(value: str) -> bool:
    # Fast path: printable ASCII is always legal XML text.
    if value.isascii() and value.isprintable():
        return True
    return _NON_XML_CHAR.search(value) is None


def _bad_char(value: str) -> str:
    match = _NON_XML_CHAR.search(value)
    assert match is not None
    return f"U+{ord(match.group()):04X} at index {match.start()}"


def validate_reference_token(value: object, *, in_list: bool = False) -> str:
    """Return ``value`` if it is a valid ``tt:ReferenceToken``, else raise.

    Rules: a ``str`` (TOK-1) of at most 64 characters whose characters an XML
    document can carry (TOK-5: no other restriction); with ``in_list`` also
    no XML whitespace, as list types separate items by whitespace (tokens.md
    section 1).  The empty string is accepted (the schema has no minimum).
    """
    if not isinstance(value, str):
        raise InvalidTokenError(
            f"a reference token must be a str, got {type(value).__name__} (TOK-1)"
        )
    if len(value) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(
            f"reference token {_show(value)} has {len(value)} characters; "
            f"tt:ReferenceToken allows at most {MAX_TOKEN_LENGTH} (TOK-1)"
        )
    if not _xml_chars_ok(value):
        raise InvalidTokenError(
            f"reference token {_show(value)} contains {_bad_char(value)}, "
            "which XML cannot carry (TOK-5)"
        )
    if in_list and _XML_WHITESPACE.search(value):
        raise InvalidTokenError(
            f"reference token {_show(value)} contains whitespace, which a token inside "
            "a list type cannot carry (tokens.md section 1)"
        )
    return value


def _check_generated(value: str, what: str, *, max_length: int) -> None:
    if not value:
        raise InvalidTokenError(f"a generated {what} must not be empty (TOK-R1)")
    if len(value) > max_length:
        raise InvalidTokenError(
            f"{what} {_show(value)} has {len(value)} characters; at most {max_length} allowed"
            + (" (TOK-4, TOK-9)" if max_length == MAX_LOCAL_TOKEN_LENGTH else " (TOK-1)")
        )
    if _GENERATED.fullmatch(value) is None:
        raise InvalidTokenError(
            f"{what} {_show(value)} uses characters outside [A-Za-z0-9._-], "
            "which generated tokens are limited to (TOK-R1)"
        )


@attrs.frozen(slots=True)
class ReferenceToken:
    """A validated ``tt:ReferenceToken`` (TOK-1, TOK-5).

    ``ReferenceToken(value)`` and :meth:`parse` accept any token a peer may
    send; :meth:`new` applies the rules for tokens *we* generate.
    """

    value: str = attrs.field()

    @value.validator
    def _check(self, _attribute: attrs.Attribute[str], value: str) -> None:
        validate_reference_token(value)

    @classmethod
    def parse(cls, value: object, *, in_list: bool = False) -> ReferenceToken:
        """Validate a received token (TOK-1, TOK-5); ``in_list`` forbids whitespace."""
        return cls(validate_reference_token(value, in_list=in_list))

    @classmethod
    def new(cls, value: str, *, local: bool = False) -> ReferenceToken:
        """A token we generate: non-empty, ``[A-Za-z0-9._-]`` (TOK-R1).

        ``local=True`` is for a device's own tokens: at most 36 characters so
        that a VSS can still prefix it (TOK-4).
        """
        if not isinstance(value, str):
            raise InvalidTokenError(f"a token must be a str, got {type(value).__name__}")
        limit = MAX_LOCAL_TOKEN_LENGTH if local else MAX_TOKEN_LENGTH
        _check_generated(value, "local token" if local else "token", max_length=limit)
        return cls(value)

    @property
    def fits_local(self) -> bool:
        """True when the token can serve as a ``LocalToken`` unchanged (TOK-4, TOK-9, TOK-10)."""
        return 0 < len(self.value) <= MAX_LOCAL_TOKEN_LENGTH and ":" not in self.value

    def __str__(self) -> str:
        return self.value


def _check_prefix(prefix: object) -> str:
    if isinstance(prefix, DeviceId):
        return prefix.value
    if not isinstance(prefix, str):
        raise InvalidTokenError(
            f"a remote-token prefix must be a str or DeviceId, got {type(prefix).__name__}"
        )
    if not prefix:
        raise InvalidTokenError("a remote-token prefix must not be empty (TOK-7)")
    if not _xml_chars_ok(prefix):
        raise InvalidTokenError(
            f"remote-token prefix {_show(prefix)} contains {_bad_char(prefix)}, "
            "which XML cannot carry (TOK-5)"
        )
    return prefix


def _check_local(local: object) -> str:
    if not isinstance(local, str):
        raise InvalidTokenError(f"a local token must be a str, got {type(local).__name__}")
    if not local:
        raise InvalidTokenError("the local token of a remote token must not be empty (TOK-7)")
    if len(local) > MAX_LOCAL_TOKEN_LENGTH:
        raise InvalidTokenError(
            f"local token {_show(local)} has {len(local)} characters; a LocalToken may have at "
            f"most {MAX_LOCAL_TOKEN_LENGTH} (TOK-9, TOK-R2: use an internal mapping instead)"
        )
    if ":" in local:
        raise InvalidTokenError(
            f"local token {_show(local)} contains ':'; composing it would move the prefix "
            "boundary (TOK-10, TOK-R2: use an internal mapping instead)"
        )
    if not _xml_chars_ok(local):
        raise InvalidTokenError(
            f"local token {_show(local)} contains {_bad_char(local)}, "
            "which XML cannot carry (TOK-5)"
        )
    return local


@final
@attrs.frozen(slots=True, repr=False)
class RemoteToken:
    """A remote token ``Prefix:LocalToken`` (TOK-7 .. TOK-10).

    The prefix may itself contain colons (nested VSSs, ``X:A:1``); the local
    token never does, so the split is always at the last colon (TOK-R2).  The
    prefix is not checked against XML NCName rules, because device-ID
    prefixes start with a digit (TOK-R3).
    """

    prefix: str = attrs.field(converter=_check_prefix)
    local: str = attrs.field(converter=_check_local)

    def __attrs_post_init__(self) -> None:
        total = len(self.prefix) + 1 + len(self.local)
        if total > MAX_TOKEN_LENGTH:
            raise InvalidTokenError(
                f"remote token {_show(self.prefix + ':' + self.local)} has {total} characters; "
                f"at most {MAX_TOKEN_LENGTH} allowed (TOK-8, TOK-R2: use an internal mapping)"
            )

    @classmethod
    def _trusted(cls, prefix: str, local: str) -> RemoteToken:
        # Already validated: set the slots directly (no validators, no frozen check).
        obj = _new_object(cls)
        _SET_PREFIX(obj, prefix)
        _SET_LOCAL(obj, local)
        return obj

    @classmethod
    def parse(cls, value: object) -> RemoteToken:
        """Split a received remote token at its last colon (TOK-7, TOK-R2).

        Total: every ``str`` gives a value or an :class:`InvalidTokenError`
        naming the value and the broken rule (no colon, empty part, local
        part over 36 characters, whole over 64, characters XML cannot carry).
        Recently parsed values are kept in a small cache (values are
        immutable), since a VSS sees the same tokens again and again.
        """
        if type(value) is str:
            hit = _PARSED.get(value)
            if hit is not None:
                return hit
            prefix, _, local = value.rpartition(":")
            if (
                prefix
                and local
                and len(local) <= MAX_LOCAL_TOKEN_LENGTH
                and len(value) <= MAX_TOKEN_LENGTH
                and value.isascii()
                and value.isprintable()
            ):
                obj = _new_object(cls)
                _SET_PREFIX(obj, prefix)
                _SET_LOCAL(obj, local)
                if len(_PARSED) >= _PARSED_MAX:
                    _PARSED.clear()
                _PARSED[value] = obj
                return obj
        elif isinstance(value, str):
            value = str(value)
        else:
            raise InvalidTokenError(
                f"a remote token must be a str, got {type(value).__name__} (TOK-7)"
            )
        return cls._parse_slow(value)

    @classmethod
    def _parse_slow(cls, value: str) -> RemoteToken:
        n = len(value)
        if n > MAX_TOKEN_LENGTH:
            raise InvalidTokenError(
                f"remote token {_show(value)} has {n} characters; "
                f"at most {MAX_TOKEN_LENGTH} allowed (TOK-8)"
            )
        cut = value.rfind(":")
        if cut < 0:
            raise InvalidTokenError(
                f"token {_show(value)} has no ':' and so no prefix; "
                "a remote token is Prefix ':' LocalToken (TOK-7)"
            )
        if cut == 0:
            raise InvalidTokenError(
                f"remote token {_show(value)} has an empty prefix before its last ':' (TOK-7)"
            )
        if cut == n - 1:
            raise InvalidTokenError(
                f"remote token {_show(value)} has an empty local token after its last ':' (TOK-7)"
            )
        if n - cut - 1 > MAX_LOCAL_TOKEN_LENGTH:
            raise InvalidTokenError(
                f"remote token {_show(value)} has a local token of {n - cut - 1} characters "
                f"after its last ':'; at most {MAX_LOCAL_TOKEN_LENGTH} allowed (TOK-9)"
            )
        if not _xml_chars_ok(value):
            raise InvalidTokenError(
                f"remote token {_show(value)} contains {_bad_char(value)}, "
                "which XML cannot carry (TOK-5)"
            )
        return cls._trusted(value[:cut], value[cut + 1 :])

    @classmethod
    def build(cls, prefix: str | DeviceId, local: str) -> RemoteToken:
        """Compose ``prefix:local`` under the limits of TOK-8/TOK-9 (TOK-R2).

        ``prefix`` may be a :class:`~uplink62676.deviceid.DeviceId` (Annex A
        scheme, TOK-14) or any string the system chooses.
        """
        return cls(prefix, local)

    @classmethod
    def from_uuid(cls, prefix: str | DeviceId, value: uuid.UUID) -> RemoteToken:
        """A remote token whose local part is a UUID in its 36-character form (TOK-4)."""
        if not isinstance(value, uuid.UUID):
            raise InvalidTokenError(f"expected a uuid.UUID, got {type(value).__name__}")
        return cls(prefix, str(value))

    @property
    def local_uuid(self) -> uuid.UUID | None:
        """The local token as a UUID when it is one in 8-4-4-4-12 form, else ``None``."""
        if len(self.local) == 36 and _UUID_TEXT.fullmatch(self.local):
            return uuid.UUID(self.local)
        return None

    def nested(self, outer_prefix: str | DeviceId) -> RemoteToken:
        """This token as an upper-level VSS re-exports it: ``outer:prefix:local`` (TOK-R2)."""
        outer = _check_prefix(outer_prefix)
        return RemoteToken(f"{outer}:{self.prefix}", self.local)

    def format(self) -> str:
        """The wire form ``Prefix:LocalToken``."""
        return f"{self.prefix}:{self.local}"

    def __str__(self) -> str:
        return f"{self.prefix}:{self.local}"

    def __repr__(self) -> str:
        return f"RemoteToken({self.prefix!r}, {self.local!r})"


_new_object: Final = object.__new__
_SET_PREFIX: Final = RemoteToken.__dict__["prefix"].__set__
_SET_LOCAL: Final = RemoteToken.__dict__["local"].__set__
_PARSED: dict[str, RemoteToken] = {}
_PARSED_MAX: Final = 1024


def split_token(token: str) -> tuple[str | None, str]:
    """Split any token for display: ``(prefix, local)`` at the last colon (TOK-R2).

    A token without a colon has no prefix: ``(None, token)``.  Never raises for
    a ``str``; unlike :meth:`RemoteToken.parse` it checks no limits.  A VSS
    must route tokens through its mapping table, not through this.
    """
    prefix, sep, local = token.rpartition(":")
    if not sep:
        return None, token
    return prefix, local


def has_prefix(token: str, prefix: str) -> bool:
    """True when ``token`` belongs to ``prefix``: it starts with ``prefix + ':'`` (OQ-22).

    ``AB:1`` does not belong to ``A``; ``X:A:1`` belongs to ``X`` and to ``X:A``.
    """
    return bool(prefix) and token.startswith(prefix) and token[len(prefix) : len(prefix) + 1] == ":"


class TokenContext:
    """Client side: which server issued which token (TOK-15, TOK-16, TOK-R4).

    Record the tokens every server returns; :meth:`check` before sending a
    token to a server refuses (with :class:`LocalProtocolError`) a token
    that server never issued -- a token from another server may address
    another resource or nothing there.  Servers are named by any string the
    caller uses to identify them (an uplink identity, an XAddr).
    """

    __slots__ = ("_issuers",)

    def __init__(self) -> None:
        self._issuers: dict[str, set[str]] = {}

    def record(self, server: str, tokens: str | Iterable[str]) -> None:
        """Remember that ``server`` issued ``tokens`` (one or several)."""
        items = (tokens,) if isinstance(tokens, str) else tokens
        for token in items:
            if not isinstance(token, str):
                raise LocalProtocolError(f"a token must be a str, got {type(token).__name__}")
            if token:  # TOK-R1: the empty token never matches anything
                self._issuers.setdefault(token, set()).add(server)

    def issuers(self, token: str) -> frozenset[str]:
        """The servers that issued ``token`` (empty when none did)."""
        return frozenset(self._issuers.get(token, ()))

    def check(self, server: str, token: str) -> str:
        """Return ``token`` if ``server`` issued it, else raise :class:`LocalProtocolError`."""
        issuers = self._issuers.get(token)
        if issuers is not None and server in issuers:
            return token
        if not issuers:
            raise LocalProtocolError(
                f"token {_show(token) if isinstance(token, str) else token!r} was never issued "
                f"by server {server!r}; a client may only send a server tokens it received "
                "from that server (TOK-15)"
            )
        others = ", ".join(sorted(repr(s) for s in issuers))
        raise LocalProtocolError(
            f"token {_show(token)} was issued by {others}, not by {server!r}; it need not "
            "address the same resource, or any, there (TOK-15, TOK-16)"
        )

    def forget_server(self, server: str) -> None:
        """Drop every token of ``server`` (e.g. after it was replaced or reset)."""
        for token in [t for t, s in self._issuers.items() if server in s]:
            servers = self._issuers[token]
            servers.discard(server)
            if not servers:
                del self._issuers[token]

    def __len__(self) -> int:
        return sum(len(s) for s in self._issuers.values())


def __getattr__(name: str) -> Any:
    """``TokenMapper``, ``LocalRef`` and ``MappingStore`` moved to :mod:`uplink62676.tokenmap`;
    the old path still resolves them, with a DeprecationWarning."""
    from ._moved import moved_attr

    return moved_attr(__name__, name)
