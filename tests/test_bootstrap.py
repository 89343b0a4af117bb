"""Bootstrap rank intervals (cluster/bootstrap.py) on planted data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from helpers import offsets_km

from cluster.config import _build, _merge, load_config
from cluster.errors import ConfigError
from cluster.ingest.read import validate_frame
from cluster.outputs.files import ranking_table, write_outputs
from cluster.pipeline import cluster_records
from cluster.stages.bootstrap import rank_intervals, replicate_weights, resampling_units

# Planted clusters: (lat, lon, documents). A and B are far apart in size from each
# other and from the rest; C and D are a near-tie (200 against 203 documents).
PLANTED = {"A": (0.0, 0.0, 1000), "B": (10.0, 10.0, 500), "C": (20.0, 20.0, 200), "D": (30.0, 30.0, 203)}


def planted_records(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for name, (lat0, lon0, n_docs) in PLANTED.items():
        sites = [offsets_km(lat0, lon0, dx, dy) for dx, dy in ((0, 0), (1, 0), (0, 1), (-1, -1))]
        for k in range(n_docs):
            doc = f"{name}{k}"
            # Most documents at one site, some at two (fractional counting).
            for j in rng.choice(4, size=1 + (k % 5 == 0), replace=False):
                rows.append({"metric": "patents", "doc_id": doc, "lat": sites[j][0], "lon": sites[j][1]})
    for k in range(300):  # scattered noise, one document each
        rows.append({"metric": "patents", "doc_id": f"n{k}", "lat": rng.uniform(-50, -40),
                     "lon": rng.uniform(-170, 170)})
    # Pre-weighted sites without doc_id (resampled as sites).
    rows.append({"metric": "patents", "doc_id": None, "lat": 0.0, "lon": 0.0, "weight": 5.0})
    rows.append({"metric": "patents", "doc_id": None, "lat": -45.0, "lon": 100.0, "weight": 2.0})
    frame = pd.DataFrame(rows)
    return validate_frame(frame, "<planted>", ("patents",))


def planted_config(replicates: int = 200, seed: int = 0):
    config = _build(_merge({"metrics": {"patents": {"min_weight": 20.0}}}, "test"), "test")
    return replace(config, bootstrap_replicates=replicates, bootstrap_seed=seed, top_n=3)


@pytest.mark.slow
def test_intervals_narrow_when_far_apart_and_wide_for_near_ties():
    records = planted_records()
    result = cluster_records(records, planted_config())
    table = result.clusters
    assert len(table) == 4
    by_size = table.sort_values("rank")
    low = by_size["rank_ci_low"].tolist()
    high = by_size["rank_ci_high"].tolist()
    # A (rank 1) and B (rank 2) are far ahead: their intervals are single ranks.
    assert (low[0], high[0]) == (1, 1)
    assert (low[1], high[1]) == (2, 2)
    # C and D are a near-tie: both intervals span ranks 3 and 4.
    assert (low[2], high[2]) == (3, 4)
    assert (low[3], high[3]) == (3, 4)
    assert result.info["bootstrap"]["replicates"] == 200
    # ranking.csv carries the interval next to the rank.
    cols = list(ranking_table(result.clusters, ["patents"]).columns)
    assert cols[:3] == ["rank", "rank_ci_low", "rank_ci_high"]


@pytest.mark.slow
def test_reproducible_by_seed():
    records = planted_records()
    a = cluster_records(records, planted_config(60, seed=7)).clusters
    b = cluster_records(records, planted_config(60, seed=7)).clusters
    assert a[["rank_ci_low", "rank_ci_high"]].equals(b[["rank_ci_low", "rank_ci_high"]])


def test_resampling_keeps_totals_in_expectation():
    records = planted_records()
    result = cluster_records(records, planted_config(0))
    units = resampling_units(records, result.sites)
    # Without resampling (every unit once) the site weights are the run's.
    once = np.bincount(units["site"], weights=units["weight"], minlength=len(result.sites))
    assert np.allclose(once, result.sites["weight"].to_numpy())
    # Documents and pre-weighted sites are separate strata; a replicate keeps unit counts.
    assert sorted(len(s) for s in units["strata"]) == [2, 1903 + 300]
    rng = np.random.default_rng(0)
    tot = [replicate_weights(units, len(result.sites), rng).sum() for _ in range(50)]
    assert np.mean(tot) == pytest.approx(result.sites["weight"].sum(), rel=0.01)


def test_off_by_default_and_outputs_unchanged(tmp_path):
    records = planted_records()
    config = planted_config(0)
    assert load_config().bootstrap_replicates == 0
    result = cluster_records(records, config)
    assert "rank_ci_low" not in result.clusters.columns and "bootstrap" not in result.info
    write_outputs(result, tmp_path / "out", ["patents"])
    header = (tmp_path / "out" / "ranking.csv").read_text().splitlines()[0]
    assert "rank_ci" not in header


def test_config_and_cli_option(tmp_path):
    assert load_config(overrides={"bootstrap": 5}).bootstrap_replicates == 5
    bad = tmp_path / "c.toml"
    bad.write_text("[bootstrap]\nconfidence = 1.5\nreplicates = -1\n")
    with pytest.raises(ConfigError, match="confidence must be in"):
        load_config(bad)
    bad.write_text("[bootstrap]\nreplicate = 3\n")
    with pytest.raises(ConfigError, match="Did you mean 'replicates'"):
        load_config(bad)


def test_direct_call_matches_rank_count():
    records = planted_records()
    config = planted_config(0)
    result = cluster_records(records, config)
    low, high, info = rank_intervals(records, result.sites, result.info["world_totals"], config,
                                     result.clusters, replicates=20)
    assert len(low) == len(result.clusters) and (low <= high).all() and (low >= 1).all()
    assert info["replicates"] == 20
