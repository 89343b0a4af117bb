"""Stage 7: scores, ranks, tiers and intensity.

Formulas (``m`` runs over the metrics present in the input):

* ``share_m = 100 * count_m / world_m`` (percent), where ``world_m`` is all input
  weight of metric ``m`` in the year window, noise included;
* ``score = sum_m score_weight_m * share_m`` (the GII size score when all weights are 1);
* ``rank``: 1 for the highest score; ties broken by ``cluster_id`` so ranks are total
  and reproducible; ``tier`` is ``top`` for ranks 1..top_n, else ``emerging``;
* ``m_per_million = count_m / (population / 1e6)``: activity per million inhabitants;
* ``intensity_score = score / (population / 1e6)``: the size score per million
  inhabitants, i.e. the per-capita intensities combined with the same share
  normalisation and weights as the size score (GII does not publish its combination);
* intensities are left empty, with the reason in ``intensity_note``, for clusters with
  no population found, a population below ``intensity_min_population`` (per-capita
  figures of a small town say nothing about a cluster), no settlement within ``eps_km``
  of their sites (their population comes from places farther away), half or more of
  their activity at suspected fallback geocodes (``fallback``: see ``geocode_note``), or
  all of it at one location (``single_site``: every site with activity within
  :data:`SINGLE_SITE_KM` of one another, whatever the metric: one geocode holding a
  city's or a region's records, whose per-capita figure cannot be told from an artefact);
* ``intensity_rank`` ranks the top tier by ``intensity_score`` (empty where it is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cluster.stages.boundaries import counts_inside
from cluster.stages.sites import metric_codes

_GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz"

#: A cluster is ``single_site`` when all its sites with activity, whatever their metric,
#: lie within this distance of one another (km): distinct coordinates closer than this
#: are one location (two geocodes of Yokohama 0.56 km apart), and a city whose records
#: are spread over several geocodes (San Diego, Austin) keeps its intensity.
SINGLE_SITE_KM = 1.0


def geohash(lat: float, lon: float, precision: int = 7) -> str:
    """Standard base-32 geohash of a point (written here: a dozen lines, no dependency).

    Used for cluster ids: a cluster is named by the cell of its heaviest site, so the
    id survives re-runs, row reordering and small changes of parameters.

    Parameters
    ----------
    lat, lon : float
        Degrees.
    precision : int, default 7
        Characters (7 is a cell of about 150 m).

    Returns
    -------
    str

    Examples
    --------
    >>> geohash(57.64911, 10.40744, 11)
    'u4pruydqqvj'
    """
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    bits, out, even, ch = 0, [], True, 0
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            ch = (ch << 1) | (lon >= mid)
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            ch = (ch << 1) | (lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
        even, bits = not even, bits + 1
        if bits == 5:
            out.append(_GEOHASH[ch])
            bits, ch = 0, 0
    return "".join(out)


def assign_cluster_ids(anchor_lat, anchor_lon, precision: int = 7) -> list[str]:
    """Stable ids ``g<geohash>`` from each cluster's anchor (heaviest) site.

    Anchors of different clusters are more than ``eps_km`` apart, so 7 characters
    (~150 m cells) are unique in practice; a collision gets ``-2``, ``-3`` ... in anchor
    order.

    Parameters
    ----------
    anchor_lat, anchor_lon : array-like of shape (n_clusters,)
        Anchors in degrees.
    precision : int, default 7
        Geohash characters.

    Returns
    -------
    list of str
    """
    ids, seen = [], {}
    for la, lo in zip(anchor_lat, anchor_lon):
        base = "g" + geohash(float(la), float(lo), precision)
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def rank_clusters(counts: pd.DataFrame, totals: dict[str, float], score_weights: dict[str, float],
                  population, cluster_ids, *, top_n: int, intensity_min_population: int = 0,
                  remote=None, single_site=None, fallback=None) -> pd.DataFrame:
    """Score and rank clusters.

    Parameters
    ----------
    counts : DataFrame of shape (n_clusters, n_metrics)
        Weight per metric inside each cluster (fractional-count units).
    totals : dict
        World total weight per metric; metrics with a total of 0 are absent from the
        input and left out of the score (their shares are NaN).
    score_weights : dict
        Multiplier of each metric's share in the score.
    population : array of shape (n_clusters,)
        Inhabitants inside each cluster.
    cluster_ids : sequence of str
        Stable ids, used to break score ties.
    top_n : int
        Size of the ``top`` tier.
    intensity_min_population : int, default 0
        Below this population (inhabitants) intensities are left empty: per-capita
        figures of a few thousand people say nothing.
    remote : bool array of shape (n_clusters,), optional
        Clusters with no settlement near their sites, whose population comes from places
        farther away: their intensities are left empty too.
    single_site : bool array of shape (n_clusters,), optional
        Clusters whose activity sits at one location (a geocode holding a whole city's or
        region's records): no intensity either, since per-capita figures on one geocode
        cannot tell a city from a geocoder's fallback point.
    fallback : bool array of shape (n_clusters,), optional
        Clusters with half or more of their activity at suspected fallback geocodes.

    Returns
    -------
    DataFrame
        One row per cluster in rank order with the counts, ``share_<m>`` (percent),
        ``score``, ``population``, ``<m>_per_million``, ``intensity_score``,
        ``intensity_note`` (why intensity is empty, else ""), ``rank``,
        ``intensity_rank`` (nullable int) and ``tier``.
    """
    metrics = list(counts.columns)
    df = pd.DataFrame({"cluster_id": list(cluster_ids)})
    score = np.zeros(len(df))
    pop = np.asarray(population, dtype=float)
    far = np.zeros(len(df), dtype=bool) if remote is None else np.asarray(remote, dtype=bool)
    one = np.zeros(len(df), dtype=bool) if single_site is None else np.asarray(single_site, dtype=bool)
    fell = np.zeros(len(df), dtype=bool) if fallback is None else np.asarray(fallback, dtype=bool)
    note = np.select([pop <= 0, pop < intensity_min_population, far, fell, one],
                     ["no population found", f"population below {intensity_min_population:,}",
                      "no settlement within eps_km of its sites",
                      "activity mostly at suspected fallback geocodes (see geocode_note)",
                      f"activity at one location (all sites within {SINGLE_SITE_KM:g} km)"], "")
    pop_m = np.where(note == "", pop / 1e6, np.nan)
    for m in metrics:
        if totals.get(m, 0.0) > 0:
            c = counts[m].to_numpy(dtype=float)
            share = 100.0 * c / totals[m]
            score += score_weights.get(m, 1.0) * share
        else:
            # A metric absent from the input is unknown, not zero: leave it empty.
            c = share = np.full(len(df), np.nan)
        df[m] = c
        df[f"share_{m}"] = share
    df["score"] = score
    df["population"] = pop.astype(np.int64)
    for m in metrics:
        df[f"{m}_per_million"] = df[m].to_numpy() / pop_m
    df["intensity_score"] = score / pop_m
    df["intensity_note"] = note
    df = df.sort_values(["score", "cluster_id"], ascending=[False, True], kind="mergesort")
    df = df.reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    df["tier"] = np.where(df["rank"] <= top_n, "top", "emerging")
    top = df[(df["tier"] == "top") & df["intensity_score"].notna()]
    order = top.sort_values(["intensity_score", "cluster_id"], ascending=[False, True], kind="mergesort").index
    irank = pd.Series(pd.NA, index=df.index, dtype="Int64")
    irank.loc[order] = np.arange(1, len(order) + 1)
    df["intensity_rank"] = irank
    return df


def site_activity(sites: pd.DataFrame, totals: dict[str, float], config) -> np.ndarray:
    """Each site's contribution to the score, in percentage points.

    ``100 * score_weight_m * weight / world_m``, 0 for a metric absent from the input.

    Parameters
    ----------
    sites : DataFrame
        Sites (``metric``, ``weight``).
    totals : dict
        World total weight per metric.
    config : Config
        The metrics' score weights.

    Returns
    -------
    ndarray of shape (n_sites,)
    """
    code = metric_codes(sites, config.metric_names)
    act = np.zeros(len(sites))
    for i, m in enumerate(config.metrics):
        sel = code == i
        if totals.get(m.name, 0) > 0:
            act[sel] = 100.0 * m.score_weight * sites["weight"].to_numpy()[sel] / totals[m.name]
    return act


def cluster_anchors(sites: pd.DataFrame, inside: np.ndarray, activity: np.ndarray, n: int) -> np.ndarray:
    """``(lat, lon)`` of each cluster's heaviest location; the anchor names the cluster's id.

    Parameters
    ----------
    sites : DataFrame
        Sites (``lat``, ``lon``).
    inside : ndarray of shape (n_sites,)
        Cluster of each site, -1 for none.
    activity : ndarray of shape (n_sites,)
        Each site's score contribution (summed over metrics per location).
    n : int
        Number of clusters.

    Returns
    -------
    ndarray of shape (n, 2)
        Degrees; ties go to the lower latitude, then longitude.
    """
    sel = np.flatnonzero(inside >= 0)
    df = pd.DataFrame({"c": inside[sel], "lat": sites["lat"].to_numpy()[sel],
                       "lon": sites["lon"].to_numpy()[sel], "a": activity[sel]})
    loc = df.groupby(["c", "lat", "lon"], as_index=False)["a"].sum()
    loc = loc.sort_values(["c", "a", "lat", "lon"], ascending=[True, False, True, True], kind="mergesort")
    best = loc.drop_duplicates("c").set_index("c").reindex(range(n))
    return best[["lat", "lon"]].to_numpy()


@dataclass(frozen=True)
class RankedClusters:
    """What :func:`rank_sites` returns.

    Attributes
    ----------
    table : DataFrame
        :func:`rank_clusters` output, one row per cluster in rank order.
    ids : list of str
        Cluster id of each cluster, indexed by cluster number (not rank).
    anchor : ndarray of shape (n_clusters, 2)
        ``(lat, lon)`` of each cluster's heaviest location, by cluster number.
    counts : DataFrame of shape (n_clusters, n_metrics)
        Weight per metric counted in each cluster, by cluster number.
    """

    table: pd.DataFrame
    ids: list
    anchor: np.ndarray
    counts: pd.DataFrame


def rank_sites(sites: pd.DataFrame, inside: np.ndarray, n_clusters: int, totals: dict[str, float], config,
               *, population=None, remote=None, single_site=None, fallback=None) -> RankedClusters:
    """Count, anchor, name by id and rank clusters from the cluster each site counts towards.

    The one ranking block shared by a run (:mod:`cluster.pipeline`, where ``inside`` comes
    from the boundary polygons) and by the membership ranking of the bootstrap and the
    sweep (:mod:`cluster.stages.membership`, where it comes from site memberships).

    Parameters
    ----------
    sites : DataFrame
        Weighted sites (``metric``, ``lat``, ``lon``, ``weight``).
    inside : ndarray of shape (n_sites,)
        Cluster number each site counts towards, -1 for none.
    n_clusters : int
        Number of clusters (numbers ``0 .. n_clusters - 1``).
    totals : dict
        World total weight per metric.
    config : Config
        Metrics (score weights) and ``top_n``.
    population : array of shape (n_clusters,), optional
        Inhabitants of each cluster; ``None`` (the membership ranking) leaves intensity
        empty.
    remote : bool array of shape (n_clusters,), optional
        Clusters whose population comes from places beyond ``eps_km`` (no intensity).
    single_site : bool array of shape (n_clusters,), optional
        Clusters whose activity sits at one location (no intensity).
    fallback : bool array of shape (n_clusters,), optional
        Clusters whose activity sits mostly at suspected fallback geocodes (no intensity).

    Returns
    -------
    RankedClusters
    """
    metrics = list(config.metric_names)
    counts = counts_inside(sites, inside, n_clusters, metrics)
    activity = site_activity(sites, totals, config)
    anchor = cluster_anchors(sites, inside, activity, n_clusters) if n_clusters else np.zeros((0, 2))
    ids = assign_cluster_ids(anchor[:, 0], anchor[:, 1])
    pop = np.zeros(n_clusters) if population is None else population
    table = rank_clusters(counts, totals, {m.name: m.score_weight for m in config.metrics}, pop, ids,
                          top_n=config.top_n, intensity_min_population=config.intensity_min_population,
                          remote=remote, single_site=single_site, fallback=fallback)
    return RankedClusters(table=table, ids=ids, anchor=anchor, counts=counts)
