"""Benchmark: remote-token and device-ID parsing, token adaption of a large response.

Each case runs against its raw baseline in the same process, interleaved
(A B A B ...) because this machine's speed drifts; the ratios are what count:

* ``RemoteToken.parse`` vs bare ``str.rpartition`` (goal >= 0.3);
* ``DeviceId.parse`` vs bare slicing into the five fields (goal >= 0.3);
* ``TokenAdapter.adapt_response`` of a 50-profile ``GetProfilesResponse`` vs
  bare lxml ``fromstring`` + ``tostring`` of the same envelope (goal >= 0.5).
  The hardened :func:`uplink62676._xml.parse_xml` (byte, DOCTYPE, depth and
  element-count checks) is timed on its own too, to show how much of the gap
  is the shared parser rather than the adaption.

Run: ``python benchmarks/tokens.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from lxml import etree

from uplink62676._xml import parse_xml
from uplink62676.adaption import TokenAdapter
from uplink62676.deviceid import DeviceId
from uplink62676.tokenmap import TokenMapper
from uplink62676.tokens import RemoteToken

ROUNDS = 7


def _rate(fn: Callable[[], object], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return inner / (time.perf_counter() - start)


def _interleave(cases: dict[str, Callable[[], object]], inner: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            rates[name].append(_rate(fn, inner))
    return {name: statistics.median(values) for name, values in rates.items()}


def _token_inputs(n: int) -> list[str]:
    return [f"3201000107132100{i % 10000:04d}:prof_{i}" for i in range(n)]


def _id_inputs(n: int) -> list[str]:
    return [f"32010001071321{i % 1000000:06d}" for i in range(n)]


def profiles_response(count: int = 50) -> bytes:
    """A Media2 GetProfilesResponse with ``count`` fully configured profiles."""
    parts = []
    for i in range(count):
        parts.append(
            f'<tr2:Profiles token="prof_{i}" fixed="true"><tr2:Name>Profile {i}</tr2:Name>'
            "<tr2:Configurations>"
            f'<tr2:VideoSource token="vsc_{i}"><tt:Name>VSC</tt:Name><tt:UseCount>1</tt:UseCount>'
            f"<tt:SourceToken>vs_{i % 4}</tt:SourceToken>"
            '<tt:Bounds x="0" y="0" width="1920" height="1080"/></tr2:VideoSource>'
            f'<tr2:AudioSource token="asc_{i}"><tt:Name>ASC</tt:Name><tt:UseCount>1</tt:UseCount>'
            "<tt:SourceToken>as_0</tt:SourceToken></tr2:AudioSource>"
            f'<tr2:VideoEncoder token="vec_{i}" GovLength="30" Profile="Main">'
            "<tt:Name>VEC</tt:Name>"
            "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
            "<tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution>"
            '<tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>25</tt:FrameRateLimit>'
            "<tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl><tt:Quality>4</tt:Quality>"
            "</tr2:VideoEncoder>"
            '<tr2:PTZ token="ptzc_0"><tt:Name>PTZ</tt:Name><tt:UseCount>50</tt:UseCount>'
            "<tt:NodeToken>node_0</tt:NodeToken></tr2:PTZ>"
            f'<tr2:Metadata token="meta_{i}"><tt:Name>M</tt:Name><tt:UseCount>1</tt:UseCount>'
            "</tr2:Metadata></tr2:Configurations></tr2:Profiles>\n"
        )
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" '
        b'xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><tr2:GetProfilesResponse>'
        + "".join(parts).encode()
        + b"</tr2:GetProfilesResponse></env:Body></env:Envelope>"
    )


def bench_parsers() -> None:
    tokens = _token_inputs(1000)  # a working set that repeats, as a VSS sees it
    cold = _token_inputs(5000)  # more distinct values than the parse cache holds
    ids = _id_inputs(1000)
    parse_token = RemoteToken.parse
    parse_id = DeviceId.parse

    def ours_token() -> None:
        for t in tokens:
            parse_token(t)

    def raw_token() -> None:
        for t in tokens:
            t.rpartition(":")

    def ours_cold() -> None:
        for t in cold:
            parse_token(t)

    def raw_cold() -> None:
        for t in cold:
            t.rpartition(":")

    def ours_id() -> None:
        for d in ids:
            parse_id(d)

    def raw_id() -> None:
        for d in ids:
            (d[0:8], d[8:10], d[10:13], d[13], d[14:20])

    rates = _interleave(
        {"token": ours_token, "token_raw": raw_token, "id": ours_id, "id_raw": raw_id}, 30
    )
    cold_rates = _interleave({"cold": ours_cold, "cold_raw": raw_cold}, 6)
    tok, tok_raw = rates["token"] * 1000, rates["token_raw"] * 1000
    tc, tc_raw = cold_rates["cold"] * 5000, cold_rates["cold_raw"] * 5000
    did, did_raw = rates["id"] * 1000, rates["id_raw"] * 1000
    print(f"RemoteToken.parse      {tok:12,.0f} /s   str.rpartition {tok_raw:12,.0f} /s   "
          f"ratio {tok / tok_raw:.2f} (goal >= 0.3; repeated working set of 1000)")
    print(f"RemoteToken.parse cold {tc:12,.0f} /s   str.rpartition {tc_raw:12,.0f} /s   "
          f"ratio {tc / tc_raw:.2f} (5000 distinct values, every parse a cache miss)")
    print(f"DeviceId.parse         {did:12,.0f} /s   slicing        {did_raw:12,.0f} /s   "
          f"ratio {did / did_raw:.2f} (goal >= 0.3)")


def bench_adaption() -> None:
    envelope = profiles_response(50)
    mapper = TokenMapper()
    adapter = TokenAdapter(mapper)
    first = adapter.adapt_response(envelope, device="32010001071321008015")
    assert len(first.rewrites) == 450, len(first.rewrites)
    plain = etree.XMLParser(resolve_entities=False, no_network=True)

    def ours() -> None:
        adapter.adapt_response(envelope, device="32010001071321008015")

    def raw() -> None:
        etree.tostring(etree.fromstring(envelope, plain))

    def hardened() -> None:
        etree.tostring(parse_xml(envelope))

    rates = _interleave({"ours": ours, "raw": raw, "hardened": hardened}, 20)
    print(f"adapt 50-profile GetProfilesResponse ({len(envelope)} octets, 450 tokens): "
          f"{rates['ours']:8,.0f} /s   lxml parse+serialize {rates['raw']:8,.0f} /s   "
          f"ratio {rates['ours'] / rates['raw']:.2f} (goal >= 0.5)")
    print(f"  of which the shared hardened parser: parse_xml+serialize {rates['hardened']:8,.0f} /s"
          f" = {rates['hardened'] / rates['raw']:.2f} of bare lxml;"
          f" adaption vs parse_xml+serialize {rates['ours'] / rates['hardened']:.2f}")


def main() -> None:
    bench_parsers()
    bench_adaption()


if __name__ == "__main__":
    main()
