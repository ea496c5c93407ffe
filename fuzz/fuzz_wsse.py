"""Fuzz target: reading, verifying and stripping a WS-Security UsernameToken (core-device.md 3.3).

Bytes in: a SoapFault or AuthenticationError (both UplinkError), or a token
that does not verify; stripping gives bytes without wsse:Security that still parse.
"""

from __future__ import annotations

import contextlib

from _common import main

from uplink62676.errors import SoapFault
from uplink62676.soap import parse_envelope
from uplink62676.wsse import (
    UsernameTokenVerifier,
    find_username_token,
    has_security_header,
    strip_security_headers,
)

VERIFIER = UsernameTokenVerifier()


def target(data: bytes) -> None:
    stripped = strip_security_headers(data)
    with contextlib.suppress(SoapFault):
        assert not has_security_header(parse_envelope(stripped).headers)
    envelope = parse_envelope(data)
    token = find_username_token(envelope.headers)
    if token is not None:
        outcome = VERIFIER.verify(token, password_of={"operator": "Uplink-62676"}.get,
                                  now=1772352930.0, tls=bool(data[-1:] == b">"))
        assert not outcome.ok


if __name__ == "__main__":
    main(target)
