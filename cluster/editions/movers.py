"""``compare.png``: a world map of the movers between two editions.

The new edition's clusters are filled by what happened to them (risen, fallen, same
rank, new, split/merged) and marked by a bubble of that colour at their anchor, sized by
score (a metro's polygon is a sliver at world scale); clusters that are gone are drawn as
the old edition's outlines and a hollow bubble. Newcomers to the top tier and the biggest
risers by growth on the same footprint are labelled. Drawn on a matplotlib
:class:`~matplotlib.figure.Figure` (no pyplot state), like ``map.png``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

_COLOURS = {"rose": "#2ca25f", "fell": "#e34a33", "same": "#6b8fb3", "new": "#41b6e6",
            "split/merged": "#b07cc6", "gone": "#bbbbbb"}


def _category(status: str, rank_change) -> str:
    if status == "continuing":
        if pd.isna(rank_change) or rank_change == 0:
            return "same"
        return "rose" if rank_change > 0 else "fell"
    return "new" if status == "new" else "split/merged"


def _bubble(score, vmax: float):
    """Marker areas (points²) growing with the square root of the score, as map.png's."""
    import numpy as np

    return 12.0 + 260.0 * np.sqrt(np.clip(np.asarray(score, dtype=float), 0.0, None) / vmax)


def movers_figure(comparison, *, notice: str | None = None, n_labels: int = 20):
    """The movers map as a Figure (plate carrée).

    Parameters
    ----------
    comparison : Comparison
        Two editions matched (:func:`cluster.editions.compare_editions`).
    notice : str, optional
        A line set above the content (e.g. the synthetic-data notice).
    n_labels : int, default 20
        Clusters labelled.

    Returns
    -------
    matplotlib.figure.Figure
        The map.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from cluster.outputs.maps import draw_basemap, place_labels

    fig = Figure(figsize=(16, 7.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_basemap(ax, (-180.0, 180.0, -60.0, 80.0))

    t = comparison.table
    new = comparison.new.clusters
    by_new = t[t["new_id"].notna()].drop_duplicates("new_id").set_index("new_id")
    cats = [_category(by_new.at[cid, "status"], by_new.at[cid, "rank_change"]) if cid in by_new.index else "same"
            for cid in new["cluster_id"].astype(str)]
    vmax = float(max(new["score"].max() if len(new) else 0.0, comparison.old.clusters["score"].max()
                     if len(comparison.old.clusters) else 0.0)) or 1.0
    if len(new):
        new.plot(ax=ax, color=[_COLOURS[c] for c in cats], edgecolor="none", zorder=2)
        ax.scatter(new["anchor_lon"], new["anchor_lat"], s=_bubble(new["score"], vmax),
                   c=[_COLOURS[c] for c in cats], alpha=0.75, edgecolors="white", linewidths=0.4, zorder=3)
    gone_ids = set(t.loc[t["status"] == "gone", "old_id"])
    gone = comparison.old.clusters[comparison.old.clusters["cluster_id"].astype(str).isin(gone_ids)]
    if len(gone):
        gone.boundary.plot(ax=ax, color=_COLOURS["gone"], linewidth=0.6, linestyle="--", zorder=2)
        ax.scatter(gone["anchor_lon"], gone["anchor_lat"], s=_bubble(gone["score"], vmax), facecolors="none",
                   edgecolors="#888888", linewidths=0.8, zorder=3)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 80)
    ax.set_aspect("equal")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(colors="#8899aa", labelsize=7)
    title = (f"What moved: {Path(comparison.old.label).name} → {Path(comparison.new.label).name} "
             "(bubbles sized by score; hollow: gone); labelled: newcomers to the top tier and the biggest "
             "risers by growth on the same footprint")
    ax.set_title((notice + "\n" if notice else "") + title, fontsize=10)
    ax.legend(handles=[Patch(color=v, label=k) for k, v in _COLOURS.items()], loc="lower left", fontsize=8,
              framealpha=0.8)
    risers = comparison.risers_same_footprint()
    risers = risers[risers["footprint"] == "new"]
    label_ids = list(dict.fromkeys(list(risers["new_id"]) + list(comparison.newcomers()["new_id"])))
    rows = new[new["cluster_id"].astype(str).isin(label_ids[:n_labels])]
    if len(rows):
        place_labels(ax, rows.sort_values("rank", kind="mergesort"), vmax=vmax, bubbles=new)
    return fig


def draw_movers(comparison, path: Path, *, notice: str | None = None) -> None:
    """Write ``compare.png``.

    Parameters
    ----------
    comparison : Comparison
        Two editions matched (:func:`cluster.editions.compare_editions`).
    path : pathlib.Path
        The file to write.
    notice : str, optional
        A line set above the content (e.g. the synthetic-data notice).

    Returns
    -------
    None
    """
    movers_figure(comparison, notice=notice).savefig(path, metadata={"Software": None}, bbox_inches="tight")
