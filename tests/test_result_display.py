"""A run's result where people look at it: repr, Jupyter's rich display, the map in the
notebook, the sites as points, and ``cluster.run(columns=..., metric=...)`` as ``--map``/``--metric``."""

import dataclasses
import pickle

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from helpers import make_records, offsets_km

import cluster
from cluster.cli import main

THRESHOLDS = {"patents": 10.0, "publications": 10.0, "vc": 10.0}


def _records():
    pts = [(*offsets_km(48.14, 11.58, dx, dy), "DE") for dx, dy in [(0, 0), (1, 0), (0, 1), (1, 1)]]
    pts += [(*offsets_km(45.76, 4.84, dx, dy), "FR") for dx, dy in [(0, 0), (2, 0), (0, 2), (2, 2)]]
    pts += [(10.0, 10.0, "NG")]
    return make_records(pts, per_site=5)


@pytest.fixture(scope="module")
def res():
    return cluster.run(_records(), min_weight=THRESHOLDS, top_n=1)


def test_repr_is_one_short_line(res):
    text = repr(res)
    assert "\n" not in text and len(text) < 300, text
    assert text.startswith("<RunResult: 2 clusters (1 top) from ") and "eps_km=10" in text


def test_rich_display_shows_parameters_counts_warnings_and_the_top_table(res):
    page = res._repr_html_()
    assert "eps_km" in page and "10 km" in page and "threshold patents" in page
    assert "2 (1 top, 1 emerging)" in page
    first = res.clusters["name"].iloc[0]
    assert f"<td>{first}</td>" in page and page.count("<tr>") >= 2 + 6
    # a name with markup is shown as text
    evil = dataclasses.replace(res, clusters=res.clusters.assign(name=["<script>alert(1)</script>", "b&c"]),
                               info={**res.info, "warnings": ["<b>careful</b>"]})
    page = evil._repr_html_()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;careful&lt;/b&gt;" in page and "b&amp;c" in page


def test_top_table_has_ten_rows_at_most():
    from cluster.outputs.notebook import top_table

    pts = [(*offsets_km(10.0 * i - 40, 5.0 * i, 0, 0), "DE") for i in range(14)]
    many = cluster.run(make_records(pts, per_site=20), min_weight=THRESHOLDS)
    assert len(many.clusters) == 14 and len(top_table(many)) == 10
    assert "top 10 of 14" in many._repr_html_()


def test_explore_is_the_offline_map_in_a_frame(res):
    view = res.explore()
    frame = view._repr_html_()
    assert frame.startswith("<iframe srcdoc=\"") and "<script" not in frame.split('"', 2)[1]  # escaped page
    page = view.html
    # Leaflet and the borders are inline: no script or style loaded from anywhere
    assert "<script src" not in page and "<link" not in page and "L.map(" in page
    assert res.clusters["cluster_id"].iloc[0] in page
    for m in ("patents", "publications", "vc"):
        assert f'"name":"{m}"' in page  # one layer per metric, as in map.html


def test_explore_page_is_map_html(res, tmp_path):
    res.write(tmp_path / "out")
    assert res.explore().html == (tmp_path / "out" / "map.html").read_bytes().decode("utf-8")


def test_sites_are_points(res):
    sites = res.sites
    assert isinstance(sites, gpd.GeoDataFrame) and sites.crs.to_epsg() == 4326
    np.testing.assert_allclose(sites.geometry.x, sites["lon"])
    np.testing.assert_allclose(sites.geometry.y, sites["lat"])
    assert res.sites is sites  # built once
    assert type(res.sites_table) is pd.DataFrame and len(res.sites_table) == len(sites)
    again = pickle.loads(pickle.dumps(res))
    assert isinstance(again.sites, gpd.GeoDataFrame) and len(again.sites) == len(sites)


def test_columns_and_metric_as_map_and_metric(tmp_path):
    df = _records()
    pat = df[df["metric"] == "patents"].drop(columns=["metric"]).rename(columns={"lat": "latitude"})
    path = tmp_path / "p.csv"
    pat.to_csv(path, index=False)
    by_path = cluster.run(path, columns={"lat": "latitude"}, metric="patents", min_weight=THRESHOLDS)
    by_frame = cluster.run(pat, columns={"lat": "latitude"}, metric="patents", min_weight=THRESHOLDS)
    assert main(["-qq", "run", "--input", str(path), "--map", "lat=latitude", "--metric", "patents",
                 "--min-weight", "patents=10", "--out", str(tmp_path / "out")]) == 0
    cli = pd.read_csv(tmp_path / "out" / "ranking.csv")
    for r in (by_path, by_frame):
        assert r.clusters["cluster_id"].tolist() == cli["cluster_id"].tolist()
        np.testing.assert_allclose(r.clusters["patents"], cli["patents"])
    with pytest.raises(cluster.UserInputError, match="latitud"):
        cluster.run(pat, columns={"lat": "latitud"}, metric="patents")


def test_rank_intervals_in_the_table_when_bootstrapped():
    from cluster.outputs.notebook import top_table

    res = cluster.run(_records(), min_weight=THRESHOLDS, top_n=1, bootstrap=2, progress=False)
    table = top_table(res)
    assert "rank 90% interval" in table.columns
    assert all("–" in v for v in table["rank 90% interval"])
