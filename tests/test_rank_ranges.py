"""Rank ranges across settings (issue 24, item 3): `cluster run --rank-range-eps` and the
sweep's rank_ranges.csv, one rule (cluster.stages.membership.rank_range).

The toy world is hand-built (no outside source): pre-weighted sites, one metric, threshold
50. Four towns far apart weigh 200 (B), 150 (C), 80 + 60 (A: two sites 15 km apart) and
100 (D). At 20 km A's two sites are one cluster (140: rank 3, D 4); at 10 km they are two
(80 and 60), so D moves up to 3 and A's larger part falls to 4.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from helpers import offsets_km

from cluster.cli import main
from cluster.config import _build, _merge, load_config
from cluster.demo import generate_demo
from cluster.errors import ConfigError
from cluster.ingest.read import validate_frame
from cluster.pipeline import cluster_records, load_records
from cluster.stages.ranking import site_activity
from cluster.stages.sites import prepare_sites
from cluster.tuning.sweep import rank_ranges, run_sweep

COLUMNS = ["rank_min_settings", "rank_max_settings", "rank_n_settings"]


def toy_sites():
    a2 = offsets_km(30.0, 30.0, 15.0, 0.0)
    rows = [("B", 10.0, 10.0, 200.0), ("C", 20.0, 20.0, 150.0), ("A", 30.0, 30.0, 80.0),
            ("A", a2[0], a2[1], 60.0), ("D", 40.0, 40.0, 100.0)]
    rows += [("noise", -45.0, -170.0 + 20.0 * k, 1.0) for k in range(10)]
    return pd.DataFrame(rows, columns=["town", "lat", "lon", "weight"])


def toy_records():
    sites = toy_sites()
    frame = sites[["lat", "lon", "weight"]].assign(metric="patents", doc_id=None)
    return validate_frame(frame, "<toy>", ("patents",))


def toy_config(**changes):
    config = _build(_merge({"metrics": {"patents": {"min_weight": 50.0}}, "clustering": {"eps_km": 20.0},
                            "ranking": {"top_n": 3}}, "test"), "test")
    return replace(config, **changes)


def by_town(result):
    """The clusters' rows keyed by the town at their anchor."""
    sites = toy_sites()
    out = {}
    for _, row in result.clusters.iterrows():
        d = (sites["lat"] - row["anchor_lat"]) ** 2 + (sites["lon"] - row["anchor_lon"]) ** 2
        out[sites["town"].iloc[int(np.argmin(d.to_numpy()))]] = row
    return out


def test_columns_only_with_the_option():
    records = toy_records()
    off = cluster_records(records, toy_config())
    assert not set(COLUMNS) & set(off.clusters.columns) and "rank_ranges" not in off.info
    assert load_config().rank_range_eps_km == () and load_config().rank_range_methods == ()
    on = cluster_records(records, toy_config(rank_range_eps_km=(10.0, 20.0)))
    cols = list(on.clusters.columns)
    assert cols[cols.index("rank") + 1:cols.index("rank") + 4] == COLUMNS
    for c in COLUMNS:
        assert on.clusters[c].dtype == np.int64
    assert on.info["rank_ranges"]["settings"] == ["dbscan 20 km x1", "dbscan 10 km x1"]
    assert on.info["rank_ranges"]["baseline"] == "dbscan 20 km x1"
    # The run's own columns are those of the run without the option.
    assert on.clusters.drop(columns=COLUMNS + ["geometry"]).equals(off.clusters.drop(columns="geometry"))


def test_split_cluster_gets_the_wider_range_and_the_rank_lies_within():
    records = toy_records()
    alone = by_town(cluster_records(records, toy_config(rank_range_eps_km=(20.0,))))
    both = by_town(cluster_records(records, toy_config(rank_range_eps_km=(10.0, 20.0))))
    assert [int(both[t]["rank"]) for t in "BCAD"] == [1, 2, 3, 4]
    # The baseline's setting alone: every range is the rank itself.
    for t in "BCAD":
        assert alone[t]["rank_min_settings"] == alone[t]["rank_max_settings"] == alone[t]["rank"]
        assert alone[t]["rank_n_settings"] == 1
    # At 10 km A splits (its larger part falls to rank 4), D moves up; B and C stay.
    assert (both["A"]["rank_min_settings"], both["A"]["rank_max_settings"]) == (3, 4)
    assert (both["D"]["rank_min_settings"], both["D"]["rank_max_settings"]) == (3, 4)
    for t, r in (("B", 1), ("C", 2)):
        assert (both[t]["rank_min_settings"], both[t]["rank_max_settings"]) == (r, r)
    for t in "BCAD":
        assert both[t]["rank_min_settings"] <= both[t]["rank"] <= both[t]["rank_max_settings"]
        assert both[t]["rank_n_settings"] == 2


def test_sweep_and_run_agree_on_the_toy():
    records = toy_records()
    config = toy_config(rank_range_eps_km=(10.0, 15.0, 20.0))
    result = cluster_records(records, config)
    prepared = prepare_sites(records, config)
    _, memberships = run_sweep(prepared.sites, prepared.totals, config, [10, 15, 20], [1])
    ranges = rank_ranges(memberships, ("dbscan", 20.0, 1.0), site_activity(prepared.sites, prepared.totals, config))
    mine = result.clusters.set_index("cluster_id")
    theirs = ranges.set_index("cluster_id").reindex(mine.index)
    assert (theirs["rank"] == mine["rank"]).all()
    assert (theirs["rank_min"] == mine["rank_min_settings"]).all()
    assert (theirs["rank_max"] == mine["rank_max_settings"]).all()
    assert (theirs["n_settings"] == mine["rank_n_settings"]).all()
    assert (theirs["n_swept"] == len(result.info["rank_ranges"]["settings"])).all()


@pytest.mark.slow
def test_sweep_and_run_agree_on_the_demo():
    """30,000 demo records, dbscan and hdbscan at 10, 15 and 20 km: wherever the run's rank
    (from boundaries) equals the sweep's baseline rank (from memberships), the ranges agree.
    Before the matching numbered clusters by rank, ties of shared activity went by the
    cluster numbers, which differ between a run and a sweep."""
    config = load_config(overrides={"rank_range_eps_km": [10, 15, 20], "rank_range_methods": ["dbscan", "hdbscan"]})
    records, _, _ = load_records(generate_demo(30_000, 3), config)
    prepared = prepare_sites(records, config)
    result = cluster_records(records, config, synthetic=True)
    _, memberships = run_sweep(prepared.sites, prepared.totals, config, [10, 15, 20], [1], ["dbscan", "hdbscan"])
    ranges = rank_ranges(memberships, ("dbscan", 10.0, 1.0), site_activity(prepared.sites, prepared.totals, config))
    mine = result.clusters.set_index("cluster_id")
    theirs = ranges.set_index("cluster_id").reindex(mine.index)
    same = (theirs["rank"] == mine["rank"]).to_numpy()
    assert same.mean() > 0.95
    for a, b in (("rank_min", "rank_min_settings"), ("rank_max", "rank_max_settings"),
                 ("n_settings", "rank_n_settings")):
        assert (theirs[a].to_numpy()[same] == mine[b].to_numpy()[same]).all()
    assert ((mine["rank_min_settings"] <= mine["rank"]) & (mine["rank"] <= mine["rank_max_settings"])).all()
    assert (mine["rank_max_settings"] > mine["rank_min_settings"]).any()
    assert len(result.info["rank_ranges"]["settings"]) == 6


def test_values_are_checked():
    with pytest.raises(ConfigError, match=r"rank_range_eps_km must hold radii in \[0.01, 5000\] km"):
        load_config(overrides={"rank_range_eps_km": [10, 6000]})
    with pytest.raises(ConfigError, match="rank_range_eps_km must hold radii"):
        load_config({"ranking": {"rank_range_eps_km": ["ten"]}})
    with pytest.raises(ConfigError, match="rank_range_eps_km must be a list"):
        load_config({"ranking": {"rank_range_eps_km": 10}})
    with pytest.raises(ConfigError, match="rank_range_methods must hold dbscan"):
        load_config(overrides={"rank_range_methods": ["dbscan/0.5"]})
    with pytest.raises(ConfigError, match="rank_range_methods must hold dbscan"):
        load_config(overrides={"rank_range_methods": ["kmeans"]})
    with pytest.raises(ConfigError, match="at most 100"):
        load_config(overrides={"rank_range_eps_km": list(range(1, 52)), "rank_range_methods": ["dbscan", "hdbscan"]})
    config = load_config(overrides={"rank_range_eps_km": [10, 15.5], "rank_range_methods": ["dbscan/4"]})
    assert config.rank_range_eps_km == (10.0, 15.5) and config.rank_range_methods == ("dbscan/4",)
    assert config.to_dict()["ranking"]["rank_range_eps_km"] == [10.0, 15.5]
    assert load_config(config.to_dict()) == replace(config, source="mapping")


def test_cli_run_writes_the_columns(tmp_path, capsys):
    path = tmp_path / "toy.csv"
    toy_sites()[["lat", "lon", "weight"]].to_csv(path, index=False)
    conf = tmp_path / "toy.toml"
    conf.write_text("[clustering]\neps_km = 20\n[ranking]\ntop_n = 3\n[metrics.patents]\nmin_weight = 50\n")
    out = tmp_path / "out"
    base = ["-q", "run", "--input", str(path), "--metric", "patents", "--config", str(conf), "--out", str(out)]
    assert main(base + ["--rank-range-eps", "10,20", "--rank-range-methods", "dbscan"]) == 0
    header = (out / "ranking.csv").read_text("utf-8").splitlines()[0].split(",")
    assert header[:4] == ["rank"] + COLUMNS
    ranking = pd.read_csv(out / "ranking.csv")
    assert sorted(zip(ranking["rank_min_settings"], ranking["rank_max_settings"])) == [(1, 1), (2, 2), (3, 4), (3, 4)]
    with sqlite3.connect(out / "clusters.gpkg") as con:
        types = {r[1]: r[2] for r in con.execute("PRAGMA table_info(clusters)")}
    assert all(types[c] in ("INTEGER", "MEDIUMINT", "INT") for c in COLUMNS), types
    info = json.loads((out / "run.json").read_text("utf-8"))
    assert info["rank_ranges"]["settings"] == ["dbscan 20 km x1", "dbscan 10 km x1"]
    assert info["config"]["ranking"]["rank_range_eps_km"] == [10.0, 20.0]
    # Without the option: no columns.
    assert main(base) == 0
    assert "rank_min_settings" not in (out / "ranking.csv").read_text("utf-8")
    # A radius out of range: exit 2, the option named.
    capsys.readouterr()
    assert main(base + ["--rank-range-eps", "10,6000"]) == 2
    assert "--rank-range-eps" in capsys.readouterr().err


def test_keyword_of_cluster_run():
    import cluster

    frame = toy_sites()[["lat", "lon", "weight"]].assign(metric="patents")
    config = {"metrics": {"patents": {"min_weight": 50.0}}, "clustering": {"eps_km": 20.0}}
    result = cluster.run(frame, config, rank_range_eps_km=[10, 20], progress=False)
    assert sorted(zip(result.clusters["rank_min_settings"], result.clusters["rank_max_settings"])) == [
        (1, 1), (2, 2), (3, 4), (3, 4)]
    assert result.config.rank_range_eps_km == (10.0, 20.0)
    # Methods alone: the configured radius with each method.
    result = cluster.run(frame, config, rank_range_methods=["dbscan", "hdbscan"], progress=False)
    assert result.info["rank_ranges"]["settings"] == ["dbscan 20 km x1", "hdbscan 20 km x1"]
