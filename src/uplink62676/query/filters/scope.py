"""The scope filter: every listed scope must match a resource scope (RQ-15, RQ-16)."""

from __future__ import annotations

import attrs
from lxml import etree

from ..resources import Resource
from ._common import _XML_WS, _bad, _children, _text
from .uri import MATCH_RFC2396, MATCH_RFC3986, MATCH_STRCMP0, scope_matches

__all__ = ["ScopeFilter"]

@attrs.frozen(slots=True)
class ScopeFilter:
    """A compiled scope filter: every ``(scope, rule)`` must match some resource scope."""

    scopes: tuple[tuple[str, str], ...]
    _cache: dict[tuple[str, ...], bool] = attrs.field(
        factory=dict, init=False, repr=False, eq=False)

    def matches_scopes(self, scopes: tuple[str, ...]) -> bool:
        """WS-Discovery Probe semantics over a resource's scopes (section 7.1)."""
        cache = self._cache
        hit = cache.get(scopes)
        if hit is None:
            hit = all(any(scope_matches(s, t, rule) for t in scopes) for s, rule in self.scopes)
            if len(cache) > 16384:
                cache.clear()
            cache[scopes] = hit
        return hit

    def matches(self, resource: Resource) -> bool:
        """True when every filter scope matches one of the resource's scopes."""
        return self.matches_scopes(resource.scopes)


def _parse_scope(elem: etree._Element, now: float) -> ScopeFilter:
    kids = _children(elem, ("Scope",), now)
    scopes = kids.get("Scope", [])
    if not scopes:
        raise _bad(elem, "ScopeFilter needs at least one Scope", now)
    out = []
    for scope in scopes:
        rule = (scope.get("Match") or "").strip(_XML_WS) or MATCH_RFC3986
        if rule not in (MATCH_RFC3986, MATCH_RFC2396, MATCH_STRCMP0):
            raise _bad(elem, f"unsupported scope matching rule {rule!r} (RQ-R10)", now)
        if len(scope):
            raise _bad(elem, "Scope has element content", now)
        out.append((_text(scope), rule))
    return ScopeFilter(tuple(out))
