"""Stage 8: write every output of a run, all together or not at all.

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

Atomicity: everything is written into a hidden temporary directory next to the target
and swapped into place only when complete, so a failed run leaves the previous outputs
as they were and no half-written file where a user would look.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import sys
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.errors import UserInputError

log = logging.getLogger(__name__)

OUTPUT_FILES = ("clusters.gpkg", "clusters.parquet", "ranking.csv", "ranking.md", "map.png", "map.html",
                "run.json")
_DECIMALS = {"share_": 6, "_per_million": 3, "score": 6, "intensity_score": 6}


def ranking_table(clusters, metrics) -> pd.DataFrame:
    """The ranking as plain columns, rounded so that bytes do not depend on float noise."""
    cols = (["rank", "cluster_id", "name", "economies"] + list(metrics)
            + [f"share_{m}" for m in metrics] + ["score", "population"]
            + [f"{m}_per_million" for m in metrics]
            + ["intensity_score", "intensity_rank", "tier", "anchor_lat", "anchor_lon", "n_sites", "synthetic"])
    if "rank_ci_low" in clusters.columns:  # only when the bootstrap ran ([bootstrap] replicates > 0)
        cols[1:1] = ["rank_ci_low", "rank_ci_high"]
    df = pd.DataFrame(clusters[cols]).copy()
    for c in df.columns:
        if c in metrics:
            df[c] = df[c].round(4)
        elif c.startswith("share_") or c in ("score", "intensity_score"):
            df[c] = df[c].round(6)
        elif c.endswith("_per_million"):
            df[c] = df[c].round(3)
    return df


def md_escape(text: str) -> str:
    """Escape text from the data for a Markdown table cell."""
    out = str(text)
    for ch in "\\`*_{}[]<>()#+!|":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ").replace("\r", " ")


def ranking_markdown(table: pd.DataFrame, info: dict, metrics, notice: str | None) -> str:
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
    head = ["Rank", "Cluster", "Economies"] + [m for m in metrics] + ["Score", "Intensity rank"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---:", "---", "---"] + ["---:"] * (len(metrics) + 2)) + "|")
    for _, r in top.iterrows():
        cells = [str(r["rank"]), md_escape(r["name"]), md_escape(r["economies"])]
        cells += [f"{r[m]:,.0f}" for m in metrics]
        cells += [f"{r['score']:.2f}", "" if pd.isna(r["intensity_rank"]) else str(r["intensity_rank"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def draw_map(clusters, path: Path, *, notice: str | None, places=None, n_labels: int = 20) -> None:
    """World map (plate carrée) of cluster boundaries; top ``n_labels`` labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    fig, ax = plt.subplots(figsize=(16, 7), dpi=110)
    ax.set_facecolor("#0b1726")
    if places is not None and len(places):
        # Populated places sketch the continents without shipping a basemap.
        ax.scatter(places["lon"], places["lat"], s=0.2, c="#4a6580", linewidths=0, rasterized=True)
    score = clusters["score"].to_numpy()
    norm = Normalize(vmin=0, vmax=max(float(np.nanmax(score)) if len(score) else 1.0, 1e-9))
    cmap = plt.get_cmap("plasma")
    if len(clusters):
        colors = [cmap(norm(s)) for s in score]
        clusters.plot(ax=ax, color=colors, edgecolor="none", zorder=2)
        pts = clusters[["anchor_lon", "anchor_lat"]].to_numpy()
        sizes = 8 + 400 * np.sqrt(np.clip(score, 0, None) / max(norm.vmax, 1e-9))
        ax.scatter(pts[:, 0], pts[:, 1], s=sizes, c=colors, alpha=0.55, edgecolors="white",
                   linewidths=0.3, zorder=3)
        _place_labels(fig, ax, clusters.head(n_labels))
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 80)
    ax.set_aspect("equal")
    ax.tick_params(colors="#8899aa", labelsize=7)
    title = f"Science-and-technology clusters: {len(clusters):,} clusters, top {min(n_labels, len(clusters))} labelled"
    if notice:
        title = notice + "\n" + title
    ax.set_title(title, fontsize=11)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, shrink=0.6, pad=0.01, label="score (sum of world shares, %)")
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)


# Offsets (points) tried in turn for a label; the far ones get a leader line.
_LABEL_SPOTS = [(5, 5, "left", "bottom"), (5, -5, "left", "top"), (-5, 5, "right", "bottom"),
                (-5, -5, "right", "top"), (0, 10, "center", "bottom"), (0, -10, "center", "top"),
                (25, 18, "left", "bottom"), (-25, -18, "right", "top"), (25, -18, "left", "top"),
                (-25, 18, "right", "bottom"), (0, 30, "center", "bottom"), (0, -30, "center", "top")]


def _place_labels(fig, ax, rows) -> None:
    """Label clusters in rank order, each at the first nearby spot that overlaps no earlier
    label (greedy; a label that fits nowhere is left out rather than drawn on another)."""
    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    placed = []
    for _, r in rows.iterrows():
        # Names come from data: matplotlib treats '$' as the start of math, so escape it.
        label = f"{r['rank']}. {str(r['name']).replace('$', chr(92) + '$')}"
        for dx, dy, ha, va in _LABEL_SPOTS:
            far = abs(dx) > 10 or abs(dy) > 12
            text = ax.annotate(label, (r["anchor_lon"], r["anchor_lat"]), xytext=(dx, dy),
                               textcoords="offset points", ha=ha, va=va, color="white", fontsize=7.5,
                               zorder=4, arrowprops=dict(arrowstyle="-", color="#aabbcc", lw=0.5)
                               if far else None)
            box = text.get_window_extent(renderer).expanded(1.04, 1.15)
            inside = axbox.x0 <= box.x0 and box.x1 <= axbox.x1 and axbox.y0 <= box.y0 and box.y1 <= axbox.y1
            if inside and not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
            text.remove()


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def prepare_output_dir(out_dir: Path) -> None:
    """Recover from an interrupted earlier run, then check ``out_dir`` can be (re)placed."""
    recover_interrupted(out_dir)
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(f"Output directory's parent {parent} does not exist. Create it or choose another --out.")
    if not os.access(parent, os.W_OK):
        raise UserInputError(f"Cannot write in {parent}: permission denied. Choose another --out.")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserInputError(f"--out {out_dir} is a file, not a directory. Choose another --out.")
        entries = [p.name for p in out_dir.iterdir()]
        if entries and "run.json" not in entries:
            raise UserInputError(
                f"Refusing to replace {out_dir}: it is not empty and holds no run.json, so it is not "
                "an output directory of this tool. Choose a new or empty directory for --out.")


def make_temp_dir(out_dir: Path) -> Path:
    """A hidden temporary directory next to ``out_dir``, to be swapped into place when complete."""
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    try:
        # The pid in the name lets a later run tell a live writer from a killed one.
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise UserInputError(f"Cannot write in {parent} ({exc.strerror}). Choose another --out.") from None
    # mkdtemp makes the directory private (0700); outputs get the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


@contextmanager
def atomic_output_dir(out_dir: str | Path):
    """Yield a temporary directory; on success it replaces ``out_dir`` atomically, on any
    error it is removed and ``out_dir`` is left as it was (used by ``sweep`` and ``kdist``,
    which, like ``run``, write a ``run.json`` so a later run may replace the directory)."""
    out_dir = Path(out_dir)
    prepare_output_dir(out_dir)
    tmp = make_temp_dir(out_dir)
    try:
        yield tmp
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_outputs(result, out_dir: str | Path, metrics, *, notice: str | None = None, places=None,
                  geojson: bool | None = None, sites_outside: bool | None = None) -> Path:
    """Write all outputs into ``out_dir`` atomically (see module docstring). ``geojson`` and
    ``sites_outside`` default to the run's ``[outputs]`` configuration."""
    out_cfg = result.info.get("config", {}).get("outputs", {})
    geojson = bool(out_cfg.get("geojson", False)) if geojson is None else geojson
    sites_outside = bool(out_cfg.get("sites_outside", False)) if sites_outside is None else sites_outside
    labels = {m: result.info.get("config", {}).get("metrics", {}).get(m, {}).get("label", m) for m in metrics}
    out_dir = Path(out_dir)
    prepare_output_dir(out_dir)
    tmp = make_temp_dir(out_dir)
    try:
        clusters = result.clusters
        table = ranking_table(clusters, metrics)
        gdf = clusters.copy()
        gdf["intensity_rank"] = gdf["intensity_rank"].astype("float64")  # GPKG has no nullable int64 via all drivers
        description = "Science-and-technology clusters (innovation-clusters)" + (f". {notice}" if notice else "")
        gdf.to_file(tmp / "clusters.gpkg", layer="clusters", driver="GPKG", engine="pyogrio",
                    layer_metadata={"DESCRIPTION": description})
        from cluster.outputs.gpkg import finish_geopackage, sites_frame
        from cluster.outputs.webmap import write_map_html

        if result.sites is not None and "cluster_id" in result.sites:
            sites_frame(result.sites, outside=sites_outside).to_file(
                tmp / "clusters.gpkg", layer="sites", driver="GPKG", engine="pyogrio", use_arrow=True,
                layer_metadata={"DESCRIPTION": "Weighted sites of the clusters (innovation-clusters)"})
        finish_geopackage(tmp / "clusters.gpkg", clusters=gdf, metric_labels=labels, info=result.info,
                          default_json=_json_default)
        clusters.to_parquet(tmp / "clusters.parquet", index=False, schema_version="1.1.0",
                            write_covering_bbox=True)
        if geojson:
            # GDAL's RFC 7946 mode: EPSG:4326 lon/lat, counter-clockwise exteriors, split at ±180°.
            import geopandas as gpd

            gj = gpd.GeoDataFrame(table, geometry=clusters.geometry.to_numpy(), crs=clusters.crs)
            gj.to_file(tmp / "clusters.geojson", driver="GeoJSON", engine="pyogrio",
                        RFC7946="YES", COORDINATE_PRECISION=6, WRITE_NAME="NO")
        write_map_html(tmp / "map.html", clusters, metrics, labels, notice=notice, places=places)
        table.to_csv(tmp / "ranking.csv", index=False, lineterminator="\n")
        (tmp / "ranking.md").write_text(ranking_markdown(table, result.info, metrics, notice), "utf-8")
        draw_map(clusters, tmp / "map.png", notice=notice, places=places)
        (tmp / "run.json").write_text(json.dumps(result.info, indent=2, default=_json_default,
                                                 ensure_ascii=False) + "\n", "utf-8")
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote %s", ", ".join(str(out_dir / f) for f in OUTPUT_FILES))
    return out_dir


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False if unsupported.

    No Python or library API offers an atomic exchange, so it is called through ctypes;
    other systems fall back to two renames with recovery (see ``recover_interrupted``).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp`` so that a reader (or a kill) sees old or new, never a mix."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    if _exchange(tmp, out_dir):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the previous outputs
        return
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-0"
    os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted(out_dir: Path) -> None:
    """Tidy up after a run that was killed: restore outputs a two-rename swap had moved
    aside, and remove the hidden temporary directories of runs that are no longer alive."""
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{out_dir.name}.old-*"))
    if olds and not out_dir.exists():
        os.rename(olds[-1], out_dir)
        log.warning("restored the previous outputs of an interrupted run into %s", out_dir)
    for debris in list(parent.glob(f".{out_dir.name}.tmp-*")) + list(parent.glob(f".{out_dir.name}.old-*")):
        pid = debris.name.rsplit("-", 2)[-2] if debris.name.count("-") >= 2 else ""
        if pid.isdigit() and _alive(int(pid)):
            continue
        shutil.rmtree(debris, ignore_errors=True)
        log.info("removed %s left by an interrupted run", debris)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
