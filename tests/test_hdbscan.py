"""Weighted HDBSCAN* on the sphere (cluster/engine/hdbscan.py) on hand-built cases, and
its agreement with scikit-learn's HDBSCAN (haversine) on unit weights."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import offsets_km

from cluster.config import load_config
from cluster.engine.hdbscan import hdbscan_sphere
from cluster.stages.clustering import cluster_metrics, overlay


def _blob(lat0, lon0, n, spread_km, rng):
    pts = [offsets_km(lat0, lon0, dx, dy) for dx, dy in rng.normal(0, spread_km, (n, 2))]
    return np.array(pts)


def _same_partition(a, b):
    """Same clusters and same noise, whatever the numbering."""
    if not np.array_equal(a < 0, b < 0):
        return False
    pairs = set(zip(a[a >= 0].tolist(), b[b >= 0].tolist()))
    return len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})


def test_two_blobs_and_noise():
    rng = np.random.default_rng(0)
    pts = np.vstack([_blob(48.0, 11.0, 40, 2.0, rng), _blob(52.0, 13.0, 30, 2.0, rng), [[0.0, 0.0], [-30.0, 60.0]]])
    labels, core = hdbscan_sphere(pts[:, 0], pts[:, 1], min_weight=5)
    assert labels[:40].tolist() == [0] * 40
    assert labels[40:70].tolist() == [1] * 30
    assert labels[70:].tolist() == [-1, -1]
    assert np.array_equal(core, labels >= 0)


def test_antimeridian_blob_is_one_cluster_and_longitude_is_periodic():
    rng = np.random.default_rng(1)
    west = _blob(-17.0, 179.98, 25, 1.5, rng)   # Fiji, across the antimeridian
    far = _blob(-17.0, 170.0, 25, 1.5, rng)
    pts = np.vstack([west, far])
    lon = ((pts[:, 1] + 180.0) % 360.0) - 180.0  # some longitudes wrap to -179.9x
    assert (lon[:25] < 0).any() and (lon[:25] > 0).any()
    labels, _ = hdbscan_sphere(pts[:, 0], lon, min_weight=4)
    assert len(set(labels[:25])) == 1 and labels[0] >= 0
    assert labels[25] != labels[0] and len(set(labels[25:])) == 1
    shifted, _ = hdbscan_sphere(pts[:, 0], lon + 360.0, min_weight=4)
    assert np.array_equal(shifted, labels)


def test_weight_equals_duplicated_points():
    rng = np.random.default_rng(2)
    pts = np.vstack([_blob(40.0, -74.0, 30, 3.0, rng), _blob(40.5, -73.0, 20, 3.0, rng),
                     _blob(35.0, 139.0, 5, 50, rng)])
    w = rng.integers(1, 4, len(pts))
    weighted, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], w.astype(float), min_weight=6, min_cluster_weight=8)
    rep = np.repeat(np.arange(len(pts)), w)
    unit, _ = hdbscan_sphere(pts[rep, 0], pts[rep, 1], min_weight=6, min_cluster_weight=8)
    # Copies of a point fold into one site: same labels as the weighted point.
    assert np.array_equal(unit[np.searchsorted(rep, np.arange(len(pts)))], weighted)
    assert weighted.max() >= 1


def test_fractional_weights_and_a_heavy_single_site():
    # A site heavier than the cluster weight alone is a cluster; light sites around are noise.
    lat = np.array([10.0, 10.0, 10.01, 30.0, 30.0, 30.02])
    lon = np.array([10.0, 10.01, 10.0, 30.0, 30.02, 30.0])
    w = np.array([0.5, 0.25, 0.25, 7.5, 0.1, 0.1])
    labels, _ = hdbscan_sphere(lat, lon, w, min_weight=1.0, min_cluster_weight=1.0)
    assert labels[0] == labels[1] == labels[2] >= 0  # 1.0 in all, exactly the threshold
    assert labels[3] >= 0 and labels[3] != labels[0]
    assert labels[4] == labels[3] or labels[4] == -1


def test_determinism_and_input_order():
    rng = np.random.default_rng(3)
    pts = np.vstack([_blob(48.0 + i, 2.0 + 2 * i, 30, 1.0 + 2 * i, rng) for i in range(4)])
    w = rng.uniform(0.2, 3.0, len(pts))
    a, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], w, min_weight=5.0)
    b, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], w, min_weight=5.0)
    assert np.array_equal(a, b)
    perm = rng.permutation(len(pts))
    c, _ = hdbscan_sphere(pts[perm, 0], pts[perm, 1], w[perm], min_weight=5.0)
    assert _same_partition(a[perm], c)


def test_floor_keeps_close_clusters_together():
    """Two blobs 12 km apart (and a third 500 km away, so that the pair is not the
    root): split with no floor, one cluster with a 20 km floor."""
    rng = np.random.default_rng(4)
    lat2, lon2 = offsets_km(45.0, 7.0, 12.0, 0.0)
    lat3, lon3 = offsets_km(45.0, 7.0, 500.0, 0.0)
    pts = np.vstack([_blob(45.0, 7.0, 60, 0.8, rng), _blob(lat2, lon2, 60, 0.8, rng), _blob(lat3, lon3, 60, 0.8, rng)])
    free, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], min_weight=5, min_cluster_weight=10)
    assert len({free[:60].max(), free[60:120].max(), free[120:].max()}) == 3
    floored, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], min_weight=5, min_cluster_weight=10, floor_km=20.0)
    pair = floored[:120]
    assert len(set(pair[pair >= 0])) == 1 and (pair >= 0).sum() > 100
    assert set(floored[120:][floored[120:] >= 0]) == {1}


@pytest.mark.parametrize("min_samples, min_cluster_size, selection", [
    (1, 5, "eom"), (2, 5, "eom"), (2, 8, "eom"), (1, 5, "leaf"), (2, 6, "leaf")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_scikit_learn_on_unit_weights(seed, min_samples, min_cluster_size, selection):
    """scikit-learn's HDBSCAN(metric="haversine") on the same points in radians.

    min_samples of 1 and 2 only: with more, many mutual-reachability distances tie
    (a point's core distance is the weight of many of its edges), and the merge order
    among equal distances, which decides the condensed tree, is arbitrary in both.
    """
    from sklearn.cluster import HDBSCAN

    rng = np.random.default_rng(seed)
    centers = rng.uniform([-60, -180], [60, 180], size=(5, 2))
    parts = [c + rng.normal(0, s, size=(m, 2))
             for c, s, m in zip(centers, rng.uniform(0.05, 1.0, 5), rng.integers(10, 80, 5))]
    pts = np.vstack(parts + [rng.uniform([-60, -180], [60, 180], size=(30, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, metric="haversine",
                      cluster_selection_method=selection).fit(np.radians(pts)).labels_
    ours, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], min_weight=min_samples,
                             min_cluster_weight=min_cluster_size, method=selection)
    assert _same_partition(ref, ours)


def test_bad_parameters():
    with pytest.raises(ValueError, match="min_weight"):
        hdbscan_sphere([0.0], [0.0], min_weight=0)
    with pytest.raises(ValueError, match="floor_km"):
        hdbscan_sphere([0.0], [0.0], min_weight=1, floor_km=-1)
    with pytest.raises(ValueError, match="method"):
        hdbscan_sphere([0.0], [0.0], min_weight=1, method="excess")
    with pytest.raises(ValueError, match="lat"):
        hdbscan_sphere([95.0], [0.0], min_weight=1)
    assert hdbscan_sphere([], [], min_weight=1)[0].shape == (0,)
    # Less weight than min_weight in all: all noise.
    assert hdbscan_sphere([0.0, 0.0], [0.0, 0.01], min_weight=3)[0].tolist() == [-1, -1]


def test_overlay_keeps_a_sparse_cluster_whole():
    """An HDBSCAN cluster need not be connected at eps_km; the overlay does not cut it
    (the old overlay, components at eps_km alone, split it in two)."""
    lat2, lon2 = offsets_km(48.0, 11.0, 50.0, 0.0)
    sites = pd.DataFrame({"metric_cluster": [0, 0, 1], "lat": [48.0, lat2, 20.0], "lon": [11.0, lon2, 20.0]})
    comp = overlay(sites, eps_km=10.0)
    assert comp.tolist() == [0, 0, 1]


def test_config_method_reaches_the_stage():
    rng = np.random.default_rng(5)
    pts = np.vstack([_blob(48.0, 11.0, 40, 2.0, rng), _blob(48.0, 12.0, 40, 2.0, rng)])
    sites = pd.DataFrame({"metric": pd.Categorical(["patents"] * len(pts), ["patents", "publications", "vc"]),
                          "lat": pts[:, 0], "lon": pts[:, 1], "weight": 1.0})
    totals = {"patents": float(len(pts)), "publications": 0.0, "vc": 0.0}
    for method in ("dbscan", "hdbscan"):
        config = load_config({"clustering": {"method": method, "eps_km": 3.0}},
                             {"min_weight": {"patents": 5.0}})
        out, thresholds = cluster_metrics(sites, config, totals)
        assert thresholds["patents"] == 5.0
        assert out["metric_cluster"].max() >= 1
        assert np.array_equal(out["core"].to_numpy(), out["metric_cluster"].to_numpy() >= 0) == (method == "hdbscan")
    config = load_config({"clustering": {"method": "hdbscan", "core_scale": 2}}, {"min_weight": {"patents": 5.0}})
    assert cluster_metrics(sites, config, totals)[1]["patents"] == 10.0
    with pytest.raises(Exception, match="method must be"):
        load_config({"clustering": {"method": "optics"}})


def test_many_heavy_single_sites():
    """Every site heavier than a cluster: each split makes two clusters, and the condensed
    tree holds more rows than twice the sites (the first version wrote past its end)."""
    rng = np.random.default_rng(6)
    lat = rng.uniform(40, 50, 400)
    lon = rng.uniform(0, 20, 400)
    w = rng.uniform(5, 50, 400)
    labels, _ = hdbscan_sphere(lat, lon, w, min_weight=3.0, floor_km=5.0)
    assert labels.min() >= 0 and labels.max() + 1 >= 2
    again, _ = hdbscan_sphere(lat, lon, w, min_weight=3.0, floor_km=5.0)
    assert np.array_equal(labels, again)


def test_two_level_dbscan_splits_dense_metros_and_keeps_sparse_ones():
    """Two dense towns joined by a thin corridor, and a sparse town far away: at the
    threshold the corridor joins the dense towns; at split_scale times it they come
    apart, the middle of the corridor (farther than eps_km from both) is a cluster of its
    own, and the sparse town, never that dense, stays a cluster."""
    rng = np.random.default_rng(8)
    a = _blob(40.0, -75.0, 80, 2.0, rng)
    lat_b, lon_b = offsets_km(40.0, -75.0, 60.0, 0.0)
    b = _blob(lat_b, lon_b, 80, 2.0, rng)
    corridor = np.array([offsets_km(40.0, -75.0, x, 0.0) for x in np.arange(6.0, 56.0, 4.0)])
    lat_c, lon_c = offsets_km(40.0, -75.0, 0.0, 300.0)
    sparse = np.array([offsets_km(lat_c, lon_c, 3.0 * i, 0.0) for i in range(6)])
    pts = np.vstack([a, b, corridor, sparse])
    n_a, n_b, n_c = 80, 80, len(corridor)
    sites = pd.DataFrame({"metric": pd.Categorical(["patents"] * len(pts), ["patents", "publications", "vc"]),
                          "lat": pts[:, 0], "lon": pts[:, 1], "weight": 1.0})
    totals = {"patents": float(len(pts)), "publications": 0.0, "vc": 0.0}
    plain = load_config({"clustering": {"eps_km": 5.0}}, {"min_weight": {"patents": 3.0}})
    lab = cluster_metrics(sites, plain, totals)[0]["metric_cluster"].to_numpy()
    assert lab[0] == lab[n_a] >= 0  # one cluster through the corridor
    two = load_config({"clustering": {"eps_km": 5.0, "split_scale": 4}}, {"min_weight": {"patents": 3.0}})
    out = cluster_metrics(sites, two, totals)[0]
    lab = out["metric_cluster"].to_numpy()
    a_lab, b_lab = set(lab[:n_a][lab[:n_a] >= 0]), set(lab[n_a:n_a + n_b][lab[n_a:n_a + n_b] >= 0])
    assert len(a_lab) == 1 and len(b_lab) == 1 and a_lab != b_lab
    middle = lab[n_a + n_b + 3:n_a + n_b + n_c - 3]  # > 5 km from both towns' dense cores
    assert len(set(middle)) == 1 and middle[0] >= 0 and middle[0] not in a_lab | b_lab
    s_lab = lab[-6:]
    assert len(set(s_lab)) == 1 and s_lab[0] >= 0 and s_lab[0] not in a_lab | b_lab | {middle[0]}
    # Clusters numbered 0, 1, ... by their first site, as DBSCAN numbers them.
    assert sorted(set(lab[lab >= 0])) == [0, 1, 2, 3] and lab[0] == 0
    # The overlay leaves them apart: where a cluster was split, only core sites are kept.
    assert len(set(overlay(out, two.eps_km)[lab >= 0])) == 4
    with pytest.raises(Exception, match="split_scale applies"):
        load_config({"clustering": {"method": "hdbscan", "split_scale": 2}})


def _brute_core_chords(xyz, w, k_weight):
    """Core chords by sorting every site's distances to all sites (the definition)."""
    from scipy.spatial.distance import cdist

    d = cdist(xyz, xyz)
    order = np.argsort(d, axis=1, kind="stable")
    cum = np.cumsum(w[order], axis=1)
    first = np.argmax(cum >= k_weight * (1 - 1e-9), axis=1)
    return np.take_along_axis(d, order, axis=1)[np.arange(len(w)), first]


@pytest.mark.parametrize("k_weight", [0.5, 3.0, 40.0])
def test_core_chords_match_the_definition(k_weight):
    """The kd-tree search against sorting all distances: weights of 0 to 3 (zeros
    included), sites on a coarse grid (many equal distances), one very heavy site."""
    import cluster.engine.hdbscan as engine
    from cluster.engine.geo import unit_vectors

    rng = np.random.default_rng(9)
    lat, lon = np.round(rng.uniform(40, 50, 1500), 1), np.round(rng.uniform(0, 20, 1500), 1)
    w = rng.choice([0.0, 0.1, 1.0, 3.0], 1500)
    w[7] = 100.0
    xyz = unit_vectors(lat, lon)
    ours = engine.core_chords(xyz, w, k_weight)
    assert np.isfinite(ours).all() and ours[7] == 0.0
    np.testing.assert_allclose(ours, _brute_core_chords(xyz, w, k_weight), rtol=1e-12, atol=1e-15)
    assert np.isinf(engine.core_chords(xyz[:3], np.ones(3), 4.0)).all()


@pytest.mark.parametrize("seed, min_weight", [(0, 1.0), (1, 4.0), (2, 25.0), (3, 4.0)])
def test_spanning_tree_is_minimum(seed, min_weight):
    """Borůvka's tree on the kd-tree weighs what Prim's algorithm on the complete
    mutual-reachability graph (dense, computed in full) weighs, and is a tree; seed 3
    puts the sites on a grid, where many edges tie. (scipy's minimum_spanning_tree on
    the dense matrix is not the reference: on seed 0 it returns a heavier tree.)"""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import cdist

    import cluster.engine.hdbscan as engine
    from cluster.engine.geo import unit_vectors

    rng = np.random.default_rng(seed)
    n = 1200
    if seed == 3:
        lat, lon = np.divmod(rng.choice(60 * 60, n, replace=False), 60)
        lat, lon = 40 + 0.05 * lat, 5 + 0.05 * lon
    else:
        centers = rng.uniform([-60, -180], [60, 180], size=(6, 2))
        pts = np.vstack([c + rng.normal(0, s, (n // 8, 2)) for c, s in zip(centers, [0.1, 0.5, 2, 0.05, 1, 3])]
                        + [rng.uniform([-60, -180], [60, 180], (n - 6 * (n // 8), 2))])
        lat, lon = pts[:, 0], pts[:, 1]
    w = rng.uniform(0.2, 3.0, n) if seed else np.ones(n)
    xyz = unit_vectors(lat, lon)
    core, (a, b, d2) = engine._mst(xyz, w, min_weight)
    d = cdist(xyz, xyz)
    mr = np.maximum(np.maximum(d * d, (core * core)[:, None]), (core * core)[None, :])
    np.fill_diagonal(mr, np.inf)
    ref, done, best = 0.0, np.zeros(n, bool), mr[0].copy()  # Prim, from site 0
    done[0] = True
    for _ in range(n - 1):
        k = int(np.argmin(np.where(done, np.inf, best)))
        ref += best[k]
        done[k] = True
        best = np.minimum(best, mr[k])
    assert len(a) == n - 1 and np.isclose(d2.sum(), ref, rtol=1e-12)
    np.testing.assert_allclose(d2, mr[a, b], rtol=1e-12)
    assert (np.diff(d2) >= 0).all()
    tree = np.zeros((n, n))
    tree[a, b] = 1
    assert connected_components(tree, directed=False)[0] == 1


def test_many_sites_on_one_thread_and_on_all():
    """More sites than one chunk of searches (cluster.engine.hdbscan._CHUNK_SITES): the
    labels are the same on one thread and on all, and sampled core chords match the
    definition (distances to all sites, sorted)."""
    import numba

    import cluster.engine.hdbscan as engine
    from cluster.engine.geo import unit_vectors

    rng = np.random.default_rng(10)
    n = 3 * engine._CHUNK_SITES
    centers = rng.uniform([30, -10], [55, 30], size=(40, 2))
    pts = centers[rng.integers(0, 40, n)] + rng.normal(0, 0.3, (n, 2)) * rng.uniform(0.1, 2, (n, 1))
    w = rng.choice([0.5, 1.0, 2.0, 20.0], n, p=[0.3, 0.4, 0.25, 0.05])
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], w, min_weight=60.0, floor_km=5.0)
    finally:
        numba.set_num_threads(threads)
    every, _ = hdbscan_sphere(pts[:, 0], pts[:, 1], w, min_weight=60.0, floor_km=5.0)
    assert np.array_equal(one, every) and every.max() >= 5
    xyz = unit_vectors(pts[:, 0], pts[:, 1])
    core = engine.core_chords(xyz, w, 60.0)
    for i in rng.choice(n, 200, replace=False):
        d = np.linalg.norm(xyz - xyz[i], axis=1)
        order = np.argsort(d, kind="stable")
        reach = np.argmax(np.cumsum(w[order]) >= 60.0 * (1 - 1e-9))
        assert np.isclose(core[i], d[order][reach], rtol=1e-12, atol=1e-15)
