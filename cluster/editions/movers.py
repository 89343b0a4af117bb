"""``compare.png``: a world map of the movers between two editions.

The new edition's clusters are filled by what happened to them (risen, fallen, same
rank, new, split/merged); clusters that are gone are drawn as the old edition's
outlines. Newcomers to the top tier and the biggest risers are labelled. Drawn on a
matplotlib :class:`~matplotlib.figure.Figure` (no pyplot state), like ``map.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

_COLOURS = {"rose": "#2ca25f", "fell": "#e34a33", "same": "#6b8fb3", "new": "#41b6e6",
            "split/merged": "#b07cc6", "gone": "#bbbbbb"}


def _category(status: str, rank_change) -> str:
    if status == "continuing":
        if pd.isna(rank_change) or rank_change == 0:
            return "same"
        return "rose" if rank_change > 0 else "fell"
    return "new" if status == "new" else "split/merged"


def movers_figure(comparison, *, notice: str | None = None, n_labels: int = 20):
    """The movers map as a Figure (plate carrée)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from cluster.outputs.maps import _place_labels
    from cluster.stages.places import load_places

    fig = Figure(figsize=(16, 7.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor("#0b1726")
    level = comparison.new.info.get("config", {}).get("places", {}).get("geonames_min_population", 15000)
    places = load_places(level)
    ax.scatter(places["lon"], places["lat"], s=0.2, c="#4a6580", linewidths=0, rasterized=True)

    t = comparison.table
    new = comparison.new.clusters
    by_new = t[t["new_id"].notna()].drop_duplicates("new_id").set_index("new_id")
    cats = [_category(by_new.at[cid, "status"], by_new.at[cid, "rank_change"]) if cid in by_new.index else "same"
            for cid in new["cluster_id"].astype(str)]
    if len(new):
        new.plot(ax=ax, color=[_COLOURS[c] for c in cats], edgecolor="none", zorder=2)
    gone_ids = set(t.loc[t["status"] == "gone", "old_id"])
    gone = comparison.old.clusters[comparison.old.clusters["cluster_id"].astype(str).isin(gone_ids)]
    if len(gone):
        gone.boundary.plot(ax=ax, color=_COLOURS["gone"], linewidth=0.6, linestyle="--", zorder=2)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 80)
    ax.set_aspect("equal")
    ax.tick_params(colors="#8899aa", labelsize=7)
    title = (f"What moved: {comparison.old.label} → {comparison.new.label}; "
             "labelled: newcomers to the top tier and the biggest risers (new rank)")
    ax.set_title((notice + "\n" if notice else "") + title, fontsize=10)
    ax.legend(handles=[Patch(color=v, label=k) for k, v in _COLOURS.items()], loc="lower left", fontsize=8,
              framealpha=0.8)
    label_ids = list(dict.fromkeys(list(comparison.newcomers()["new_id"]) + list(comparison.risers()["new_id"])))
    rows = new[new["cluster_id"].astype(str).isin(label_ids[:n_labels])]
    if len(rows):
        _place_labels(fig, ax, rows.sort_values("rank", kind="mergesort"))
    return fig


def draw_movers(comparison, path: Path, *, notice: str | None = None) -> None:
    """Write ``compare.png``."""
    movers_figure(comparison, notice=notice).savefig(path, metadata={"Software": None}, bbox_inches="tight")
