"""The public API (cluster/__init__.py) as a notebook user reaches for it."""

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from helpers import make_records, offsets_km

import cluster
from cluster.outputs import OUTPUT_FILES


def _records():
    # Two planted clusters 2 km wide (Munich and Lyon), 5 documents at each of 4 sites,
    # plus one far-away site that stays noise.
    pts = [(*offsets_km(48.14, 11.58, dx, dy), "DE") for dx, dy in [(0, 0), (1, 0), (0, 1), (1, 1)]]
    pts += [(*offsets_km(45.76, 4.84, dx, dy), "FR") for dx, dy in [(0, 0), (2, 0), (0, 2), (2, 2)]]
    pts += [(10.0, 10.0, "NG")]
    return make_records(pts, per_site=5)


THRESHOLDS = {"patents": 10.0, "publications": 10.0, "vc": 10.0}


def test_the_names_a_user_reaches_for_are_exported():
    for name in ("run", "RunResult", "load_config", "Config", "MetricConfig", "dbscan_sphere",
                 "SphericalDBSCAN", "UserInputError", "ConfigError", "InputDataError", "__version__"):
        assert name in cluster.__all__ and hasattr(cluster, name)
    assert issubclass(cluster.ConfigError, ValueError) and issubclass(cluster.InputDataError, ValueError)


def test_run_on_a_dataframe_and_on_a_geodataframe_in_another_crs_agree():
    df = _records()
    res = cluster.run(df, min_weight=THRESHOLDS, top_n=1)
    assert isinstance(res, cluster.RunResult)
    assert len(res.clusters) == 2 and list(res.clusters["tier"]) == ["top", "emerging"]
    assert res.config.top_n == 1 and res.info["counts"]["records"] == len(df)
    gdf = gpd.GeoDataFrame(df.drop(columns=["lat", "lon"]), geometry=gpd.points_from_xy(df["lon"], df["lat"]),
                           crs="EPSG:4326").to_crs("EPSG:3857")
    res_gdf = cluster.run(gdf, min_weight=THRESHOLDS, top_n=1)
    pd.testing.assert_frame_equal(res.clusters.drop(columns="geometry"), res_gdf.clusters.drop(columns="geometry"),
                                  check_exact=False, atol=1e-6)


def test_run_does_not_change_its_input():
    df = _records()
    before = df.copy()
    cluster.run(df, min_weight=THRESHOLDS)
    pd.testing.assert_frame_equal(df, before)


def test_run_takes_a_path_a_list_of_paths_or_a_config_file(tmp_path):
    path = tmp_path / "r.csv"
    _records().to_csv(path, index=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[metrics.patents]\nmin_weight = 10\n")
    one = cluster.run(str(path), cfg)
    two = cluster.run([path], cluster.load_config(cfg))
    assert one.clusters["cluster_id"].tolist() == two.clusters["cluster_id"].tolist()
    assert one.config.metric_names == ("patents",)


def test_run_refuses_no_data_and_data_of_another_kind():
    with pytest.raises(cluster.UserInputError, match="generate_demo") as exc:
        cluster.run(None)
    assert "`data`" in str(exc.value) and "--input" in exc.value.for_cli()
    with pytest.raises(cluster.UserInputError, match="Cannot read records from a int"):
        cluster.run(42)


def test_bad_records_in_a_frame_name_row_and_column():
    df = _records()
    df.loc[3, "lat"] = 95.0
    with pytest.raises(cluster.InputDataError, match=r"<DataFrame>, row 4, column 'lat': latitude outside"):
        cluster.run(df, min_weight=THRESHOLDS)


def test_load_config_takes_a_mapping_and_keyword_overrides():
    cfg = cluster.load_config({"clustering": {"eps_km": 15}, "ranking": {"top_n": 50}}, {"max_names": 2})
    assert (cfg.eps_km, cfg.top_n, cfg.max_names) == (15.0, 50, 2)
    assert cluster.load_config(cfg, {"eps_km": 20}).top_n == 50
    with pytest.raises(cluster.ConfigError, match="unknown key 'eps_kms'. Did you mean 'eps_km'"):
        cluster.run(_records(), eps_kms=3)
    with pytest.raises(cluster.ConfigError, match=r"\[clustering\] eps_km must be in \[0.01, 5000\] km, got -5"):
        cluster.run(_records(), eps_km=-5)


def test_config_validates_itself_with_the_toml_messages(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[clustering]\neps_km = -5\n")
    with pytest.raises(cluster.ConfigError) as from_file:
        cluster.load_config(toml)
    with pytest.raises(cluster.ConfigError) as direct:
        dataclasses.replace(cluster.load_config(), eps_km=-5)
    line = "[clustering] eps_km must be in [0.01, 5000] km, got -5"
    assert line in str(from_file.value) and line in str(direct.value)
    with pytest.raises(cluster.ConfigError, match=r"\[metrics.p\] min_weight must be a number > 0"):
        cluster.Config(metrics=(cluster.MetricConfig("p", min_weight=-1.0),))
    assert cluster.Config(metrics=(cluster.MetricConfig("p", min_weight=3.0),)).eps_km == 10.0


def test_result_writes_every_output_and_plots_on_given_axes(tmp_path):
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    res = cluster.run(_records(), min_weight=THRESHOLDS)
    out = res.write(tmp_path / "out")
    assert set(OUTPUT_FILES) <= {p.name for p in out.iterdir()}
    ax = Figure().subplots()
    assert res.plot(ax) is ax and isinstance(ax, Axes)
    assert len(ax.texts) == 2  # both clusters labelled


def test_a_demo_frame_says_it_is_synthetic_all_the_way():
    from cluster.demo import generate_demo

    res = cluster.run(generate_demo(20_000, seed=2), eps_km=15)
    assert res.info["synthetic"] and "SYNTHETIC" in res.info["notice"]
    assert res.clusters["synthetic"].all()
    assert res.info["demo"]["records"] == 20_000


def test_engine_is_public():
    lat = np.array([0.0, 0.0, 10.0])
    labels, core = cluster.dbscan_sphere(lat, np.array([0.0, 0.01, 0.0]), np.ones(3), eps_km=5, min_weight=2)
    assert labels.tolist() == [0, 0, -1] and core.tolist() == [True, True, False]
