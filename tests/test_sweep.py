"""Threshold sweep (cluster/sweep.py) and weighted k-distance (cluster/kdist.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cluster.cli import main
from cluster.config import load_config
from cluster.demo import generate_demo
from cluster.engine.dbscan import dbscan_sphere
from cluster.pipeline import cluster_records, load_records
from cluster.stages.membership import match_clusters, membership_ranking
from cluster.stages.sites import prepare_sites
from cluster.tuning.kdist import weighted_kdist
from cluster.tuning.sweep import run_sweep

KM_PER_DEGREE = 6371.0088 * np.pi / 180  # along the equator


@pytest.fixture(scope="module")
def demo():
    config = load_config()
    records, _, _ = load_records(generate_demo(30_000, 3), config)
    prepared = prepare_sites(records, config)
    sites, totals = prepared.sites, prepared.totals
    return config, records, sites, totals


def test_sweep_columns_and_baseline_row(demo):
    config, _, sites, totals = demo
    table, memberships = run_sweep(sites, totals, config, [5, 10, 20], [1, 2])
    metrics = config.metric_names
    expected = (["method", "eps_km", "min_weight_scale", "n_clusters"]
                + [c for m in metrics for c in (f"share_in_clusters_{m}", f"share_in_top_{m}")]
                + ["top_overlap", "n_common", "spearman", "kendall", "adjusted_rand", "baseline", "seconds"])
    assert list(table.columns) == expected
    assert len(table) == 6
    assert list(zip(table["eps_km"], table["min_weight_scale"])) == [
        (5, 1), (5, 2), (10, 1), (10, 2), (20, 1), (20, 2)]
    base = table[table["baseline"]]
    assert len(base) == 1 and base["eps_km"].item() == config.eps_km and base["min_weight_scale"].item() == 1
    for col in ("spearman", "kendall", "adjusted_rand", "top_overlap"):
        assert base[col].item() == pytest.approx(1.0)
    other = table[~table["baseline"]]
    assert (other["adjusted_rand"] < 1).all()
    # Shares are percentages, the top tier inside all clusters.
    for m in metrics:
        assert ((table[f"share_in_top_{m}"] <= table[f"share_in_clusters_{m}"] + 1e-9)
                & (table[f"share_in_clusters_{m}"] <= 100)).all()
    # A higher threshold at the same radius keeps fewer sites in clusters.
    for eps in (5, 10, 20):
        rows = table[table["eps_km"] == eps].set_index("min_weight_scale")
        assert rows.loc[2.0, "share_in_clusters_patents"] <= rows.loc[1.0, "share_in_clusters_patents"]
    assert (table["seconds"] > 0).all()
    assert set(memberships) >= {("dbscan", 10.0, 1.0), ("dbscan", 20.0, 2.0)}


def test_membership_ranking_matches_the_run(demo):
    """At the configured parameters the membership ranking gives the run's top ranks."""
    config, records, sites, totals = demo
    result = cluster_records(records, config, synthetic=True)
    mem = membership_ranking(sites, config, totals)
    run_rank = result.clusters.set_index("cluster_id")["rank"]
    mine = mem.ranking.set_index("cluster_id")["rank"]
    assert len(mine) == len(run_rank)
    top = run_rank[run_rank <= 20].index
    assert (mine.reindex(top) == run_rank.reindex(top)).all()


def test_match_clusters_is_one_to_one_by_overlap():
    a = np.array([0, 0, 0, 1, 1, -1, 2])
    b = np.array([5, 5, 6, 6, 6, 7, -1])
    w = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 9.0, 9.0])
    assert match_clusters(a, b, w) == {0: 5, 1: 6}


def test_cli_sweep_writes_outputs_atomically(tmp_path):
    out = tmp_path / "sweep"
    args = ["-q", "sweep", "--demo-records", "20000", "--eps-km", "5,10", "--min-weight-scale", "1,2",
            "--out", str(out)]
    assert main(args) == 0
    assert {p.name for p in out.iterdir()} == {
        "sweep.csv", "run.json", "heatmap_n_clusters.png", "heatmap_top_overlap.png",
        "heatmap_spearman.png", "heatmap_adjusted_rand.png", "rank_ranges.csv", "consistency.csv",
        "consistency.png", "manifest.json"}
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 4 and table["baseline"].sum() == 1
    info = json.loads((out / "run.json").read_text())
    assert info["command"] == "sweep" and info["synthetic"] is True
    first = (out / "sweep.csv").read_bytes()
    assert main(args) == 0  # replaces its own earlier outputs
    assert pd.read_csv(out / "sweep.csv").drop(columns="seconds").equals(
        pd.read_csv(pd.io.common.BytesIO(first)).drop(columns="seconds"))
    assert not list(tmp_path.glob(".sweep.*"))


def test_cli_sweep_rejects_bad_lists(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--eps-km", "5,x", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "comma-separated positive numbers" in capsys.readouterr().err


def test_kdist_hand_built():
    """Four sites on the equator at longitudes 0, 0.1, 0.3, 1.0 degrees (distances known)."""
    lat = np.zeros(4)
    lon = np.array([0.0, 0.1, 0.3, 1.0])
    w = np.ones(4)
    d = weighted_kdist(lat, lon, w, 1.0)
    assert np.allclose(d, 0.0)  # each site alone weighs 1
    d = weighted_kdist(lat, lon, w, 2.0)
    assert np.allclose(d, np.array([0.1, 0.1, 0.2, 0.7]) * KM_PER_DEGREE, rtol=1e-9)
    d = weighted_kdist(lat, lon, w, 3.0)
    assert np.allclose(d, np.array([0.3, 0.2, 0.3, 0.9]) * KM_PER_DEGREE, rtol=1e-9)
    # Fractional weights: the heavy site reaches 2.5 alone; the others need it.
    d = weighted_kdist(lat, lon, np.array([2.5, 0.5, 0.5, 0.5]), 2.5)
    assert np.allclose(d, np.array([0.0, 0.1, 0.3, 1.0]) * KM_PER_DEGREE, rtol=1e-9)
    # More than the total weight: never reached.
    assert np.isinf(weighted_kdist(lat, lon, w, 4.5)).all()
    with pytest.raises(ValueError):
        weighted_kdist(lat, lon, w, 0.0)


def test_kdist_agrees_with_core_sites():
    """A site is core at eps exactly when its k-distance (k_weight = threshold) is <= eps."""
    rng = np.random.default_rng(1)
    lat = rng.normal(45, 0.3, 3000)
    lon = rng.normal(7, 0.3, 3000)
    w = rng.integers(1, 4, 3000).astype(float)
    d = weighted_kdist(lat, lon, w, 12.0)
    _, core = dbscan_sphere(lat, lon, w, eps_km=5.0, min_weight=12.0)
    clear = np.abs(d - 5.0) > 1e-6
    assert np.array_equal(core[clear], d[clear] <= 5.0)
    assert 0 < core.sum() < len(core)


def test_cli_kdist(tmp_path):
    out = tmp_path / "kd"
    assert main(["-q", "kdist", "--demo-records", "20000", "--of-metric", "patents", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"kdist.csv", "kdist.png", "run.json", "manifest.json"}
    table = pd.read_csv(out / "kdist.csv")
    assert list(table.columns) == ["order", "lat", "lon", "weight", "kdist_km", "activity_pct"]
    d = table["kdist_km"].to_numpy()
    assert (np.diff(d[np.isfinite(d)]) <= 0).all()
    info = json.loads((out / "run.json").read_text())
    assert info["k_weight"] > 0 and info["metric"] == "patents"
    assert main(["-q", "kdist", "--demo-records", "20000", "--of-metric", "nope", "--out", str(out)]) == 2
    # The demo has three metrics: which one must be said.
    assert main(["-q", "kdist", "--demo-records", "20000", "--out", str(out)]) == 2


def _single_metric_file(tmp_path):
    """Two towns of patent sites and a rural scatter, in the layout of the PatentsView
    files (lat, lon, n_inventors; no metric column)."""
    rng = np.random.default_rng(7)
    rows = []
    for lat0, lon0, n in ((48.14, 11.58, 60), (52.52, 13.40, 40)):
        for dlat, dlon in rng.normal(0, 0.03, (n, 2)):
            rows.append((round(lat0 + dlat, 4), round(lon0 + dlon, 4), int(rng.integers(5, 50))))
    for lat, lon in rng.uniform([47, 6], [54, 15], (200, 2)):
        rows.append((round(lat, 4), round(lon, 4), 1))
    path = tmp_path / "inventors.csv"
    pd.DataFrame(rows, columns=["lat", "lon", "n_inventors"]).to_csv(path, index=False)
    return path


def test_sweep_on_single_metric_input(tmp_path):
    """The default config names three metrics; a file of patents alone gives the others a
    threshold of 0. The sweep failed with "[metrics.publications] min_weight must be a
    number > 0, got 0.0"."""
    path = _single_metric_file(tmp_path)
    out = tmp_path / "sweep"
    args = ["-q", "sweep", "--input", str(path), "--map", "weight=n_inventors", "--metric", "patents",
            "--eps-km", "5,10", "--method", "dbscan,dbscan/2,hdbscan", "--out", str(out)]
    assert main(args) == 0
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["method"]) == ["dbscan"] * 2 + ["dbscan/2"] * 2 + ["hdbscan"] * 2
    assert (table["n_clusters"] >= 2).all()
    ranges = pd.read_csv(out / "rank_ranges.csv")
    assert ((ranges["rank_min"] <= ranges["rank"]) & (ranges["rank"] <= ranges["rank_max"])).all()
    assert (ranges["n_swept"] == 6).all()
    consistency = pd.read_csv(out / "consistency.csv")
    assert consistency["best"].sum() == 1 and len(consistency) == 6
    assert (out / "heatmap_spearman_hdbscan.png").exists() and (out / "heatmap_spearman_dbscan_split2.png").exists()


def test_kdist_takes_map_and_metric_as_run_does(tmp_path):
    """--metric names the metric of the --input before it, as in `run`; the analysed metric
    is --of-metric (default: the only metric with records). kdist used --metric for the
    analysed metric, so a file without a metric column could not be read."""
    path = _single_metric_file(tmp_path)
    out = tmp_path / "kd"
    assert main(["-q", "kdist", "--input", str(path), "--map", "weight=n_inventors", "--metric", "patents",
                 "--min-share", "patents=1%", "--out", str(out)]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["metric"] == "patents"
    table = pd.read_csv(out / "kdist.csv")
    assert table["weight"].sum() == pd.read_csv(path)["n_inventors"].sum()
    # Weighted curve: the activity share grows as the k-distance falls, to 100 %.
    pct = table["activity_pct"].to_numpy()
    assert (np.diff(pct) <= 1e-9).all() and pct[0] == pytest.approx(100.0)
    assert main(["-q", "kdist", "--input", str(path), "--map", "weight=n_inventors", "--metric", "patents",
                 "--of-metric", "vc", "--out", str(out)]) == 2


def test_metro_consistency_on_hand_built_clusterings():
    from cluster.tuning.consistency import city_clusters, load_reference, pair_errors

    reference = pd.DataFrame({"name": ["A1", "A2", "B", "C"], "lat": [0.0, 0.0, 1.0, 5.0],
                              "lon": [0.0, 0.1, 0.0, 5.0], "group": ["A", "A", "B", "C"]})
    sites = pd.DataFrame({"lat": [0.0, 0.0, 1.0, 5.0, 9.0], "lon": [0.0, 0.1, 0.0, 5.0, 9.0]})
    # A1 and A2 apart (split), A1 with B (merged), C missing (its site is noise).
    inside = np.array([0, 1, 0, -1, 2])
    clusters = city_clusters(sites, inside, reference, reach_km=5.0)
    assert clusters.tolist() == [0, 1, 0, -1]
    res = pair_errors(reference, clusters)
    assert res["merged"] == ["A1 / B"] and res["split"] == ["A1 / A2"] and res["missing"] == ["C"]
    assert res["errors"] == 2
    assert pair_errors(reference, np.array([0, 0, 1, 2]))["errors"] == 0
    builtin = load_reference()
    assert {"Tokyo", "Yokohama", "New York City", "Philadelphia"} <= set(builtin["name"])
    assert builtin.set_index("name").loc[["Tokyo", "Yokohama"], "group"].nunique() == 1
    assert not builtin["name"].duplicated().any()


def test_reference_file_errors_name_the_row(tmp_path):
    from cluster.errors import UserInputError
    from cluster.tuning.consistency import load_reference

    bad = tmp_path / "ref.csv"
    bad.write_text("name,lat,lon,group\nA,0,0,x\nB,95,0,y\n")
    with pytest.raises(UserInputError, match="row 3, column lat"):
        load_reference(bad)
    bad.write_text("name,lat,lon\nA,0,0\n")
    with pytest.raises(UserInputError, match="group"):
        load_reference(bad)
