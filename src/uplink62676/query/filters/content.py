"""The ``ItemFilter`` message-content dialect (EVT-56, EVT-57, EVT-R12)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs
from lxml import etree

from ...namespaces import TT
from ..faults import base_fault
from ..resources import Resource
from ._common import _MAX_EXPR, _XML_WS, _bad, _text
from .grammar import _BooleanParser, _ContentSyntaxError, _Pred

__all__ = ["ITEM_FILTER", "ContentFilter", "Items", "compile_content", "resource_items"]

ITEM_FILTER: Final = "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"

Items = tuple[Sequence[tuple[str, str]], Sequence[str]]
_ItemPred = _Pred[str, str | None]
_ExprPred = _Pred[Sequence[tuple[str, str]], Sequence[str]]


class _ContentParser(_BooleanParser):
    """The ItemFilter leaves (events.md section 15) over the shared boolean grammar."""

    def parse(self) -> _ExprPred:
        pred = self.expr(self.item)
        if self.peek() is not None:
            raise _ContentSyntaxError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return pred

    def item(self) -> _ExprPred:
        self.take("name", "boolean")
        self.take("op", "(")
        path = self.path()
        self.take("op", ")")
        return path

    def path(self) -> _ExprPred:
        self.take("op", "//")
        name = self.take("name")
        if self.at("op", ":"):
            self.pos += 1
            if self.nsmap.get(name) != TT:
                raise _ContentSyntaxError(f"prefix {name!r} does not denote {TT} (EVT-57)")
            name = self.take("name")
        if name not in ("SimpleItem", "ElementItem"):
            raise _ContentSyntaxError(f"expected SimpleItem or ElementItem, found {name!r}")
        self.take("op", "[")
        item = self.expr(self.attribute)
        self.take("op", "]")
        if name == "SimpleItem":
            return lambda s, e: any(item(n, v) for n, v in s)
        return lambda s, e: any(item(n, None) for n in e)

    def attribute(self) -> _ItemPred:
        self.take("op", "@")
        attr = self.take("name")
        if attr not in ("Name", "Value"):
            raise _ContentSyntaxError(f"expected @Name or @Value, found @{attr}")
        self.take("op", "=")
        literal = self.take("str")
        if attr == "Name":
            return lambda n, v: n == literal
        return lambda n, v: v == literal


@attrs.frozen(slots=True)
class ContentFilter:
    """A compiled ``ItemFilter`` expression (EVT-56, EVT-R12)."""

    expression: str
    _pred: _ExprPred = attrs.field(repr=False, eq=False)

    def evaluate(self, simple_items: Sequence[tuple[str, str]],
                 element_items: Sequence[str] = ()) -> bool:
        """Apply to a message's ``(Name, Value)`` SimpleItems and ElementItem names."""
        return self._pred(simple_items, element_items)

    def matches(self, resource: Resource) -> bool:
        """Apply to the full (unselected) resource event of ``resource``."""
        return self._pred(*resource_items(resource))


def resource_items(resource: Resource) -> Items:
    """The SimpleItems and ElementItem names of a resource's event (section 2)."""
    simple: list[tuple[str, str]] = [("Token", resource.token)]
    if resource.name is not None:
        simple.append(("Name", resource.name))
    simple.extend(("Scope", s) for s in resource.scopes)
    if resource.offline is not None:
        simple.append(("Offline", "true" if resource.offline else "false"))
    return simple, ("Location",) if resource.location is not None else ()


def compile_content(elem: etree._Element, now: float) -> ContentFilter:
    """Compile one ``wsnt:MessageContent`` element (EVT-56, EVT-57, EVT-R12)."""
    dialect = (elem.get("Dialect") or "").strip(_XML_WS)
    if dialect != ITEM_FILTER:
        raise _bad(elem, f"unknown message content dialect {dialect!r}", now)
    text = _text(elem)
    if len(elem) or len(text) > _MAX_EXPR:
        raise base_fault("wsnt:InvalidMessageContentExpressionFault",
                         "message content expression has element content or is too long", now)
    try:
        pred = _ContentParser(text, dict(elem.nsmap)).parse()
    except _ContentSyntaxError as exc:
        raise base_fault("wsnt:InvalidMessageContentExpressionFault",
                         f"bad ItemFilter expression {text[:200]!r}: {exc}", now) from None
    return ContentFilter(text, pred)
