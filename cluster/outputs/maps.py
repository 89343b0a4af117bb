"""The static world map (``map.png``): cluster boundaries coloured by score, top clusters labelled.

Drawn on a :class:`matplotlib.figure.Figure` of its own with the Agg canvas, never through
pyplot, so writing outputs changes no global matplotlib state (a notebook's inline
backend keeps working).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["draw_map", "map_figure", "plot_clusters"]


def plot_clusters(clusters, ax, *, places=None, n_labels: int = 20, notice: str | None = None,
                  colorbar: bool = True):
    """Draw cluster boundaries coloured by score on ``ax``, the top ``n_labels`` labelled.

    Parameters
    ----------
    clusters : GeoDataFrame
        A run's clusters in rank order (``score``, ``rank``, ``name``, ``anchor_lat``,
        ``anchor_lon`` and boundary polygons in EPSG:4326).
    ax : matplotlib.axes.Axes
        Where to draw (plate carrée: longitude and latitude in degrees).
    places : DataFrame, optional
        Populated places (``lat``, ``lon``) drawn as a faint backdrop.
    n_labels : int, default 20
        Clusters labelled, in rank order; a label that fits nowhere without covering an
        earlier one or leaving the frame is left out.
    notice : str, optional
        First line of the title (e.g. the synthetic-data notice).
    colorbar : bool, default True
        Add a colour bar of the score.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    ax.set_facecolor("#0b1726")
    if places is not None and len(places):
        # Populated places sketch the continents without shipping a basemap.
        ax.scatter(places["lon"], places["lat"], s=0.2, c="#4a6580", linewidths=0, rasterized=True)
    score = clusters["score"].to_numpy()
    norm = Normalize(vmin=0, vmax=max(float(np.nanmax(score)) if len(score) else 1.0, 1e-9))
    cmap = matplotlib.colormaps["plasma"]
    if len(clusters):
        colors = [cmap(norm(s)) for s in score]
        clusters.plot(ax=ax, color=colors, edgecolor="none", zorder=2)
        pts = clusters[["anchor_lon", "anchor_lat"]].to_numpy()
        sizes = 8 + 400 * np.sqrt(np.clip(score, 0, None) / max(norm.vmax, 1e-9))
        ax.scatter(pts[:, 0], pts[:, 1], s=sizes, c=colors, alpha=0.55, edgecolors="white",
                   linewidths=0.3, zorder=3)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 80)
    ax.set_aspect("equal")
    ax.tick_params(colors="#8899aa", labelsize=7)
    title = f"Science-and-technology clusters: {len(clusters):,} clusters, top {min(n_labels, len(clusters))} labelled"
    if notice:
        title = notice + "\n" + title
    ax.set_title(title, fontsize=11)
    if colorbar:
        ax.figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, pad=0.01,
                           label="score (sum of world shares, %)")
    if len(clusters):
        _place_labels(ax.figure, ax, clusters.head(n_labels))
    return ax


def map_figure(clusters, *, notice: str | None = None, places=None, n_labels: int = 20):
    """The ``map.png`` figure: :func:`plot_clusters` on a 16 x 7 inch Figure with its own Agg canvas.

    Parameters
    ----------
    clusters : GeoDataFrame
        A run's clusters in rank order.
    notice : str, optional
        First line of the title.
    places : DataFrame, optional
        Populated places drawn as a backdrop.
    n_labels : int, default 20
        Clusters labelled, in rank order.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 7), dpi=110)
    FigureCanvasAgg(fig)  # a canvas of its own: labels are measured with its renderer
    plot_clusters(clusters, fig.subplots(), places=places, n_labels=n_labels, notice=notice)
    return fig


def draw_map(clusters, path: Path, *, notice: str | None, places=None, n_labels: int = 20) -> None:
    """Write ``map.png``: the world map of :func:`map_figure` (plate carrée).

    Parameters
    ----------
    clusters : GeoDataFrame
        A run's clusters in rank order.
    path : pathlib.Path
        The PNG file to write.
    notice : str or None
        First line of the title.
    places : DataFrame, optional
        Populated places drawn as a backdrop.
    n_labels : int, default 20
        Clusters labelled.

    Returns
    -------
    None
    """
    map_figure(clusters, notice=notice, places=places, n_labels=n_labels).savefig(
        path, metadata={"Software": None}, bbox_inches="tight")


# Offsets (points) tried in turn for a label; the far ones get a leader line.
_LABEL_SPOTS = [(5, 5, "left", "bottom"), (5, -5, "left", "top"), (-5, 5, "right", "bottom"),
                (-5, -5, "right", "top"), (0, 10, "center", "bottom"), (0, -10, "center", "top"),
                (25, 18, "left", "bottom"), (-25, -18, "right", "top"), (25, -18, "left", "top"),
                (-25, 18, "right", "bottom"), (0, 30, "center", "bottom"), (0, -30, "center", "top")]


def _place_labels(fig, ax, rows) -> None:
    """Label clusters in rank order, each at the first nearby spot that overlaps no earlier
    label (greedy; a label that fits nowhere is left out rather than drawn on another)."""
    # Text extents need a renderer: the Agg canvas (files, notebooks) has one; on another
    # canvas labels are placed at their first spot without the overlap test.
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    renderer = get_renderer() if get_renderer else None
    if renderer is None:
        for _, r in rows.iterrows():
            ax.annotate(f"{r['rank']}. {str(r['name']).replace('$', chr(92) + '$')}",
                        (r["anchor_lon"], r["anchor_lat"]), xytext=(5, 5), textcoords="offset points",
                        color="white", fontsize=7.5, zorder=4)
        return
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
