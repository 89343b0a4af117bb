"""Tuning the density thresholds: a grid of radii and threshold scales against the baseline.

``cluster sweep`` reads and reduces the records to sites once, then for every
``(eps_km, min_weight_scale)`` combination reruns the density clustering and the overlay
(:func:`cluster.stages.clustering.cluster_metrics`, :func:`cluster.stages.clustering.overlay`) with the
radius and every metric's configured threshold multiplied by the scale, and ranks the
clusters. The baseline is the configured default (``eps_km`` and thresholds from the
config, scale 1).

Membership ranking (the one difference from ``cluster run``). Building boundary polygons,
populations and names for every combination would cost a full run each, so here a
cluster's count per metric is the weight of its member sites plus the noise sites within
``eps_km / 2`` of a member site: exactly the sites inside the union of discs of radius
``eps_km / 2`` that ``cluster run`` uses as the boundary, without the polygon (a run's
boundary approximates each disc by a ``disc_segments``-gon, so a noise site within a
few metres of the disc's edge may count differently). The score, ranks, tiers and
cluster ids follow :mod:`cluster.stages.ranking` as in a run; population (hence intensity) is
not computed. With the same parameters the ranks therefore equal a run's ranks up to
that edge effect.

Comparisons with the baseline (columns of ``sweep.csv``):

* ``n_clusters``; ``share_in_clusters_<m>`` and ``share_in_top_<m>``: percent of the world
  total of metric ``m`` counted in all clusters / in the top tier;
* ``top_overlap``: fraction of the baseline's top-tier clusters whose matched cluster is in
  this combination's top tier;
* ``spearman``, ``kendall``: rank correlation (``scipy.stats``) between the baseline ranks
  and the ranks of their matched clusters, over the matched (common) clusters;
* ``adjusted_rand``: ``sklearn.metrics.adjusted_rand_score`` of the cluster each site
  counts towards (noise as one label of its own), over all sites;
* ``seconds``: time to cluster, overlay, count and rank this combination.

Matching: clusters are matched one to one by member-site overlap: the pair sharing the
most activity (the sites' score contributions) first, greedily. Cluster ids (geohash of
the heaviest location) would mostly agree too, but drift when the heaviest site changes.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from cluster.stages.boundaries import counts_inside
from cluster.stages.clustering import cluster_metrics, overlay
from cluster.config import Config
from cluster.engine.geo import chord_for_km, unit_vectors
from cluster.stages.ranking import cluster_anchors, site_activity
from cluster.stages.ranking import assign_cluster_ids, rank_clusters
from cluster.stages.sites import filter_years, reduce_to_sites, world_totals

log = logging.getLogger(__name__)

HEATMAP_COLUMNS = ("n_clusters", "top_overlap", "spearman", "adjusted_rand")


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
    """Hold back the per-metric INFO lines of the clustering stages inside a loop."""
    logger = logging.getLogger("cluster.stages.clustering")
    level = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def prepare_sites(records: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, dict]:
    """Year window, fractional counting and reduction to sites (done once per sweep)."""
    records, _ = filter_years(records, config.year_start, config.year_end)
    sites = reduce_to_sites(records, config.metric_names)
    return sites, world_totals(sites, config.metric_names)


def scaled_config(config: Config, totals: dict, eps_km: float, scale: float) -> Config:
    """``config`` with radius ``eps_km`` and every metric's threshold times ``scale``
    (in weight units, so ``min_share`` thresholds use the given world totals)."""
    metrics = tuple(replace(m, min_weight=m.threshold(totals.get(m.name, 0.0)) * scale, min_share=None)
                    for m in config.metrics)
    return replace(config, eps_km=float(eps_km), metrics=metrics)


def noise_within(sites: pd.DataFrame, component: np.ndarray, radius_km: float) -> np.ndarray:
    """``component`` extended to the non-member sites within ``radius_km`` of a member
    site (the nearest one's cluster; discs of different clusters do not overlap)."""
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
    """Cluster and rank ``sites`` with radius ``eps_km`` (default: the config's) and the
    configured thresholds times ``scale`` (see the module docstring for the counts)."""
    eps = config.eps_km if eps_km is None else float(eps_km)
    cfg = scaled_config(config, totals, eps, scale)
    metrics = list(config.metric_names)
    clustered, thresholds = cluster_metrics(sites, cfg, totals)
    component = overlay(clustered, eps)
    n = int(component.max()) + 1 if len(component) else 0
    inside = noise_within(sites, component, eps / 2.0)
    counts = counts_inside(sites, inside, n, metrics)
    activity = site_activity(sites, totals, config)
    anchor = cluster_anchors(sites, inside, activity, n) if n else np.zeros((0, 2))
    ids = assign_cluster_ids(anchor[:, 0], anchor[:, 1])
    ranking = rank_clusters(counts, totals, {m.name: m.score_weight for m in config.metrics},
                            np.zeros(n), ids, top_n=config.top_n)
    pos = pd.Series(np.arange(n), index=ids)
    comp_of_row = pos.reindex(ranking["cluster_id"]).to_numpy()
    rank = np.zeros(n, dtype=np.int64)
    rank[comp_of_row] = ranking["rank"].to_numpy()
    top = np.zeros(n, dtype=bool)
    top[comp_of_row] = (ranking["tier"] == "top").to_numpy()
    return Membership(component=component, inside=inside, ranking=ranking, rank=rank, top=top,
                      thresholds=thresholds)


def match_clusters(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> dict[int, int]:
    """One-to-one matching of clusters ``a`` -> ``b`` by shared member-site weight.

    ``a`` and ``b`` give each site's cluster in two clusterings of the same sites (-1 for
    none); pairs sharing the most ``weight`` are matched first (ties by cluster numbers).
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


def compare(base: Membership, other: Membership, activity: np.ndarray) -> dict:
    """``top_overlap``, ``spearman``, ``kendall`` and ``adjusted_rand`` of ``other`` against ``base``."""
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


def run_sweep(sites: pd.DataFrame, totals: dict, config: Config, eps_values, scales) -> tuple[pd.DataFrame, dict]:
    """Every (eps_km, scale) combination against the baseline (config eps_km, scale 1).

    Returns
    -------
    table : DataFrame
        One row per combination (eps ascending, then scale), columns as in the module
        docstring, plus ``baseline`` (bool).
    memberships : dict
        ``(eps_km, scale) -> Membership`` (the baseline included), e.g. to map them.
    """
    metrics = list(config.metric_names)
    activity = site_activity(sites, totals, config)
    eps_values = sorted({float(e) for e in eps_values})
    scales = sorted({float(s) for s in scales})
    key0 = (float(config.eps_km), 1.0)
    t0 = time.perf_counter()
    memberships = {key0: membership_ranking(sites, config, totals)}
    seconds = {key0: time.perf_counter() - t0}
    base = memberships[key0]
    rows = []
    for eps in eps_values:
        for scale in scales:
            key = (eps, scale)
            if key not in memberships:
                t0 = time.perf_counter()
                with quiet_stages():
                    memberships[key] = membership_ranking(sites, config, totals, eps_km=eps, scale=scale)
                seconds[key] = time.perf_counter() - t0
            mem = memberships[key]
            row = {"eps_km": eps, "min_weight_scale": scale, "n_clusters": mem.n_clusters}
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
            log.info("sweep eps %g km, scale %g: %d clusters, spearman %.3f, ARI %.3f (%.2f s)",
                     eps, scale, mem.n_clusters, row["spearman"], row["adjusted_rand"], seconds[key])
    return pd.DataFrame(rows), memberships


def round_table(table: pd.DataFrame) -> pd.DataFrame:
    """sweep.csv's rounding: shares and correlations to 6 decimals, seconds to 3."""
    out = table.copy()
    for c in out.columns:
        if c.startswith("share_") or c in ("top_overlap", "spearman", "kendall", "adjusted_rand"):
            out[c] = out[c].round(6)
    out["seconds"] = out["seconds"].round(3)
    return out


def plot_heatmap(table: pd.DataFrame, column: str, ax, *, baseline_eps: float | None = None) -> None:
    """Heat map of ``column`` over eps_km (rows) x min_weight_scale (columns) on ``ax``."""
    grid = table.pivot(index="eps_km", columns="min_weight_scale", values=column).sort_index()
    values = grid.to_numpy(dtype=float)
    im = ax.imshow(values, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
    ax.set_xlabel("min_weight_scale (threshold multiplier)")
    ax.set_ylabel("eps_km")
    ax.set_title(column)
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
    """``heatmap_<column>.png`` for each of :data:`HEATMAP_COLUMNS`; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for column in HEATMAP_COLUMNS:
        fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
        plot_heatmap(table, column, ax, baseline_eps=baseline_eps)
        if notice:
            ax.set_title(f"{column}\n{notice}", fontsize=8)
        name = f"heatmap_{column}.png"
        fig.savefig(out_dir / name, metadata={"Software": None}, bbox_inches="tight")
        plt.close(fig)
        names.append(name)
    return names

