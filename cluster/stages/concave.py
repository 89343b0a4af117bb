"""Concave-hull cluster boundaries (``[boundaries] method = "concave"``).

The default boundary (:func:`cluster.stages.boundaries.cluster_polygon`) is the union of
geodesic discs of radius ``eps_km / 2`` around the member sites: it follows the
clustering exactly but bulges ``eps_km / 2`` beyond the outermost sites. The concave
alternative hugs the sites more tightly:

1. the member sites are projected to a local azimuthal-equidistant plane centred on the
   cluster (spherical, R = 6371.0088 km, the clustering's sphere), where distances from
   the centre are true and shapes near it are barely distorted;
2. ``shapely.concave_hull(ratio)`` of the projected sites (a point or line for one or
   collinear sites) is buffered by ``margin_km``, so every member site lies strictly
   inside, then densified (vertices at most ``margin_km`` apart) and projected back to
   longitude/latitude in a frame unwrapped around the cluster;
3. the result is intersected with the disc union: a concave hull may bridge a bay in
   which another cluster lies, the discs never hold another cluster's sites (they would
   have been merged), so the intersection holds every member site and no other
   cluster's, like the discs;
4. it is split at the antimeridian like the discs.

A cluster whose discs reach a pole keeps its disc boundary (a polar cap has no sensible
azimuthal hull), as documented in the config.
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import CRS, Transformer

from cluster.engine.geo import EARTH_RADIUS_KM
from cluster.engine.polygons import disc_union, split_antimeridian

_SPHERE = CRS.from_proj4(f"+proj=longlat +R={EARTH_RADIUS_KM * 1000.0} +no_defs +type=crs")


def _centre(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float]:
    """Mean direction of the sites on the sphere (lat, lon in degrees)."""
    phi, lam = np.radians(lat), np.radians(lon)
    v = np.array([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)]).sum(axis=1)
    norm = np.linalg.norm(v)
    if norm < 1e-12:  # antipodal sites cancel out: any site will do
        return float(lat[0]), float(lon[0])
    v /= norm
    return float(np.degrees(np.arcsin(np.clip(v[2], -1, 1)))), float(np.degrees(np.arctan2(v[1], v[0])))


def concave_polygon(lat, lon, radius_km: float, segments: int = 32, *, ratio: float = 0.3,
                    margin_km: float = 1.0):
    """Concave boundary of one cluster (see the module docstring).

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Member sites in degrees (n >= 1).
    radius_km : float
        Disc radius (``eps_km / 2``) of the footprint the hull is clipped to.
    segments : int
        Vertices per disc of that footprint.
    ratio : float
        ``shapely.concave_hull`` ratio: 0 most concave, 1 the convex hull.
    margin_km : float
        Buffer around the hull, so sites on it lie strictly inside.

    Returns
    -------
    shapely Polygon or MultiPolygon
        Valid, EPSG:4326 longitude/latitude, split at the antimeridian.
    """
    lat = np.asarray(lat, float)
    lon = np.asarray(lon, float)
    discs, polar = disc_union(lat, lon, radius_km, segments)
    if polar:
        return shapely.normalize(split_antimeridian(discs))
    ref = float(lon[0])
    lat0, lon0 = _centre(lat, lon)
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0!r} +lon_0={lon0!r} +R={EARTH_RADIUS_KM * 1000.0} "
                           "+units=m +no_defs +type=crs")
    fwd = Transformer.from_crs(_SPHERE, local, always_xy=True)
    inv = Transformer.from_crs(local, _SPHERE, always_xy=True)
    x, y = fwd.transform(lon, lat)
    hull = shapely.concave_hull(shapely.multipoints(np.column_stack([x, y])), ratio=ratio)
    margin_m = margin_km * 1000.0
    hull = shapely.segmentize(hull.buffer(margin_m, quad_segs=max(2, segments // 4)), margin_m)

    def back(xy: np.ndarray) -> np.ndarray:
        lo, la = inv.transform(xy[:, 0], xy[:, 1])
        lo = (np.asarray(lo) - ref + 180.0) % 360.0 - 180.0 + ref  # the discs' unwrapped frame
        return np.column_stack([lo, la])

    hull_ll = shapely.make_valid(shapely.transform(hull, back))
    clipped = shapely.make_valid(shapely.intersection(discs, hull_ll))
    return shapely.normalize(split_antimeridian(clipped))
