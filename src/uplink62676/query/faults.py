"""Builders for the event-service faults of events.md section 16.

Every WS-BaseNotification fault is a ``wsrf-bf:BaseFaultType`` extension
carried in ``env:Detail`` with a ``wsrf-bf:Timestamp`` (required by the
schema); the values returned here are :class:`NotificationFault` instances
(``env:Receiver``, HTTP 500, EVT-59/60) whose ``detail`` is that element.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree

from ..errors import NotificationFault
from ..namespaces import PREFIXES, TEV, WSNT, WSRF_BF, WSRF_R
from .xstime import format_datetime, format_duration

__all__ = [
    "base_fault",
    "invalid_filter_fault",
    "pull_messages_fault",
    "unacceptable_termination_fault",
]

_NS_OF: Final = {"wsnt": WSNT, "wsrf-r": WSRF_R, "tev": TEV}


def base_fault(
    name: str,
    reason: str,
    now: float,
    children: Sequence[tuple[str, str]] = (),
    nsmap: dict[str, str] | None = None,
) -> NotificationFault:
    """A fault ``name`` (``'wsnt:TopicNotSupportedFault'``) with extra text children.

    ``children`` are ``(prefixed name, text)`` pairs appended after the
    Timestamp (``('wsnt:UnknownFilter', 'x:ColourFilter')``); ``nsmap``
    declares extra prefixes those texts use.
    """
    prefix, _, local = name.partition(":")
    ns = {prefix: _NS_OF[prefix], "wsrf-bf": WSRF_BF}
    if nsmap:
        ns.update({k: v for k, v in nsmap.items() if k not in ns})
    root = etree.Element(f"{{{_NS_OF[prefix]}}}{local}", nsmap=ns)
    etree.SubElement(root, f"{{{WSRF_BF}}}Timestamp").text = format_datetime(now)
    for child, text in children:
        cp, _, cl = child.partition(":")
        etree.SubElement(root, f"{{{PREFIXES.get(cp, _NS_OF.get(cp, ''))}}}{cl}").text = text
    return NotificationFault(name, reason, detail=etree.tostring(root))


def invalid_filter_fault(
    qnames: Sequence[tuple[str | None, str]], reason: str, now: float
) -> NotificationFault:
    """``wsnt:InvalidFilterFault`` naming the offending elements (RQ-R5, EVT-R3).

    ``qnames`` are ``(namespace, prefixed-or-local name as received)``; a
    namespace without a usable prefix gets a generated one.
    """
    nsmap: dict[str, str] = {}
    ns_fixed = {"wsnt": WSNT, "wsrf-bf": WSRF_BF}
    texts = []
    for i, (namespace, name) in enumerate(qnames):
        prefix, sep, local = name.rpartition(":")
        if namespace:
            clash = prefix in ("wsnt", "wsrf-bf") and namespace != ns_fixed.get(prefix)
            if not sep or clash:
                prefix = f"ns{i}"
            nsmap[prefix] = namespace
            texts.append(("wsnt:UnknownFilter", f"{prefix}:{local}"))
        else:
            texts.append(("wsnt:UnknownFilter", local))
    return base_fault("wsnt:InvalidFilterFault", reason, now, texts, nsmap)


def unacceptable_termination_fault(
    name: str, reason: str, now: float, minimum: float, maximum: float
) -> NotificationFault:
    """``wsnt:Unacceptable(Initial)TerminationTimeFault`` with acceptable bounds (EVT-61)."""
    return base_fault(
        name, reason, now,
        [("wsnt:MinimumTime", format_datetime(minimum)),
         ("wsnt:MaximumTime", format_datetime(maximum))],
    )


def pull_messages_fault(max_timeout: float, max_message_limit: int) -> NotificationFault:
    """``tev:PullMessagesFaultResponse`` for a Timeout above the maximum (EVT-29)."""
    root = etree.Element(f"{{{TEV}}}PullMessagesFaultResponse", nsmap={"tev": TEV})
    etree.SubElement(root, f"{{{TEV}}}MaxTimeout").text = format_duration(max_timeout)
    etree.SubElement(root, f"{{{TEV}}}MaxMessageLimit").text = str(max_message_limit)
    return NotificationFault(
        "tev:PullMessagesFaultResponse", "Timeout exceeds the supported maximum",
        detail=etree.tostring(root),
    )
