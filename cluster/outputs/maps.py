"""The static map (``map.png``): clusters coloured by score over Natural Earth countries,
the top clusters labelled next to their clusters, dense regions in panels of their own.

Basemap: land, coastlines and country borders from the vendored Natural Earth 1:50m
countries (:mod:`cluster.outputs.basemap`), the same data as ``map.html``. Their matplotlib
paths are made once per process from arrays kept in the user cache (:func:`_basemap_arrays`),
and ``map.png``'s own figure leaves out, per axes, the polygons and lines lying wholly
outside it: the same pixels (a test compares them), a third less drawing time.

Labels (:func:`place_labels`): in rank order, each label takes the nearest free spot
around its cluster's bubble, searched ring by ring (adjacent first, then further out in
twelve directions); a spot is free when the label stays inside the frame and covers no
earlier label, no earlier leader line and no labelled cluster's bubble, and its own
leader line crosses no earlier label. A label that had to move away from its bubble gets
a leader line from the bubble's edge to the label's nearest corner or side (crossing no other leader); a label that
fits nowhere is left out rather than drawn over another (and reported by
:func:`place_labels`).

Colours (:func:`rank_classes`): a linear scale of the score gives rank 1 the dark end
and leaves nearly every other cluster the same pale yellow (the score falls fast with
rank: on the real data rank 1 scores 36, rank 20 scores 2). Clusters are coloured by rank
class instead, the classes of the top tier (1–10, 11–25, 26–50, 51–top_n) from dark to
light and the emerging clusters palest, with a legend that gives each class's score
range; bubble sizes still grow with the score.

Dense regions: the world map of 16 inches cannot hold twenty labels in Europe or East
Asia. :func:`map_figure` adds a panel below the world map for each region of
:data:`REGIONS` holding at least ``min_in_region`` clusters of the top tier (at most
three, west to east), so a region with top clusters gets a panel even when none of them
is in the first twenty (London, Paris and Munich on US-heavy data). Each panel
(equirectangular with the aspect of its middle latitude, so shapes look right there)
labels its top-tier clusters in rank order, at least ``panel_labels`` of them and every
one of the first ``n_labels``; the world map outlines the region and labels the rest of
the first ``n_labels``.

:meth:`cluster.pipeline.RunResult.plot` draws this same figure on a pyplot figure, so a
notebook shows what ``map.png`` shows.

Everything is drawn on a :class:`matplotlib.figure.Figure` of its own with the Agg
canvas, never through pyplot, so writing outputs changes no global matplotlib state
(a notebook's inline backend keeps working).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["REGIONS", "draw_basemap", "draw_map", "map_figure", "place_labels", "plot_clusters", "rank_classes"]

WORLD = (-180.0, 180.0, -58.0, 78.0)  # lon0, lon1, lat0, lat1 (Antarctica left out)

# Regions that get a panel when crowded: (name, (lon0, lon1, lat0, lat1)).
REGIONS = (
    ("North America", (-125.0, -66.0, 24.5, 50.0)),
    ("Europe", (-10.5, 30.0, 36.0, 60.0)),
    ("East Asia", (100.0, 145.5, 20.0, 45.5)),
)

_OCEAN, _LAND, _COAST, _BORDER = "#d9e6f1", "#f7f5f0", "#8599ab", "#b9b2a5"
_TEXT, _LEADER = "#1b1b1b", "#3d3d3d"
_FONT_PT = 7.5


# Rank classes of the top tier (upper ends; the last class ends at the tier's size).
_CLASS_ENDS = (10, 25, 50)
# Positions in YlOrRd of the classes from the emerging ones (palest) to ranks 1-10.
_CLASS_SHADES = (0.2, 0.42, 0.6, 0.78, 0.97)


@dataclass(frozen=True)
class RankClasses:
    """Colour classes of the clusters by rank (see :func:`rank_classes`).

    Attributes
    ----------
    index : ndarray of int
        Class of each cluster, 0 = the first ranks.
    labels : list of str
        Legend text per class: the ranks and the score range.
    colours : ndarray of shape (n_classes, 4)
        RGBA per class.
    """

    index: np.ndarray
    labels: list
    colours: np.ndarray

    def rgba(self, mask=None) -> np.ndarray:
        """RGBA per cluster (``mask``: a boolean selection of the clusters)."""
        idx = self.index if mask is None else self.index[np.asarray(mask)]
        return self.colours[idx] if len(idx) else np.zeros((0, 4))


def rank_classes(clusters) -> RankClasses:
    """Classes of the top tier by rank (1–10, 11–25, 26–50, 51–top_n) and one of the
    emerging clusters, coloured dark (first ranks) to pale.

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order (``rank``, ``score``; ``tier`` when there is one,
        else the first 100 make the top tier).

    Returns
    -------
    RankClasses
    """
    import matplotlib

    n = len(clusters)
    rank = clusters["rank"].to_numpy(dtype=np.int64) if n else np.zeros(0, np.int64)
    score = clusters["score"].to_numpy(dtype=float) if n else np.zeros(0)
    if "tier" in clusters:
        n_top = int((clusters["tier"] == "top").sum())
    else:
        n_top = min(n, 100)
    ends = [e for e in _CLASS_ENDS if e < n_top] + ([n_top] if n_top else [])
    index = np.searchsorted(np.asarray(ends), rank, side="left") if n else np.zeros(0, np.int64)
    labels, start = [], 1
    for k, end in enumerate(ends):
        sel = index == k
        low = float(np.nanmin(score[sel])) if sel.any() else float("nan")
        labels.append(f"ranks {start}–{end}  (score ≥ {low:.2g})" if end > start else f"rank {start}")
        start = end + 1
    if (index == len(ends)).any():
        labels.append(f"emerging, ranks {start}–{int(rank.max())}")
    base = matplotlib.colormaps["YlOrRd"]
    shades = list(_CLASS_SHADES[::-1][:len(ends)])
    # fewer top classes (a small tier): keep the darkest shades for the first ranks
    colours = base(np.array(shades + [_CLASS_SHADES[0]]))[:len(labels)] if labels else np.zeros((0, 4))
    return RankClasses(index=np.asarray(index, dtype=np.int64), labels=labels, colours=colours)


def _legend(ax, classes: RankClasses, **kw) -> None:
    """The colour classes as a legend of round markers (rank ranges, score ranges)."""
    from matplotlib.lines import Line2D

    if not classes.labels:
        return
    handles = [Line2D([], [], marker="o", linestyle="none", markersize=8, markerfacecolor=c,
                      markeredgecolor="#5a1a00", markeredgewidth=0.4, label=lab)
               for c, lab in zip(classes.colours, classes.labels)]
    options = {"loc": "lower left", "fontsize": 7, "title": "colour: rank class", "title_fontsize": 7.5,
               "framealpha": 0.9, "borderpad": 0.5, "handletextpad": 0.3}
    options.update(kw)
    ax.legend(handles=handles, **options).set_zorder(6)


def _label_text(r) -> str:
    # Names come from data: matplotlib treats '$' as the start of math, so escape it.
    return f"{r['rank']}. {str(r['name']).replace('$', chr(92) + '$')}"


def _bubble_area(score, vmax: float) -> np.ndarray:
    """Marker areas (points²) growing with the square root of the score."""
    return 8 + 320 * np.sqrt(np.clip(np.asarray(score, dtype=float), 0, None) / max(vmax, 1e-9))


def draw_basemap(ax, extent, *, cull: bool = False) -> None:
    """Natural Earth land, country borders and coastlines on ``ax``, framed to ``extent``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Plate carrée axes (longitude, latitude in degrees).
    extent : tuple of float
        ``(lon_min, lon_max, lat_min, lat_max)``, degrees.
    cull : bool, default False
        Leave out the land polygons, borders and coastlines lying wholly outside
        ``extent`` (by more than a degree): the same pixels, drawn in less time (a
        panel of Europe need not stroke the rest of the world's 80 000 vertices), but
        panning an interactive plot would show the gap; for a figure that is only saved.

    Returns
    -------
    None
    """
    from matplotlib.collections import PathCollection

    ax.set_facecolor(_OCEAN)
    prepared = _basemap_paths()
    keep = _near(extent) if cull else None
    ax.add_collection(PathCollection([prepared.land_path(keep)], facecolors=[_LAND], edgecolors="none", zorder=0.5),
                      autolim=False)
    # The limits are set below: the lines need not extend the data limits (over a quarter
    # of the basemap's set-up time went into measuring them).
    for lines, colour, width, zorder in ((prepared.borders, _BORDER, 0.45, 0.7),
                                         (prepared.coastlines, _COAST, 0.5, 0.8)):
        ax.add_collection(_line_collection(lines.select(keep), colour, width, zorder), autolim=False)
    lon0, lon1, lat0, lat1 = extent
    ax.set_xlim(lon0, lon1)
    ax.set_ylim(lat0, lat1)


def _near(extent, margin_deg: float = 1.0):
    """A test of bounding boxes ``(n, 4)`` (lon0, lon1, lat0, lat1): do they come within
    ``margin_deg`` of ``extent``?"""
    lon0, lon1, lat0, lat1 = extent

    def test(bbox: np.ndarray) -> np.ndarray:
        return ((bbox[:, 1] >= lon0 - margin_deg) & (bbox[:, 0] <= lon1 + margin_deg)
                & (bbox[:, 3] >= lat0 - margin_deg) & (bbox[:, 2] <= lat1 + margin_deg))

    return test


def _line_collection(paths, colour, width: float, zorder: float):
    """What ``LineCollection(segments, colors=colour, linewidths=width)`` draws, from
    prepared paths (``LineCollection`` takes only arrays and makes every segment's Path
    again for every axes): their outlines, no faces, ``lines.*`` antialiasing."""
    import matplotlib
    from matplotlib.collections import PathCollection

    return PathCollection(list(paths), facecolors="none", edgecolors=colour, linewidths=width, zorder=zorder,
                          antialiaseds=matplotlib.rcParams["lines.antialiased"])


@dataclass(frozen=True)
class _Lines:
    paths: list
    bbox: np.ndarray  # (n, 4): lon0, lon1, lat0, lat1

    def select(self, keep=None) -> list:
        return self.paths if keep is None else [p for p, k in zip(self.paths, keep(self.bbox)) if k]


@dataclass(frozen=True)
class _BasemapPaths:
    """The basemap as matplotlib paths, made once per process (:func:`_basemap_paths`)."""

    land_coords: np.ndarray
    land_codes: np.ndarray
    land_bounds: np.ndarray  # polygon k's vertices: land_bounds[k]:land_bounds[k + 1]
    land_bbox: np.ndarray
    borders: _Lines
    coastlines: _Lines

    def land_path(self, keep=None):
        """One compound path of the land (its polygons near the extent, with ``keep``)."""
        from matplotlib.path import Path as MplPath

        if keep is None:
            return MplPath(self.land_coords, self.land_codes)
        kept = np.repeat(keep(self.land_bbox), np.diff(self.land_bounds))  # per vertex, polygons in order
        return MplPath(self.land_coords[kept], self.land_codes[kept])


def _basemap_paths() -> _BasemapPaths:
    import matplotlib

    # A Path records these settings when it is made: paths made under other settings are others.
    return _make_basemap_paths(bool(matplotlib.rcParams["path.simplify"]),
                               float(matplotlib.rcParams["path.simplify_threshold"]))


@lru_cache(maxsize=2)
def _make_basemap_paths(simplify: bool, threshold: float) -> _BasemapPaths:
    # simplify, threshold: only the key of the cache (Path reads them from rcParams)
    from matplotlib.path import Path as MplPath

    a = _basemap_arrays()

    def lines(kind) -> _Lines:
        coords, bounds = a[f"{kind}_coords"], a[f"{kind}_bounds"].tolist()
        return _Lines([MplPath(coords[i:j]) for i, j in zip(bounds[:-1], bounds[1:])], a[f"{kind}_bbox"])

    return _BasemapPaths(a["land_coords"], a["land_codes"], a["land_bounds"], a["land_bbox"], lines("borders"),
                         lines("coastlines"))


_ARRAYS = ("land_coords", "land_codes", "land_bounds", "land_bbox", "borders_coords", "borders_bounds", "borders_bbox",
           "coastlines_coords", "coastlines_bounds", "coastlines_bbox")


@lru_cache(maxsize=1)
def _basemap_arrays() -> dict:
    """The basemap as the arrays of :class:`_BasemapPaths`, kept in the user cache (an
    ``.npz`` named by the vendored source's hash): loading them takes milliseconds,
    loading the decoded basemap and taking it apart again took 45 ms of every run."""
    from cluster._cache import cached
    from cluster.outputs.basemap import derived_path

    def load(p):
        with np.load(p, allow_pickle=False) as f:
            a = {k: f[k] for k in _ARRAYS}
        ok = all(a[f"{k}_bounds"][-1] == len(a[f"{k}_coords"]) and len(a[f"{k}_bbox"]) == len(a[f"{k}_bounds"]) - 1
                 for k in ("land", "borders", "coastlines")) and len(a["land_codes"]) == len(a["land_coords"])
        return a if ok else None

    return cached(derived_path("basemap-paths", "v1.npz"), derive=_derive_basemap_arrays, load=load,
                  dump=lambda a, tmp: np.savez(tmp, **a))


def _derive_basemap_arrays() -> dict:
    """Land (one compound path: vertices, codes, and where each polygon's vertices start),
    borders and coastlines (vertices end to end, where each line starts), and the bounding
    box (lon0, lon1, lat0, lat1) of every polygon and line."""
    import shapely
    from matplotlib.path import Path as MplPath

    from cluster.outputs.basemap import basemap

    world = basemap()
    coords, codes, _ = _polygon_arrays(np.asarray([world.land], dtype=object))
    # the land's polygons, each a slice of the compound path's vertices
    polygons = shapely.get_parts(world.land)
    ring_counts = shapely.get_num_interior_rings(polygons) + 1
    ring_start = np.flatnonzero(codes == MplPath.MOVETO)
    land_bounds = np.append(ring_start[np.r_[0, np.cumsum(ring_counts)[:-1]]], len(coords)) if len(polygons) \
        else np.zeros(1, dtype=np.int64)
    b = shapely.bounds(polygons).reshape(-1, 4)  # minx, miny, maxx, maxy
    out = {"land_coords": coords, "land_codes": codes, "land_bounds": land_bounds.astype(np.int64),
           "land_bbox": b[:, [0, 2, 1, 3]]}
    for kind, segments in (("borders", world.borders), ("coastlines", world.coastlines)):
        segments = [np.asarray(seg, float) for seg in segments]
        out[f"{kind}_coords"] = np.concatenate(segments) if segments else np.zeros((0, 2))
        out[f"{kind}_bounds"] = np.r_[0, np.cumsum([len(seg) for seg in segments], dtype=np.int64)].astype(np.int64)
        out[f"{kind}_bbox"] = np.array([[s[:, 0].min(), s[:, 0].max(), s[:, 1].min(), s[:, 1].max()]
                                        for s in segments], dtype=float).reshape(-1, 4)
    return out


def _polygon_collection(geometries, **style):
    """One matplotlib PathCollection of (multi)polygons, a compound path per geometry
    (rings as MOVETO ... CLOSEPOLY, holes included), built from shapely's coordinate
    arrays at once: GeoSeries.plot makes a Path per ring and a patch per polygon (a
    third of the map's drawing time)."""
    from matplotlib.collections import PathCollection
    from matplotlib.path import Path as MplPath

    geometries = np.asarray(geometries, dtype=object)
    coords, codes, owner = _polygon_arrays(geometries)
    bounds = np.searchsorted(owner, np.arange(len(geometries) + 1))
    paths = [MplPath(coords[a:b], codes[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return PathCollection(paths, **style)


def _polygon_arrays(geometries: np.ndarray):
    """Vertices, path codes and owning geometry of every vertex of (multi)polygons, rings
    as MOVETO ... CLOSEPOLY (see :func:`_polygon_collection`)."""
    import shapely
    from matplotlib.path import Path as MplPath

    rings = shapely.get_rings(shapely.get_parts(geometries))
    # Which geometry each ring belongs to: parts per geometry, then rings per part.
    parts_of = np.repeat(np.arange(len(geometries)), shapely.get_num_geometries(geometries))
    ring_counts = shapely.get_num_interior_rings(shapely.get_parts(geometries)) + 1
    ring_of = np.repeat(parts_of, ring_counts)
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    codes = np.full(len(coords), MplPath.LINETO, dtype=MplPath.code_type)
    if len(coords):
        start = np.r_[True, ring_index[1:] != ring_index[:-1]]
        codes[start] = MplPath.MOVETO
        codes[np.r_[start[1:], True]] = MplPath.CLOSEPOLY
    owner = ring_of[ring_index] if len(coords) else np.zeros(0, dtype=np.int64)
    return coords, codes, owner


def _draw_clusters(ax, clusters, colors, vmax: float, *, outline: bool) -> None:
    if not len(clusters):
        return
    score = clusters["score"].to_numpy()
    ax.add_collection(_polygon_collection(clusters.geometry.to_numpy(), facecolors=colors,
                                          edgecolors="#5a1a00" if outline else "none",
                                          linewidths=0.3 if outline else 0, zorder=2), autolim=False)
    pts = np.column_stack([clusters["anchor_lon"].to_numpy(), clusters["anchor_lat"].to_numpy()])
    # Bubbles: clusters are a few pixels wide at these scales, their score must still show.
    order = np.argsort(-score, kind="stable")  # big ones below small ones
    ax.scatter(pts[order, 0], pts[order, 1], s=_bubble_area(score[order], vmax), c=colors[order],
               alpha=0.8, edgecolors="#5a1a00", linewidths=0.4, zorder=3)


def _frame(ax, aspect: float, title: str | None = None) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.set_aspect(aspect, adjustable="box", anchor="N")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}°{'E' if v > 0 else 'W' if v < 0 else ''}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}°{'N' if v > 0 else 'S' if v < 0 else ''}"))
    ax.tick_params(colors="#6b7785", labelsize=6.5, length=2)
    for s in ax.spines.values():
        s.set_edgecolor("#8d99a6")
        s.set_linewidth(0.6)
    if title:
        ax.set_title(title, fontsize=9.5, loc="left", pad=3)


def plot_clusters(clusters, ax, *, n_labels: int = 20, notice: str | None = None, colorbar: bool = True,
                  extent: tuple[float, float, float, float] | None = None, places=None):
    """Draw the clusters coloured by score over Natural Earth countries on ``ax``, the top
    ``n_labels`` labelled next to their clusters (leader lines where a label must move).

    Parameters
    ----------
    clusters : GeoDataFrame
        A run's clusters in rank order (``score``, ``rank``, ``name``, ``anchor_lat``,
        ``anchor_lon`` and boundary polygons in EPSG:4326).
    ax : matplotlib.axes.Axes
        Where to draw (plate carrée: longitude and latitude in degrees).
    n_labels : int, default 20
        Clusters labelled, in rank order, among those inside ``extent``; a label that fits
        nowhere without covering another or leaving the frame is left out.
    notice : str, optional
        First line of the title (e.g. the synthetic-data notice).
    colorbar : bool, default True
        Add the legend of the colour classes (:func:`rank_classes`).
    extent : (lon0, lon1, lat0, lat1), optional
        Degrees shown; default the world without Antarctica (-180..180, -58..78).
    places : ignored
        Formerly a backdrop of populated places; the Natural Earth basemap replaced it.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax``.
    """
    extent = WORLD if extent is None else tuple(float(v) for v in extent)
    vmax, classes = _vmax(clusters), rank_classes(clusters)
    draw_basemap(ax, extent)
    _draw_clusters(ax, clusters, classes.rgba(), vmax, outline=extent != WORLD)
    _frame(ax, 1.0 if extent == WORLD else 1 / math.cos(math.radians((extent[2] + extent[3]) / 2)))
    inside = _inside(clusters, extent)
    shown = min(n_labels, int(inside.sum()))
    title = f"Science-and-technology clusters: {len(clusters):,} clusters, top {shown} labelled"
    ax.set_title(notice + "\n" + title if notice else title, fontsize=11)
    if colorbar:  # beside the map: on any extent, inside it would hide clusters and labels
        _legend(ax, classes, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if len(clusters):
        place_labels(ax, clusters[inside].head(n_labels), vmax=vmax, bubbles=clusters[inside])
    return ax


def _vmax(clusters) -> float:
    """The largest score (sets the bubble sizes)."""
    score = clusters["score"].to_numpy() if len(clusters) else np.zeros(0)
    return max(float(np.nanmax(score)) if len(score) else 1.0, 1e-9)


def _top_tier(clusters):
    """The clusters of the top tier (the first 100 without a ``tier`` column)."""
    if "tier" in clusters:
        return clusters[(clusters["tier"] == "top").to_numpy()]
    return clusters.head(100)


def _inside(clusters, extent) -> np.ndarray:
    lon0, lon1, lat0, lat1 = extent
    lon, lat = clusters["anchor_lon"].to_numpy(), clusters["anchor_lat"].to_numpy()
    return (lon >= lon0) & (lon <= lon1) & (lat >= lat0) & (lat <= lat1)


def crowded_regions(clusters, *, n_labels: int = 20, min_in_region: int = 3) -> list[tuple[str, tuple]]:
    """The regions of :data:`REGIONS` holding at least ``min_in_region`` clusters of the
    top tier, at most three (the fullest), west to east.

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order (``anchor_lat``, ``anchor_lon``; ``tier``, else
        the first 100 count as the top tier).
    n_labels : int, default 20
        Ignored (kept for callers: panels used to count the labelled clusters only).
    min_in_region : int, default 3
        Top-tier clusters a region must hold to get a panel.

    Returns
    -------
    list of (str, tuple)
        Region name and extent ``(lon_min, lon_max, lat_min, lat_max)``.
    """
    top = _top_tier(clusters)
    hits = [(name, ext, int(_inside(top, ext).sum())) for name, ext in REGIONS]
    hits = sorted([h for h in hits if h[2] >= min_in_region], key=lambda h: -h[2])[:3]
    return [(name, ext) for name, ext, _ in sorted(hits, key=lambda h: h[1][0])]


def figure_size(clusters, *, notice: str | None = None, min_in_region: int = 3) -> tuple[float, float]:
    """Width and height in inches of :func:`map_figure` for ``clusters``.

    Parameters
    ----------
    clusters : DataFrame
        A run's clusters in rank order.
    notice : str, optional
        The title's first line, if any.
    min_in_region : int, default 3
        As in :func:`map_figure`.

    Returns
    -------
    (float, float)
    """
    return _layout(crowded_regions(clusters, min_in_region=min_in_region), notice)[:2]


def _layout(regions, notice):
    """Inches: width, height, left margin, map width and height, title height, panel cell."""
    width, left, map_w = 16.0, 0.45, 14.3
    title_h = 0.75 if notice else 0.5
    map_h = map_w * (WORLD[3] - WORLD[2]) / 360
    n = len(regions)
    cell_w = min((width - 2 * left - 0.35 * (n - 1)) / n, 11.0) if n else 0
    ratios = [(e[3] - e[2]) / math.cos(math.radians((e[2] + e[3]) / 2)) / (e[1] - e[0]) for _, e in regions]
    cell_h = cell_w * max(ratios) if n else 0
    panels_h = cell_h + 0.75 if n else 0
    height = title_h + map_h + 0.35 + panels_h
    return width, height, left, map_w, map_h, title_h, cell_w, cell_h


def map_figure(clusters, *, notice: str | None = None, n_labels: int = 20, min_in_region: int = 3,
               panel_labels: int = 12, places=None, fig=None):
    """The ``map.png`` figure: the world map, and below it a panel per crowded region.

    Parameters
    ----------
    clusters : GeoDataFrame
        A run's clusters in rank order (see :func:`plot_clusters`).
    notice : str, optional
        First line of the title (e.g. the synthetic-data notice).
    n_labels : int, default 20
        Clusters labelled, in rank order (each in its region's panel if it has one).
    min_in_region : int, default 3
        Top-tier clusters a region of :data:`REGIONS` must hold to get a panel.
    panel_labels : int, default 12
        Top-tier clusters each panel labels at least (in rank order), besides those of
        the first ``n_labels`` inside it.
    places : ignored
        Formerly a backdrop of populated places.
    fig : matplotlib.figure.Figure, optional
        An empty figure to draw on (e.g. pyplot's, for a notebook), resized to the map's
        size; default a new figure on an Agg canvas of its own.

    Returns
    -------
    matplotlib.figure.Figure
        Labels are measured with its canvas's renderer.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    regions = crowded_regions(clusters, min_in_region=min_in_region)
    # Layout in inches: title, world map (plate carrée, 360 x 136 degrees), panels row.
    width, height, left, map_w, map_h, title_h, cell_w, cell_h = _layout(regions, notice)
    n = len(regions)
    cull = fig is None  # only saved: nothing outside the extents is ever shown
    if fig is None:
        fig = Figure(figsize=(width, height), dpi=110)

        class _Canvas(FigureCanvasAgg):
            def draw_idle(self, *args, **kwargs):
                # A full draw of the figure each time something asks for a redraw: savefig
                # draws once, and place_labels applies the aspect it measures with.
                pass

        _Canvas(fig)
    else:
        # map.png's size and resolution: labels are placed in pixels, so they land where
        # they land in map.png
        fig.set_size_inches(width, height)
        fig.set_dpi(110)

    def box(x, y_top, w, h):  # inches from the top-left corner -> figure fraction
        return [x / width, 1 - (y_top + h) / height, w / width, h / height]

    vmax, classes = _vmax(clusters), rank_classes(clusters)
    world = fig.add_axes(box(left, title_h, map_w, map_h))
    draw_basemap(world, WORLD, cull=cull)
    _draw_clusters(world, clusters, classes.rgba(), vmax, outline=False)
    _frame(world, 1.0)
    top = clusters.head(n_labels)
    tier = _top_tier(clusters)
    in_panel = np.zeros(len(top), dtype=bool)
    for name, ext in regions:
        in_panel |= _inside(top, ext)
        world.add_patch(Rectangle((ext[0], ext[2]), ext[1] - ext[0], ext[3] - ext[2], fill=False,
                                  edgecolor="#4b5563", linewidth=0.8, linestyle=(0, (4, 2)), zorder=3.5))
        world.annotate(name, (ext[0], ext[3]), xytext=(2, 2), textcoords="offset points", fontsize=7.5,
                       color="#374151", style="italic", va="bottom", zorder=3.5)
    title = f"Science-and-technology clusters: {len(clusters):,} clusters, top {len(top)} labelled"
    if n:
        title += (" (" + ", ".join(name for name, _ in regions) + " in the panels below, each with its top "
                  f"{panel_labels} or more)")
    fig.text(left / width, 1 - 0.12 / height, notice + "\n" + title if notice else title, fontsize=11,
             va="top", ha="left")
    _legend(world, classes)
    axes = []
    for i, (name, ext) in enumerate(regions):
        x = left + i * (cell_w + 0.35) + (width - 2 * left - n * cell_w - 0.35 * (n - 1)) / 2
        ax = fig.add_axes(box(x, title_h + map_h + 0.35 + 0.3, cell_w, cell_h))
        draw_basemap(ax, ext, cull=cull)
        sel = _inside(clusters, ext)
        drawn = clusters[sel]
        _draw_clusters(ax, drawn, classes.rgba(sel), vmax, outline=True)
        _frame(ax, 1 / math.cos(math.radians((ext[2] + ext[3]) / 2)), title=name)
        # its top-tier clusters: at least panel_labels, and all of the first n_labels
        local = tier[_inside(tier, ext)]
        wanted = max(panel_labels, int(_inside(top, ext).sum()))
        axes.append((ax, local.head(wanted), drawn))
    place_labels(world, top[~in_panel], vmax=vmax, bubbles=clusters)
    for ax, rows, drawn in axes:
        place_labels(ax, rows, vmax=vmax, bubbles=drawn)
    return fig


def draw_map(clusters, path: Path, *, notice: str | None, n_labels: int = 20, places=None) -> None:
    """Write ``map.png``: the figure of :func:`map_figure`.

    Parameters
    ----------
    clusters : GeoDataFrame
        A run's clusters in rank order.
    path : pathlib.Path
        The PNG file.
    notice : str or None
        First line of the title.
    n_labels : int, default 20
        Clusters labelled.
    places : ignored
        Kept for callers of earlier versions (the map now has Natural Earth borders).

    Returns
    -------
    None
    """
    map_figure(clusters, notice=notice, n_labels=n_labels).savefig(path, metadata={"Software": None})


# ---- labels ------------------------------------------------------------------------------

@dataclass
class _Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, o: _Box, pad: float = 0.0) -> bool:
        return (self.x0 - pad < o.x1 and o.x0 - pad < self.x1 and self.y0 - pad < o.y1 and o.y0 - pad < self.y1)

    def hits_circle(self, cx: float, cy: float, r: float) -> bool:
        qx, qy = min(max(cx, self.x0), self.x1), min(max(cy, self.y0), self.y1)
        return (qx - cx) ** 2 + (qy - cy) ** 2 < r * r

    def hits_segment(self, a, b) -> bool:
        # Liang-Barsky clipping: does segment a-b enter the box?
        t0, t1 = 0.0, 1.0
        dx, dy = b[0] - a[0], b[1] - a[1]
        for p, q in ((-dx, a[0] - self.x0), (dx, self.x1 - a[0]), (-dy, a[1] - self.y0), (dy, self.y1 - a[1])):
            if p == 0:
                if q < 0:
                    return False
            else:
                t = q / p
                if p < 0:
                    t0 = max(t0, t)
                else:
                    t1 = min(t1, t)
                if t0 > t1:
                    return False
        return True


def _cross(p, q) -> bool:
    """Do segments ``p`` and ``q`` (pairs of points) cross?"""
    def side(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2 = side(q[0], q[1], p[0]), side(q[0], q[1], p[1])
    d3, d4 = side(p[0], p[1], q[0]), side(p[0], p[1], q[1])
    return d1 * d2 < 0 and d3 * d4 < 0


# Directions tried on every ring, in order of preference (degrees, 0 = east, 90 = north).
_ANGLES = (0, 180, 35, 145, -35, -145, 65, 115, -65, -115, 90, -90, 15, 165, -15, -165)
_RINGS_PX = (0, 10, 22, 36, 52, 72, 96, 125, 160, 200)  # gap between bubble and label


def place_labels(ax, rows, *, vmax: float, bubbles=None) -> list:
    """Label ``rows`` (clusters in rank order) on ``ax`` next to their bubbles.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        An axes whose limits are final (the figure's canvas must be able to measure text).
    rows : DataFrame
        ``rank``, ``name``, ``anchor_lon``, ``anchor_lat``, ``score``.
    vmax : float
        The score of the largest bubble (sets bubble radii as in the drawing).
    bubbles : DataFrame, optional
        Every cluster drawn on ``ax`` (``anchor_lon``, ``anchor_lat``, ``score``): a label
        avoids covering or touching their bubbles too where it can, so that it cannot be
        read as the label of a neighbour; default ``rows``.

    Returns
    -------
    list of str
        Labels left out because they fit nowhere.
    """
    if not len(rows):
        return []
    fig = ax.figure
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    renderer = get_renderer() if get_renderer else None
    ax.apply_aspect()
    halo = _halo()
    if renderer is None:
        # Another canvas (e.g. a notebook backend without a renderer yet): labels at their
        # first spot, without the overlap test.
        for _, r in rows.iterrows():
            ax.annotate(_label_text(r), (r["anchor_lon"], r["anchor_lat"]), xytext=(5, 5), textcoords="offset points",
                        color=_TEXT, fontsize=_FONT_PT, zorder=5, path_effects=halo, gid="cluster-label")
        return []
    frame = ax.get_window_extent(renderer)
    frame = _Box(frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    px_per_pt = fig.dpi / 72

    def circles(df):
        # the two columns by name: selecting a two-column frame of a GeoDataFrame costs more
        xy = ax.transData.transform(np.column_stack([df["anchor_lon"].to_numpy(dtype=float),
                                                     df["anchor_lat"].to_numpy(dtype=float)]))
        return xy, np.sqrt(_bubble_area(df["score"].to_numpy(), vmax)) / 2 * px_per_pt

    anchors, radii = circles(rows)
    others = circles(rows if bubbles is None else bubbles)
    placed: list[_Box] = []
    leaders: list[tuple] = []
    skipped = []
    to_data = ax.transData.inverted()
    for k, (_, r) in enumerate(rows.iterrows()):
        text = _label_text(r)
        probe = ax.text(0, 0, text, fontsize=_FONT_PT)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        w, h = ext.width + 2, ext.height + 1
        (px, py), rad = anchors[k], radii[k]
        # Keep-out circles: strictly every bubble but the label's own (a little margin, so a
        # label never touches a neighbour), loosely only the labelled bubbles.
        own = np.hypot(others[0][:, 0] - px, others[0][:, 1] - py) < 0.5
        strict = (others[0][~own], np.minimum(others[1][~own], 9) + 3)
        mine = np.arange(len(rows)) != k
        loose = (anchors[mine], np.minimum(radii[mine], 9))
        spot = None
        # Near spots first, even over an unlabelled bubble, before long leader lines (the
        # near rings, tried already under the same keep-out, are not tried again).
        for keep_out, rings in ((strict, _RINGS_PX[:5]), (loose, _RINGS_PX[:5]), (strict, _RINGS_PX[5:]),
                                (loose, _RINGS_PX[5:])):
            spot = _find_spot(px, py, rad, w, h, frame, placed, leaders, keep_out, rings)
            if spot:
                break
        if spot is None:
            skipped.append(text)
            continue
        b, leader = spot
        placed.append(b)
        x, y = to_data.transform((b.x0 + 1, b.y0 + 0.5))
        ax.text(x, y, text, fontsize=_FONT_PT, color=_TEXT, ha="left", va="bottom", zorder=5, path_effects=halo,
                gid="cluster-label", clip_on=False)
        if leader:
            leaders.append(leader)
            (lx0, ly0), (lx1, ly1) = to_data.transform(np.asarray(leader))
            ax.plot([lx0, lx1], [ly0, ly1], color=_LEADER, linewidth=0.6, zorder=4.5, gid="leader",
                    solid_capstyle="butt")
    return skipped


def _find_spot(px, py, rad, w, h, frame, placed, leaders, keep_out, rings):
    """The first free spot for a ``w`` x ``h`` label around the bubble at (px, py) of radius
    ``rad`` (pixels), ring by ring: (box, leader or None), or None."""
    centres, radii = keep_out
    for gap in rings:
        for deg in _ANGLES if gap else _ANGLES[:12]:
            c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
            d = rad + 2 + gap
            qx, qy = px + d * c, py + d * s
            x0 = qx if c > 0.3 else qx - w if c < -0.3 else qx - w / 2
            y0 = qy if s > 0.3 else qy - h if s < -0.3 else qy - h / 2
            b = _Box(x0, y0, x0 + w, y0 + h)
            if not (frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1):
                continue
            if any(b.overlaps(o, pad=2) for o in placed) or any(b.hits_segment(a, e) for a, e in leaders):
                continue
            if len(centres):
                nx = np.clip(centres[:, 0], b.x0, b.x1) - centres[:, 0]
                ny = np.clip(centres[:, 1], b.y0, b.y1) - centres[:, 1]
                if (nx * nx + ny * ny < radii * radii).any():
                    continue
            if not gap:
                return b, None
            # A leader line from the bubble's edge to the nearest point of the label.
            nx, ny = min(max(px, b.x0), b.x1), min(max(py, b.y0), b.y1)
            dist = math.hypot(nx - px, ny - py)
            leader = ((px + (nx - px) * rad / dist, py + (ny - py) * rad / dist), (nx, ny))
            if any(o.hits_segment(*leader) for o in placed) or any(_cross(leader, o) for o in leaders):
                continue
            return b, leader
    return None


def _halo():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.2, foreground="white", alpha=0.9)]
