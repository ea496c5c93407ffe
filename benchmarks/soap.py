"""Requests per second of the uplink configuration service against bare lxml.

For GetUplinks (10 stored configurations) and SetUplink, each round times
``UplinkService.handle`` and, right after, the bare-lxml floor for the same
exchange: parsing the request envelope and serializing the (pre-built)
response envelope with lxml and nothing else.  Cases are interleaved
(A B A B ...) because this machine's speed drifts; the ratio is taken per
round and the median reported.  Goal: ratio >= 0.5.

Run: ``python benchmarks/soap.py`` (about 5-15 s).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from lxml import etree

from uplink62676.config import Capabilities, Status, UplinkConfiguration
from uplink62676.services.uplink import StaticSecurityLookup, UplinkService
from uplink62676.services.uplink_client import UplinkServiceClient

ROUNDS = 20
BATCH = 500
LEVEL = "Administrator"


def _service() -> UplinkService:
    security = StaticSecurityLookup({f"cert-{i}" for i in range(10)}, {"policy"}, {"as-1"})
    caps = Capabilities(max_uplinks=16, protocols=("https", "wss"),
                        authorization_modes=("mTLS", "AccessToken"))
    svc = UplinkService(caps, security=security,
                        status_provider=lambda a: (Status.CONNECTED, None))
    for i in range(10):
        svc.set_uplink(UplinkConfiguration(
            f"https://cloud{i}.example.com/uplink", certificate_id=f"cert-{i}",
            user_level="Operator", cert_path_validation_policy_id="policy"))
    return svc


def _rate(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(BATCH):
        fn()
    return BATCH / (time.perf_counter() - start)


def main() -> None:
    svc = _service()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    get_req = UplinkServiceClient().get_uplinks()
    set_a = UplinkServiceClient().set_uplink(UplinkConfiguration(
        "https://cloud0.example.com/uplink", certificate_id="cert-0", user_level="Operator",
        cert_path_validation_policy_id="policy"))
    set_b = UplinkServiceClient().set_uplink(UplinkConfiguration(
        "https://cloud0.example.com/uplink", certificate_id="cert-1", user_level="User"))
    get_resp = etree.fromstring(svc.handle(get_req.body, content_type=get_req.content_type,
                                           user_level=LEVEL).body)
    set_resp = etree.fromstring(svc.handle(set_a.body, content_type=set_a.content_type,
                                           user_level=LEVEL).body)
    toggle = [set_a, set_b]

    def ours_get() -> object:
        return svc.handle(get_req.body, content_type=get_req.content_type, user_level=LEVEL)

    def ours_set() -> object:
        toggle.reverse()
        req = toggle[0]
        resp = svc.handle(req.body, content_type=req.content_type, user_level=LEVEL)
        assert resp.status == 200
        return resp

    def lxml_get() -> object:
        etree.fromstring(get_req.body, parser)
        return etree.tostring(get_resp, encoding="UTF-8", xml_declaration=True)

    def lxml_set() -> object:
        etree.fromstring(toggle[0].body, parser)
        return etree.tostring(set_resp, encoding="UTF-8", xml_declaration=True)

    cases = {"GetUplinks": (ours_get, lxml_get), "SetUplink": (ours_set, lxml_set)}
    results: dict[str, dict[str, list[float]]] = {
        name: {"ours": [], "lxml": [], "ratio": []} for name in cases}
    for _ in range(ROUNDS):
        for name, (ours, raw) in cases.items():
            a = _rate(ours)
            b = _rate(raw)
            results[name]["ours"].append(a)
            results[name]["lxml"].append(b)
            results[name]["ratio"].append(a / b)
    for name, r in results.items():
        print(f"{name:11s} service {statistics.median(r['ours']):9.0f} req/s   "
              f"bare lxml parse+serialize {statistics.median(r['lxml']):9.0f} /s   "
              f"ratio {statistics.median(r['ratio']):.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
