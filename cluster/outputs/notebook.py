"""How a :class:`~cluster.pipeline.RunResult` shows itself in a notebook or a console.

* :func:`result_repr`: one short line (``repr(res)``), not the 6 KB a dataclass prints;
* :func:`result_html`: Jupyter's rich display (``_repr_html_``): the parameters, the
  counts, the warnings and the top 10 clusters as a table;
* :class:`MapView` / :func:`explore`: the interactive map of ``map.html`` (same page,
  same layers, built by :mod:`cluster.outputs.webmap` on the vendored Leaflet and Natural
  Earth borders) inside the notebook, as an ``<iframe srcdoc>``: nothing is loaded from
  the internet and no file is written;
* :func:`sites_geoframe`: the sites as a GeoDataFrame of points (EPSG:4326).

Every value from the data (names, economies, warnings) is HTML-escaped.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

__all__ = ["MapView", "explore", "result_html", "result_repr", "sites_geoframe"]

#: Rows of the table in the rich display.
TOP_ROWS = 10


def _metrics(result) -> list[str]:
    return list(result.config.metric_names)


def _present(result) -> list[str]:
    """The metrics that have records (the others rank nothing)."""
    totals = result.info.get("world_totals") or {}
    return [m for m in _metrics(result) if totals.get(m, 1) > 0]


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        return ""
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):,.{digits}f}"
    return str(v)


def result_repr(result) -> str:
    """One line: counts, radius, metrics, the first cluster, warnings.

    Parameters
    ----------
    result : RunResult

    Returns
    -------
    str
    """
    counts = result.info.get("counts", {})
    clusters = result.clusters
    first = ""
    if len(clusters):
        r = clusters.iloc[0]
        first = f", first: {r['name']} ({r['economies']}) score {float(r['score']):.2f}"
    n_warn = len(result.info.get("warnings") or [])
    synthetic = ", SYNTHETIC demo data" if result.info.get("synthetic") else ""
    return (f"<RunResult: {counts.get('clusters', len(clusters))} clusters ({counts.get('top', '?')} top) from "
            f"{counts.get('records_used', counts.get('records', 0)):,} records, eps_km={result.config.eps_km:g}, "
            f"metrics {', '.join(_present(result)) or 'none'}{first}"
            f"{f', {n_warn} warning(s)' if n_warn else ''}{synthetic}>")


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                   f"{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def top_table(result, n: int = TOP_ROWS) -> pd.DataFrame:
    """The first ``n`` clusters with their main columns, formatted as text.

    Parameters
    ----------
    result : RunResult
    n : int, default 10

    Returns
    -------
    DataFrame
        ``rank, name, economies, score``, each present metric's world share (%),
        ``population``, ``intensity_score``, ``tier`` (and the rank interval when the
        run bootstrapped).
    """
    c = result.clusters.head(n)
    cols = {"rank": "rank"}
    if "rank_ci_low" in c:
        cols["rank_ci"] = f"rank {100 * result.config.bootstrap_confidence:g}% interval"
    cols.update({"name": "name", "economies": "economies", "score": "score"})
    for m in _present(result):
        cols[f"share_{m}"] = f"{m} %"
    cols.update({"population": "population", "intensity_score": "intensity", "tier": "tier"})
    out = pd.DataFrame(index=range(len(c)))
    for col, title in cols.items():
        if col == "rank_ci":
            out[title] = [f"{_fmt(lo)}–{_fmt(hi)}" if not pd.isna(lo) else ""
                          for lo, hi in zip(c["rank_ci_low"], c["rank_ci_high"])]
        else:
            digits = 3 if col.startswith("share_") else 2
            out[title] = [_fmt(v, digits) for v in c[col].tolist()]
    return out


def result_html(result) -> str:
    """The rich display of a run: parameters, counts, warnings, the top 10.

    Parameters
    ----------
    result : RunResult

    Returns
    -------
    str
        An HTML fragment (values escaped).
    """
    info, config = result.info, result.config
    counts = info.get("counts", {})
    thresholds = info.get("thresholds") or {}
    metrics, present = _metrics(result), _present(result)
    params = [("eps_km", f"{config.eps_km:g} km")]
    params += [(f"threshold {m}", f"{_fmt(float(thresholds[m]))} (weight within eps_km)")
               for m in present if m in thresholds]
    params += [("top tier", f"{config.top_n} clusters")]
    if config.year_start or config.year_end:
        params.append(("years", f"{config.year_start or '...'}–{config.year_end or '...'}"))
    if config.bootstrap_replicates:
        params.append(("bootstrap", f"{config.bootstrap_replicates} replicates"))
    inputs = [f["path"] for f in info.get("inputs") or [] if "path" in f]
    params.append(("input", ", ".join(inputs) if inputs else ("synthetic demo world" if info.get("synthetic")
                                                               else "a DataFrame")))
    absent = [m for m in metrics if m not in present]
    count_rows = [("records", _fmt(counts.get("records_used", counts.get("records", 0)))),
                  ("sites", _fmt(counts.get("sites", len(result.sites_table)))),
                  ("clusters", f"{_fmt(counts.get('clusters', len(result.clusters)))} "
                               f"({_fmt(counts.get('top', 0))} top, {_fmt(counts.get('emerging', 0))} emerging)")]
    shares = counts.get("share_in_top_tier_pct") or {}
    if shares:
        count_rows.append(("share in the top tier", ", ".join(f"{m} {shares[m]:.1f} %" for m in present
                                                               if shares.get(m) is not None)))
    if absent:
        count_rows.append(("metrics without records", ", ".join(absent)))
    parts = ["<div class='cluster-runresult'>", "<b>RunResult</b> "
             f"(innovation-clusters {html.escape(str(info.get('version', '')))})"]
    if info.get("notice"):
        parts.append(f"<div style='color:#b00;font-weight:bold'>{html.escape(info['notice'])}</div>")
    parts.append("<div style='display:flex;gap:2em;flex-wrap:wrap'>")
    parts.append(f"<div><i>parameters</i>{_table(params)}</div><div><i>counts</i>{_table(count_rows)}</div>")
    parts.append("</div>")
    warnings = [w for w in info.get("warnings") or [] if not _is_absent_metric_note(w)]
    if warnings:
        items = "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
        parts.append(f"<div><i>warnings</i><ul style='color:#a50'>{items}</ul></div>")
    if len(result.clusters):
        parts.append(f"<div><i>top {min(TOP_ROWS, len(result.clusters))} of {len(result.clusters)}</i>")
        parts.append(top_table(result).to_html(index=False, escape=True, border=0))
        parts.append("</div>")
    parts.append("<div style='color:#666'>.clusters (GeoDataFrame) · .sites (GeoDataFrame) · .plot() · "
                 ".explore() · .write(dir)</div></div>")
    return "".join(parts)


def _is_absent_metric_note(text: str) -> bool:
    # stated in the counts ("metrics without records") instead
    return "has no records; the ranking uses the metrics present" in str(text)


class MapView:
    """An interactive map that displays itself in a notebook (``_repr_html_``).

    Attributes
    ----------
    html : str
        The self-contained page (what ``map.html`` holds).
    height_px : int
        Height of the frame in the notebook.
    """

    def __init__(self, page: str, height_px: int = 560):
        self.html = page
        self.height_px = int(height_px)

    def _repr_html_(self) -> str:
        # srcdoc: the page lives in the notebook (no file, no server, no network); the
        # frame isolates its script and CSS from the notebook's.
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
                f'style="width:100%;height:{self.height_px}px;border:1px solid #ccc" '
                'sandbox="allow-scripts allow-popups" loading="lazy"></iframe>')

    def save(self, path) -> None:
        """Write the page to ``path`` (UTF-8), as ``map.html``."""
        from pathlib import Path

        Path(path).write_text(self.html, "utf-8")

    def __repr__(self) -> str:
        return f"<MapView: {len(self.html) / 1e6:.1f} MB page; display it in a notebook or .save('map.html')>"


def explore(result, *, metrics=None, height_px: int = 560) -> MapView:
    """The interactive map of ``map.html`` for a run, shown inside a notebook.

    Parameters
    ----------
    result : RunResult
    metrics : sequence of str, optional
        Metrics with a layer each (default: the configured metrics, as ``map.html``).
    height_px : int, default 560

    Returns
    -------
    MapView
    """
    from cluster.outputs.webmap import map_data, render_html

    metrics = list(result.config.metric_names if metrics is None else metrics)
    labels = {m.name: m.label or m.name for m in result.config.metrics}
    page = render_html(map_data(result.clusters, metrics, labels), notice=result.info.get("notice"))
    return MapView(page, height_px)


def sites_geoframe(sites: pd.DataFrame):
    """The sites with point geometry (lon, lat; EPSG:4326), same rows and columns.

    Parameters
    ----------
    sites : DataFrame
        With ``lat`` and ``lon`` in degrees.

    Returns
    -------
    GeoDataFrame
    """
    import geopandas as gpd

    if isinstance(sites, gpd.GeoDataFrame):
        return sites
    return gpd.GeoDataFrame(sites, geometry=gpd.points_from_xy(sites["lon"].to_numpy(), sites["lat"].to_numpy()),
                            crs="EPSG:4326")
