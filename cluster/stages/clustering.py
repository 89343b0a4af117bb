"""Stages 3 and 4: density clustering per metric, then the overlay of their footprints.

Per metric, sites are clustered on the sphere by the configured method
(``[clustering] method``): exact DBSCAN (:func:`cluster.engine.dbscan.dbscan_sphere`), where a
site is *core* when the weight of its metric within ``eps_km`` (itself included) reaches
the metric's threshold, or exact HDBSCAN* (:func:`cluster.engine.hdbscan.hdbscan_sphere`),
where a site's core distance is the distance at which that weight is reached, each
branch of the density hierarchy is cut at its own level, clusters weigh at least the
threshold and none is split below ``eps_km`` (its floor). With ``split_scale`` > 1, DBSCAN
is two-level (``dbscan_sphere(..., split_scale=...)``; the rule is in
:mod:`cluster.engine.dbscan`): a cluster that holds sites core at ``split_scale`` times
the threshold is replaced by its clusters at that density (New York and Philadelphia,
joined at the threshold by the New Jersey corridor, come apart), one that never reaches
it stays whole; the split's clusters then regain the rest of their region's sites as far
as they can without coming within ``eps_km`` of each other.

Overlay rule. The footprint of a per-metric cluster is the union of discs of radius
``eps_km / 2`` around its member sites (core and border). Two footprints overlap exactly
when a member site of one lies within ``eps_km`` of a member site of the other, so the
final clusters are the connected components of the graph joining member sites (of any
metric) closer than ``eps_km``. Per-metric clusters are themselves connected in that
graph (DBSCAN chains core sites within ``eps_km``, and border sites hang within
``eps_km`` of a core site), so one more DBSCAN pass with every member site as a core
(``min_weight`` = 1, unit weights) computes the components exactly. An HDBSCAN* cluster
need not be connected at ``eps_km`` (a sparse region's sites may lie further apart), so
the components are taken of that graph together with the per-metric clusters themselves:
a per-metric cluster is never cut by the overlay, and for DBSCAN this changes nothing.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cluster.config import Config
from cluster.engine.dbscan import dbscan_sphere
from cluster.engine.hdbscan import hdbscan_sphere
from cluster.stages.sites import metric_codes

log = logging.getLogger(__name__)


def cluster_metrics(sites: pd.DataFrame, config: Config, totals: dict[str, float]) -> tuple[pd.DataFrame, dict]:
    """Run DBSCAN for each metric on its own sites.

    Parameters
    ----------
    sites : DataFrame
        From :func:`cluster.stages.sites.reduce_to_sites` (``metric, lat, lon, weight`` ...).
    config : Config
        ``eps_km``, the method, ``core_scale`` and each metric's ``min_weight`` / ``min_share``.
    totals : dict
        World total weight per metric (for ``min_share``).

    Returns
    -------
    sites : DataFrame
        A copy with ``metric_cluster`` (int64, unique across metrics, -1 for noise) and
        ``core`` (bool).
    thresholds : dict
        The core threshold used per metric (``core_scale`` times the metric's), in weight units.
    """
    out = sites.copy()
    label = np.full(len(out), -1, dtype=np.int64)
    core = np.zeros(len(out), dtype=bool)
    thresholds: dict[str, float] = {}
    offset = 0
    code = metric_codes(out, config.metric_names)
    for i, m in enumerate(config.metrics):
        idx = np.flatnonzero(code == i)
        # The core threshold: core_scale times the metric's (the least weight of a cluster).
        thresholds[m.name] = m.threshold(totals.get(m.name, 0.0)) * config.core_scale
        if len(idx) == 0:
            continue
        lab, cm = _cluster_one(out["lat"].to_numpy()[idx], out["lon"].to_numpy()[idx],
                               out["weight"].to_numpy()[idx], config, thresholds[m.name])
        n = int(lab.max()) + 1 if len(lab) else 0
        label[idx] = np.where(lab >= 0, lab + offset, -1)
        core[idx] = cm
        offset += n
        member_w = out["weight"].to_numpy()[idx][lab >= 0].sum()
        log.info("%s: %s clusters from %s sites (threshold %.6g, %.1f%% of weight in clusters)",
                 m.name, f"{n:,}", f"{len(idx):,}", thresholds[m.name],
                 100 * member_w / max(totals.get(m.name, 0.0), 1e-300))
    out["metric_cluster"] = label
    out["core"] = core
    return out, thresholds


def _cluster_one(lat, lon, weight, config: Config, threshold: float):
    """Labels and core flags of one metric's sites by the configured method."""
    if config.clustering_method == "hdbscan":
        return hdbscan_sphere(lat, lon, weight, min_weight=threshold, floor_km=config.eps_km,
                              min_cluster_weight=threshold / config.core_scale, method=config.selection)
    # split_scale > 1: two-level DBSCAN, in the engine (one grid, one scan for both levels).
    return dbscan_sphere(lat, lon, weight, eps_km=config.eps_km, min_weight=threshold,
                         split_scale=config.split_scale)


def overlay(sites: pd.DataFrame, eps_km: float) -> np.ndarray:
    """Merge per-metric clusters whose footprints overlap (see module docstring).

    Parameters
    ----------
    sites : DataFrame
        Sites with ``metric_cluster`` (:func:`cluster_metrics`), ``lat`` and ``lon``.
    eps_km : float
        The DBSCAN radius, km: footprints are discs of ``eps_km / 2``.

    Returns
    -------
    ndarray of shape (n_sites,), int64
        Provisional component index per site (-1 for sites in no per-metric cluster).
        Components are numbered by their first member in site order, so the numbering
        is deterministic but carries no meaning; final ids come from
        :func:`cluster.stages.ranking.assign_cluster_ids`.
    """
    member = np.flatnonzero(sites["metric_cluster"].to_numpy() >= 0)
    comp = np.full(len(sites), -1, dtype=np.int64)
    if len(member) == 0:
        return comp
    lab, _ = dbscan_sphere(sites["lat"].to_numpy()[member], sites["lon"].to_numpy()[member],
                           np.ones(len(member)), eps_km=eps_km, min_weight=1.0)
    # Every member site is core with min_weight 1, so there is no noise here. Joined
    # with the per-metric clusters (which DBSCAN's already are connected in that graph).
    lab = _joined(lab, sites["metric_cluster"].to_numpy()[member])
    comp[member] = lab
    log.info("overlay: %s per-metric clusters merged into %s clusters",
             f"{sites['metric_cluster'].max() + 1:,}", f"{lab.max() + 1:,}")
    return comp


def _joined(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Components of the union of two partitions of the same items (labels >= 0),
    numbered by their first item."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    na, nb = int(a.max()) + 1, int(b.max()) + 1
    graph = coo_matrix((np.ones(len(a)), (a, na + b)), shape=(na + nb, na + nb))
    _, comp = connected_components(graph, directed=False)
    comp = comp[a]
    first = np.full(int(comp.max()) + 1, len(comp), np.int64)
    np.minimum.at(first, comp, np.arange(len(comp)))
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[comp]
