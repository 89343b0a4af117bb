"""Tuning the density thresholds: a grid of methods, radii and threshold scales.

``cluster sweep`` reads and reduces the records to sites once, then for every
``(method, eps_km, min_weight_scale)`` combination reruns the density clustering and the overlay
(:func:`cluster.stages.clustering.cluster_metrics`, :func:`cluster.stages.clustering.overlay`) with the
radius and every metric's configured threshold multiplied by the scale, and ranks the
clusters. The baseline is the configured default (method, ``eps_km`` and thresholds from
the config, scale 1). Which setting is *right* is for :mod:`cluster.tuning.consistency`
(reference metros); :func:`rank_ranges` gives each baseline cluster's range of ranks
across the settings (:func:`cluster.stages.membership.rank_range`, the rule ``cluster run``
follows with ``[ranking] rank_range_eps_km``).

Counts come from site memberships (the one difference from ``cluster run``; see
:mod:`cluster.stages.membership`): member sites plus the noise sites within ``eps_km / 2``
of a member, no polygons, no population (hence no intensity) and no names. With the same
parameters the ranks therefore equal a run's ranks up to the polygon's edge effect.

Comparisons with the baseline (columns of ``sweep.csv``):

* ``method``: ``dbscan``, ``dbscan/S`` (two-level DBSCAN, ``split_scale`` S) or ``hdbscan``
  (radius = HDBSCAN*'s floor), see :func:`cluster.stages.membership.method_config`;
* ``n_clusters``; ``share_in_clusters_<m>`` and ``share_in_top_<m>``: percent of the world
  total of metric ``m`` counted in all clusters / in the top tier;
* ``top_overlap``: fraction of the baseline's top-tier clusters whose matched cluster is in
  this combination's top tier;
* ``spearman``, ``kendall``: rank correlation (``scipy.stats``) between the baseline ranks
  and the ranks of their matched clusters, over the matched (common) clusters;
* ``adjusted_rand``: ``sklearn.metrics.adjusted_rand_score`` of the cluster each site
  counts towards (noise as one label of its own), over all sites;
* ``seconds``: time to cluster, overlay, count and rank this combination.

Matching: :func:`cluster.stages.membership.match_clusters` (one to one, by shared
activity). Cluster ids (geohash of the heaviest location) would mostly agree too, but
drift when the heaviest site changes.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from cluster._progress import progress
from cluster.config import Config
from cluster.stages.membership import (
    Membership,
    match_clusters,
    membership_ranking,
    method_config,
    method_name,
    quiet_stages,
    rank_range,
    setting_name,
)
from cluster.stages.ranking import site_activity

log = logging.getLogger(__name__)

HEATMAP_COLUMNS = ("n_clusters", "top_overlap", "spearman", "adjusted_rand")


def compare(base: Membership, other: Membership, activity: np.ndarray) -> dict:
    """How ``other`` agrees with ``base``: the comparison columns of ``sweep.csv``.

    Parameters
    ----------
    base, other : Membership
        Two clusterings of the same sites.
    activity : ndarray of shape (n_sites,)
        Each site's score contribution, the weight of the matching.

    Returns
    -------
    dict
        ``top_overlap``, ``n_common``, ``spearman``, ``kendall``, ``adjusted_rand`` (see the
        module docstring).
    """
    from scipy.stats import kendalltau, spearmanr
    from sklearn.metrics import adjusted_rand_score

    match = match_clusters(base.component, other.component, activity)
    base_top = np.flatnonzero(base.top)
    kept = sum(1 for c in base_top if c in match and other.top[match[c]])
    common = np.array(sorted(match), dtype=np.int64)
    if len(common) >= 2:
        r0, r1 = base.rank[common], other.rank[[match[c] for c in common]]
        rho = float(spearmanr(r0, r1).statistic)
        tau = float(kendalltau(r0, r1).statistic)
    else:
        rho = tau = float("nan")
    return {
        "top_overlap": kept / len(base_top) if len(base_top) else float("nan"),
        "n_common": len(common),
        "spearman": rho,
        "kendall": tau,
        "adjusted_rand": float(adjusted_rand_score(base.inside, other.inside)),
    }


def run_sweep(sites: pd.DataFrame, totals: dict, config: Config, eps_values, scales,
              methods=None) -> tuple[pd.DataFrame, dict]:
    """Every (method, eps_km, scale) combination against the baseline (the config's, scale 1).

    Parameters
    ----------
    sites : DataFrame
        Weighted sites (:func:`cluster.stages.sites.prepare_sites`).
    totals : dict
        World total weight per metric.
    config : Config
        The baseline: its method, ``eps_km`` and thresholds at scale 1.
    eps_values : iterable of float
        Radii to try, km (hdbscan: floor radii).
    scales : iterable of float
        Multipliers of every metric's threshold.
    methods : iterable of str, optional
        ``"dbscan"``, ``"dbscan/S"`` (two-level DBSCAN with ``split_scale`` S) and/or
        ``"hdbscan"`` (:func:`method_config`); default the config's method.

    Returns
    -------
    table : DataFrame
        One row per combination (method, then eps ascending, then scale), columns as in
        the module docstring, plus ``method`` and ``baseline`` (bool).
    memberships : dict
        ``(method, eps_km, scale) -> Membership`` (the baseline included), e.g. to map them.
    """
    metrics = list(config.metric_names)
    activity = site_activity(sites, totals, config)
    eps_values = sorted({float(e) for e in eps_values})
    scales = sorted({float(s) for s in scales})
    methods = list(dict.fromkeys(methods or [method_name(config)]))
    key0 = (method_name(config), float(config.eps_km), 1.0)
    t0 = time.perf_counter()
    memberships = {key0: membership_ranking(sites, config, totals)}
    seconds = {key0: time.perf_counter() - t0}
    base = memberships[key0]
    rows = []
    grid = [(method, eps, scale) for method in methods for eps in eps_values for scale in scales]
    configs = {method: method_config(config, method) for method in methods}
    for method, eps, scale in progress(grid, desc="sweep", unit="combination"):
        key = (method, eps, scale)
        if key not in memberships:
            t0 = time.perf_counter()
            with quiet_stages():
                memberships[key] = membership_ranking(sites, configs[method], totals, eps_km=eps, scale=scale)
            seconds[key] = time.perf_counter() - t0
        mem = memberships[key]
        row = {"method": method, "eps_km": eps, "min_weight_scale": scale, "n_clusters": mem.n_clusters}
        counts = mem.ranking
        for m in metrics:
            tot = totals.get(m, 0.0)
            row[f"share_in_clusters_{m}"] = 100 * counts[m].sum() / tot if tot > 0 else float("nan")
            row[f"share_in_top_{m}"] = (100 * counts.loc[counts["tier"] == "top", m].sum() / tot
                                        if tot > 0 else float("nan"))
        row.update(compare(base, mem, activity))
        row["baseline"] = key == key0
        row["seconds"] = seconds[key]
        rows.append(row)
        log.info("sweep %s eps %g km, scale %g: %d clusters, spearman %.3f, ARI %.3f (%.2f s)",
                 method, eps, scale, mem.n_clusters, row["spearman"], row["adjusted_rand"], seconds[key])
    swept = {(r["method"], r["eps_km"], r["min_weight_scale"]) for r in rows}
    return pd.DataFrame(rows), {k: v for k, v in memberships.items() if k in swept or k == key0}


def rank_ranges(memberships: dict, baseline_key, activity: np.ndarray) -> pd.DataFrame:
    """Each baseline cluster's range of ranks over the swept settings.

    Parameters
    ----------
    memberships : dict
        ``(method, eps_km, scale) -> Membership`` (:func:`run_sweep`).
    baseline_key : tuple
        The baseline's key in ``memberships``.
    activity : ndarray of shape (n_sites,)
        Each site's score contribution, the weight of the matching
        (:func:`cluster.stages.membership.match_clusters`).

    Returns
    -------
    DataFrame
        In baseline rank order: ``cluster_id``, ``rank`` (baseline), ``rank_min``,
        ``rank_max`` (over the settings where the cluster has a match), ``n_settings``
        (settings with a match) of ``n_swept`` (all settings); ``rank_min_setting`` and
        ``rank_max_setting`` name a setting where each extreme is reached.
    """
    base = memberships[baseline_key]
    ranges = rank_range(base.component, base.rank, memberships, activity, baseline_key)
    order = np.argsort(base.rank, kind="stable")
    return pd.DataFrame({"cluster_id": base.ranking["cluster_id"].to_numpy(), "rank": base.rank[order],
                         "rank_min": ranges.low[order], "rank_max": ranges.high[order],
                         "n_settings": ranges.n_matched[order], "n_swept": ranges.n_settings,
                         "rank_min_setting": [setting_name(ranges.low_at[c]) for c in order],
                         "rank_max_setting": [setting_name(ranges.high_at[c]) for c in order]})


def round_table(table: pd.DataFrame) -> pd.DataFrame:
    """``sweep.csv``'s rounding: shares and correlations to 6 decimals, seconds to 3.

    Parameters
    ----------
    table : DataFrame
        :func:`run_sweep` output.

    Returns
    -------
    DataFrame
        A rounded copy.
    """
    out = table.copy()
    for c in out.columns:
        if c.startswith("share_") or c in ("top_overlap", "spearman", "kendall", "adjusted_rand"):
            out[c] = out[c].round(6)
    out["seconds"] = out["seconds"].round(3)
    return out


def plot_heatmap(table: pd.DataFrame, column: str, ax, *, baseline_eps: float | None = None,
                 method: str | None = None) -> None:
    """Heat map of ``column`` over eps_km (rows) x min_weight_scale (columns) on ``ax``.

    Parameters
    ----------
    table : DataFrame
        :func:`run_sweep` output.
    column : str
        The value shown (e.g. ``spearman``).
    ax : matplotlib.axes.Axes
        Where to draw.
    baseline_eps : float, optional
        The baseline's radius, km: its cell (scale 1) is outlined.
    method : str, optional
        The method whose rows are shown; default the first in the table.

    Returns
    -------
    None
    """
    if "method" in table.columns:
        method = method if method is not None else table["method"].iloc[0]
        table = table[table["method"] == method]
        if not table["baseline"].any():
            baseline_eps = None
    grid = table.pivot(index="eps_km", columns="min_weight_scale", values=column).sort_index()
    values = grid.to_numpy(dtype=float)
    im = ax.imshow(values, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
    ax.set_xlabel("min_weight_scale (threshold multiplier)")
    ax.set_ylabel("eps_km")
    ax.set_title(f"{column} ({method})" if method else column)
    finite = values[np.isfinite(values)]
    mid = (finite.min() + finite.max()) / 2 if len(finite) else 0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            text = "" if not np.isfinite(v) else (f"{v:.0f}" if column == "n_clusters" else f"{v:.2f}")
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if v > mid else "white")
    if baseline_eps is not None and baseline_eps in grid.index and 1.0 in grid.columns:
        i, j = list(grid.index).index(baseline_eps), list(grid.columns).index(1.0)
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def write_heatmaps(table: pd.DataFrame, out_dir, *, baseline_eps: float, notice: str | None = None) -> list[str]:
    """``heatmap_<column>.png`` for each of :data:`HEATMAP_COLUMNS` into ``out_dir``.

    With several methods, the first method's maps are ``heatmap_<column>.png`` and
    another's ``heatmap_<column>_<method>.png``.

    Parameters
    ----------
    table : DataFrame
        :func:`run_sweep` output.
    out_dir : pathlib.Path
        An existing directory.
    baseline_eps : float
        The baseline's radius, km.
    notice : str, optional
        A line under each title.

    Returns
    -------
    list of str
        The file names written.
    """
    from matplotlib.figure import Figure

    names = []
    methods = list(dict.fromkeys(table["method"])) if "method" in table.columns else [None]
    for i, method in enumerate(methods):
        for column in HEATMAP_COLUMNS:
            # A Figure of its own, not pyplot: no global state, no backend switch, so a
            # notebook's inline plots keep working after a sweep.
            fig = Figure(figsize=(6, 4.5), dpi=100)
            ax = fig.subplots()
            plot_heatmap(table, column, ax, baseline_eps=baseline_eps, method=method)
            if notice:
                ax.set_title(f"{ax.get_title()}\n{notice}", fontsize=8)
            name = (f"heatmap_{column}.png" if i == 0
                    else f"heatmap_{column}_{str(method).replace('/', '_split')}.png")
            fig.savefig(out_dir / name, metadata={"Software": None}, bbox_inches="tight")
            names.append(name)
    return names
