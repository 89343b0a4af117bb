"""Write a composite index's outputs, all together or not at all.

Files (in the output directory):

``index.csv``           per unit, rank order: index score and rank, the Monte Carlo median
                        rank and 5-95 % interval, every group's score and rank, every
                        indicator normalised (``<code>``), its rank and raw value, and the
                        per-unit first-order sensitivity indices (``s1_<factor>``)
``index.md``            the method, the ranking, the audit, uncertainty and sensitivity
``index.gpkg``          layer ``index`` (cluster polygons with the ``index.csv`` columns,
                        EPSG:4326); attribute tables ``correlations``, ``treatment``,
                        ``sensitivity``, ``leave_one_out``
``correlations.csv``    the correlation audit; ``correlations.png`` its heat map
``treatment.csv``       the data-treatment log, one row per indicator
``sensitivity.csv``     first- and total-order sensitivity indices per uncertain factor, raw,
                        with their 95 % bootstrap intervals and clipped to [0, 1]
``leave_one_out.csv``   rank shifts when each indicator is left out
``uncertainty.png``     rank intervals of the top units
``index.json``          framework, settings, inputs (SHA-256), versions

A synthetic index (demo clusters, or demo tables joined with ``--allow-synthetic``) says so
in the first lines of every output: the notice heads ``index.md`` and the titles of the PNG
files, every CSV (and layer) starts with a column ``synthetic`` (true on every row), and
``index.json`` starts with ``synthetic`` and ``notice``.

Floats are rounded (6 decimals) so that the same inputs and seed give byte-identical
``index.csv``. Everything is written into a hidden temporary directory next to the target,
then renamed into place; a failure leaves the previous outputs as they were. A non-empty
directory without ``index.json`` is never replaced.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

FILES = (
    "index.csv",
    "index.md",
    "index.gpkg",
    "correlations.csv",
    "correlations.png",
    "treatment.csv",
    "sensitivity.csv",
    "leave_one_out.csv",
    "uncertainty.png",
    "index.json",
)


def _rounded(df: pd.DataFrame, decimals: int = 6) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return out


def _md(text) -> str:
    from cluster.outputs._text import md_escape

    return md_escape(text)


def _code(text) -> str:
    from cluster.outputs._text import md_code

    return md_code(text)


def _fmt(x, spec=".2f") -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def index_markdown(res, n_top: int = 30) -> str:
    """The readable report (``index.md``).

    Parameters
    ----------
    res : IndexResult
        What :func:`cluster.composite.compute_index` returned.
    n_top : int
        Rows of the results table shown.

    Returns
    -------
    str
        Markdown.
    """
    fw, t = res.framework, res.table
    lines = [f"# {_md(fw.name)}", ""]
    if res.info.get("synthetic"):
        notice = res.info.get("notice") or "SYNTHETIC DATA: the clusters or the user tables are generated, not real."
        lines = [f"> **{_md(notice)}**", "", f"# {_md(fw.name)} (synthetic)", ""]
    if fw.description:
        from cluster.outputs._text import md_paragraphs

        lines += [md_paragraphs(fw.description), ""]
    lines += [
        f"{len(t)} units (clusters of run {_code(res.info.get('run', ''))}), {len(fw.indicators)} indicators, "
        f"framework {_code(Path(fw.source).name)}.",
        "",
        "## Framework",
        "",
    ]

    def tree(code, depth):
        for c in fw.children(code):
            if hasattr(c, "column"):
                den = (
                    f" / {_md(c.denominator)} × {c.scale:g}"
                    if c.denominator
                    else (f" × {c.scale:g}" if c.scale != 1 else "")
                )
                lines.append(
                    f"{'  ' * depth}- {_code(c.code)} {_md(c.label)}: {_code(c.column)}{den}, direction "
                    f"{'+' if c.direction > 0 else '−'}, weight {c.weight:g}, "
                    f"{fw.indicator_normalisation(c)}"
                )
            else:
                lines.append(
                    f"{'  ' * depth}- **{_md(c.label)}** ({_code(c.code)}), weight {c.weight:g}, "
                    f"{fw.group_aggregation(c)} mean of:"
                )
                tree(c.code, depth + 1)

    lines += [f"**{_md(fw.root.label)}**: {fw.group_aggregation(fw.root)} mean of:"]
    tree(fw.root.code, 0)
    if res.dropped:
        lines += ["", "Left out (optional, data absent): " + "; ".join(_md(d) for d in res.dropped) + "."]
    if res.info.get("tables"):
        lines += [
            "",
            "User tables: " + "; ".join(f"{_md(k)} = {_code(v)}" for k, v in res.info["tables"].items()) + ".",
        ]
    dims = [g for g in fw.children(fw.root.code) if not hasattr(g, "column")]
    mc = "rank_p05" in t.columns
    lines += ["", f"## Ranking (top {min(n_top, len(t))})", ""]
    head = ["Rank", "Cluster", "Economies", "Index"] + [_md(d.label) for d in dims]
    if mc:
        head += ["Median rank", "5–95 % rank interval"]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---:", "---", "---"] + ["---:"] * (len(head) - 3)) + "|"]
    for cid, r in t.head(n_top).iterrows():
        cells = [
            str(int(r["index_rank"])),
            _md(r.get("name", cid)),
            _md(r.get("economies", "")),
            _fmt(r["index_score"]),
        ] + [_fmt(r[f"{d.code}_score"]) for d in dims]
        if mc:
            cells += [str(int(r["rank_median"])), f"{int(r['rank_p05'])}–{int(r['rank_p95'])}"]
        lines.append("| " + " | ".join(cells) + " |")
    if res.sensitivity is not None:
        u = res.uncertainty
        lines += [
            "",
            "## Uncertainty and sensitivity",
            "",
            f"{res.mc['replicates']:,} Monte Carlo replicates (seed {u.seed}); uncertain inputs: "
            f"weights ± {u.weights:g} (relative)"
            + (f", normalisation among {', '.join(u.normalisation)}" if u.normalisation else "")
            + (f", aggregation among {', '.join(u.aggregation)}" if u.aggregation else "")
            + (", one indicator left out (or none), equally likely" if "leave_one_out" in res.mc["factors"] else "")
            + f". Mean absolute rank shift from the nominal ranking: {res.mc['mean_abs_shift']:.2f}.",
            "",
        ]
        if len(res.sensitivity):
            conv = res.mc.get("convergence", [])
            widest = conv[-1]["widest_interval"] if conv else float("nan")
            lines += [
                "First-order (S1) and total-order (ST) Sobol' sensitivity indices of the mean absolute rank "
                "shift (SALib's estimators, Saltelli 2010 and Jansen), each with its 95 % bootstrap interval, "
                "and the rank-variance-weighted mean of the units' own S1. An index lies in [0, 1]: an estimate "
                "outside it is sampling error, shown clipped (\\*) beside the raw estimate and its interval.",
                "",
                f"Convergence: N = {res.mc.get('samples', 0):,} samples "
                + ("(" + " → ".join(f"{c['samples']:,}: {c['widest_interval']:.3f}" for c in conv) + ", widest "
                   "interval at each doubling)" if conv else "")
                + ("; every interval is within the tolerance "
                   if res.mc.get("converged") else "; NOT converged: the widest interval is still above the "
                   "tolerance ")
                + f"{u.tolerance:g} (`[uncertainty] tolerance`; widest {_fmt(widest, '.3f')}, at most "
                f"{u.max_samples:,} samples).",
                "",
                "| Factor | S1 | S1 95 % interval | ST | ST 95 % interval | Units' S1 |",
                "|---|---:|---|---:|---|---:|",
            ]

            def shown(r, key):
                raw, clipped = r[key], r[f"{key}_clipped"]
                if np.isfinite(raw) and raw != clipped:
                    return f"{_fmt(clipped, '.3f')}\\* (raw {_fmt(raw, '.3f')})"
                return _fmt(raw, ".3f")

            for _, r in res.sensitivity.iterrows():
                lines.append(
                    f"| {_md(r['factor'])} | {shown(r, 'first_order')} | {_fmt(r['first_order_low'], '.3f')} – "
                    f"{_fmt(r['first_order_high'], '.3f')} | {shown(r, 'total_order')} | "
                    f"{_fmt(r['total_order_low'], '.3f')} – {_fmt(r['total_order_high'], '.3f')} | "
                    f"{_fmt(r['mean_unit_first_order'], '.3f')} |"
                )
        else:
            lines.append("No uncertain input: every interval is the nominal rank.")
    if res.leave_one_out is not None:
        lines += [
            "",
            "## Leave one indicator out",
            "",
            "| Indicator | Mean rank shift | Largest | Units moved |",
            "|---|---:|---:|---:|",
        ]
        for _, r in res.leave_one_out.sort_values("mean_abs_rank_shift", ascending=False, kind="stable").iterrows():
            lines.append(
                f"| {_code(r['indicator'])} | {r['mean_abs_rank_shift']:.2f} | {r['max_abs_rank_shift']} | "
                f"{r['units_moved']} |"
            )
    lines += [
        "",
        "## Correlation audit",
        "",
        "Pearson r of each indicator with its group and the index "
        "(`correlations.png`); flags mark indicators that carry little weight in practice or duplicate "
        "their group.",
        "",
        "| Code | Parent | r (parent) | r (index) | Flag |",
        "|---|---|---:|---:|---|",
    ]
    for _, r in res.corr_table.iterrows():
        lines.append(
            f"| {_code(r['code'])} | {_code(r['parent'])} | {_fmt(r['r_parent'])} | {_fmt(r['r_index'])} | "
            f"{_md(r['flag'])} |"
        )
    tr = res.treatment
    lines += [
        "",
        "## Data treatment",
        "",
        f"Missing values: `{fw.missing}` by default; outliers winsorised when "
        f"|skew| > {fw.skew:g} and kurtosis > {fw.kurtosis:g} (up to {fw.max_winsorised} points, then "
        f"`{fw.fallback}`).",
        "",
        "| Indicator | Missing | Rule | Skew | Kurtosis | Treatment | Points | Skew after | Kurtosis after |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for _, r in tr.iterrows():
        lines.append(
            f"| {_code(r['indicator'])} | {r['n_missing']} | {r['missing_rule']} | {_fmt(r['skew'])} | "
            f"{_fmt(r['kurtosis'])} | {r['treatment']} | {r['winsorised_high'] + r['winsorised_low']} | "
            f"{_fmt(r['skew_after'])} | {_fmt(r['kurtosis_after'])} |"
        )
    return "\n".join(lines) + "\n"


def draw_correlations(matrix: pd.DataFrame, path: Path, title: str) -> None:
    """Heat map of indicators (rows) × groups (columns), r annotated.

    Parameters
    ----------
    matrix : DataFrame
        Correlations (indicators x levels).
    path : pathlib.Path
        The PNG file to write.
    title : str
        The figure's title.

    Returns
    -------
    None
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.2 + 0.9 * matrix.shape[1], 1.2 + 0.32 * matrix.shape[0]), dpi=110)
    ax = fig.add_subplot()
    im = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize=8)
    for (i, j), v in np.ndenumerate(matrix.to_numpy(dtype=float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson r")
    ax.set_title(title.replace("$", "\\$"), fontsize=9)
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")


def draw_uncertainty(table: pd.DataFrame, path: Path, title: str, n: int = 30) -> None:
    """Nominal rank (dot), median (tick) and 5-95 % interval (bar) of the top ``n`` units.

    Parameters
    ----------
    table : DataFrame
        Per unit the nominal rank and the Monte Carlo rank quantiles.
    path : pathlib.Path
        The PNG file to write.
    title : str
        The figure's title.
    n : int
        Units shown.

    Returns
    -------
    None
    """
    from matplotlib.figure import Figure

    t = table.head(n)
    fig = Figure(figsize=(7, 1 + 0.22 * len(t)), dpi=110)
    ax = fig.add_subplot()
    y = np.arange(len(t))
    if "rank_p05" in t.columns:
        ax.hlines(y, t["rank_p05"], t["rank_p95"], color="#7a9cc6", lw=3, label="5–95 % interval")
        ax.plot(t["rank_median"], y, "|", color="#1f3b63", ms=10, label="median")
    ax.plot(t["index_rank"], y, "o", color="#c0392b", ms=4, label="nominal")
    names = [str(v).replace("$", "\\$") for v in (t["name"] if "name" in t.columns else t.index)]
    ax.set_yticks(y, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("rank")
    ax.legend(fontsize=7, loc="upper right")  # the top ranks sit left: the corner is empty
    ax.set_title(title.replace("$", "\\$"), fontsize=9)
    fig.savefig(path, metadata={"Software": None}, bbox_inches="tight")


def _labelled(df: pd.DataFrame, synthetic: bool) -> pd.DataFrame:
    """``df`` with a first column ``synthetic`` (True on every row) when the index is synthetic."""
    if not synthetic:
        return df
    return pd.concat([pd.DataFrame({"synthetic": np.ones(len(df), dtype=bool)}, index=df.index),
                      df.drop(columns=["synthetic"], errors="ignore")], axis=1)


def _versions() -> dict:
    import geopandas
    import matplotlib
    import scipy

    from cluster._version import __version__

    return {
        "innovation-clusters": __version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "geopandas": geopandas.__version__,
        "matplotlib": matplotlib.__version__,
    }


def write_index(res, out_dir: str | Path) -> Path:
    """Write every output of ``res`` (an :class:`~cluster.composite.index.IndexResult`) into ``out_dir``.

    Parameters
    ----------
    res : IndexResult
    out_dir : str or Path
        Created, or replaced atomically if it holds a previous ``index.json``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    import geopandas as gpd
    import pyogrio

    from cluster._atomic import atomic_output_dir, file_sha256
    from cluster.outputs._text import write_csv
    from cluster.outputs.gpkg import GPKG_VERSION

    out_dir = Path(out_dir)
    read = [p for p in [res.info.get("run"), *res.info.get("tables", {}).values()]
            if p and p != "<memory>" and "://" not in str(p)]
    with atomic_output_dir(out_dir, command="index", inputs=read, walked=False) as tmp:
        fw = res.framework
        synthetic = bool(res.info.get("synthetic"))
        notice = res.info.get("notice") if synthetic else None
        head = f"{notice}\n" if notice else ""
        table = _labelled(_rounded(res.table.reset_index()), synthetic)
        write_csv(table, tmp / "index.csv")
        corr = _labelled(_rounded(res.corr_table), synthetic)
        write_csv(corr, tmp / "correlations.csv")
        treatment = _labelled(_rounded(res.treatment), synthetic)
        write_csv(treatment, tmp / "treatment.csv")
        (tmp / "index.md").write_text(index_markdown(res), "utf-8")
        draw_correlations(
            res.corr_matrix, tmp / "correlations.png", f"{head}{fw.name}: correlation of indicators with groups"
        )
        geom = res.units["geometry"].reindex(res.table.index).to_numpy()
        layer = gpd.GeoDataFrame(table, geometry=list(geom), crs=4326)
        layer.to_file(
            tmp / "index.gpkg",
            layer="index",
            driver="GPKG",
            engine="pyogrio",
            layer_metadata={"DESCRIPTION": (f"{notice} " if notice else "")
                            + f"Composite index {fw.name} (innovation-clusters)"},
            VERSION=GPKG_VERSION,
        )
        extra = {"correlations": corr, "treatment": treatment}
        if res.sensitivity is not None:
            sens = _labelled(_rounded(res.sensitivity), synthetic)
            write_csv(sens, tmp / "sensitivity.csv")
            extra["sensitivity"] = sens
            draw_uncertainty(res.table, tmp / "uncertainty.png", f"{head}{fw.name}: rank uncertainty (top 30)")
        if res.leave_one_out is not None:
            loo = _labelled(_rounded(res.leave_one_out), synthetic)
            write_csv(loo, tmp / "leave_one_out.csv")
            extra["leave_one_out"] = loo
        for name, df in extra.items():
            pyogrio.write_dataframe(df, tmp / "index.gpkg", layer=name, driver="GPKG", append=False,
                                    VERSION=GPKG_VERSION)
        inputs = {}
        for label, p in [("framework", fw.source), *res.info.get("tables", {}).items()]:
            if Path(p).is_file():
                inputs[label] = {"path": str(p), "sha256": file_sha256(p)}
        run = res.info.get("run", "")
        if run and Path(run, "ranking.csv").is_file():
            inputs["ranking"] = {"path": str(Path(run, "ranking.csv")), "sha256": file_sha256(Path(run, "ranking.csv"))}
        u = res.uncertainty
        info = {
            "synthetic": synthetic,
            "notice": notice,
            "synthetic_tables": list(res.info.get("synthetic_tables", [])),
            "tool": "innovation-clusters composite index",
            "framework": fw.name,
            "source": fw.source,
            "units": len(res.table),
            "top_n": fw.top_n,
            "indicators": [i.code for i in fw.indicators],
            "dropped": res.dropped,
            "inputs": inputs,
            "uncertainty": None
            if u is None
            else {
                "samples": u.samples,
                "seed": u.seed,
                "weights": u.weights,
                "normalisation": list(u.normalisation),
                "aggregation": list(u.aggregation),
                "leave_one_out": u.leave_one_out,
                "factors": res.mc.get("factors", []),
                "replicates": res.mc.get("replicates", 0),
                "samples_used": res.mc.get("samples", 0),
                "tolerance": u.tolerance,
                "max_samples": u.max_samples,
                "converged": res.mc.get("converged"),
                "convergence": res.mc.get("convergence", []),
                "estimator": "SALib.analyze.sobol (Saltelli 2010 S1, Jansen ST), 95 % bootstrap intervals",
            },
            "sensitivity": None if res.sensitivity is None else _rounded(res.sensitivity).to_dict("records"),
            "versions": _versions(),
        }
        (tmp / "index.json").write_text(json.dumps(info, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    log.info("wrote %s (%s)", out_dir, ", ".join(p.name for p in sorted(out_dir.iterdir())))
    return out_dir

