"""Discs left out of a cluster's union before it is computed (cluster.engine.cover).

The union of the kept discs must be the same point set as the union of all: geometrically
equal (symmetric difference a vanishing share of the area), whatever the latitude, across
the antimeridian and near a pole; discs really are dropped where they overlap densely; a
disc whose removal would open a hole is kept; and the answer does not depend on the
order of the sites.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from cluster.engine.cover import covered_discs
from cluster.engine.geo import EARTH_RADIUS_KM
from cluster.engine.polygons import disc_union, disc_vertices
from cluster.stages.boundaries import build_boundaries, cluster_polygon, sites_inside

RADIUS_KM = 5.0


def _scatter(rng, n, lat0, lon0, half_km):
    """``n`` sites uniformly in a square of half-side ``half_km`` about (lat0, lon0)."""
    dlat = np.degrees(half_km / EARTH_RADIUS_KM)
    dlon = dlat / max(np.cos(np.radians(lat0)), 1e-3)
    lat = lat0 + rng.uniform(-dlat, dlat, n)
    lon = lon0 + rng.uniform(-dlon, dlon, n)
    return np.clip(lat, -90, 90), (lon + 180.0) % 360.0 - 180.0


def _rel_symdiff(a, b) -> float:
    return shapely.area(shapely.symmetric_difference(a, b)) / shapely.area(a)


def _dropped(lat, lon):
    """covered_discs as disc_union calls it: longitudes unwrapped around the first site."""
    lon_u = (lon - lon[0] + 180.0) % 360.0 - 180.0 + lon[0]
    return covered_discs(lat, lon_u, disc_vertices(lat, lon_u, RADIUS_KM, 32), RADIUS_KM)


CASES = {
    "dense, mid-latitude": (400, 45.0, 10.0, 25.0),
    "dense, southern": (300, -33.9, 151.2, 20.0),
    "sparse": (60, 52.0, 0.0, 30.0),
    "across the antimeridian": (300, -16.5, 179.97, 20.0),
    "on the equator at the antimeridian": (300, 0.0, 180.0, 20.0),
    "high latitude": (300, 78.0, -40.0, 20.0),
    "near the north pole": (200, 89.9, 30.0, 12.0),
    "around the south pole": (200, -89.97, 0.0, 6.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pruned_union_is_the_same_point_set(name):
    n, lat0, lon0, half_km = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    lat, lon = _scatter(rng, n, lat0, lon0, half_km)
    pruned, polar = disc_union(lat, lon, RADIUS_KM, 32)
    full, polar_full = disc_union(lat, lon, RADIUS_KM, 32, prune=False)
    assert polar == polar_full
    assert pruned.is_valid and _rel_symdiff(full, pruned) < 1e-9
    # In EPSG:4326 too, and every site inside its boundary.
    out = cluster_polygon(lat, lon, RADIUS_KM, 32)
    assert out.is_valid and shapely.intersects_xy(out, lon, lat).all()


@pytest.mark.parametrize("segments", [8, 64, 100])
def test_any_number_of_segments(segments):
    rng = np.random.default_rng(segments)
    lat, lon = _scatter(rng, 300, 10.0, 20.0, 20.0)
    rings = disc_vertices(lat, lon, RADIUS_KM, segments)
    assert covered_discs(lat, lon, rings, RADIUS_KM).mean() > 0.3
    pruned, _ = disc_union(lat, lon, RADIUS_KM, segments)
    assert _rel_symdiff(disc_union(lat, lon, RADIUS_KM, segments, prune=False)[0], pruned) < 1e-9


@pytest.mark.parametrize(("n", "half_km"), [(500, 25.0), (60, 12.0), (40, 10.0)])
def test_every_dropped_disc_lies_in_the_union_of_the_kept(n, half_km):
    # Sparse layouts too, where few discs overlap a dropped one: a corner taken as inside
    # a polygon when it is only inside its circumscribed circle (a 24 m sliver at 5 km and
    # 32 segments) drops a disc wrongly in some of these, and nothing hides it.
    for seed in range(40 if n < 100 else 1):
        rng = np.random.default_rng(seed)
        lat, lon = _scatter(rng, n, 45.0, 10.0, half_km)
        drop = _dropped(lat, lon)
        polys = shapely.polygons(disc_vertices(lat, lon, RADIUS_KM, 32))
        kept = shapely.union_all(polys[~drop])
        # A hair of slack (1e-11 degree, about a micrometre) for GEOS's own rounding.
        assert shapely.covers(kept.buffer(1e-11), polys[drop]).all(), seed


def test_discs_are_dropped_where_they_overlap_densely():
    rng = np.random.default_rng(3)
    lat, lon = _scatter(rng, 2000, 35.7, 139.7, 30.0)
    drop = _dropped(lat, lon)
    assert drop.mean() > 0.5
    # and where they barely overlap, none can be
    lat, lon = np.zeros(5), np.arange(5) * np.degrees(1.9 * RADIUS_KM / EARTH_RADIUS_KM)
    assert not _dropped(lat, lon).any()


def _ring_around_a_hole(n_ring=72):
    """A centre site and ``n_ring`` sites on a circle of 1.5 disc radii about it."""
    step = 1.5 * RADIUS_KM / EARTH_RADIUS_KM
    az = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
    lat0, lon0 = np.radians(48.0), np.radians(2.3)
    lat = np.arcsin(np.sin(lat0) * np.cos(step) + np.cos(lat0) * np.sin(step) * np.cos(az))
    lon = lon0 + np.arctan2(np.sin(az) * np.sin(step) * np.cos(lat0), np.cos(step) - np.sin(lat0) * np.sin(lat))
    return np.degrees(np.r_[lat0, lat]), np.degrees(np.r_[lon0, lon])


def test_a_disc_that_fills_a_hole_is_kept():
    lat, lon = _ring_around_a_hole()
    rings = disc_vertices(lat, lon, RADIUS_KM, 32)
    ring_union = shapely.union_all(shapely.polygons(rings[1:]))
    # The set-up: the ring's discs leave a hole about the centre, though they hold every
    # vertex of the centre's disc (a test of vertices alone would drop it).
    assert len(ring_union.interiors) == 1
    assert shapely.intersects_xy(ring_union, rings[0, :, 0], rings[0, :, 1]).all()
    assert not _dropped(lat, lon)[0]
    pruned, _ = disc_union(lat, lon, RADIUS_KM, 32)
    assert len(pruned.interiors) == 0
    assert _rel_symdiff(disc_union(lat, lon, RADIUS_KM, 32, prune=False)[0], pruned) < 1e-9
    # With more sites filling the hole, the centre's disc is covered (and dropped) again.
    rng = np.random.default_rng(11)
    flat, flon = _scatter(rng, 300, lat[0], lon[0], 6.0)
    lat2, lon2 = np.r_[lat, flat], np.r_[lon, flon]
    drop = _dropped(lat2, lon2)
    assert drop.any()
    assert _rel_symdiff(disc_union(lat2, lon2, RADIUS_KM, 32, prune=False)[0],
                        disc_union(lat2, lon2, RADIUS_KM, 32)[0]) < 1e-9


def test_the_same_sites_in_any_order_give_the_same_discs_and_bytes():
    rng = np.random.default_rng(5)
    lat, lon = _scatter(rng, 600, 37.5, 127.0, 25.0)
    drop = covered_discs(lat, lon, disc_vertices(lat, lon, RADIUS_KM, 32), RADIUS_KM)
    perm = rng.permutation(len(lat))
    drop_p = covered_discs(lat[perm], lon[perm], disc_vertices(lat[perm], lon[perm], RADIUS_KM, 32), RADIUS_KM)
    assert drop.sum() > 0 and np.array_equal(drop[perm], drop_p)
    # Two clusters, their rows shuffled: the boundaries are byte for byte the same.
    lat2, lon2 = _scatter(rng, 400, 37.5, 128.0, 20.0)
    sites = pd.DataFrame({"lat": np.r_[lat, lat2], "lon": np.r_[lon, lon2]})
    component = np.r_[np.zeros(len(lat), int), np.ones(len(lat2), int)]
    first = build_boundaries(sites, component, RADIUS_KM, 32, threads=2)
    order = rng.permutation(len(sites))
    again = build_boundaries(sites.iloc[order].reset_index(drop=True), component[order], RADIUS_KM, 32, threads=1)
    assert [g.wkb for g in first] == [g.wkb for g in again]
    inside = sites_inside(sites, first)
    assert np.array_equal(inside, component)


def test_mismatched_shapes_are_refused():
    rings = disc_vertices([0.0, 0.0], [0.0, 0.01], RADIUS_KM, 32)
    with pytest.raises(ValueError, match="rings of shape"):
        covered_discs([0.0], [0.0], rings, RADIUS_KM)
