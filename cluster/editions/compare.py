"""Compare two editions: what moved since last time.

:func:`compare_editions` matches the clusters (:mod:`cluster.editions.matching`) and
builds ``compare.csv``: one row per linked pair of clusters, and one per cluster left
alone (``new`` or ``gone``), with

* ``group``, ``status`` (continuing, new, gone, split, merged, regrouped);
* each side's ``cluster_id``, ``name``, ``economies``, ``rank``, ``tier``, ``score``,
  ``share_<metric>``, ``intensity_score`` and ``intensity_rank`` (``old_``/``new_``);
* ``rank_change`` = old rank - new rank (positive: the cluster rose), ``score_change``
  and ``share_<metric>_change`` in percentage points of the world total,
  ``score_growth`` = new score / old score - 1, ``intensity_change``;
* ``old_in_new``, ``new_in_old`` and ``iou`` (the overlap that matched them).

``compare.md`` lists, GII-style: newcomers to the top tier (top-tier clusters none of
whose matched old clusters was in the old top tier), drop-outs (the reverse), the ten
biggest risers and fallers by rank among continuing clusters in the new (risers) or old
(fallers) top tier, and the ten fastest growing by score (sum of world shares) among
continuing clusters of the new top tier. ``compare.png`` maps the movers.

Two editions are comparable when they used the same metrics (those with records) and the
same radius ``eps_km``; otherwise :func:`check_comparable` refuses (``force`` overrides).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cluster.editions._edition import Edition
from cluster.editions.matching import MIN_OVERLAP, Matching, match_editions
from cluster.errors import UserInputError

log = logging.getLogger(__name__)

COMPARE_FILES = ("compare.csv", "compare.md", "compare.png", "run.json")
TOP_K = 10


def check_comparable(old: Edition, new: Edition, *, force: bool = False) -> list[str]:
    """Refuse editions that used different metrics or radii.

    Returns
    -------
    list of str
        The differences (empty when comparable); with ``force`` they are returned as
        warnings instead of raised.

    Raises
    ------
    UserInputError
        Naming both values, unless ``force``.

    Parameters
    ----------
    old : Edition
        The earlier edition.
    new : Edition
        The later edition.
    force : bool, default False
        Compare anyway, noting the differences instead of refusing.
    """
    problems = []
    if sorted(old.metrics) != sorted(new.metrics):
        problems.append(f"the metrics differ: {', '.join(old.metrics) or 'none'} in {old.label}, "
                        f"{', '.join(new.metrics) or 'none'} in {new.label}")
    if not np.isclose(old.eps_km, new.eps_km):
        problems.append(f"the radius differs: eps_km {old.eps_km:g} in {old.label}, {new.eps_km:g} in {new.label}")
    if problems and not force:
        message = ("The two editions are not comparable: " + "; ".join(problems) + ". Re-run one of them "
                   "with the other's configuration (run.json has it), or pass {force} to compare anyway.")
        raise UserInputError(message)
    for p in problems:
        log.warning("comparing anyway: %s", p)
    return problems


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_editions` returns.

    Attributes
    ----------
    table : DataFrame
        ``compare.csv`` (see the module documentation).
    matching : Matching
        The matching it was built from.
    old, new : Edition
    metrics : list of str
        Metrics compared.
    warnings : list of str
        Differences accepted with ``force``.
    """

    table: pd.DataFrame
    matching: Matching
    old: Edition
    new: Edition
    metrics: list
    warnings: list

    def newcomers(self) -> pd.DataFrame:
        """New top-tier clusters none of whose matched old clusters was in the old top tier."""
        return self._top_only_in("new", "old")

    def dropouts(self) -> pd.DataFrame:
        """Old top-tier clusters none of whose matched new clusters is in the new top tier."""
        return self._top_only_in("old", "new")

    def _top_only_in(self, side: str, other: str) -> pd.DataFrame:
        """Top-tier clusters of edition ``side`` none of whose matched clusters of ``other``
        is in that edition's top tier, in ``side``'s rank order."""
        t = self.table
        top = t[t[f"{side}_tier"] == "top"]
        other_top = top.groupby(f"{side}_id")[f"{other}_tier"].apply(lambda s: (s == "top").any())
        # A cluster in several pairs is shown by its continuing pair, if any.
        keep = top.sort_values("status", key=lambda s: s.ne("continuing"), kind="mergesort")
        keep = keep.drop_duplicates(f"{side}_id").set_index(f"{side}_id")
        keep = keep[~other_top.reindex(keep.index).to_numpy(dtype=bool)]
        return keep.reset_index().sort_values(f"{side}_rank", kind="mergesort")

    def risers(self, k: int = TOP_K) -> pd.DataFrame:
        """Continuing clusters of the new top tier that rose most (ties by new rank)."""
        t = self.table
        c = t[(t["status"] == "continuing") & (t["new_tier"] == "top") & (t["rank_change"] > 0)]
        return c.sort_values(["rank_change", "new_rank"], ascending=[False, True], kind="mergesort").head(k)

    def fallers(self, k: int = TOP_K) -> pd.DataFrame:
        """Continuing clusters of the old top tier that fell most (ties by old rank)."""
        t = self.table
        c = t[(t["status"] == "continuing") & (t["old_tier"] == "top") & (t["rank_change"] < 0)]
        return c.sort_values(["rank_change", "old_rank"], ascending=[True, True], kind="mergesort").head(k)

    def fastest_growing(self, k: int = TOP_K) -> pd.DataFrame:
        """Continuing clusters of the new top tier with the largest relative score growth."""
        t = self.table
        c = t[(t["status"] == "continuing") & (t["new_tier"] == "top") & t["score_growth"].notna()]
        return c.sort_values(["score_growth", "new_rank"], ascending=[False, True], kind="mergesort").head(k)


def _side(edition: Edition, metrics: list, prefix: str) -> pd.DataFrame:
    c = edition.clusters
    cols = {"cluster_id": "id", "name": "name", "economies": "economies", "rank": "rank", "tier": "tier",
            "score": "score", **{f"share_{m}": f"share_{m}" for m in metrics},
            "intensity_score": "intensity_score", "intensity_rank": "intensity_rank"}
    df = pd.DataFrame({f"{prefix}_{v}": (c[k].to_numpy() if k in c.columns else np.nan) for k, v in cols.items()})
    df[f"{prefix}_id"] = df[f"{prefix}_id"].astype(str)
    return df


def compare_editions(old: Edition, new: Edition, *, min_overlap: float = MIN_OVERLAP,
                     force: bool = False) -> Comparison:
    """Match two editions and tabulate what moved.

    Parameters
    ----------
    old, new : Edition
        The earlier and the later edition (:func:`~cluster.editions.load_edition`).
    min_overlap : float, default 0.1
        Link threshold of the matching (fraction; see :mod:`cluster.editions.matching`).
    force : bool, default False
        Compare editions with different metrics or radii anyway.

    Returns
    -------
    Comparison

    Raises
    ------
    UserInputError
        When the editions used different metrics or radii and ``force`` is not set.
    """
    warnings = check_comparable(old, new, force=force)
    metrics = [m for m in new.metrics if m in old.metrics]
    matching = match_editions(old, new, min_overlap=min_overlap)
    linked = matching.pairs[matching.pairs["linked"]]
    status = matching.clusters
    group_of = {(e, c): g for e, c, g in zip(status["edition"], status["cluster_id"], status["group"])}
    status_of = {(e, c): s for e, c, s in zip(status["edition"], status["cluster_id"], status["status"])}
    rows = linked[["old_id", "new_id", "old_in_new", "new_in_old", "iou", "status"]].copy()
    lonely_old = sorted(set(status.loc[(status["edition"] == "old") & (status["status"] == "gone"), "cluster_id"]))
    lonely_new = sorted(set(status.loc[(status["edition"] == "new") & (status["status"] == "new"), "cluster_id"]))
    rows = pd.concat([rows, pd.DataFrame({"old_id": lonely_old, "new_id": None}),
                      pd.DataFrame({"old_id": None, "new_id": lonely_new})], ignore_index=True)
    rows["group"] = [group_of[("new", n)] if isinstance(n, str) else group_of[("old", o)]
                     for o, n in zip(rows["old_id"], rows["new_id"])]
    alone = rows["status"].isna().to_numpy()
    rows.loc[alone, "status"] = [status_of[("new", n)] if isinstance(n, str) else status_of[("old", o)]
                                 for o, n in zip(rows["old_id"][alone], rows["new_id"][alone])]
    table = rows.merge(_side(old, metrics, "old"), on="old_id", how="left")
    table = table.merge(_side(new, metrics, "new"), on="new_id", how="left")
    table["rank_change"] = (table["old_rank"] - table["new_rank"]).astype("Int64")
    table["score_change"] = table["new_score"] - table["old_score"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["score_growth"] = np.where(table["old_score"] > 0, table["new_score"] / table["old_score"] - 1.0, np.nan)
    for m in metrics:
        table[f"share_{m}_change"] = table[f"new_share_{m}"] - table[f"old_share_{m}"]
    table["intensity_change"] = table["new_intensity_score"] - table["old_intensity_score"]
    for col in ("old_rank", "new_rank", "old_intensity_rank", "new_intensity_rank"):
        table[col] = table[col].astype("Int64")
    table = table.sort_values(["group", "new_rank", "old_rank"], kind="mergesort", na_position="last")
    front = ["group", "status", "old_id", "old_name", "old_economies", "old_rank", "old_tier",
             "new_id", "new_name", "new_economies", "new_rank", "new_tier", "rank_change",
             "old_score", "new_score", "score_change", "score_growth"]
    shares = [c for m in metrics for c in (f"old_share_{m}", f"new_share_{m}", f"share_{m}_change")]
    back = ["old_intensity_score", "new_intensity_score", "intensity_change", "old_intensity_rank",
            "new_intensity_rank", "old_in_new", "new_in_old", "iou"]
    table = table[front + shares + back].reset_index(drop=True)
    return Comparison(table=table, matching=matching, old=old, new=new, metrics=metrics, warnings=warnings)


def compare_csv_table(comparison: Comparison) -> pd.DataFrame:
    """``compare.csv``: the table rounded so that bytes do not depend on float noise.

    Parameters
    ----------
    comparison : Comparison
        Two editions matched (:func:`cluster.editions.compare_editions`).

    Returns
    -------
    DataFrame
        The rounded table.
    """
    t = comparison.table.copy()
    for c in t.columns:
        if c.endswith(("_score", "_change", "_growth")) or "share_" in c or c in ("old_in_new", "new_in_old", "iou"):
            if c != "rank_change" and pd.api.types.is_float_dtype(t[c]):
                t[c] = t[c].round(6)
    return t


def _md(text) -> str:
    from cluster.outputs._text import md_escape

    return "" if text is None or (isinstance(text, float) and np.isnan(text)) else md_escape(text)


def _fmt(v, spec: str) -> str:
    return "" if v is None or pd.isna(v) else format(v, spec)


def compare_markdown(comparison: Comparison, *, notice: str | None = None) -> str:
    """``compare.md``: counts by status, newcomers, drop-outs, risers, fallers, growth.

    Parameters
    ----------
    comparison : Comparison
        Two editions matched (:func:`cluster.editions.compare_editions`).
    notice : str, optional
        A line set above the content (e.g. the synthetic-data notice).

    Returns
    -------
    str
        Markdown.
    """
    c = comparison
    lines = ["# What moved: " + _md(c.old.label) + " → " + _md(c.new.label), ""]
    if notice:
        lines += [f"> **{notice}**", ""]
    counts = status_counts(c.matching)
    n_old, n_new = len(c.old.clusters), len(c.new.clusters)
    lines += [f"{n_old:,} clusters before, {n_new:,} now (top tiers of {c.old.top_n} and {c.new.top_n}); "
              f"metrics {', '.join(_md(m) for m in c.metrics)}. Clusters now: "
              + ", ".join(f"{counts['new'].get(s, 0):,} {s}" for s in ("continuing", "new", "split", "merged",
                                                                      "regrouped"))
              + "; before: " + ", ".join(f"{counts['old'].get(s, 0):,} {s}" for s in ("continuing", "gone", "split",
                                                                                    "merged", "regrouped")) + ".",
              "",
              f"Clusters are matched by overlap ({c.matching.method}: two clusters are linked when each holds "
              f"at least {100 * c.matching.min_overlap:g} % of the other's "
              f"{'activity' if c.matching.method == 'sites' else 'area'}); rank change = old rank − new rank. "
              "Every pair is in `compare.csv`.", ""]
    for w in c.warnings:
        lines += [f"> Compared anyway: {_md(w)}.", ""]

    def table(title, df, head, cells, note=""):
        out = ["", f"## {title} ({len(df)})", ""]
        if note:
            out += [note, ""]
        if df.empty:
            return out + ["None."]
        out += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(cells(r)) + " |" for _, r in df.iterrows()]
        return out

    share = "Score (sum of world shares, %)"
    lines += table("Newcomers to the top tier", c.newcomers(),
                   ["New rank", "Cluster", "Economies", "Status", "Old rank", share],
                   lambda r: [str(r["new_rank"]), _md(r["new_name"]), _md(r["new_economies"]), r["status"],
                              _fmt(r["old_rank"], "d") or "–", _fmt(r["new_score"], ".3f")])
    lines += table("Drop-outs from the top tier", c.dropouts(),
                   ["Old rank", "Cluster", "Economies", "Status", "New rank", "Old score"],
                   lambda r: [str(r["old_rank"]), _md(r["old_name"]), _md(r["old_economies"]), r["status"],
                              _fmt(r["new_rank"], "d") or "–", _fmt(r["old_score"], ".3f")])
    lines += table("Ten biggest risers", c.risers(),
                   ["Cluster", "Economies", "Old rank", "New rank", "Change", "Score change"],
                   lambda r: [_md(r["new_name"]), _md(r["new_economies"]), str(r["old_rank"]), str(r["new_rank"]),
                              f"+{r['rank_change']}", _fmt(r["score_change"], "+.3f")],
                   "Continuing clusters of the new top tier.")
    lines += table("Ten biggest fallers", c.fallers(),
                   ["Cluster", "Economies", "Old rank", "New rank", "Change", "Score change"],
                   lambda r: [_md(r["new_name"]), _md(r["new_economies"]), str(r["old_rank"]), str(r["new_rank"]),
                              str(r["rank_change"]), _fmt(r["score_change"], "+.3f")],
                   "Continuing clusters of the old top tier.")
    lines += table("Ten fastest growing by share", c.fastest_growing(),
                   ["Cluster", "Economies", "New rank", "Old score", "New score", "Growth"],
                   lambda r: [_md(r["new_name"]), _md(r["new_economies"]), str(r["new_rank"]),
                              _fmt(r["old_score"], ".3f"), _fmt(r["new_score"], ".3f"),
                              _fmt(100 * r["score_growth"], "+.0f") + " %"],
                   "Continuing clusters of the new top tier, by relative growth of the score.")
    return "\n".join(lines) + "\n"


def status_counts(matching: Matching) -> dict:
    """``{"old": {status: n}, "new": {status: n}}``: clusters of each edition by status.

    Parameters
    ----------
    matching : Matching
        The matching of two editions (:func:`cluster.editions.match_editions`).

    Returns
    -------
    dict
        Counts per edition and status.
    """
    c = matching.clusters
    return {e: {s: int(n) for s, n in c[c["edition"] == e]["status"].value_counts().items()} for e in ("old", "new")}


def compare_info(comparison: Comparison) -> dict:
    """``run.json`` of a comparison: the editions, the rule, counts by status.

    Parameters
    ----------
    comparison : Comparison
        Two editions matched (:func:`cluster.editions.compare_editions`).

    Returns
    -------
    dict
        JSON-able data.
    """
    c = comparison
    cont = c.matching.pairs[c.matching.pairs["linked"]]
    return {
        "tool": "innovation-clusters", "command": "compare",
        "old": {"label": c.old.label, "clusters": len(c.old.clusters), "eps_km": c.old.eps_km,
                "metrics": c.old.metrics, "inputs": c.old.info.get("inputs", [])},
        "new": {"label": c.new.label, "clusters": len(c.new.clusters), "eps_km": c.new.eps_km,
                "metrics": c.new.metrics, "inputs": c.new.info.get("inputs", [])},
        "matching": {"method": c.matching.method, "min_overlap": c.matching.min_overlap,
                     "linked_pairs": int(len(cont))},
        "clusters_by_status": status_counts(c.matching),
        "newcomers_to_top": int(len(c.newcomers())), "dropouts_from_top": int(len(c.dropouts())),
        "warnings": list(c.warnings),
        "synthetic": bool(c.old.info.get("synthetic") or c.new.info.get("synthetic")),
    }


def write_comparison(comparison: Comparison, out_dir: str | Path) -> Path:
    """Write ``compare.csv``, ``compare.md``, ``compare.png`` and ``run.json`` into
    ``out_dir``, atomically (as ``cluster run`` writes its outputs).

    Parameters
    ----------
    comparison : Comparison
        Two editions matched (:func:`cluster.editions.compare_editions`).
    out_dir : path-like
        The output directory.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    from cluster.editions.movers import draw_movers
    from cluster.outputs._atomic import atomic_output_dir
    from cluster.outputs._text import write_csv
    from cluster.outputs.files import write_json

    out_dir = Path(out_dir)
    notice = comparison.new.info.get("notice") or comparison.old.info.get("notice")
    with atomic_output_dir(out_dir) as tmp:
        write_csv(compare_csv_table(comparison), tmp / "compare.csv")
        (tmp / "compare.md").write_text(compare_markdown(comparison, notice=notice), "utf-8")
        draw_movers(comparison, tmp / "compare.png", notice=notice)
        write_json(tmp / "run.json", compare_info(comparison))
    log.info("wrote %s", ", ".join(str(out_dir / f) for f in COMPARE_FILES))
    return out_dir
