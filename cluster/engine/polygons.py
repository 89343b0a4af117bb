"""Geodesic discs and their union on the sphere, and the antimeridian split.

Shared by every boundary method (:mod:`cluster.stages.boundaries` and
:mod:`cluster.stages.concave`): a disc of radius ``r`` km around a site is built with the
spherical destination-point formula on the clustering's sphere (radius
:data:`cluster.engine.geo.EARTH_RADIUS_KM`), so its vertices lie exactly ``r`` from the
centre along evenly spaced azimuths, whatever the latitude. Discs are unioned in a
longitude frame unwrapped around the cluster (no jump at +-180 degrees), and a disc that
contains a pole becomes a polar cap bounded by the pole's parallel; the result is then
cut into parts inside [-180, 180] (RFC 7946 style) by :func:`split_antimeridian`. Discs
that lie inside the union of the others are left out of it first
(:func:`cluster.engine.cover.covered_discs`).

shapely has no geodesic buffer and no antimeridian handling, hence these few functions.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from cluster.engine.geo import EARTH_RADIUS_KM

__all__ = ["disc_union", "disc_vertices", "split_antimeridian"]


def disc_vertices(lat, lon, radius_km: float, segments: int) -> np.ndarray:
    """Vertices of geodesic discs, longitudes continuous around each centre.

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Disc centres in degrees.
    radius_km : float
        Great-circle radius in km.
    segments : int
        Number of vertices per disc.

    Returns
    -------
    ndarray of shape (n, segments, 2)
        ``(lon, lat)`` in degrees; longitudes may leave [-180, 180] by up to the disc's
        longitudinal half-width.
    """
    phi1 = np.radians(np.asarray(lat, float))[:, None]
    lam1 = np.radians(np.asarray(lon, float))[:, None]
    delta = radius_km / EARTH_RADIUS_KM
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)[None, :]
    sin_phi2 = np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(theta)
    phi2 = np.arcsin(np.clip(sin_phi2, -1, 1))
    dlam = np.arctan2(np.sin(theta) * np.sin(delta) * np.cos(phi1),
                      np.cos(delta) - np.sin(phi1) * sin_phi2)
    return np.stack([np.degrees(lam1 + dlam), np.degrees(phi2)], axis=-1)



def polar_cap(ring: np.ndarray, north: bool, ref_lon: float) -> Polygon:
    """A disc that contains a pole, as the region between its rim and the pole.

    Parameters
    ----------
    ring : ndarray of shape (segments, 2)
        The disc's vertices ``(lon, lat)`` in degrees (:func:`disc_vertices`).
    north : bool
        The disc contains the north pole (else the south pole).
    ref_lon : float
        Centre of the unwrapped longitude frame, degrees.

    Returns
    -------
    shapely Polygon
        Valid, spanning ``ref_lon - 180`` to ``ref_lon + 180`` in longitude.
    """
    lon = (ring[:, 0] - (ref_lon - 180.0)) % 360.0 + (ref_lon - 180.0)
    order = np.argsort(lon, kind="stable")
    lon, lat = lon[order], ring[order, 1]
    # Close the rim at the frame's edges by interpolating across the seam.
    lo, hi = ref_lon - 180.0, ref_lon + 180.0
    span = (lon[0] - lo) + (hi - lon[-1])
    t = (hi - lon[-1]) / span if span > 0 else 0.5
    seam_lat = lat[-1] + t * (lat[0] - lat[-1])
    pole = 90.0 if north else -90.0
    xs = np.concatenate([[lo], lon, [hi, hi, lo]])
    ys = np.concatenate([[seam_lat], lat, [seam_lat, pole, pole]])
    return shapely.make_valid(Polygon(np.column_stack([xs, ys])))



def split_antimeridian(geom):
    """Cut a geometry drawn in an unwrapped longitude frame into parts inside [-180, 180].

    Parameters
    ----------
    geom : shapely geometry
        Polygons whose longitudes may leave [-180, 180] (e.g. 175 to 185 degrees).

    Returns
    -------
    shapely Polygon or MultiPolygon
        The same area in EPSG:4326 longitudes, split at +-180 degrees (RFC 7946 style);
        an empty Polygon when nothing is left.
    """
    parts = []
    minx, _, maxx, _ = geom.bounds
    for k in range(int(np.floor((minx + 180) / 360)), int(np.floor((maxx + 180) / 360)) + 1):
        piece = geom.intersection(box(-180 + 360 * k, -90, 180 + 360 * k, 90))
        if piece.is_empty:
            continue
        piece = shapely.transform(piece, lambda xy, k=k: xy - np.array([360.0 * k, 0.0]))
        parts += [g for g in getattr(piece, "geoms", [piece]) if isinstance(g, Polygon) and g.area > 0]
    if not parts:
        return Polygon()
    # Pieces from both sides of +-180 never touch, but pieces of one polar cap meet
    # along the frame's seam and must be joined again.
    merged = shapely.union_all(parts)
    polys = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon)]
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)



def disc_union(lat, lon, radius_km: float, segments: int = 32, *, prune: bool = True):
    """The union of geodesic discs around sites, not yet split at the antimeridian.

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Disc centres in degrees (n >= 1).
    radius_km : float
        Great-circle radius of each disc, km.
    segments : int, default 32
        Vertices per disc.
    prune : bool, default True
        Leave out, before the union, the discs that lie inside the union of the others
        (:func:`cluster.engine.cover.covered_discs`): the same point set, faster.

    Returns
    -------
    geometry : shapely geometry
        Valid union in a longitude frame unwrapped around ``lon[0]``.
    touches_pole : bool
        Some disc contains a pole (it is drawn as a polar cap).
    """
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)
    ref = float(lon[0])
    # Unwrap every centre to within 180 degrees of the first, so a cluster that straddles
    # the antimeridian is contiguous in this frame.
    lon_u = (lon - ref + 180.0) % 360.0 - 180.0 + ref
    rings = disc_vertices(lat, lon_u, radius_km, segments)
    delta_deg = np.degrees(radius_km / EARTH_RADIUS_KM)
    polar_n = lat + delta_deg >= 90.0
    polar_s = lat - delta_deg <= -90.0
    ordinary = ~(polar_n | polar_s)
    kept = ordinary.copy()
    if prune and ordinary.sum() > 1:
        # Discs inside the union of the others add nothing to it: leaving them out gives
        # the same point set, for a fraction of the union's cost (cluster.engine.cover).
        # Polar caps are neither left out nor taken as covering.
        from cluster.engine.cover import covered_discs

        idx = np.flatnonzero(ordinary)
        kept[idx[covered_discs(lat[idx], lon_u[idx], rings[idx], radius_km)]] = False
    polys = list(shapely.polygons(rings[kept])) if kept.any() else []
    for i in np.flatnonzero(~ordinary):
        polys.append(polar_cap(rings[i], bool(polar_n[i]), ref))
    merged = shapely.union_all(polys)
    merged = shapely.make_valid(merged)
    return merged, bool((~ordinary).any())
