"""Topic expressions, Concrete and ConcreteSet dialects (EVT-54, EVT-55, EVT-R11)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

import attrs
from lxml import etree

from ...namespaces import TNS1
from ..faults import base_fault
from ..resources import RESOURCE_KINDS
from ._common import _MAX_EXPR, _XML_WS, _text

__all__ = ["CONCRETE", "CONCRETE_SET", "DEFAULT_TOPICS", "Topic", "TopicFilter", "compile_topic"]

CONCRETE: Final = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
CONCRETE_SET: Final = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"

Topic = tuple[str, tuple[str, ...]]
#: Topics this library announces by default: every resource kind plus the
#: begin-of-buffer event of Seek (EVT-36).
DEFAULT_TOPICS: Final[frozenset[Topic]] = frozenset(
    {(TNS1, ("Resource", k)) for k in RESOURCE_KINDS} | {(TNS1, ("EventBuffer", "Begin"))}
)

_NCNAME: Final = re.compile(r"[^\W\d][\w.\-]*")


@attrs.frozen(slots=True)
class _TopicPath:
    namespace: str | None
    steps: tuple[tuple[str | None, str], ...]  # (namespace or None = any, local name)
    descendants: bool

    def matches(self, namespace: str, steps: tuple[str, ...]) -> bool:
        if namespace != self.namespace:
            return False
        n = len(self.steps)
        if len(steps) < n or (len(steps) != n and not self.descendants):
            return False
        for (ns, name), step in zip(self.steps, steps, strict=False):
            if name != step or (ns is not None and ns != ""):
                return False
        return True


@attrs.frozen(slots=True)
class TopicFilter:
    """A compiled topic expression: a union of topic paths (EVT-54, EVT-55, EVT-R11)."""

    paths: tuple[_TopicPath, ...]

    def matches(self, namespace: str, steps: tuple[str, ...]) -> bool:
        """True if the topic ``namespace`` + ``steps`` is selected."""
        return any(p.matches(namespace, steps) for p in self.paths)


def compile_topic(elem: etree._Element, known_topics: Collection[Topic], now: float
                  ) -> TopicFilter:
    """Compile one ``wsnt:TopicExpression`` element (EVT-54, EVT-55, EVT-R11)."""
    dialect = (elem.get("Dialect") or "").strip(_XML_WS)
    if dialect not in (CONCRETE, CONCRETE_SET):
        raise base_fault("wsnt:TopicExpressionDialectUnknownFault",
                         f"unknown topic expression dialect {dialect!r}", now)
    if len(elem):
        raise base_fault("wsnt:InvalidTopicExpressionFault",
                         "topic expression has element content", now)
    text = _text(elem)
    if len(text) > _MAX_EXPR:
        raise base_fault("wsnt:InvalidTopicExpressionFault", "topic expression too long", now)
    alternatives = text.split("|")
    if dialect == CONCRETE and len(alternatives) != 1:
        raise base_fault("wsnt:InvalidTopicExpressionFault",
                         "'|' is not allowed in the Concrete dialect", now)
    nsmap = elem.nsmap
    paths = []
    for raw in alternatives:
        alt = raw.strip(_XML_WS)
        descendants = alt.endswith("//.")
        if descendants:
            if dialect == CONCRETE:
                raise base_fault("wsnt:InvalidTopicExpressionFault",
                                 "'//.' is not allowed in the Concrete dialect", now)
            alt = alt[:-3]
        parts = alt.split("/")
        root = parts[0]
        prefix, sep, local = root.rpartition(":")
        if not _NCNAME.fullmatch(local) or (sep and not _NCNAME.fullmatch(prefix)):
            raise base_fault("wsnt:InvalidTopicExpressionFault",
                             f"bad root topic {root!r} in {text!r}", now)
        if sep:
            if prefix not in nsmap:
                raise base_fault("wsnt:InvalidTopicExpressionFault",
                                 f"unknown prefix {prefix!r} in {text!r}", now)
            ns: str | None = nsmap[prefix]
        else:
            ns = nsmap.get(None)
        steps: list[tuple[str | None, str]] = [(None, local)]
        for part in parts[1:]:
            cp, csep, cl = part.rpartition(":")
            if not _NCNAME.fullmatch(cl) or (csep and not _NCNAME.fullmatch(cp)):
                raise base_fault("wsnt:InvalidTopicExpressionFault",
                                 f"bad topic step {part!r} in {text!r}", now)
            if csep:
                if cp not in nsmap:
                    raise base_fault("wsnt:InvalidTopicExpressionFault",
                                     f"unknown prefix {cp!r} in {text!r}", now)
                steps.append((nsmap[cp], cl))
            else:
                steps.append((None, cl))
        paths.append(_TopicPath(ns, tuple(steps), descendants))
    flt = TopicFilter(tuple(paths))
    if not any(flt.matches(ns_, st) for ns_, st in known_topics):
        raise base_fault("wsnt:TopicNotSupportedFault",
                         f"no supported topic matches {text!r}", now)
    return flt
