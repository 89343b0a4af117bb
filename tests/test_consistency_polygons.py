"""Metro polygons as the reference of the consistency diagnostic (issue 24, item 2).

Synthetic polygons only (no CBSA or FUA file ships): a cluster with a material share
(>= 10 % of clustered activity) of two metros merges them; a metro whose clustered
activity is divided among several clusters with material shares is split.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from cluster.cli import main
from cluster.errors import UserInputError
from cluster.tuning.consistency import consistency_table, load_reference, polygon_errors


def _metros(tmp_path, name="metros.gpkg", column="NAME"):
    """Three square metros (about 22 km a side) along the equator, one of two parts."""
    gdf = gpd.GeoDataFrame({column: ["West", "East", "Far", "Far"]},
                           geometry=[box(-0.1, -0.1, 0.1, 0.1), box(0.4, -0.1, 0.6, 0.1),
                                     box(4.9, -0.1, 5.1, 0.1), box(5.2, -0.1, 5.4, 0.1)], crs=4326)
    path = tmp_path / name
    gdf.to_file(path)
    return path


def test_polygon_reference_loads_and_joins_parts(tmp_path):
    ref = load_reference(_metros(tmp_path))
    assert list(ref["name"]) == ["West", "East", "Far"]  # the two "Far" polygons are one metro
    assert ref.crs.to_epsg() == 4326
    assert ref.geometry.iloc[2].geom_type == "MultiPolygon"


def test_polygon_merge_split_and_missing():
    ref = gpd.GeoDataFrame({"name": ["West", "East", "Mid", "Empty"]},
                           geometry=[box(-0.1, -0.1, 0.1, 0.1), box(0.4, -0.1, 0.6, 0.1),
                                     box(1.9, -0.1, 2.1, 0.1), box(8, 8, 9, 9)], crs=4326)
    sites = pd.DataFrame({"lon": [0.0, 0.05, 0.5, 2.0, 2.05, 2.08, 3.0],
                          "lat": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]})
    weight = np.array([10.0, 5.0, 8.0, 6.0, 4.0, 0.5, 9.0])
    # Cluster 0 holds West and East (merged); Mid is 6 / 4 between clusters 1 and 2
    # (split), plus 0.5 of 10.5 (< 10 %) in cluster 3, which does not count.
    inside = np.array([0, 0, 0, 1, 2, 3, 4])
    res = polygon_errors(ref, sites, inside, weight)
    assert res["merged"] == ["West / East"]
    assert res["split"] == ["Mid (2 clusters: 57% / 38%)"] and res["n_split"] == 1
    assert res["missing"] == ["Empty"] and res["errors"] == 2
    # One cluster per metro: no error.
    assert polygon_errors(ref, sites, np.array([0, 0, 1, 2, 2, 2, 3]), weight)["errors"] == 0
    # Three material clusters in a metro are three pairs of parts.
    thirds = polygon_errors(ref, sites, np.array([0, 1, 2, 3, 4, 5, 6]), np.array([1, 1, 1, 1, 1, 1, 1.0]))
    assert thirds["n_split"] == 1 + 3 and thirds["n_merged"] == 0


def test_consistency_table_takes_polygons():
    from cluster.stages.membership import Membership

    ref = gpd.GeoDataFrame({"name": ["West", "East"]},
                           geometry=[box(-0.1, -0.1, 0.1, 0.1), box(0.4, -0.1, 0.6, 0.1)], crs=4326)
    sites = pd.DataFrame({"lon": [0.0, 0.5], "lat": [0.0, 0.0], "weight": [1.0, 1.0]})

    def mem(inside):
        inside = np.array(inside)
        return Membership(component=inside, inside=inside, ranking=pd.DataFrame(), rank=np.zeros(2, int),
                          top=np.zeros(2, bool), thresholds={})

    table = consistency_table(sites, {("dbscan", 5.0, 1.0): mem([0, 1]), ("dbscan", 100.0, 1.0): mem([0, 0])}, ref)
    assert table["n_merged"].tolist() == [0, 1] and table["merged"].tolist() == ["", "West / East"]
    assert table["best"].tolist() == [True, False]


def test_sweep_with_polygon_reference(tmp_path):
    """End to end: `cluster sweep --reference metros.geojson`; two towns 56 km apart are one
    cluster at 100 km (merged) and two at 10 km (the setting with fewest errors)."""
    rng = np.random.default_rng(3)
    rows = [(round(la + d1, 4), round(lo + d2, 4), int(rng.integers(5, 50)))
            for la, lo in ((0.0, 0.0), (0.0, 0.5)) for d1, d2 in rng.normal(0, 0.01, (40, 2))]
    rows += [(0.0, 0.25, 30)]  # a bridge, so 100 km joins them
    data = tmp_path / "inventors.csv"
    pd.DataFrame(rows, columns=["lat", "lon", "n_inventors"]).to_csv(data, index=False)
    ref = _metros(tmp_path, "metros.geojson", column="metro")
    out = tmp_path / "sweep"
    assert main(["-q", "sweep", "--input", str(data), "--map", "weight=n_inventors", "--metric", "patents",
                 "--min-share", "patents=5%", "--eps-km", "10,100", "--reference", str(ref),
                 "--reference-column", "metro", "--out", str(out)]) == 0
    table = pd.read_csv(out / "consistency.csv", keep_default_na=False)
    assert table["n_merged"].tolist() == [0, 1] and table["merged"].tolist() == ["", "West / East"]
    assert table["missing"].tolist() == ["Far", "Far"] and table["best"].tolist() == [True, False]
    assert (out / "consistency.png").exists()
    info = json.loads((out / "run.json").read_text())
    assert info["reference"] == str(ref) and info["reference_column"] == "metro"


def test_bad_polygon_files_name_file_column_and_fix(tmp_path):
    # Points are not metros.
    pts = tmp_path / "points.gpkg"
    gpd.GeoDataFrame({"name": ["A"]}, geometry=[Point(0, 0)], crs=4326).to_file(pts)
    with pytest.raises(UserInputError, match=r"points.gpkg: feature 1 \(A\).*Point, not a polygon"):
        load_reference(pts)
    # No name column the loader knows: the fix is --reference-column.
    anon = tmp_path / "anon.geojson"
    gpd.GeoDataFrame({"code": ["12580"]}, geometry=[box(0, 0, 1, 1)], crs=4326).to_file(anon)
    with pytest.raises(UserInputError, match=r"anon.geojson: no name column .*--reference-column.*code"):
        load_reference(anon)
    assert list(load_reference(anon, name_column="code")["name"]) == ["12580"]
    with pytest.raises(UserInputError, match=r"column 'NAME' not found .*columns: code"):
        load_reference(anon, name_column="NAME")
    # An empty name.
    blank = tmp_path / "blank.geojson"
    gpd.GeoDataFrame({"name": ["A", ""]}, geometry=[box(0, 0, 1, 1), box(2, 2, 3, 3)], crs=4326).to_file(blank)
    with pytest.raises(UserInputError, match=r"feature 2, column name: empty name"):
        load_reference(blank)
    # Not a polygon file at all.
    junk = tmp_path / "junk.gpkg"
    junk.write_text("name,lat,lon,group\n")
    with pytest.raises(UserInputError, match=r"junk.gpkg: cannot read it as metro polygons"):
        load_reference(junk)
    # The CLI: exit 2 with the message.
    assert main(["-q", "sweep", "--eps-km", "10", "--reference", str(junk), "--out", str(tmp_path / "o")]) == 2
    # --reference-column without a polygon file.
    with pytest.raises(UserInputError, match="polygon"):
        load_reference(None, name_column="NAME")


def test_builtin_reference_says_what_is_verified():
    """Every row of the built-in GII reference says whether a local source supports it
    (/work/shared/reference/, /work/shared/seeds/) and which; the rows typed from memory
    are flagged, not passed off as the GII's."""
    ref = load_reference()
    assert set(ref["verified"]) == {"yes", "no"}
    assert ref["source"].str.startswith("verified:").eq(ref["verified"] == "yes").all()
    assert ref["source"][ref["verified"] == "no"].str.startswith("UNVERIFIED").all()
    flagged = set(ref["group"][ref["verified"] == "no"])
    assert {"Washington DC–Baltimore", "Stuttgart", "Basel"} <= flagged
    assert ref.set_index("name").loc["Jerusalem", "verified"] == "yes"  # GII 2025: Tel Aviv–Jerusalem (19th)


def test_zipped_shapefile_in_another_crs(tmp_path):
    """Census cartographic boundary files come as zipped Shapefiles (NAD83, name column
    NAME): read as they come and brought to longitude/latitude."""
    import zipfile

    gdf = gpd.GeoDataFrame({"NAME": ["Metro A", "Metro B"]},
                           geometry=[box(-77.5, 38.5, -76.8, 39.2), box(-76.9, 39.1, -76.3, 39.7)], crs=4326)
    gdf.to_crs(3857).to_file(tmp_path / "cb_test_cbsa.shp")
    path = tmp_path / "cb_test_cbsa.zip"
    with zipfile.ZipFile(path, "w") as z:
        for part in sorted(tmp_path.glob("cb_test_cbsa.*")):
            if part != path:
                z.write(part, part.name)
    ref = load_reference(path)
    assert list(ref["name"]) == ["Metro A", "Metro B"] and ref.crs.to_epsg() == 4326
    assert np.allclose(ref.total_bounds, [-77.5, 38.5, -76.3, 39.7], atol=1e-6)
