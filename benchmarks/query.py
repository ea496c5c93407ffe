"""Resource-query benchmarks (run: ``python benchmarks/query.py``).

(a) Resources per second through a compiled Location+Prefix+Scope filter
    over 100,000 resources, against a bare Python loop that computes only the
    haversine distance over the same coordinates (goal: ratio >= 1.0, thanks
    to the bounding-box pre-check).
(b) PullMessagesResponses of 1,000 notifications serialized per second,
    against bare lxml building the same tree (goal: ratio >= 0.5).
(c) Memory per registered resource (tracemalloc), 100,000 resources.

Cases are interleaved (A B A B ...) and ratios are medians of the rounds,
because this machine's speed drifts.
"""

from __future__ import annotations

import math
import random
import statistics
import time
import tracemalloc

from lxml import etree

from uplink62676._xml import parse_xml
from uplink62676.query.filters import compile_filter
from uplink62676.query.pullpoint import PullResult
from uplink62676.query.resources import (
    GeoLocation,
    Notification,
    PropertyOperation,
    Resource,
    ResourceRegistry,
)
from uplink62676.services.events import EventService

N = 100_000
ROUNDS = 5
CENTRE = (32.0436, 118.7781)
T0 = 1_772_352_930.0
NS = ('xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
      'xmlns:tt="http://www.onvif.org/ver10/schema"')


def make_resources(n: int) -> list[Resource]:
    """n resources under 4 lower-level VSS prefixes, spread over a 15 km city disc."""
    return [Resource(*args) for args in resource_args(n)]


def resource_args(n: int) -> list[tuple]:
    """Constructor arguments of :func:`make_resources` (fresh strings built per call)."""
    rnd = random.Random(62676)
    districts = [("onvif://www.onvif.org/location/city/nanjing",
                  f"onvif://www.onvif.org/location/district/d{d}",
                  "onvif://www.onvif.org/hardware/IPC-200") for d in range(8)]
    out = []
    for i in range(n):
        r = 15_000 * math.sqrt(rnd.random())
        th = rnd.uniform(0, 2 * math.pi)
        lat = CENTRE[0] + math.degrees(r * math.cos(th) / 6_371_000)
        lon = CENTRE[1] + math.degrees(r * math.sin(th) / (6_371_000 * math.cos(
            math.radians(CENTRE[0]))))
        device = 32010001071321000000 + i // 3
        out.append((f"vss{i % 4}:{device}:prof_{i % 3}", "MediaProfile", f"cam {i}",
                    GeoLocation(lon, lat, 10.0), districts[(i // 3) % 8], False))
    return out


def bench_filter() -> None:
    resources = make_resources(N)
    coords = [(r.location.lat, r.location.lon) for r in resources]
    flt = compile_filter(parse_xml(f"""<tev:Filter {NS}>
        <tt:LocationFilter><tt:lon>{CENTRE[1]}</tt:lon><tt:lat>{CENTRE[0]}</tt:lat>
          <tt:radius>1000</tt:radius></tt:LocationFilter>
        <tt:PrefixFilter><tt:Prefix>vss1</tt:Prefix></tt:PrefixFilter>
        <tt:ScopeFilter><tt:Scope>onvif://www.onvif.org/location/city</tt:Scope></tt:ScopeFilter>
      </tev:Filter>""".encode()))
    lat0, lon0 = CENTRE

    def ours() -> int:
        return len(flt.select_all(resources))

    def haversine_loop() -> int:
        rad = math.pi / 180
        p0 = lat0 * rad
        c0 = math.cos(p0)
        sin, cos, asin, sqrt = math.sin, math.cos, math.asin, math.sqrt
        count = 0
        for lat, lon in coords:
            p = lat * rad
            h = sin((p - p0) / 2) ** 2 + c0 * cos(p) * sin((lon - lon0) * rad / 2) ** 2
            if 2 * 6_371_008.8 * asin(sqrt(h)) <= 1000:
                count += 1
        return count

    loc_only = compile_filter(parse_xml(f"""<tev:Filter {NS}>
        <tt:LocationFilter><tt:lon>{CENTRE[1]}</tt:lon><tt:lat>{CENTRE[0]}</tt:lat>
          <tt:radius>1000</tt:radius></tt:LocationFilter></tev:Filter>""".encode()))
    ratios, ours_rates, base_rates, loc_ratios = [], [], [], []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        loc_only.select_all(resources)
        c = time.perf_counter() - t
        t = time.perf_counter()
        matched = ours()
        a = time.perf_counter() - t
        t = time.perf_counter()
        haversine_loop()
        b = time.perf_counter() - t
        ours_rates.append(N / a)
        base_rates.append(N / b)
        ratios.append(b / a)
        loc_ratios.append(b / c)
    print(f"(a) filter Location+Prefix+Scope: {max(ours_rates):,.0f} resources/s (best round) "
          f"({matched} matched of {N})")
    print(f"    bare haversine loop:            {max(base_rates):,.0f} points/s (best round)")
    print(f"    median per-round ratio ours/haversine = {statistics.median(ratios):.2f} "
          f"(goal >= 1.0); "
          f"Location filter alone: {statistics.median(loc_ratios):.2f}")


def _bare_lxml(notes: list[Notification]) -> bytes:
    env = "http://www.w3.org/2003/05/soap-envelope"
    wsa = "http://www.w3.org/2005/08/addressing"
    tev = "http://www.onvif.org/ver10/events/wsdl"
    wsnt = "http://docs.oasis-open.org/wsn/b-2"
    tt = "http://www.onvif.org/ver10/schema"
    sub = etree.SubElement
    root = etree.Element(f"{{{env}}}Envelope", nsmap={"env": env, "wsa": wsa})
    head = sub(root, f"{{{env}}}Header")
    sub(head, f"{{{wsa}}}Action").text = "x"
    sub(head, f"{{{wsa}}}RelatesTo").text = "urn:uuid:1"
    resp = sub(sub(root, f"{{{env}}}Body"), f"{{{tev}}}PullMessagesResponse", nsmap={
        "wsa": wsa, "tev": tev, "wsnt": wsnt, "tt": tt, "tns1": "http://www.onvif.org/ver10/topics"})
    sub(resp, f"{{{tev}}}CurrentTime").text = "2026-03-01T08:15:30Z"
    sub(resp, f"{{{tev}}}TerminationTime").text = "2026-03-01T08:16:30Z"
    for n in notes:
        r = n.data
        nm = sub(resp, f"{{{wsnt}}}NotificationMessage")
        sub(nm, f"{{{wsnt}}}Topic", Dialect="d").text = "tns1:" + n.topic
        sub(sub(nm, f"{{{wsnt}}}ProducerReference"), f"{{{wsa}}}Address").text = "http://x/"
        msg = sub(sub(nm, f"{{{wsnt}}}Message"), f"{{{tt}}}Message",
                  UtcTime="2026-03-01T08:15:30Z", PropertyOperation="Initialized")
        sub(sub(msg, f"{{{tt}}}Source"), f"{{{tt}}}SimpleItem", Name="Token", Value=r.token)
        data = sub(msg, f"{{{tt}}}Data")
        sub(data, f"{{{tt}}}SimpleItem", Name="Name", Value=r.name)
        for s in r.scopes:
            sub(data, f"{{{tt}}}SimpleItem", Name="Scope", Value=s)
        sub(data, f"{{{tt}}}SimpleItem", Name="Offline", Value="false")
        sub(sub(data, f"{{{tt}}}ElementItem", Name="Location"), f"{{{tt}}}GeoLocation",
            lon=repr(r.location.lon), lat=repr(r.location.lat), elevation="10")
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True)


def bench_serialize() -> None:
    notes = [Notification(r.topic, T0 + i * 0.001, PropertyOperation.INITIALIZED, r.token, r)
             for i, r in enumerate(make_resources(1000))]
    result = PullResult(tuple(notes), T0, T0 + 60)
    svc = EventService()
    reps = 10
    ratios, ours_rates, base_rates = [], [], []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        for _ in range(reps):
            ours = svc._pull_response(result, "urn:uuid:1", "http://x/").body
        a = (time.perf_counter() - t) / reps
        t = time.perf_counter()
        for _ in range(reps):
            bare = _bare_lxml(notes)
        b = (time.perf_counter() - t) / reps
        ours_rates.append(1 / a)
        base_rates.append(1 / b)
        ratios.append(b / a)
    print(f"(b) PullMessagesResponse x1000 notifications: {max(ours_rates):.1f}/s (best round) "
          f"({len(ours) / 1024:.0f} KiB)")
    print(f"    bare lxml, same tree:                     {max(base_rates):.1f}/s (best round) "
          f"({len(bare) / 1024:.0f} KiB)")
    print(f"    median per-round ratio ours/lxml = {statistics.median(ratios):.2f} (goal >= 0.5)")


def bench_memory() -> None:
    rnd = random.Random(1)
    coords = [(rnd.uniform(118.6, 118.9), rnd.uniform(31.9, 32.2)) for _ in range(N)]
    scopes = resource_args(8)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    reg = ResourceRegistry()
    for i, (lon, lat) in enumerate(coords):
        device = 32010001071321000000 + i // 3
        reg.put(Resource(f"vss{i % 4}:{device}:prof_{i % 3}", "MediaProfile", f"cam {i}",
                         GeoLocation(lon, lat, 10.0), scopes[(i // 3) % 8][4], False), T0)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"(c) memory: {used / N:.0f} bytes per registered resource ({N:,} resources, "
          f"{used / 2**20:.1f} MiB, token and name strings included)")


if __name__ == "__main__":
    bench_filter()
    bench_serialize()
    bench_memory()
