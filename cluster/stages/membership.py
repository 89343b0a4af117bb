"""Clusters ranked from site memberships alone, and matching of two clusterings.

Building boundary polygons, populations and names costs most of a run, and the bootstrap
(:mod:`cluster.stages.bootstrap`) and the threshold sweep (:mod:`cluster.tuning.sweep`)
recluster many times. Here a cluster's count per metric is the weight of its member
sites plus the noise sites within ``eps_km / 2`` of a member site: exactly the sites
inside the union of discs of radius ``eps_km / 2`` that a run uses as the boundary,
without the polygon (a run's boundary approximates each disc by a ``disc_segments``-gon,
so a noise site within a few metres of the disc's edge may count differently). Scores,
ranks, tiers and cluster ids come from :func:`cluster.stages.ranking.rank_sites`, as in a
run; population (hence intensity) is not computed.

Matching: clusters of two clusterings of the same sites are matched one to one by
member-site overlap, the pair sharing the most activity (the sites' score contributions)
first, greedily.

Rank ranges across settings (:func:`rank_range`): the baseline clustering (a run, or the
sweep's baseline setting) and a set of other settings (method, ``eps_km``, threshold
scale), each ranked from memberships; a baseline cluster's range of ranks is the smallest
and largest of its own rank and the ranks of its matched clusters, over the settings where
it has a match. ``cluster sweep`` (``rank_ranges.csv``) and ``cluster run`` with
``[ranking] rank_range_eps_km`` / ``rank_range_methods`` (:func:`settings_rank_ranges`:
columns ``rank_min_settings``, ``rank_max_settings``, ``rank_n_settings``) use the same
function.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cluster._progress import progress
from cluster.config import Config, parse_method
from cluster.engine.geo import chord_for_km, unit_vectors
from cluster.stages.clustering import cluster_metrics, overlay
from cluster.stages.ranking import rank_sites, site_activity

log = logging.getLogger(__name__)
__all__ = ["Membership", "RankRange", "match_clusters", "member_rows", "membership_ranking", "method_config",
           "method_name", "noise_within", "quiet_stages", "rank_range", "scaled_config", "setting_name",
           "settings_rank_ranges"]


@dataclass(frozen=True)
class Membership:
    """Clusters of one parameter combination, ranked from site memberships.

    Attributes
    ----------
    component : ndarray (n_sites,)
        Cluster of each member site (core or border of some metric), -1 otherwise.
    inside : ndarray (n_sites,)
        Cluster each site counts towards: its own for members, the one within
        ``eps_km / 2`` for noise sites, -1 when none.
    ranking : DataFrame
        :func:`cluster.stages.ranking.rank_clusters` output (rank order) with ``cluster_id``.
    rank : ndarray (n_clusters,)
        Rank of each cluster, indexed by component number.
    top : ndarray (n_clusters,), bool
        Whether each cluster is in the top tier.
    thresholds : dict
        Core threshold per metric in weight units.
    """

    component: np.ndarray
    inside: np.ndarray
    ranking: pd.DataFrame
    rank: np.ndarray
    top: np.ndarray
    thresholds: dict

    @property
    def n_clusters(self) -> int:
        return len(self.rank)



@contextmanager
def quiet_stages():
    """Hold back the per-metric INFO lines of the clustering stage inside a loop.

    Yields
    ------
    None
        While inside the ``with`` block, ``cluster.stages.clustering`` logs warnings only.
    """
    logger = logging.getLogger(cluster_metrics.__module__)
    level = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)



def scaled_config(config: Config, totals: dict, eps_km: float, scale: float) -> Config:
    """``config`` with radius ``eps_km`` and every metric's threshold times ``scale``.

    Parameters
    ----------
    config : Config
        The base configuration.
    totals : dict
        World total weight per metric, to turn ``min_share`` thresholds into weights.
    eps_km : float
        The radius, km.
    scale : float
        Multiplier of every metric's threshold.

    Returns
    -------
    Config
        Thresholds as ``min_weight`` (weight units).
    """
    # A metric without records (threshold 0: a single-metric input under the default
    # config's three metrics) keeps its own setting: it has no sites to cluster.
    metrics = tuple(replace(m, min_weight=m.threshold(totals.get(m.name, 0.0)) * scale, min_share=None)
                    if m.threshold(totals.get(m.name, 0.0)) > 0 else m for m in config.metrics)
    return replace(config, eps_km=float(eps_km), metrics=metrics)



def noise_within(sites: pd.DataFrame, component: np.ndarray, radius_km: float) -> np.ndarray:
    """``component`` extended to the non-member sites within ``radius_km`` of a member site.

    Parameters
    ----------
    sites : DataFrame
        Sites (``lat``, ``lon`` in degrees).
    component : ndarray of shape (n_sites,)
        Cluster of each member site, -1 otherwise.
    radius_km : float
        Reach of a member site, km (``eps_km / 2``: its footprint disc).

    Returns
    -------
    ndarray of shape (n_sites,)
        The cluster each site counts towards (the nearest member's; the discs of two
        clusters never overlap), -1 for none.
    """
    from scipy.spatial import cKDTree

    inside = component.copy()
    member = component >= 0
    if not member.any() or member.all():
        return inside
    xyz = unit_vectors(sites["lat"].to_numpy(), sites["lon"].to_numpy())
    tree = cKDTree(xyz[member])
    others = np.flatnonzero(~member)
    dist, j = tree.query(xyz[others], k=1, distance_upper_bound=chord_for_km(radius_km))
    hit = np.isfinite(dist)
    inside[others[hit]] = component[member][j[hit]]
    return inside



def membership_ranking(sites: pd.DataFrame, config: Config, totals: dict, *, eps_km: float | None = None,
                       scale: float = 1.0) -> Membership:
    """Cluster and rank ``sites`` from site memberships (no polygons).

    Parameters
    ----------
    sites : DataFrame
        Weighted sites (:func:`cluster.stages.sites.prepare_sites`).
    config : Config
        Thresholds, score weights and ``top_n``.
    totals : dict
        World total weight per metric.
    eps_km : float, optional
        Radius in km; default the config's.
    scale : float, default 1.0
        Multiplier of every metric's configured threshold.

    Returns
    -------
    Membership
    """
    eps = config.eps_km if eps_km is None else float(eps_km)
    cfg = scaled_config(config, totals, eps, scale)
    clustered, thresholds = cluster_metrics(sites, cfg, totals)
    component = overlay(clustered, eps)
    n = int(component.max()) + 1 if len(component) else 0
    inside = noise_within(sites, component, eps / 2.0)
    ranked = rank_sites(sites, inside, n, totals, config)
    ranking = ranked.table
    pos = pd.Series(np.arange(n), index=ranked.ids)
    comp_of_row = pos.reindex(ranking["cluster_id"]).to_numpy()
    rank = np.zeros(n, dtype=np.int64)
    rank[comp_of_row] = ranking["rank"].to_numpy()
    top = np.zeros(n, dtype=bool)
    top[comp_of_row] = (ranking["tier"] == "top").to_numpy()
    return Membership(component=component, inside=inside, ranking=ranking, rank=rank, top=top,
                      thresholds=thresholds)



def match_clusters(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> dict[int, int]:
    """One-to-one matching of the clusters of two clusterings of the same sites.

    Pairs sharing the most ``weight`` are matched first (ties by cluster numbers), greedily.

    Parameters
    ----------
    a, b : ndarray of shape (n_sites,)
        Each site's cluster in the two clusterings, -1 for none.
    weight : ndarray of shape (n_sites,)
        What a shared site is worth (e.g. its activity in score points).

    Returns
    -------
    dict
        Cluster of ``a`` -> matched cluster of ``b``.
    """
    both = (a >= 0) & (b >= 0)
    if not both.any():
        return {}
    df = pd.DataFrame({"a": a[both], "b": b[both], "w": weight[both]})
    pairs = df.groupby(["a", "b"], as_index=False, sort=True)["w"].sum()
    pairs = pairs.sort_values(["w", "a", "b"], ascending=[False, True, True], kind="mergesort")
    out: dict[int, int] = {}
    used: set[int] = set()
    for ca, cb in zip(pairs["a"].to_numpy(), pairs["b"].to_numpy()):
        if ca in out or cb in used:
            continue
        out[int(ca)] = int(cb)
        used.add(int(cb))
    return out



def method_name(config: Config) -> str:
    """The name of a config's method in a sweep or a run's rank ranges.

    Parameters
    ----------
    config : Config
        A configuration.

    Returns
    -------
    str
        ``dbscan``, ``dbscan/S`` (two-level, ``split_scale`` S) or ``hdbscan``.
    """
    if config.clustering_method == "dbscan" and config.split_scale != 1.0:
        return f"dbscan/{config.split_scale:g}"
    return config.clustering_method


def method_config(config: Config, name: str) -> Config:
    """``config`` with the method a sweep names (:func:`method_name`'s inverse).

    Parameters
    ----------
    config : Config
        The base configuration.
    name : str
        ``dbscan``, ``dbscan/S`` (S >= 1, the ``split_scale``) or ``hdbscan``
        (:func:`cluster.config.parse_method`).

    Returns
    -------
    Config
    """
    base, split_scale = parse_method(name)
    return replace(config, clustering_method=base, split_scale=split_scale)


def setting_name(key: tuple) -> str:
    """``"dbscan 10 km x1"``: a setting ``(method, eps_km, scale)`` as the outputs name it.

    Parameters
    ----------
    key : tuple
        ``(method, eps_km, min_weight_scale)``.

    Returns
    -------
    str
    """
    return f"{key[0]} {key[1]:g} km x{key[2]:g}"


def member_rows(sites: pd.DataFrame, cluster_ids) -> np.ndarray:
    """Each member site's cluster as a row number of a run's clusters table.

    Parameters
    ----------
    sites : DataFrame
        A run's sites with ``metric_cluster`` (-1 for noise) and ``cluster_id``.
    cluster_ids : sequence of str
        The clusters table's ``cluster_id`` column, in row order.

    Returns
    -------
    ndarray of shape (n_sites,), int64
        Row of the cluster holding each member site, -1 for noise sites (inside a
        boundary or not): the component array :func:`match_clusters` takes.
    """
    row_of = pd.Series(np.arange(len(cluster_ids)), index=np.asarray(cluster_ids, dtype=object))
    member = sites["metric_cluster"].to_numpy() >= 0
    out = np.full(len(sites), -1, dtype=np.int64)
    out[member] = row_of.reindex(sites["cluster_id"].to_numpy()[member]).to_numpy()
    return out


@dataclass(frozen=True)
class RankRange:
    """Each baseline cluster's range of ranks over settings (:func:`rank_range`).

    Attributes
    ----------
    low, high : ndarray (n_clusters,), int64
        Smallest and largest rank: the baseline's own and those of its matched clusters.
    n_matched : ndarray (n_clusters,), int64
        Settings where the cluster has a match, the baseline included (it matches itself).
    low_at, high_at : list of tuple
        A setting where each extreme is reached (the baseline's key on a tie with it).
    n_settings : int
        Settings compared, the baseline included.
    """

    low: np.ndarray
    high: np.ndarray
    n_matched: np.ndarray
    low_at: list
    high_at: list
    n_settings: int


def rank_range(component: np.ndarray, rank: np.ndarray, others: dict, activity: np.ndarray,
               baseline_key) -> RankRange:
    """Range of ranks of the baseline's clusters over itself and other settings.

    Parameters
    ----------
    component : ndarray of shape (n_sites,)
        The baseline's cluster of each member site (0..n_clusters-1), -1 otherwise.
    rank : ndarray of shape (n_clusters,)
        The baseline's rank of each cluster.
    others : dict
        Setting key -> :class:`Membership` of the same sites, the baseline's key left out.
    activity : ndarray of shape (n_sites,)
        Each site's score contribution, the weight of the matching (:func:`match_clusters`).
    baseline_key : tuple
        The baseline's setting, named where it holds an extreme.

    Returns
    -------
    RankRange
    """
    n = len(rank)
    lo = np.asarray(rank, dtype=np.int64).copy()
    hi = lo.copy()
    lo_at = [baseline_key] * n
    hi_at = [baseline_key] * n
    found = np.ones(n, np.int64)  # the baseline matches itself
    keys = sorted(k for k in others if k != baseline_key)
    # Clusters numbered by rank for the matching, whose ties go by cluster number: a run
    # (clusters in rank order) and a sweep (clusters in overlay order) then match alike.
    rank0 = np.asarray(rank, dtype=np.int64) - 1
    if n and not np.array_equal(np.sort(rank0), np.arange(n)):
        raise ValueError("rank_range: the baseline's ranks must be 1..n_clusters, each once")
    cluster_at = np.argsort(rank0)
    by_rank = np.where(component >= 0, rank0[np.maximum(component, 0)] if n else -1, -1)
    for key in keys:
        mem = others[key]
        for cr, d in match_clusters(by_rank, mem.component, activity).items():
            c = int(cluster_at[cr])
            r = int(mem.rank[d])
            found[c] += 1
            if r < lo[c]:
                lo[c], lo_at[c] = r, key
            if r > hi[c]:
                hi[c], hi_at[c] = r, key
    return RankRange(low=lo, high=hi, n_matched=found, low_at=lo_at, high_at=hi_at, n_settings=len(keys) + 1)


def settings_rank_ranges(sites: pd.DataFrame, totals: dict, config: Config, component: np.ndarray,
                         rank: np.ndarray, *, eps_values=(), methods=()) -> tuple[RankRange, list]:
    """A run's rank range over settings: each (method, eps_km) clustered from memberships.

    Parameters
    ----------
    sites : DataFrame
        The sites the run clustered (``metric``, ``lat``, ``lon``, ``weight``), in the
        order of ``component``.
    totals : dict
        World total weight per metric.
    config : Config
        The run's configuration (the baseline setting: its method and ``eps_km``, scale 1).
    component : ndarray of shape (n_sites,)
        The run's cluster (row of its clusters table) of each member site, -1 otherwise
        (:func:`member_rows`).
    rank : ndarray of shape (n_clusters,)
        The run's ranks, in the same row order.
    eps_values : iterable of float, optional
        Radii, km (hdbscan: floor radii); default the config's.
    methods : iterable of str, optional
        ``dbscan``, ``dbscan/S`` or ``hdbscan``; default the config's method.

    Returns
    -------
    ranges : RankRange
        The run counts as its own setting (its ranks from its boundaries, as published).
    keys : list of tuple
        Every setting ``(method, eps_km, 1.0)``, the baseline first.
    """
    key0 = (method_name(config), float(config.eps_km), 1.0)
    methods = list(dict.fromkeys(methods or [key0[0]]))
    eps_values = sorted({float(e) for e in eps_values} or {key0[1]})
    grid = [(m, e, 1.0) for m in methods for e in eps_values if (m, e, 1.0) != key0]
    others = {}
    for key in progress(grid, desc="rank ranges", unit="setting"):
        with quiet_stages():
            others[key] = membership_ranking(sites, method_config(config, key[0]), totals, eps_km=key[1])
        log.info("rank ranges: %s gives %d clusters", setting_name(key), others[key].n_clusters)
    ranges = rank_range(component, rank, others, site_activity(sites, totals, config), key0)
    return ranges, [key0] + sorted(others)
