"""Fuzz target: ``tev:Filter`` parsing and compilation (RQ-R5, RQ-R7..R12, EVT-R11).

Input starting with ``<`` is parsed as a whole XML document; anything else
drives a small generator that assembles a ``tev:Filter`` from the known
components (topic expressions, content filters, the four resource-query
filters, unknown elements) with fuzzed text and attribute values, so that
the compilers and not only the XML parser are exercised.  The compiled
filter is then evaluated on a few resources.  Only UplinkError may escape.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import atheris
from _common import main

from uplink62676._xml import parse_xml
from uplink62676.query.filters import compile_filter
from uplink62676.query.resources import GeoLocation, Resource

_HEAD = ('<tev:Filter xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
         'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
         'xmlns:tt="http://www.onvif.org/ver10/schema" '
         'xmlns:tns1="http://www.onvif.org/ver10/topics">')
_RESOURCES = (
    Resource("A:1", "MediaProfile", "n", GeoLocation(118.7781, 32.0436), (
        "onvif://www.onvif.org/location/city/nanjing",), False),
    Resource("B:vs_1", "VideoSource", scopes=("onvif://www.onvif.org/a/%41/b", "x:y")),
    Resource("X:A:1", "Recording", location=GeoLocation(lon=179.9999, lat=89.9999)),
)
_DIALECTS = ("http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete",
             "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet",
             "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter", "urn:x")
_RULES = ("", "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986",
          "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0", "urn:other")
_PREFIXES = ("tt:", "tev:", "", "wsnt:")


def _generated(fdp: atheris.FuzzedDataProvider) -> str:
    parts = [_HEAD]
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        kind = fdp.ConsumeIntInRange(0, 6)
        p = _PREFIXES[fdp.ConsumeIntInRange(0, 3)]
        text = escape(fdp.ConsumeUnicodeNoSurrogates(24))
        if kind == 0:
            d = quoteattr(_DIALECTS[fdp.ConsumeIntInRange(0, 3)])
            parts.append(f"<wsnt:TopicExpression Dialect={d}>{text}</wsnt:TopicExpression>")
        elif kind == 1:
            d = quoteattr(_DIALECTS[fdp.ConsumeIntInRange(0, 3)])
            parts.append(f"<wsnt:MessageContent Dialect={d}>{text}</wsnt:MessageContent>")
        elif kind == 2:
            names = ("lon", "lat", "radius", "height", "includeUnknown", "other")
            kids = []
            for _ in range(fdp.ConsumeIntInRange(0, 6)):
                name = names[fdp.ConsumeIntInRange(0, 5)]
                value = escape(fdp.ConsumeUnicodeNoSurrogates(8))
                kids.append(f"<{p}{name}>{value}</{p}{name}>")
            parts.append(f"<{p}LocationFilter>{''.join(kids)}</{p}LocationFilter>")
        elif kind == 3:
            parts.append(f"<{p}PrefixFilter><{p}Prefix>{text}</{p}Prefix></{p}PrefixFilter>")
        elif kind == 4:
            rule = _RULES[fdp.ConsumeIntInRange(0, 3)]
            attr = f" Match={quoteattr(rule)}" if rule else ""
            parts.append(f"<{p}ScopeFilter><{p}Scope{attr}>{text}</{p}Scope></{p}ScopeFilter>")
        elif kind == 5:
            parts.append(f"<{p}SelectFilter><{p}Path>{text}</{p}Path></{p}SelectFilter>")
        else:
            parts.append(f'<x:Other xmlns:x="urn:x">{text}</x:Other>')
    parts.append("</tev:Filter>")
    return "".join(parts)


def target(data: bytes) -> None:
    if data.startswith(b"<"):
        whole = data
    else:
        whole = _generated(atheris.FuzzedDataProvider(data)).encode("utf-8", "replace")
    flt = compile_filter(parse_xml(whole, max_bytes=65536), now=0.0)
    for r in _RESOURCES:
        flt.matches(r)
        flt.view(r)


if __name__ == "__main__":
    main(target)
