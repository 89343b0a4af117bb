"""Stages 3 and 4: density clustering per metric, then the overlay of their footprints.

Per metric, sites are clustered on the sphere by the configured method
(``[clustering] method``): exact DBSCAN (:func:`cluster.engine.dbscan.dbscan_sphere`), where a
site is *core* when the weight of its metric within ``eps_km`` (itself included) reaches
the metric's threshold, or exact HDBSCAN* (:func:`cluster.engine.hdbscan.hdbscan_sphere`),
where a site's core distance is the distance at which that weight is reached, each
branch of the density hierarchy is cut at its own level, clusters weigh at least the
threshold and none is split below ``eps_km`` (its floor). With ``split_scale`` > 1, DBSCAN
is two-level (:func:`_split`): a cluster that holds sites core at ``split_scale`` times
the threshold is replaced by its clusters at that density (New York and Philadelphia,
joined at the threshold by the New Jersey corridor, come apart), one that never reaches
it stays whole; the split's clusters then regain the rest of their region's sites as far
as they can without coming within ``eps_km`` of each other (:func:`_regrown`).

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
from cluster.engine.dbscan import CORE_RTOL, dbscan_sphere
from cluster.engine.geo import chord_for_km, unit_vectors
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
    labels, core = dbscan_sphere(lat, lon, weight, eps_km=config.eps_km, min_weight=threshold)
    if config.split_scale == 1.0 or not core.any():
        return labels, core
    dense, dense_core = dbscan_sphere(lat, lon, weight, eps_km=config.eps_km,
                                      min_weight=threshold * config.split_scale)
    split, split_core = _split(lat, lon, weight, config.eps_km, threshold, labels, core, dense, dense_core)
    return _renumbered(_regrown(lat, lon, config.eps_km, labels, split)), split_core


def _split(lat, lon, weight, eps_km, threshold, labels, core, dense, dense_core):
    """Two-level DBSCAN from the clusters at the threshold (``labels``, ``core``) and at the
    higher density (``dense``, ``dense_core``).

    * A cluster at the threshold that holds no site core at the higher density stays
      whole (a sparse metro).
    * One that does is replaced by the core sites of its dense clusters and by the
      *remainder*: its core sites farther than ``eps_km`` from every dense core site,
      joined when within ``eps_km`` of each other, each group kept when it weighs at
      least the threshold (a city of the region that never reaches the higher density,
      such as Frankfurt beside Mannheim-Heidelberg).

    Only core sites are kept where a cluster was split: two dense clusters' cores are
    more than ``eps_km`` apart, and a remainder's more than ``eps_km`` from both, but
    their border sites need not be, and the overlay would join them again (footprints,
    discs of ``eps_km / 2``, would overlap). The activity around them still counts within
    their footprints. :func:`_regrown` then gives the clusters back what they can take
    without touching each other.
    """
    from scipy.spatial import cKDTree

    reached = np.zeros(int(labels.max()) + 1, bool)
    reached[labels[dense_core]] = True
    in_split = (labels >= 0) & reached[np.maximum(labels, 0)]
    keep = (labels >= 0) & ~in_split
    out = np.where(dense_core, dense, -1)
    next_label = int(dense.max()) + 1
    out[keep] = labels[keep] + next_label
    next_label += int(labels.max()) + 1
    out_core = np.where(keep, core, dense_core)
    rest = np.flatnonzero(in_split & core & ~dense_core)
    if len(rest):
        dist, _ = cKDTree(unit_vectors(lat[dense_core], lon[dense_core])).query(
            unit_vectors(lat[rest], lon[rest]), k=1, distance_upper_bound=chord_for_km(eps_km))
        rest = rest[~np.isfinite(dist)]
    if len(rest):
        groups, _ = dbscan_sphere(lat[rest], lon[rest], np.ones(len(rest)), eps_km=eps_km, min_weight=1.0)
        heavy = np.bincount(groups, weights=weight[rest]) >= threshold * (1.0 - CORE_RTOL)
        take = heavy[groups]
        out[rest[take]] = groups[take] + next_label
        out_core[rest[take]] = True
    return _renumbered(out), out_core


def _regrown(lat, lon, eps_km, labels, split):
    """Give the clusters of a split back the sites of their cluster at the threshold
    that :func:`_split` left out, as far as that never joins two of them.

    A split keeps only core sites, so that no two of its clusters come within ``eps_km``
    of each other (the overlay would join them again). That also leaves out the sites
    between a dense cluster and its edge: on PatentsView 2013 (15 km, ``split_scale``
    3), 10 % of the world's patents, among them Ford's Dearborn (442) beside Detroit,
    the centres of Dallas (1,047) and Philadelphia (502), Haifa and Milan. Here they
    come back in rounds, outwards from the clusters: a site left out joins the cluster
    whose members are within ``eps_km`` of it when all of them belong to one cluster
    of its own cluster at the threshold; a site that would touch two clusters, or two
    sites joining different clusters within ``eps_km`` of each other, stay out for
    good. So the gap between two clusters of a split stays wider than ``eps_km``, and
    the result does not depend on the order of the sites (each round decides all its
    sites at once).

    Parameters
    ----------
    lat, lon : float arrays of shape (n,)
        Sites of one metric, degrees.
    eps_km : float
        The DBSCAN radius, km.
    labels : int array of shape (n,)
        Clusters at the threshold (-1: noise).
    split : int array of shape (n,)
        Clusters after :func:`_split` (-1: noise), numbered apart from ``labels``.

    Returns
    -------
    int array of shape (n,)
        ``split`` with the sites regained (not renumbered).
    """
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    points, first, inverse = np.unique(lat + 1j * lon, return_index=True, return_inverse=True)
    if len(points) < len(lat):  # records given as they come: decide each location once
        return _regrown(lat[first], lon[first], eps_km, labels[first], split[first])[inverse]
    from scipy.spatial import cKDTree

    out = split.copy()
    home = np.full(int(out.max()) + 1 if len(out) and out.max() >= 0 else 0, -1, np.int64)
    home[out[out >= 0]] = labels[out >= 0]  # each cluster's cluster at the threshold
    split_home = np.zeros(int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0, bool)
    split_home[home[home >= 0]] = True
    pending = np.flatnonzero((out < 0) & (labels >= 0))
    pending = pending[split_home[labels[pending]]]
    if len(pending) == 0:
        return out
    xyz = unit_vectors(lat, lon)
    radius = chord_for_km(eps_km)
    new = np.flatnonzero(out >= 0)  # members not yet looked at from the pending sites
    while len(pending) and len(new):
        near = cKDTree(xyz[pending]).sparse_distance_matrix(cKDTree(xyz[new]), radius, output_type="ndarray")
        if len(near) == 0:
            break
        i, to = near["i"], out[new[near["j"]]]
        # A pending site has no member within eps_km before this round's new members
        # (it would have been decided), so these are all its member neighbours.
        lo = np.full(len(pending), np.iinfo(np.int64).max)
        hi = np.full(len(pending), -1)
        np.minimum.at(lo, i, to)
        np.maximum.at(hi, i, to)
        touched = hi >= 0
        ok = touched & (lo == hi)
        ok[ok] = home[lo[ok]] == labels[pending[ok]]
        # Two sites joining different clusters within eps_km of each other: both stay out.
        cand = np.flatnonzero(ok)
        if len(cand) > 1:
            pairs = cKDTree(xyz[pending[cand]]).query_pairs(radius, output_type="ndarray")
            clash = lo[cand[pairs[:, 0]]] != lo[cand[pairs[:, 1]]]
            ok[cand[pairs[clash].ravel()]] = False
        out[pending[ok]] = lo[ok]
        new = pending[ok]
        pending = pending[~touched]
    return out


def _renumbered(out):
    """Clusters numbered 0, 1, ... by their first site, as DBSCAN numbers them."""
    out = out.copy()
    member = np.flatnonzero(out >= 0)
    if len(member):
        _, first, inverse = np.unique(out[member], return_index=True, return_inverse=True)
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(member[first], kind="stable")] = np.arange(len(first))
        out[member] = rank[inverse]
    return out


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
