"""Ellipsoidal distance and the conservative search box (RQ-R7, RQ-R8, OQ-21).

GeographicLib (``Geodesic.WGS84``) is the oracle: every distance must agree
with it to 1 mm.
"""

from __future__ import annotations

import math
import random

import pytest
from geographiclib.geodesic import Geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from uplink62676.query.geodesy import (
    geodesic_distance,
    haversine_distance,
    search_box,
)

G = Geodesic.WGS84

# RQ-R8 vectors: centre (lon, lat), resource (lon, lat), radius, geodesic, default result,
# haversine distance.
RQ_R8 = [
    ((0, 0), (0, 0.00090), 100, 99.5168, True, 100.0756),
    ((0, 0), (0, 0.00091), 100, 100.6226, False, 101.1875),
    ((0, 60), (0, 60.00089), 100, 99.1569, True, 98.9636),
    ((0, 60), (0, 60.00090), 100, 100.2711, False, 100.0756),
    ((179.99955, 0), (-179.99956, 0), 100, 99.0743, True, 98.9636),
    ((179.99955, 0), (-179.99955, 0), 100, 100.1875, False, 100.0756),
    ((179.9995, 0), (-179.9995, 0), 100, 111.3195, False, 111.1951),
    ((179.9995, 0), (-179.9995, 0), 111.5, 111.3195, True, 111.1951),
    ((0, 89.99955), (180, 89.99956), 100, 99.4076, True, 98.9636),
    ((0, 89.99955), (180, 89.99955), 100, 100.5246, False, 100.0756),
]


@pytest.mark.parametrize(("centre", "point", "radius", "geo", "inside", "hav"), RQ_R8)
def test_rq_r8_vectors(centre, point, radius, geo, inside, hav) -> None:
    """RQ-R7, RQ-R8: the digest's distance vectors, both metrics, to 0.1 mm."""
    (lon1, lat1), (lon2, lat2) = centre, point
    d = geodesic_distance(lat1, lon1, lat2, lon2)
    assert d == pytest.approx(geo, abs=1e-4)
    assert (d <= radius) is inside
    assert haversine_distance(lat1, lon1, lat2, lon2) == pytest.approx(hav, abs=1e-4)


def test_haversine_differs_from_ellipsoid_at_vector_1() -> None:
    """RQ-R7: the spherical option decides vector 1 differently (why it is not the default)."""
    assert geodesic_distance(0, 0, 0.0009, 0) <= 100 < haversine_distance(0, 0, 0.0009, 0)


def _oracle_cases() -> list[tuple[float, float, float, float]]:
    rnd = random.Random(62676)
    cases = []
    for i in range(3000):
        lat1, lon1 = rnd.uniform(-90, 90), rnd.uniform(-180, 180)
        kind = i % 4
        if kind == 0:
            lat2, lon2 = rnd.uniform(-90, 90), rnd.uniform(-180, 180)
        elif kind == 1:  # nearly antipodal: where Vincenty alone fails
            lat2 = -lat1 + rnd.uniform(-1, 1) * 10 ** rnd.uniform(-8, 0)
            lon2 = lon1 + 180 + rnd.uniform(-1, 1) * 10 ** rnd.uniform(-8, 0.5)
        elif kind == 2:  # city scale
            lat2, lon2 = lat1 + rnd.uniform(-0.05, 0.05), lon1 + rnd.uniform(-0.05, 0.05)
        else:  # poles, equator, meridians
            lat2 = rnd.choice([0.0, 90.0, -90.0, lat1, -lat1])
            lon2 = rnd.choice([lon1, lon1 + 180, lon1 + 179.5, rnd.uniform(-180, 180)])
        cases.append((lat1, lon1, max(-90.0, min(90.0, lat2)), lon2))
    cases += [(0, 0, 0, 180), (0, 0, 0, 179.5), (0, 0, 0.5, 179.7), (-90, 0, 90, 0),
              (90, 0, -90, 33), (-30, 0, 30, 180), (0, 0, 0, 0), (45, 10, 45, 10)]
    return cases


def test_agrees_with_geographiclib_everywhere() -> None:
    """RQ-R7: within 1 mm of GeographicLib, including antipodes, poles and the antimeridian."""
    worst = 0.0
    for lat1, lon1, lat2, lon2 in _oracle_cases():
        ref = G.Inverse(lat1, lon1, lat2, lon2)["s12"]
        worst = max(worst, abs(geodesic_distance(lat1, lon1, lat2, lon2) - ref))
    assert worst < 1e-3


@settings(max_examples=300, deadline=None)
@given(st.floats(-90, 90), st.floats(-180, 180), st.floats(-90, 90), st.floats(-180, 180))
def test_agrees_with_geographiclib_property(lat1, lon1, lat2, lon2) -> None:
    """RQ-R7: random points, symmetric, within 1 mm of the oracle."""
    ref = G.Inverse(lat1, lon1, lat2, lon2)["s12"]
    d = geodesic_distance(lat1, lon1, lat2, lon2)
    assert abs(d - ref) < 1e-3
    assert abs(geodesic_distance(lat2, lon2, lat1, lon1) - d) < 1e-3


@pytest.mark.parametrize("lat", [-89.9, -75.0, -30.0, 0.0, 32.0436, 60.0, 80.0, 89.9])
@pytest.mark.parametrize("azimuth", [0.0, 37.0, 90.0, 180.0, 270.0])
@pytest.mark.parametrize("radius", [100.0, 5000.0])
def test_boundary_both_sides_at_many_latitudes(lat, azimuth, radius) -> None:
    """RQ-R7, RQ-R8: 2 mm inside the circle matches, 2 mm outside does not."""
    lon = 179.999 if azimuth == 90.0 else 10.0  # east-bound points cross the antimeridian
    for s, inside in ((radius - 0.002, True), (radius + 0.002, False)):
        p = G.Direct(lat, lon, azimuth, s)
        d = geodesic_distance(lat, lon, p["lat2"], p["lon2"])
        assert (d <= radius) is inside
        box = search_box(lat, lon, radius)
        if inside:
            assert box.may_contain(p["lat2"], p["lon2"])


@settings(max_examples=400, deadline=None)
@given(st.floats(-90, 90), st.floats(-180, 180), st.floats(0, 2e6),
       st.floats(0, 360), st.floats(0, 1))
def test_search_box_is_conservative(lat, lon, radius, azimuth, frac) -> None:
    """RQ-R7: the bounding box never rejects a point inside the circle (poles, ±180° wrap)."""
    p = G.Direct(lat, lon, azimuth, radius * frac)
    lon2 = (p["lon2"] + 180.0) % 360.0 - 180.0
    assert search_box(lat, lon, radius).may_contain(p["lat2"], lon2)


def test_search_box_shapes() -> None:
    """RQ-R7: wrap at ±180° gives two ranges; a circle reaching a pole drops the longitude bound."""
    assert len(search_box(0.0, 179.9995, 100).lon_ranges) == 2
    assert len(search_box(0.0, -179.9995, 100).lon_ranges) == 2
    assert search_box(89.99955, 0.0, 100).lon_ranges == ()
    box = search_box(32.0, 118.0, 100)
    assert len(box.lon_ranges) == 1
    assert not box.may_contain(32.01, 118.0)
    assert not box.may_contain(32.0, 118.01)
    # The latitude half-width uses the smallest meridional radius (6 335 439 m).
    assert box.lat_max - 32.0 == pytest.approx(math.degrees(100 / 6335439.0), rel=1e-5)


def test_zero_distance_and_symmetry() -> None:
    """RQ-R7: a point is 0 m from itself, whatever its longitude spelling."""
    assert geodesic_distance(10, 20, 10, 20) == 0.0
    assert geodesic_distance(0, 180, 0, -180) == pytest.approx(0.0, abs=1e-6)
    assert geodesic_distance(90, 0, 90, 123) == pytest.approx(0.0, abs=1e-6)
