"""The front door's users file (``uplink62676 cloud --users FILE``), read from text.

One user per line, fields separated by spaces or tabs::

    # NAME      PASSWORD        DEVICE-PATTERN...        [token=BEARER-TOKEN]
    alice       Gate-7-secret   00010002000300040005*
    ha          s3cret!pw       cam-*  door-?  token=Zm9vYmFyYmF6cXV4LXRva2VuLTE2

* ``NAME``: 1-64 characters of ``A-Z a-z 0-9 . _ @ + ~ -`` (no ``:``, which
  Basic and Digest use as a separator); each name once.
* ``PASSWORD``: any run of printable characters without white space.
* ``DEVICE-PATTERN``: one or more glob patterns of device IDs, ``fnmatch``
  style and case-sensitive (``*``, ``?``, ``[seq]``, ``[!seq]``); ``*`` is
  every device.  The user sees a device when any pattern matches its ID.
* ``token=BEARER-TOKEN`` (optional, once, anywhere after the password): the
  user's RFC 6750 bearer token for API clients, 16 or more characters of the
  token68 alphabet ``A-Z a-z 0-9 - . _ ~ + /`` (then ``=`` padding); each
  token once in the file.  A device pattern therefore never starts with
  ``token=``.
* A line whose first non-blank character is ``#`` is a comment; blank lines
  are skipped.  ``#`` elsewhere is part of a field, so passwords may hold it.

This module only parses; the adapter reads the file and checks that group
and others cannot read it.  Errors are :class:`~uplink62676.errors.UsersFileError`
with the line number; their messages never quote a password or token.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Final

import attrs

from .errors import UsersFileError

__all__ = ["MIN_TOKEN_LENGTH", "User", "Users", "parse_users"]

#: Shortest bearer token accepted (a short token can be guessed).
MIN_TOKEN_LENGTH: Final = 16

_NAME: Final = re.compile(r"[A-Za-z0-9._@+~-]{1,64}")
_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _token_key(token: str) -> bytes:
    # Tokens are looked up by their hash, then compared in constant time.
    return hashlib.sha256(token.encode("utf-8")).digest()


@attrs.frozen(slots=True, repr=False)
class User:
    """One line of the users file.  The repr hides the password and the token."""

    name: str
    password: str
    patterns: tuple[str, ...]
    token: str | None = None
    line: int = 0
    _matcher: re.Pattern[str] = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        joined = "|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns)
        object.__setattr__(self, "_matcher", re.compile(joined or "(?!)"))

    def can_see(self, device_id: str) -> bool:
        """Does any of the user's patterns match ``device_id``?"""
        return self._matcher.match(device_id) is not None

    def __repr__(self) -> str:
        token = ", token=<hidden>" if self.token is not None else ""
        return f"User(name={self.name!r}, patterns={self.patterns!r}{token}, line={self.line})"


def _frozen(users: Mapping[str, User]) -> Mapping[str, User]:
    return MappingProxyType(dict(users))


@attrs.frozen(slots=True)
class Users:
    """The parsed users file: users by name, a bearer-token index, device visibility."""

    by_name: Mapping[str, User] = attrs.field(converter=_frozen)
    _by_token: Mapping[bytes, User] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        index = {_token_key(u.token): u for u in self.by_name.values() if u.token is not None}
        object.__setattr__(self, "_by_token", MappingProxyType(index))

    def __len__(self) -> int:
        return len(self.by_name)

    def __iter__(self) -> Iterator[User]:
        return iter(self.by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def password_of(self, name: str) -> str | None:
        """The password of user ``name``, or ``None`` for an unknown user."""
        user = self.by_name.get(name)
        return None if user is None else user.password

    def user_for_token(self, token: str) -> User | None:
        """The user whose bearer token is ``token`` (compared in constant time)."""
        user = self._by_token.get(_token_key(token))
        if user is None or user.token is None:
            return None
        return user if hmac.compare_digest(user.token.encode(), token.encode()) else None

    def can_see(self, name: str, device_id: str) -> bool:
        """May user ``name`` see ``device_id``?  Unknown users see nothing."""
        user = self.by_name.get(name)
        return user is not None and user.can_see(device_id)


def parse_users(text: str) -> Users:
    """Parse the users file; raise :class:`UsersFileError` naming the line of the first error."""
    if not isinstance(text, str):
        raise UsersFileError(f"users file must be text, not {type(text).__name__}", line=0)
    users: dict[str, User] = {}
    tokens: dict[bytes, int] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _CONTROL.search(line.replace("\t", " ")):
            raise UsersFileError("control character in the line", line=number)
        fields = line.split()
        if len(fields) < 3:
            raise UsersFileError(
                f"expected NAME PASSWORD DEVICE-PATTERN..., found {len(fields)} field(s)",
                line=number)
        name, password, rest = fields[0], fields[1], fields[2:]
        if not _NAME.fullmatch(name):
            raise UsersFileError(
                f"user name {name[:64]!r} must be 1-64 characters of A-Z a-z 0-9 . _ @ + ~ -",
                line=number)
        if name in users:
            raise UsersFileError(
                f"user {name!r} is already defined on line {users[name].line}", line=number)
        if password.startswith("token="):
            raise UsersFileError(f"user {name!r}: the password field is missing", line=number)
        token: str | None = None
        patterns: list[str] = []
        for field in rest:
            if field.startswith("token="):
                if token is not None:
                    raise UsersFileError(f"user {name!r}: more than one token=", line=number)
                token = field.removeprefix("token=")
                if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
                    raise UsersFileError(
                        f"user {name!r}: the token must be {MIN_TOKEN_LENGTH} or more characters "
                        "of A-Z a-z 0-9 - . _ ~ + / (then = padding)", line=number)
                key = _token_key(token)
                if key in tokens:
                    raise UsersFileError(
                        f"user {name!r}: the token is already used on line {tokens[key]}",
                        line=number)
                tokens[key] = number
            else:
                patterns.append(field)
        if not patterns:
            raise UsersFileError(f"user {name!r} has no DEVICE-PATTERN", line=number)
        users[name] = User(name, password, tuple(patterns), token, number)
    return Users(users)
