"""GIS-grade outputs, checked with the libraries and with real clients (GDAL's ogrinfo,
headless Chromium): GeoPackage layers, style, field docs and run info; GeoParquet 1.1
metadata; RFC 7946 GeoJSON; the offline map.html (more of it in test_webmap.py)."""

import json
import re
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from helpers import make_records, offsets_km

from cluster.cli import main
from cluster.outputs.gpkg import sites_frame
from cluster.outputs.webmap import write_map_html


def _world():
    """Munich (patents), Basel/Lörrach (patents + publications, cross-border), Fiji across
    the antimeridian (VC), plus scattered noise."""
    rng = np.random.default_rng(1)
    munich = make_records([offsets_km(48.137, 11.575, *rng.uniform(-5, 5, 2)) for _ in range(15)], "patents",
                          per_site=1, doc_prefix="m")
    basel = make_records([(47.5596, 7.5886, "CH"), (47.5650, 7.6000, "CH")], "patents", per_site=6,
                         doc_prefix="b")
    lorrach = make_records([(47.6156, 7.6611, "DE"), (47.6100, 7.6500, "DE")], "publications", per_site=6,
                           doc_prefix="l")
    fiji = make_records([(-16.80, 179.98), (-16.82, -179.97), (-16.79, 179.99)], "vc", per_site=3,
                        doc_prefix="f")
    noise = make_records([(rng.uniform(-50, 60), rng.uniform(-170, 170)) for _ in range(20)], "publications",
                         per_site=1, doc_prefix="n")
    return pd.concat([munich, basel, lorrach, fiji, noise], ignore_index=True)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    d = tmp_path_factory.mktemp("gis")
    _world().to_csv(d / "records.csv", index=False)
    (d / "c.toml").write_text("[metrics.patents]\nmin_weight = 3\n[metrics.publications]\nmin_weight = 3\n"
                              "[metrics.vc]\nmin_weight = 3\n")
    assert main(["-q", "run", "--input", str(d / "records.csv"), "--config", str(d / "c.toml"),
                 "--out", str(d / "out"), "--geojson"]) == 0
    return d / "out"


def test_geopackage_layers_and_sites(out):
    layers = dict(pyogrio.list_layers(out / "clusters.gpkg"))
    assert layers["clusters"] == "MultiPolygon" and layers["sites"] == "Point"
    assert {"layer_styles", "run_info"} <= set(layers)
    import geopandas as gpd

    clusters = gpd.read_file(out / "clusters.gpkg", layer="clusters")
    sites = gpd.read_file(out / "clusters.gpkg", layer="sites")
    assert sites.crs.to_epsg() == 4326
    assert list(sites.columns) == ["cluster_id", "metric", "weight", "member", "core", "geometry"]
    assert set(sites["cluster_id"]) == set(clusters["cluster_id"])
    # Every site lies in its cluster's boundary, and the weights add up to the counts.
    poly = clusters.set_index("cluster_id").geometry
    assert all(poly[c].covers(p) for c, p in zip(sites["cluster_id"], sites.geometry))
    totals = sites.pivot_table(index="cluster_id", columns="metric", values="weight", aggfunc="sum").fillna(0)
    for m in totals.columns:
        np.testing.assert_allclose(totals[m], clusters.set_index("cluster_id").loc[totals.index, m])
    assert sites["core"].any() and sites["member"].any()
    assert not (sites["core"] & ~sites["member"]).any()  # a core site is a member


def test_geopackage_version_and_integer_fields(out):
    con = sqlite3.connect(out / "clusters.gpkg")
    try:
        # 1.2 (0x00002710 + 200): read without a warning by GDAL 2.2+, not 1.4 (GDAL 3.7+ only)
        assert con.execute("PRAGMA user_version").fetchone()[0] == 10200
        assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        columns = {r[1]: r[2] for r in con.execute("PRAGMA table_info(clusters)")}
    finally:
        con.close()
    for c in ("rank", "intensity_rank", "population", "n_sites"):
        assert columns[c] == "INTEGER", (c, columns[c])
    table = pd.read_csv(out / "ranking.csv")
    back = pyogrio.read_dataframe(out / "clusters.gpkg", layer="clusters", use_arrow=True)
    assert str(back["intensity_rank"].dtype) in ("int64", "Int64") or back["intensity_rank"].isna().any()
    assert back["intensity_rank"].notna().sum() == table["intensity_rank"].notna().sum()


def test_geopackage_style_docs_and_run_info(out):
    con = sqlite3.connect(out / "clusters.gpkg")
    try:
        rows = con.execute("SELECT f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
                           "styleQML, styleSLD, useAsDefault, description, owner, ui, update_time "
                           "FROM layer_styles").fetchall()
        assert len(rows) == 1
        row = rows[0]
        assert row[2] == "clusters" and row[3] == "geom" and row[7] == 1
        qml = ET.fromstring(row[5].split("\n", 1)[1])  # after the DOCTYPE line
        renderer = qml.find("renderer-v2")
        assert renderer.get("type") == "graduatedSymbol" and renderer.get("attr") == "score"
        assert len(renderer.findall("ranges/range")) >= 1
        assert qml.find("labeling").get("type") == "simple"
        assert qml.find("labeling/settings/text-style").get("fieldName") == "name"
        ET.fromstring(row[6])  # the SLD is well-formed
        docs = dict(((t, c), (ti, de)) for t, c, ti, de in
                    con.execute("SELECT table_name, column_name, title, description FROM gpkg_data_columns"))
        assert docs[("clusters", "score")][0] == "Score" and "share" in docs[("clusters", "score")][1]
        assert ("clusters", "share_vc") in docs and ("sites", "core") in docs
        ext = {r[0] for r in con.execute("SELECT table_name FROM gpkg_extensions "
                                         "WHERE extension_name = 'gpkg_schema'")}
        assert ext == {"gpkg_data_columns", "gpkg_data_column_constraints"}
        contents = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
        assert contents == {"clusters": "features", "sites": "features", "layer_styles": "attributes",
                            "run_info": "attributes"}
        info = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM run_info")}
    finally:
        con.close()
    run = json.loads((out / "run.json").read_text())
    assert info["config"] == run["config"] and info["counts"] == run["counts"]


def test_sites_outside_flag():
    sites = pd.DataFrame({"metric": pd.Categorical(["patents", "vc", "patents"]), "lat": [1.0, 2.0, 3.0],
                          "lon": [1.0, 2.0, 3.0], "weight": [1.0, 2.0, 3.0], "metric_cluster": [0, -1, -1],
                          "core": [True, False, False], "cluster_id": ["gA", "gA", None]})
    assert len(sites_frame(sites, outside=False)) == 2
    every = sites_frame(sites, outside=True)
    assert len(every) == 3 and every["cluster_id"].isna().sum() == 1
    assert every["member"].tolist() == [True, False, False]


def test_geoparquet_1_1_metadata(out):
    import pyarrow.parquet as pq

    schema = pq.read_schema(out / "clusters.parquet")
    geo = json.loads(schema.metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    col = geo["columns"]["geometry"]
    assert col["crs"]["id"] == {"authority": "EPSG", "code": 4326}
    assert col["covering"] == {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}
    assert "bbox" in schema.names and len(col["bbox"]) == 4
    table = pq.read_table(out / "clusters.parquet", columns=["bbox"]).column("bbox").to_pylist()
    assert all(b["xmin"] <= b["xmax"] and b["ymin"] <= b["ymax"] for b in table)


def _rings(geom):
    polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
    return polys


def test_geojson_is_rfc7946(out):
    doc = json.loads((out / "clusters.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    ranking = pd.read_csv(out / "ranking.csv")
    assert [f["properties"]["cluster_id"] for f in doc["features"]] == ranking["cluster_id"].tolist()
    split = 0
    for f in doc["features"]:
        g = f["geometry"]
        assert g["type"] in ("Polygon", "MultiPolygon")
        shape = shapely.geometry.shape(g)
        assert shape.is_valid
        for poly in _rings(g):
            ext = np.asarray(poly[0])
            assert shapely.LinearRing(ext).is_ccw  # exterior counter-clockwise
            assert all(not shapely.LinearRing(np.asarray(h)).is_ccw for h in poly[1:])  # holes clockwise
            assert (np.abs(ext[:, 0]) <= 180).all() and (np.abs(ext[:, 1]) <= 90).all()
            assert np.allclose(ext, np.round(ext, 6), rtol=0, atol=1e-12)  # 6 decimals
        if g["type"] == "MultiPolygon" and shape.bounds[0] == -180 and shape.bounds[2] == 180:
            split += 1
            assert all(p.bounds[2] - p.bounds[0] < 1 for p in shape.geoms)
    assert split == 1  # Fiji, split at the antimeridian
    # lon/lat order: one polygon is around Munich (lon 11.6, lat 48.1)
    pts = [shapely.geometry.shape(f["geometry"]).representative_point() for f in doc["features"]]
    assert any(abs(p.x - 11.57) < 0.2 and abs(p.y - 48.14) < 0.2 for p in pts)


# ---- real clients ---------------------------------------------------------------------------

def _ogrinfo(*args):
    exe = shutil.which("ogrinfo")
    if exe is None:
        pytest.skip("ogrinfo (Debian gdal-bin) is not installed; .ci/run installs it")
    res = subprocess.run([exe, "-ro", *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # GDAL before 3.7 warns "may only be partially supported" on a version-1.4 GeoPackage
    assert "Warning" not in res.stderr, res.stderr
    return res.stdout


@pytest.mark.slow
def test_ogrinfo_reads_the_geopackage(out):
    gpkg = str(out / "clusters.gpkg")
    listing = _ogrinfo(gpkg)
    for layer in ("clusters (Multi Polygon)", "sites (Point)", "layer_styles", "run_info"):
        assert layer in listing
    n = len(pd.read_csv(out / "ranking.csv"))
    summary = _ogrinfo("-so", gpkg, "clusters")
    assert f"Feature Count: {n}" in summary and 'ID["EPSG",4326]' in summary
    sites = _ogrinfo("-so", gpkg, "sites")
    assert 'ID["EPSG",4326]' in sites and re.search(r"Feature Count: [1-9]", sites)
    valid = _ogrinfo("-q", gpkg, "-dialect", "SQLite", "-sql",
                     "SELECT COUNT(*) AS n, SUM(ST_IsValid(geom)) AS valid, "
                     "SUM(ST_GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON')) AS polys FROM clusters")
    assert f"n (Integer) = {n}" in valid
    assert f"valid (Integer) = {n}" in valid and f"polys (Integer) = {n}" in valid
    style = _ogrinfo("-q", gpkg, "-sql", "SELECT f_table_name, useAsDefault FROM layer_styles")
    assert "f_table_name (String) = clusters" in style


def _chromium(*args, url):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed; .ci/run installs it")
    res = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--virtual-time-budget=5000", *args, url],
                         capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.mark.slow
def test_map_html_in_headless_chromium(out, tmp_path):
    ranking = pd.read_csv(out / "ranking.csv")
    first = ranking.iloc[0]
    url = (out / "map.html").as_uri() + f"#cluster={first['cluster_id']}"
    dom = _chromium(f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url=url)
    # Leaflet drew every cluster (polygon and bubble, as SVG paths) in the score layer, over
    # the Natural Earth land and borders.
    ids = re.findall(r'<path class="cluster[^"]*"[^>]*data-id="([^"]+)"', dom)
    assert set(ids) == set(ranking["cluster_id"])
    assert re.search(r'<path class="basemap-land', dom) and re.search(r'<path class="basemap-border', dom)
    # One radio button per view: score, 3 metrics, intensity.
    assert len(re.findall(r'<input type="radio" class="leaflet-control-layers-selector"[^>]*data-layer="', dom)) == 5
    assert re.search(r'<input type="radio"[^>]*data-layer="vc"', dom)
    # The popup of the linked cluster is open with its details.
    assert re.search(r'<div class="leaflet-popup ', dom)
    title = re.search(r'<h2 class="popup-title">([^<]*)</h2>', dom).group(1)
    assert title == f"1. {first['name']}"
    assert "Population" in dom and "Intensity rank" in dom
    shot = tmp_path / "map.png"
    _chromium(f"--user-data-dir={tmp_path / 'profile2'}", "--window-size=1000,600", f"--screenshot={shot}",
              url=url)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert img.shape[:2] == (600, 1000) and img.std() > 10  # not blank
    # Cluster colours (the yellow-red ramp) are on the screen, not just the background.
    r, b = img[..., 0], img[..., 2]
    assert ((r > 180) & (b < 120)).sum() > 50


@pytest.mark.slow
def test_map_html_escapes_names(out, tmp_path):
    import geopandas as gpd

    clusters = gpd.read_parquet(out / "clusters.parquet")
    evil = '</script><img src=x onerror="document.title=1">&amp; "Q" <b>'
    clusters.loc[clusters.index[0], "name"] = evil
    page = tmp_path / "map.html"
    write_map_html(page, clusters, ["patents", "publications", "vc"], {}, notice="<i>demo</i>")
    text = page.read_text()
    assert "<img" not in text and "<b>" not in text and "<i>demo" not in text
    dom = _chromium(f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                    url=page.as_uri() + f"#cluster={clusters['cluster_id'].iloc[0]}")
    assert "<img" not in dom and "<b>" not in dom
    title = re.search(r'<h2 class="popup-title">([^<]*)</h2>', dom).group(1)
    assert title.startswith("1. &lt;/script&gt;&lt;img src=x")
    assert "&amp;amp;" in title
