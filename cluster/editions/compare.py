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
* ``old_in_new``, ``new_in_old`` and ``iou`` (the overlap that matched them);
* ``group_status``: the class of the row's group, and the group as a whole:
  ``group_old_score`` and ``group_new_score`` (sums over its distinct old and new
  clusters), ``group_old_same_footprint`` and ``group_new_same_footprint`` (sums over
  its footprints: its new clusters', or a gone cluster's) and
  ``group_growth_same_footprint``;
* **growth on the same footprint.** A cluster's score can change because its boundary
  moved (a piece split off, a neighbour merged in) as much as because its activity grew.
  ``footprint`` says which polygon a row is measured on: the new cluster's (``new``, every
  row with a new cluster) or, for a gone cluster, the old one's (``old``).
  ``old_same_footprint`` and ``new_same_footprint`` are each edition's activity inside
  that polygon, in the score's unit (percent of the world total, metrics weighted as in
  the score): the new cluster's own score and the old edition's activity at every site of
  its ``sites`` layer inside the new polygon, or the old cluster's score and the new
  activity inside the old polygon. ``growth_same_footprint`` = new / old - 1 (empty when
  there was nothing before). The older run should keep its sites outside clusters
  (``[outputs] sites_outside = true``, as ``data/real/patentsview.toml`` does): else only
  its clustered sites are counted, and ``run.json`` says so (``footprint_sites``);
* ``boundary_change``: true when the rank and score changes of a pair come (also) from a
  change of boundary: its group is not one continuing pair (a piece split off or merged
  in, :mod:`~cluster.editions.matching`), or the old cluster's score and the
  old activity inside the new footprint differ by more than ``BOUNDARY_TOLERANCE`` (10 %)
  of the larger of the two.

``compare.md`` leads with the ten biggest risers and fallers by same-footprint growth
(clusters in either edition's top tier), then the split and merged groups (each group's
total change, and each part), then, GII-style: newcomers to the top tier (top-tier clusters none of
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
from cluster.editions.matching import MIN_CONTAINED, MIN_OVERLAP, Matching, match_editions
from cluster.errors import UserInputError

log = logging.getLogger(__name__)

COMPARE_FILES = ("compare.csv", "compare.md", "compare.png", "run.json")
TOP_K = 10
#: A pair's rank and score changes are labelled a boundary change when the old score and
#: the old activity inside the new footprint differ by more than this fraction.
BOUNDARY_TOLERANCE = 0.1


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

    def footprints(self) -> pd.DataFrame:
        """One row per footprint (a new cluster, or a gone old one) with its same-footprint
        growth: a new cluster's row is that of its main link (continuing, else split, merged)."""
        t = self.table
        key = np.where(t["footprint"] == "new", "new:" + t["new_id"].astype(str), "old:" + t["old_id"].astype(str))
        order = t["status"].map({"continuing": 0, "split": 1, "merged": 2, "regrouped": 3}).fillna(0)
        first = t.assign(_key=key, _order=order).sort_values(["_key", "_order"], kind="mergesort")
        return first.drop_duplicates("_key").drop(columns=["_key", "_order"]).sort_index()

    @property
    def growth_base(self) -> float:
        """The least activity before (score unit) for a footprint's growth to be ranked:
        the old edition's smallest cluster score. Less was no cluster: the cluster emerged
        there (it is listed among the newcomers), and a growth on such a base says nothing."""
        scores = self.old.clusters["score"] if "score" in self.old.clusters else pd.Series(dtype=float)
        return float(scores.min()) if len(scores) else 0.0

    def _growth_candidates(self) -> pd.DataFrame:
        """Footprints of the top tiers: new top-tier clusters, continuations of old top-tier
        clusters, gone old top-tier clusters; with at least :attr:`growth_base` before."""
        f = self.footprints()
        keep = ((f["new_tier"] == "top") | ((f["status"] == "continuing") & (f["old_tier"] == "top"))
                | ((f["footprint"] == "old") & (f["old_tier"] == "top")))
        return f[keep & f["growth_same_footprint"].notna() & (f["old_same_footprint"] >= self.growth_base)]

    def risers_same_footprint(self, k: int = TOP_K) -> pd.DataFrame:
        """Footprints of the top tiers (:meth:`footprints`) that grew most on the same
        footprint (ties by new rank, then old rank)."""
        c = self._growth_candidates()
        return c.sort_values(["growth_same_footprint", "new_rank", "old_rank"], ascending=[False, True, True],
                             kind="mergesort", na_position="last").head(k)

    def fallers_same_footprint(self, k: int = TOP_K) -> pd.DataFrame:
        """Footprints of the top tiers that shrank most on the same footprint (ties by old
        rank, then new rank)."""
        c = self._growth_candidates()
        return c.sort_values(["growth_same_footprint", "old_rank", "new_rank"], ascending=[True, True, True],
                             kind="mergesort", na_position="last").head(k)

    def groups(self) -> pd.DataFrame:
        """Split, merged and regrouped groups as wholes: ``group``, ``group_status``, the old
        and new clusters (names in rank order), ``old_score`` and ``new_score`` (sums over
        the group's clusters), ``score_change``, ``old_same_footprint`` (old activity inside
        the new clusters' footprints) and ``growth_same_footprint``; in group order."""
        t = self.table
        t = t[t["group_status"].isin(["split", "merged", "regrouped"])]
        rows = []
        for g, part in t.groupby("group", sort=True):
            olds = part.dropna(subset=["old_id"]).drop_duplicates("old_id").sort_values("old_rank")
            news = part.dropna(subset=["new_id"]).drop_duplicates("new_id").sort_values("new_rank")
            first = part.iloc[0]
            rows.append({"group": g, "group_status": first["group_status"],
                         "old_clusters": list(olds["old_name"]), "new_clusters": list(news["new_name"]),
                         "old_top": bool((olds["old_tier"] == "top").any()),
                         "new_top": bool((news["new_tier"] == "top").any()),
                         "old_score": first["group_old_score"], "new_score": first["group_new_score"],
                         "score_change": first["group_new_score"] - first["group_old_score"],
                         "old_same_footprint": first["group_old_same_footprint"],
                         "new_same_footprint": first["group_new_same_footprint"],
                         "growth_same_footprint": first["group_growth_same_footprint"]})
        cols = ["group", "group_status", "old_clusters", "new_clusters", "old_top", "new_top", "old_score",
                "new_score", "score_change", "old_same_footprint", "new_same_footprint", "growth_same_footprint"]
        return pd.DataFrame(rows, columns=cols)

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


def activity_inside(sites_of: Edition, polygons) -> np.ndarray:
    """Activity of ``sites_of`` (every site of its ``sites`` layer, clustered or not, in
    the score's unit: :meth:`Edition.site_activity`) inside each polygon.

    Parameters
    ----------
    sites_of : Edition
        The edition whose activity is measured.
    polygons : GeoSeries
        Footprints (EPSG:4326).

    Returns
    -------
    numpy.ndarray
        One sum per polygon; NaN when the edition has no sites layer.
    """
    import shapely

    if sites_of.sites is None:
        return np.full(len(polygons), np.nan)
    act = sites_of.site_activity()
    points = shapely.points(sites_of.sites["lon"].to_numpy(), sites_of.sites["lat"].to_numpy())
    tree = shapely.STRtree(np.asarray(polygons.values))
    pt, poly = tree.query(points, predicate="intersects")
    return np.bincount(poly, weights=act[pt], minlength=len(polygons))


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
    rows = linked[["old_id", "new_id", "old_in_new", "new_in_old", "iou", "status", "group_status"]].copy()
    lonely_old = sorted(set(status.loc[(status["edition"] == "old") & (status["status"] == "gone"), "cluster_id"]))
    lonely_new = sorted(set(status.loc[(status["edition"] == "new") & (status["status"] == "new"), "cluster_id"]))
    rows = pd.concat([rows, pd.DataFrame({"old_id": lonely_old, "new_id": None}),
                      pd.DataFrame({"old_id": None, "new_id": lonely_new})], ignore_index=True)
    rows["group"] = [group_of[("new", n)] if isinstance(n, str) else group_of[("old", o)]
                     for o, n in zip(rows["old_id"], rows["new_id"])]
    rows["group_status"] = rows["group_status"].where(rows["status"].notna(),
                                                      np.where(rows["new_id"].notna(), "new", "gone"))
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
    _same_footprint(table, old, new)
    for col in ("old_rank", "new_rank", "old_intensity_rank", "new_intensity_rank"):
        table[col] = table[col].astype("Int64")
    table = table.sort_values(["group", "new_rank", "old_rank"], kind="mergesort", na_position="last")
    front = ["group", "status", "group_status", "old_id", "old_name", "old_economies", "old_rank", "old_tier",
             "new_id", "new_name", "new_economies", "new_rank", "new_tier", "rank_change",
             "footprint", "old_same_footprint", "new_same_footprint", "growth_same_footprint", "boundary_change",
             "old_score", "new_score", "score_change", "score_growth"]
    shares = [c for m in metrics for c in (f"old_share_{m}", f"new_share_{m}", f"share_{m}_change")]
    back = ["group_old_score", "group_new_score", "group_old_same_footprint", "group_new_same_footprint",
            "group_growth_same_footprint",
            "old_intensity_score", "new_intensity_score", "intensity_change", "old_intensity_rank",
            "new_intensity_rank", "old_in_new", "new_in_old", "iou"]
    table = table[front + shares + back].reset_index(drop=True)
    return Comparison(table=table, matching=matching, old=old, new=new, metrics=metrics, warnings=warnings)


def _same_footprint(table: pd.DataFrame, old: Edition, new: Edition) -> None:
    """Add ``footprint``, ``old_same_footprint``, ``new_same_footprint``,
    ``growth_same_footprint`` and ``boundary_change`` to ``table`` (in place)."""
    old_in_new_fp = pd.Series(activity_inside(old, new.clusters.geometry),
                              index=new.clusters["cluster_id"].astype(str).to_numpy())
    new_in_old_fp = pd.Series(activity_inside(new, old.clusters.geometry),
                              index=old.clusters["cluster_id"].astype(str).to_numpy())
    has_new = table["new_id"].notna().to_numpy()
    table["footprint"] = np.where(has_new, "new", "old")
    table["old_same_footprint"] = np.where(has_new, table["new_id"].map(old_in_new_fp).to_numpy(dtype=float),
                                           table["old_score"].to_numpy(dtype=float))
    table["new_same_footprint"] = np.where(has_new, table["new_score"].to_numpy(dtype=float),
                                           table["old_id"].map(new_in_old_fp).to_numpy(dtype=float))
    o, n = table["old_same_footprint"].to_numpy(), table["new_same_footprint"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        table["growth_same_footprint"] = np.where(o > 0, n / o - 1.0, np.nan)
        both = table["old_id"].notna().to_numpy() & has_new
        old_score = table["old_score"].to_numpy(dtype=float)
        moved = np.abs(old_score - o) > BOUNDARY_TOLERANCE * np.maximum(old_score, o)
    table["boundary_change"] = both & ((table["group_status"] != "continuing").to_numpy() | moved)
    # The group as a whole: sums over its distinct old and new clusters, and over its
    # distinct footprints (its new clusters; a gone cluster's own).
    olds = table.dropna(subset=["old_id"]).drop_duplicates("old_id").groupby("group")["old_score"].sum()
    news = table.dropna(subset=["new_id"]).drop_duplicates("new_id").groupby("group")["new_score"].sum()
    fp = table.assign(_fp=np.where(has_new, "n" + table["new_id"].astype(str), "o" + table["old_id"].astype(str)))
    fp = fp.drop_duplicates("_fp").groupby("group")[["old_same_footprint", "new_same_footprint"]].sum()
    totals = pd.DataFrame({"group_old_score": olds, "group_new_score": news,
                           "group_old_same_footprint": fp["old_same_footprint"],
                           "group_new_same_footprint": fp["new_same_footprint"]}).fillna(0.0)
    o, n = totals["group_old_same_footprint"].to_numpy(), totals["group_new_same_footprint"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        totals["group_growth_same_footprint"] = np.where(o > 0, n / o - 1.0, np.nan)
    for col in totals.columns:
        table[col] = table["group"].map(totals[col]).to_numpy(dtype=float)


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
        if (c.endswith(("_score", "_change", "_growth", "_footprint")) or "share_" in c
                or c in ("old_in_new", "new_in_old", "iou")):
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
              "How clusters are matched, and ties decided: at the end. Every pair is in `compare.csv`.", ""]
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

    def growth_cells(r):
        on = _md(r["new_name"]) if r["footprint"] == "new" else _md(r["old_name"]) + " (gone)"
        link = r["status"] + (f" ({_md(r['old_name'])})" if r["footprint"] == "new" and isinstance(r["old_name"], str)
                              and r["old_name"] != r["new_name"] else "")
        return [on, _md(r["new_economies"] if r["footprint"] == "new" else r["old_economies"]),
                _fmt(r["old_rank"], "d") or "–", _fmt(r["new_rank"], "d") or "–", link,
                _fmt(r["old_same_footprint"], ".3f"), _fmt(r["new_same_footprint"], ".3f"),
                _fmt(100 * r["growth_same_footprint"], "+.0f") + " %"]

    growth_head = ["Cluster", "Economies", "Old cluster's rank", "New rank", "Status (old cluster)",
                   "Before, same footprint", "Now", "Growth, same footprint"]
    growth_note = ("Activity on the same ground: the new cluster's footprint (a gone cluster's: the old one's), "
                   "each edition's activity inside it in percent of its world total. Clusters of either "
                   f"edition's top tier with at least {c.growth_base:.3f} before (the smallest old cluster's score: "
                   "less is a cluster that emerged, listed under the newcomers); `compare.csv` has every cluster.")
    lines += table("Ten biggest risers by growth on the same footprint", c.risers_same_footprint(), growth_head,
                   growth_cells, growth_note)
    lines += table("Ten biggest fallers by growth on the same footprint", c.fallers_same_footprint(), growth_head,
                   growth_cells, growth_note)
    groups = c.groups()
    groups = groups[groups["old_top"] | groups["new_top"]]
    lines += ["", f"## Splits and merges in the top tiers ({len(groups)})", "",
              "A group is the old and new clusters linked to each other. Its total change is the sum of its new "
              "clusters' scores against the sum of its old clusters'; on the same footprint, against the old "
              "activity inside its new clusters. Then each part (a pair of the group).", ""]
    for _, g in groups.iterrows():
        lines += [f"**Group {g['group']} ({g['group_status']}): " + _md(", ".join(g["old_clusters"])) + " → "
                  + _md(", ".join(g["new_clusters"])) + f".** Score {g['old_score']:.3f} → {g['new_score']:.3f} "
                  f"({g['score_change']:+.3f}); on the same footprint {g['old_same_footprint']:.3f} → "
                  f"{g['new_same_footprint']:.3f} ({_fmt(100 * g['growth_same_footprint'], '+.0f') or 'n/a'} %).", "",
                  "| Part | Old cluster (rank) | New cluster (rank) | Old in new | New in old | "
                  "Before, same footprint | Now | Growth, same footprint |", "|---|---|---|---|---|---|---|---|"]
        part = c.table[c.table["group"] == g["group"]]
        for _, r in part.iterrows():
            lines.append("| " + " | ".join([
                r["status"], (_md(r["old_name"]) + f" ({_fmt(r['old_rank'], 'd')})") if pd.notna(r["old_id"]) else "–",
                (_md(r["new_name"]) + f" ({_fmt(r['new_rank'], 'd')})") if pd.notna(r["new_id"]) else "–",
                _fmt(100 * r["old_in_new"], ".0f") + " %" if pd.notna(r["old_in_new"]) else "",
                _fmt(100 * r["new_in_old"], ".0f") + " %" if pd.notna(r["new_in_old"]) else "",
                _fmt(r["old_same_footprint"], ".3f"), _fmt(r["new_same_footprint"], ".3f"),
                (_fmt(100 * r["growth_same_footprint"], "+.0f") + " %") if pd.notna(r["growth_same_footprint"])
                else ""]) + " |")
        lines.append("")

    def boundary(r) -> str:
        return " (boundary change)" if r["boundary_change"] else ""

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
                              f"+{r['rank_change']}{boundary(r)}", _fmt(r["score_change"], "+.3f")],
                   "Continuing clusters of the new top tier, by rank. \"(boundary change)\": the change comes "
                   "also from a piece split off or merged in, or a boundary that moved; see the growth on the "
                   "same footprint above.")
    lines += table("Ten biggest fallers", c.fallers(),
                   ["Cluster", "Economies", "Old rank", "New rank", "Change", "Score change"],
                   lambda r: [_md(r["new_name"]), _md(r["new_economies"]), str(r["old_rank"]), str(r["new_rank"]),
                              f"{r['rank_change']}{boundary(r)}", _fmt(r["score_change"], "+.3f")],
                   "Continuing clusters of the old top tier, by rank (boundary changes labelled).")
    lines += table("Ten fastest growing by share", c.fastest_growing(),
                   ["Cluster", "Economies", "New rank", "Old score", "New score", "Growth"],
                   lambda r: [_md(r["new_name"]) + boundary(r), _md(r["new_economies"]), str(r["new_rank"]),
                              _fmt(r["old_score"], ".3f"), _fmt(r["new_score"], ".3f"),
                              _fmt(100 * r["score_growth"], "+.0f") + " %"],
                   "Continuing clusters of the new top tier, by relative growth of the score (old cluster to "
                   "new cluster, whatever their boundaries; boundary changes labelled).")
    lines += ["", "## How clusters are matched", "", *_rule_lines(c)]
    return "\n".join(lines) + "\n"


def _rule_lines(c: Comparison) -> list[str]:
    """The matching rule, its ties and the footprint caveat, for ``compare.md``."""
    what = "activity" if c.matching.method == "sites" else "area"
    lines = [f"How clusters are matched ({c.matching.method}): an old and a new cluster are linked when each "
             f"holds at least {100 * c.matching.min_overlap:g} % of the other's {what}, or when either holds at "
             f"least {100 * MIN_CONTAINED:g} % of the other's (the smaller mostly inside the bigger: a piece split "
             "off or merged in). An old cluster's main successor is the linked new cluster holding the largest "
             "share of it; a new cluster's main predecessor the linked old cluster holding the largest share of "
             "it. Ties: the better rank (of the successor, resp. the predecessor), then the smaller cluster id. "
             "Groups are numbered by their best new rank, then best old rank. "
             "A pair continues when each is the other's main link (holding at least "
             f"{100 * MIN_CONTAINED:g} % when a cluster has several links); a new cluster whose main predecessor "
             "continues as another cluster split off it; an old cluster whose main successor continues another "
             "merged into it. Rank change = old rank − new rank; changes that come also from a boundary change "
             "(a split or merged group, or an old score that differs from the old activity inside the new "
             f"footprint by more than {100 * BOUNDARY_TOLERANCE:g} %) are labelled \"boundary change\". Every pair "
             "is in `compare.csv`; a group's totals are in its columns `group_*`.", ""]
    if c.old.sites is not None and not c.old.sites_outside:
        lines += [f"> The older edition ({_md(c.old.label)}) kept only its clustered sites: the activity before "
                  "on a new cluster's footprint counts those alone (re-run it with `[outputs] sites_outside = "
                  "true` for every site).", ""]
    return lines


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
        "footprint_sites": ("all" if c.old.sites_outside else "clustered") if c.old.sites is not None else "none",
        "boundary_tolerance": BOUNDARY_TOLERANCE,
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
    from cluster._atomic import atomic_output_dir
    from cluster.editions.movers import draw_movers
    from cluster.outputs._text import write_csv
    from cluster.outputs.files import write_json

    out_dir = Path(out_dir)
    notice = comparison.new.info.get("notice") or comparison.old.info.get("notice")
    read = [e.label for e in (comparison.old, comparison.new) if Path(e.label).exists()]
    with atomic_output_dir(out_dir, command="compare", inputs=read, walked=False) as tmp:
        write_csv(compare_csv_table(comparison), tmp / "compare.csv")
        (tmp / "compare.md").write_text(compare_markdown(comparison, notice=notice), "utf-8")
        draw_movers(comparison, tmp / "compare.png", notice=notice)
        write_json(tmp / "run.json", compare_info(comparison))
    log.info("wrote %s", ", ".join(str(out_dir / f) for f in COMPARE_FILES))
    return out_dir
