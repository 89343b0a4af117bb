"""The reduction on a real Dask cluster: a scheduler and two worker processes on loopback,
started with Dask's own command line as a user would on their machines.

The distributed engine must give the embedded engine's sites bit for bit (both count
rows; the client sums), hence the same clusters and the same ranking file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cluster
from cluster.demo import generate_demo
from cluster.errors import UserInputError

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory) -> Path:
    """The demo world (60,000 records, fields included) as hive-partitioned Parquet by
    metric, three files per metric, rows shuffled: documents span files."""
    root = tmp_path_factory.mktemp("parts") / "records"
    world = generate_demo(60_000, 5, fields=True)
    world = world.sample(frac=1.0, random_state=2).reset_index(drop=True)
    for metric, rows in world.groupby("metric", observed=True):
        folder = root / f"metric={metric}"
        folder.mkdir(parents=True)
        for i, idx in enumerate(np.array_split(np.arange(len(rows)), 3)):
            rows.drop(columns="metric").iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    return root


def test_distributed_sites_and_ranking_equal_the_embedded_engine(scheduler, partitioned, tmp_path):
    embedded = cluster.run(partitioned)
    spread = cluster.run(partitioned, scheduler=scheduler)
    a, b = embedded.sites, spread.sites
    pd.testing.assert_frame_equal(a.drop(columns="weight"), b.drop(columns="weight"))
    assert a["weight"].to_numpy().tobytes() == b["weight"].to_numpy().tobytes()
    assert embedded.info["counts"]["records"] == spread.info["counts"]["records"] == 60_000
    embedded.write(tmp_path / "embedded")
    spread.write(tmp_path / "spread")
    assert (tmp_path / "embedded/ranking.csv").read_bytes() == (tmp_path / "spread/ranking.csv").read_bytes()
    assert (tmp_path / "embedded/profiles.csv").read_bytes() == (tmp_path / "spread/profiles.csv").read_bytes()


def test_distributed_year_window_and_in_memory_frame(scheduler):
    world = generate_demo(20_000, 1)
    world["year"] = np.where(np.arange(len(world)) % 3 == 0, 2015, 2021)
    kw = {"year_start": 2020, "min_weight": {"patents": 20.0, "publications": 20.0, "vc": 20.0}}
    embedded = cluster.run(world, **kw)
    spread = cluster.run(world, scheduler=scheduler, **kw)
    assert embedded.sites["weight"].to_numpy().tobytes() == spread.sites["weight"].to_numpy().tobytes()
    assert embedded.info["counts"]["records_outside_years"] == spread.info["counts"]["records_outside_years"] > 0
    assert embedded.clusters["cluster_id"].tolist() == spread.clusters["cluster_id"].tolist()


def test_distributed_bad_row_is_named_with_file_and_row(scheduler, tmp_path):
    (tmp_path / "a.csv").write_text("metric,doc_id,lat,lon\npatents,A,48.1,11.5\npatents,B,48.2,11.6\n")
    (tmp_path / "b.csv").write_text("metric,doc_id,lat,lon\npatents,C,48.1,11.5\npatents,D,95,11.6\n")
    with pytest.raises(UserInputError, match=r"b\.csv, row 3, column 'lat': latitude outside"):
        cluster.run(str(tmp_path / "*.csv"), scheduler=scheduler)


def test_cli_scheduler_option(scheduler, partitioned, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "cluster", "run", "-q", "--input", str(partitioned),
                           "--scheduler", scheduler, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["engine"]["scheduler"] == scheduler
    assert info["counts"]["records"] == 60_000 and len(info["inputs"]) == 9


def test_unreachable_scheduler_is_a_fault_of_the_environment(tmp_path):
    (tmp_path / "a.csv").write_text("metric,doc_id,lat,lon\npatents,A,48.1,11.5\n")
    done = subprocess.run([sys.executable, "-m", "cluster", "run", "-q", "--input", str(tmp_path / "a.csv"),
                           "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 3  # the environment's fault (cluster.errors.EXIT_ENVIRONMENT), not a bug
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr and "--scheduler" in done.stderr
