"""The compiled ``tev:Filter``: parsing its components and the ANDed predicate (RQ-R6, EVT-R4).

The predicate runs the cheap components first (topic, the location filter's
bounding box, prefix) so that only resources near the edge of a location
circle pay for the ellipsoidal distance.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Final

import attrs
from lxml import etree

from ...namespaces import TNS1, WSNT
from ..faults import base_fault, invalid_filter_fault
from ..resources import Resource
from ._common import _FILTER_NS, _local, _received
from .content import ContentFilter, compile_content
from .location import LocationFilter, Metric, _parse_location
from .prefix import _parse_prefix
from .scope import ScopeFilter, _parse_scope
from .selection import SelectFilter, _merge_select, _parse_select
from .topics import DEFAULT_TOPICS, Topic, TopicFilter, compile_topic

__all__ = ["ResourceFilter", "compile_filter"]

@attrs.frozen(slots=True)
class ResourceFilter:
    """A compiled ``tev:Filter``: all components ANDed (RQ-R6, EVT-R4).

    :meth:`matches` decides on a resource state (used for the RQ-R3
    transitions); :meth:`view` applies the select filter; :meth:`accepts_event`
    decides on a non-resource event (only topic and content filters apply).
    """

    topics: tuple[TopicFilter, ...] = ()
    contents: tuple[ContentFilter, ...] = ()
    locations: tuple[LocationFilter, ...] = ()
    prefixes: tuple[str, ...] = ()
    scopes: tuple[ScopeFilter, ...] = ()
    select: SelectFilter | None = None
    _pred: Callable[[Resource], bool] = attrs.field(
        init=False, repr=False, eq=False, default=None)
    _kind_ok: dict[str, bool] = attrs.field(init=False, repr=False, eq=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_pred", self._build())

    def _topic_ok(self, kind: str) -> bool:
        hit = self._kind_ok.get(kind)
        if hit is None:
            hit = all(t.matches(TNS1, ("Resource", kind)) for t in self.topics)
            self._kind_ok[kind] = hit
        return hit

    def _build(self) -> Callable[[Resource], bool]:
        checks: list[Callable[[Resource], bool]] = []
        if self.topics:
            kind_ok = self._topic_ok
            checks.append(lambda r: kind_ok(r.kind))
        # Location next: its bounding box usually rejects the most for the least work.
        for loc in self.locations:
            test = loc.matches_location
            checks.append(lambda r, test=test: test(r.location))  # type: ignore[misc]
        for prefix in self.prefixes:
            head = prefix + ":"
            checks.append(lambda r, head=head: r.token.startswith(head))  # type: ignore[misc]
        for sc in self.scopes:
            checks.append(lambda r, sc=sc.matches_scopes: sc(r.scopes))  # type: ignore[misc]
        checks.extend(c.matches for c in self.contents)
        rest = _all_of(checks[1:])
        if not self.topics and self.locations:
            # Fused head: the location test reads the resource itself (one call less
            # per rejected resource, the common case of a resource query).
            first = self.locations[0].matches_location
            if rest is None:
                return lambda r: first(r.location)
            return lambda r: first(r.location) and rest(r)
        combined = _all_of(checks)
        return combined if combined is not None else (lambda r: True)

    def matches(self, resource: Resource) -> bool:
        """True if the resource's current state is in the filtered set."""
        return self._pred(resource)

    def select_all(self, resources: Iterable[Resource]) -> list[Resource]:
        """The resources in the filtered set (bulk form of :meth:`matches`)."""
        pred = self._pred
        return [r for r in resources if pred(r)]

    def view(self, resource: Resource) -> Resource:
        """``resource`` as notifications of this subscription show it."""
        return resource if self.select is None else self.select.apply(resource)

    def accepts_event(self, namespace: str, steps: tuple[str, ...],
                      simple_items: Sequence[tuple[str, str]] = (),
                      element_items: Sequence[str] = ()) -> bool:
        """Topic and content components for a non-resource event (e.g. ``EventBuffer/Begin``)."""
        return all(t.matches(namespace, steps) for t in self.topics) and all(
            c.evaluate(simple_items, element_items) for c in self.contents)


def _all_of(checks: Sequence[Callable[[Resource], bool]]) -> Callable[[Resource], bool] | None:
    """One predicate that is the AND of ``checks`` (``None`` for no checks)."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        c1, c2 = checks
        return lambda r: c1(r) and c2(r)
    if len(checks) == 3:
        c1, c2, c3 = checks
        return lambda r: c1(r) and c2(r) and c3(r)
    return lambda r: all(c(r) for c in checks)


_RQ_FILTERS: Final = frozenset({"LocationFilter", "PrefixFilter", "ScopeFilter", "SelectFilter"})


def compile_filter(
    element: etree._Element | None,
    *,
    now: float = 0.0,
    known_topics: Collection[Topic] = DEFAULT_TOPICS,
    metric: Metric = "wgs84",
    use_height: bool = False,
) -> ResourceFilter:
    """Compile a ``tev:Filter`` element (``None`` = no filter: everything, EVT-12).

    ``now`` stamps fault Timestamps; ``known_topics`` is the server's topic set
    (a well-formed expression selecting none of it is
    ``wsnt:TopicNotSupportedFault``); ``metric`` and ``use_height`` are the
    location-filter options of RQ-R7.
    """
    if element is None:
        return ResourceFilter()
    topics: list[TopicFilter] = []
    contents: list[ContentFilter] = []
    locations: list[LocationFilter] = []
    prefixes: list[str] = []
    scopes: list[ScopeFilter] = []
    select: SelectFilter | None = None
    unknown: list[tuple[str | None, str]] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue
        ns, local = _local(child)
        if ns == WSNT and local == "TopicExpression":
            topics.append(compile_topic(child, known_topics, now))
        elif ns == WSNT and local == "MessageContent":
            contents.append(compile_content(child, now))
        elif ns == WSNT and local == "ProducerProperties":
            raise base_fault("wsnt:InvalidProducerPropertiesExpressionFault",
                             "no producer-properties dialect is supported (EVT-10)", now)
        elif ns in _FILTER_NS and local in _RQ_FILTERS:
            if local == "LocationFilter":
                locations.append(_parse_location(child, now, metric, use_height))
            elif local == "PrefixFilter":
                prefixes.append(_parse_prefix(child, now))
            elif local == "ScopeFilter":
                scopes.append(_parse_scope(child, now))
            else:
                select = _merge_select(select, _parse_select(child, now))
        else:
            unknown.append(_received(child))
    if unknown:
        raise invalid_filter_fault(unknown, "Filter element not supported", now)
    return ResourceFilter(tuple(topics), tuple(contents), tuple(locations), tuple(prefixes),
                          tuple(scopes), select)
