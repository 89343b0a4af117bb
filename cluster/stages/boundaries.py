"""Stage 5: cluster boundaries and what lies inside them.

Boundary method. A cluster's boundary is the union of geodesic discs of radius
``eps_km / 2`` around its member sites: exactly the overlay footprint of
:mod:`cluster.stages.clustering`, so it contains every member site, and since two clusters'
footprints never overlap (they would have been merged) no site lies in two boundaries.

Discs are computed on the same sphere as the clustering (radius 6371.0088 km) with the
spherical destination-point formula: the vertices lie exactly ``radius`` from the centre
along ``segments`` azimuths, i.e. an azimuthal-equidistant circle, so the disc is the
same whatever the latitude. Vertices are built in a longitude frame unwrapped around the
cluster (no jump at ±180°), unioned with shapely, then split at the antimeridian into
parts inside [-180, 180] (RFC 7946 style). A disc that contains a pole becomes a polar
cap bounded by the pole's parallel. Discs that lie inside the union of their neighbours'
discs (most of them in a dense cluster: 85 % at 10 M demo records) are left out before
the union, by a conservative test that proves it (:mod:`cluster.engine.cover`): the same
point set, for under a third of the CPU time.

Alternative (``[boundaries] method = "concave"``, :mod:`cluster.stages.concave`): a concave
hull of the member sites in a local azimuthal-equidistant projection, buffered by a
small margin and clipped to the disc union above, so it keeps both guarantees.

Counts. A cluster's count per metric is the weight of that metric's sites inside its
boundary (member sites and any noise sites that fall inside), found with a shapely
STRtree.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import shapely

from cluster._progress import progress
from cluster.engine.geo import EARTH_RADIUS_KM, unit_vectors
from cluster.engine.polygons import disc_union, split_antimeridian
from cluster.stages.sites import metric_codes, run_starts

log = logging.getLogger(__name__)


def cluster_polygon(lat, lon, radius_km: float, segments: int = 32):
    """Boundary of one cluster: union of geodesic discs around its sites.

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Member sites in degrees (n >= 1).
    radius_km : float
        Disc radius in km.
    segments : int
        Vertices per disc.

    Returns
    -------
    shapely Polygon or MultiPolygon
        Valid, in EPSG:4326 longitude/latitude, split at the antimeridian.
    """
    merged, _ = disc_union(lat, lon, radius_km, segments)
    out = split_antimeridian(merged)
    return shapely.normalize(out)


def build_boundaries(sites: pd.DataFrame, component: np.ndarray, radius_km: float,
                     segments: int, *, threads: int = 2, method: str = "discs",
                     concave_ratio: float = 0.3, concave_margin_km: float = 1.0) -> list:
    """Boundary polygon of every component (list index = component number).

    Sites of several metrics often share a location: each location gives one disc.
    Clusters are independent and shapely releases the GIL in GEOS calls, so they are
    built on ``threads`` threads, largest first.

    Parameters
    ----------
    sites : DataFrame
        Member sites (``lat``, ``lon`` in degrees).
    component : ndarray of shape (n_sites,)
        Cluster number of each site (0 .. n_clusters - 1).
    radius_km : float
        Disc radius, km (``eps_km / 2``).
    segments : int
        Vertices per disc.
    threads : int, default 2
        Worker threads.
    method : {"discs", "concave"}, default "discs"
        Boundary method (see the module docstring).
    concave_ratio, concave_margin_km : float
        The concave method's parameters (:func:`cluster.stages.concave.concave_polygon`).

    Returns
    -------
    list of shapely Polygon or MultiPolygon
        Valid, EPSG:4326, split at the antimeridian.
    """
    n = int(component.max()) + 1 if len(component) else 0
    # The distinct (cluster, lat, lon) in that order (a stable sort, then the first of
    # each run of equal rows).
    comp = np.asarray(component)
    lat, lon = sites["lat"].to_numpy(dtype=float), sites["lon"].to_numpy(dtype=float)
    order = np.lexsort((lon, lat, comp))
    comp_sorted, lat, lon = comp[order], lat[order], lon[order]
    first = run_starts([comp_sorted, lat, lon])
    comp_sorted, lat, lon = comp_sorted[first], lat[first], lon[first]
    starts = np.searchsorted(comp_sorted, np.arange(n + 1))

    def one(c):
        if method == "concave":
            from cluster.stages.concave import concave_polygon

            return concave_polygon(lat[starts[c]:starts[c + 1]], lon[starts[c]:starts[c + 1]], radius_km,
                                   segments, ratio=concave_ratio, margin_km=concave_margin_km)
        return cluster_polygon(lat[starts[c]:starts[c + 1]], lon[starts[c]:starts[c + 1]], radius_km, segments)

    by_size = sorted(range(n), key=lambda c: starts[c] - starts[c + 1])
    geoms = [None] * n
    if threads > 1 and n > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for c, g in zip(by_size, progress(pool.map(one, by_size), desc="boundaries", total=n, unit="cluster")):
                geoms[c] = g
    else:
        geoms = [one(c) for c in progress(range(n), desc="boundaries", unit="cluster")]
    log.info("built %s %s boundaries from %s locations (disc radius %.3g km, %d segments)",
             f"{n:,}", method, f"{len(lat):,}", radius_km, segments)
    return geoms


def sites_inside(sites: pd.DataFrame, geoms: list) -> np.ndarray:
    """Index of the boundary containing each site (-1 when none).

    A site on the shared edge of two touching boundaries goes to the lower index, so the
    answer does not depend on the spatial index's internal order.

    Parameters
    ----------
    sites : DataFrame
        Points with ``lat`` and ``lon`` in degrees (sites, or places).
    geoms : list of shapely geometries
        Boundaries in EPSG:4326.

    Returns
    -------
    ndarray of shape (n_sites,), int64
    """
    inside = np.full(len(sites), -1, dtype=np.int64)
    if not geoms or len(sites) == 0:
        return inside
    # Per boundary, the points in its bounding box (a binary search on longitude, then a
    # latitude mask), tested with a prepared geometry: as exact as an STRtree query with
    # the "intersects" predicate, without making a shapely point per site (most of that
    # query's cost with a million sites).
    x = sites["lon"].to_numpy(dtype=float)
    y = sites["lat"].to_numpy(dtype=float)
    # Any sort will do (three times faster than a stable one on a million sites): each
    # boundary takes the set of sites in its longitude range, whatever their order.
    by_lon = np.argsort(x)
    x_sorted = x[by_lon]
    for k, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        minx, miny, maxx, maxy = geom.bounds
        cand = by_lon[np.searchsorted(x_sorted, minx, "left"):np.searchsorted(x_sorted, maxx, "right")]
        cand = cand[(y[cand] >= miny) & (y[cand] <= maxy) & (inside[cand] < 0)]
        if len(cand) == 0:
            continue
        # A copy, so the caller's geometry is not left prepared.
        prepared = shapely.from_wkb(shapely.to_wkb(geom))
        shapely.prepare(prepared)
        # Boundaries in index order, only unclaimed sites: a site on the shared edge of two
        # touching boundaries goes to the lower index.
        inside[cand[shapely.intersects_xy(prepared, x[cand], y[cand])]] = k
    return inside


def counts_inside(sites: pd.DataFrame, inside: np.ndarray, n_clusters: int, metrics) -> pd.DataFrame:
    """Weight per metric of the sites inside each boundary.

    Parameters
    ----------
    sites : DataFrame
        Sites with ``metric`` and ``weight`` (fractional-count units).
    inside : ndarray of shape (n_sites,)
        Boundary (cluster number) of each site, -1 for none (:func:`sites_inside`).
    n_clusters : int
        Number of boundaries.
    metrics : sequence of str
        Columns of the result, in order.

    Returns
    -------
    DataFrame of shape (n_clusters, n_metrics)
        Summed weights; 0.0 where a cluster has none of a metric.
    """
    counts = pd.DataFrame(0.0, index=pd.RangeIndex(n_clusters), columns=list(metrics))
    hit = inside >= 0
    if hit.any():
        s = pd.DataFrame({"c": inside[hit], "m": metric_codes(sites, metrics)[hit],
                          "w": sites["weight"].to_numpy()[hit]})
        table = s.pivot_table(index="c", columns="m", values="w", aggfunc="sum", observed=False)
        table = table.reindex(columns=range(len(counts.columns)))
        table.columns = counts.columns
        counts.update(table)
        counts = counts.fillna(0.0)
    return counts


def cluster_area_km2(geoms: list) -> np.ndarray:
    """Area of each boundary on the clustering's sphere, km².

    Parameters
    ----------
    geoms : list of shapely Polygon or MultiPolygon
        Boundaries in EPSG:4326 (split at the antimeridian).

    Returns
    -------
    ndarray of shape (n,), float64
        Geodesic area (pyproj's ``Geod.geometry_area_perimeter`` on the sphere of radius
        :data:`cluster.engine.geo.EARTH_RADIUS_KM`).
    """
    from pyproj import Geod

    geod = Geod(a=EARTH_RADIUS_KM * 1000.0, b=EARTH_RADIUS_KM * 1000.0)
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) / 1e6 if g is not None and not g.is_empty else 0.0
                     for g in geoms])


def cluster_extent(lat, lon, cluster, n_clusters: int, activity=None) -> tuple[np.ndarray, np.ndarray]:
    """The largest great-circle distance across each cluster's sites, and the share of its
    activity at its heaviest location.

    Parameters
    ----------
    lat, lon, cluster, n_clusters
        As for :func:`cluster_extent_km`.
    activity : array of shape (n,), optional
        Each site's activity (default 1 each).

    Returns
    -------
    extent_km : ndarray of shape (n_clusters,), float64
        Largest distance between two of the cluster's locations, km (0 for one location):
        :func:`cluster_extent_km`.
    top_share : ndarray of shape (n_clusters,), float64
        Share of the cluster's activity at its heaviest ``(lat, lon)`` location (1.0 for
        one location).
    """
    act = np.ones(len(np.asarray(lat))) if activity is None else np.asarray(activity, float)
    frame = pd.DataFrame({"c": np.asarray(cluster), "lat": np.asarray(lat, float),
                          "lon": np.asarray(lon, float), "a": act})
    frame = frame.groupby(["c", "lat", "lon"], as_index=False, sort=True)["a"].sum()
    total = np.bincount(frame["c"].to_numpy(), weights=frame["a"].to_numpy(), minlength=n_clusters)
    heaviest = frame.groupby("c")["a"].max().reindex(range(n_clusters), fill_value=0.0).to_numpy()
    top_share = np.divide(heaviest, total, out=np.zeros(n_clusters), where=total > 0)
    return cluster_extent_km(lat, lon, cluster, n_clusters), top_share


def cluster_extent_km(lat, lon, cluster, n_clusters: int) -> np.ndarray:
    """The largest great-circle distance across each cluster's sites (:func:`largest_chord`
    of its distinct locations, each compared once: sites of several metrics often share one).

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Sites inside clusters, degrees.
    cluster : int array of shape (n,)
        Cluster number of each site.
    n_clusters : int
        Number of clusters.

    Returns
    -------
    ndarray of shape (n_clusters,), float64
        Largest distance between two of the cluster's locations, km (0 for one location).
    """
    lat, lon, cluster = np.asarray(lat, float), np.asarray(lon, float), np.asarray(cluster, dtype=np.int64)
    order = np.lexsort((lon, lat, cluster))
    c_sorted, lat, lon = cluster[order], lat[order], lon[order]
    first = run_starts([c_sorted, lat, lon])  # the distinct locations, cluster by cluster
    c_sorted = c_sorted[first]
    xyz_all = unit_vectors(lat[first], lon[first])
    starts = np.searchsorted(c_sorted, np.arange(n_clusters + 1))
    extent = np.zeros(n_clusters)
    for c in range(n_clusters):
        if starts[c + 1] - starts[c] < 2:
            continue
        chord = largest_chord(xyz_all[starts[c]:starts[c + 1]])
        extent[c] = 2.0 * EARTH_RADIUS_KM * np.arcsin(min(chord / 2.0, 1.0))
    return extent


def largest_chord(xyz: np.ndarray) -> float:
    """The largest distance between two of a set of unit vectors (exact).

    Every pair is compared, but only among the points that can be in a farthest pair:
    with ``m`` the mean of the vectors and ``R`` the largest distance from it, a point
    ``x`` is farther than ``|x - m| + R`` from no other point (triangle inequality), so it
    is left out when that bound is below a pair already found. That first pair is the
    farthest among the vertices of the set's convex hull in the gnomonic (central)
    projection onto the plane tangent at the mean direction: when every two points are
    less than 90 degrees apart the farthest pair is a pair of such vertices (the dot
    product with a fixed point, which a chord decreases with, takes its minimum over the
    spherical hull at a vertex, and great circles project to lines), so usually only
    the rim of a cluster is compared. The hull only finds the first pair: the answer is
    exact even where qhull rounds (near-collinear points). The convex hull of the 3-D
    vectors would not help: every point of a sphere is a vertex of it.

    Parameters
    ----------
    xyz : ndarray of shape (n, 3)
        Unit vectors (:func:`cluster.engine.geo.unit_vectors`).

    Returns
    -------
    float
        Largest chord on the unit sphere (0.0 for fewer than two points).
    """
    from scipy.spatial import ConvexHull, QhullError

    xyz = np.asarray(xyz, dtype=float)
    if len(xyz) <= 64:
        return _max_chord(xyz)
    mean = xyz.mean(axis=0)
    r = np.sqrt(((xyz - mean) ** 2).sum(axis=1))
    # A first pair: the point farthest from the mean and the point farthest from it ...
    far = int(np.argmax(r))
    cand = [far, int(np.argmax(((xyz - xyz[far]) ** 2).sum(axis=1)))]
    # ... and the vertices of the gnomonic hull.
    norm = np.linalg.norm(mean)
    cos = xyz @ (mean / norm) if norm > 0 else np.zeros(len(xyz))
    if cos.min() > np.cos(np.radians(45.0)):
        axis = np.array([0.0, 0.0, 1.0]) if abs(mean[2]) < 0.9 * norm else np.array([1.0, 0.0, 0.0])
        e1 = np.cross(mean, axis)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(mean / norm, e1)
        try:
            cand += list(ConvexHull(np.column_stack([xyz @ e1, xyz @ e2]) / cos[:, None]).vertices)
        except QhullError:  # collinear or coincident in the plane: the bound alone prunes
            pass
    found = _max_chord(xyz[np.unique(cand)])
    # Relative slack far above rounding: a point of the farthest pair is never left out.
    keep = r + r.max() >= found * (1.0 - 1e-9)
    return _max_chord(xyz[keep])


def _max_chord(xyz: np.ndarray) -> float:
    """Largest chord between the rows of ``xyz``, every pair compared (in blocks, to bound
    the memory of the pairwise distances)."""
    if len(xyz) < 2:
        return 0.0
    best = 0.0
    for start in range(0, len(xyz), 1024):
        block = xyz[start:start + 1024]
        best = max(best, float(((block[:, None, :] - xyz[None, :, :]) ** 2).sum(axis=-1).max()))
    return float(np.sqrt(best))
