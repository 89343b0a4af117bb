"""Discs that add nothing to a union of discs: found before the union, and left out of it.

A dense cluster has thousands of sites whose discs overlap many times over; most lie
wholly inside their neighbours' discs, yet unioning them all was most of the boundaries
stage's time. :func:`covered_discs` finds such discs with a conservative, provable test,
so the union of the remaining discs is the same point set.

The test is made on the polygons exactly as they are unioned: ``segments``-gons with
straight edges in one (unwrapped) longitude/latitude plane
(:func:`cluster.engine.polygons.disc_union`).

- **Usable polygons.** In the plane ``(lon * s_j, lat)``, with ``s_j`` the cosine of the
  centre's latitude (an affine map, so convexity and containment are kept), a polygon
  ``P_j`` is usable when every turn of its ring and the centre's side of every edge have
  one strict sign and the ring crosses the ray from the centre once: ``P_j`` is then
  convex and goes once around its centre. ``rho_j`` is the distance from the centre to
  the nearest edge line less a margin (1e-9 degree, about 0.1 mm, a million times the
  rounding of the arithmetic): the circle of radius ``rho_j`` about the centre lies in
  ``P_j`` (it is inside every edge's half-plane), and a point is taken as inside ``P_j``
  only when it lies in that circle (about 99.4 % of the disc's radius with 32 segments).
  Polar caps and whatever else is not usable are never dropped and never cover.
- **Covered.** A usable ``P_i`` is the union of its fan triangles ``(c_i, v_k, v_k+1)``
  (it is star-shaped from its centre), and a triangle lies in the convex ``P_j`` when its
  three corners do. ``P_i`` is dropped when each of its triangles lies in one single
  other usable polygon that has not been dropped.
- **No cycle.** Sites are decided one after the other, in a fixed pseudo-random order of
  their coordinates (:func:`_decision_order`). A dropped disc may have been covered by
  discs dropped after it, but each of those was covered only by discs not dropped at its
  own turn, so the "was covered by" relation has no cycle and, by induction from the
  last disc dropped, every dropped disc lies inside the union of the discs kept. Within
  a disc the answer does not depend on the order its candidates are tried in, so the
  same sites in any order give the same answer.

Neighbours come from a grid of cubic cells on the unit vectors (edge = the chord of the
radius): a polygon that contains ``c_i`` has its centre within about one disc radius.
Missing a neighbour could only keep a disc, never drop one wrongly.

Hand-written because no library does it: GEOS (shapely) has cascaded unions but nothing
that drops redundant inputs before an overlay, and its ``covered_by`` predicate against
the union of a disc's neighbours would cost about as much as the union it is meant to
save.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from cluster._runtime import numba_cache_dir, rebuild_damaged_cache
from cluster.engine.geo import EARTH_RADIUS_KM

__all__ = ["covered_discs"]

# numba's cache folder, set before the kernels below are decorated (see cluster._runtime).
numba_cache_dir()

#: How far inside every edge of a covering polygon a corner must be, degrees.
MARGIN_DEG = 1e-9
# Grid cells: three indices of 20 bits packed into an int64.
_MAX_CELLS_PER_AXIS = 1 << 20
# The nine columns of cells about a disc's cell, nearest first.
_COL_DX = np.array([0, -1, 1, 0, 0, -1, -1, 1, 1], np.int64)
_COL_DY = np.array([0, 0, 0, -1, 1, -1, 1, -1, 1], np.int64)


@njit(cache=True, nogil=True)
def _inscribed(rings, cx, cy, margin):
    """Per ring, its x scale (the cosine of its centre's latitude) and, when it is usable,
    the radius less ``margin`` of the circle about its centre inside every edge line in the
    plane ``(lon * scale, lat)`` (0 when it is not usable).

    Usable: every turn of the ring and the centre's side of every edge have one strict
    sign, and the ring crosses the ray from the centre towards +x once (it goes once
    around the centre), so the polygon is convex and contains that circle. The scaling
    is affine, so it keeps convexity and containment.
    """
    n, s = rings.shape[0], rings.shape[1]
    scale = np.ones(n)
    rad = np.zeros(n)
    for j in range(n):
        sx = np.cos(np.radians(cy[j]))
        scale[j] = sx
        sign = 0.0
        best = np.inf
        crossings = 0
        ok = sx > 0.0
        for k in range(s):
            ax, ay = sx * (rings[j, k, 0] - cx[j]), rings[j, k, 1] - cy[j]
            bx, by = sx * (rings[j, (k + 1) % s, 0] - cx[j]), rings[j, (k + 1) % s, 1] - cy[j]
            qx, qy = sx * (rings[j, (k + 2) % s, 0] - cx[j]), rings[j, (k + 2) % s, 1] - cy[j]
            ex, ey = bx - ax, by - ay
            bend = ex * (qy - by) - ey * (qx - bx)
            side = ax * by - ay * bx  # the centre (the origin) relative to edge a -> b
            if sign == 0.0:
                sign = 1.0 if bend > 0 else -1.0
            if not (bend * sign > 0 and side * sign > 0):
                ok = False
                break
            if (ay < 0.0) != (by < 0.0) and (ax * by - ay * bx) * (by - ay) > 0:
                crossings += 1  # the edge crosses the +x axis (x > 0 at the crossing)
            best = min(best, abs(side) / np.sqrt(ex * ex + ey * ey))
        if ok and crossings == 1:
            rad[j] = max(best - margin, 0.0)
    return scale, rad


@njit(cache=True, nogil=True)
def _covered(rings, cx, cy, order, cell, margin):
    """Drop mask: each disc, in ``order``, whose fan triangles each lie in one other
    usable, not dropped polygon (see the module docstring)."""
    n, s = rings.shape[0], rings.shape[1]
    scale, rad = _inscribed(rings, cx, cy, margin)
    keys = np.empty(n, np.int64)
    ix = np.empty(n, np.int64)
    iy = np.empty(n, np.int64)
    iz = np.empty(n, np.int64)
    for i in range(n):
        phi, lam = np.radians(cy[i]), np.radians(cx[i])
        # From 1, so that the neighbouring cells' indices are never negative.
        ix[i] = np.int64((np.cos(phi) * np.cos(lam) + 1.0) / cell) + 1
        iy[i] = np.int64((np.cos(phi) * np.sin(lam) + 1.0) / cell) + 1
        iz[i] = np.int64((np.sin(phi) + 1.0) / cell) + 1
        keys[i] = (ix[i] << 40) | (iy[i] << 20) | iz[i]
    # The candidates' data in grid order, so a cell's discs are read in sequence.
    by_key = np.argsort(keys, kind="mergesort")
    sorted_keys = keys[by_key]
    gx = cx[by_key]
    gy = cy[by_key]
    gscale = scale[by_key]
    grad2 = rad[by_key] ** 2
    pos = np.empty(n, np.int64)  # each disc's grid position
    pos[by_key] = np.arange(n)
    dropped = np.zeros(n, np.bool_)  # by grid position
    tri = np.zeros(s, np.bool_)  # fan triangles of the disc at hand covered so far
    corner = np.zeros(s, np.bool_)  # its rim vertices inside the candidate's circle
    for ii in range(n):
        i = order[ii]
        if rad[i] == 0.0:
            continue
        tri[:] = False
        n_tri = 0
        for col in range(9):
            # The disc's own column of cells first, then the sides, then the corners:
            # the nearest discs first, so a disc is decided sooner (not differently).
            # Cells (dx, dy, -1 .. 1) are consecutive in key order.
            base = ((ix[i] + _COL_DX[col]) << 40) | ((iy[i] + _COL_DY[col]) << 20)
            lo = np.searchsorted(sorted_keys, base | (iz[i] - 1))
            hi = np.searchsorted(sorted_keys, base | (iz[i] + 1), side="right")
            for q in range(lo, hi):
                r2 = grad2[q]
                if dropped[q] or r2 == 0.0 or q == pos[i]:
                    continue
                sx, ox, oy = gscale[q], gx[q], gy[q]
                px, py = sx * (cx[i] - ox), cy[i] - oy
                if not px * px + py * py < r2:
                    continue
                for k in range(s):
                    # Only corners of triangles not yet covered (k - 1 and k).
                    corner[k] = False
                    if not (tri[k] and tri[k - 1]):
                        px, py = sx * (rings[i, k, 0] - ox), rings[i, k, 1] - oy
                        corner[k] = px * px + py * py < r2
                # Triangle k (the centre and corners k and k + 1) lies in polygon q.
                for k in range(s):
                    if not tri[k] and corner[k] and corner[(k + 1) % s]:
                        tri[k] = True
                        n_tri += 1
                if n_tri == s:
                    break
            if n_tri == s:
                break
        dropped[pos[i]] = n_tri == s
    return dropped[pos]


@rebuild_damaged_cache
def covered_discs(lat, lon, rings, radius_km: float, *, margin_deg: float = MARGIN_DEG) -> np.ndarray:
    """Which discs lie inside the union of the others that are kept (may be left out of it).

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Disc centres in degrees, ``lon`` in the frame of ``rings``.
    rings : ndarray of shape (n, segments, 2)
        Each disc's polygon ``(lon, lat)`` in degrees (:func:`cluster.engine.polygons.disc_vertices`),
        all in one unwrapped longitude frame.
    radius_km : float
        Great-circle radius of the discs, km.
    margin_deg : float, default 1e-9
        How far inside a covering polygon's edges a point must be, degrees.

    Returns
    -------
    ndarray of shape (n,), bool
        True for a disc whose polygon lies inside the union of the polygons marked False
        (so the union of those is the union of all). Decided in an order fixed by the
        coordinates, so the same sites in any order give the same answer.
    """
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    lon = np.ascontiguousarray(lon, dtype=np.float64)
    rings = np.ascontiguousarray(rings, dtype=np.float64)
    if rings.ndim != 3 or rings.shape[2] != 2 or not len(lat) == len(lon) == rings.shape[0]:
        raise ValueError(f"covered_discs needs n centres and rings of shape (n, segments, 2); got {len(lat)} "
                         f"latitudes, {len(lon)} longitudes and rings of shape {rings.shape}")
    n, segments = rings.shape[0], rings.shape[1]
    delta = radius_km / EARTH_RADIUS_KM
    cell = 2.0 * np.sin(delta / 2.0)  # the chord of the radius
    if n < 2 or segments < 3 or not 2.0 / cell < _MAX_CELLS_PER_AXIS - 3 or delta >= np.pi / 4:
        return np.zeros(n, dtype=bool)
    return _covered(rings, lon, lat, _decision_order(lat, lon), cell, float(margin_deg))


def _decision_order(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random order of the sites: by a hash of their coordinates' bits (a
    splitmix64 finaliser), ties by ``(lat, lon)``. It depends on the sites, not on the
    order they come in; and it keeps fewer discs than a sweep in latitude, which leaves the
    last rows of a dense cluster with few covers (26,337 kept of 178,087 at 10 M demo
    records, against 30,919)."""
    h = lat.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ lon.view(np.uint64)
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return np.lexsort((lon, lat, h))

