"""Distances on the WGS 84 ellipsoid for the location filter (RQ-R7, OQ-21).

ONVIF geo locations are WGS 84 coordinates, so the location filter measures
the geodesic distance on the ellipsoid, not on a sphere.  Vincenty's inverse
method is used where it converges (everything except nearly antipodal
points, typically in 2-4 iterations for city-sized distances).  For nearly
antipodal points, where Vincenty's fixed-point iteration fails, the same
series are evaluated in Karney's parametrisation and the azimuth is found by
bisection, which always converges.  Both agree with GeographicLib to well
below a millimetre.

Coordinates are given as ``(lat, lon)`` in degrees; results in metres.
:func:`search_box` gives the conservative bounding box of RQ-R7 used to
reject most points before any trigonometry.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

__all__ = [
    "HAVERSINE_RADIUS",
    "MAX_MERIDIONAL_RADIUS",
    "WGS84_A",
    "WGS84_F",
    "SearchBox",
    "geodesic_distance",
    "haversine_distance",
    "parallel_radius",
    "search_box",
]

WGS84_A: Final = 6_378_137.0
WGS84_F: Final = 1 / 298.257223563
_B: Final = WGS84_A * (1 - WGS84_F)
_E2: Final = WGS84_F * (2 - WGS84_F)
_EP2: Final = (WGS84_A * WGS84_A - _B * _B) / (_B * _B)
#: Smallest meridional radius of curvature (at the equator), a(1 - e^2).
_M_MIN: Final = WGS84_A * (1 - _E2)
#: Largest meridional radius of curvature (at the poles), a / sqrt(1 - e^2).
MAX_MERIDIONAL_RADIUS: Final = WGS84_A / math.sqrt(1 - _E2)
#: Mean Earth radius used by the non-default haversine option (RQ-R7).
HAVERSINE_RADIUS: Final = 6_371_008.8
_TINY: Final = math.sqrt(2.2250738585072014e-308)
_RAD: Final = math.pi / 180.0


def _reduced(lat: float) -> tuple[float, float]:
    """sin and cos of the reduced latitude of ``lat`` (degrees)."""
    phi = lat * _RAD
    s = (1 - WGS84_F) * math.sin(phi)
    c = math.cos(phi)
    if abs(lat) == 90.0:
        c = 0.0
    h = math.hypot(s, c)
    return s / h, max(c / h, _TINY)


def _series_distance(cos2_alpha: float, sigma: float, sin_s: float, cos_s: float,
                     cos2sm: float) -> float:
    u2 = cos2_alpha * _EP2
    big_a = 1 + u2 / 16384 * (4096 + u2 * (-768 + u2 * (320 - 175 * u2)))
    big_b = u2 / 1024 * (256 + u2 * (-128 + u2 * (74 - 47 * u2)))
    c2 = cos2sm * cos2sm
    d_sigma = big_b * sin_s * (
        cos2sm
        + big_b / 4 * (cos_s * (-1 + 2 * c2)
                       - big_b / 6 * cos2sm * (-3 + 4 * sin_s * sin_s) * (-3 + 4 * c2))
    )
    return _B * big_a * (sigma - d_sigma)


def _vincenty(su1: float, cu1: float, su2: float, cu2: float, lam_e: float) -> float | None:
    """Vincenty's inverse; ``None`` when it does not converge (near antipodes)."""
    sin, cos, sqrt, atan2 = math.sin, math.cos, math.sqrt, math.atan2
    f = WGS84_F
    lam = lam_e
    for _ in range(60):
        sl, cl = sin(lam), cos(lam)
        t1 = cu2 * sl
        t2 = cu1 * su2 - su1 * cu2 * cl
        sin_s = sqrt(t1 * t1 + t2 * t2)
        if sin_s == 0.0:
            if su1 * su2 + cu1 * cu2 * cl > 0:
                return 0.0
            return None  # exactly antipodal on the auxiliary sphere
        cos_s = su1 * su2 + cu1 * cu2 * cl
        sigma = atan2(sin_s, cos_s)
        sin_a = cu1 * cu2 * sl / sin_s
        cos2a = 1 - sin_a * sin_a
        cos2sm = cos_s - 2 * su1 * su2 / cos2a if cos2a > 1e-300 else 0.0
        c = f / 16 * cos2a * (4 + f * (4 - 3 * cos2a))
        prev = lam
        lam = lam_e + (1 - c) * f * sin_a * (
            sigma + c * sin_s * (cos2sm + c * cos_s * (-1 + 2 * cos2sm * cos2sm))
        )
        if lam > math.pi:
            return None
        if abs(lam - prev) < 1e-13:
            return _series_distance(cos2a, sigma, sin_s, cos_s, cos2sm)
    return None


def _antipodal(sb1: float, cb1: float, sb2: float, cb2: float, lam_e: float) -> float:
    """Inverse problem by bisection on the start azimuth (Karney's parametrisation).

    Requires sb1 <= 0, |sb2| <= |sb1| and 0 <= lam_e <= pi; then the
    ellipsoidal longitude difference grows monotonically with the azimuth
    from 0 (due north) to pi (due south over the pole).
    """
    f = WGS84_F
    sqrt, atan2, hypot, sin, cos = math.sqrt, math.atan2, math.hypot, math.sin, math.cos

    def solve(alpha1: float) -> tuple[float, float]:
        sa1, ca1 = sin(alpha1), cos(alpha1)
        sa0 = sa1 * cb1
        if cb2 != cb1 or abs(sb2) != -sb1:
            inner = (ca1 * cb1) ** 2 + (cb2 - cb1) * (cb1 + cb2)
            ca2 = sqrt(max(0.0, inner)) / cb2
        else:
            ca2 = abs(ca1)
        ss1, cs1 = sb1, ca1 * cb1
        h = hypot(ss1, cs1)
        ss1, cs1 = ss1 / h, cs1 / h
        ss2, cs2 = sb2, ca2 * cb2
        h = hypot(ss2, cs2)
        ss2, cs2 = ss2 / h, cs2 / h
        sig12 = atan2(max(0.0, cs1 * ss2 - ss1 * cs2), cs1 * cs2 + ss1 * ss2)
        so1, co1 = sa0 * sb1, ca1 * cb1
        so2, co2 = sa0 * sb2, ca2 * cb2
        omg12 = atan2(max(0.0, co1 * so2 - so1 * co2), co1 * co2 + so1 * so2)
        cos2a = 1 - sa0 * sa0
        two_sm = atan2(ss1, cs1) * 2 + sig12
        cos2sm = cos(two_sm)
        c = f / 16 * cos2a * (4 + f * (4 - 3 * cos2a))
        sin_s, cos_s = sin(sig12), cos(sig12)
        lam = omg12 - (1 - c) * f * sa0 * (
            sig12 + c * sin_s * (cos2sm + c * cos_s * (-1 + 2 * cos2sm * cos2sm))
        )
        return lam, _series_distance(cos2a, sig12, sin_s, cos_s, cos2sm)

    lo, hi = 0.0, math.pi
    dist = 0.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lam, dist = solve(mid)
        if lam < lam_e:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return dist


def parallel_radius(lat: float) -> float:
    """Radius of the parallel at geodetic latitude ``lat`` (degrees), N(lat) cos(lat)."""
    phi = lat * _RAD
    sphi = math.sin(phi)
    return max(0.0, WGS84_A * math.cos(phi) / math.sqrt(1 - _E2 * sphi * sphi))


def _wrap180(x: float) -> float:
    y = math.fmod(x, 360.0)
    if y > 180.0:
        y -= 360.0
    elif y < -180.0:
        y += 360.0
    return y


def geodesic_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance in metres between two WGS 84 points (degrees).

    Agrees with GeographicLib's ``Geodesic.WGS84.Inverse`` to better than
    0.1 mm everywhere, including across the antimeridian, over the poles and
    for nearly antipodal points.
    """
    if lat1 == lat2 and lon1 == lon2:
        return 0.0
    dlon = abs(_wrap180(lon2 - lon1))
    su1, cu1 = _reduced(lat1)
    su2, cu2 = _reduced(lat2)
    d = _vincenty(su1, cu1, su2, cu2, dlon * _RAD)
    if d is not None:
        return d
    # Canonical order for the fallback: |lat1| >= |lat2| and lat1 <= 0.
    if abs(lat1) < abs(lat2):
        su1, cu1, su2, cu2 = su2, cu2, su1, cu1
    if su1 > 0:
        su1, su2 = -su1, -su2
    return _antipodal(su1, cu1, su2, cu2, dlon * _RAD)


def haversine_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance on the sphere of radius 6 371 008.8 m (non-default option)."""
    p1, p2 = lat1 * _RAD, lat2 * _RAD
    dp = p2 - p1
    dl = _wrap180(lon2 - lon1) * _RAD
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * HAVERSINE_RADIUS * math.asin(min(1.0, math.sqrt(h)))


@attrs.frozen(slots=True)
class SearchBox:
    """Conservative bounding box around a circle (RQ-R7).

    A point outside the box is certainly farther than the radius; a point
    inside may or may not be.  ``lon_ranges`` is empty when longitude cannot
    bound the circle (it reaches a pole or spans the whole globe); it has two
    ranges when the box crosses the antimeridian.
    """

    lat_min: float
    lat_max: float
    lon_ranges: tuple[tuple[float, float], ...]

    def may_contain(self, lat: float, lon: float) -> bool:
        """False only if the point is certainly outside the circle."""
        if not self.lat_min <= lat <= self.lat_max:
            return False
        if not self.lon_ranges:
            return True
        return any(lo <= lon <= hi for lo, hi in self.lon_ranges)


def search_box(lat: float, lon: float, radius: float) -> SearchBox:
    """Bounding box of the geodesic circle of ``radius`` metres around a point.

    Latitude is bounded with the smallest meridional radius of curvature
    (any path between two latitudes is at least as long as the meridian arc,
    which is at least ``M_min`` times the latitude difference); longitude with
    the smallest parallel radius within that latitude band.  A relative
    margin of 1e-9 plus 1e-9 degrees absorbs rounding.
    """
    dlat = math.degrees(radius / _M_MIN) * (1 + 1e-9) + 1e-9
    lat_min, lat_max = lat - dlat, lat + dlat
    if lat_max >= 90.0 or lat_min <= -90.0:
        return SearchBox(max(lat_min, -90.0), min(lat_max, 90.0), ())
    parallel = parallel_radius(max(abs(lat_min), abs(lat_max)))
    dlon = math.degrees(radius / parallel) * (1 + 1e-9) + 1e-9
    if dlon >= 180.0:
        return SearchBox(lat_min, lat_max, ())
    lo, hi = lon - dlon, lon + dlon
    if lo < -180.0:
        ranges: tuple[tuple[float, float], ...] = ((-180.0, hi), (lo + 360.0, 180.0))
    elif hi > 180.0:
        ranges = ((lo, 180.0), (-180.0, hi - 360.0))
    else:
        ranges = ((lo, hi),)
    return SearchBox(lat_min, lat_max, ranges)
