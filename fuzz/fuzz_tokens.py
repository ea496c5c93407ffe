"""Fuzz target: remote-token and reference-token parsing (tokens.md sections 1-2).

Every input must give a value or an InvalidTokenError; values must round-trip.
"""

from __future__ import annotations

import contextlib

from _common import main

from uplink62676.errors import InvalidTokenError
from uplink62676.tokens import ReferenceToken, RemoteToken, split_token


def target(data: bytes) -> None:
    # surrogateescape turns invalid octets into lone surrogates, which XML cannot carry.
    text = data.decode("utf-8", "surrogateescape")
    prefix, local = split_token(text)
    assert (local if prefix is None else f"{prefix}:{local}") == text
    with contextlib.suppress(InvalidTokenError):
        ReferenceToken.parse(text, in_list=bool(data[:1]) and data[0] & 1 == 1)
    token = RemoteToken.parse(text)
    assert str(token) == text
    assert RemoteToken.parse(token.format()) == token
    assert RemoteToken.build(token.prefix, token.local) == token


if __name__ == "__main__":
    main(target)
