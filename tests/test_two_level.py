"""Two-level DBSCAN in the engine (``dbscan_sphere(..., split_scale=S)``) against the
straightforward composition it replaced: DBSCAN at the threshold and at S times it (two
calls), a kd-tree query for the remainder's distance to the dense cores, DBSCAN at weight 1
for the remainder's groups, clusters renumbered by their lowest index. Labels and core
flags must be identical, array for array, records with duplicates included.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from cluster.engine import dbscan as dbscan_module
from cluster.engine.dbscan import CORE_RTOL, dbscan_sphere
from cluster.engine.geo import chord_for_km, unit_vectors
from tests.test_dbscan import KINDS, _clustered, make_case


def reference_two_level(lat, lon, weight, eps_km, min_weight, split_scale):
    """Two DBSCAN passes, the split as ``cluster.stages.clustering._split`` did it, and the
    regrowth."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    weight = np.ones(len(lat)) if weight is None else np.asarray(weight, float)
    labels, core = dbscan_sphere(lat, lon, weight, eps_km=eps_km, min_weight=min_weight)
    if split_scale == 1.0 or not core.any():
        return labels, core
    dense, dense_core = dbscan_sphere(lat, lon, weight, eps_km=eps_km, min_weight=min_weight * split_scale)
    reached = np.zeros(int(labels.max()) + 1, bool)
    reached[labels[dense_core]] = True
    in_split = (labels >= 0) & reached[np.maximum(labels, 0)]
    keep = (labels >= 0) & ~in_split
    out = np.where(dense_core, dense, -1)
    next_label = int(dense.max()) + 1
    out[keep] = labels[keep] + next_label
    next_label += int(labels.max()) + 1
    out_core = np.where(keep, core, dense_core)
    rest = np.flatnonzero(in_split & core & ~dense_core)
    if len(rest):
        dist, _ = cKDTree(unit_vectors(lat[dense_core], lon[dense_core])).query(
            unit_vectors(lat[rest], lon[rest]), k=1, distance_upper_bound=chord_for_km(eps_km))
        rest = rest[~np.isfinite(dist)]
    if len(rest):
        groups, _ = dbscan_sphere(lat[rest], lon[rest], np.ones(len(rest)), eps_km=eps_km, min_weight=1.0)
        heavy = np.bincount(groups, weights=weight[rest]) >= min_weight * (1.0 - CORE_RTOL)
        take = heavy[groups]
        out[rest[take]] = groups[take] + next_label
        out_core[rest[take]] = True
    out = reference_regrowth(lat, lon, eps_km, labels, in_split, out)
    member = np.flatnonzero(out >= 0)
    if len(member):
        _, first, inverse = np.unique(out[member], return_index=True, return_inverse=True)
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(member[first], kind="stable")] = np.arange(len(first))
        out[member] = rank[inverse]
    return out, out_core


def reference_regrowth(lat, lon, eps_km, labels, in_split, out):
    """The split's clusters regain their region's sites in rounds (kd-tree queries): a
    site joins when all its members within eps_km are of one cluster of its own
    first-level cluster and no other site joining a different one is within eps_km."""
    out = out.copy()
    home = np.full(int(out.max()) + 1, -1, np.int64)
    home[out[out >= 0]] = labels[out >= 0]
    xyz, radius = unit_vectors(lat, lon), chord_for_km(eps_km)
    pending = np.flatnonzero(in_split & (out < 0))
    while len(pending):
        members = np.flatnonzero(out >= 0)
        near = cKDTree(xyz[members]).query_ball_point(xyz[pending], radius)
        seen = [set(out[members[j]]) for j in near]
        touched = np.array([len(x) > 0 for x in seen])
        if not touched.any():
            break
        to = np.array([min(x) if len(x) == 1 else -1 for x in seen])
        take = touched & (to >= 0)
        take[take] = home[to[take]] == labels[pending[take]]
        cand = np.flatnonzero(take)
        pairs = cKDTree(xyz[pending[cand]]).query_pairs(radius, output_type="ndarray")
        clash = to[cand[pairs[:, 0]]] != to[cand[pairs[:, 1]]]
        take[cand[pairs[clash].ravel()]] = False
        out[pending[take]] = to[take]
        pending = pending[~touched]
    return out


def assert_same(lat, lon, weight, eps_km, min_weight, split_scale):
    labels, core = dbscan_sphere(lat, lon, weight, eps_km=eps_km, min_weight=min_weight, split_scale=split_scale)
    ref_labels, ref_core = reference_two_level(lat, lon, weight, eps_km, min_weight, split_scale)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(core, ref_core)
    assert labels.dtype == np.int64 and core.dtype == np.bool_
    return labels, core


@pytest.mark.parametrize("split_scale", [1.5, 3.0])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", KINDS)
def test_matches_the_two_pass_reference_on_random_inputs(kind, seed, split_scale):
    lat, lon, weight, eps_km, min_weight = make_case(kind, seed)
    assert_same(lat, lon, weight, eps_km, min_weight, split_scale)


def _towns(seed):
    """Dense towns joined by sparse corridors, sparse towns, duplicated records: every
    branch of the split (dense clusters, remainders kept and dropped, whole clusters)."""
    rng = np.random.default_rng(seed)
    centres = np.column_stack([rng.uniform(40, 41, 12), rng.uniform(-75, -73, 12)])
    lat, lon = _clustered(rng, 4000, centres, 0.05)
    lat = np.concatenate([lat, rng.uniform(40, 41, 1500)])
    lon = np.concatenate([lon, rng.uniform(-75, -73, 1500)])
    lat, lon = np.round(lat, 2), np.round(lon, 2)
    return lat, lon, rng.integers(0, 9, lat.size) / 4.0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("eps_km", [3.0, 6.0, 12.0])
def test_matches_the_reference_on_towns_and_corridors(seed, eps_km):
    lat, lon, weight = _towns(seed)
    labels, core = assert_same(lat, lon, weight, eps_km, 6.0, 3.0)
    plain, _ = dbscan_sphere(lat, lon, weight, eps_km=eps_km, min_weight=6.0)
    if eps_km == 6.0:  # the case is not trivial: the split changes the clusters
        assert labels.max() != plain.max() or not np.array_equal(labels, plain)


def test_threads_do_not_change_the_two_level_result(monkeypatch):
    lat, lon, weight = _towns(11)
    serial = dbscan_sphere(lat, lon, weight, eps_km=6.0, min_weight=6.0, split_scale=3.0)
    monkeypatch.setattr(dbscan_module, "_PARALLEL_MIN_SITES", 1)
    monkeypatch.setattr(dbscan_module, "_PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr(dbscan_module, "_threads", lambda: 3)
    parallel = dbscan_sphere(lat, lon, weight, eps_km=6.0, min_weight=6.0, split_scale=3.0)
    np.testing.assert_array_equal(parallel[0], serial[0])
    np.testing.assert_array_equal(parallel[1], serial[1])


def test_remainder_distance_is_the_kd_tree_chord_test():
    """A remainder site right at the chord of eps_km from a dense core: decided as the
    kd-tree query bounded by that chord decides it (strictly below), on both sides."""
    eps_km = 5.0
    chord = chord_for_km(eps_km)
    taken = {}
    for step in (-1e-12, 0.0, 1e-12):
        # A dense town at longitude 0 (with a site west of it), a chain of core sites going
        # east from about eps_km, and a bridge north of the gap that joins them at the
        # threshold; none of them dense (16) but the town and its west site.
        chain = np.degrees(2 * np.arcsin((chord + step) / 2)) + np.arange(6) * 0.04
        lat = np.concatenate([[0.0, 0.0, 0.02], np.zeros(6)])
        lon = np.concatenate([[0.0, -0.04, chain[0] / 2], chain])
        weight = np.concatenate([[14.5, 1.5, 0.5], np.full(6, 0.4)])
        labels, core = assert_same(lat, lon, weight, eps_km, 1.0, 16.0)
        plain, _ = dbscan_sphere(lat, lon, weight, eps_km=eps_km, min_weight=1.0)
        assert (plain[:8] == 0).all() and labels[0] >= 0
        taken[step] = labels[3] >= 0
        # The bridge touches the town and, when it is taken, the chain's first site: then it
        # stays out; else the town regains it (and that first site, touching both, stays out).
        assert labels[2] == (-1 if taken[step] else labels[0])
        assert labels[4] >= 0 and labels[4] != labels[0]  # the chain beyond: a remainder group
    assert not taken[-1e-12] and taken[1e-12]


def test_split_scale_one_is_plain_dbscan_and_below_one_is_refused():
    lat, lon, weight = _towns(3)
    one = dbscan_sphere(lat, lon, weight, eps_km=6.0, min_weight=6.0, split_scale=1.0)
    plain = dbscan_sphere(lat, lon, weight, eps_km=6.0, min_weight=6.0)
    np.testing.assert_array_equal(one[0], plain[0])
    np.testing.assert_array_equal(one[1], plain[1])
    for bad in (0.5, float("nan"), float("inf"), True, "2"):
        with pytest.raises(ValueError, match="split_scale"):
            dbscan_sphere(lat, lon, weight, eps_km=6.0, min_weight=6.0, split_scale=bad)
