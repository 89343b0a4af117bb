"""Exact weighted HDBSCAN* on the sphere: DBSCAN's clusters at every density at once.

Why
---
DBSCAN draws every cluster at one density (one radius for one weight): a radius that
keeps New York apart from Philadelphia cuts the Bay Area in three. HDBSCAN* (Campello,
Moulavi & Sander 2013; McInnes & Healy 2017) keeps the hierarchy of DBSCAN* clusterings
over all radii and picks, branch by branch, the clusters that persist longest, so that
dense metros and sparse regions are each cut at their own level.

Semantics (with sample weights)
-------------------------------
For sites ``p`` with weights ``w_p`` and a threshold ``min_weight``:

* the **core distance** ``core(p)`` is the great-circle distance at which the weight of
  the sites around ``p`` (itself included, nearest first) reaches ``min_weight``: ``p`` is a
  DBSCAN core point at radius ``eps`` exactly when ``core(p) <= eps``;
* the **mutual reachability distance** is ``max(core(p), core(q), d(p, q))``; the minimum
  spanning tree of the complete graph under it is the single-linkage hierarchy of the
  DBSCAN* clusterings at every radius (``min_weight`` fixed);
* the **condensed tree** keeps a branch as a cluster while it weighs at least
  ``min_cluster_weight`` (by default ``min_weight``); lighter branches *fall out* of it at
  density ``lambda = 1 / distance`` (km^-1);
* a cluster's **stability** is ``sum_p w_p (lambda_p - lambda_birth)`` over its sites;
  **excess of mass** (``"eom"``) selects the set of non-nested clusters of maximal total
  stability (the root excluded), ``"leaf"`` the leaves of the cluster tree;
* the **floor** ``floor_km``: mutual-reachability distances below the floor count as
  the floor, so the hierarchy is flat below it: no cluster is split below ``floor_km``
  (each selected cluster is a union of DBSCAN*(``floor_km``) clusters), and excess of
  mass weighs only how long clusters persist *above* the floor. This is not
  scikit-learn's ``cluster_selection_epsilon``, which keeps the densities below the
  floor for the selection and then replaces a selected cluster born below it by its
  ancestor alive at the floor (that step is kept here too, and is then a no-op but at the
  root). With weights the difference matters: a site heavier than ``min_weight`` has core
  distance 0 and infinite density, so below the floor every branch ending in a heavy
  site looks infinitely stable and excess of mass would always pick the deepest splits.

Every member site is a core point at its cluster's level: HDBSCAN* has no border points,
so ``core_mask`` is ``labels >= 0``. Sites that belong to no selected cluster are noise
(-1). With unit weights this is scikit-learn's ``HDBSCAN(min_cluster_size=...,
min_samples=..., metric="haversine", cluster_selection_epsilon=floor/R)`` (``min_samples``
counts the point itself in both), which the tests check.

Weights bring one case unit weights cannot: a single site heavier than
``min_cluster_weight`` is a cluster by itself; its site leaves it at ``1 / core(p)`` (the
density at which it stops being core). Distances below 1 mm are taken as 1 mm, so that
densities stay finite (a site alone heavier than ``min_weight`` has core distance 0).

What is ours and what is a library's
------------------------------------
* Core distances: :class:`scipy.spatial.cKDTree` on 3-D unit vectors (chords order pairs
  as great-circle distances do), asking for more neighbours only for the sites that have
  not yet reached ``min_weight``, in batches of bounded memory (64 MB): no library
  computes *weighted* core distances.
* Minimum spanning tree: ours, Prim's algorithm on the complete mutual-reachability
  graph in numba, O(u^2) time and O(u) memory for u sites, exact (squared chords,
  compared exactly; ties to the lowest site index). scipy's
  ``minimum_spanning_tree`` needs the graph as a sparse matrix (O(u^2) memory for the
  complete graph), and a sparse neighbour graph is not exact above its radius;
  scikit-learn's and hdbscan's Boruvka trees take no weights (hdbscan issue #213).
* Single linkage, condensed tree, stability, EOM/leaf selection and the floor: ours, in
  numba, following the published algorithm as scikit-learn's ``_hdbscan/_tree.pyx`` and
  ``fast_hdbscan`` implement it, with weights in place of counts (both count points).
  With unit weights and no floor the labels are scikit-learn's wherever the
  mutual-reachability distances have no ties (the tests check ``min_samples`` 1 and 2);
  with ties, the order in which equal merges are taken (arbitrary in both) can move a
  few points of the condensed tree.

Measured on PatentsView (``data/real/patentsview.toml``): with excess of mass the
metros come out *larger* than with DBSCAN at the same radius (New York with
Philadelphia, Stuttgart with Heidelberg-Mannheim), because the floor cuts the children's
persistence short; the shipped configuration uses two-level DBSCAN instead
(``[clustering] split_scale``, :mod:`cluster.stages.clustering`).

Determinism: sites are ordered by (latitude, longitude) before anything else, so the
result depends on the set of weighted sites only; clusters are numbered 0, 1, ... by
their lowest input index, as :func:`cluster.engine.dbscan.dbscan_sphere` numbers them.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from cluster._runtime import rebuild_damaged_cache
from cluster.engine.dbscan import (
    CORE_RTOL,
    _announce_compilation,
    _check_points,
    _check_positive,
    _fold,
)
from cluster.engine.geo import EARTH_RADIUS_KM, unit_vectors

__all__ = ["SELECTION_METHODS", "core_chords", "hdbscan_sphere"]

SELECTION_METHODS = ("eom", "leaf")
# Memory of one batch of neighbour lists in core_chords (distances, indices, sums).
_QUERY_BYTES = 64 << 20
# Distances below this (km) count as this: densities stay finite.
_MIN_DISTANCE_KM = 1e-6


def core_chords(xyz: np.ndarray, weight: np.ndarray, k_weight: float, *, k0: int = 16) -> np.ndarray:
    """Chord (unit sphere) at which each site's nearest sites, itself included, weigh ``k_weight``.

    Parameters
    ----------
    xyz : ndarray of shape (u, 3)
        Unit vectors of the sites (:func:`cluster.engine.geo.unit_vectors`).
    weight : ndarray of shape (u,)
        Non-negative site weights.
    k_weight : float
        Weight to reach, > 0; reached up to the relative tolerance
        :data:`cluster.engine.dbscan.CORE_RTOL`, as DBSCAN's core test.
    k0 : int, default=16
        Neighbours asked for first (four times more for the sites not done).

    Returns
    -------
    ndarray of shape (u,)
        Chord lengths (0 to 2); ``inf`` where all sites together weigh less.
    """
    from scipy.spatial import cKDTree

    weight = np.asarray(weight, dtype=np.float64)
    n = len(weight)
    out = np.full(n, np.inf)
    need = k_weight * (1.0 - CORE_RTOL)
    if n == 0 or weight.sum() < need:
        return out
    tree = cKDTree(xyz)
    todo = np.arange(n)
    k = min(k0, n)
    while len(todo):
        # Rows at a time so that the neighbour lists stay within _QUERY_BYTES.
        rows = max(1, _QUERY_BYTES // (24 * k))
        left = []
        for start in range(0, len(todo), rows):
            part = todo[start:start + rows]
            dist, idx = tree.query(xyz[part], k=k)
            dist, idx = dist.reshape(len(part), -1), idx.reshape(len(part), -1)
            cum = np.cumsum(weight[idx], axis=1)
            reached = cum[:, -1] >= need
            first = np.argmax(cum >= need, axis=1)
            out[part[reached]] = dist[reached, first[reached]]
            left.append(part[~reached])
        todo = np.concatenate(left)
        if k == n:
            break
        k = min(4 * k, n)
    return out


def chord_km(chord) -> np.ndarray:
    """Great-circle distance (km) of chords on the unit sphere.

    Parameters
    ----------
    chord : float or array-like
        Straight-line distances between unit vectors, 0 to 2.

    Returns
    -------
    ndarray
        Distances in km on the sphere of radius :data:`cluster.engine.geo.EARTH_RADIUS_KM`.
    """
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord, dtype=np.float64) / 2.0, 0.0, 1.0))


@njit(cache=True, nogil=True)
def _prim(x, y, z, core2):
    """Minimum spanning tree of the mutual-reachability graph, squared chords.

    Returns the edges (a, b, squared mutual-reachability chord) in the order Prim adds
    them, from site 0. Ties go to the lowest site index, so the tree depends on the
    site order only. The sites not yet in the tree are kept packed at the front of
    their own arrays (a leaving site swapped with the last), so that each step scans
    contiguous memory.
    """
    n = x.size
    a = np.empty(max(n - 1, 0), np.int64)
    b = np.empty(max(n - 1, 0), np.int64)
    d = np.empty(max(n - 1, 0), np.float64)
    # Position 0 is site 0 (the tree's root): the rest are positions 1..n-1, packed.
    X, Y, Z, C = x.copy(), y.copy(), z.copy(), core2.copy()
    ids = np.arange(n)
    best = np.full(n, np.inf)
    src = np.full(n, -1, np.int64)
    px, py, pz, pc, cur = X[0], Y[0], Z[0], C[0], 0
    lo = 1  # remaining sites: positions lo..m-1
    m = n
    for step in range(n - 1):
        # Two passes: the update alone runs faster than with the argmin fused in.
        for j in range(lo, m):
            dx = px - X[j]
            dy = py - Y[j]
            dz = pz - Z[j]
            r = max(dx * dx + dy * dy + dz * dz, pc, C[j])
            if r < best[j]:
                best[j] = r
                src[j] = cur
        k = lo
        nd = best[lo]
        for j in range(lo + 1, m):
            bj = best[j]
            if bj < nd or (bj == nd and ids[j] < ids[k]):
                nd = bj
                k = j
        a[step] = src[k]
        b[step] = ids[k]
        d[step] = nd
        px, py, pz, pc, cur = X[k], Y[k], Z[k], C[k], ids[k]
        m -= 1
        X[k], Y[k], Z[k], C[k], ids[k], best[k], src[k] = X[m], Y[m], Z[m], C[m], ids[m], best[m], src[m]
    return a, b, d


@njit(cache=True)
def _find(parent, p):
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@njit(cache=True)
def _single_linkage(a, b, weight):
    """Single-linkage tree from MST edges sorted by distance: node n + k joins
    ``left[k]`` and ``right[k]`` at ``dist[k]``; ``size`` holds every node's weight."""
    n = weight.size
    parent = np.arange(2 * n - 1)
    node_of = np.arange(n)  # the current tree node of each union-find root
    size = np.empty(2 * n - 1, np.float64)
    size[:n] = weight
    left = np.empty(n - 1, np.int64)
    right = np.empty(n - 1, np.int64)
    for k in range(n - 1):
        ra = _find(parent, a[k])
        rb = _find(parent, b[k])
        na, nb = node_of[ra], node_of[rb]
        left[k] = min(na, nb)
        right[k] = max(na, nb)
        size[n + k] = size[na] + size[nb]
        parent[rb] = ra
        node_of[ra] = n + k
    return left, right, size


@njit(cache=True)
def _condense(left, right, dist, size, lam_leaf, min_size):
    """Condensed tree, top down (a parent's id is above its children's).

    Returns rows (parent cluster, child, lambda, child weight) where a child < n is a
    site and a child >= n a cluster (clusters are n, n + 1, ...; n is the root).
    """
    n = size.size - left.size
    n_nodes = 2 * n - 1
    relabel = np.full(n_nodes, -1, np.int64)
    fall_to = np.full(n_nodes, -1, np.int64)  # falling out of this cluster ...
    fall_lam = np.zeros(n_nodes)  # ... at this density
    cap = 3 * n  # a row per site, and one per cluster (at most 2 n - 2)
    rp = np.empty(cap, np.int64)
    rc = np.empty(cap, np.int64)
    rl = np.empty(cap, np.float64)
    rs = np.empty(cap, np.float64)
    nr = 0
    root = n_nodes - 1
    relabel[root] = n
    next_label = n + 1
    if n == 1:
        rp[0] = n
        rc[0] = 0
        rl[0] = lam_leaf[0]
        rs[0] = size[0]
        return rp[:1], rc[:1], rl[:1], rs[:1]
    for node in range(root, n - 1, -1):
        k = node - n
        lam = 1.0 / dist[k]
        kids = (left[k], right[k])
        if fall_to[node] >= 0:
            for c in kids:
                if c < n:
                    rp[nr], rc[nr], rl[nr], rs[nr] = fall_to[node], c, fall_lam[node], size[c]
                    nr += 1
                else:
                    fall_to[c] = fall_to[node]
                    fall_lam[c] = fall_lam[node]
            continue
        p = relabel[node]
        big_l = size[kids[0]] >= min_size
        big_r = size[kids[1]] >= min_size
        for i in range(2):
            c = kids[i]
            big = big_l if i == 0 else big_r
            if big and big_l and big_r:  # a true split: a new cluster
                label = next_label
                next_label += 1
                rp[nr], rc[nr], rl[nr], rs[nr] = p, label, lam, size[c]
                nr += 1
                if c < n:  # a single heavy site: it leaves at its own density
                    rp[nr], rc[nr], rl[nr], rs[nr] = label, c, max(lam_leaf[c], lam), size[c]
                    nr += 1
                else:
                    relabel[c] = label
            elif big:  # the cluster goes on in this child
                if c < n:
                    rp[nr], rc[nr], rl[nr], rs[nr] = p, c, max(lam_leaf[c], lam), size[c]
                    nr += 1
                else:
                    relabel[c] = p
            else:  # too light: its sites fall out of p here
                if c < n:
                    rp[nr], rc[nr], rl[nr], rs[nr] = p, c, lam, size[c]
                    nr += 1
                else:
                    fall_to[c] = p
                    fall_lam[c] = lam
    return rp[:nr], rc[:nr], rl[:nr], rs[:nr]


@njit(cache=True)
def _select(rp, rc, rl, rs, n, n_clusters, leaf, floor_lam):
    """Selected clusters (bool per cluster id - n) by EOM or leaf, then the floor."""
    birth = np.zeros(n_clusters)
    parent = np.full(n_clusters, -1, np.int64)
    has_child = np.zeros(n_clusters, np.bool_)
    for r in range(rp.size):
        if rc[r] >= n:
            birth[rc[r] - n] = rl[r]
            parent[rc[r] - n] = rp[r] - n
            has_child[rp[r] - n] = True
    stability = np.zeros(n_clusters)
    for r in range(rp.size):
        c = rp[r] - n
        stability[c] += (rl[r] - birth[c]) * rs[r]
    selected = np.zeros(n_clusters, np.bool_)
    if leaf:
        for c in range(1, n_clusters):
            selected[c] = not has_child[c]
    else:
        child_sum = np.zeros(n_clusters)
        # children have higher ids than their parents: bottom up is descending ids
        for c in range(n_clusters - 1, 0, -1):
            if has_child[c] and child_sum[c] > stability[c]:
                stability[c] = child_sum[c]
            else:
                selected[c] = True
            child_sum[parent[c]] += stability[c]
    # A selected cluster inside a selected one is not (top down: ancestors first).
    for c in range(1, n_clusters):
        a = parent[c]
        while a > 0:
            if selected[a]:
                selected[c] = False
                break
            a = parent[a]
    if floor_lam < np.inf:
        # Born below the floor (lambda above 1 / floor): the ancestor alive at the floor
        # instead, or the ancestor just under the root, as scikit-learn's epsilon search.
        for c in range(1, n_clusters):
            if selected[c] and birth[c] > floor_lam:
                t = c
                while parent[t] > 0:
                    t = parent[t]
                    if birth[t] < floor_lam:
                        break
                selected[c] = False
                selected[t] = True
        for c in range(1, n_clusters):
            a = parent[c]
            while a > 0:
                if selected[a]:
                    selected[c] = False
                    break
                a = parent[a]
    return selected, parent


def _sites_hdbscan(lat, lon, weight, min_weight, min_cluster_weight, floor_km, method):
    """Labels of sites in an order fixed by their coordinates; see :func:`hdbscan_sphere`."""
    n = lat.size
    xyz = unit_vectors(lat, lon)
    core = core_chords(xyz, weight, min_weight)
    if n == 0 or not np.isfinite(core).all():
        return np.full(n, -1, np.int64)
    if n == 1:
        return np.array([0 if weight[0] >= min_cluster_weight * (1.0 - CORE_RTOL) else -1])
    x, y, z = (np.ascontiguousarray(xyz[:, k]) for k in range(3))
    a, b, d2 = _prim(x, y, z, core * core)
    order = np.argsort(d2, kind="stable")
    a, b = a[order], b[order]
    # Below the floor every distance counts as the floor: the hierarchy is flat there.
    low = max(floor_km, _MIN_DISTANCE_KM)
    dist_km = np.maximum(chord_km(np.sqrt(d2[order])), low)
    left, right, size = _single_linkage(a, b, weight)
    lam_leaf = 1.0 / np.maximum(chord_km(core), low)
    min_size = min_cluster_weight * (1.0 - CORE_RTOL)
    rp, rc, rl, rs = _condense(left, right, dist_km, size, lam_leaf, min_size)
    n_clusters = int(rp.max()) - n + 1 if rp.size else 1
    n_clusters = max(n_clusters, int(rc.max()) - n + 1 if rc.size else 1)
    floor_lam = 1.0 / floor_km if floor_km > 0 else np.inf
    selected, parent = _select(rp, rc, rl, rs, n, n_clusters, method == "leaf", floor_lam)
    compact = np.full(n_clusters, -1, np.int64)
    compact[selected] = np.arange(int(selected.sum()))
    owner = np.full(n_clusters, -1, np.int64)  # the selected cluster at or above each
    for c in range(1, n_clusters):
        owner[c] = compact[c] if selected[c] else owner[parent[c]]
    labels = np.full(n, -1, np.int64)
    pts = rc < n
    labels[rc[pts]] = owner[rp[pts] - n]
    return labels


@rebuild_damaged_cache
def hdbscan_sphere(lat, lon, weight=None, *, min_weight, min_cluster_weight=None, floor_km=0.0,
                   method="eom"):
    """Exact weighted HDBSCAN* of points on the sphere.

    Parameters
    ----------
    lat : array-like of shape (n,)
        Latitudes in degrees, finite, in [-90, 90].
    lon : array-like of shape (n,)
        Longitudes in degrees, any finite value (taken modulo 360).
    weight : array-like of shape (n,), default=None
        Finite non-negative weight of each point; None means 1 for every point.
    min_weight : float
        Weight that a point's neighbourhood (itself included) must reach: sets its core
        distance (scikit-learn's ``min_samples``), in (0, inf).
    min_cluster_weight : float, optional
        Least weight of a cluster (``min_cluster_size``); default ``min_weight``.
    floor_km : float, default=0.0
        Clusters are not split below this great-circle distance, km
        (``cluster_selection_epsilon``); 0 = no floor.
    method : {"eom", "leaf"}, default="eom"
        Excess of mass or the leaves of the cluster tree.

    Returns
    -------
    labels : ndarray of shape (n,), int64
        Cluster of each point, numbered 0, 1, ... in order of each cluster's lowest
        input index; -1 for noise.
    core_mask : ndarray of shape (n,), bool
        ``labels >= 0`` (every member of an HDBSCAN* cluster is core at its level).

    Raises
    ------
    ValueError
        If a parameter is out of range, naming it, its allowed range and the value.

    Examples
    --------
    >>> lat = [0.0, 0.0, 0.01, 0.01, 5.0, 5.0, 5.01, 5.01, 40.0]
    >>> lon = [0.0, 0.01, 0.0, 0.01, 5.0, 5.01, 5.0, 5.01, 40.0]
    >>> hdbscan_sphere(lat, lon, min_weight=3)[0].tolist()
    [0, 0, 0, 0, 1, 1, 1, 1, -1]
    """
    owner = "hdbscan_sphere"
    _announce_compilation()
    min_weight = _check_positive(min_weight, "min_weight", owner)
    min_cluster_weight = (min_weight if min_cluster_weight is None
                          else _check_positive(min_cluster_weight, "min_cluster_weight", owner))
    if not (isinstance(floor_km, (int, float)) and not isinstance(floor_km, bool)
            and 0.0 <= float(floor_km) < math.inf):
        raise ValueError(f"The 'floor_km' parameter of {owner} must be a float in [0, inf). "
                         f"Got {floor_km!r} instead.")
    if method not in SELECTION_METHODS:
        raise ValueError(f"The 'method' parameter of {owner} must be one of "
                         f"{', '.join(SELECTION_METHODS)}. Got {method!r} instead.")
    lat, lon, weight = _check_points(lat, lon, weight, owner)
    n = lat.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    codes, first, site_weight = _fold(lat, lon, weight)
    site_lat, site_lon = lat[first], lon[first]
    order = np.lexsort((first, np.mod(site_lon, 360.0), site_lat))  # the set of sites only
    site_label = np.empty(len(first), np.int64)
    site_label[order] = _sites_hdbscan(site_lat[order], site_lon[order], site_weight[order],
                                       min_weight, min_cluster_weight, float(floor_km), method)
    # Number clusters by their lowest input index.
    k = int(site_label.max()) + 1
    if k > 0:
        lowest = np.full(k, np.iinfo(np.int64).max)
        m = site_label >= 0
        np.minimum.at(lowest, site_label[m], first[m])
        rank = np.empty(k, np.int64)
        rank[np.argsort(lowest, kind="stable")] = np.arange(k)
        site_label = np.where(site_label >= 0, rank[np.maximum(site_label, 0)], -1)
    labels = site_label[codes]
    return labels, labels >= 0
