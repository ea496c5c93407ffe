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

The compiled predicate runs the cheap components first (topic, the location
filter's bounding box, prefix) so that only resources near the edge of a
location circle pay for the ellipsoidal distance.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Final, Literal, TypeVar

import attrs
from lxml import etree

from ..errors import NotificationFault
from ..namespaces import TEV, TNS1, TT, WSNT
from .faults import base_fault, invalid_filter_fault
from .geodesy import (
    MAX_MERIDIONAL_RADIUS,
    geodesic_distance,
    haversine_distance,
    parallel_radius,
    search_box,
)
from .resources import RESOURCE_KINDS, GeoLocation, Resource

__all__ = [
    "CONCRETE",
    "CONCRETE_SET",
    "DEFAULT_TOPICS",
    "ITEM_FILTER",
    "MATCH_RFC2396",
    "MATCH_RFC3986",
    "MATCH_STRCMP0",
    "ContentFilter",
    "LocationFilter",
    "ResourceFilter",
    "ScopeFilter",
    "SelectFilter",
    "TopicFilter",
    "compile_content",
    "compile_filter",
    "compile_topic",
    "normalize_scope",
    "resource_items",
    "scope_matches",
]

CONCRETE: Final = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
CONCRETE_SET: Final = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
ITEM_FILTER: Final = "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
MATCH_RFC3986: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986"
MATCH_RFC2396: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc2396"
MATCH_STRCMP0: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0"

Topic = tuple[str, tuple[str, ...]]
#: Topics this library announces by default: every resource kind plus the
#: begin-of-buffer event of Seek (EVT-36).
DEFAULT_TOPICS: Final[frozenset[Topic]] = frozenset(
    {(TNS1, ("Resource", k)) for k in RESOURCE_KINDS} | {(TNS1, ("EventBuffer", "Begin"))}
)

_XML_WS: Final = " \t\r\n"
_FILTER_NS: Final = frozenset({TT, TEV, None})
_NCNAME: Final = re.compile(r"[^\W\d][\w.\-]*")
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


# --------------------------------------------------------------------------- topics


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


# --------------------------------------------------------------------------- content


Items = tuple[Sequence[tuple[str, str]], Sequence[str]]
_A = TypeVar("_A")
_B = TypeVar("_B")
_Pred = Callable[[_A, _B], bool]
_ItemPred = _Pred[str, str | None]
_ExprPred = _Pred[Sequence[tuple[str, str]], Sequence[str]]

_TOKEN_RE: Final = re.compile(
    r"\s*(?:(//|[()\[\]=:@])|\"([^\"]*)\"|'([^']*)'|([^\W\d][\w.\-]*))", re.UNICODE
)


class _ContentSyntaxError(Exception):
    pass


class _ContentParser:
    """Recursive-descent parser of the ItemFilter grammar (events.md section 15)."""

    def __init__(self, text: str, nsmap: dict[str | None, str]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN_RE.match(stripped, pos)
            if m is None:
                raise _ContentSyntaxError(f"unexpected character at offset {pos}")
            op, dq, sq, name = m.groups()
            if op is not None:
                self.tokens.append(("op", op))
            elif dq is not None or sq is not None:
                self.tokens.append(("str", dq if dq is not None else sq))
            else:
                self.tokens.append(("name", name))
            pos = m.end()
        self.pos = 0
        self.depth = 0
        self.nsmap = nsmap

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise _ContentSyntaxError(f"expected {value or kind}, found {tok[1] if tok else 'end'}")
        self.pos += 1
        return tok[1]

    def at(self, kind: str, value: str) -> bool:
        return self.peek() == (kind, value)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _ContentSyntaxError("expression nested too deeply")

    def parse(self) -> _ExprPred:
        pred = self.expr(self.item)
        if self.peek() is not None:
            raise _ContentSyntaxError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return pred

    # The boolean grammar (or / and / not / parentheses) is the same over items
    # and over item attributes; ``atom`` parses the level's leaf predicate.

    def expr(self, atom: Callable[[], _Pred[_A, _B]]) -> _Pred[_A, _B]:
        terms = [self.and_expr(atom)]
        while self.at("name", "or"):
            self.pos += 1
            terms.append(self.and_expr(atom))
        if len(terms) == 1:
            return terms[0]
        return lambda a, b: any(t(a, b) for t in terms)

    def and_expr(self, atom: Callable[[], _Pred[_A, _B]]) -> _Pred[_A, _B]:
        terms = [self.primary(atom)]
        while self.at("name", "and"):
            self.pos += 1
            terms.append(self.primary(atom))
        if len(terms) == 1:
            return terms[0]
        return lambda a, b: all(t(a, b) for t in terms)

    def primary(self, atom: Callable[[], _Pred[_A, _B]]) -> _Pred[_A, _B]:
        self._enter()
        try:
            if self.at("op", "("):
                self.pos += 1
                inner = self.expr(atom)
                self.take("op", ")")
                return inner
            if self.at("name", "not"):
                self.pos += 1
                self.take("op", "(")
                negated = self.expr(atom)
                self.take("op", ")")
                return lambda a, b: not negated(a, b)
            return atom()
        finally:
            self.depth -= 1

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


# --------------------------------------------------------------------------- location


_DOUBLE_RE: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?INF|NaN")


def _xs_double(text: str) -> float:
    s = text.strip(_XML_WS)
    if not _DOUBLE_RE.fullmatch(s):
        raise ValueError(f"not an xs:double: {text!r}")
    return float(s.replace("INF", "inf"))


def _xs_float(text: str) -> float:
    value = _xs_double(text)
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _xs_boolean(text: str) -> bool:
    s = text.strip(_XML_WS)
    if s in ("true", "1"):
        return True
    if s in ("false", "0"):
        return False
    raise ValueError(f"not an xs:boolean: {text!r}")


Metric = Literal["wgs84", "haversine"]


@attrs.frozen(slots=True)
class LocationFilter:
    """A compiled location filter (RQ-13, RQ-R7).

    Matching: the resource's ``lon``/``lat`` within ``radius`` metres of the
    centre, boundary inclusive; the metric is the WGS 84 geodesic unless
    ``metric="haversine"`` was chosen explicitly.  ``use_height`` enables the
    optional 3-D mode (sqrt(d^2 + dh^2)) when both heights are known.
    """

    lon: float
    lat: float
    radius: float
    include_unknown: bool = False
    height: float | None = None
    metric: Metric = "wgs84"
    use_height: bool = False
    _test: Callable[[GeoLocation | None], bool] = attrs.field(
        init=False, repr=False, eq=False, default=None)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_test", self._build())

    def _build(self) -> Callable[[GeoLocation | None], bool]:
        lat0, lon0, radius, unknown = self.lat, self.lon, self.radius, self.include_unknown
        dist = geodesic_distance if self.metric == "wgs84" else haversine_distance
        # The box is built for the ellipsoid; a sphere of radius 6 371 008.8 m has
        # parallels up to 0.2 % shorter, so widen it for the haversine option.
        box = search_box(lat0, lon0, radius * (1.01 if self.metric == "haversine" else 1.0))
        lat_min, lat_max = box.lat_min, box.lat_max
        ranges = box.lon_ranges
        height = self.height if self.use_height else None
        if math.isinf(radius):
            lat_min, lat_max, ranges = -90.0, 90.0, ()

        # Sure acceptance without trigonometry (WGS 84, 2-D only): the path along
        # the centre's parallel and then along a meridian is at least as long as
        # the geodesic, and is bounded by p0 * |dlon| + M_max * |dlat|.
        shortcut = self.metric == "wgs84" and height is None and math.isfinite(radius)
        p0_deg = parallel_radius(lat0) * math.pi / 180.0
        m_deg = MAX_MERIDIONAL_RADIUS * math.pi / 180.0
        sure = radius * (1.0 - 1e-9)

        def exact(loc: GeoLocation, lat: float, lon: float) -> bool:
            if shortcut:
                dlon = abs(lon - lon0)
                if dlon > 180.0:
                    dlon = 360.0 - dlon
                if p0_deg * dlon + m_deg * abs(lat - lat0) <= sure:
                    return True
            d = dist(lat0, lon0, lat, lon)
            if height is not None and loc.elevation is not None:
                dh = loc.elevation - height
                return d * d + dh * dh <= radius * radius
            return d <= radius

        if not ranges:
            def test(loc: GeoLocation | None) -> bool:
                if loc is None:
                    return unknown
                lat, lon = loc.lat, loc.lon
                if lat is None or lon is None:
                    return unknown
                if lat < lat_min or lat > lat_max:
                    return False
                return exact(loc, lat, lon)
        elif len(ranges) == 1:
            (lon_lo, lon_hi), = ranges

            def test(loc: GeoLocation | None) -> bool:
                if loc is None:
                    return unknown
                lat, lon = loc.lat, loc.lon
                if lat is None or lon is None:
                    return unknown
                if lat < lat_min or lat > lat_max or lon < lon_lo or lon > lon_hi:
                    return False
                return exact(loc, lat, lon)
        else:
            (a_lo, a_hi), (b_lo, b_hi) = ranges

            def test(loc: GeoLocation | None) -> bool:
                if loc is None:
                    return unknown
                lat, lon = loc.lat, loc.lon
                if lat is None or lon is None:
                    return unknown
                if lat < lat_min or lat > lat_max:
                    return False
                if not (a_lo <= lon <= a_hi or b_lo <= lon <= b_hi):
                    return False
                return exact(loc, lat, lon)
        return test

    def matches_location(self, location: GeoLocation | None) -> bool:
        """True if a resource at ``location`` (``None`` = unknown) is selected."""
        return self._test(location)

    def matches(self, resource: Resource) -> bool:
        return self._test(resource.location)


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


def _parse_location(elem: etree._Element, now: float, metric: Metric,
                    use_height: bool) -> LocationFilter:
    kids = _children(elem, ("lon", "lat", "height", "radius", "includeUnknown"), now)
    for name, required in (("lon", True), ("lat", True), ("radius", True),
                           ("height", False), ("includeUnknown", False)):
        got = len(kids.get(name, ()))
        if got > 1 or (required and got == 0):
            raise _bad(elem, f"LocationFilter needs exactly one {name}"
                       if required else f"LocationFilter has {got} {name}", now)
    try:
        lon = _xs_double(_text(kids["lon"][0]))
        lat = _xs_double(_text(kids["lat"][0]))
        radius = _xs_float(_text(kids["radius"][0]))
        height = _xs_float(_text(kids["height"][0])) if "height" in kids else None
        unknown = (_xs_boolean(_text(kids["includeUnknown"][0]))
                   if "includeUnknown" in kids else False)
    except ValueError as exc:
        raise _bad(elem, f"bad LocationFilter value: {exc}", now) from None
    if not (-180.0 <= lon <= 180.0) or not (-90.0 <= lat <= 90.0):
        raise _bad(elem, f"LocationFilter centre out of range: lon={lon!r} lat={lat!r}", now)
    if math.isnan(radius) or radius < 0:
        raise _bad(elem, f"LocationFilter radius must be >= 0, got {radius!r}", now)
    if height is not None and not math.isfinite(height):
        raise _bad(elem, f"LocationFilter height must be finite, got {height!r}", now)
    return LocationFilter(lon, lat, radius, unknown, height, metric, use_height)


# --------------------------------------------------------------------------- prefix


def _parse_prefix(elem: etree._Element, now: float) -> str:
    kids = _children(elem, ("Prefix",), now)
    prefixes = kids.get("Prefix", [])
    if len(prefixes) != 1:
        raise _bad(elem, "PrefixFilter needs exactly one Prefix", now)
    value = _text(prefixes[0])
    if not value:
        raise _bad(elem, "empty Prefix (RQ-R9)", now)
    return value


# --------------------------------------------------------------------------- scope

_URI_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(?://([^/?#]*))?([^?#]*)(?:\?[^#]*)?(?:#.*)?")
_URI_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]%]*")
_PCT_RE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
NormalizedScope = tuple[str, str | None, tuple[str, ...]]
_SCOPE_CACHE: dict[str, NormalizedScope | None] = {}


def _pct_normalize(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    return _PCT_RE.sub(fix, text)


def normalize_scope(uri: str) -> NormalizedScope | None:
    """``(scheme, authority, path segments)`` normalised per RFC 3986 6.2.2; ``None`` if unparsable.

    Scheme and authority are lower-cased (compared case-insensitively);
    percent-escapes of unreserved characters are decoded and the others
    upper-cased.  An empty path has no segments; a trailing ``/`` gives a
    final empty segment (RQ-R10).
    """
    cached = _SCOPE_CACHE.get(uri)
    if cached is not None or uri in _SCOPE_CACHE:
        return cached
    result: NormalizedScope | None = None
    m = _URI_RE.fullmatch(uri)
    if m is not None and _URI_CHARS.fullmatch(uri) and "%" not in _PCT_RE.sub("", uri):
        scheme, authority, path = m.groups()
        if authority is not None:
            authority = _pct_normalize(authority).lower()
        path = _pct_normalize(path)
        if path == "":
            segments: tuple[str, ...] = ()
        else:
            segments = tuple((path[1:] if path.startswith("/") else path).split("/"))
        result = (scheme.lower(), authority, segments)
    if len(_SCOPE_CACHE) > 65536:
        _SCOPE_CACHE.clear()
    _SCOPE_CACHE[uri] = result
    return result


def _dot_free(segments: tuple[str, ...]) -> bool:
    return "." not in segments and ".." not in segments


def scope_matches(filter_scope: str, resource_scope: str, rule: str = MATCH_RFC3986) -> bool:
    """One WS-Discovery scope match (RQ-15, RQ-16, section 7.1)."""
    if rule == MATCH_STRCMP0:
        return filter_scope == resource_scope
    s = normalize_scope(filter_scope)
    t = normalize_scope(resource_scope)
    if s is None or t is None or s[0] != t[0] or s[1] != t[1]:
        return False
    ss, ts = s[2], t[2]
    return (_dot_free(ss) and _dot_free(ts) and len(ss) <= len(ts)
            and ts[: len(ss)] == ss)


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


# --------------------------------------------------------------------------- select

_PATH_RE: Final = re.compile(r"(?:/[^\W\d][\w.\-]*)+")


@attrs.frozen(slots=True)
class SelectFilter:
    """Which Data items notifications carry (RQ-17, RQ-R12).

    ``scope_paths`` holds lower-cased ONVIF scope-path prefixes (``('location',)``
    for ``/Scope/Location``); an empty prefix keeps every scope.
    """

    name: bool = False
    location: bool = False
    offline: bool = False
    scope_paths: tuple[tuple[str, ...], ...] = ()

    def keep_scope(self, scope: str) -> bool:
        for path in self.scope_paths:
            if not path:
                return True
            n = normalize_scope(scope)
            if (n is not None and n[0] == "onvif" and n[1] == "www.onvif.org"
                    and tuple(s.lower() for s in n[2][: len(path)]) == path):
                return True
        return False

    def apply(self, resource: Resource) -> Resource:
        """``resource`` with the unselected Data items removed (Token always kept)."""
        scopes = resource.scopes
        if scopes and self.scope_paths != ((),):
            scopes = tuple(s for s in scopes if self.keep_scope(s))
        return Resource(
            resource.token, resource.kind,
            resource.name if self.name else None,
            resource.location if self.location else None,
            scopes,
            resource.offline if self.offline else None,
        )


def _parse_select(elem: etree._Element, now: float) -> SelectFilter:
    kids = _children(elem, ("Path",), now)
    paths = kids.get("Path", [])
    if not paths:
        raise _bad(elem, "SelectFilter needs at least one Path", now)
    name = location = offline = False
    scope_paths: list[tuple[str, ...]] = []
    for p in paths:
        text = _text(p)
        if len(p) or not _PATH_RE.fullmatch(text):
            raise _bad(elem, f"bad select Path {text[:100]!r} (RQ-R12)", now)
        steps = text.split("/")[1:]
        head, rest = steps[0], steps[1:]
        if head == "Scope":
            scope_paths.append(tuple(s.lower() for s in rest))
        elif rest:
            continue
        elif head == "Name":
            name = True
        elif head == "Location":
            location = True
        elif head == "Offline":
            offline = True
    return SelectFilter(name, location, offline, tuple(scope_paths))


def _merge_select(a: SelectFilter | None, b: SelectFilter) -> SelectFilter:
    if a is None:
        return b
    paths = a.scope_paths + tuple(p for p in b.scope_paths if p not in a.scope_paths)
    if () in paths:
        paths = ((),)
    return SelectFilter(a.name or b.name, a.location or b.location, a.offline or b.offline,
                        paths)


# --------------------------------------------------------------------------- the filter


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
