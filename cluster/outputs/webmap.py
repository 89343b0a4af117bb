"""``map.html``: an interactive map of the clusters in one self-contained file.

Why not Leaflet/folium: folium pages load Leaflet's JavaScript and CSS and the basemap
tiles from CDNs, so they show nothing offline (and no Python package ships Leaflet to
inline). This page needs no network at all: the boundaries are drawn as SVG paths
(equirectangular, x = longitude, y = -latitude) by a few lines of plain JavaScript
embedded in the file, over a sketch of the continents made of the most populous
GeoNames places (no tiles). It offers what the Leaflet page would:

* one layer per view, switched with radio buttons: ``score`` and one per metric, each
  colouring the clusters by that metric's world share (clusters without the metric are
  left out of its layer);
* a popup on click with name, rank, tier, economies, counts, shares (and the top field and
  institution per metric when the run has profiles), score, population
  and intensity;
* wheel zoom and drag pan; ``map.html#cluster=<cluster_id>`` opens on a cluster's popup.

Escaping: every value from the data (names, economies, ids) travels as JSON inside a
``<script type="application/json">`` element with ``<``, ``>`` and ``&`` written as
``\\u003c``, ``\\u003e``, ``\\u0026`` (so a name cannot close the element), and the script
puts it on the page with ``textContent`` only, never as HTML.
"""

from __future__ import annotations

import html
import json
import math

import numpy as np
import pandas as pd
import shapely

_SIMPLIFY_DEG = 0.003  # ~300 m: invisible at any useful zoom, keeps the file small


def _ring_path(coords: np.ndarray) -> str:
    pts = [f"{x:.3f} {-y:.3f}" for x, y in coords[:-1]]
    return "M" + "L".join(pts) + "Z"


def svg_path(geom) -> str:
    """SVG path data of a (Multi)Polygon in lon/lat (y flipped), holes as sub-paths."""
    if geom is None or geom.is_empty:
        return ""
    geom = shapely.simplify(geom, _SIMPLIFY_DEG, preserve_topology=True)
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        parts.append(_ring_path(np.asarray(poly.exterior.coords)))
        parts += [_ring_path(np.asarray(r.coords)) for r in poly.interiors]
    return "".join(parts)


def _num(v, nd=6):
    if v is None or pd.isna(v):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if not math.isfinite(f) else round(f, nd)


def map_data(clusters, metrics, metric_labels: dict, places=None, n_places: int = 4000) -> dict:
    """Everything the page shows, as plain JSON-able data."""
    rows = []
    for _, r in clusters.iterrows():
        rows.append({
            "id": str(r["cluster_id"]), "name": str(r["name"]), "rank": int(r["rank"]),
            "tier": str(r["tier"]), "economies": str(r["economies"]),
            "score": _num(r["score"]), "population": int(r["population"]),
            "intensity_score": _num(r["intensity_score"]),
            "intensity_rank": None if pd.isna(r["intensity_rank"]) else int(r["intensity_rank"]),
            "counts": {m: _num(r[m], 2) for m in metrics},
            "shares": {m: _num(r[f"share_{m}"]) for m in metrics},
            "per_million": {m: _num(r[f"{m}_per_million"], 2) for m in metrics},
            "anchor": [_num(r["anchor_lon"], 4), _num(r["anchor_lat"], 4)],
            # Profiles (top field / institution per metric), when the run has them.
            "top": {c[4:]: str(r[c]) for c in clusters.columns
                    if c.startswith(("top_field_", "top_institution_")) and not pd.isna(r[c])},
            "d": svg_path(r.geometry),
        })
    land = ""
    if places is not None and len(places):
        top = places.nlargest(n_places, "population")
        # Zero-length segments with round caps and a non-scaling stroke: dots of constant
        # screen size at every zoom, instead of squares that grow as one zooms in.
        land = "".join(f"M{x:.2f} {-y:.2f}h0" for x, y in zip(top["lon"], top["lat"]))
    return {"metrics": [{"name": m, "label": metric_labels.get(m, m)} for m in metrics],
            "clusters": rows, "land": land}


def _script_json(data) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_html(data: dict, *, notice: str | None = None) -> str:
    title = "Science-and-technology clusters"
    n = len(data["clusters"])
    banner = f'<div id="notice">{html.escape(notice)}</div>' if notice else ""
    return (_TEMPLATE.replace("__TITLE__", html.escape(title))
            .replace("__SUBTITLE__", html.escape(f"{n:,} clusters; click one for details"))
            .replace("__NOTICE__", banner)
            .replace("__DATA__", _script_json(data)))


def write_map_html(path, clusters, metrics, metric_labels: dict, *, notice=None, places=None) -> None:
    path.write_text(render_html(map_data(clusters, metrics, metric_labels, places), notice=notice), "utf-8")


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
html, body { margin: 0; height: 100%; font: 13px/1.35 system-ui, sans-serif; background: #0b1726; }
#map { position: absolute; inset: 0; width: 100%; height: 100%; cursor: grab; }
#map.dragging { cursor: grabbing; }
.land { fill: none; stroke: #4a6580; stroke-width: 3; stroke-linecap: round; vector-effect: non-scaling-stroke; pointer-events: none; }
.cluster { stroke: #ffffff; stroke-width: 0.6; stroke-opacity: 0.8; vector-effect: non-scaling-stroke;
           fill-rule: evenodd; fill-opacity: 0.85; cursor: pointer; }
.cluster:hover, .cluster.selected { stroke: #00e5ff; stroke-width: 2; }
.anchor { fill-opacity: 0.9; stroke: #fff; stroke-width: 0.5; vector-effect: non-scaling-stroke; pointer-events: none; }
#panel { position: absolute; top: 10px; right: 10px; background: rgba(255,255,255,.93); padding: 8px 12px;
         border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,.4); max-width: 260px; }
#panel h1 { font-size: 14px; margin: 0 0 2px; }
#panel .sub { color: #555; margin-bottom: 6px; }
#panel label { display: block; white-space: nowrap; }
#legend { margin-top: 6px; height: 10px; border-radius: 2px;
          background: linear-gradient(to right, #ffffb2, #fecc5c, #fd8d3c, #f03b20, #bd0026); }
#legend-text { display: flex; justify-content: space-between; color: #333; font-size: 11px; }
#notice { position: absolute; top: 10px; left: 10px; background: #b00020; color: #fff; padding: 4px 10px;
          border-radius: 4px; font-weight: 600; }
#popup { position: absolute; display: none; background: #fff; border-radius: 6px; padding: 8px 12px;
         box-shadow: 0 2px 8px rgba(0,0,0,.5); min-width: 220px; max-width: 340px; }
#popup .close { position: absolute; top: 2px; right: 7px; cursor: pointer; color: #666; }
#popup h2 { font-size: 14px; margin: 0 18px 4px 0; }
#popup table { border-collapse: collapse; width: 100%; }
#popup td { padding: 1px 4px; border-top: 1px solid #eee; }
#popup td.v { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<svg id="map" xmlns="http://www.w3.org/2000/svg" viewBox="-180 -84 360 150" preserveAspectRatio="xMidYMid meet">
<rect x="-100000" y="-100000" width="200000" height="200000" fill="#0b1726"></rect>
<path class="land" id="land"></path>
<g id="layers"></g>
</svg>
__NOTICE__
<div id="panel"><h1>__TITLE__</h1><div class="sub">__SUBTITLE__</div>
<form id="switch"></form>
<div id="legend"></div><div id="legend-text"><span>0</span><span id="legend-max"></span></div></div>
<div id="popup" role="dialog"><span class="close" title="close">&#x2715;</span><h2 id="popup-title"></h2>
<table id="popup-table"></table></div>
<script id="map-data" type="application/json">__DATA__</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("map-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var svg = document.getElementById("map");
  var layersEl = document.getElementById("layers");
  var popup = document.getElementById("popup");
  var ramp = [[255,255,178],[254,204,92],[253,141,60],[240,59,32],[189,0,38]];
  function colour(t) {
    t = Math.max(0, Math.min(1, t)) * (ramp.length - 1);
    var i = Math.min(Math.floor(t), ramp.length - 2), f = t - i, a = ramp[i], b = ramp[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(a[k] + f * (b[k] - a[k])); }).join(",") + ")";
  }
  function fmt(v, nd) {
    if (v === null || v === undefined) return "\u2013";
    return Number(v).toLocaleString("en-US", {maximumFractionDigits: nd, minimumFractionDigits: 0});
  }
  document.getElementById("land").setAttribute("d", data.land || "");
  var views = [{key: "score", label: "Score (all metrics)", value: function (c) { return c.score; }}];
  data.metrics.forEach(function (m) {
    views.push({key: m.name, label: m.name + " share", title: m.label,
                value: function (c) { return c.shares[m.name]; }});
  });
  var byId = {};
  data.clusters.forEach(function (c) { byId[c.id] = c; });
  var groups = {};
  views.forEach(function (v) {
    var g = document.createElementNS(NS, "g");
    g.setAttribute("class", "layer");
    g.setAttribute("data-layer", v.key);
    var vmax = 0;
    data.clusters.forEach(function (c) { var x = v.value(c); if (x > vmax) vmax = x; });
    v.max = vmax;
    // Largest last, so it is drawn on top and small neighbours stay clickable under labels.
    data.clusters.slice().reverse().forEach(function (c) {
      var x = v.value(c);
      if (!(x > 0) || !c.d) return;
      var p = document.createElementNS(NS, "path");
      p.setAttribute("class", "cluster");
      p.setAttribute("d", c.d);
      p.setAttribute("fill", colour(Math.sqrt(x / (vmax || 1))));
      p.setAttribute("data-id", c.id);
      var t = document.createElementNS(NS, "title");
      t.textContent = c.rank + ". " + c.name;
      p.appendChild(t);
      g.appendChild(p);
    });
    g.style.display = "none";
    layersEl.appendChild(g);
    groups[v.key] = g;
  });
  var form = document.getElementById("switch");
  views.forEach(function (v, i) {
    var label = document.createElement("label");
    var input = document.createElement("input");
    input.type = "radio"; input.name = "layer"; input.value = v.key; input.checked = i === 0;
    input.addEventListener("change", function () { show(v.key); });
    label.appendChild(input);
    label.appendChild(document.createTextNode(" " + v.label));
    if (v.title) label.title = v.title;
    form.appendChild(label);
  });
  function show(key) {
    views.forEach(function (v) {
      groups[v.key].style.display = v.key === key ? "" : "none";
      if (v.key === key) document.getElementById("legend-max").textContent = fmt(v.max, 3) + " %";
    });
  }
  show("score");

  function row(table, k, v) {
    var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
    a.textContent = k; b.textContent = v; b.className = "v";
    tr.appendChild(a); tr.appendChild(b); table.appendChild(tr);
  }
  function openPopup(c, px, py) {
    document.getElementById("popup-title").textContent = c.rank + ". " + c.name;
    var table = document.getElementById("popup-table");
    while (table.firstChild) table.removeChild(table.firstChild);
    row(table, "Cluster id", c.id);
    row(table, "Tier", c.tier);
    row(table, "Economies", c.economies);
    row(table, "Score (sum of shares, %)", fmt(c.score, 3));
    data.metrics.forEach(function (m) {
      row(table, m.name + " (count)", fmt(c.counts[m.name], 1));
      row(table, m.name + " share (%)", fmt(c.shares[m.name], 3));
      ["field", "institution"].forEach(function (kind) {
        var v = c.top && c.top[kind + "_" + m.name];
        if (v) row(table, m.name + " top " + kind, v);
      });
    });
    row(table, "Population", fmt(c.population, 0));
    row(table, "Intensity (score per million)", fmt(c.intensity_score, 3));
    row(table, "Intensity rank", c.intensity_rank === null ? "\u2013" : String(c.intensity_rank));
    popup.style.display = "block";
    var w = popup.offsetWidth, h = popup.offsetHeight;
    popup.style.left = Math.max(4, Math.min(window.innerWidth - w - 4, px + 12)) + "px";
    popup.style.top = Math.max(4, Math.min(window.innerHeight - h - 4, py + 12)) + "px";
    Array.prototype.forEach.call(document.querySelectorAll(".cluster.selected"), function (e) {
      e.classList.remove("selected");
    });
    Array.prototype.forEach.call(document.querySelectorAll('.cluster[data-id="' + c.id + '"]'), function (e) {
      e.classList.add("selected");
    });
  }
  popup.querySelector(".close").addEventListener("click", function () { popup.style.display = "none"; });

  // Pan and zoom by changing the viewBox.
  var vb = svg.viewBox.baseVal, drag = null, moved = false;
  function toUser(ev) {
    var r = svg.getBoundingClientRect(), s = Math.max(vb.width / r.width, vb.height / r.height);
    var ox = (r.width * s - vb.width) / 2, oy = (r.height * s - vb.height) / 2;
    return [vb.x - ox + (ev.clientX - r.left) * s, vb.y - oy + (ev.clientY - r.top) * s, s];
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var u = toUser(ev), k = ev.deltaY < 0 ? 0.8 : 1.25;
    if (vb.width * k < 0.05 || vb.width * k > 720) return;
    vb.x = u[0] - (u[0] - vb.x) * k; vb.y = u[1] - (u[1] - vb.y) * k;
    vb.width *= k; vb.height *= k;
  }, {passive: false});
  svg.addEventListener("mousedown", function (ev) {
    drag = {x: ev.clientX, y: ev.clientY, vx: vb.x, vy: vb.y, s: toUser(ev)[2]}; moved = false;
    svg.classList.add("dragging");
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
    vb.x = drag.vx - dx * drag.s; vb.y = drag.vy - dy * drag.s;
  });
  window.addEventListener("mouseup", function () { drag = null; svg.classList.remove("dragging"); });
  svg.addEventListener("click", function (ev) {
    if (moved) return;
    var id = ev.target.getAttribute && ev.target.getAttribute("data-id");
    if (id && byId[id]) openPopup(byId[id], ev.clientX, ev.clientY);
    else popup.style.display = "none";
  });

  // map.html#cluster=<id>: zoom to a cluster and open its popup.
  var m = /cluster=([^&]+)/.exec(window.location.hash);
  var c = m && byId[decodeURIComponent(m[1])];
  if (c) {
    var span = 6;
    vb.x = c.anchor[0] - span; vb.y = -c.anchor[1] - span / 2; vb.width = 2 * span; vb.height = span;
    var r = svg.getBoundingClientRect();
    openPopup(c, r.left + r.width / 2, r.top + r.height / 2);
  }
})();
</script>
</body>
</html>
"""
