"""cluster.sweep and cluster.kdist: the commands `cluster sweep` and `cluster kdist` as
functions for notebooks, with the same numbers."""

import numpy as np
import pandas as pd
import pytest

import cluster
from cluster.cli import main
from cluster.demo import generate_demo


@pytest.fixture(scope="module")
def records_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("tuning") / "records.csv"
    generate_demo(20_000, seed=3).to_csv(path, index=False)
    return path


def test_sweep_is_the_command(records_csv, tmp_path):
    res = cluster.sweep(records_csv, eps_km=[5, 10], min_weight_scale=[1, 2], progress=False)
    assert main(["-qq", "sweep", "--input", str(records_csv), "--eps-km", "5,10", "--min-weight-scale", "1,2",
                 "--out", str(tmp_path / "out")]) == 0
    cli = pd.read_csv(tmp_path / "out" / "sweep.csv")
    cols = [c for c in cli.columns if c != "seconds"]  # timings differ
    pd.testing.assert_frame_equal(res.table[cols].reset_index(drop=True), cli[cols], check_dtype=False)
    assert set(res.memberships) == {("dbscan", 5.0, 1.0), ("dbscan", 5.0, 2.0), ("dbscan", 10.0, 1.0),
                                    ("dbscan", 10.0, 2.0)}
    assert "4 combinations" in repr(res)
    fig = res.plot(["n_clusters", "spearman"])
    assert len([ax for ax in fig.axes if ax.get_title() in ("n_clusters (dbscan)", "spearman (dbscan)")]) == 2


def test_kdist_is_the_command(records_csv, tmp_path):
    res = cluster.kdist(records_csv, "patents", progress=False)
    assert main(["-qq", "kdist", "--input", str(records_csv), "--of-metric", "patents",
                 "--out", str(tmp_path / "out")]) == 0
    cli = pd.read_csv(tmp_path / "out" / "kdist.csv")
    np.testing.assert_allclose(res.table["kdist_km"], cli["kdist_km"], atol=1e-6)  # the file: 6 decimals
    assert res.eps_km == 10.0 and res.k_weight > 0
    ax = res.plot()
    assert ax.get_yscale() == "log"
    with pytest.raises(cluster.UserInputError, match="Unknown metric 'nope'"):
        cluster.kdist(records_csv, "nope")
