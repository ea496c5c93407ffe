"""The location filter: resources within a radius of a point (RQ-13, RQ-R7)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import attrs
from lxml import etree

from ..geodesy import (
    MAX_MERIDIONAL_RADIUS,
    geodesic_distance,
    haversine_distance,
    parallel_radius,
    search_box,
)
from ..resources import GeoLocation, Resource
from ._common import _bad, _children, _text
from .xstypes import _xs_boolean, _xs_double, _xs_float

__all__ = ["LocationFilter", "Metric"]

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
        """True when the resource's location lies within the circle (unknown locations as
        configured).
        """
        return self._test(resource.location)


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
