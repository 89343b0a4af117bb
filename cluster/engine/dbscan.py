"""Exact weighted DBSCAN on the sphere, in memory linear in the number of sites.

Semantics
---------
The result is scikit-learn's ``DBSCAN(eps=eps_km / 6371.0088, min_samples=min_weight,
metric="haversine").fit(np.radians(np.column_stack([lat, lon])), sample_weight=weight)``:

* a point is *core* when the total weight of the points within ``eps_km`` of it
  (itself included) is at least ``min_weight``; ``min_weight`` may be fractional;
* clusters are the connected components of core points, two core points being
  connected when they lie within ``eps_km`` of each other;
* a non-core point within ``eps_km`` of some core point is a *border* point; the rest
  are noise, labelled -1.

Core points and their grouping are exactly scikit-learn's. Border points are where
DBSCAN is order-dependent (scikit-learn gives a border point to whichever cluster's
expansion reaches it first); here the **tie rule** is: a border point joins the cluster
of its *nearest* core point, by the haversine distance below, and among equally near
core points the one with the lowest input index. Clusters are numbered 0, 1, ... in the
order of their lowest-index core point. The result therefore depends only on the input,
never on the internal order of work.

Ties at the threshold are decided exactly, whatever the order of summation: a point is
core when its neighbourhood weight reaches ``min_weight`` up to a relative tolerance of
:data:`CORE_RTOL` (1e-9), i.e. when the floating-point sum is at least
``min_weight * (1 - 1e-9)``. Fractional counts make exact ties common (weights 1/2, 1/3,
1/5 ... that add up to exactly the threshold in exact arithmetic), and a sum of such
floats lands a few ulps either side of the threshold depending on its order, which
would make the decision depend on the order of the data (and scikit-learn's on its
tree). The tolerance is far below one document (1e-9 of the threshold: 5e-7 documents
at a threshold of 500) and far above rounding (about 1e-16 per addition), so a
neighbourhood that reaches the threshold in exact arithmetic is core and one that
misses it by a fraction of a document is not. This equals scikit-learn's result on the
same points with the weights scaled to integers (exact sums), which the tests check.

Two levels
----------
With ``split_scale`` S > 1 (``[clustering] split_scale``), DBSCAN is two-level: the
clusters above are taken at the threshold, and sites are also flagged *dense*, core at
S times it (the same scan goes on to the higher weight).

* A cluster at the threshold that holds no dense site stays whole (a sparse metro).
* One that does is replaced by its *dense clusters*, the components of its dense sites
  (two joined when within ``eps_km``), and by the *remainder*: its core sites farther
  than ``eps_km`` from every dense site, joined when within ``eps_km`` of each other,
  each group kept when it weighs at least the threshold (a city of the region that never
  reaches the higher density, such as Frankfurt beside Mannheim-Heidelberg).

So far only core sites are kept where a cluster was split: two dense clusters' cores are
more than ``eps_km`` apart, and a remainder's more than ``eps_km`` from both, but their
border sites need not be, and the overlay would join them again (footprints, discs of
``eps_km / 2``, would overlap). That alone would leave out every site between a dense
core and the region's edge: on PatentsView 2013 (15 km, S = 3) 10 % of the world's
patents, among them Ford's Dearborn (442) beside Detroit and the centres of Dallas and
Philadelphia. So the split's clusters then *regain* the rest of their region in rounds,
outwards: a site of the region still left out joins the cluster whose members are within
``eps_km`` of it when all those members belong to one cluster of the split; a site that
would touch two clusters, or two sites that would join different clusters within
``eps_km`` of each other, stay out for good. The gap between two clusters of a split
stays wider than ``eps_km`` (the overlay keeps them apart), and each round decides all
its sites at once, so the order of the input does not matter. On PatentsView 2013 this
brings the patents left out of every cluster from 10.4 % back to 1.9 % (at the threshold
alone, 18.8 %), and the Detroit area's cluster from "Warren" to "Detroit".

Clusters are numbered by their lowest-index member. This is the same as clustering at
both weights with two calls, splitting and regrowing (the tests keep that reference);
one fold, one grid and one scan make it about 1.2 times one level at 1 M records, where
the two calls and the split took 7.8 times (``benchmarks/bench_hdbscan.py``).
"Farther than ``eps_km`` from every dense site" is decided on the squared chord between
unit vectors, below the square of :func:`cluster.engine.geo.chord_for_km` as a kd-tree
query bounded by that chord decides it.

Distances
---------
Great-circle distances on a sphere of radius :data:`cluster.engine.geo.EARTH_RADIUS_KM`.
A pair is within ``eps_km`` exactly when scikit-learn's ``BallTree`` leaf test accepts
it: with ``x = radians(lat)``, ``y = radians(lon)`` and ``eps = eps_km / 6371.0088``::

    sin(0.5 * (x1 - x2))**2 + cos(x1) * cos(x2) * sin(0.5 * (y1 - y2))**2 <= sin(0.5 * eps)**2

evaluated in the same order with the same libm ``sin``/``cos``, so a pair at the
boundary is decided bit for bit as scikit-learn decides it. (BallTree's node-level
shortcuts, which accept or prune whole nodes by the triangle inequality, can differ
from its own leaf test for pairs within a few ulps of ``eps``; nothing can mirror that.)
This formula is periodic in longitude, so the antimeridian and longitudes outside
[-180, 180] need no special case, and it is well-conditioned at the poles. A radius of
half the circumference (about 20,015 km) or more covers the whole sphere. (For such a
radius scikit-learn's leaf test, with ``sin(0.5 * eps)**2 < 1``, would wrap around and
reject far pairs.)

Identical coordinates are folded into one *site* carrying their summed weight before
anything else: a site and its copies have the same neighbourhood, so this changes
nothing but the work, and every input point gets its site's label and core flag.
A site's index, for the tie rule and the numbering, is that of its first point.

Algorithm
---------
1. **Fold duplicates** with an open-addressing hash table on the 128-bit (lat, lon)
   bit pattern: expected O(n) for n records, giving u sites, with weights summed in
   record order.
2. **Grid.** Sites become 3-D unit vectors (:func:`cluster.engine.geo.unit_vectors`) in cubic
   cells whose side is the chord of ``eps`` (plus slack), so that every neighbour of a
   site lies in the 3 x 3 x 3 block of cells around its own. Cells are not kept in a
   dict: sites are sorted by an int64 cell key, and since the cells of a block that
   differ only in z have consecutive keys, a block is at most nine contiguous runs of
   the sorted sites, found once per cell by galloping search and kept for later passes.
   With a huge radius the grid degenerates to a few cells, and the scan to a brute
   force, which stays exact.
3. **Candidate test.** The squared chord between unit vectors decides a pair unless it
   is within a relative 1e-8 of the radius (far more than the rounding error of either
   formula); only then is the haversine expression above evaluated.
4. **Core sites**: for each site, neighbour weights are summed in an order fixed by
   the set of sites (its own weight, then the block's runs in a fixed order, sites
   within a run by cell key, latitude, longitude), so that the decision does not depend
   on the input order; the scan stops as soon as the threshold is reached (weights are
   non-negative, so that is exact), and a cell whose whole block weighs too little is
   skipped.
5. **Clusters**: union-find over pairs of core sites, scanning core sites only; a pair
   already in one component is skipped before any distance is computed.
6. **Border sites**: the nearest core site within reach, found by chord; the haversine
   expression orders only the candidates whose chords are too close to tell apart.

Steps 4 and 6 run on ``numba.get_num_threads()`` threads; every site is decided by one
thread, so the result does not depend on the thread count.

Complexity: O(n) time for the fold and O(u log u) for the sort, plus the scans, which
cost the number of (site, candidate) pairs in the blocks: about u times the number of
sites within two radii when the radius is small against the spread of the data, and
O(u^2) in the worst case, when a few cells hold all sites (with ``eps_km = 20000``,
50,000 scattered sites take some 6 s on two cores). Memory is O(n) for the
record-to-site map plus O(u) for the sites, their cells and the union-find; no
neighbourhood is ever stored.

Cells per axis are capped at 2**20 so that cell keys fit in int64: for radii below
about 12 m the cells are larger than the radius, which is still exact and costs time
only where many distinct sites share one such cell.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from numbers import Real

import numba
import numpy as np
from numba import njit

from cluster._runtime import numba_cache_dir, rebuild_damaged_cache
from cluster.engine.geo import EARTH_RADIUS_KM, chord_for_km, unit_vectors

# The estimator form, SphericalDBSCAN, is in cluster.engine.estimator: scikit-learn's base
# classes cost 1.5 s of imports that a run, which calls dbscan_sphere, does not need.
__all__ = ["CORE_RTOL", "dbscan_sphere", "warm_up"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# numba's cache: the kernels are compiled once (about 15 s) and loaded from disk later
# --------------------------------------------------------------------------------------


# Where numba keeps the kernels: a folder of its own under the user cache, decided before
# the kernels below are decorated (numba reads it then); see cluster._runtime.
numba_cache_dir()

# Cell keys pack three cell indices of 20 bits into an int64.
_MAX_CELLS_PER_AXIS = 1 << 20
# The chord test decides a pair unless it is this close to the radius. Unit vectors and
# the haversine expression are each off by a few 1e-16 at most, so the margin is huge
# compared with rounding yet leaves the exact test to a vanishing share of pairs.
_REL_SLACK = 1e-8
_ABS_SLACK = 1e-13

_NEG_ZERO_BITS = np.uint64(0x8000000000000000)
#: Relative tolerance of the core test: core when the neighbourhood weight is at least
#: ``min_weight * (1 - CORE_RTOL)`` (see "Ties at the threshold" in the module docstring).
CORE_RTOL = 1e-9
# Smallest inputs for which the parallel passes pay for their threads (2 cores).
_PARALLEL_MIN_SITES = 1 << 16
_PARALLEL_MIN_RECORDS = 1 << 19


# --------------------------------------------------------------------------------------
# Validation (shared by the function and the estimator, with the caller's names)
# --------------------------------------------------------------------------------------


def _check_positive(value, name: str, owner: str) -> float:
    try:
        ok = isinstance(value, Real) and not isinstance(value, bool) and 0 < float(value) < math.inf
    except OverflowError:  # an int beyond float range
        ok = False
    if not ok:
        raise ValueError(f"The {name!r} parameter of {owner} must be a float in (0, inf). "
                         f"Got {value!r} instead.")
    return float(value)


def _as_float_array(values, name: str, owner: str, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"The {name!r} parameter of {owner} must be an array of numbers. "
                         f"Got {type(values).__name__} instead.") from None
    if arr.ndim != ndim:
        shape = "(n,)" if ndim == 1 else "(n, 2)"
        raise ValueError(f"The {name!r} parameter of {owner} must be an array of shape {shape}. "
                         f"Got an array of shape {arr.shape} instead.")
    return arr


@njit(cache=True)
def _first_outside(values, lo, hi):
    """Index of the first value that is not finite or not in [lo, hi], or -1."""
    # A branch-free count first (it vectorises); v - v is 0 exactly for finite v.
    bad = 0
    for i in range(values.size):
        v = values[i]
        bad += not ((v - v == 0.0) & (lo <= v) & (v <= hi))
    if bad:
        for i in range(values.size):
            v = values[i]
            if not (v - v == 0.0 and lo <= v <= hi):
                return i
    return -1


def _require(values, lo, hi, name: str, owner: str, expected: str, where: str = "index") -> None:
    i = _first_outside(values, lo, hi)
    if i >= 0:
        raise ValueError(f"The {name!r} parameter of {owner} must {expected}. "
                         f"Got {float(values[i])!r} at {where} {i} instead.")


def _check_weight(weight, n: int, name: str, owner: str):
    """Validated weights as a contiguous float64 array, or None for unit weights."""
    if weight is None:
        return None
    w = np.ascontiguousarray(_as_float_array(weight, name, owner, 1))
    if w.shape[0] != n:
        raise ValueError(f"The {name!r} parameter of {owner} must have one weight per point "
                         f"({n}). Got {w.shape[0]} weights instead.")
    _require(w, 0.0, math.inf, name, owner, "hold finite weights >= 0")
    return w


# --------------------------------------------------------------------------------------
# Compiled kernels
# --------------------------------------------------------------------------------------


@njit(inline="always")
def _hash(a, b):
    h = a * np.uint64(0x9E3779B97F4A7C15) ^ b * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= h >> np.uint64(32)
    h *= np.uint64(0xD6E8FEB86659FD93)
    h ^= h >> np.uint64(29)
    return h


# A hash-table slot: the (lat, lon) bit patterns, the site (-1 when empty) and its
# weight, in one 32-byte record so that a probe touches one cache line.
_SLOT = np.dtype([("lat", np.uint64), ("lon", np.uint64), ("site", np.int64),
                  ("weight", np.float64)], align=True)


@njit(cache=True, nogil=True)
def _fold_into(lat_bits, lon_bits, weight, start, codes, table, first, u):
    """Fold records from ``start`` on into the hash table until all are done or the
    table is half full; returns (next record, number of sites).

    The table has a fixed size here: growing it inside this loop would make numba
    reload it on every access (a factor of three in time).
    """
    unit = weight.size == 0
    cap = table.shape[0]
    mask = np.uint64(cap - 1)
    limit = cap // 2  # load factor at most 1/2
    for i in range(start, lat_bits.size):
        if u == limit:
            return i, u
        a = lat_bits[i]
        b = lon_bits[i]
        if a == _NEG_ZERO_BITS:  # -0.0 and 0.0 are one coordinate
            a = np.uint64(0)
        if b == _NEG_ZERO_BITS:
            b = np.uint64(0)
        w = 1.0 if unit else weight[i]
        h = np.int64(_hash(a, b) & mask)
        while True:
            slot = table[h]
            if slot.site < 0:
                slot.lat = a
                slot.lon = b
                slot.site = u
                slot.weight = w
                first[u] = i
                codes[i] = u
                u += 1
                break
            if slot.lat == a and slot.lon == b:
                codes[i] = slot.site
                slot.weight += w
                break
            h = (h + 1) & (cap - 1)
    return lat_bits.size, u


@njit(cache=True, nogil=True)
def _fold_duplicates(lat_bits, lon_bits, weight, codes, table):
    """Fold identical (lat, lon) bit patterns into sites.

    Writes each record's site to ``codes``; sites are numbered in order of first
    appearance. ``weight`` empty means unit weights; ``table`` is an empty (all sites
    -1) table of ``_SLOT`` records, a power of two long, grown here as needed. Returns
    each site's first record (increasing) and its weight, summed in record order.
    """
    cap = table.shape[0]
    first = np.empty(cap // 2, np.int64)
    i, u = _fold_into(lat_bits, lon_bits, weight, 0, codes, table, first, 0)
    while i < lat_bits.size:
        cap *= 2
        mask = np.uint64(cap - 1)
        grown = np.empty(cap, table.dtype)
        for g in range(cap):
            grown[g].site = -1
        for old in range(cap // 2):
            if table[old].site >= 0:
                g = np.int64(_hash(table[old].lat, table[old].lon) & mask)
                while grown[g].site >= 0:
                    g = (g + 1) & (cap - 1)
                grown[g] = table[old]
        table = grown
        first = np.concatenate((first, np.empty(cap // 4, np.int64)))
        i, u = _fold_into(lat_bits, lon_bits, weight, i, codes, table, first, u)
    wsum = np.empty(u, np.float64)
    for h in range(cap):
        if table[h].site >= 0:
            wsum[table[h].site] = table[h].weight
    return first[:u].copy(), wsum


def _empty_table(capacity: int) -> np.ndarray:
    cap = 1 << max(10, (2 * max(capacity, 1) - 1).bit_length())
    table = np.empty(cap, _SLOT)
    table["site"] = -1
    return table


@njit(cache=True, nogil=True)
def _expand(codes, site_label, site_core, labels, core):
    """Per-record results from per-site results, for one chunk of records."""
    for i in range(codes.size):
        labels[i] = site_label[codes[i]]
        core[i] = site_core[codes[i]]


@njit(cache=True)
def _cell_keys(xyz, side, bits):
    """Cell of each unit vector as ``ix << 2 bits | iy << bits | iz``: with a power of
    two cells per axis, decoding a key takes shifts, not divisions."""
    top = (1 << bits) - 1
    keys = np.empty(xyz.shape[0], np.int64)
    for i in range(xyz.shape[0]):
        ix = min(int((xyz[i, 0] + 1.0) / side), top)
        iy = min(int((xyz[i, 1] + 1.0) / side), top)
        iz = min(int((xyz[i, 2] + 1.0) / side), top)
        keys[i] = (ix << (2 * bits)) | (iy << bits) | iz
    return keys


@njit(cache=True)
def _order_within_cells(order, keys, lat, lon):
    """Turn ``order`` (sorting ``keys``) into the order by key, then latitude, then
    longitude: a function of the set of sites only."""
    u = keys.size
    # Sorted copies, so that the many tiny cells are sorted in contiguous memory.
    k = keys[order]
    a = lat[order]
    b = lon[order]
    s = 0
    while s < u:
        e = s + 1
        while e < u and k[e] == k[s]:
            e += 1
        if e - s <= 16:
            for i in range(s + 1, e):
                ta, tb, to = a[i], b[i], order[i]
                j = i - 1
                while j >= s and (a[j] > ta or (a[j] == ta and b[j] > tb)):
                    a[j + 1] = a[j]
                    b[j + 1] = b[j]
                    order[j + 1] = order[j]
                    j -= 1
                a[j + 1] = ta
                b[j + 1] = tb
                order[j + 1] = to
        else:
            run = np.argsort(b[s:e], kind="mergesort")
            run = run[np.argsort(a[s:e][run], kind="mergesort")]
            order[s:e] = order[s:e][run]
        s = e
    return order


@njit(cache=True)
def _cell_starts(keys):
    u = keys.size
    n_cells = 1
    for i in range(1, u):
        if keys[i] != keys[i - 1]:
            n_cells += 1
    starts = np.empty(n_cells + 1, np.int64)
    starts[0] = 0
    c = 1
    for i in range(1, u):
        if keys[i] != keys[i - 1]:
            starts[c] = i
            c += 1
    starts[n_cells] = u
    return starts


@njit(cache=True)
def _cosines(lat):
    out = np.empty(lat.size, np.float64)
    for i in range(lat.size):
        out[i] = math.cos(lat[i])  # libm, as scikit-learn's Cython code calls it
    return out


@njit(inline="always")
def _seek(keys, i, target):
    """First j >= i with keys[j] >= target, by galloping from i (keys sorted)."""
    u = keys.size
    if i >= u or keys[i] >= target:
        return i
    lo = i
    step = 1
    hi = i + 1
    while hi < u and keys[hi] < target:
        lo = hi
        step *= 2
        hi = lo + step
    if hi > u:
        hi = u
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if keys[mid] < target:
            lo = mid
        else:
            hi = mid
    return hi


@njit(inline="always")
def _block_runs(keys, k, bits, a, b, lo, hi):
    """Index runs of the sites in the 3 x 3 x 3 cells around cell key ``k``.

    Cells differing only in z have consecutive keys, so each (x, y) column of the block
    is one contiguous run of the key-sorted sites. For a fixed column offset the run
    bounds only grow with ``k``, so ``a``/``b`` (one pair per offset) are carried from
    cell to cell of a sweep and advanced by galloping. The centre column comes first
    (where a core test is most likely to be settled). Returns the number of non-empty
    runs written to ``lo``/``hi``.
    """
    m = 1 << bits
    iz = k & (m - 1)
    iy = (k >> bits) & (m - 1)
    ix = k >> (2 * bits)
    z0 = max(iz - 1, 0)
    z1 = min(iz + 1, m - 1)
    n_runs = 0
    for t in range(9):
        o = (t + 4) % 9
        jx = ix + o // 3 - 1
        jy = iy + o % 3 - 1
        if 0 <= jx < m and 0 <= jy < m:
            base = (jx << (2 * bits)) | (jy << bits)
            a[o] = _seek(keys, a[o], base + z0)
            b[o] = _seek(keys, max(a[o], b[o]), base + z1 + 1)
            if a[o] < b[o]:
                lo[n_runs] = a[o]
                hi[n_runs] = b[o]
                n_runs += 1
    return n_runs


@njit(inline="always")
def _reduced_haversine(lat1, lon1, cos1, lat2, lon2, cos2):
    # Term for term scikit-learn's HaversineDistance.rdist; symmetric bit for bit.
    s0 = math.sin(0.5 * (lat1 - lat2))
    s1 = math.sin(0.5 * (lon1 - lon2))
    return s0 * s0 + cos1 * cos2 * s1 * s1


@njit(inline="always")
def _squared_chord(x, y, z, p, q):
    dx = x[p] - x[q]
    dy = y[p] - y[q]
    dz = z[p] - z[q]
    return dx * dx + dy * dy + dz * dz


@njit(inline="always")
def _within(x, y, z, lat, lon, coslat, p, q, reduced, lo2, hi2):
    """Whether sites p and q are within reach: by chord, or by the haversine test when
    the chord is too close to the radius to tell."""
    d2 = _squared_chord(x, y, z, p, q)
    if d2 <= lo2:
        return True
    if d2 > hi2:
        return False
    return _reduced_haversine(lat[p], lon[p], coslat[p], lat[q], lon[q], coslat[q]) <= reduced


@njit(cache=True, nogil=True)
def _core_chunk(c0, c1, starts, keys, bits, x, y, z, lat, lon, coslat, weight, cum_weight,
                slack, min_weight, dense_weight, reduced, lo2, hi2, runs, n_runs, core, dense):
    """Core flags of the sites in cells c0..c1-1: weight within reach >= min_weight.

    ``dense`` gets the flags at ``dense_weight`` (>= ``min_weight``, two-level DBSCAN) from
    the same scan, which then goes on to that weight; for one level it is ``core`` itself.
    Also stores each cell's block runs in ``runs``/``n_runs`` for the later passes.
    ``cum_weight`` holds prefix sums of ``weight``; a cell whose whole 3 x 3 x 3 block
    weighs less than ``min_weight`` by more than ``slack`` (a bound on the rounding of
    the prefix sums) has no core site and is skipped.
    """
    a = np.zeros(9, np.int64)
    b = np.zeros(9, np.int64)
    lo = np.empty(9, np.int64)
    hi = np.empty(9, np.int64)
    for c in range(c0, c1):
        k = _block_runs(keys, keys[starts[c]], bits, a, b, lo, hi)
        n_runs[c] = k
        block = 0.0
        for r in range(k):
            runs[c, r, 0] = lo[r]
            runs[c, r, 1] = hi[r]
            block += cum_weight[hi[r]] - cum_weight[lo[r]]
        if block + slack < min_weight:
            continue
        for p in range(starts[c], starts[c + 1]):
            xp = x[p]
            yp = y[p]
            zp = z[p]
            # The site's own weight first: a heavy site is core before any scan.
            total = weight[p]
            for r in range(k):
                if total >= dense_weight:
                    break
                for q in range(lo[r], hi[r]):
                    dx = xp - x[q]
                    dy = yp - y[q]
                    dz = zp - z[q]
                    d2 = dx * dx + dy * dy + dz * dz
                    inside = d2 <= lo2 and q != p
                    if d2 > lo2 and d2 <= hi2:
                        inside = _reduced_haversine(lat[p], lon[p], coslat[p],
                                                    lat[q], lon[q], coslat[q]) <= reduced
                    # A product, not a branch: which side of the radius a candidate falls
                    # is unpredictable. Weights are finite, so w * 0.0 adds nothing.
                    total += weight[q] * inside
                    # Weights are >= 0 and rounding is monotone, so a running sum that
                    # has reached the threshold stays there: the decision is exact.
                    if total >= dense_weight:
                        break
            core[p] = total >= min_weight
            dense[p] = total >= dense_weight


@njit(cache=True, nogil=True)
def _components(starts, runs, n_runs, core_rank, x, y, z, lat, lon, coslat, tiebreak,
                reduced, lo2, hi2):
    """Cluster number of each core site, numbered in order of their lowest tiebreak:
    union-find over the core pairs within reach.

    Geometry and ``tiebreak`` describe the core sites only; ``core_rank[i]`` is the
    number of core sites before site ``i``, which maps a block run of all sites, and a
    site, to the core sites.
    """
    u = x.size
    parent = np.arange(u)
    for c in range(starts.size - 1):
        p0 = core_rank[starts[c]]
        p1 = core_rank[starts[c + 1]]
        for p in range(p0, p1):
            rp = _find(parent, p)
            for r in range(n_runs[c]):
                for q in range(max(core_rank[runs[c, r, 0]], p + 1), core_rank[runs[c, r, 1]]):
                    # Joined already: no distance needed. This keeps the pass cheap
                    # even when every pair is within reach.
                    if parent[q] == rp or _find(parent, q) == rp:
                        continue
                    if _within(x, y, z, lat, lon, coslat, p, q, reduced, lo2, hi2):
                        rq = _find(parent, q)
                        if rq < rp:
                            parent[rp] = rq
                            rp = rq
                        else:
                            parent[rq] = rp

    big = np.iinfo(np.int64).max
    lowest = np.full(u, big, np.int64)
    for p in range(u):
        r = _find(parent, p)
        lowest[r] = min(lowest[r], tiebreak[p])
    roots = np.nonzero(lowest < big)[0]
    order = np.argsort(lowest[roots])
    root_label = np.empty(u, np.int64)
    for k in range(order.size):
        root_label[roots[order[k]]] = k
    comp = np.empty(u, np.int64)
    for p in range(u):
        comp[p] = root_label[_find(parent, p)]
    return comp


@njit(inline="always")
def _find(parent, p):
    while parent[p] != p:
        parent[p] = parent[parent[p]]  # path halving
        p = parent[p]
    return p


@njit(cache=True, nogil=True)
def _border_chunk(c0, c1, starts, runs, n_runs, x, y, z, lat, lon, coslat, core, core_rank,
                  cx, cy, cz, clat, clon, ccoslat, ctiebreak, comp, reduced, lo2, hi2, labels):
    """Labels of the sites in cells c0..c1-1.

    A core site has its cluster (``comp`` of its ``core_rank``); another site the
    cluster of its nearest core site within reach (ties to the lowest tiebreak), or -1.
    Arrays prefixed with ``c`` describe the core sites only, so that only they are
    scanned.
    """
    lo = np.empty(9, np.int64)
    hi = np.empty(9, np.int64)
    for c in range(c0, c1):
        k = 0
        for r in range(n_runs[c]):
            lo[k] = core_rank[runs[c, r, 0]]
            hi[k] = core_rank[runs[c, r, 1]]
            if lo[k] < hi[k]:
                k += 1
        for p in range(starts[c], starts[c + 1]):
            if core[p]:
                labels[p] = comp[core_rank[p]]
                continue
            best = -1
            # The nearest by chord first; the haversine, with its two sines, only for
            # the few candidates whose chord is too close to that one's to order them.
            best_d2 = math.inf
            for r in range(k):
                for q in range(lo[r], hi[r]):
                    dx = x[p] - cx[q]
                    dy = y[p] - cy[q]
                    dz = z[p] - cz[q]
                    d2 = dx * dx + dy * dy + dz * dz
                    if d2 < best_d2 and (d2 <= lo2 or (d2 <= hi2 and _reduced_haversine(
                            lat[p], lon[p], coslat[p], clat[q], clon[q], ccoslat[q]) <= reduced)):
                        best_d2 = d2
            if best_d2 < math.inf:
                near2 = best_d2 * (1.0 + 1e-9) + 1e-14 * math.sqrt(best_d2) + 1e-28
                best_d = math.inf
                for r in range(k):
                    for q in range(lo[r], hi[r]):
                        dx = x[p] - cx[q]
                        dy = y[p] - cy[q]
                        dz = z[p] - cz[q]
                        d2 = dx * dx + dy * dy + dz * dz
                        if d2 > near2:
                            continue
                        d = _reduced_haversine(lat[p], lon[p], coslat[p],
                                               clat[q], clon[q], ccoslat[q])
                        if d2 > lo2 and not d <= reduced:
                            continue
                        if best < 0 or d < best_d or (d == best_d
                                                      and ctiebreak[q] < ctiebreak[best]):
                            best = q
                            best_d = d
            labels[p] = comp[best] if best >= 0 else -1


# --------------------------------------------------------------------------------------
# Shared implementation
# --------------------------------------------------------------------------------------


def _threads() -> int:
    return max(1, numba.get_num_threads())


def _kernels() -> tuple:
    """The cached kernels, compiled at their first call in a process without a cache."""
    from cluster.engine.cover import _covered, _inscribed  # the boundaries' kernels

    return (_first_outside, _fold_into, _fold_duplicates, _expand, _cell_keys, _order_within_cells,
            _cell_starts, _cosines, _core_chunk, _components, _border_chunk, _inscribed, _covered)


def compile_cache_state() -> tuple[bool | None, str | None]:
    """Whether numba's cache holds every kernel of the engine, and where it is.

    Returns
    -------
    warm : bool or None
        True when every kernel is compiled in this process or cached on disk for this
        source (numba's index, checked against the source file's time stamp), False when
        one must be compiled, None when numba's cache cannot be inspected.
    directory : str or None
        numba's cache directory for this module.
    """
    try:
        directory = None
        warm = True
        for kernel in _kernels():
            cache = kernel._cache  # numba's FunctionCache (a private attribute)
            directory = getattr(cache, "_cache_path", directory)
            if not kernel.overloads and not cache._cache_file._load_index():
                warm = False
        return warm, directory
    except Exception:  # another numba version: say nothing rather than fail
        return None, None


_checked_cache = False


def _announce_compilation():
    """Once per process, before a cold cache makes the first call wait: say why it waits
    (a log line) and show it (a progress bar with the time elapsed, :func:`cluster._progress.waiting`).

    Returns
    -------
    context manager
        To hold around the first call's work; a no-op when the kernels are cached.
    """
    global _checked_cache
    if _checked_cache:
        return nullcontext()
    _checked_cache = True
    warm, directory = compile_cache_state()
    if warm is False:
        log.info("compiling the clustering engine once (about 20 s); later runs use the cache in %s", directory)
        return _compiling()
    return nullcontext()


@contextmanager
def _compiling():
    """The first call's work, then the boundaries' kernels (:mod:`cluster.engine.cover`),
    under one notice: a cold cache makes the run wait once, not twice."""
    from cluster._progress import waiting
    from cluster.engine.polygons import disc_union

    with waiting("compiling the clustering engine (once)"):
        yield
        disc_union([0.0, 0.0, 0.01], [0.0, 0.01, 0.0], 5.0)


def warm_up() -> None:
    """Compile (or load) every kernel of the engine now, on a tiny input.

    ``make install`` calls it, so that the first run does not wait for numba.

    Returns
    -------
    None
    """
    lat = np.array([0.0, 0.0, 0.01, 10.0])
    lon = np.array([0.0, 0.01, 0.0, 10.0])
    dbscan_sphere(lat, lon, eps_km=5.0, min_weight=2.0)
    dbscan_sphere(lat, lon, np.ones(4), eps_km=5.0, min_weight=2.0)
    # Two levels, with a remainder (the last three sites) for the kernel that only they use.
    dbscan_sphere(np.zeros(5), np.arange(5) * 0.03, np.array([3.0, 0.5, 0.5, 0.5, 0.5]), eps_km=5.0,
                  min_weight=1.0, split_scale=3.0)
    # The boundaries' kernel too (cluster.engine.cover, through the disc union), so a
    # first run compiles nothing.
    from cluster.engine.polygons import disc_union

    disc_union([0.0, 0.0, 0.01], [0.0, 0.01, 0.0], 5.0)


# Kept between calls (starting threads costs about a millisecond a call), per process:
# a pool inherited through fork has no threads behind it.
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _run_chunks(fn, arg_sets) -> list:
    """Run a nogil kernel over argument tuples on up to ``_threads()`` threads."""
    workers = _threads()
    if workers <= 1 or len(arg_sets) <= 1:
        return [fn(*args) for args in arg_sets]
    key = (os.getpid(), workers)
    pool = _pools.get(key)
    if pool is None:
        pool = _pools.setdefault(key, ThreadPoolExecutor(workers, thread_name_prefix="dbscan"))
    return list(pool.map(lambda args: fn(*args), arg_sets))


def _fold(lat: np.ndarray, lon: np.ndarray, weight):
    """Sites of the records: each record's site, and each site's first record and weight.

    One thread: the fold is bound by memory latency, and folding chunks on two threads
    then merging their sites measured slower (1 M city-level records, two cores).
    """
    n = lat.shape[0]
    codes = np.empty(n, np.int64)
    # Sized for up to 2**16 sites: growing the table from small costs about a quarter
    # of the fold on city-level inputs, and 4 MB up front is little next to the records.
    table = _empty_table(min(n, 1 << 16))
    first, site_weight = _fold_duplicates(lat.view(np.uint64), lon.view(np.uint64),
                                          np.empty(0) if weight is None else weight,
                                          codes, table)
    return codes, first, site_weight


def _dbscan(lat: np.ndarray, lon: np.ndarray, weight, eps_km: float, min_weight: float,
            split_scale: float = 1.0):
    """DBSCAN on validated contiguous float64 arrays; see :func:`dbscan_sphere`."""
    n = lat.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    codes, first, site_weight = _fold(lat, lon, weight)
    site_lat, site_lon = lat[first], lon[first]

    # The radius exactly as scikit-learn's BallTree reduces it (libm sin, squared by a
    # product); half the circumference or more takes in the whole sphere.
    eps = eps_km / EARTH_RADIUS_KM
    if eps >= math.pi:
        reduced = math.inf
        chord = 2.0
    else:
        s = math.sin(0.5 * eps)
        reduced = s * s
        chord = 2.0 * math.sqrt(reduced)  # reduced haversine = (chord / 2)**2
    c_lo = max(chord * (1.0 - _REL_SLACK) - _ABS_SLACK, 0.0)
    c_hi = chord * (1.0 + _REL_SLACK) + _ABS_SLACK
    side = max(c_hi * (1.0 + 1e-9), 2.0 / (_MAX_CELLS_PER_AXIS - 1))
    bits = max(1, int(2.0 / side).bit_length())  # 2**bits > int(2 / side), the top cell

    xyz = unit_vectors(site_lat, site_lon)
    keys = _cell_keys(xyz, side, bits)
    order = _order_within_cells(np.argsort(keys), keys, site_lat, site_lon)
    keys = keys[order]
    x, y, z = (np.ascontiguousarray(xyz[order, k]) for k in range(3))
    lat_r = np.radians(site_lat[order])  # the very values scikit-learn would be given
    lon_r = np.radians(site_lon[order])
    coslat = _cosines(lat_r)
    site_weight = site_weight[order]
    tiebreak = first[order]
    starts = _cell_starts(keys)
    geometry = (x, y, z, lat_r, lon_r, coslat)
    radius = (reduced, c_lo * c_lo, c_hi * c_hi)

    # Many more chunks than threads, of equal site counts, balance dense cities; below
    # 2**16 sites, threads cost more than they save.
    n_cells = starts.size - 1
    n_spans = 8 * _threads() if keys.size >= _PARALLEL_MIN_SITES else 1
    cuts = np.searchsorted(starts[:-1], np.linspace(0, keys.size, n_spans + 1)[1:-1])
    cuts = np.unique(np.concatenate(([0], cuts, [n_cells]))).tolist()
    spans = list(zip(cuts[:-1], cuts[1:]))

    cum_weight = np.concatenate(([0.0], np.cumsum(site_weight)))
    # A prefix sum is off by at most u * 2**-53 times the total weight (Higham's bound
    # for recursive summation), a difference of two by twice that: eight times is safe.
    slack = 8.0 * keys.size * 2.0**-53 * max(cum_weight[-1], min_weight)
    core = np.zeros(keys.size, np.bool_)
    # Each cell's block: at most nine runs of site indices, found once, used thrice.
    runs = np.empty((n_cells, 9, 2), np.int32 if keys.size < 2**31 else np.int64)
    n_runs = np.empty(n_cells, np.int8)
    # Exact ties: a sum that reaches min_weight in exact arithmetic may fall a few ulps
    # short in floating point, depending on the order of summation.
    threshold = float(min_weight) * (1.0 - CORE_RTOL)
    # Two levels: the same scan goes on to the higher weight (same order of summation as a
    # pass of its own, so the same flags); one level: ``dense`` is ``core``.
    two_level = split_scale != 1.0
    dense = np.zeros(keys.size, np.bool_) if two_level else core
    dense_threshold = float(min_weight * split_scale) * (1.0 - CORE_RTOL) if two_level else threshold
    _run_chunks(_core_chunk, [(c0, c1, starts, keys, bits, *geometry, site_weight, cum_weight,
                               slack, threshold, dense_threshold, *radius, runs, n_runs, core, dense)
                              for c0, c1 in spans])

    # Clusters and borders look at core sites only.
    core_rank = np.concatenate(([0], np.cumsum(core)))
    core_idx = np.flatnonzero(core)
    core_geometry = tuple(g[core_idx] for g in geometry)
    core_tiebreak = tiebreak[core_idx]
    comp = _components(starts, runs, n_runs, core_rank, *core_geometry, core_tiebreak, *radius)
    label = np.empty(keys.size, np.int64)
    _run_chunks(_border_chunk, [(c0, c1, starts, runs, n_runs, *geometry, core, core_rank,
                                 *core_geometry, core_tiebreak, comp, *radius, label)
                                for c0, c1 in spans])
    if two_level and core.any():
        label, core = _split(starts, runs, n_runs, geometry, radius, tiebreak, site_weight, threshold,
                             eps_km, label, core, dense)

    site_label = np.empty_like(label)
    site_label[order] = label
    site_core = np.empty_like(core)
    site_core[order] = core
    labels = np.empty(n, np.int64)
    core_mask = np.empty(n, np.bool_)
    parts = _threads() if n >= _PARALLEL_MIN_RECORDS else 1
    bounds = [n * j // parts for j in range(parts + 1)]
    _run_chunks(_expand, [(codes[s:e], site_label, site_core, labels[s:e], core_mask[s:e])
                          for s, e in zip(bounds, bounds[1:])])
    return labels, core_mask


def _split(starts, runs, n_runs, geometry, radius, tiebreak, weight, threshold, eps_km, label, core, dense):
    """Two-level DBSCAN from the sites' clusters at the threshold (``label``, ``core``) and
    their core flags at the higher weight (``dense``), all in the grid's order; see
    :func:`dbscan_sphere`. Returns the labels (numbered by lowest tiebreak) and core flags.

    The dense clusters are the components of the dense core sites (union-find over the
    same blocks); "farther than ``eps_km`` from every dense core site" is decided on
    chords as a kd-tree query bounded by the chord of ``eps_km`` decides it (squared
    chord strictly below the squared bound), the remainder's groups are components at
    ``eps_km``, and a group's weight is summed in input order (its sites by tiebreak).
    """
    u = label.size
    dense_rank = np.concatenate(([0], np.cumsum(dense)))
    dense_idx = np.flatnonzero(dense)
    dense_geometry = tuple(g[dense_idx] for g in geometry)
    dense_comp = _components(starts, runs, n_runs, dense_rank, *dense_geometry, tiebreak[dense_idx], *radius)

    n_first = int(label.max()) + 1
    reached = np.zeros(n_first, np.bool_)
    reached[label[dense_idx]] = True
    in_split = (label >= 0) & reached[np.maximum(label, 0)]
    keep = (label >= 0) & ~in_split
    out = np.full(u, -1, np.int64)
    out[dense_idx] = dense_comp
    next_label = int(dense_comp.max()) + 1 if dense_idx.size else 0
    out[keep] = label[keep] + next_label
    next_label += n_first
    out_core = np.where(keep, core, dense)
    rest = in_split & core & ~dense
    if rest.any():
        bound = chord_for_km(eps_km)
        _apart(starts, runs, n_runs, *geometry[:3], dense_rank, *dense_geometry[:3], bound * bound, rest)
    if rest.any():
        rest_rank = np.concatenate(([0], np.cumsum(rest)))
        rest_idx = np.flatnonzero(rest)
        groups = _components(starts, runs, n_runs, rest_rank, *(g[rest_idx] for g in geometry),
                             tiebreak[rest_idx], *radius)
        by_input = np.argsort(tiebreak[rest_idx], kind="stable")
        heavy = np.bincount(groups[by_input], weights=weight[rest_idx[by_input]]) >= threshold
        take = heavy[groups]
        out[rest_idx[take]] = groups[take] + next_label
        out_core[rest_idx[take]] = True
    _regrow(starts, runs, n_runs, geometry, radius, label, in_split, out)
    # Numbered by their lowest tiebreak, as DBSCAN numbers its clusters.
    member = np.flatnonzero(out >= 0)
    if member.size:
        big = np.iinfo(np.int64).max
        lowest = np.full(int(out.max()) + 1, big, np.int64)
        np.minimum.at(lowest, out[member], tiebreak[member])
        used = np.flatnonzero(lowest < big)
        rank = np.full(lowest.size, -1, np.int64)
        rank[used[np.argsort(lowest[used])]] = np.arange(used.size)
        out[member] = rank[out[member]]
    return out, out_core


def _regrow(starts, runs, n_runs, geometry, radius, label, in_split, out):
    """Give the clusters of a split (``out``, not yet renumbered) the sites of their
    first-level cluster (``label``) that they can take without touching each other, in
    rounds (see "Two levels" in the module docstring); ``out`` is updated in place.
    Regained sites are not core."""
    home = np.full(int(out.max()) + 1 if out.size else 0, -1, np.int64)
    member = out >= 0
    home[out[member]] = label[member]  # each cluster's cluster at the threshold
    pending = np.flatnonzero(in_split & ~member)
    if pending.size == 0:
        return
    cell = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    while pending.size:
        lo, hi = _member_labels(pending, cell, runs, n_runs, *geometry, *radius, out)
        touched = hi >= 0
        take = touched & (lo == hi)
        take[take] = home[lo[take]] == label[pending[take]]
        # Two sites joining different clusters within eps_km of each other: both stay out.
        _clash(pending, cell, runs, n_runs, *geometry, *radius, lo, take)
        if not touched.any():
            break
        out[pending[take]] = lo[take]
        pending = pending[~touched]


@njit(cache=True, nogil=True)
def _member_labels(pending, cell, runs, n_runs, x, y, z, lat, lon, coslat, reduced, lo2, hi2, out):
    """Lowest and highest cluster (``out`` >= 0) among the sites within reach of each
    pending site (-1 for ``hi`` when there is none)."""
    lo = np.full(pending.size, np.iinfo(np.int64).max, np.int64)
    hi = np.full(pending.size, -1, np.int64)
    for i in range(pending.size):
        p = pending[i]
        c = cell[p]
        for r in range(n_runs[c]):
            for q in range(runs[c, r, 0], runs[c, r, 1]):
                if out[q] >= 0 and _within(x, y, z, lat, lon, coslat, p, q, reduced, lo2, hi2):
                    lo[i] = min(lo[i], out[q])
                    hi[i] = max(hi[i], out[q])
    return lo, hi


@njit(cache=True, nogil=True)
def _clash(pending, cell, runs, n_runs, x, y, z, lat, lon, coslat, reduced, lo2, hi2, lo, take):
    """Clear ``take[i]`` where another pending site within reach would join a different
    cluster (``lo``); decided from the flags as they were, so the order does not matter."""
    where = np.full(cell.size, -1, np.int64)
    for i in range(pending.size):
        if take[i]:
            where[pending[i]] = i
    clash = np.zeros(pending.size, np.bool_)
    for i in range(pending.size):
        if not take[i]:
            continue
        p = pending[i]
        c = cell[p]
        for r in range(n_runs[c]):
            for q in range(runs[c, r, 0], runs[c, r, 1]):
                j = where[q]
                if j >= 0 and lo[j] != lo[i] and _within(x, y, z, lat, lon, coslat, p, q, reduced, lo2, hi2):
                    clash[i] = True
                    break
            if clash[i]:
                break
    for i in range(pending.size):
        if clash[i]:
            take[i] = False


@njit(cache=True, nogil=True)
def _apart(starts, runs, n_runs, x, y, z, dense_rank, dx, dy, dz, bound2, rest):
    """Clear ``rest[p]`` where a dense core site (``dx``, ``dy``, ``dz``, indexed through
    ``dense_rank``) lies at a squared chord below ``bound2`` from site p."""
    for c in range(starts.size - 1):
        for p in range(starts[c], starts[c + 1]):
            if not rest[p]:
                continue
            for r in range(n_runs[c]):
                for q in range(dense_rank[runs[c, r, 0]], dense_rank[runs[c, r, 1]]):
                    ex = x[p] - dx[q]
                    ey = y[p] - dy[q]
                    ez = z[p] - dz[q]
                    if ex * ex + ey * ey + ez * ez < bound2:
                        rest[p] = False
                        break
                if not rest[p]:
                    break


@rebuild_damaged_cache
def dbscan_sphere(lat, lon, weight=None, *, eps_km, min_weight, split_scale=1.0):
    """Exact weighted DBSCAN of points on the sphere.

    Equivalent to scikit-learn's ``DBSCAN(eps=eps_km / 6371.0088,
    min_samples=min_weight, metric="haversine")`` fitted on ``np.radians([lat, lon])``
    with ``sample_weight=weight``: same core points, same clusters of core points, same
    noise. See the module docstring for the border tie rule, the label numbering and
    the algorithm.

    Parameters
    ----------
    lat : array-like of shape (n,)
        Latitudes in degrees, finite, in [-90, 90].
    lon : array-like of shape (n,)
        Longitudes in degrees, any finite value (taken modulo 360).
    weight : array-like of shape (n,), default=None
        Finite non-negative weight of each point; None means 1 for every point.
    eps_km : float
        Neighbourhood radius in kilometres of great-circle distance on a sphere of
        radius 6371.0088 km, in (0, inf). About 20,015 km (half the circumference) or
        more is the whole sphere.
    min_weight : float
        A point is core when the weight within ``eps_km`` of it, its own included, is
        at least ``min_weight`` (up to the relative tolerance :data:`CORE_RTOL`), in
        (0, inf).
    split_scale : float, default=1.0
        Two-level DBSCAN when above 1 (see "Two levels" in the module docstring): a
        cluster holding points core at ``split_scale * min_weight`` is replaced by its
        clusters at that weight and its remainder; in [1, inf).

    Returns
    -------
    labels : ndarray of shape (n,), int64
        Cluster of each point, numbered 0, 1, ... in order of each cluster's
        lowest-index core point (two levels: lowest-index member); -1 for noise.
    core_mask : ndarray of shape (n,), bool
        True for core points (two levels: the members that are core at their level).

    Raises
    ------
    ValueError
        If a parameter is out of range, naming it, its allowed range and the value.

    Examples
    --------
    >>> labels, core = dbscan_sphere([0.0, 0.0, 0.05, 40.0], [0.0, 0.05, 0.0, 40.0],
    ...                              eps_km=10.0, min_weight=3)
    >>> labels.tolist(), core.tolist()
    ([0, 0, 0, -1], [True, True, True, False])
    """
    owner = "dbscan_sphere"
    with _announce_compilation():
        eps_km = _check_positive(eps_km, "eps_km", owner)
        min_weight = _check_positive(min_weight, "min_weight", owner)
        if not (isinstance(split_scale, Real) and not isinstance(split_scale, bool)
                and 1.0 <= float(split_scale) < math.inf):
            raise ValueError(f"The 'split_scale' parameter of {owner} must be a float in [1, inf). "
                             f"Got {split_scale!r} instead.")
        lat, lon, weight = _check_points(lat, lon, weight, owner)
        return _dbscan(lat, lon, weight, eps_km, min_weight, float(split_scale))


def _check_points(lat, lon, weight, owner: str):
    """Validated contiguous float64 latitudes, longitudes (degrees) and weights (or None),
    for the engine's public functions (``owner`` names the function in messages)."""
    lat = np.ascontiguousarray(_as_float_array(lat, "lat", owner, 1))
    lon = np.ascontiguousarray(_as_float_array(lon, "lon", owner, 1))
    if lon.shape[0] != lat.shape[0]:
        raise ValueError(f"The 'lon' parameter of {owner} must have one value per latitude "
                         f"({lat.shape[0]}). Got {lon.shape[0]} values instead.")
    _require(lat, -90.0, 90.0, "lat", owner, "hold finite latitudes in [-90, 90] degrees")
    _require(lon, -math.inf, math.inf, "lon", owner, "hold finite longitudes in degrees")
    return lat, lon, _check_weight(weight, lat.shape[0], "weight", owner)

