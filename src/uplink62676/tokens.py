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
  which token, refusing to send a token elsewhere (TOK-15, TOK-R4);
* :class:`TokenMapper` -- the VSS-side bidirectional table
  ``remote token <-> (device, local token)``, persisted through a small
  :class:`MappingStore` protocol (JSON text; the adapter does the file I/O).

Limits count characters (code points), not octets; comparison is exact and
case-sensitive; whitespace is significant.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final, Protocol, final

import attrs

from .deviceid import DeviceId
from .errors import ConfigurationError, InvalidTokenError, LocalProtocolError

__all__ = [
    "MAX_LOCAL_TOKEN_LENGTH",
    "MAX_PREFIX_LENGTH",
    "MAX_TOKEN_LENGTH",
    "LocalRef",
    "MappingStore",
    "ReferenceToken",
    "RemoteToken",
    "TokenContext",
    "TokenMapper",
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
# Namespace of the name-based UUIDs the mapper derives for internal mapping.
_MAPPER_NAMESPACE: Final = uuid.UUID("5b0c6e2a-62f6-4c9e-9a3c-2d33b1a6e7f1")


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


@attrs.frozen(slots=True)
class LocalRef:
    """What a remote token stands for: a device and that device's own token."""

    device: str
    token: str


class MappingStore(Protocol):
    """Where a :class:`TokenMapper` keeps its table across restarts.

    The adapter implements it (a file, a database row); the core never does
    I/O.  ``load`` returns the text last passed to ``save``, or ``None``.
    """

    def load(self) -> str | None: ...

    def save(self, data: str) -> None: ...


_STORE_VERSION: Final = 1


class TokenMapper:
    """VSS side: the bidirectional map ``remote token <-> (device, local token)``.

    Every device gets one prefix (TOK-11), by default the device key itself
    (a 20-digit :class:`~uplink62676.deviceid.DeviceId` works as is) or
    whatever ``prefix_for`` returns.  A device token that fits the rules
    (at most 36 characters of ``[A-Za-z0-9._-]``) is exposed as
    ``prefix:token`` (TOK-12, first option); any other gets an internal
    mapping ``prefix:<uuid>`` derived from the device and the token, so the
    result is the same after a restart (TOK-12, second option; TOK-R2).
    Incoming tokens are resolved only through the table, never by parsing
    (TOK-R2, TOK-13).

    Search-session tokens are *transient* (TOK-R5): kept apart, never saved,
    at most ``max_sessions`` of them (oldest dropped), forgotten on EndSearch.

    With a ``store`` the table is loaded at construction and :meth:`flush`
    saves it when it changed.
    """

    __slots__ = (
        "_by_pair",
        "_by_remote",
        "_dirty",
        "_max_sessions",
        "_prefix_for",
        "_prefix_owner",
        "_prefixes",
        "_session_by_pair",
        "_sessions",
        "_store",
        "_view",
    )

    def __init__(
        self,
        *,
        prefix_for: Callable[[str], str] | None = None,
        store: MappingStore | None = None,
        max_sessions: int = 4096,
    ) -> None:
        if max_sessions < 1:
            raise ConfigurationError(f"max_sessions must be at least 1, got {max_sessions!r}")
        self._prefix_for = prefix_for
        self._store = store
        self._max_sessions = max_sessions
        self._prefixes: dict[str, str] = {}
        self._prefix_owner: dict[str, str] = {}
        self._by_pair: dict[tuple[str, str], str] = {}
        self._view = MappingProxyType(self._by_pair)
        self._by_remote: dict[str, LocalRef] = {}
        self._sessions: OrderedDict[str, LocalRef] = OrderedDict()
        self._session_by_pair: dict[tuple[str, str], str] = {}
        self._dirty = False
        if store is not None:
            data = store.load()
            if data is not None:
                self._load(data)

    # -- devices -------------------------------------------------------------

    def add_device(self, device: str | DeviceId, prefix: str | DeviceId | None = None) -> str:
        """Register ``device`` with ``prefix`` (default: ``prefix_for(device)`` or the key).

        The prefix must be ``[A-Za-z0-9._-]`` segments joined by ``:`` (TOK-R1),
        at most 27 characters so every local token fits (TOK-R2), and not be
        used by another device (TOK-11).  Returns the prefix.
        """
        key = str(device)
        if prefix is None:
            prefix = self._prefix_for(key) if self._prefix_for is not None else key
        text = str(prefix)
        current = self._prefixes.get(key)
        if current is not None:
            if current != text:
                raise ConfigurationError(
                    f"device {key!r} already has prefix {current!r}; one device keeps one "
                    f"prefix (TOK-11), cannot change it to {text!r}"
                )
            return current
        if not text or len(text) > MAX_PREFIX_LENGTH or not _GENERATED_PREFIX.fullmatch(text):
            raise ConfigurationError(
                f"prefix {_show(text)} for device {key!r} must be 1-{MAX_PREFIX_LENGTH} characters "
                "of [A-Za-z0-9._-] segments joined by ':' (TOK-R1, TOK-R2)"
            )
        owner = self._prefix_owner.get(text)
        if owner is not None:
            raise ConfigurationError(
                f"prefix {text!r} already belongs to device {owner!r}; every device needs "
                "its own prefix (TOK-6, TOK-11)"
            )
        self._prefixes[key] = text
        self._prefix_owner[text] = key
        self._dirty = True
        return text

    def prefix_of(self, device: str | DeviceId) -> str | None:
        """The prefix of ``device``, or ``None`` when it is not registered."""
        return self._prefixes.get(str(device))

    def remove_device(self, device: str | DeviceId) -> None:
        """Forget ``device``, its prefix and every token mapped for it."""
        key = str(device)
        prefix = self._prefixes.pop(key, None)
        if prefix is None:
            return
        del self._prefix_owner[prefix]
        for pair in [p for p in self._by_pair if p[0] == key]:
            del self._by_remote[self._by_pair.pop(pair)]
        for pair in [p for p in self._session_by_pair if p[0] == key]:
            del self._sessions[self._session_by_pair.pop(pair)]
        self._dirty = True

    # -- mapping -------------------------------------------------------------

    def to_remote(self, device: str, local: str, *, session: bool = False) -> str:
        """The remote token for ``device``'s token ``local``, creating it if needed.

        ``session=True`` marks a search-session token (transient, TOK-R5).
        The empty token is returned unchanged: it addresses nothing (TOK-R1).
        """
        if not local:
            return local
        if type(device) is not str:
            device = str(device)
        pair = (device, local)
        remote = self._by_pair.get(pair)
        if remote is not None:
            return remote
        if not isinstance(local, str) or not _xml_chars_ok(local):
            shown = _show(local) if isinstance(local, str) else type(local).__name__
            raise InvalidTokenError(
                f"device token {shown} is not text XML can carry (TOK-5); it cannot be mapped"
            )
        if session:
            remote = self._session_by_pair.get(pair)
            if remote is not None:
                self._sessions.move_to_end(remote)
                return remote
        prefix = self._prefixes.get(device)
        if prefix is None:
            prefix = self.add_device(device)
        remote = self._new_remote(prefix, device, local)
        ref = LocalRef(device, local)
        if session:
            self._sessions[remote] = ref
            self._session_by_pair[pair] = remote
            while len(self._sessions) > self._max_sessions:
                _old, old_ref = self._sessions.popitem(last=False)
                del self._session_by_pair[(old_ref.device, old_ref.token)]
        else:
            self._by_pair[pair] = remote
            self._by_remote[remote] = ref
            self._dirty = True
        return remote

    def _taken(self, remote: str) -> bool:
        return remote in self._by_remote or remote in self._sessions

    def _new_remote(self, prefix: str, device: str, local: str) -> str:
        if len(local) <= MAX_LOCAL_TOKEN_LENGTH and _GENERATED.fullmatch(local):
            remote = f"{prefix}:{local}"
            if not self._taken(remote):
                return remote
        # Internal mapping (TOK-12): a name-based UUID, stable across restarts.
        counter = 0
        while True:
            name = f"{device}\x00{local}\x00{counter}" if counter else f"{device}\x00{local}"
            remote = f"{prefix}:{uuid.uuid5(_MAPPER_NAMESPACE, name)}"
            if not self._taken(remote):
                return remote
            counter += 1

    @property
    def known_remote(self) -> Mapping[tuple[str, str], str]:
        """Read-only view ``(device, local) -> remote`` of the persistent entries."""
        return self._view

    def to_local(self, remote: str) -> LocalRef | None:
        """What ``remote`` stands for, or ``None`` when this VSS never issued it."""
        ref = self._by_remote.get(remote)
        if ref is None:
            ref = self._sessions.get(remote)
        return ref

    def end_session(self, remote: str) -> LocalRef | None:
        """Forget a search-session token (EndSearch, TOK-R5); returns what it stood for."""
        ref = self._sessions.pop(remote, None)
        if ref is not None:
            del self._session_by_pair[(ref.device, ref.token)]
        return ref

    def __len__(self) -> int:
        return len(self._by_remote) + len(self._sessions)

    # -- persistence -----------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """True when the persistent table changed since the last load or flush."""
        return self._dirty

    def flush(self) -> bool:
        """Save the table through the store when it changed; returns whether it saved."""
        if not self._dirty:
            return False
        if self._store is not None:
            self._store.save(self.dumps())
        self._dirty = False
        return self._store is not None

    def dumps(self) -> str:
        """The persistent table as JSON text (devices, prefixes, tokens; no sessions)."""
        return json.dumps(
            {
                "version": _STORE_VERSION,
                "devices": dict(sorted(self._prefixes.items())),
                "tokens": sorted(
                    [ref.device, ref.token, remote] for remote, ref in self._by_remote.items()
                ),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def loads(
        cls,
        data: str,
        *,
        prefix_for: Callable[[str], str] | None = None,
        max_sessions: int = 4096,
    ) -> TokenMapper:
        """A new mapper (without a store) holding the table of :meth:`dumps` text."""
        mapper = cls(prefix_for=prefix_for, max_sessions=max_sessions)
        mapper._load(data)
        return mapper

    def _load(self, data: str) -> None:
        try:
            doc = json.loads(data)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"token map is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("version") != _STORE_VERSION:
            raise ConfigurationError(
                f"token map has no supported version (expected {_STORE_VERSION})"
            )
        devices = doc.get("devices")
        tokens = doc.get("tokens")
        if not isinstance(devices, dict) or not isinstance(tokens, list):
            raise ConfigurationError("token map needs a 'devices' object and a 'tokens' list")
        for device, prefix in devices.items():
            if not isinstance(prefix, str):
                raise ConfigurationError(f"token map: prefix of {device!r} is not a string")
            self.add_device(device, prefix)
        for entry in tokens:
            if not (
                isinstance(entry, list)
                and len(entry) == 3
                and all(isinstance(x, str) and x for x in entry)
            ):
                raise ConfigurationError(f"token map: bad token entry {entry!r}")
            device, local, remote = entry
            if not _xml_chars_ok(local):
                raise ConfigurationError(f"token map: local token {_show(local)} is not XML text")
            prefix = self._prefixes.get(device)
            if prefix is None or not has_prefix(remote, prefix):
                raise ConfigurationError(
                    f"token map: {remote!r} does not carry the prefix of device {device!r}"
                )
            try:
                validate_reference_token(remote)
            except InvalidTokenError as exc:
                raise ConfigurationError(f"token map: {exc}") from None
            if remote in self._by_remote or (device, local) in self._by_pair:
                raise ConfigurationError(f"token map: duplicate entry {entry!r}")
            self._by_pair[(device, local)] = remote
            self._by_remote[remote] = LocalRef(device, local)
        self._dirty = False
