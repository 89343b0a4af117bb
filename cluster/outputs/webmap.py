"""``map.html``: an interactive Leaflet map of the clusters in one self-contained file.

The page is Leaflet (1.9.4, BSD-2-Clause, vendored in ``cluster/outputs/vendor/leaflet``
and inlined, its CSS images as ``data:`` URIs), over the Natural Earth 1:50m land and
country borders of :mod:`cluster.outputs.basemap`; no tiles, no CDN, so it works offline
and from a file. What a Leaflet user expects is there:

* zoom buttons, wheel and drag, a scale bar, attribution;
* a layer control (radio buttons) with one layer per view: ``score``, each metric's world
  share (clusters without the metric are left out of its layer) and the intensity
  (score per million inhabitants); cluster polygons and, up to zoom 8 where polygons are
  a few pixels wide, bubbles at the anchors, coloured (and sized) by the view's value,
  with a legend;
* a popup on click with name, rank, tier, economies, score, population, intensity, and
  per metric the count, world share and per-million rate (and the top field and
  institution where the run profiled them); a tooltip with the name on hover;
* a search box: matches by name as one types, Enter opens the first;
* ``map.html#cluster=<cluster_id>`` opens on a cluster's popup (clicks and searches put
  the open cluster in the address, so it can be shared).

Why not folium: folium writes ``<script src>``/``<link>`` tags to CDNs for Leaflet and
for its own extras (Bootstrap, jQuery, Font Awesome, Leaflet.awesome-markers), so its
page shows nothing offline; pointing it at local copies still leaves files next to the
page rather than one file, and inlining means rewriting its output. The page here is a
template (``map_template.html``) of ~300 lines calling the Leaflet API, with the data
as JSON.

Escaping: every value from the data (names, economies, ids, metric labels) travels as
JSON inside ``<script type="application/json">`` elements with ``<``, ``>`` and ``&``
written as ``\\u003c``, ``\\u003e``, ``\\u0026`` (so a name cannot close the element), and
the script puts it on the page with ``textContent`` only (popups and search results are
DOM nodes, never HTML strings); the layer control, which takes HTML, gets escaped names.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from cluster.outputs.basemap import vendored_bytes, vendored_text, web_layers

__all__ = ["map_data", "render_html", "write_map_html"]

_SIMPLIFY_DEG = 0.003  # ~300 m: invisible at any useful zoom, keeps the file small
# YlOrRd from pale to dark (the palest yellow of the scale left out: it vanishes on land)
_RAMP = [(254, 217, 118), (254, 178, 76), (253, 141, 60), (240, 59, 32), (189, 0, 38), (128, 0, 38)]
_PROFILE_KINDS = {"field": "Top field", "institution": "Top institution"}
_BASEMAP_ARGS = (0.02, 2)  # web_layers(tolerance_deg, decimals) of the page


def _num(v, nd=6):
    if v is None or pd.isna(v):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if not math.isfinite(f) else round(f, nd)


def _polygons(geom) -> list:
    """A (Multi)Polygon as a list of polygons, each a list of rings of ``[lon, lat]``."""
    if geom is None or geom.is_empty:
        return []
    geom = shapely.simplify(geom, _SIMPLIFY_DEG, preserve_topology=True)
    out = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        rings = [poly.exterior] + list(poly.interiors)
        out.append([np.round(np.asarray(r.coords)[:-1], 4).tolist() for r in rings])
    return out


def _all_polygons(geoms: np.ndarray) -> list:
    """:func:`_polygons` of every geometry, simplified and taken apart by shapely once for
    all (a call per cluster took a third of :func:`map_data`)."""
    out = [[] for _ in range(len(geoms))]
    idx = np.flatnonzero(~shapely.is_missing(geoms))
    idx = idx[~shapely.is_empty(geoms[idx])]
    simple = shapely.simplify(geoms[idx], _SIMPLIFY_DEG, preserve_topology=True)
    parts, part_of = shapely.get_parts(simple, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    polys, poly_of = parts[keep], idx[part_of[keep]]
    if shapely.has_z(polys).any():  # get_coordinates below is 2-D: keep every coordinate as before
        return [_polygons(g) for g in geoms]
    rings, ring_of = shapely.get_rings(polys, return_index=True)  # exterior first, then the holes
    counts = shapely.get_num_coordinates(rings)
    points = np.round(shapely.get_coordinates(rings), 4).tolist()
    ends = np.cumsum(counts).tolist()
    current = None
    for k, (end, count) in enumerate(zip(ends, counts.tolist())):
        if k == 0 or ring_of[k] != ring_of[k - 1]:  # a polygon's exterior: a new polygon
            current = []
            out[poly_of[ring_of[k]]].append(current)
        current.append(points[end - count:end - 1])  # the closing point left out
    return out


def _bounds(geom, anchor_lon: float, anchor_lat: float, bounds=None) -> list:
    """``[lon0, lat0, lon1, lat1]`` to zoom to; around the anchor when the polygon is split
    at the antimeridian (its bounding box would be the whole world). ``bounds``: the
    geometry's, if already known."""
    if geom is not None and not geom.is_empty:
        bounds = geom.bounds if bounds is None else bounds
        if not bounds[2] - bounds[0] > 180:
            return [round(b, 4) for b in bounds]
    return [anchor_lon - 0.5, anchor_lat - 0.5, anchor_lon + 0.5, anchor_lat + 0.5]


def map_data(clusters, metrics, metric_labels: dict) -> dict:
    """Everything the page shows about the clusters, as plain JSON-able data.

    Parameters
    ----------
    clusters : GeoDataFrame
        A run's clusters in rank order.
    metrics : sequence of str
        Metrics shown (a layer each).
    metric_labels : dict
        Metric name -> label.

    Returns
    -------
    dict
        ``metrics`` and ``clusters`` (one dict each: name, rank, counts, shares, outline ...).
    """
    # Column by column from the values a row of iterrows holds (the same objects, so the
    # same numbers and text), without building a Series per cluster.
    columns = list(clusters.columns)
    values = clusters.values

    def col(name) -> list:
        return values[:, columns.index(name)].tolist()

    def present(v) -> bool:
        return v is not None and not pd.isna(v) and bool(str(v))

    n = len(clusters)
    profile_cols = {m: [(label, col(f"top_{kind}_{m}")) for kind, label in _PROFILE_KINDS.items()
                        if f"top_{kind}_{m}" in columns] for m in metrics}
    ci_low, ci_high = (col("rank_ci_low"), col("rank_ci_high")) if "rank_ci_low" in columns else ([None] * n, None)
    geoms = values[:, columns.index("geometry")]
    polygons = _all_polygons(np.asarray(geoms, dtype=object))
    bounds = shapely.bounds(np.asarray(geoms, dtype=object)).tolist()
    ids, names, ranks, tiers, economies = (col(c) for c in ("cluster_id", "name", "rank", "tier", "economies"))
    score, population, intensity, intensity_rank, anchor_lon, anchor_lat = (
        col(c) for c in ("score", "population", "intensity_score", "intensity_rank", "anchor_lon", "anchor_lat"))
    counts = {m: col(m) for m in metrics}
    shares = {m: col(f"share_{m}") for m in metrics}
    per_million = {m: col(f"{m}_per_million") for m in metrics}
    rows = []
    for i in range(n):
        profiles = {m: [[f"{label}", str(v[i])] for label, v in profile_cols[m] if present(v[i])] for m in metrics}
        ci = None
        if not pd.isna(ci_low[i]):
            ci = [int(ci_low[i]), int(ci_high[i])]
        lon, lat = _num(anchor_lon[i], 4), _num(anchor_lat[i], 4)
        rows.append({
            "id": str(ids[i]), "name": str(names[i]), "rank": int(ranks[i]),
            "tier": str(tiers[i]), "economies": str(economies[i]),
            "score": _num(score[i]), "population": int(population[i]),
            "intensity_score": _num(intensity[i]),
            "intensity_rank": None if pd.isna(intensity_rank[i]) else int(intensity_rank[i]),
            "rank_ci": ci,
            "counts": {m: _num(counts[m][i], 2) for m in metrics},
            "shares": {m: _num(shares[m][i]) for m in metrics},
            "per_million": {m: _num(per_million[m][i], 2) for m in metrics},
            "profiles": profiles,
            "anchor": [lon, lat],
            "bounds": _bounds(geoms[i], lon, lat, bounds[i]),
            "polygons": polygons[i],
        })
    return {"metrics": [{"name": m, "label": metric_labels.get(m) or m} for m in metrics], "clusters": rows}


def _script_json(data) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


@lru_cache(maxsize=1)
def _leaflet() -> tuple[str, str, str]:
    """Leaflet's JavaScript and CSS, ready to inline, and its version."""
    manifest = json.loads(vendored_text("manifest.json"))
    version = next(p["version"] for p in manifest["packages"] if p["name"] == "leaflet")
    js = vendored_text("leaflet/leaflet.js")
    # The source map is not shipped: the comment would make developer tools fetch it.
    js = re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.M)
    css = vendored_text("leaflet/leaflet.css")

    def data_uri(m):
        name = m.group(1)
        b64 = base64.b64encode(vendored_bytes(f"leaflet/images/{name}")).decode("ascii")
        return f"url(data:image/png;base64,{b64})"

    # Inlined, relative image URLs would resolve next to map.html: embed the images.
    css = re.sub(r"url\(images/([\w.-]+\.png)\)", data_uri, css)
    for text, end in ((js, "</script"), (css, "</style")):
        if end in text.lower():  # cannot happen with the pinned files; guards a future update
            raise RuntimeError(f"vendored Leaflet contains {end!r} and cannot be inlined")
    return js, css, version


@lru_cache(maxsize=1)
def _basemap_json() -> str:
    """:func:`web_layers` as the page embeds them, kept in the user cache as that text (with
    its SHA-256 on the first line, checked when read): reading the layers back from their
    JSON and writing them out again took half of :func:`write_map_html`."""
    import hashlib

    from cluster._cache import cached
    from cluster.outputs.basemap import derived_path

    def load(p):
        digest, _, text = p.read_text("utf-8").partition("\n")
        return text if hashlib.sha256(text.encode("utf-8")).hexdigest() == digest else None

    def dump(text, tmp):
        Path(tmp).write_text(hashlib.sha256(text.encode("utf-8")).hexdigest() + "\n" + text, "utf-8")

    # Named as the layers are, and by this page's escaping.
    return cached(derived_path("web-layers", *_BASEMAP_ARGS, "script-v1.txt"),
                  derive=lambda: _script_json(web_layers(*_BASEMAP_ARGS)), load=load, dump=dump)


def render_html(data: dict, *, notice: str | None = None) -> str:
    """The self-contained page for ``data``.

    Parameters
    ----------
    data : dict
        :func:`map_data` output, embedded as JSON with ``<``, ``>``, ``&`` escaped.
    notice : str, optional
        A red banner (e.g. the synthetic-data notice), HTML-escaped.

    Returns
    -------
    str
        HTML with Leaflet, the basemap and the data inline.
    """
    js, css, version = _leaflet()
    template = _resource_text("map_template.html")
    values = {
        "TITLE": html.escape("Science-and-technology clusters"),
        "NOTICE": f'<div id="notice">{html.escape(notice)}</div>' if notice else "",
        "LEAFLET_VERSION": version, "LEAFLET_CSS": css, "LEAFLET_JS": js,
        "RAMP_CSS": ", ".join(f"rgb{c}" for c in _RAMP), "RAMP_JS": json.dumps([list(c) for c in _RAMP]),
        "DATA": _script_json(data), "BASEMAP": _basemap_json(),
    }
    # One pass, so that text put in (the data, Leaflet) is never searched for placeholders.
    return re.sub(r"__([A-Z_]+?)__", lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), template)


def _resource_text(name: str) -> str:
    from importlib import resources

    return resources.files("cluster.outputs").joinpath(name).read_text("utf-8")


def write_map_html(path, clusters, metrics, metric_labels: dict, *, notice: str | None = None) -> None:
    """Write ``map.html`` for ``clusters`` (a run's clusters in rank order, EPSG:4326).

    Parameters
    ----------
    path : path-like
        The file to write (UTF-8).
    clusters : GeoDataFrame
        Ranking columns and boundary polygons.
    metrics : sequence of str
        Metrics shown, in order (a layer each).
    metric_labels : dict
        Readable label per metric (default the metric's name).
    notice : str, optional
        Banner text (e.g. the synthetic-data notice).

    Returns
    -------
    None
    """
    Path(path).write_text(render_html(map_data(clusters, metrics, metric_labels), notice=notice), "utf-8")
