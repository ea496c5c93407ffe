"""Helpers every filter parser shares: element names, text, the InvalidFilterFault."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from lxml import etree

from ...errors import NotificationFault
from ...namespaces import TEV, TT
from ..faults import invalid_filter_fault

_XML_WS: Final = " \t\r\n"
_FILTER_NS: Final = frozenset({TT, TEV, None})
_MAX_EXPR: Final = 4096
_MAX_DEPTH: Final = 32


def _local(elem: etree._Element) -> tuple[str | None, str]:
    q = etree.QName(elem)
    return q.namespace, q.localname


def _received(elem: etree._Element) -> tuple[str | None, str]:
    """``(namespace, name as received)`` for the UnknownFilter QName (RQ-R5)."""
    ns, local = _local(elem)
    return ns, f"{elem.prefix}:{local}" if elem.prefix else local


def _bad(elem: etree._Element, reason: str, now: float) -> NotificationFault:
    return invalid_filter_fault([_received(elem)], reason, now)


def _text(elem: etree._Element) -> str:
    return "".join(str(t) for t in elem.itertext()).strip(_XML_WS)


def _children(elem: etree._Element, allowed: Collection[str], now: float
              ) -> dict[str, list[etree._Element]]:
    """Children by local name; qualified like the parent or unqualified (RQ-R5)."""
    parent_ns = etree.QName(elem).namespace
    out: dict[str, list[etree._Element]] = {}
    if (elem.text or "").strip(_XML_WS):
        raise _bad(elem, f"unexpected text in {elem.tag}", now)
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        ns, local = _local(child)
        if ns not in (parent_ns, None) or local not in allowed:
            raise _bad(elem, f"unexpected element {child.tag} in {_local(elem)[1]}", now)
        if (child.tail or "").strip(_XML_WS):
            raise _bad(elem, f"unexpected text in {_local(elem)[1]}", now)
        out.setdefault(local, []).append(child)
    return out
