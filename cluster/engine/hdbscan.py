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
* Core distances: ours, a kd-tree on the 3-D unit vectors (chords order pairs as
  great-circle distances do) in numba. By the triangle inequality a site's core chord
  is within ``d`` of the core chord of a site ``d`` away, so each site intersects these
  bounds over its leaf-mates already done and selects its core among the sites in
  that annulus only (whole nodes inside it are weighed at once); the first site of a chunk, or a thick
  annulus, is a depth-first search that keeps the nearest sites in a max-heap until
  their weight reaches ``min_weight``. No library computes *weighted* core distances
  (scipy's ``cKDTree`` answers k nearest neighbours, and the k that makes the weight
  differs from site to site: asking for more and more neighbours took 1.9 s at 87,639
  sites, these searches about 0.13 s on one thread).
* Minimum spanning tree: ours, Borůvka's algorithm on the same kd-tree (McInnes &
  Healy 2017, as ``hdbscan``'s ``boruvka_kdtree`` and ``fast_hdbscan`` use it): each
  round, every component takes its lightest edge out, found by per-site searches that
  skip nodes wholly inside the component or too far (box distance, the node's least
  core, the site's own core) to beat the component's best; edges found earlier are
  reused while they still leave the component. Exact (squared chords compared
  exactly; equal weights to the first site in the tree's order, so the tree depends on
  the set of sites only, not on the threads), O(u) memory, a few rounds of about
  O(u log u) each in practice (it replaced an O(u^2) Prim: about 10 s at 87,639
  sites, now about 0.05 s on one thread). scipy's ``minimum_spanning_tree`` needs the graph as a sparse
  matrix (O(u^2) memory for the complete graph), and a sparse neighbour graph is not
  exact above its radius; scikit-learn's and hdbscan's Borůvka trees take no weights
  (hdbscan issue #213).
* Single linkage, condensed tree, stability, EOM/leaf selection and the floor: ours, in
  numba, following the published algorithm as scikit-learn's ``_hdbscan/_tree.pyx`` and
  ``fast_hdbscan`` implement it, with weights in place of counts (both count points).
  With unit weights and no floor the labels are scikit-learn's wherever the
  mutual-reachability distances have no ties (the tests check ``min_samples`` 1 and 2);
  with ties, the order in which equal merges are taken (arbitrary in both; here the
  order in which Borůvka's rounds found the edges, fixed by the set of sites) can move
  a few points of the condensed tree.

Measured on PatentsView (``data/real/patentsview.toml``): with excess of mass the
metros come out *larger* than with DBSCAN at the same radius (New York with
Philadelphia, Stuttgart with Heidelberg-Mannheim), because the floor cuts the children's
persistence short; the shipped configuration uses two-level DBSCAN instead
(``[clustering] split_scale``, :mod:`cluster.stages.clustering`).

Cost (``benchmarks/bench_hdbscan.py``, 87,639 sites from 1 M records, two shared cores):
about four to five times DBSCAN at the same radius, nearly all of it the core distances
(about 150 sites and 46 tree nodes examined per site, mostly the light sites within its
core distance) and Borůvka's rounds, both on the engine's threads; the kd-tree's
subtrees are built on them too, and the sorts are LSD radix sorts (the permutations of
numpy's stable argsorts). Memory is O(u) besides the record-to-site map.

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
    _PARALLEL_MIN_RECORDS,
    CORE_RTOL,
    _announce_compilation,
    _check_points,
    _check_positive,
    _expand,
    _fold,
    _run_chunks,
    _threads,
)
from cluster.engine.geo import EARTH_RADIUS_KM, unit_vectors

__all__ = ["SELECTION_METHODS", "core_chords", "hdbscan_sphere"]

SELECTION_METHODS = ("eom", "leaf")
# Distances below this (km) count as this: densities stay finite.
_MIN_DISTANCE_KM = 1e-6
# Leaf size of the kd-tree (sites per leaf: leaf size to twice it).
_LEAF_SIZE = 16
# Sites per chunk of searches (chunks run on the engine's threads; fixed, so that
# the results do not depend on the thread count).
_CHUNK_SITES = 4096
# Core searches select from an annulus thinner than this times the sum of its radii.
_ANNULUS = 0.5
# Smallest inputs whose kd-tree is built on threads.
_PARALLEL_MIN_TREE = 1 << 15


def core_chords(xyz: np.ndarray, weight: np.ndarray, k_weight: float) -> np.ndarray:
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

    Returns
    -------
    ndarray of shape (u,)
        Chord lengths (0 to 2); ``inf`` where all sites together weigh less.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    tree, core2, _ = _tree_core2(xyz, np.asarray(weight, dtype=np.float64), k_weight)
    out = np.empty(len(core2))
    out[tree[0]] = np.sqrt(core2)
    return out


def _tree_core2(xyz, weight, k_weight):
    """The kd-tree of the sites and their squared core chords, in the tree's order.

    Returns ((order, start, end, box, n_inner), core2, (X, Y, Z)): site ``order[i]`` is
    the tree's point i.
    """
    n = len(weight)
    x, y, z = (np.ascontiguousarray(xyz[:, k]) for k in range(3))
    tree = _kd_tree(x, y, z, _LEAF_SIZE)
    order = tree[0]
    pts = (x[order], y[order], z[order])
    need = k_weight * (1.0 - CORE_RTOL)
    if n == 0 or weight.sum() < need:
        return tree, np.full(n, np.inf), pts
    core2 = np.empty(n)
    w = np.ascontiguousarray(weight[order])
    start, end, n_inner = tree[1], tree[2], tree[4]
    leaf_of = np.repeat(np.arange(n_inner, len(start)), (end - start)[n_inner:])  # leaves run left to right
    args = (*pts, w, *tree[1:], _node_sums(w, tree[1], tree[2], tree[4]), leaf_of, need)
    spans = np.append(np.arange(0, n, _CHUNK_SITES), n)  # fixed: the same sums on any thread count
    _run_chunks(_core2_range, [(*args, lo, hi, core2) for lo, hi in zip(spans[:-1], spans[1:])])
    return tree, core2, pts


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




@njit(cache=True)
def _nth(idx, key, lo, hi, k):
    """Arrange ``idx[lo:hi]`` so that ``key[idx[k]]`` is its k-th smallest key, smaller
    keys before and larger after (quickselect, three-way: equal keys cost nothing)."""
    hi -= 1
    while lo < hi:
        a, b, c = key[idx[lo]], key[idx[(lo + hi) // 2]], key[idx[hi]]
        pivot = max(min(a, b), min(max(a, b), c))
        lt, i, gt = lo, lo, hi
        while i <= gt:
            v = key[idx[i]]
            if v < pivot:
                idx[lt], idx[i] = idx[i], idx[lt]
                lt += 1
                i += 1
            elif v > pivot:
                idx[i], idx[gt] = idx[gt], idx[i]
                gt -= 1
            else:
                i += 1
        if k < lt:
            hi = lt - 1
        elif k > gt:
            lo = gt + 1
        else:
            return


def _kd_tree(x, y, z, leaf_size):
    """Balanced kd-tree of 3-D points: node i has children 2i + 1 and 2i + 2, leaves are
    the nodes from ``n_leaves - 1`` on, each over ``order[start:end]``, split at the
    median of its widest axis. Returns order, start, end, box (nodes, 6: lo xyz, hi xyz)
    and the number of inner nodes.

    The nodes of a subtree own a run of ``order`` of their own, so the subtrees below the
    top levels are built on the engine's threads (:func:`_kd_subtrees`), with the same
    result as one node at a time.
    """
    n = x.size
    n_leaves = 1
    while n_leaves * 2 * leaf_size <= n:
        n_leaves *= 2
    n_nodes = 2 * n_leaves - 1
    n_inner = n_leaves - 1
    order = np.arange(n)
    start = np.empty(n_nodes, np.int64)
    end = np.empty(n_nodes, np.int64)
    box = np.empty((n_nodes, 6))
    start[0] = 0
    end[0] = n
    threads = _threads() if n >= _PARALLEL_MIN_TREE else 1
    # The top levels on one thread, until there are two subtrees a thread; then each
    # thread builds whole subtrees, top down (one hand-over instead of one a level).
    top = 1
    while top < 2 * threads and top < n_nodes:
        top = 2 * top + 1
    top = min(top, n_nodes)
    _kd_nodes(0, top, x, y, z, order, start, end, box, n_inner)
    if top < n_nodes:
        roots = np.arange(top // 2, top)  # the last level done: the subtrees below them
        _run_chunks(_kd_subtrees, [(part, x, y, z, order, start, end, box, n_inner)
                                   for part in np.array_split(roots, threads)])
    return order, start, end, box, n_inner


@njit(cache=True, nogil=True)
def _kd_subtrees(roots, x, y, z, order, start, end, box, n_inner):
    """The nodes below ``roots`` (done already), level by level within each subtree."""
    n_nodes = start.size
    for r in roots:
        width = 2
        first = 2 * r + 1
        while first < n_nodes:
            _kd_nodes(first, min(first + width, n_nodes), x, y, z, order, start, end, box, n_inner)
            first = 2 * first + 1
            width *= 2
    return 0


@njit(cache=True, nogil=True)
def _kd_nodes(first, last, x, y, z, order, start, end, box, n_inner):
    """Boxes of the nodes first..last-1 of :func:`_kd_tree`, and the splits of the inner ones."""
    for node in range(first, last):
        s, e = start[node], end[node]
        lx, ly, lz = np.inf, np.inf, np.inf
        hx, hy, hz = -np.inf, -np.inf, -np.inf
        for i in range(s, e):
            j = order[i]
            lx, hx = min(lx, x[j]), max(hx, x[j])
            ly, hy = min(ly, y[j]), max(hy, y[j])
            lz, hz = min(lz, z[j]), max(hz, z[j])
        box[node, 0], box[node, 1], box[node, 2] = lx, ly, lz
        box[node, 3], box[node, 4], box[node, 5] = hx, hy, hz
        if node < n_inner:
            mid = (s + e) // 2
            wx, wy, wz = hx - lx, hy - ly, hz - lz
            if wx >= wy and wx >= wz:
                _nth(order, x, s, e, mid)
            elif wy >= wz:
                _nth(order, y, s, e, mid)
            else:
                _nth(order, z, s, e, mid)
            start[2 * node + 1], end[2 * node + 1] = s, mid
            start[2 * node + 2], end[2 * node + 2] = mid, e
    return 0


@njit(cache=True)
def _float_keys(values, order):
    """Keys that order as the floats ``values[order[i]]`` (-0.0 as 0.0), as unsigned integers."""
    top = np.uint64(1) << np.uint64(63)
    bits = (values + 0.0).view(np.uint64)
    keys = np.empty(order.size, np.uint64)
    for i in range(order.size):
        b = bits[order[i]]
        keys[i] = ~b if b & top else b | top
    return keys


@njit(cache=True)
def _radix_sort(keys, order):
    """``order`` sorted stably by ``keys`` (the key of ``order[i]`` is ``keys[i]``): an LSD
    radix sort, 16 bits a pass, a pass skipped where all keys share its digit."""
    n = order.size
    tmp = np.empty(n, np.int64)
    ktmp = np.empty(n, np.uint64)
    count = np.empty(1 << 16, np.int64)
    mask = np.uint64(0xFFFF)
    for shift in range(0, 64, 16):
        sh = np.uint64(shift)
        count[:] = 0
        for i in range(n):
            count[np.int64((keys[i] >> sh) & mask)] += 1
        if count.max() == n:
            continue
        total = 0
        for d in range(1 << 16):
            c = count[d]
            count[d] = total
            total += c
        for i in range(n):
            d = np.int64((keys[i] >> sh) & mask)
            tmp[count[d]] = order[i]
            ktmp[count[d]] = keys[i]
            count[d] += 1
        order, tmp = tmp, order
        keys, ktmp = ktmp, keys
    return order


@njit(cache=True)
def _stable_argsort(values):
    """``np.argsort(values, kind="stable")`` of floats without NaN, by :func:`_radix_sort`."""
    order = np.arange(values.size)
    return _radix_sort(_float_keys(values, order), order)


@njit(cache=True)
def _site_order(lat, lon):
    """The order of sites by latitude, then longitude mod 360, then index: the two stable
    sorts (``argsort(kind="stable")`` of the longitudes, then of the latitudes) as two
    radix sorts (:func:`_radix_sort`)."""
    order = np.arange(lat.size)
    order = _radix_sort(_float_keys(np.mod(lon, 360.0), order), order)
    return _radix_sort(_float_keys(lat, order), order)


@njit(cache=True, inline="always")
def _box_d2(box, node, px, py, pz):
    """Squared distance from a point to a node's box (0 inside)."""
    dx = max(box[node, 0] - px, 0.0, px - box[node, 3])
    dy = max(box[node, 1] - py, 0.0, py - box[node, 4])
    dz = max(box[node, 2] - pz, 0.0, pz - box[node, 5])
    return dx * dx + dy * dy + dz * dz


@njit(cache=True, nogil=True)
def _core_search(p, bound, X, Y, Z, W, start, end, box, n_inner, need, heap_d, heap_w, stack, stack_d):
    """One point's squared core chord, searching only closer than ``bound``: inf if the
    points closer than ``bound`` weigh less than ``need``.

    A depth-first search, nearer child first, keeping in a max-heap the nearest points
    found whose weight without the farthest is below ``need``: the farthest is then the
    core distance so far, and nodes farther are not entered.
    """
    px, py, pz = X[p], Y[p], Z[p]
    size = 0
    total = 0.0
    sp = 1
    stack[0] = 0
    stack_d[0] = 0.0
    while sp > 0:
        sp -= 1
        node = stack[sp]
        if stack_d[sp] >= bound:
            continue
        if node >= n_inner:
            for q in range(start[node], end[node]):
                dx, dy, dz = px - X[q], py - Y[q], pz - Z[q]
                d2 = dx * dx + dy * dy + dz * dz
                if d2 >= bound:
                    continue
                i = size  # push (d2, W[q]) on the max-heap
                size += 1
                while i > 0:
                    up = (i - 1) // 2
                    if heap_d[up] >= d2:
                        break
                    heap_d[i], heap_w[i] = heap_d[up], heap_w[up]
                    i = up
                heap_d[i], heap_w[i] = d2, W[q]
                total += W[q]
                # drop the farthest while the rest still weigh need
                while size > 1 and total - heap_w[0] >= need:
                    total -= heap_w[0]
                    size -= 1
                    ld, lw = heap_d[size], heap_w[size]
                    i = 0
                    while True:
                        c = 2 * i + 1
                        if c >= size:
                            break
                        if c + 1 < size and heap_d[c + 1] > heap_d[c]:
                            c += 1
                        if heap_d[c] <= ld:
                            break
                        heap_d[i], heap_w[i] = heap_d[c], heap_w[c]
                        i = c
                    heap_d[i], heap_w[i] = ld, lw
                if total >= need:
                    bound = heap_d[0]
        else:
            a, b = 2 * node + 1, 2 * node + 2
            da, db = _box_d2(box, a, px, py, pz), _box_d2(box, b, px, py, pz)
            if da <= db:
                a, b, da, db = b, a, db, da
            stack[sp], stack_d[sp] = a, da  # the farther child, searched second
            stack[sp + 1], stack_d[sp + 1] = b, db
            sp += 2
    return heap_d[0] if total >= need else np.inf


@njit(cache=True, nogil=True)
def _node_sums(W, start, end, n_inner):
    """The weight of the points in each node of the tree."""
    out = np.empty(start.size)
    for node in range(start.size - 1, -1, -1):
        if node >= n_inner:
            s = 0.0
            for i in range(start[node], end[node]):
                s += W[i]
            out[node] = s
        else:
            out[node] = out[2 * node + 1] + out[2 * node + 2]
    return out


@njit(cache=True, nogil=True)
def _annulus_core(p, lo2, hi2, X, Y, Z, W, start, end, box, n_inner, wsum, need, buf_d, buf_w, stack, stack_d):
    """One point's squared core chord when it is known to lie in [lo2, hi2): the points
    closer than ``lo2`` are only weighed (whole nodes at once where a node lies inside),
    those in the annulus are gathered, and the least d2 at which the weight reaches
    ``need`` is selected among them (quickselect, three-way, weighed). inf if the bounds
    did not hold (rounding): then the caller searches again."""
    px, py, pz = X[p], Y[p], Z[p]
    m = 0
    acc = 0.0
    sp = 1
    stack[0] = 0
    stack_d[0] = 0.0
    while sp > 0:
        sp -= 1
        node = stack[sp]
        if stack_d[sp] >= hi2:
            continue
        dx = max(abs(px - box[node, 0]), abs(px - box[node, 3]))
        dy = max(abs(py - box[node, 1]), abs(py - box[node, 4]))
        dz = max(abs(pz - box[node, 2]), abs(pz - box[node, 5]))
        if dx * dx + dy * dy + dz * dz < lo2:  # the whole node is inside
            acc += wsum[node]
            continue
        if node >= n_inner:
            for q in range(start[node], end[node]):
                dx, dy, dz = px - X[q], py - Y[q], pz - Z[q]
                d2 = dx * dx + dy * dy + dz * dz
                # Without branches (which side a point falls is unpredictable): the sum
                # is the same (adding 0.0 changes nothing), and a point outside the
                # annulus is written but not kept.
                w = W[q]
                inside = d2 < lo2
                acc += w * inside
                buf_d[m] = d2
                buf_w[m] = w
                m += (not inside) & (d2 < hi2)
        else:
            for c in range(2 * node + 1, 2 * node + 3):
                dc = _box_d2(box, c, px, py, pz)
                if dc < hi2:  # a child wholly beyond the annulus is not pushed
                    stack[sp], stack_d[sp] = c, dc
                    sp += 1
    return _select_core2(buf_d, buf_w, m, acc, need)


@njit(cache=True, nogil=True)
def _select_core2(buf_d, buf_w, m, acc, need):
    """The least d2 among ``buf_d[:m]`` at which ``acc`` plus the weight of the gathered
    points up to it reaches ``need`` (quickselect, three-way, weighed); inf if ``acc``
    alone reaches it or all of them do not (the caller's bounds did not hold)."""
    if acc >= need:
        return np.inf
    lo, hi = 0, m
    while lo < hi:
        i, j, k = buf_d[lo], buf_d[hi - 1], buf_d[(lo + hi) // 2]
        v = max(min(i, j), min(max(i, j), k))
        lt, t, gt = lo, lo, hi - 1
        wl = 0.0
        we = 0.0
        while t <= gt:
            d = buf_d[t]
            if d < v:
                wl += buf_w[t]
                buf_d[lt], buf_d[t] = buf_d[t], buf_d[lt]
                buf_w[lt], buf_w[t] = buf_w[t], buf_w[lt]
                lt += 1
                t += 1
            elif d > v:
                buf_d[gt], buf_d[t] = buf_d[t], buf_d[gt]
                buf_w[gt], buf_w[t] = buf_w[t], buf_w[gt]
                gt -= 1
            else:
                we += buf_w[t]
                t += 1
        if acc + wl >= need:
            hi = lt
        elif acc + wl + we >= need:
            return v
        else:
            acc += wl + we
            lo = gt + 1
    return np.inf


@njit(cache=True, nogil=True)
def _core2_range(X, Y, Z, W, start, end, box, n_inner, wsum, leaf_of, need, lo, hi, out):
    """Squared core chords of the points lo..hi-1 (tree order) into ``out``.

    By the triangle inequality a point's core chord lies within the chord ``d`` to
    another point of that point's core chord ``c``: in [c - d, c + d] (a ball around
    one holds the other's ball of radius less by ``d``). So each point after the first
    intersects these bounds over the points of its leaf done before it (and the one
    just before it), and its core is selected from that annulus only
    (:func:`_annulus_core`, bounds widened a little against rounding) when the annulus
    is thinner than ``_ANNULUS`` times the sum of its radii, else searched with the
    heap bounded by the outer radius; the first point, or one whose bounds rounding
    broke, is searched in full (:func:`_core_search`). Every answer is exact: the
    bounds only choose how much is looked at.
    """
    n = X.size
    heap_d = np.empty(n)
    heap_w = np.empty(n)
    stack = np.empty(128, np.int64)
    stack_d = np.empty(128)
    chord = np.empty(hi - lo)  # sqrt(out[p]) of the points done, for the bounds
    prev = -1
    for p in range(lo, hi):
        if W[p] >= need:
            out[p] = 0.0
            chord[p - lo] = 0.0
            prev = p
            continue
        c2 = np.inf
        if prev >= 0:
            # Bounds from the point just before and every point of p's leaf done before
            # it (leaves are consecutive runs): the tightest of each.
            r_lo, r_hi = 0.0, np.inf
            for q in range(min(max(start[leaf_of[p]], lo), p - 1), p):
                dx, dy, dz = X[p] - X[q], Y[p] - Y[q], Z[p] - Z[q]
                d = math.sqrt(dx * dx + dy * dy + dz * dz)
                c = chord[q - lo]
                r_lo = max(r_lo, c - d)
                r_hi = min(r_hi, c + d)
            hi2 = r_hi * r_hi * (1.0 + 1e-9) + 1e-300
            lo2 = r_lo * r_lo * (1.0 - 1e-9)
            if r_hi - r_lo < _ANNULUS * (r_hi + r_lo):
                c2 = _annulus_core(p, lo2, hi2, X, Y, Z, W, start, end, box, n_inner, wsum, need, heap_d,
                                   heap_w, stack, stack_d)
            else:  # a thick annulus: the heap's shrinking bound does better
                c2 = _core_search(p, hi2, X, Y, Z, W, start, end, box, n_inner, need, heap_d, heap_w, stack,
                                  stack_d)
        if c2 == np.inf:
            c2 = _core_search(p, np.inf, X, Y, Z, W, start, end, box, n_inner, need, heap_d, heap_w, stack, stack_d)
        out[p] = c2
        chord[p - lo] = math.sqrt(c2)
        prev = p
    return 0


@njit(cache=True, nogil=True)
def _min_core2(C2, start, end, n_inner):
    """The least squared core chord in each node of the tree."""
    n_nodes = start.size
    out = np.empty(n_nodes)
    for node in range(n_nodes - 1, -1, -1):
        if node >= n_inner:
            m = np.inf
            for i in range(start[node], end[node]):
                m = min(m, C2[i])
            out[node] = m
        else:
            out[node] = min(out[2 * node + 1], out[2 * node + 2])
    return out


@njit(cache=True, nogil=True)
def _round_start(comp, start, end, n_inner, cand, low, node_comp, best_d, best_a, best_b):
    """A Borůvka round's start: each node's component (-1 if mixed), each component's
    lightest edge among its points' earlier edges still leaving it, and the points that
    must search (no such edge, and a lower bound below their component's best)."""
    n = comp.size
    for node in range(node_comp.size - 1, -1, -1):
        if node >= n_inner:
            c = comp[start[node]]
            for i in range(start[node] + 1, end[node]):
                if comp[i] != c:
                    c = -1
                    break
            node_comp[node] = c
        else:
            c = node_comp[2 * node + 1]
            node_comp[node] = c if c == node_comp[2 * node + 2] else -1
    best_d[:] = np.inf
    for p in range(n):
        q = cand[p]
        c = comp[p]
        if q >= 0 and comp[q] != c and low[p] < best_d[c]:
            best_d[c], best_a[c], best_b[c] = low[p], p, q
    todo = np.empty(n, np.int64)
    m = 0
    for p in range(n):
        q = cand[p]
        c = comp[p]
        if not (q >= 0 and comp[q] != c) and low[p] < best_d[c]:
            todo[m] = p
            m += 1
    return todo[:m]


@njit(cache=True, nogil=True)
def _search_out(todo, lo, hi, X, Y, Z, C2, start, end, box, n_inner, min_c2, node_comp, comp, best_d,
                low, cand):
    """For the points ``todo[lo:hi]``: the lightest mutual-reachability edge to a point
    of another component, if lighter than the component's best at the round's start
    (``cand`` its other end, ``low`` its weight), else ``cand`` -1 and ``low`` that best
    (a lower bound). Each point's answer depends on the round's start only, so the
    points can be searched in any order, on any number of threads."""
    stack = np.empty(128, np.int64)
    stack_d = np.empty(128)
    for t in range(lo, hi):
        p = todo[t]
        c = comp[p]
        px, py, pz, pc = X[p], Y[p], Z[p], C2[p]
        bound = best_d[c]
        found = -1
        sp = 1
        stack[0] = 0
        stack_d[0] = 0.0
        while sp > 0:
            sp -= 1
            node = stack[sp]
            if node_comp[node] == c or max(stack_d[sp], min_c2[node], pc) >= bound:
                continue
            if node >= n_inner:
                for j in range(start[node], end[node]):
                    if comp[j] == c:
                        continue
                    dx, dy, dz = px - X[j], py - Y[j], pz - Z[j]
                    r = max(dx * dx + dy * dy + dz * dz, pc, C2[j])
                    if r < bound:
                        bound = r
                        found = j
                if bound <= pc:  # nothing can be lighter than the point's own core
                    break
            else:
                a, b = 2 * node + 1, 2 * node + 2
                da, db = _box_d2(box, a, px, py, pz), _box_d2(box, b, px, py, pz)
                if da <= db:
                    a, b, da, db = b, a, db, da
                stack[sp], stack_d[sp] = a, da  # the farther child, searched second
                stack[sp + 1], stack_d[sp + 1] = b, db
                sp += 2
        low[p] = bound
        cand[p] = found
    return 0


@njit(cache=True, nogil=True)
def _round_end(todo, comp, parent, cand, low, best_d, best_a, best_b, ea, eb, ed, ne):
    """A Borůvka round's end: the searched points' edges (in point order, the first of
    equal weights kept), then each component's lightest edge joins it to another unless
    an earlier edge of the round already did (then it would close a cycle). Returns the
    number of edges."""
    for t in range(todo.size):
        p = todo[t]
        c = comp[p]
        if cand[p] >= 0 and low[p] < best_d[c]:
            best_d[c], best_a[c], best_b[c] = low[p], p, cand[p]
    n = comp.size
    for c in range(n):
        if comp[c] != c or best_d[c] == np.inf:
            continue
        ra = _find(parent, best_a[c])
        rb = _find(parent, best_b[c])
        if ra == rb:
            continue
        parent[max(ra, rb)] = min(ra, rb)
        ea[ne], eb[ne], ed[ne] = best_a[c], best_b[c], best_d[c]
        ne += 1
    for p in range(n):
        comp[p] = _find(parent, p)
    return ne


def _boruvka(X, Y, Z, C2, start, end, box, n_inner):
    """Minimum spanning tree of the mutual-reachability graph (squared chords), exact.

    Borůvka's algorithm (as McInnes & Healy 2017 use it for HDBSCAN*): in each round
    every component takes its lightest edge to another component. A point's lightest
    edge out of its component is found by a kd-tree search that skips nodes wholly in
    the component and nodes whose bound (the largest of the box distance, the least
    core in the node and the point's own core) cannot beat the component's best at the
    round's start; a point's edge found in an earlier round is reused while its other
    end is still outside, and its weight bounds the point's later searches from below.
    Equal weights go to the first point in the tree's order, so the tree depends on
    the order of the points only (not on the threads); an edge that would close a
    cycle is skipped (with ties, Borůvka with a union-find still gives a minimum tree).
    O(u log u) rounds of work for u points in practice, O(u) memory.

    Returns edges (a, b, squared mutual-reachability chord) in tree-order indices.
    """
    n = X.size
    min_c2 = _min_core2(C2, start, end, n_inner)
    parent = np.arange(n)
    comp = np.arange(n)
    low = np.zeros(n)  # lower bound of each point's lightest edge out of its component
    cand = np.full(n, -1, np.int64)  # the other end of that edge, when found
    node_comp = np.empty(start.size, np.int64)
    best_d = np.empty(n)
    best_a = np.empty(n, np.int64)
    best_b = np.empty(n, np.int64)
    ea = np.empty(max(n - 1, 0), np.int64)
    eb = np.empty(max(n - 1, 0), np.int64)
    ed = np.empty(max(n - 1, 0))
    ne = 0
    while ne < n - 1:
        todo = _round_start(comp, start, end, n_inner, cand, low, node_comp, best_d, best_a, best_b)
        args = (todo, X, Y, Z, C2, start, end, box, n_inner, min_c2, node_comp, comp, best_d, low, cand)
        spans = np.append(np.arange(0, todo.size, _CHUNK_SITES), todo.size)
        _run_chunks(_search_out, [(args[0], lo, hi, *args[1:]) for lo, hi in zip(spans[:-1], spans[1:])])
        before, ne = ne, _round_end(todo, comp, parent, cand, low, best_d, best_a, best_b, ea, eb, ed, ne)
        if ne == before:  # cannot happen with finite cores; never loop for ever
            raise RuntimeError("hdbscan_sphere: Borůvka's round joined no components")
    return ea, eb, ed


@njit(cache=True, nogil=True)
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


def _mst(xyz, weight, min_weight):
    """Core chords and the minimum spanning tree of the mutual-reachability graph.

    Returns
    -------
    core : ndarray of shape (u,)
        Core chord of each site (:func:`core_chords`).
    (a, b, d2) : tuple of ndarrays of shape (u - 1,)
        The tree's edges between sites ``a`` and ``b`` and their squared
        mutual-reachability chords, sorted by d2 (stable); None when a
        core chord is infinite (the sites weigh less than ``min_weight``) or u < 2.
    """
    n = len(weight)
    tree, core2, pts = _tree_core2(xyz, weight, min_weight)
    site = tree[0]  # the tree's point i is site site[i]
    core = np.empty(n)
    core[site] = np.sqrt(core2)
    if n < 2 or not np.isfinite(core2).all():
        return core, None
    a, b, d2 = _boruvka(*pts, core2, *tree[1:])
    a, b = site[a], site[b]
    # Equal distances stay in the order Borůvka found them (fixed by the sites: the
    # tree among ties depends on that order anyway).
    order = _stable_argsort(d2)
    return core, (a[order], b[order], d2[order])


def _sites_hdbscan(lat, lon, weight, min_weight, min_cluster_weight, floor_km, method):
    """Labels of sites in an order fixed by their coordinates; see :func:`hdbscan_sphere`."""
    n = lat.size
    core, mst = _mst(unit_vectors(lat, lon), weight, min_weight)
    if n == 0 or not np.isfinite(core).all():
        return np.full(n, -1, np.int64)
    if n == 1:
        return np.array([0 if weight[0] >= min_cluster_weight * (1.0 - CORE_RTOL) else -1])
    a, b, d2 = mst
    # Below the floor every distance counts as the floor: the hierarchy is flat there.
    low = max(floor_km, _MIN_DISTANCE_KM)
    dist_km = np.maximum(chord_km(np.sqrt(d2)), low)
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
    # The set of sites only: by latitude, then longitude (mod 360), then first record
    # (sites are numbered in order of their first record, so stable sorts keep it).
    order = _site_order(site_lat, site_lon)
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
    # Per record, on the engine's threads as DBSCAN does it.
    labels = np.empty(n, np.int64)
    core_mask = np.empty(n, np.bool_)
    parts = _threads() if n >= _PARALLEL_MIN_RECORDS else 1
    bounds = [n * j // parts for j in range(parts + 1)]
    _run_chunks(_expand, [(codes[s:e], site_label, site_label >= 0, labels[s:e], core_mask[s:e])
                          for s, e in zip(bounds, bounds[1:])])
    return labels, core_mask
