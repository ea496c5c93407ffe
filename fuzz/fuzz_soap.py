"""Fuzz the SOAP 1.2 envelope and fault codec (uplink62676.soap).

Every input must parse into an Envelope or raise SoapFault (server side), and
parse into a SoapFault or raise RemoteProtocolError (client side).  A parsed
envelope must survive being rebuilt and parsed again.
"""

from __future__ import annotations

import contextlib

from _common import main

from uplink62676.errors import RemoteProtocolError, SoapFault
from uplink62676.soap import (
    build_envelope,
    fault_response,
    parse_envelope,
    parse_fault,
    parse_response,
    soap_action,
)


def target(data: bytes) -> None:
    soap_action(data[:200].decode("utf-8", "replace"))
    try:
        env = parse_envelope(data)
    except SoapFault as fault:
        # every fault we raise must serialize and read back identically
        resp = fault_response(fault)
        assert resp.status in (400, 500)
        assert parse_fault(resp.body) == fault
    else:
        again = parse_envelope(build_envelope(env.body, env.headers))
        assert again.operation == env.operation
    with contextlib.suppress(RemoteProtocolError):
        parse_fault(data)
    with contextlib.suppress(SoapFault, RemoteProtocolError):
        parse_response(data, status=500)


if __name__ == "__main__":
    main(target)
