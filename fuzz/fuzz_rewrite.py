"""Fuzz the SOAP URI rewriter and the Forwarded parser (uplink62676.urirewrite, .origins).

The input is used as a body (raw, and spliced into a GetServices answer so
the parser gets past the envelope) and as a ``Forwarded`` value.  Invariants:
a body that is not rewritten comes back unchanged; a rewritten body still
parses and the reversed rewriter finds every URI it wrote; the Forwarded
parser yields at most 16 elements or raises our RemoteProtocolError.
"""

from __future__ import annotations

import contextlib

from _common import main

from uplink62676._xml import parse_xml
from uplink62676.errors import RemoteProtocolError, XmlRejectedError
from uplink62676.origins import parse_forwarded
from uplink62676.urirewrite import UriRewriter, UriRule

FORWARD = UriRewriter([
    UriRule.of("http://192.168.1.20", "https://cloud.example:8443/devices/cam7"),
    UriRule.of("rtsp://192.168.1.20", "rtsp://rtsp.cloud.example/cam7"),
])
BACK = FORWARD.reversed()
REQUESTS = UriRewriter(FORWARD.rules, fields="request")
HEAD = (b'<?xml version="1.0"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
        b'xmlns:tt="http://www.onvif.org/ver10/schema"><e:Body><tds:GetServicesResponse>'
        b"<tds:Service><tds:XAddr>http://192.168.1.20/")
TAIL = b"</tds:XAddr></tds:Service></tds:GetServicesResponse></e:Body></e:Envelope>"


def _check(body: bytes) -> None:
    for rewriter in (FORWARD, REQUESTS):
        result = rewriter.rewrite(body, "application/soap+xml")
        if result.count == 0:
            assert result.body == body
            continue
        assert result.skipped is None
        try:
            parse_xml(result.body)  # still well-formed
        except XmlRejectedError as exc:
            raise AssertionError(f"rewritten body no longer parses: {exc}") from None
        if rewriter is FORWARD:  # every URI we wrote is one the reverse rule matches
            assert BACK.rewrite(result.body, "text/xml").count >= result.count


def target(data: bytes) -> None:
    _check(data)
    _check(HEAD + data + TAIL)
    with contextlib.suppress(RemoteProtocolError):
        assert len(parse_forwarded(data)) <= 16


if __name__ == "__main__":
    main(target)
