"""The basemap both maps draw: Natural Earth country borders and coastlines, vendored.

The data are Natural Earth 4.1.0 Admin 0 countries at 1:50m (public domain), as shipped
by the npm package ``world-atlas`` 2.0.2 (``countries-50m.json``, TopoJSON with the
objects ``countries`` and ``land``), committed unchanged under ``cluster/outputs/vendor/``
with Leaflet; ``scripts/vendor_map_assets.py`` rebuilds them from npm
and ``vendor/manifest.json`` records versions, licences and SHA-256 of every file.

Both maps decode it here, once: TopoJSON is small enough to decode by hand (no
maintained PyPI package decodes it; GDAL's TopoJSON driver gives polygons but not the
border mesh), and the arc topology gives borders and coastlines directly:

* an arc is a list of quantized positions, each after the first written as the
  difference from the one before (delta encoding); the running sum times
  ``transform.scale`` plus ``transform.translate`` gives longitude and latitude;
* a ring lists arc indices, ``~i`` (= ``-i - 1``) meaning arc ``i`` reversed; consecutive
  arcs share their end point, which is kept once;
* an arc used by two different countries is a border between them; the arcs of the
  ``land`` object (countries merged) are the coastlines (and shores of the few lakes
  Natural Earth cuts out of countries at this scale);
* world-atlas built its topology on the sphere, so Russia, Fiji and Antarctica run
  across the antimeridian (a step from +180 to -180 inside a ring, which a flat map
  would draw as a stroke or a band across the whole world): lines are cut there
  (:func:`cut_line`) and polygons are unwrapped and split into their parts east and
  west of it (:func:`cut_polygon`), Antarctica closed along the South Pole.

``map.html`` gets the land and the borders as plain coordinate arrays
(:func:`web_layers`: simplified by 0.02 degrees (~2 km, under a pixel up to zoom 7) and
rounded to 0.01 degree, ~650 kB instead of 2 MB); its own TopoJSON decoding in the
browser would need the same antimeridian cut written a second time, in JavaScript.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity

__all__ = ["Basemap", "basemap", "cut_line", "cut_polygon", "decode_arcs", "derived_path", "vendored_bytes",
           "vendored_text", "web_layers"]

VENDOR = "vendor"
SOURCE = "world-atlas/countries-50m.json"  # the vendored Natural Earth 1:50m countries


def vendored_bytes(path: str) -> bytes:
    """Bytes of a vendored file.

    Parameters
    ----------
    path : str
        Relative to ``cluster/outputs/vendor/`` (e.g. ``"leaflet/leaflet.js"``).

    Returns
    -------
    bytes
    """
    return resources.files("cluster.outputs").joinpath(VENDOR, *path.split("/")).read_bytes()


def vendored_text(path: str) -> str:
    """UTF-8 text of a vendored file.

    Parameters
    ----------
    path : str
        Relative to ``cluster/outputs/vendor/`` (see :func:`vendored_bytes`).

    Returns
    -------
    str
    """
    return vendored_bytes(path).decode("utf-8")


def decode_arcs(topology: dict) -> list[np.ndarray]:
    """Every arc of a TopoJSON topology, delta-decoded and transformed to degrees.

    Parameters
    ----------
    topology : dict
        A parsed TopoJSON document (``arcs``, optional quantisation ``transform``).

    Returns
    -------
    list of ndarray of shape (n, 2)
        Longitude, latitude of each arc's points, degrees.
    """
    transform = topology.get("transform")
    arcs = []
    for arc in topology["arcs"]:
        a = np.asarray(arc, dtype=np.float64)[:, :2]
        if transform is not None:  # quantized: delta-encoded integers
            a = np.cumsum(a, axis=0) * np.asarray(transform["scale"]) + np.asarray(transform["translate"])
        arcs.append(a)
    return arcs


def cut_line(a: np.ndarray) -> list[np.ndarray]:
    """Split a lon/lat line where it crosses the antimeridian (a step of more than 180
    degrees of longitude), ending and starting the parts at -180/+180.

    Parameters
    ----------
    a : ndarray of shape (n, 2)
        A line's longitude, latitude, degrees.

    Returns
    -------
    list of ndarray
        The pieces, each within [-180, 180].
    """
    jumps = np.flatnonzero(np.abs(np.diff(a[:, 0])) > 180)
    if not len(jumps):
        return [a]
    parts, start, carry = [], 0, None
    for j in jumps:
        (x0, y0), (x1, y1) = a[j], a[j + 1]
        edge = 180.0 if x0 > 0 else -180.0
        x1u = x1 + 360 if x0 > 0 else x1 - 360  # x1 seen from x0's side
        y = y0 if x1u == x0 else y0 + (edge - x0) / (x1u - x0) * (y1 - y0)
        seg = a[start:j + 1]
        if carry is not None:
            seg = np.vstack([carry, seg])
        parts.append(np.vstack([seg, [edge, y]]))
        carry, start = np.array([[-edge, y]]), j + 1
    parts.append(np.vstack([carry, a[start:]]))
    return [p for p in parts if len(p) >= 2 and np.ptp(p, axis=0).any()]


def _unwrap(ring: np.ndarray) -> np.ndarray:
    lon = ring[:, 0].copy()
    step = np.diff(lon)
    shift = np.concatenate([[0.0], np.cumsum(-360.0 * np.round(step / 360.0))])
    return np.column_stack([lon + shift, ring[:, 1]])


def cut_polygon(poly: shapely.Polygon) -> list[shapely.Polygon]:
    """The parts of a lon/lat polygon west and east of the antimeridian, each within
    -180..180 degrees (the polygon itself when it does not cross it).

    Parameters
    ----------
    poly : shapely Polygon
        In longitude, latitude (degrees), possibly crossing the antimeridian.

    Returns
    -------
    list of shapely Polygon
    """
    ext = np.asarray(poly.exterior.coords)
    if not (np.abs(np.diff(ext[:, 0])) > 180).any():
        return [poly]
    ext = _unwrap(ext)
    if abs(ext[-1, 0] - ext[0, 0]) > 180:
        # The ring goes round a pole (Antarctica): close it along the pole.
        pole = -90.0 if ext[:, 1].mean() < 0 else 90.0
        ext = np.vstack([ext, [ext[-1, 0], pole], [ext[0, 0], pole], ext[:1]])
    holes = [_unwrap(np.asarray(h.coords)) for h in poly.interiors]
    whole = shapely.make_valid(shapely.Polygon(ext, holes))
    parts = []
    for k in (-1, 0, 1, 2):  # the unwrapped shape may reach past +-180 on either side
        piece = shapely.intersection(whole, shapely.box(-180 + 360 * k, -90, 180 + 360 * k, 90))
        piece = shapely.affinity.translate(piece, xoff=-360 * k) if k else piece
        parts += [g for g in getattr(piece, "geoms", [piece]) if g.geom_type == "Polygon" and not g.is_empty]
    return parts


def _ring(indices, arcs) -> np.ndarray:
    parts = []
    for k, i in enumerate(indices):
        a = arcs[i] if i >= 0 else arcs[~i][::-1]
        parts.append(a if k == 0 else a[1:])  # consecutive arcs share their end point
    return np.concatenate(parts)


def _polygons(geometry: dict, arcs) -> list[shapely.Polygon]:
    if geometry["type"] == "Polygon":
        polys = [geometry["arcs"]]
    elif geometry["type"] == "MultiPolygon":
        polys = geometry["arcs"]
    else:
        return []
    return [part for p in polys
            for part in cut_polygon(shapely.Polygon(_ring(p[0], arcs), [_ring(h, arcs) for h in p[1:]]))]


def _arc_ids(geometry: dict) -> set[int]:
    rings = ([geometry["arcs"]] if geometry["type"] == "Polygon" else geometry.get("arcs", [])
             if geometry["type"] == "MultiPolygon" else [])
    return {i if i >= 0 else ~i for poly in rings for ring in poly for i in ring}


class Basemap:
    """Decoded Natural Earth countries.

    Attributes
    ----------
    countries : list of (str, shapely.MultiPolygon)
        Country name and shape (lon/lat degrees), in file order.
    land : shapely.MultiPolygon
        All land (the countries merged).
    borders : list of ndarray
        Lines between two countries, ``(n, 2)`` lon/lat each.
    coastlines : list of ndarray
        Outlines of the land, ``(n, 2)`` lon/lat each.
    """

    def __init__(self, topology: dict):
        arcs = decode_arcs(topology)
        geoms = topology["objects"]["countries"]["geometries"]
        self.countries = [(g.get("properties", {}).get("name", ""), shapely.MultiPolygon(_polygons(g, arcs)))
                          for g in geoms]
        land = [p for g in topology["objects"]["land"]["geometries"] for p in _polygons(g, arcs)]
        self.land = shapely.MultiPolygon(land)
        users = np.zeros(len(arcs), dtype=np.int64)
        for g in geoms:
            for i in _arc_ids(g):
                users[i] += 1
        self.borders = [p for i in np.flatnonzero(users >= 2) for p in cut_line(arcs[i])]
        coast = set().union(*(_arc_ids(g) for g in topology["objects"]["land"]["geometries"]))
        self.coastlines = [p for i in sorted(coast) for p in cut_line(arcs[i])]


@lru_cache(maxsize=1)
def basemap() -> Basemap:
    """The vendored Natural Earth 1:50m countries, decoded once and kept in the user cache
    (decoding the TopoJSON takes about a second).

    Returns
    -------
    Basemap
    """
    import pickle

    from cluster._cache import cached

    return cached(derived_path("basemap", "v1.pickle"),
                  derive=lambda: Basemap(json.loads(vendored_bytes(SOURCE))),
                  load=lambda p: (w if isinstance(w := pickle.loads(p.read_bytes()), Basemap) else None),
                  dump=lambda w, tmp: Path(tmp).write_bytes(pickle.dumps(w, protocol=pickle.HIGHEST_PROTOCOL)))


def derived_path(kind: str, *key) -> Path:
    """The user-cache file of something derived from the vendored basemap: named by the
    source's hash, so that a new source is derived afresh, and by ``key``.

    Parameters
    ----------
    kind : str
        What is derived (``"basemap"``, ``"web-layers"`` ...).
    *key
        The derivation's parameters, then a version and the file's suffix (``"v1.json"``).

    Returns
    -------
    pathlib.Path
        ``<user cache>/basemap/<kind>-<source hash>-<key ...>``.
    """
    from cluster._cache import cache_dir

    return cache_dir("basemap") / "-".join([kind, _source_digest(), *map(str, key)])


@lru_cache(maxsize=1)
def _source_digest() -> str:
    import hashlib

    return hashlib.sha256(vendored_bytes(SOURCE)).hexdigest()[:16]


def _coords(a, nd: int) -> list:
    return np.round(np.asarray(a, dtype=np.float64), nd).tolist()


@lru_cache(maxsize=1)
def web_layers(tolerance_deg: float = 0.02, decimals: int = 2) -> dict:
    """Land and borders for ``map.html`` (see :func:`derive_web_layers`), kept in the user
    cache between runs: deriving them from the vendored TopoJSON takes seconds.

    Parameters
    ----------
    tolerance_deg : float, default 0.02
        Simplification tolerance, degrees.
    decimals : int, default 2
        Decimals kept in the coordinates.

    Returns
    -------
    dict
        As :func:`derive_web_layers`.
    """
    from cluster._cache import cached

    def load(p):
        layers = json.loads(p.read_text("utf-8"))
        return layers if isinstance(layers, dict) and set(layers) == {"land", "borders"} else None

    return cached(derived_path("web-layers", tolerance_deg, decimals, "v1.json"),
                  derive=lambda: derive_web_layers(tolerance_deg, decimals), load=load,
                  dump=lambda v, tmp: Path(tmp).write_text(json.dumps(v, separators=(",", ":")), "utf-8"))


def derive_web_layers(tolerance_deg: float = 0.02, decimals: int = 2) -> dict:
    """Land and borders for ``map.html``, simplified and rounded, as plain lists.

    Parameters
    ----------
    tolerance_deg : float, default 0.02
        Simplification tolerance, degrees.
    decimals : int, default 2
        Decimals kept in the coordinates.

    Returns
    -------
    dict
        ``land``: polygons, each a list of rings (exterior first), each a list of
        ``[lon, lat]``; ``borders``: lines, each a list of ``[lon, lat]`` (degrees).
    """
    world = basemap()
    land = []
    for poly in shapely.simplify(world.land, tolerance_deg, preserve_topology=True).geoms:
        if poly.is_empty or poly.area < tolerance_deg ** 2:
            continue  # islets below the simplification tolerance
        land.append([_coords(poly.exterior.coords, decimals)] + [_coords(h.coords, decimals) for h in poly.interiors])
    borders = [_coords(shapely.get_coordinates(shapely.simplify(shapely.LineString(b), tolerance_deg)), decimals)
               for b in world.borders]
    return {"land": land, "borders": borders}
