"""Unit tests of the GeoPackage writer's pure functions (cluster.outputs.gpkg)."""

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd

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
