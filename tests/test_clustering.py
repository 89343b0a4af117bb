"""Per-metric DBSCAN and the overlay rule on hand-built sites."""

import pandas as pd
import pytest
from helpers import offsets_km

from cluster.config import load_config
from cluster.stages.clustering import cluster_metrics, overlay


def _sites(rows):
    df = pd.DataFrame(rows, columns=["metric", "lat", "lon", "weight"])
    df["metric"] = pd.Categorical(df["metric"], ["patents", "publications", "vc"])
    return df


def test_threshold_is_per_metric_and_share_based():
    config = load_config(overrides={"min_weight": {"patents": 10.0}})  # others: 0.05 % share
    rows = [("patents", 0.0, 0.0, 6.0), ("patents", 0.0, 0.05, 6.0),      # 5.6 km apart: 12 >= 10
            ("publications", 30.0, 30.0, 1.0)]
    rows += [("publications", -40.0 + i, 100.0, 1000.0) for i in range(3)]  # far apart, isolated
    sites, thresholds = cluster_metrics(_sites(rows), config, {"patents": 12.0, "publications": 3001.0, "vc": 0.0})
    assert thresholds["patents"] == 10.0 and thresholds["publications"] == pytest.approx(1.5005)
    assert sites["core"].tolist() == [True, True, False, True, True, True]
    assert sites["metric_cluster"].iloc[0] == sites["metric_cluster"].iloc[1] >= 0
    # Publication clusters are numbered after the patent ones: ids are unique across metrics.
    assert len(set(sites["metric_cluster"].iloc[3:])) == 3 and sites["metric_cluster"].iloc[3:].min() >= 1


@pytest.mark.parametrize("gap_km, merged", [(9.0, True), (11.0, False)])
def test_overlay_merges_clusters_with_sites_within_eps(gap_km, merged):
    lat2, lon2 = offsets_km(48.0, 11.0, gap_km, 0.0)
    sites = pd.DataFrame({"metric_cluster": [0, 0, 1, 1, -1],
                          "lat": [48.0, 48.0, lat2, lat2, 0.0],
                          "lon": [10.9, 11.0, lon2, lon2 + 0.1, 0.0]})
    comp = overlay(sites, eps_km=10.0)
    assert comp[4] == -1  # noise joins nothing
    assert (comp[0] == comp[2]) == merged
    assert comp[0] == comp[1] and comp[2] == comp[3]


def test_overlay_across_the_antimeridian():
    sites = pd.DataFrame({"metric_cluster": [0, 1], "lat": [-16.8, -16.8], "lon": [179.97, -179.98]})
    comp = overlay(sites, eps_km=10.0)
    assert comp[0] == comp[1] == 0


def test_stage_leaves_its_input_unchanged():
    config = load_config(overrides={"min_weight": {"patents": 1.0}})
    s = _sites([("patents", 1.0, 1.0, 2.0)])
    before = s.copy()
    cluster_metrics(s, config, {"patents": 2.0, "publications": 0.0, "vc": 0.0})
    pd.testing.assert_frame_equal(s, before)
