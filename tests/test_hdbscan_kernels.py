"""The HDBSCAN* engine's sorting and tree-building kernels give exactly what they replace:
numpy's stable argsorts (the site order, the spanning tree's edges by distance) and the
kd-tree built one node at a time (now level by level, on threads)."""

from __future__ import annotations

import numpy as np
import pytest

from cluster.engine import hdbscan as hdbscan_module
from cluster.engine.geo import unit_vectors
from cluster.engine.hdbscan import _kd_tree, _site_order, _stable_argsort


@pytest.mark.parametrize("n", [0, 1, 2, 9, 1000, 70_000])
def test_site_order_is_the_two_stable_argsorts(n):
    rng = np.random.default_rng(n)
    lat = np.round(rng.uniform(-90, 90, n), 1)  # many ties in each key
    lon = np.round(rng.uniform(-540, 540, n), 1)  # and longitudes equal mod 360
    if n >= 4:
        lat[:4] = [-0.0, 0.0, -0.0, 90.0]
        lon[:4] = [0.0, -0.0, 360.0, -180.0]
    ref = np.argsort(np.mod(lon, 360.0), kind="stable")
    ref = ref[np.argsort(lat[ref], kind="stable")]
    np.testing.assert_array_equal(_site_order(lat, lon), ref)


@pytest.mark.parametrize("n", [0, 1, 5, 1000, 100_000])
def test_stable_argsort_is_numpys(n):
    rng = np.random.default_rng(n + 1)
    values = np.round(rng.exponential(1.0, n), 3)
    values[: n // 10] = 0.0
    if n >= 3:
        values[1], values[2] = -0.0, np.inf
    np.testing.assert_array_equal(_stable_argsort(values), np.argsort(values, kind="stable"))


def _serial_kd_tree(x, y, z, leaf_size):
    """The tree one node at a time, as it was built before (the reference)."""
    n = x.size
    n_leaves = 1
    while n_leaves * 2 * leaf_size <= n:
        n_leaves *= 2
    n_nodes, n_inner = 2 * n_leaves - 1, n_leaves - 1
    order = np.arange(n)
    start, end, box = np.empty(n_nodes, np.int64), np.empty(n_nodes, np.int64), np.empty((n_nodes, 6))
    start[0], end[0] = 0, n
    hdbscan_module._kd_nodes(0, n_nodes, x, y, z, order, start, end, box, n_inner)
    return order, start, end, box, n_inner


def test_kd_tree_on_threads_is_the_serial_tree(monkeypatch):
    rng = np.random.default_rng(5)
    xyz = unit_vectors(rng.uniform(-60, 60, 50_000), rng.uniform(-180, 180, 50_000))
    x, y, z = (np.ascontiguousarray(xyz[:, k]) for k in range(3))
    monkeypatch.setattr(hdbscan_module, "_PARALLEL_MIN_TREE", 1)
    monkeypatch.setattr(hdbscan_module, "_threads", lambda: 3)
    got = _kd_tree(x, y, z, 16)
    ref = _serial_kd_tree(x, y, z, 16)
    for a, b in zip(got[:4], ref[:4]):
        np.testing.assert_array_equal(a, b)
    assert got[4] == ref[4]
