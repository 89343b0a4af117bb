"""The last stage: write every output of a run, all together or not at all.

Files (in the output directory):

``clusters.gpkg``   layer ``clusters``: boundaries + every ranking column, EPSG:4326; layer
                    ``sites``; default QGIS style, field docs, ``run_info`` (see cluster.outputs.gpkg)
``clusters.parquet`` the same as GeoParquet 1.1 (CRS, bbox covering column)
``clusters.geojson`` optional (``[outputs] geojson``/``--geojson``): RFC 7946
``map.html``        interactive map, self-contained and offline (see cluster.outputs.webmap)
``ranking.csv``     one row per cluster in rank order
``ranking.md``      readable table of the top tier
``map.png``         world map, top clusters labelled
``run.json``        parameters, input fingerprints, counts, versions, stage timings
``report.md``       the GII's tables (clusters by economy, top ten by metric and by intensity,
                    top-tier shares), also as ``report_*.csv`` (see cluster.outputs.report)
``profiles.csv``    only when the records have ``field``/``institution``: every value's
                    weight and share per cluster and metric (see cluster.stages.profiles)
``rejects.csv``     only with ``on_bad_rows = "skip"``: the rows left out (file, row, column,
                    value, rule; capped, the exact counts in run.json, see cluster.ingest.rejects)

``manifest.json``   every file above with its size and SHA-256 (see cluster._atomic)

Atomicity and ownership: everything is written into a hidden temporary directory next to
the target and swapped into place only when complete (:mod:`cluster._atomic`), so a failed
run leaves the previous outputs as they were and no half-written file where a user would
look; a folder is replaced only when everything in it is listed in its manifest, and only
those files are removed. Everything is written in this process: a helper process forked
from a process that runs threads (DuckDB's, numba's) can inherit a lock that nobody will
ever release, and the side process that drew ``map.png`` that way hung a run.

Two threads write: a worker writes the whole of ``clusters.gpkg`` (its ``sites`` layer is
most of the writing time, spent in GDAL and SQLite without Python's GIL, see
:mod:`cluster.outputs._gdal_nogil`), while the calling thread writes every other file and
draws ``map.png`` (matplotlib's object API on an Agg canvas of its own, in this thread
only). The worker does little that needs the GIL, so the two threads seldom wait for
each other; at 10 M records each takes about a second (writing took 1.1-1.4 s while the
``clusters`` layer and the ``sites`` table were made here before the worker started).
Both write into the temporary folder; the folder is swapped into place only when both
are done, and an error in either is raised as it was (the calling thread's first) after
both have stopped, so nothing half-written is ever swapped in.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from cluster._atomic import atomic_output_dir
from cluster._progress import bar
from cluster.ingest import PROFILE_COLUMNS
from cluster.outputs._text import md_escape, write_csv
from cluster.outputs.gpkg import GPKG_VERSION, finish_geopackage, sites_table, write_sites_table
from cluster.outputs.maps import draw_map
from cluster.outputs.report import REPORT_FILES, write_report
from cluster.outputs.webmap import write_map_html

log = logging.getLogger(__name__)

PROFILE_PREFIXES = ("top_field_", "top_institution_")
OUTPUT_FILES = ("clusters.gpkg", "clusters.parquet", "ranking.csv", "ranking.md", "map.png", "map.html",
                "run.json", "manifest.json") + REPORT_FILES


def ranking_table(clusters, metrics) -> pd.DataFrame:
    """The ranking as plain columns, rounded so that bytes do not depend on float noise.

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order.
    metrics : sequence of str
        Metrics, in output order.

    Returns
    -------
    DataFrame
        ``ranking.csv``'s columns: counts to 4 decimals, shares and scores to 6,
        per-million figures to 3.
    """
    cols = (["rank", "cluster_id", "name", "economies"] + list(metrics)
            + [f"share_{m}" for m in metrics] + ["score", "population"]
            + [f"{m}_per_million" for m in metrics]
            + ["intensity_score", "intensity_rank", "tier", "anchor_lat", "anchor_lon", "n_sites", "synthetic"]
            + [c for c in ("intensity_note", "area_km2", "extent_km", "single_site", "geocode_note")
               if c in clusters.columns])
    if "rank_ci_low" in clusters.columns:  # only when the bootstrap ran ([bootstrap] replicates > 0)
        cols[1:1] = ["rank_ci_low", "rank_ci_high"]
    if "rank_min_settings" in clusters.columns:  # only with [ranking] rank_range_eps_km / rank_range_methods
        at = cols.index("rank_ci_high") + 1 if "rank_ci_high" in cols else 1
        cols[at:at] = ["rank_min_settings", "rank_max_settings", "rank_n_settings"]
    # Profiles (top_field_<metric>, top_institution_<metric>): only when the records have them.
    at = cols.index("synthetic")
    cols[at:at] = [c for c in clusters.columns if c.startswith(PROFILE_PREFIXES)]
    df = pd.DataFrame(clusters[cols]).copy()
    for c in df.columns:
        if c in metrics:
            df[c] = df[c].round(4)
        elif c.startswith("share_") or c in ("score", "intensity_score"):
            df[c] = df[c].round(6)
        elif c.endswith("_per_million"):
            df[c] = df[c].round(3)
    return df


def ranking_markdown(table: pd.DataFrame, info: dict, metrics, notice: str | None) -> str:
    """``ranking.md``: a readable table of the top tier.

    Parameters
    ----------
    table : DataFrame
        :func:`ranking_table` output.
    info : dict
        What ``run.json`` holds (counts, the radius).
    metrics : sequence of str
        Metric columns shown.
    notice : str or None
        A line set above the table (e.g. the synthetic-data notice).

    Returns
    -------
    str
        Markdown; text from the data is escaped (:func:`md_escape`).
    """
    top = table[table["tier"] == "top"]
    lines = ["# Science-and-technology clusters", ""]
    if notice:
        lines += [f"> **{notice}**", ""]
    c = info["counts"]
    lines += [
        f"{c['clusters']:,} clusters ({c['top']:,} top, {c['emerging']:,} emerging) from "
        f"{c['records_used']:,} records at {c['sites']:,} sites; DBSCAN radius "
        f"{info['config']['clustering']['eps_km']} km.",
        "",
        "Score = sum of each metric's share of the world total (percent). Intensity rank "
        "orders the top tier by score per million inhabitants.",
        "",
    ]
    head = ["Rank", "Cluster", "Economies"] + [md_escape(m) for m in metrics] + ["Score", "Intensity rank"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---:", "---", "---"] + ["---:"] * (len(metrics) + 2)) + "|")
    for _, r in top.iterrows():
        cells = [str(r["rank"]), md_escape(r["name"]), md_escape(r["economies"])]
        # A metric without records has no counts: an en dash, as in the GII's tables, not "nan".
        cells += ["\u2013" if pd.isna(r[m]) else f"{r[m]:,.0f}" for m in metrics]
        cells += [f"{r['score']:.2f}", "" if pd.isna(r["intensity_rank"]) else str(r["intensity_rank"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += profile_markdown(top, metrics)
    return "\n".join(lines) + "\n"


def profile_markdown(top: pd.DataFrame, metrics) -> list[str]:
    """Lines of the ``Profiles`` table of ``ranking.md`` (none when the run has no
    ``top_field_*``/``top_institution_*`` columns): per cluster and metric the top field
    and the top institution.

    Parameters
    ----------
    top : DataFrame
        The ``top_<kind>_<metric>`` columns with ``rank`` and ``name``.
    metrics : sequence of str
        Metrics, in output order.

    Returns
    -------
    list of str
        Markdown lines.
    """
    cols = [(m, kind) for m in metrics for kind in PROFILE_COLUMNS if f"top_{kind}_{m}" in top.columns]
    if not cols:
        return []
    lines = ["", "## Profiles", "",
             "Top field and top institution of each cluster per metric, by fractional count "
             "(all values and their shares in `profiles.csv`).", "",
             "| " + " | ".join(["Rank", "Cluster"] + [f"Top {kind} ({md_escape(m)})" for m, kind in cols]) + " |",
             "|" + "|".join(["---:", "---"] + ["---"] * len(cols)) + "|"]
    for _, r in top.iterrows():
        cells = [str(r["rank"]), md_escape(r["name"])]
        cells += ["" if pd.isna(r[f"top_{kind}_{m}"]) else md_escape(r[f"top_{kind}_{m}"]) for m, kind in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def json_default(obj):
    """``json.dumps`` fallback for numpy scalars and paths.

    Parameters
    ----------
    obj : object
        What ``json`` cannot serialise by itself.

    Returns
    -------
    int, float or str

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_outputs(result, out_dir: str | Path, metrics: Sequence[str] | None = None) -> Path:
    """Write every output of a run into ``out_dir``, all together or not at all.

    Parameters
    ----------
    result : RunResult
        What :func:`cluster.run` returned; its ``config`` decides the optional outputs
        (``[outputs] geojson``, ``sites_outside``) and the metric labels.
    out_dir : path-like
        Output directory: created, or replaced when it is empty or holds only the
        unchanged files of its ``manifest.json`` (an earlier command's outputs; see
        :mod:`cluster._atomic`). Its parent must exist; no input may lie inside it.
    metrics : sequence of str, optional
        Metrics to write, in order; default every configured metric.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    UserInputError
        When ``out_dir`` cannot be written, holds anything this tool did not write
        (named in the message), or holds an input of the run.
    """
    config = result.config
    metrics = list(config.metric_names if metrics is None else metrics)
    labels = {m.name: m.label or m.name for m in config.metrics}
    notice = result.info.get("notice")
    out_dir = Path(out_dir)
    profiles = getattr(result, "profiles", None)
    rejects = getattr(result, "rejects", None)
    steps = 9 + bool(config.write_geojson) + (profiles is not None) + (rejects is not None)
    inputs = [f["path"] for f in result.info.get("inputs", [])
              if isinstance(f, dict) and f.get("path") and "://" not in str(f["path"])]
    with (atomic_output_dir(out_dir, command="run", inputs=inputs) as tmp,
          bar(desc="writing outputs", total=steps, unit="file") as done):
        lock = threading.Lock()

        def wrote(name: str) -> None:
            with lock:  # called from both threads
                done.set_postfix_str(name, refresh=False)
                done.update()

        # The GeoPackage on a worker thread, the rest here (see the module docstring).
        # Leaving the pool waits for the worker, whatever happened here.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster-gpkg") as pool:
            gpkg = _write_geopackage(pool, tmp, result, labels, notice, wrote)
            _write_files(tmp, result, metrics, labels, notice, wrote)
            draw_map(result.clusters, tmp / "map.png", notice=notice)
            wrote("map.png")
        gpkg.result()  # the worker's error, if any
    log.info("wrote %s", ", ".join(str(out_dir / f) for f in OUTPUT_FILES))
    return out_dir


def _write_geopackage(pool: ThreadPoolExecutor, tmp: Path, result, labels: dict, notice: str | None, wrote):
    """``clusters.gpkg`` into ``tmp`` on ``pool``: layer ``clusters``, layer ``sites`` and the
    extras of :func:`cluster.outputs.gpkg.finish_geopackage` (see :func:`write_outputs`);
    returns the worker's future. The worker only reads ``result`` (its own copy of the
    clusters), as the calling thread does meanwhile."""
    config = result.config
    gdf = result.clusters.copy()
    description = "Science-and-technology clusters (innovation-clusters)" + (f". {notice}" if notice else "")
    sites = result.sites_table  # the table as stored (no point objects to build)

    def finish() -> None:  # on the worker: GDAL and SQLite, mostly without the GIL
        # Nullable integers (intensity_rank, rank_ci_*) and rank_*_settings stay INTEGER
        # fields (empty = NULL); VERSION: see cluster.outputs.gpkg.GPKG_VERSION.
        gdf.to_file(tmp / "clusters.gpkg", layer="clusters", driver="GPKG", engine="pyogrio",
                    layer_metadata={"DESCRIPTION": description}, VERSION=GPKG_VERSION)
        wrote("clusters.gpkg: clusters")
        if sites is not None and "cluster_id" in sites:
            write_sites_table(tmp / "clusters.gpkg", sites_table(sites, outside=config.sites_outside))
        wrote("clusters.gpkg: sites")
        finish_geopackage(tmp / "clusters.gpkg", clusters=gdf, metric_labels=labels, info=result.info,
                          default_json=json_default, economy_min_share=config.economy_min_share)

    return pool.submit(finish)


def _write_files(tmp: Path, result, metrics: list, labels: dict, notice: str | None, wrote) -> None:
    """Every output but ``clusters.gpkg`` and ``map.png`` into ``tmp`` (see :func:`write_outputs`)."""
    config, clusters, profiles = result.config, result.clusters, getattr(result, "profiles", None)
    table = ranking_table(clusters, metrics)
    clusters.to_parquet(tmp / "clusters.parquet", index=False, schema_version="1.1.0",
                        write_covering_bbox=True)
    wrote("clusters.parquet")
    if config.write_geojson:
        # GDAL's RFC 7946 mode: EPSG:4326 lon/lat, counter-clockwise exteriors, split at ±180°.
        gj = gpd.GeoDataFrame(table, geometry=clusters.geometry.to_numpy(), crs=clusters.crs)
        gj.to_file(tmp / "clusters.geojson", driver="GeoJSON", engine="pyogrio",
                   RFC7946="YES", COORDINATE_PRECISION=6, WRITE_NAME="NO")
        wrote("clusters.geojson")
    write_map_html(tmp / "map.html", clusters, metrics, labels, notice=notice)
    wrote("map.html")
    write_csv(table, tmp / "ranking.csv")
    wrote("ranking.csv")
    (tmp / "ranking.md").write_text(ranking_markdown(table, result.info, metrics, notice), "utf-8")
    wrote("ranking.md")
    if profiles is not None:
        write_profiles_csv(tmp / "profiles.csv", profiles, clusters)
        wrote("profiles.csv")
    if getattr(result, "rejects", None) is not None:
        write_csv(result.rejects, tmp / "rejects.csv")
        wrote("rejects.csv")
    write_report(tmp, clusters, result.info, metrics, notice=notice, top_n=config.top_n)
    wrote("report.md")
    write_json(tmp / "run.json", result.info)
    wrote("run.json")


def write_profiles_csv(path: Path, profiles: pd.DataFrame, clusters) -> None:
    """``profiles.csv``: the long-form profiles with each cluster's rank and name, rounded
    so that bytes do not depend on float noise.

    Parameters
    ----------
    path : pathlib.Path
        The file to write.
    profiles : DataFrame
        Long-form profiles (:func:`cluster.stages.profiles.cluster_profiles`).
    clusters : DataFrame
        A run's clusters in rank order.

    Returns
    -------
    None
    """
    from cluster.stages.sites import positions_in

    ids = clusters["cluster_id"]
    if ids.duplicated().any():
        raise ValueError("write_profiles_csv: cluster ids repeat in the clusters table")
    # Each profile row's cluster by position (an inner join in the clusters' order, a
    # cluster's rows in their order); the columns that repeat per cluster or metric as
    # categoricals, so the writer formats each distinct value once.
    at = positions_in(profiles["cluster_id"], ids)
    rows = np.flatnonzero(at >= 0)
    rows = rows[np.argsort(at[rows], kind="stable")]
    at = at[rows]

    def by_cluster(col):
        codes, names = pd.factorize(clusters[col])
        return pd.Categorical.from_codes(codes[at], categories=names)

    def repeated(col):
        return pd.Categorical(profiles[col].take(rows))

    df = pd.DataFrame({"rank": by_cluster("rank"), "cluster_id": by_cluster("cluster_id"), "name": by_cluster("name"),
                       "metric": repeated("metric"), "kind": repeated("kind"),
                       "position": profiles["position"].to_numpy()[rows],
                       "value": profiles["value"].take(rows).reset_index(drop=True),
                       "weight": profiles["weight"].to_numpy()[rows].round(4),
                       "share": profiles["share"].to_numpy()[rows].round(6)})
    write_csv(df, path)


def write_json(path: Path, info: dict) -> None:
    """Write ``info`` to ``path`` as indented UTF-8 JSON (numpy scalars and paths converted).

    Parameters
    ----------
    path : pathlib.Path
        The file (e.g. ``run.json``).
    info : dict
        JSON-able data.

    Returns
    -------
    None
    """
    path.write_text(json.dumps(info, indent=2, default=json_default, ensure_ascii=False) + "\n", "utf-8")
