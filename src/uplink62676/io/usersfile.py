"""Read the front door's users file (``cloud --users FILE``): permissions first, then text.

The file holds passwords, so it must not be readable (or writable) by group or
others -- as ``ssh`` treats a private key.  Parsing is
:func:`uplink62676.users.parse_users` (sans-I/O); this module only opens the
file and checks its mode.  :func:`front_door_auth` builds the front door's
authorizer from it (the RTSP gateway can share its ``users``).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from ..clientauth import ClientAuthenticator, ClientAuthSettings
from ..errors import ConfigurationError, UsersFileError
from ..frontdoor.auth import FrontDoorAuth
from ..users import Users, parse_users

__all__ = ["MAX_USERS_FILE_BYTES", "front_door_auth", "read_users_file"]

#: A users file larger than this is refused (it is read whole).
MAX_USERS_FILE_BYTES = 4 << 20


def read_users_file(path: Path | str) -> Users:
    """The users of ``path``; :class:`ConfigurationError` when group or others may read it
    or a line is bad (``users file 'F', line N: ...``)."""
    name = str(path)
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise ConfigurationError(f"users file {name!r} is not a regular file")
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigurationError(
                    f"users file {name!r} is accessible by group or others (mode "
                    f"{stat.S_IMODE(mode):04o}); it holds passwords: chmod 600 {name}")
            data = f.read(MAX_USERS_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read users file {name!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_USERS_FILE_BYTES:
        raise ConfigurationError(f"users file {name!r} is larger than {MAX_USERS_FILE_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"users file {name!r} is not UTF-8") from None
    try:
        users = parse_users(text)
    except UsersFileError as exc:
        raise ConfigurationError(f"users file {name!r}, {exc}") from None
    if not len(users):
        raise ConfigurationError(f"users file {name!r} defines no user")
    return users


def front_door_auth(users: Users, settings: ClientAuthSettings | None = None) -> FrontDoorAuth:
    """The front door's authorizer for ``users`` (entropy from :mod:`secrets`)."""
    return FrontDoorAuth(ClientAuthenticator(users, secrets.token_bytes, settings))
