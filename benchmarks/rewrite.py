"""URI rewriting of a 50-XAddr GetServices answer against bare lxml parse + serialise.

Each round times :meth:`UriRewriter.rewrite` (camera origin -> cloud origin
and path prefix, every XAddr rewritten) and, right after, the bare-lxml floor
a reserialising rewriter could not beat: ``etree.fromstring`` of the same body
and ``etree.tostring`` of the tree, nothing else.  Cases are interleaved
(A B A B ...) because this machine's speed drifts; the ratio (ours / lxml, in
bodies per second) is taken per round and the median reported.  Goal >= 0.5.

Run: ``python benchmarks/rewrite.py [--quick]`` (about 3-10 s).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from lxml import etree

from uplink62676.urirewrite import UriRewriter, UriRule

SERVICE = """
    <tds:Service>
      <tds:Namespace>http://www.onvif.org/ver10/service{i}/wsdl</tds:Namespace>
      <tds:XAddr>http://192.168.1.20/onvif/service_{i}?channel={i}&amp;x=1</tds:XAddr>
      <tds:Version><tt:Major>26</tt:Major><tt:Minor>6</tt:Minor></tds:Version>
    </tds:Service>"""


def get_services(n: int) -> bytes:
    """A GetServices answer with ``n`` services, each with its XAddr on the camera's LAN."""
    services = "".join(SERVICE.format(i=i) for i in range(n))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
        ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl"'
        ' xmlns:tt="http://www.onvif.org/ver10/schema">\n'
        f"  <env:Body>\n    <tds:GetServicesResponse>{services}\n"
        "    </tds:GetServicesResponse>\n  </env:Body>\n</env:Envelope>\n"
    ).encode()


def _rate(fn: Callable[[], object], batch: int) -> float:
    start = time.perf_counter()
    for _ in range(batch):
        fn()
    return batch / (time.perf_counter() - start)


def main() -> None:
    quick = "--quick" in sys.argv
    rounds, batch = (7, 100) if quick else (21, 300)
    body = get_services(50)
    ctype = "application/soap+xml; charset=utf-8"
    rewriter = UriRewriter(UriRule.of("http://192.168.1.20:80",
                                      "https://cloud.example:8443/devices/cam7"))
    result = rewriter.rewrite(body, ctype)
    assert result.count == 50 and result.skipped is None, result
    parser = etree.XMLParser(resolve_entities=False, no_network=True)

    def ours() -> object:
        return rewriter.rewrite(body, ctype)

    def bare() -> object:
        return etree.tostring(etree.fromstring(body, parser))

    rows: dict[str, list[float]] = {"ours": [], "lxml": [], "ratio": []}
    for _ in range(rounds):
        a = _rate(ours, batch)
        b = _rate(bare, batch)
        rows["ours"].append(a)
        rows["lxml"].append(b)
        rows["ratio"].append(a / b)
    print(f"GetServices, 50 XAddrs, {len(body)} octets: rewriter "
          f"{statistics.median(rows['ours']):8.0f} /s   bare lxml parse+serialise "
          f"{statistics.median(rows['lxml']):8.0f} /s   ratio "
          f"{statistics.median(rows['ratio']):.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
