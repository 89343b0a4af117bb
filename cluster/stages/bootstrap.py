"""Rank confidence intervals by bootstrapping documents.

Each replicate resamples, per metric, the documents with replacement (as many draws as
the metric has documents; a document drawn k times counts k times, with its fractional
weights unchanged); records that carry their own ``weight`` (pre-weighted sites, often
without ``doc_id``) are resampled as sites, separately from the documents of their
metric. The replicate's site weights and world totals are recomputed, the clustering is
rerun with the configured radius and thresholds (a ``min_share`` threshold follows the
replicate's world total) and its clusters are ranked from site memberships, as in
:mod:`cluster.stages.membership` (member sites plus noise within ``eps_km / 2``; no polygons).

Each cluster of the main run is matched to at most one replicate cluster by member-site
overlap (:func:`cluster.stages.membership.match_clusters`, weighted by the main run's activity); its
replicate rank is that cluster's rank, or one past the last rank when it has no match
(it dissolved). ``rank_ci_low`` / ``rank_ci_high`` are the lower and upper
``(1 - confidence) / 2`` quantiles of the replicate ranks (``inverted_cdf``, so they are
ranks that occurred). Replicates come from ``numpy.random.default_rng(seed)``: the same
input, config and seed give the same intervals.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cluster._progress import progress
from cluster.config import Config
from cluster.stages.membership import match_clusters, member_rows, membership_ranking, quiet_stages
from cluster.stages.ranking import site_activity
from cluster.stages.sites import document_sizes, fractional_weights, world_totals

log = logging.getLogger(__name__)


def resampling_units(records: pd.DataFrame, sites: pd.DataFrame) -> dict:
    """What a replicate resamples: (unit, site, weight) contributions and the units' strata.

    Parameters
    ----------
    records : DataFrame
        The run's records (after the year window).
    sites : DataFrame
        The run's sites (``metric``, ``lat``, ``lon``).

    Returns
    -------
    dict
        ``unit``, ``site`` and ``weight`` arrays (one entry per distinct unit-site pair),
        ``n_units``, and ``strata``: a list of unit-index arrays, one per (metric, kind)
        with kind = documents or pre-weighted sites.
    """
    key = pd.DataFrame({"metric": sites["metric"].astype(str).to_numpy(),
                        "lat": sites["lat"].to_numpy(), "lon": sites["lon"].to_numpy(),
                        "site": np.arange(len(sites))})
    rec = pd.DataFrame({"metric": records["metric"].astype(str).to_numpy(),
                        "lat": records["lat"].to_numpy(dtype=float),
                        "lon": records["lon"].to_numpy(dtype=float)})
    site = rec.merge(key, on=["metric", "lat", "lon"], how="left", sort=False)["site"].to_numpy()
    if np.isnan(site.astype(float)).any():
        raise RuntimeError("bootstrap: some records match no site")
    site = site.astype(np.int64)
    w = fractional_weights(records, document_sizes(records))
    pre = ~np.isnan(records["weight"].to_numpy(dtype=float))
    # Documents: one unit per (metric, doc_id); pre-weighted records: one unit per site.
    unit = np.empty(len(records), dtype=np.int64)
    docs = pd.DataFrame({"metric": rec["metric"].to_numpy()[~pre],
                         "doc_id": records["doc_id"].astype(str).to_numpy()[~pre]})
    unit[~pre] = docs.groupby(["metric", "doc_id"], sort=True).ngroup().to_numpy()
    n_docs = int(unit[~pre].max()) + 1 if (~pre).any() else 0
    unit[pre] = n_docs + site[pre]
    unit, uniques = pd.factorize(unit, sort=True)
    pairs = pd.DataFrame({"unit": unit, "site": site, "w": w}).groupby(
        ["unit", "site"], as_index=False, sort=True)["w"].sum()
    unit_metric = np.empty(len(uniques), dtype=object)
    unit_metric[unit] = rec["metric"].to_numpy()
    unit_pre = np.zeros(len(uniques), dtype=bool)
    unit_pre[unit] = pre
    strata = []
    for m in sorted(set(unit_metric)):
        for kind in (False, True):
            idx = np.flatnonzero((unit_metric == m) & (unit_pre == kind))
            if len(idx):
                strata.append(idx)
    return {"unit": pairs["unit"].to_numpy(), "site": pairs["site"].to_numpy(),
            "weight": pairs["w"].to_numpy(), "n_units": len(uniques), "strata": strata}


def replicate_weights(units: dict, n_sites: int, rng: np.random.Generator) -> np.ndarray:
    """Site weights of one bootstrap replicate.

    Parameters
    ----------
    units : dict
        From :func:`resampling_units`.
    n_sites : int
        Number of sites.
    rng : numpy.random.Generator
        The replicates' random generator.

    Returns
    -------
    ndarray of shape (n_sites,)
        Fractional-count weights (0 where no unit was drawn).
    """
    times = np.zeros(units["n_units"], dtype=np.float64)
    for idx in units["strata"]:
        draw = rng.integers(0, len(idx), size=len(idx))
        times[idx] = np.bincount(draw, minlength=len(idx))
    return np.bincount(units["site"], weights=units["weight"] * times[units["unit"]], minlength=n_sites)


def rank_intervals(records: pd.DataFrame, sites: pd.DataFrame, totals: dict, config: Config,
                   clusters: pd.DataFrame, *, replicates: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Bootstrap rank interval of every cluster of a run.

    Parameters
    ----------
    records : DataFrame
        The run's records (after the year window).
    sites : DataFrame
        The run's sites with ``metric_cluster`` and ``cluster_id``.
    totals : dict
        The run's world totals.
    config : Config
        ``bootstrap_replicates``, ``bootstrap_confidence``, ``bootstrap_seed`` and the
        clustering parameters.
    clusters : DataFrame
        The run's clusters (``cluster_id``, ``rank``).

    Returns
    -------
    low, high : ndarray of shape (n_clusters,), int64
        Interval bounds, in the row order of ``clusters``.
    info : dict
        Replicates, confidence, seed and how often clusters went unmatched (run.json).
    """
    n_rep = config.bootstrap_replicates if replicates is None else replicates
    conf = config.bootstrap_confidence
    rng = np.random.default_rng(config.bootstrap_seed)
    units = resampling_units(records, sites)
    metrics = list(config.metric_names)
    activity = site_activity(sites, totals, config)
    main = member_rows(sites, clusters["cluster_id"].tolist())
    ranks = np.zeros((n_rep, len(clusters)), dtype=np.int64)
    unmatched = 0
    base = sites[["metric", "lat", "lon"]]
    for r in progress(range(n_rep), desc="bootstrap", unit="replicate"):
        w = replicate_weights(units, len(sites), rng)
        keep = np.flatnonzero(w > 0)
        rep_sites = base.iloc[keep].assign(weight=w[keep]).reset_index(drop=True)
        rep_totals = world_totals(rep_sites, metrics)
        with quiet_stages():
            mem = membership_ranking(rep_sites, config, rep_totals)
        comp = np.full(len(sites), -1, dtype=np.int64)
        comp[keep] = mem.component
        match = match_clusters(main, comp, activity)
        row = np.full(len(clusters), mem.n_clusters + 1, dtype=np.int64)
        for c, rc in match.items():
            row[c] = mem.rank[rc]
        unmatched += len(clusters) - len(match)
        ranks[r] = row
    q_lo, q_hi = (1 - conf) / 2, 1 - (1 - conf) / 2
    low = np.quantile(ranks, q_lo, axis=0, method="inverted_cdf").astype(np.int64)
    high = np.quantile(ranks, q_hi, axis=0, method="inverted_cdf").astype(np.int64)
    info = {"replicates": n_rep, "confidence": conf, "seed": config.bootstrap_seed,
            "unit": "documents per metric (pre-weighted records: sites)",
            "unmatched_cluster_replicates": int(unmatched)}
    log.info("bootstrap: %d replicates, %.0f%% rank intervals", n_rep, 100 * conf)
    return low, high, info
