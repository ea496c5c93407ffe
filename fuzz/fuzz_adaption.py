"""Fuzz target: token adaption of SOAP envelopes (tokens.md section 4).

Only our errors (SoapFault, XmlRejectedError, ...) may escape.  Half of the
inputs are raw envelopes; the other half are placed as the token of a valid
request or as the body of a response, so the fuzzer reaches the rewriting.
"""

from __future__ import annotations

from _common import main

from uplink62676.adaption import TokenAdapter, UriContext
from uplink62676.tokenmap import TokenMapper

_HEAD = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:tt="http://www.onvif.org/ver10/schema" '
    b'xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" '
    b'xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" '
    b'xmlns:tse="http://www.onvif.org/ver10/search/wsdl" '
    b'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><s:Body>'
)
_TAIL = b"</s:Body></s:Envelope>"

_MAPPER = TokenMapper(max_sessions=64)
for _token in ("prof_1", "preset_1", "rec_1"):
    _MAPPER.to_remote("cam", _token)


def _proxy(ctx: UriContext) -> str:
    return "rtsp://vss/" + ctx.device


_ADAPTER = TokenAdapter(_MAPPER, uri_rewriter=_proxy)


def target(data: bytes) -> None:
    mode = data[:1]
    rest = data[1:]
    if mode == b"q":
        envelope = (_HEAD + b"<tptz:GotoPreset><tptz:ProfileToken>cam:prof_1</tptz:ProfileToken>"
                    b"<tptz:PresetToken>" + rest + b"</tptz:PresetToken></tptz:GotoPreset>" + _TAIL)
        _ADAPTER.adapt_request(envelope)
    elif mode == b"r":
        _ADAPTER.adapt_response(_HEAD + rest + _TAIL, device="cam")
    elif mode == b"b":
        _ADAPTER.adapt_request(_HEAD + rest + _TAIL)
    else:
        _ADAPTER.adapt_request(data)
        _ADAPTER.adapt_response(data, device="cam")


if __name__ == "__main__":
    main(target)
