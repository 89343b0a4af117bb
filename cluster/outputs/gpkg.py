"""GeoPackage extras written into ``clusters.gpkg`` after pyogrio has written the layers.

* layer ``sites``: the weighted sites counted in a cluster (points, EPSG:4326) with
  ``cluster_id``, ``metric``, ``weight``, ``member`` (a member of its metric's DBSCAN
  cluster) and ``core``; with ``[outputs] sites_outside = true`` every other site too
  (``cluster_id`` empty);
* field titles and descriptions in ``gpkg_data_columns`` (the GeoPackage schema
  extension; GDAL reads them as field alias and comment, QGIS shows them as aliases);
* a default QGIS style in ``layer_styles`` (the table QGIS itself writes when a style is
  saved "in datasource database"): the ``clusters`` layer opens graduated by ``score``
  (quantile classes of this run) with ``name`` labels;
* ``run_info``: an attributes table of ``key``/``value`` (JSON) with the run's
  parameters, counts, totals and versions (``run.json`` flattened one level).

GDAL has no API for the last three, so they are written with :mod:`sqlite3` on the
finished file (still in the run's temporary directory, before the atomic swap) and
registered in ``gpkg_contents``/``gpkg_extensions`` as the GeoPackage 1.2 standard asks.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

# The GeoPackage version written (GDAL's VERSION creation option). GDAL 3.9+ writes 1.4 by
# default, which GDAL before 3.7 (QGIS LTRs, Ubuntu 22.04/Debian 12's GDAL 3.4/3.6) opens
# with "may only be partially supported"; nothing written here needs 1.3 or 1.4, and 1.2
# is read without a warning by every GDAL since 2.2.
GPKG_VERSION = "1.2"

# Titles and descriptions of the clusters layer's fixed columns; metric columns are
# described from the metric's label (see column_docs).
_FIXED = {
    "rank": ("Rank", "Rank by score (1 = largest), ties by cluster_id"),
    "rank_ci_low": ("Rank CI low", "Lower end of the bootstrap rank interval"),
    "rank_ci_high": ("Rank CI high", "Upper end of the bootstrap rank interval"),
    "rank_min_settings": ("Rank min (settings)", "Best rank over the run's setting and [ranking] rank_range_* "
                          "settings where the cluster has a match"),
    "rank_max_settings": ("Rank max (settings)", "Worst rank over the run's setting and [ranking] rank_range_* "
                          "settings where the cluster has a match"),
    "rank_n_settings": ("Settings matched", "Settings (the run's included) where the cluster has a match"),
    "cluster_id": ("Cluster id", "g + 7-character geohash of the cluster's heaviest location"),
    "name": ("Name", "Main places of the cluster by activity, en-dash separated"),
    "score": ("Score", "Size score: sum over metrics of score_weight x world share (percent)"),
    "population": ("Population", "Inhabitants inside the boundary (GeoNames places or raster grid)"),
    "intensity_score": ("Intensity score", "Score per million inhabitants"),
    "intensity_rank": ("Intensity rank", "Rank of the top tier by intensity score"),
    "tier": ("Tier", "top (ranked 1..top_n) or emerging"),
    "anchor_lat": ("Anchor latitude", "Latitude of the heaviest location (degrees)"),
    "anchor_lon": ("Anchor longitude", "Longitude of the heaviest location (degrees)"),
    "n_sites": ("Sites", "Weighted sites inside the boundary"),
    "intensity_note": ("Intensity note", "Why intensity is empty (population missing or too small, no settlement "
                       "near, activity at suspected fallback geocodes or at one location), else empty"),
    "area_km2": ("Area (km²)", "Geodesic area of the boundary on the clustering's sphere, km²"),
    "extent_km": ("Extent (km)", "Largest great-circle distance between two of the cluster's locations, km"),
    "single_site": ("Single site", "All sites with activity within 1 km of one another, whatever the metric "
                    "(a city-level geocode, or an artefact)"),
    "geocode_note": ("Geocode note", "Suspected geocoder fallback points holding >= 20 % of the activity, "
                     "with what was detected, else empty"),
    "synthetic": ("Synthetic", "True when the input is the synthetic demo world"),
}
_SITES = {
    "cluster_id": ("Cluster id", "Cluster whose boundary holds the site (empty: none)"),
    "metric": ("Metric", "Activity metric of the site"),
    "weight": ("Weight", "Fractional count of documents at the site"),
    "member": ("Member", "Member of its metric's DBSCAN cluster (else noise inside a boundary)"),
    "core": ("Core", "DBSCAN core site: its metric's weight within eps_km reaches the threshold"),
}
# Graduated colours (ColorBrewer YlOrRd, 5 classes).
_COLOURS = ["255,255,178", "254,204,92", "253,141,60", "240,59,32", "189,0,38"]


def column_docs(columns, metric_labels: dict, *, economy_min_share: float = 0.05) -> dict:
    """``column -> (title, description)`` for the clusters layer.

    Parameters
    ----------
    columns : iterable of str
        The layer's columns.
    metric_labels : dict
        Metric name -> label (from the configuration).
    economy_min_share : float, default 0.05
        The run's ``[places] economy_min_share`` (fraction), quoted in the description
        of ``economies``.

    Returns
    -------
    dict
        Column -> ``(title, description)``; columns it does not know are left out.
    """
    docs = {}
    for c in columns:
        if c == "economies":
            docs[c] = ("Economies", f"ISO 3166-1 alpha-2 codes holding >= {100 * economy_min_share:g} % "
                                    "of the activity, heaviest first")
        elif c in _FIXED:
            docs[c] = _FIXED[c]
        elif c in metric_labels:
            docs[c] = (c, f"Count inside the boundary: {metric_labels[c]} (fractional)")
        elif c.startswith("share_") and c[6:] in metric_labels:
            docs[c] = (f"Share {c[6:]}", f"Percent of the world total of {c[6:]}")
        elif c.endswith("_per_million") and c[:-12] in metric_labels:
            docs[c] = (f"{c[:-12]} per million", f"{c[:-12]} per million inhabitants")
        elif c.startswith(("top_field_", "top_institution_")):
            kind, metric = c[4:].split("_", 1)
            docs[c] = (f"Top {kind} {metric}", f"The {kind} with the largest fractional count of {metric} "
                                               "in the cluster (all of them in profiles.csv)")
    return docs


def sites_table(sites: pd.DataFrame, *, outside: bool):
    """The ``sites`` layer as an Arrow table with WKB points (deterministic order).

    Points are encoded here, straight from the coordinate arrays: making a shapely point
    per site and converting them back to WKB was most of the layer's cost (100 k to 400 k
    sites).

    Parameters
    ----------
    sites : DataFrame
        A run's sites (``cluster_id``, ``metric``, ``weight``, ``metric_cluster``, ``core``,
        ``lat``, ``lon``).
    outside : bool
        Also keep the sites in no cluster (``cluster_id`` empty).

    Returns
    -------
    pyarrow.Table
        ``cluster_id, metric, weight, member, core, geometry`` (ISO WKB points, lon/lat
        in degrees) sorted by cluster (empty last), metric, latitude, longitude.
    """
    import pyarrow as pa

    keep = sites if outside else sites[sites["cluster_id"].notna()]
    cluster_id = keep["cluster_id"].astype(object).where(keep["cluster_id"].notna(), None).to_numpy()
    metric = keep["metric"].astype(str).to_numpy(dtype=object)
    lat, lon = keep["lat"].to_numpy(dtype=float), keep["lon"].to_numpy(dtype=float)
    ids, _ = pd.factorize(cluster_id, sort=True, use_na_sentinel=True)
    ids = np.where(ids < 0, ids.max(initial=0) + 1, ids)  # no cluster: last
    order = np.lexsort((lon, lat, pd.factorize(metric, sort=True)[0], ids))
    # Little-endian WKB Point: byte order 1, type 1, x, y (21 bytes each).
    wkb = np.empty(len(order), dtype=np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")]))
    wkb["order"], wkb["type"], wkb["x"], wkb["y"] = 1, 1, lon[order], lat[order]
    offsets = np.arange(0, 21 * (len(order) + 1), 21, dtype=np.int32)
    geometry = pa.Array.from_buffers(pa.binary(), len(order), [None, pa.py_buffer(offsets), pa.py_buffer(wkb)])
    member = (keep["metric_cluster"].to_numpy() >= 0) if "metric_cluster" in keep else np.zeros(len(keep), bool)
    core = keep["core"].to_numpy(dtype=bool) if "core" in keep else np.zeros(len(keep), bool)
    return pa.table({"cluster_id": pa.array(cluster_id[order], pa.string()),
                     "metric": pa.array(metric[order], pa.string()),
                     "weight": keep["weight"].to_numpy(dtype=float)[order],
                     "member": member[order], "core": core[order], "geometry": geometry})


def write_sites_layer(path: Path, sites: pd.DataFrame, *, outside: bool) -> None:
    """Add the ``sites`` layer (:func:`sites_table`) to the GeoPackage at ``path``.

    Parameters
    ----------
    path : pathlib.Path
        A GeoPackage (created when missing).
    sites : DataFrame
        A run's sites.
    outside : bool
        Also keep the sites in no cluster.

    Returns
    -------
    None
    """
    write_sites_table(path, sites_table(sites, outside=outside))


def write_sites_table(path: Path, table) -> None:
    """Add the ``sites`` layer, as :func:`sites_table` made it, to the GeoPackage at ``path``.

    GDAL writes it without holding Python's GIL when it can (see
    :mod:`cluster.outputs._gdal_nogil`: the same calls as ``pyogrio.write_arrow``, the same
    bytes), so that other threads write the other outputs meanwhile; else pyogrio writes it.

    Parameters
    ----------
    path : pathlib.Path
        A GeoPackage (created when missing).
    table : pyarrow.Table
        :func:`sites_table`'s result.

    Returns
    -------
    None
    """
    from cluster.outputs._gdal_nogil import add_layer

    layer = {"layer": "sites", "geometry_name": "geometry", "geometry_type": "Point", "crs": "EPSG:4326",
             "layer_metadata": {"DESCRIPTION": "Weighted sites of the clusters (innovation-clusters)"}}
    if not add_layer(table, path, **layer):
        import pyogrio

        pyogrio.write_arrow(table, path, driver="GPKG", VERSION=GPKG_VERSION, **layer)


def sites_frame(sites: pd.DataFrame, *, outside: bool):
    """The ``sites`` layer as a GeoDataFrame (:func:`sites_table`).

    Parameters
    ----------
    sites : DataFrame
        A run's sites.
    outside : bool
        Also keep the sites in no cluster (``cluster_id`` empty).

    Returns
    -------
    GeoDataFrame
        Points in EPSG:4326 sorted by cluster, metric, latitude, longitude.
    """
    import geopandas as gpd

    table = sites_table(sites, outside=outside)
    frame = table.drop_columns(["geometry"]).to_pandas(types_mapper={}.get)
    frame = frame.astype({"cluster_id": object, "metric": object})
    frame["cluster_id"] = frame["cluster_id"].where(frame["cluster_id"].notna(), None)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries.from_wkb(table["geometry"].to_numpy(zero_copy_only=False)),
                            crs="EPSG:4326")


def _range_breaks(scores: np.ndarray, n: int = 5) -> list[float]:
    """Quantile class breaks (unique, increasing), lowest to highest score."""
    scores = scores[np.isfinite(scores)]
    if len(scores) == 0:
        return [0.0, 1.0]
    qs = np.unique(np.round(np.quantile(scores, np.linspace(0, 1, n + 1)), 6))
    if len(qs) < 2:
        qs = np.array([qs[0], qs[0] + 1.0])
    qs[0], qs[-1] = min(qs[0], scores.min()), max(qs[-1], scores.max())
    return [float(q) for q in qs]


def _fill_symbol(name: str, colour: str) -> str:
    props = {"color": f"{colour},255", "outline_color": "60,60,60,255", "outline_style": "solid",
             "outline_width": "0.26", "outline_width_unit": "MM", "style": "solid", "joinstyle": "bevel"}
    option = "".join(f'<Option name="{k}" type="QString" value="{v}"/>' for k, v in props.items())
    prop = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (f'<symbol type="fill" name="{name}" alpha="0.75" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="0">'
            f'<Option type="Map">{option}</Option>{prop}</layer></symbol>')


def clusters_qml(scores: np.ndarray) -> str:
    """QGIS style of the clusters layer: graduated fill by ``score`` with ``name`` labels.

    Parameters
    ----------
    scores : ndarray
        The run's scores; classes are their quantiles (:func:`_range_breaks`).

    Returns
    -------
    str
        A QML document (QGIS 3.28 layout).
    """
    breaks = _range_breaks(np.asarray(scores, float))
    k = len(breaks) - 1
    colours = [_COLOURS[round(i * (len(_COLOURS) - 1) / max(k - 1, 1))] for i in range(k)]
    ranges = "".join(
        f'<range lower="{breaks[i]:.6f}" upper="{breaks[i + 1]:.6f}" symbol="{i}" render="true" '
        f'label="{breaks[i]:.2f} - {breaks[i + 1]:.2f}"/>' for i in range(k))
    symbols = "".join(_fill_symbol(str(i), colours[i]) for i in range(k))
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="Symbology|Labeling|Fields">\n'
        '<renderer-v2 type="graduatedSymbol" attr="score" graduatedMethod="GraduatedColor" '
        'symbollevels="0" enableorderby="0" forceraster="0" referencescale="-1">\n'
        f"<ranges>{ranges}</ranges>\n<symbols>{symbols}</symbols>\n"
        f'<source-symbol>{_fill_symbol("0", colours[-1])}</source-symbol>\n'
        '<classificationMethod id="Quantile"><symmetricMode enabled="0" symmetrypoint="0" astride="0"/>'
        '<labelFormat format="%1 - %2" trimtrailingzeroes="1" labelprecision="2"/></classificationMethod>\n'
        '<rotation/><sizescale/>\n</renderer-v2>\n'
        '<labeling type="simple"><settings calloutType="simple">'
        '<text-style fieldName="name" isExpression="0" fontSize="9" fontSizeUnit="Point" '
        'fontFamily="Sans Serif" textColor="20,20,20,255" textOpacity="1" namedStyle="Regular" '
        'fontWeight="50" fontItalic="0" fontUnderline="0" fontStrikeout="0" multilineHeight="1" '
        'capitalization="0" allowHtml="0">'
        '<text-buffer bufferDraw="1" bufferSize="1" bufferSizeUnits="MM" bufferColor="255,255,255,255" '
        'bufferOpacity="0.8" bufferJoinStyle="128" bufferNoFill="1" bufferBlendMode="0"/></text-style>'
        '<text-format wrapChar="" autoWrapLength="0" multilineAlign="3" plussign="0" decimals="3" '
        'formatNumbers="0" reverseDirectionSymbol="0" leftDirectionSymbol="&lt;" rightDirectionSymbol="&gt;" '
        'addDirectionSymbol="0" placeDirectionSymbol="0" useMaxLineLengthForAutoWrap="1"/>'
        '<placement placement="0" placementFlags="10" centroidWhole="1" centroidInside="1" fitInPolygonOnly="0" '
        'dist="0" distUnits="MM" priority="5" overrunDistance="0" overrunDistanceUnit="MM" '
        'quadOffset="4" xOffset="0" yOffset="0" offsetType="0" rotationAngle="0" repeatDistance="0" '
        'maxCurvedCharAngleIn="25" maxCurvedCharAngleOut="-25" preserveRotation="1" layerType="PolygonGeometry"/>'
        '<rendering drawLabels="1" obstacle="1" obstacleFactor="1" obstacleType="1" displayAll="0" '
        'upsidedownLabels="0" labelPerPart="0" mergeLines="0" minFeatureSize="0" limitNumLabels="0" '
        'maxNumLabels="2000" scaleVisibility="0" scaleMin="0" scaleMax="0" fontLimitPixelSize="0" '
        'fontMinPixelSize="3" fontMaxPixelSize="10000" zIndex="0" unplacedVisibility="0"/>'
        '</settings></labeling>\n'
        "<blendMode>0</blendMode><featureBlendMode>0</featureBlendMode>\n"
        "<layerGeometryType>2</layerGeometryType>\n</qgis>\n")


def clusters_sld(scores: np.ndarray) -> str:
    """The same classes as :func:`clusters_qml`, as an OGC SLD 1.1 document.

    Parameters
    ----------
    scores : ndarray
        The run's scores.

    Returns
    -------
    str
    """
    breaks = _range_breaks(np.asarray(scores, float))
    k = len(breaks) - 1
    colours = [_COLOURS[round(i * (len(_COLOURS) - 1) / max(k - 1, 1))] for i in range(k)]
    rules = []
    for i in range(k):
        hexc = "#" + "".join(f"{int(v):02x}" for v in colours[i].split(","))
        upper = ("ogc:PropertyIsLessThanOrEqualTo" if i == k - 1 else "ogc:PropertyIsLessThan")
        rules.append(
            f"<se:Rule><se:Name>{breaks[i]:.2f} - {breaks[i + 1]:.2f}</se:Name><ogc:Filter><ogc:And>"
            f"<ogc:PropertyIsGreaterThanOrEqualTo><ogc:PropertyName>score</ogc:PropertyName>"
            f"<ogc:Literal>{breaks[i]:.6f}</ogc:Literal></ogc:PropertyIsGreaterThanOrEqualTo>"
            f"<{upper}><ogc:PropertyName>score</ogc:PropertyName><ogc:Literal>{breaks[i + 1]:.6f}"
            f"</ogc:Literal></{upper}></ogc:And></ogc:Filter><se:PolygonSymbolizer><se:Fill>"
            f'<se:SvgParameter name="fill">{hexc}</se:SvgParameter></se:Fill><se:Stroke>'
            f'<se:SvgParameter name="stroke">#3c3c3c</se:SvgParameter></se:Stroke>'
            f"</se:PolygonSymbolizer></se:Rule>")
    label = ("<se:Rule><se:TextSymbolizer><se:Label><ogc:PropertyName>name</ogc:PropertyName></se:Label>"
             "</se:TextSymbolizer></se:Rule>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<StyledLayerDescriptor version="1.1.0" '
            'xmlns="http://www.opengis.net/sld" xmlns:ogc="http://www.opengis.net/ogc" '
            'xmlns:se="http://www.opengis.net/se">'
            "<NamedLayer><se:Name>clusters</se:Name><UserStyle><se:Name>clusters</se:Name>"
            f"<se:FeatureTypeStyle>{''.join(rules)}{label}</se:FeatureTypeStyle></UserStyle></NamedLayer>"
            "</StyledLayerDescriptor>\n")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _register_attributes(con, table: str, description: str) -> None:
    con.execute("DELETE FROM gpkg_contents WHERE table_name = ?", (table,))
    con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
                "VALUES (?, 'attributes', ?, ?, ?)", (table, table, description, _now()))


def finish_geopackage(path: Path, *, clusters: pd.DataFrame, metric_labels: dict, info: dict,
                      default_json, economy_min_share: float = 0.05) -> None:
    """Add field docs, the default QGIS style and ``run_info`` to a written GeoPackage.

    Parameters
    ----------
    path : pathlib.Path
        The GeoPackage, with layers ``clusters`` (and ``sites``) already written.
    clusters : DataFrame
        The clusters layer's table (columns to describe, scores to classify).
    metric_labels : dict
        Metric name -> label.
    info : dict
        What ``run.json`` holds (one ``run_info`` row per key, values as JSON).
    default_json : callable
        ``json.dumps`` fallback for the values.
    economy_min_share : float, default 0.05
        The run's ``[places] economy_min_share``, quoted in the field description.

    Returns
    -------
    None
    """
    con = sqlite3.connect(path)
    try:
        # No fsync at commit: no byte changes, and no other output waits for the disk either
        # (the file is in the run's temporary folder until every output is written).
        con.execute("PRAGMA synchronous = OFF")
        with con:
            # Schema extension: gpkg_data_columns (+ its constraints table, required with it).
            con.execute("CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, "
                        "column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, "
                        "constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), "
                        "CONSTRAINT gdc_tn UNIQUE (table_name, name))")
            con.execute("CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL, "
                        "constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, "
                        "max NUMERIC, max_is_inclusive BOOLEAN, description TEXT, "
                        "CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))")
            for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
                con.execute("DELETE FROM gpkg_extensions WHERE table_name = ? AND extension_name = 'gpkg_schema'",
                            (table,))
                con.execute("INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, "
                            "scope) VALUES (?, NULL, 'gpkg_schema', "
                            "'http://www.geopackage.org/spec121/#extension_schema', 'read-write')", (table,))
            docs = {"clusters": column_docs(clusters.columns, metric_labels, economy_min_share=economy_min_share),
                    "sites": _SITES}
            for table, cols in docs.items():
                present = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
                for col, (title, desc) in cols.items():
                    if col in present:
                        con.execute("INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, "
                                    "title, description) VALUES (?, ?, ?, ?, ?)",
                                    (table, col, f"{table}.{col}", title, desc))

            # QGIS's own layer_styles table, same columns and types as QGIS creates it.
            con.execute("CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
                        "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
                        "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
                        "update_time DATETIME DEFAULT CURRENT_TIMESTAMP)")
            geom_col = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = 'clusters'"
                                   ).fetchone()[0]
            scores = clusters["score"].to_numpy(dtype=float)
            con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                        "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, ui, "
                        "update_time) VALUES ('', '', 'clusters', ?, 'clusters by score', ?, ?, 1, ?, '', NULL, ?)",
                        (geom_col, clusters_qml(scores), clusters_sld(scores),
                         "Graduated by score (quantile classes), labelled with name (innovation-clusters)",
                         _now()))
            _register_attributes(con, "layer_styles", "QGIS layer styles")

            con.execute("CREATE TABLE IF NOT EXISTS run_info (key TEXT PRIMARY KEY NOT NULL, value TEXT)")
            for key, value in info.items():
                con.execute("INSERT OR REPLACE INTO run_info (key, value) VALUES (?, ?)",
                            (key, json.dumps(value, default=default_json, ensure_ascii=False, sort_keys=True)))
            _register_attributes(con, "run_info", "Run parameters, counts and versions (values are JSON)")
    finally:
        con.close()
