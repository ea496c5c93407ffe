"""Fuzz target: the Authorization parser and the Digest verifier (core-device.md 3.2).

Every input must give Credentials or an AuthenticationError; verifying the
result must give an outcome, never an exception, and never accept a guess.
"""

from __future__ import annotations

from _common import main

from uplink62676.httpauth import DigestSettings, DigestVerifier, decode_basic, parse_authorization

VERIFIER = DigestVerifier(DigestSettings(max_tracked_nonces=64), lambda n: b"\x5a" * n)


def target(data: bytes) -> None:
    credentials = parse_authorization(data)
    outcome = VERIFIER.verify(credentials, method="POST", target="/onvif/device_service",
                              password_of={"operator": "Uplink-62676"}.get, now=1000.0)
    assert not outcome.ok
    if credentials.scheme == "basic":
        decode_basic(credentials)


if __name__ == "__main__":
    main(target)
