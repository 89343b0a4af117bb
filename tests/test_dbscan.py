"""Tests for :mod:`cluster.engine.dbscan`: equivalence with scikit-learn, invariances, errors.

The reference is scikit-learn's ``DBSCAN(metric="haversine", algorithm="ball_tree")`` on
``np.radians([lat, lon])`` with ``eps = eps_km / 6371.0088`` and ``sample_weight``.
Core masks, the grouping of core points and the noise set must match exactly. Border
points, where DBSCAN itself is order-dependent, are checked against the documented tie
rule (nearest core point by the haversine expression, ties to the lowest index).

Weights are integers or multiples of 1/8 wherever two computations must agree exactly:
their sums are exact in any order, so no comparison hinges on summation order (which
scikit-learn and this module choose differently). Generic random floats are used where
a tie is a probability-zero event.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.cluster import DBSCAN

from cluster.engine import dbscan as dbscan_module
from cluster.engine.dbscan import dbscan_sphere
from cluster.engine.estimator import SphericalDBSCAN
from cluster.engine.geo import EARTH_RADIUS_KM, unit_vectors

# --------------------------------------------------------------------------------------
# Reference and checks
# --------------------------------------------------------------------------------------


def sklearn_dbscan(lat, lon, weight, eps_km, min_weight):
    """scikit-learn's labels and core mask; ``min_weight`` may be fractional."""
    X = np.radians(np.column_stack([lat, lon]))
    # min_samples is validated as an integer, but fit only compares the neighbourhood
    # weight with it (>=), so a float threshold means what it says.
    with sklearn.config_context(skip_parameter_validation=True):
        est = DBSCAN(eps=eps_km / EARTH_RADIUS_KM, min_samples=min_weight, metric="haversine",
                     algorithm="ball_tree").fit(X, sample_weight=weight)
    core = np.zeros(len(X), dtype=bool)
    core[est.core_sample_indices_] = True
    return est.labels_, core


def reduced_haversine(lat_r, lon_r, i, j):
    """scikit-learn's rdist with libm sin/cos, in radians."""
    s0 = math.sin(0.5 * (lat_r[i] - lat_r[j]))
    s1 = math.sin(0.5 * (lon_r[i] - lon_r[j]))
    return s0 * s0 + math.cos(lat_r[i]) * math.cos(lat_r[j]) * s1 * s1


def reduced_radius(eps_km):
    s = math.sin(0.5 * (eps_km / EARTH_RADIUS_KM))
    return s * s


def same_partition(a, b) -> bool:
    """Whether two label arrays group the points identically (names aside)."""
    a, b = np.asarray(a), np.asarray(b)
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def check_labels_follow_the_rules(lat, lon, labels, core, eps_km):
    """Border points take the cluster of their nearest core point within reach (ties to
    the lowest index); clusters are numbered by their lowest-index core point."""
    lat_r, lon_r = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    reduced = reduced_radius(eps_km)
    core_idx = np.flatnonzero(core)
    for i in np.flatnonzero(~core):
        # numpy narrows the candidates; libm decides, as the module does.
        s0 = np.sin(0.5 * (lat_r[i] - lat_r[core_idx]))
        s1 = np.sin(0.5 * (lon_r[i] - lon_r[core_idx]))
        rough = s0 * s0 + np.cos(lat_r[i]) * np.cos(lat_r[core_idx]) * s1 * s1
        near = [(reduced_haversine(lat_r, lon_r, i, j), j)
                for j in core_idx[rough <= reduced * (1 + 1e-6) + 1e-300]]
        near = [(d, j) for d, j in near if d <= reduced]
        if not near:
            assert labels[i] == -1, f"point {i} has no core point within reach"
            continue
        _, best = min(near)
        assert labels[i] == labels[best], f"border point {i}: not its nearest core's cluster"
        assert labels[i] >= 0
    # Numbering: the k-th cluster is the one whose lowest core index is k-th lowest.
    firsts = [int(core_idx[labels[core_idx] == k].min()) for k in range(labels.max() + 1)]
    assert firsts == sorted(firsts)
    assert labels.dtype == np.int64 and core.dtype == bool


def assert_matches_sklearn(lat, lon, weight, eps_km, min_weight):
    labels, core = dbscan_sphere(lat, lon, weight, eps_km=eps_km, min_weight=min_weight)
    ref_labels, ref_core = sklearn_dbscan(lat, lon, weight, eps_km, min_weight)
    np.testing.assert_array_equal(core, ref_core, err_msg="core masks differ")
    assert same_partition(labels[core], ref_labels[core]), "core partitions differ"
    np.testing.assert_array_equal(labels == -1, ref_labels == -1, err_msg="noise sets differ")
    check_labels_follow_the_rules(lat, lon, labels, core, eps_km)
    return labels, core


# --------------------------------------------------------------------------------------
# Random inputs
# --------------------------------------------------------------------------------------


def _clustered(rng, n, centres, spread_deg):
    k = rng.integers(0, len(centres), n)
    lat = np.clip(centres[k, 0] + rng.normal(0, spread_deg, n), -90, 90)
    coslat = np.maximum(np.cos(np.radians(lat)), 1e-3)
    lon = centres[k, 1] + rng.normal(0, spread_deg, n) / coslat
    return lat, lon


def make_case(kind: str, seed: int):
    """(lat, lon, weight, eps_km, min_weight) of one random scenario."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 250))
    eighths = rng.integers(0, 17, n) / 8.0
    if kind == "duplicates":  # city-level geocoding: coordinates on a 0.05 degree grid
        centres = np.column_stack([rng.uniform(-60, 60, 4), rng.uniform(-180, 180, 4)])
        lat, lon = _clustered(rng, n, centres, 0.1)
        lat, lon = np.round(lat / 0.05) * 0.05, np.round(lon / 0.05) * 0.05
        return lat, lon, None, 10.0, float(rng.integers(2, 12))
    if kind == "fractional":
        centres = np.column_stack([rng.uniform(-60, 60, 3), rng.uniform(-180, 180, 3)])
        lat, lon = _clustered(rng, n, centres, 0.08)
        lat, lon = np.round(lat, 2), np.round(lon, 2)
        return lat, lon, eighths, 8.0, float(rng.integers(8, 60)) / 8.0
    if kind == "generic":  # arbitrary floats: no sum lands exactly on the threshold
        centres = np.column_stack([rng.uniform(-80, 80, 3), rng.uniform(-180, 180, 3)])
        lat, lon = _clustered(rng, n, centres, 0.3)
        return lat, lon, rng.uniform(0, 2, n), 25.0, float(rng.uniform(0.5, 8))
    if kind == "antimeridian":  # both sides, and longitudes written beyond +-180
        lat = rng.uniform(-10, 10, n)
        lon = 180.0 + rng.normal(0, 0.15, n)
        lon = np.where(lon > 180, lon - 360, lon)
        lon = lon + 360.0 * rng.integers(-1, 2, n)
        lat, lon = np.round(lat, 2), np.round(lon, 3)
        return lat, lon, eighths, 12.0, float(rng.integers(8, 40)) / 8.0
    if kind == "poles":  # including the poles themselves, at any longitude
        lat = 90.0 - np.abs(rng.normal(0, 0.2, n))
        lat[rng.random(n) < 0.5] *= -1
        lat[rng.random(n) < 0.1] = rng.choice([90.0, -90.0])
        lon = rng.uniform(-180, 180, n)
        lat, lon = np.round(lat, 3), np.round(lon, 1)
        return lat, lon, eighths, 15.0, float(rng.integers(4, 40)) / 8.0
    if kind == "tiny":  # 1 mm to 1 m, below the grid's smallest cell (about 12 m)
        eps_km = float(rng.choice([1e-6, 1e-5, 1e-3]))
        step = eps_km / 111.0 * rng.uniform(0.3, 1.5)  # grid spacing near eps, in degrees
        base = rng.uniform(-70, 70), rng.uniform(-180, 180)
        lat = base[0] + rng.integers(-6, 7, n) * step
        lon = base[1] + rng.integers(-6, 7, n) * step
        return lat, lon, eighths, eps_km, float(rng.integers(8, 40)) / 8.0
    if kind == "huge":  # the grid degenerates to a handful of cells
        lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        lon = rng.uniform(-180, 180, n)
        eps_km = float(rng.choice([3000.0, 9000.0, 15000.0, 20000.0]))
        return lat, lon, eighths, eps_km, float(rng.uniform(0.2, 0.8)) * eighths.sum()
    if kind == "noise":  # nothing reaches the threshold
        lat, lon = rng.uniform(-60, 60, n), rng.uniform(-180, 180, n)
        return lat, lon, eighths, 50.0, 1e6
    raise ValueError(kind)


KINDS = ["duplicates", "fractional", "generic", "antimeridian", "poles", "tiny", "huge", "noise"]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("kind", KINDS)
def test_matches_sklearn_on_random_inputs(kind, seed):
    lat, lon, weight, eps_km, min_weight = make_case(kind, seed)
    if weight is not None and weight.sum() == 0:
        weight[0] = 1.0  # scikit-learn refuses all-zero weights
    labels, core = assert_matches_sklearn(lat, lon, weight, eps_km, min_weight)
    if kind == "noise":
        assert not core.any() and (labels == -1).all()


def test_one_point_and_empty_input():
    assert_matches_sklearn([12.5], [-40.0], [3.0], 10.0, 2.0)
    assert_matches_sklearn([12.5], [-40.0], [1.0], 10.0, 2.0)
    labels, core = dbscan_sphere([], [], eps_km=10.0, min_weight=1.0)
    assert labels.shape == (0,) and labels.dtype == np.int64
    assert core.shape == (0,) and core.dtype == bool


def test_city_scale_input_against_sklearn():
    """A few thousand sites over many grid cells, with heavy duplication."""
    rng = np.random.default_rng(7)
    centres = np.column_stack([rng.uniform(-50, 60, 40), rng.uniform(-180, 180, 40)])
    lat, lon = _clustered(rng, 6000, centres, 0.12)
    lat, lon = np.round(lat, 2), np.round(lon, 2)
    labels, _ = assert_matches_sklearn(lat, lon, None, 10.0, 12.0)
    assert labels.max() >= 10


@pytest.mark.slow
def test_many_duplicated_records_equal_sites_with_summed_weights():
    """1.3 M records on 3,000 sites give the result of the unique sites carrying their
    summed weights (what scikit-learn is usually run on)."""
    rng = np.random.default_rng(3)
    centres = np.column_stack([rng.uniform(-50, 60, 30), rng.uniform(-180, 180, 30)])
    site_lat, site_lon = _clustered(rng, 3000, centres, 0.1)
    site_lat, site_lon = np.round(site_lat, 2), np.round(site_lon, 2)
    pick = rng.integers(0, site_lat.size, 1_300_000)
    lat, lon = site_lat[pick], site_lon[pick]
    weight = rng.integers(0, 9, pick.size) / 4.0
    labels, core = dbscan_sphere(lat, lon, weight, eps_km=10.0, min_weight=900.0)

    uniq, first, inverse = np.unique(np.column_stack([lat, lon]), axis=0, return_index=True,
                                     return_inverse=True)
    inverse = inverse.ravel()
    site_w = np.bincount(inverse, weights=weight)
    ref_labels, ref_core = sklearn_dbscan(uniq[:, 0], uniq[:, 1], site_w, 10.0, 900.0)
    np.testing.assert_array_equal(core, ref_core[inverse])
    assert same_partition(labels[core], ref_labels[inverse][core])
    np.testing.assert_array_equal(labels == -1, ref_labels[inverse] == -1)
    assert core.any() and (~core).any()
    # Every record of a site gets the site's label.
    np.testing.assert_array_equal(labels, labels[first][inverse])


def test_fold_grows_its_hash_table_correctly():
    """The duplicate fold against np.unique, from a table small enough to grow often."""
    rng = np.random.default_rng(5)
    lat = rng.integers(-9000, 9001, 60_000) / 100.0
    lon = rng.integers(-200, 200, 60_000) / 100.0  # about 20,000 distinct pairs
    lat[:5], lon[:5] = -0.0, 0.0  # -0.0 is 0.0
    weight = rng.integers(0, 5, lat.size) / 2.0
    codes = np.empty(lat.size, np.int64)
    first, site_weight = dbscan_module._fold_duplicates(
        lat.view(np.uint64), lon.view(np.uint64), weight, codes, dbscan_module._empty_table(0))
    _, ref_first, ref_inverse = np.unique(np.column_stack([lat + 0.0, lon]), axis=0,
                                          return_index=True, return_inverse=True)
    ref_inverse = ref_inverse.ravel()
    assert first.size == ref_first.size > 10_000
    np.testing.assert_array_equal(first, np.sort(ref_first))
    # Same grouping of records, sites numbered by first appearance, exact weight sums.
    assert same_partition(codes, ref_inverse)
    np.testing.assert_array_equal(codes[first], np.arange(first.size))
    np.testing.assert_array_equal(site_weight, np.bincount(codes, weights=weight))


def test_threads_do_not_change_the_result(monkeypatch):
    """The parallel passes (normally for 65,536+ sites) give what one thread gives."""
    rng = np.random.default_rng(9)
    centres = np.column_stack([rng.uniform(-50, 60, 60), rng.uniform(-180, 180, 60)])
    lat, lon = _clustered(rng, 20_000, centres, 0.1)
    lat, lon = np.round(lat, 2), np.round(lon, 2)
    weight = rng.uniform(0, 2, lat.size)
    serial = dbscan_sphere(lat, lon, weight, eps_km=10.0, min_weight=15.0)
    monkeypatch.setattr(dbscan_module, "_PARALLEL_MIN_SITES", 1)
    monkeypatch.setattr(dbscan_module, "_PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr(dbscan_module, "_threads", lambda: 3)
    parallel = dbscan_sphere(lat, lon, weight, eps_km=10.0, min_weight=15.0)
    np.testing.assert_array_equal(parallel[0], serial[0])
    np.testing.assert_array_equal(parallel[1], serial[1])
    assert serial[1].any() and (serial[0] == -1).any() and (~serial[1] & (serial[0] >= 0)).any()


# --------------------------------------------------------------------------------------
# The decision boundary
# --------------------------------------------------------------------------------------


def _last_inside(lat, lon, eps_km, vary, far):
    """Largest change of coordinate ``vary`` (0 = latitude, 1 = longitude) of the
    second point, from (lat, lon) towards ``far`` (degrees), that keeps the pair within
    reach as scikit-learn evaluates it: reduced haversine of np.radians(degrees)."""
    reduced = reduced_radius(eps_km)

    def inside(value):
        p = np.array([[lat, lon], [lat, lon]])
        p[1, vary] = value
        r = np.radians(p)
        return reduced_haversine(r[:, 0], r[:, 1], 0, 1) <= reduced

    lo, hi = (lat, lon)[vary], far
    assert inside(lo) and not inside(hi)
    while True:
        mid = lo + (hi - lo) / 2
        if mid in (lo, hi):
            return lo
        lo, hi = (mid, hi) if inside(mid) else (lo, mid)


@pytest.mark.parametrize("eps_km, lat, lon, vary", [
    (0.01, 0.0, 10.0, 0), (0.01, 51.3, 10.0, 0), (0.01, -89.99, 10.0, 0),
    (10.0, 0.0, 10.0, 0), (10.0, 51.3, 10.0, 0), (10.0, -89.99, 10.0, 0),
    (1234.5, 0.0, 10.0, 0), (1234.5, 51.3, 10.0, 0), (19000.0, -89.99, 10.0, 0),
    (10.0, 60.0, 179.95, 1), (0.01, -35.0, 179.99999, 1), (3000.0, 10.0, 170.0, 1),
])
def test_pairs_at_the_radius_are_decided_like_sklearn(eps_km, lat, lon, vary):
    """A pair exactly at the boundary (last float inside, first float outside) is
    decided by the same reduced-haversine comparison as scikit-learn's BallTree leaf
    test, also across the antimeridian (vary = 1 moves east past 180). A weightless
    third point keeps BallTree from accepting the pair wholesale by its node bounds."""
    span = math.degrees(eps_km / EARTH_RADIUS_KM) * 1.01
    if vary == 1:
        span /= math.cos(math.radians(lat))
    inside = _last_inside(lat, lon, eps_km, vary, (lat, lon)[vary] + span)
    outside = np.nextafter(inside, np.inf)
    for value, expected in ((inside, True), (outside, False)):
        second = [lat, lon]
        second[vary] = value
        lats, lons = [lat, second[0], -20.0], [lon, second[1], -150.0]
        _, core = assert_matches_sklearn(lats, lons, [1.0, 1.0, 0.0], eps_km, 2.0)
        assert core[:2].tolist() == [expected, expected]
        if vary == 1:  # the same meridian written west of the antimeridian
            lons[1] -= 360.0
            assert_matches_sklearn(lats, lons, [1.0, 1.0, 0.0], eps_km, 2.0)


def test_antimeridian_and_pole_neighbours():
    # 180 and -180 (and 540) are one meridian; all longitudes meet at a pole.
    lat = [0.0, 0.0, 0.0, 0.05, 90.0, 90.0, 89.99]
    lon = [180.0, -180.0, 540.0, -179.96, 0.0, 123.0, -60.0]
    labels, core = assert_matches_sklearn(lat, lon, None, 10.0, 3.0)
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_negative_zero_is_folded_with_zero():
    labels, core = dbscan_sphere([0.0, -0.0, 40.0], [-0.0, 0.0, 40.0], eps_km=0.001,
                                 min_weight=2.0)
    assert core.tolist() == [True, True, False] and labels.tolist() == [0, 0, -1]


def test_threshold_is_inclusive_and_fractional():
    lat, lon = [10.0, 10.0, 10.001], [20.0, 20.0, 20.0]
    _, core = dbscan_sphere(lat, lon, [0.5, 0.25, 0.25], eps_km=1.0, min_weight=1.0)
    assert core.all()
    # Ties are decided with a relative tolerance of CORE_RTOL (1e-9): a threshold a
    # millionth of a document above the weight is missed, one a few ulps above is reached.
    _, core = dbscan_sphere(lat, lon, [0.5, 0.25, 0.25], eps_km=1.0, min_weight=1.0 + 1e-6)
    assert not core.any()
    _, core = dbscan_sphere(lat, lon, [0.5, 0.25, 0.25], eps_km=1.0, min_weight=1.0 + 2**-40)
    assert core.all()


def test_zero_weights():
    # A weightless site is core when its neighbours carry the weight; with no weight at
    # all nothing is core (scikit-learn refuses that input; the answer is still clear).
    lat, lon = [0.0, 0.0, 0.01, 0.5], [0.0, 0.01, 0.0, 0.5]
    assert_matches_sklearn(lat, lon, [0.0, 2.0, 1.0, 0.0], 2.0, 3.0)
    labels, core = dbscan_sphere(lat, lon, np.zeros(4), eps_km=2.0, min_weight=1.0)
    assert not core.any() and (labels == -1).all()


def test_radius_beyond_half_the_circumference_is_the_whole_sphere():
    rng = np.random.default_rng(1)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))
    lon = rng.uniform(-180, 180, 200)
    for eps_km in (math.pi * EARTH_RADIUS_KM, 25_000.0, 1e9):
        labels, core = dbscan_sphere(lat, lon, eps_km=eps_km, min_weight=200.0)
        assert core.all() and (labels == 0).all()
        _, core = dbscan_sphere(lat, lon, eps_km=eps_km, min_weight=200.5)
        assert not core.any()


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])

grid_points = st.lists(
    st.tuples(st.integers(-12, 12), st.integers(-12, 12), st.integers(0, 12)),
    min_size=1, max_size=60)


def _grid_input(points, centre_lat, centre_lon, step_deg):
    """Points on a small lat/lon grid (duplicates likely), weights in quarters."""
    a = np.array(points, dtype=float)
    lat = np.clip(centre_lat + a[:, 0] * step_deg, -90, 90)
    lon = centre_lon + a[:, 1] * step_deg
    return lat, lon, a[:, 2] / 4.0


centres = st.tuples(st.sampled_from([0.0, 45.0, -33.0, 89.9, -89.95]),
                    st.sampled_from([0.0, 179.95, -179.95, 100.0]))


@PROPERTY_SETTINGS
@given(points=grid_points, centre=centres, step=st.sampled_from([0.01, 0.03, 0.1]),
       min_weight=st.sampled_from([0.75, 2.0, 3.5, 6.0]), data=st.data())
def test_permuting_the_input_keeps_the_partition(points, centre, step, min_weight, data):
    lat, lon, w = _grid_input(points, *centre, step)
    perm = np.array(data.draw(st.permutations(range(len(lat)))), dtype=np.int64)
    labels, core = dbscan_sphere(lat, lon, w, eps_km=5.0, min_weight=min_weight)
    labels_p, core_p = dbscan_sphere(lat[perm], lon[perm], w[perm], eps_km=5.0,
                                     min_weight=min_weight)
    np.testing.assert_array_equal(core_p, core[perm])
    assert same_partition(labels_p[core_p], labels[perm][core_p])
    np.testing.assert_array_equal(labels_p == -1, labels[perm] == -1)


@PROPERTY_SETTINGS
@given(points=grid_points, centre=centres, step=st.sampled_from([0.01, 0.03, 0.1]),
       min_weight=st.sampled_from([0.75, 2.0, 3.5, 6.0]), data=st.data())
def test_duplicating_a_site_equals_doubling_its_weight(points, centre, step, min_weight, data):
    lat, lon, w = _grid_input(points, *centre, step)
    k = data.draw(st.integers(0, len(lat) - 1))
    doubled = w.copy()
    doubled[k] *= 2
    labels_d, core_d = dbscan_sphere(np.append(lat, lat[k]), np.append(lon, lon[k]),
                                     np.append(w, w[k]), eps_km=5.0, min_weight=min_weight)
    labels_w, core_w = dbscan_sphere(lat, lon, doubled, eps_km=5.0, min_weight=min_weight)
    np.testing.assert_array_equal(labels_d[:-1], labels_w)
    np.testing.assert_array_equal(core_d[:-1], core_w)
    assert labels_d[-1] == labels_d[k] and core_d[-1] == core_d[k]


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), eps_km=st.sampled_from([2.0, 30.0, 500.0]))
def test_rotating_the_sphere_keeps_the_partition(seed, eps_km):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    centres = np.column_stack([rng.uniform(-89, 89, 3), rng.uniform(-180, 180, 3)])
    lat, lon = _clustered(rng, n, centres, 1.5 * math.degrees(eps_km / EARTH_RADIUS_KM))
    w = rng.uniform(0.1, 2.0, n)
    xyz = unit_vectors(lat, lon)
    # Generic data only: no distance near the radius, no weight sum near the threshold.
    dist = 2 * np.arcsin(np.clip(np.linalg.norm(xyz[:, None] - xyz[None], axis=2) / 2, 0, 1))
    eps = eps_km / EARTH_RADIUS_KM
    assume(np.abs(dist - eps).min() > 1e-7 * eps)
    sums = ((dist <= eps) * w).sum(axis=1)
    min_weight = float(np.median(sums)) + 1e-3
    assume(np.abs(sums - min_weight).min() > 1e-6)

    rotated = xyz @ _random_rotation(rng).T
    rlat = np.degrees(np.arcsin(np.clip(rotated[:, 2], -1, 1)))
    rlon = np.degrees(np.arctan2(rotated[:, 1], rotated[:, 0]))
    labels, core = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=min_weight)
    labels_r, core_r = dbscan_sphere(rlat, rlon, w, eps_km=eps_km, min_weight=min_weight)
    np.testing.assert_array_equal(core_r, core)
    assert same_partition(labels_r, labels)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------

POINTS = ([10.0, 10.1], [20.0, 20.1])


@pytest.mark.parametrize("eps_km", [0, -1, float("nan"), float("inf"), "10", None, True])
def test_bad_eps_km(eps_km):
    with pytest.raises(ValueError, match=r"The 'eps_km' parameter of dbscan_sphere must be "
                                         r"a float in \(0, inf\)\. Got .* instead\."):
        dbscan_sphere(*POINTS, eps_km=eps_km, min_weight=1.0)


def test_bad_eps_km_message_shows_the_value():
    with pytest.raises(ValueError, match=r"^The 'eps_km' parameter of dbscan_sphere must be a "
                                         r"float in \(0, inf\)\. Got -1 instead\.$"):
        dbscan_sphere(*POINTS, eps_km=-1, min_weight=1.0)


@pytest.mark.parametrize("min_weight", [0, -2.5, float("nan"), float("inf")])
def test_bad_min_weight(min_weight):
    with pytest.raises(ValueError, match=r"'min_weight' parameter of dbscan_sphere must be a "
                                         r"float in \(0, inf\)"):
        dbscan_sphere(*POINTS, eps_km=10.0, min_weight=min_weight)


@pytest.mark.parametrize("weight, got", [([1.0, -1.0], r"-1\.0 at index 1"),
                                         ([np.nan, 1.0], r"nan at index 0"),
                                         ([1.0, np.inf], r"inf at index 1")])
def test_bad_weights(weight, got):
    with pytest.raises(ValueError, match=r"The 'weight' parameter of dbscan_sphere must hold "
                                         r"finite weights >= 0\. Got " + got + " instead"):
        dbscan_sphere(*POINTS, weight, eps_km=10.0, min_weight=1.0)


def test_bad_weight_length():
    with pytest.raises(ValueError, match=r"'weight' parameter .* one weight per point \(2\)\. "
                                         r"Got 3 weights"):
        dbscan_sphere(*POINTS, [1.0, 1.0, 1.0], eps_km=10.0, min_weight=1.0)


@pytest.mark.parametrize("lat, lon, match", [
    ([np.nan, 1.0], [0.0, 0.0], r"'lat' parameter .* finite latitudes in \[-90, 90\] degrees\. "
                                r"Got nan at index 0"),
    ([0.0, 90.5], [0.0, 0.0], r"'lat' parameter .* Got 90\.5 at index 1"),
    ([0.0, -np.inf], [0.0, 0.0], r"'lat' parameter .* Got -inf at index 1"),
    ([0.0, 0.0], [0.0, np.nan], r"'lon' parameter .* finite longitudes in degrees\. "
                                r"Got nan at index 1"),
    ([0.0, 0.0], [np.inf, 0.0], r"'lon' parameter .* Got inf at index 0"),
    ([0.0, 0.0], [0.0], r"'lon' parameter .* one value per latitude \(2\)\. Got 1 values"),
    ([[0.0, 0.0]], [0.0], r"'lat' parameter .* array of shape \(n,\)"),
    (["a", "b"], [0.0, 0.0], r"'lat' parameter .* array of numbers"),
])
def test_bad_coordinates(lat, lon, match):
    with pytest.raises(ValueError, match=match):
        dbscan_sphere(lat, lon, eps_km=10.0, min_weight=1.0)


def test_estimator_errors_name_the_estimator():
    with pytest.raises(ValueError, match=r"'eps_km' parameter of SphericalDBSCAN .* Got -3 instead"):
        SphericalDBSCAN(eps_km=-3, min_weight=1.0).fit([[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"'X' parameter of SphericalDBSCAN must be an array of "
                                         r"shape \(n, 2\)"):
        SphericalDBSCAN(eps_km=1.0, min_weight=1.0).fit([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"'X' parameter .* latitudes .* column 0\. "
                                         r"Got 95\.0 at row 1"):
        SphericalDBSCAN(eps_km=1.0, min_weight=1.0).fit([[0.0, 0.0], [95.0, 0.0]])
    with pytest.raises(ValueError, match=r"'sample_weight' parameter of SphericalDBSCAN .* "
                                         r"Got -1\.0 at index 0"):
        SphericalDBSCAN(eps_km=1.0, min_weight=1.0).fit([[0.0, 0.0]], sample_weight=[-1.0])


# --------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------


def test_estimator_matches_the_function():
    lat, lon, weight, eps_km, min_weight = make_case("fractional", 11)
    labels, core = dbscan_sphere(lat, lon, weight, eps_km=eps_km, min_weight=min_weight)
    est = SphericalDBSCAN(eps_km=eps_km, min_weight=min_weight)
    X = np.column_stack([lat, lon])
    assert est.fit(X, sample_weight=weight) is est
    np.testing.assert_array_equal(est.labels_, labels)
    np.testing.assert_array_equal(est.core_sample_indices_, np.flatnonzero(core))
    np.testing.assert_array_equal(est.components_, X[core])
    assert est.core_sample_indices_.dtype == np.int64 and est.n_features_in_ == 2
    np.testing.assert_array_equal(est.fit_predict(X, sample_weight=weight), labels)
    assert core.any() and (labels == -1).any()


def test_estimator_is_a_plain_sklearn_estimator():
    est = SphericalDBSCAN(eps_km=5.0, min_weight=2.5)
    assert est.get_params() == {"eps_km": 5.0, "min_weight": 2.5}
    twin = clone(est).set_params(eps_km=7.0)
    assert twin.eps_km == 7.0 and est.eps_km == 5.0
    with pytest.raises(TypeError):
        SphericalDBSCAN(5.0, 2.5)  # keyword-only, like scikit-learn's estimators
    # Parameters are validated in fit, not in __init__.
    SphericalDBSCAN(eps_km=-1, min_weight=0)


def _fraction_world(seed, n_sites=200):
    """Sites on a coarse grid (many exact neighbourhoods) with weights 1/k, k in 1..6, so
    sums hit thresholds exactly in exact arithmetic; scaled by 60 they are integers."""
    rng = np.random.default_rng(seed)
    lat = 45.0 + rng.integers(0, 12, n_sites) * 0.01
    lon = 7.0 + rng.integers(0, 12, n_sites) * 0.01
    k = rng.integers(1, 7, n_sites)
    return lat, lon, 1.0 / k, 60 // k


TIE_EPS_KM = 1.2
TIE_THRESHOLDS = [1.0, 1.5, 2.0, 3.0]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", TIE_THRESHOLDS)
def test_exact_ties_equal_sklearn_on_integer_weights(seed, threshold):
    """A fractional neighbourhood weight that equals the threshold in exact arithmetic makes
    a site core, whatever the order of summation: the core mask equals scikit-learn's on
    the same points with weights scaled to integers (whose sums are exact)."""
    from sklearn.cluster import DBSCAN

    lat, lon, w, w60 = _fraction_world(seed)
    eps_km = TIE_EPS_KM
    _, core = dbscan_sphere(lat, lon, w, eps_km=eps_km, min_weight=threshold)
    X = np.radians(np.column_stack([lat, lon]))
    ref = DBSCAN(eps=eps_km / 6371.0088, min_samples=int(threshold * 60), metric="haversine",
                 algorithm="ball_tree").fit(X, sample_weight=w60)
    expected = np.zeros(len(lat), bool)
    expected[ref.core_sample_indices_] = True
    assert (core == expected).all()
    # and the same for any order of the points
    perm = np.random.default_rng(seed + 100).permutation(len(lat))
    _, core_perm = dbscan_sphere(lat[perm], lon[perm], w[perm], eps_km=eps_km, min_weight=threshold)
    assert (core_perm == expected[perm]).all()


def test_exact_ties_are_common_in_the_fraction_world():
    # The test above is only worth something if ties happen, and if plain floating-point
    # sums get some of them wrong: count both.
    from scipy.spatial import cKDTree

    from cluster.engine.geo import chord_for_km, unit_vectors

    ties = float_misses = 0
    for seed in range(6):
        lat, lon, w, w60 = _fraction_world(seed)
        tree = cKDTree(unit_vectors(lat, lon))
        for j in tree.query_ball_point(unit_vectors(lat, lon), chord_for_km(TIE_EPS_KM)):
            exact = int(w60[j].sum())
            for t in TIE_THRESHOLDS:
                if exact == t * 60:
                    ties += 1
                    float_misses += sum(w[q] for q in sorted(j)) < t
    assert ties >= 30 and float_misses >= 1


# ---- numba's cache --------------------------------------------------------------------

_RUN_ONCE = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
             "from cluster.engine.dbscan import dbscan_sphere, compile_cache_state; "
             "print(compile_cache_state()[0]); dbscan_sphere([0.0, 0.0], [0.0, 0.01], eps_km=5, min_weight=1); "
             "print(compile_cache_state()[0])")


@pytest.mark.slow
def test_first_run_announces_the_compilation_and_later_runs_use_the_cache(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", _RUN_ONCE], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    assert runs[0].stdout.split() == ["False", "True"]  # cold, then compiled
    assert "compiling the clustering engine once" in runs[0].stderr and str(tmp_path) in runs[0].stderr
    assert runs[1].stdout.split() == ["True", "True"]  # loaded from the cache: nothing to say
    assert "compiling" not in runs[1].stderr
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))


def test_cache_lives_under_the_user_cache_or_a_writable_fallback(tmp_path, monkeypatch):
    import numba

    from cluster import _runtime

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    assert _runtime.numba_cache_dir() == str(tmp_path / "innovation-clusters" / "numba")
    assert numba.config.CACHE_DIR == str(tmp_path / "innovation-clusters" / "numba")
    assert (tmp_path / "innovation-clusters" / "numba").is_dir()
    # A read-only home: a folder of the user's in the temporary directory.
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    real = _runtime._writable
    monkeypatch.setattr(_runtime, "_writable", lambda d: "innovation-clusters-numba" in str(d) and real(d))
    assert "innovation-clusters-numba" in _runtime.numba_cache_dir()
    # NUMBA_CACHE_DIR, when set, wins: nothing is changed.
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert _runtime.numba_cache_dir() == str(tmp_path / "mine")
    assert numba.config.CACHE_DIR == ""


def test_cache_state_is_warm_once_the_kernels_ran():
    dbscan_sphere([0.0, 0.0], [0.0, 0.01], eps_km=5, min_weight=1)
    warm, directory = dbscan_module.compile_cache_state()
    assert warm is True and directory
