"""The persisted VSS token table: remote token <-> (device, local token) (tokens.md sections 2, 4).

:class:`TokenMapper` gives every device one prefix (TOK-11), exposes its
tokens as remote tokens (TOK-12) and resolves incoming remote tokens only
through its table (TOK-R2, TOK-13).  The table survives restarts through a
two-method :class:`MappingStore` (JSON text; the adapter does the file I/O);
search-session tokens are kept apart and never saved (TOK-R5).

The token *values* it builds on (:class:`~uplink62676.tokens.RemoteToken`,
the validation rules) are in :mod:`uplink62676.tokens`.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, Protocol

import attrs

from .deviceid import DeviceId
from .errors import ConfigurationError, InvalidTokenError
from .tokens import (
    _GENERATED,
    _GENERATED_PREFIX,
    MAX_LOCAL_TOKEN_LENGTH,
    MAX_PREFIX_LENGTH,
    _show,
    _xml_chars_ok,
    has_prefix,
    validate_reference_token,
)

__all__ = ["LocalRef", "MappingStore", "TokenMapper"]

# Namespace of the name-based UUIDs the mapper derives for internal mapping.
_MAPPER_NAMESPACE: Final = uuid.UUID("5b0c6e2a-62f6-4c9e-9a3c-2d33b1a6e7f1")


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

    def load(self) -> str | None:
        """The text last saved, or ``None`` when nothing was saved yet."""

    def save(self, data: str) -> None:
        """Keep this text for the next :meth:`load`, across restarts."""


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
