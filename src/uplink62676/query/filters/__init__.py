"""Subscription filters, parsed once and evaluated many times (RQ-12..RQ-17, EVT-54..57).

:func:`compile_filter` turns the ``tev:Filter`` element of a
``CreatePullPointSubscription`` into a :class:`ResourceFilter`: topic
expressions (Concrete, ConcreteSet), the ``ItemFilter`` message-content
dialect, and the four resource-query filters (location, prefix, scope,
select).  Components combine with logical AND (RQ-R6, EVT-R4); several
``SelectFilter`` elements merge.  Resource-query filter elements are accepted
in the ``tt`` namespace, the ``tev`` namespace or no namespace, with children
qualified like their parent or unqualified (RQ-R5, OQ-20).

Anything malformed or unknown raises a :class:`~uplink62676.errors.NotificationFault`
(``wsnt:InvalidFilterFault`` naming the offending element as received, or the
topic/content faults of EVT-R11/EVT-R12).

One module per job: :mod:`.topics`, :mod:`.content` (over the boolean
grammar of :mod:`.grammar`), :mod:`.location`, :mod:`.prefix`, :mod:`.scope`
(over the RFC 3986 normalisation of :mod:`.uri`), :mod:`.selection`, the
``xs`` lexical forms in :mod:`.xstypes`, and the compiled predicate in
:mod:`.compiled`.  Every public name is re-exported here.
"""

from __future__ import annotations

from .compiled import ResourceFilter, compile_filter
from .content import ITEM_FILTER, ContentFilter, Items, compile_content, resource_items
from .location import LocationFilter, Metric
from .scope import ScopeFilter
from .selection import SelectFilter
from .topics import CONCRETE, CONCRETE_SET, DEFAULT_TOPICS, Topic, TopicFilter, compile_topic
from .uri import (
    MATCH_RFC2396,
    MATCH_RFC3986,
    MATCH_STRCMP0,
    NormalizedScope,
    normalize_scope,
    scope_matches,
)

__all__ = [
    "CONCRETE",
    "CONCRETE_SET",
    "DEFAULT_TOPICS",
    "ITEM_FILTER",
    "MATCH_RFC2396",
    "MATCH_RFC3986",
    "MATCH_STRCMP0",
    "ContentFilter",
    "Items",
    "LocationFilter",
    "Metric",
    "NormalizedScope",
    "ResourceFilter",
    "ScopeFilter",
    "SelectFilter",
    "Topic",
    "TopicFilter",
    "compile_content",
    "compile_filter",
    "compile_topic",
    "normalize_scope",
    "resource_items",
    "scope_matches",
]
