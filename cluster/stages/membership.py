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
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cluster.config import Config
from cluster.engine.geo import chord_for_km, unit_vectors
from cluster.stages.clustering import cluster_metrics, overlay
from cluster.stages.ranking import rank_sites

__all__ = ["Membership", "match_clusters", "membership_ranking", "noise_within", "quiet_stages",
           "scaled_config"]


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
