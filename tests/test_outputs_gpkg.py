"""Unit tests of the GeoPackage writer's pure functions (cluster.outputs.gpkg)."""

import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from cluster.outputs.gpkg import _range_breaks, clusters_qml, clusters_sld, column_docs, sites_frame


def test_economies_description_quotes_the_configured_share():
    docs = column_docs(["rank", "economies", "patents", "share_patents", "patents_per_million"],
                       {"patents": "Patent applications"}, economy_min_share=0.1)
    assert docs["economies"][1].startswith("ISO 3166-1 alpha-2 codes holding >= 10 % ")
    assert "Patent applications" in docs["patents"][1]
    assert docs["share_patents"][0] == "Share patents"
    assert docs["patents_per_million"][0] == "patents per million"
    assert column_docs(["economies"], {})["economies"][1].startswith("ISO 3166-1 alpha-2 codes holding >= 5 % ")


def test_unknown_columns_get_no_description():
    assert column_docs(["some_user_column"], {"patents": "P"}) == {}


def test_range_breaks_cover_every_score_in_increasing_classes():
    scores = np.array([0.1, 0.2, 0.2, 0.5, 3.0, 7.5, np.nan])
    breaks = _range_breaks(scores)
    assert breaks == sorted(set(breaks)) and len(breaks) >= 2
    assert breaks[0] <= 0.1 and breaks[-1] >= 7.5
    assert _range_breaks(np.array([2.0, 2.0])) == [2.0, 3.0]  # one value: one class of width 1
    assert _range_breaks(np.array([np.nan])) == [0.0, 1.0]


def test_qml_and_sld_are_xml_with_one_class_per_range():
    scores = np.linspace(0, 10, 50)
    breaks = _range_breaks(scores)
    qml = ET.fromstring(clusters_qml(scores).split("\n", 1)[1])  # after the DOCTYPE line
    ranges = qml.findall("./renderer-v2/ranges/range")
    assert len(ranges) == len(breaks) - 1
    assert float(ranges[0].get("lower")) == breaks[0] and float(ranges[-1].get("upper")) == breaks[-1]
    assert qml.find("./renderer-v2").get("attr") == "score"
    sld = ET.fromstring(clusters_sld(scores))
    rules = sld.findall(".//{http://www.opengis.net/se}Rule")
    assert len(rules) == len(breaks) - 1 + 1  # the classes and the label rule


def test_sites_layer_keeps_cluster_sites_in_a_fixed_order():
    sites = pd.DataFrame({
        "metric": ["vc", "patents", "patents", "vc"], "lat": [1.0, 2.0, 1.0, 5.0], "lon": [1.0, 2.0, 1.0, 5.0],
        "weight": [1.0, 2.0, 3.0, 4.0], "metric_cluster": [0, 1, 1, -1], "core": [True, False, True, False],
        "cluster_id": ["gB", "gA", "gA", None],
    })
    inside = sites_frame(sites, outside=False)
    assert list(inside["cluster_id"]) == ["gA", "gA", "gB"]
    assert list(inside["weight"]) == [3.0, 2.0, 1.0]  # within a cluster: metric, lat, lon
    assert list(inside["member"]) == [True, True, True] and inside.crs.to_epsg() == 4326
    everything = sites_frame(sites, outside=True)
    assert len(everything) == 4 and everything["cluster_id"].iloc[-1] is None
    assert not everything["member"].iloc[-1]


def _masked(path) -> bytes:
    """A GeoPackage's bytes with what varies between two writes of the same data blanked:
    its timestamps (gpkg_contents.last_change, layer_styles.update_time) and SQLite's file
    change counter (header bytes 24-27, copied at 92-95), which GDAL's R-tree thread leaves
    at 17 or 18 transactions as timing goes (pyogrio's writes alike)."""
    import re

    data = bytearray(re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", lambda m: b"X" * len(m.group()),
                            path.read_bytes()))
    data[24:28] = data[92:96] = b"\0\0\0\0"
    return bytes(data)


def _sites(n: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({
        "metric": rng.choice(["patents", "publications", "vc"], n), "lat": rng.uniform(-60, 70, n),
        "lon": rng.uniform(-180, 180, n), "weight": rng.random(n) * 10, "metric_cluster": rng.integers(-1, 4, n),
        "core": rng.random(n) < 0.3,
        "cluster_id": pd.array(rng.choice(["gA", "gB, \"q\"", "gü", None], n), dtype=object),
    })


@pytest.mark.parametrize("outside, empty", [(False, False), (True, False), (False, True)])
def test_sites_layer_without_the_gil_has_pyogrio_bytes(tmp_path, outside, empty):
    """cluster.outputs._gdal_nogil makes pyogrio.write_arrow's GDAL calls itself: the same file."""
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import box

    from cluster.outputs._gdal_nogil import _library
    from cluster.outputs.gpkg import GPKG_VERSION, sites_table, write_sites_layer

    if sys.platform.startswith("linux"):
        assert _library() is not None  # the GIL-free path is the one taken here
    sites = _sites()
    if empty:  # no site in a cluster: an empty layer
        sites["cluster_id"] = None
    files = []
    for name in ("ours", "pyogrio"):
        path = tmp_path / f"{name}.gpkg"
        gpd.GeoDataFrame({"name": ["a"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(
            path, layer="clusters", driver="GPKG", engine="pyogrio", VERSION=GPKG_VERSION)
        if name == "ours":
            write_sites_layer(path, sites, outside=outside)
        else:
            pyogrio.write_arrow(sites_table(sites, outside=outside), path, layer="sites", driver="GPKG",
                                geometry_name="geometry", geometry_type="Point", crs="EPSG:4326",
                                layer_metadata={"DESCRIPTION": "Weighted sites of the clusters (innovation-clusters)"},
                                VERSION=GPKG_VERSION)
        files.append(path)
    assert _masked(files[0]) == _masked(files[1])
    back = pyogrio.read_dataframe(files[0], layer="sites")
    assert len(back) == len(sites_table(sites, outside=outside)) and back.crs.to_epsg() == 4326


def test_sites_layer_is_written_by_pyogrio_where_the_gil_free_path_cannot(tmp_path, monkeypatch):
    import pyogrio

    import cluster.outputs._gdal_nogil as nogil
    from cluster.outputs.gpkg import write_sites_layer

    monkeypatch.setattr(nogil, "_gdal", [None])  # no GDAL library found
    write_sites_layer(tmp_path / "new.gpkg", _sites(50), outside=True)  # created by pyogrio
    assert len(pyogrio.read_dataframe(tmp_path / "new.gpkg", layer="sites")) == 50


@pytest.mark.filterwarnings("ignore:GPKG. bad application_id")
def test_a_file_gdal_cannot_open_is_left_to_pyogrio(tmp_path):
    """pyogrio replaces a file it cannot open by a new GeoPackage; so does the GIL-free path."""
    import pyogrio

    from cluster.outputs.gpkg import write_sites_layer

    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    write_sites_layer(bad, _sites(10), outside=True)
    assert pyogrio.list_layers(bad)[:, 0].tolist() == ["sites"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps")
def test_pyogrios_gdal_is_found_beside_rasterios():
    """rasterio's wheel loads a GDAL of its own: the GIL-free path still finds pyogrio's
    (it found two libraries and fell back to pyogrio, for the rest of the process)."""
    pytest.importorskip("rasterio")
    from pathlib import Path

    import pyogrio

    from cluster.outputs._gdal_nogil import _loaded_gdal_path

    libs = Path(pyogrio.__file__).resolve().parent.parent / "pyogrio.libs"
    if not libs.is_dir():
        pytest.skip("pyogrio built against a GDAL outside its wheel")
    path = _loaded_gdal_path()
    assert path is not None and path.startswith(f"{libs}/")
