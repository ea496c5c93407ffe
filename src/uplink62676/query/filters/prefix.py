"""The prefix filter: resources whose token starts with ``prefix:`` (RQ-14, RQ-R9)."""

from __future__ import annotations

from lxml import etree

from ._common import _bad, _children, _text


def _parse_prefix(elem: etree._Element, now: float) -> str:
    kids = _children(elem, ("Prefix",), now)
    prefixes = kids.get("Prefix", [])
    if len(prefixes) != 1:
        raise _bad(elem, "PrefixFilter needs exactly one Prefix", now)
    value = _text(prefixes[0])
    if not value:
        raise _bad(elem, "empty Prefix (RQ-R9)", now)
    return value
