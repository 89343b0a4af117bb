import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, Polygon

from cluster.engine.geo import haversine_km, unit_vectors
from cluster.engine.polygons import disc_vertices
from cluster.stages.boundaries import (
    cluster_extent,
    cluster_extent_km,
    cluster_polygon,
    counts_inside,
    largest_chord,
    sites_inside,
)


@pytest.mark.parametrize("lat, lon", [(0, 0), (60, 10), (-33.9, 151.2), (85, -179.99)])
def test_disc_vertices_are_at_the_radius(lat, lon):
    v = disc_vertices([lat], [lon], 7.5, 64)[0]
    d = haversine_km(lat, lon, v[:, 1], v[:, 0])
    np.testing.assert_allclose(d, 7.5, rtol=1e-9)


def test_polygon_contains_all_sites_and_is_valid():
    rng = np.random.default_rng(0)
    lat = 48.1 + rng.normal(0, 0.1, 200)
    lon = 11.5 + rng.normal(0, 0.1, 200)
    g = cluster_polygon(lat, lon, 5.0, 32)
    assert g.is_valid and g.geom_type in ("Polygon", "MultiPolygon")
    assert shapely.contains_xy(g, lon, lat).all()
    # Nothing farther than the radius from every site is inside (a point 6 km off the hull).
    far_lat = lat.max() + 6.0 / 111.195
    assert not g.contains(Point(lon[lat.argmax()], far_lat))


def test_cluster_across_the_antimeridian_is_split_and_valid():
    lat = np.array([-17.0, -17.02, -17.05])
    lon = np.array([179.97, -179.98, 179.99])
    g = cluster_polygon(lat, lon, 5.0, 32)
    assert g.is_valid and g.geom_type == "MultiPolygon" and len(g.geoms) == 2
    minx, _, maxx, _ = g.bounds
    assert minx == pytest.approx(-180) and maxx == pytest.approx(180)
    assert all(abs(b.bounds[2] - b.bounds[0]) < 1 for b in g.geoms)  # no part spans the globe
    assert shapely.contains_xy(g, lon, lat).all()
    # The area equals that of the same cluster moved away from the seam.
    moved = cluster_polygon(lat, lon - 180.0 + 0.0, 5.0, 32)
    assert g.area == pytest.approx(moved.area, rel=1e-6)


def test_disc_around_a_pole_is_a_cap():
    g = cluster_polygon([89.98], [45.0], 20.0, 32)
    assert g.is_valid and g.geom_type == "Polygon"
    assert g.contains(Point(45.0, 89.98)) and g.contains(Point(-135.0, 89.95))
    assert g.bounds[0] == pytest.approx(-180) and g.bounds[2] == pytest.approx(180)
    assert g.bounds[3] == pytest.approx(90)


def test_sites_inside_and_counts():
    a = cluster_polygon([10.0], [10.0], 5.0, 32)
    b = cluster_polygon([20.0], [20.0], 5.0, 32)
    sites = pd.DataFrame({
        "metric": pd.Categorical(["patents", "vc", "patents", "patents"]),
        "lat": [10.0, 10.01, 20.0, 0.0], "lon": [10.0, 10.0, 20.0, 0.0], "weight": [2.0, 3.0, 4.0, 5.0],
    })
    inside = sites_inside(sites, [a, b])
    assert inside.tolist() == [0, 0, 1, -1]
    counts = counts_inside(sites, inside, 2, ["patents", "vc"])
    assert counts.loc[0].tolist() == [2.0, 3.0] and counts.loc[1].tolist() == [4.0, 0.0]



def test_sites_inside_matches_an_strtree_query_edges_and_antimeridian_included():
    from shapely.geometry import box

    geoms = [box(0, 0, 1, 1), box(1, 0, 2, 1),  # touching along lon = 1
             cluster_polygon([-17.0, -17.02], [179.97, -179.98], 5.0, 32),  # split at +-180
             cluster_polygon([89.98], [45.0], 20.0, 32), Polygon()]
    rng = np.random.default_rng(5)
    lon = np.concatenate([rng.uniform(-0.5, 2.5, 3000), rng.uniform(179.8, 180.0, 500),
                          rng.uniform(-180.0, -179.8, 500), rng.uniform(-180, 180, 500), [1.0, 1.0, 0.5, 180.0]])
    lat = np.concatenate([rng.uniform(-0.5, 1.5, 3000), rng.uniform(-17.2, -16.8, 1000),
                          rng.uniform(89.7, 90.0, 500), [0.5, 1.0, 1.0, -17.01]])
    inside = sites_inside(pd.DataFrame({"lat": lat, "lon": lon}), geoms)
    # The reference: every (site, boundary) pair that intersects, the lowest boundary wins.
    site_idx, geom_idx = shapely.STRtree(geoms).query(shapely.points(lon, lat), predicate="intersects")
    expected = np.full(len(lat), -1)
    for i, k in sorted(zip(site_idx, geom_idx), reverse=True):
        expected[i] = k
    np.testing.assert_array_equal(inside, expected)
    assert inside[-4] == 0 and inside[-3] == 0  # on the shared edge, and a shared corner: the lower index
    assert set(np.unique(inside)) == {-1, 0, 1, 2, 3}
    assert not geoms[0].is_empty and not shapely.is_prepared(geoms[2])  # the caller's geometries untouched

def _brute_chord(xyz):
    return float(np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(axis=-1).max()))


@pytest.mark.parametrize("lat0, lon0, spread, n", [
    (48.1, 11.5, 0.5, 3000),      # a big city cluster: more locations than the old 2,000-vertex cap
    (-17.0, 179.9, 0.3, 500),     # across the antimeridian
    (89.5, 0.0, 0.3, 400),        # by the pole
    (10.0, 20.0, 60.0, 300),      # wider than 45 degrees: every pair compared
])
def test_largest_chord_is_the_exact_farthest_pair(lat0, lon0, spread, n):
    rng = np.random.default_rng(3)
    lat = np.clip(lat0 + rng.normal(0, spread, n), -90, 90)
    lon = lon0 + rng.normal(0, spread, n)
    xyz = unit_vectors(lat, lon)
    assert largest_chord(xyz) == _brute_chord(xyz)


def test_largest_chord_of_degenerate_sets():
    on_meridian = unit_vectors(np.linspace(40.0, 41.0, 50), np.full(50, 5.0))  # one great circle
    assert largest_chord(on_meridian) == _brute_chord(on_meridian)
    assert largest_chord(unit_vectors([1.0] * 6, [2.0] * 6)) == 0.0
    assert largest_chord(unit_vectors([1.0], [2.0])) == 0.0


def test_cluster_extent_and_top_share():
    lat = np.array([0.0, 0.0, 0.0, 10.0, 10.0])
    lon = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
    extent, top = cluster_extent(lat, lon, np.array([0, 0, 0, 1, 1]), 3, activity=np.array([1.0, 2.0, 1.0, 1.0, 1.0]))
    assert extent[0] == pytest.approx(haversine_km(0.0, 0.0, 0.0, 1.0), rel=1e-12)
    assert extent[1] == 0.0 and extent[2] == 0.0
    np.testing.assert_allclose(top, [0.75, 1.0, 0.0])


def test_cluster_extent_is_that_of_the_distinct_locations_in_any_order():
    # Sites of several metrics share locations; each cluster's extent is the largest
    # chord between its distinct locations (brute force here), whatever the rows' order.
    rng = np.random.default_rng(8)
    n = 3000
    lat = np.round(rng.normal(48.0, 0.2, n), 2)
    lon = np.round(rng.normal(11.0, 0.3, n), 2)
    cluster = (lon > 11.0).astype(np.int64) + 2 * (rng.random(n) < 0.05)
    extent = cluster_extent_km(lat, lon, cluster, 5)  # cluster 4 holds nothing
    for c in range(4):
        xyz = np.unique(unit_vectors(lat[cluster == c], lon[cluster == c]), axis=0)
        assert extent[c] == 2.0 * 6371.0088 * np.arcsin(min(_brute_chord(xyz) / 2.0, 1.0))
    assert extent[4] == 0.0
    perm = rng.permutation(n)
    assert extent.tobytes() == cluster_extent_km(lat[perm], lon[perm], cluster[perm], 5).tobytes()
    assert extent.tobytes() == cluster_extent(lat, lon, cluster, 5)[0].tobytes()
