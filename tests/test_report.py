"""The GII's tables (cluster.outputs.report) on a small hand-made clusters table, and
report.md/report_*.csv written by a run."""

from __future__ import annotations

import pandas as pd
import pytest

import cluster
from cluster.config import load_config
from cluster.outputs.report import (
    REPORT_FILES,
    economies_table,
    report_markdown,
    report_tables,
    top_by_intensity,
    top_by_metric,
    top_tier_shares,
)


def _clusters():
    """Four clusters: a cross-border one (CN/HK), two US, one emerging DE."""
    return pd.DataFrame({
        "rank": [1, 2, 3, 4], "cluster_id": ["a", "b", "c", "d"],
        "name": ["Shenzhen–Hong Kong", "San Jose", "Boston", "Munich"],
        "economies": ["CN/HK", "US", "US", "DE"],
        "patents": [50.0, 30.0, 5.0, 10.0], "share_patents": [50.0, 30.0, 5.0, 10.0],
        "vc": [1.0, 10.0, 4.0, 0.0], "share_vc": [5.0, 50.0, 20.0, 0.0],
        "score": [55.0, 80.0, 25.0, 10.0], "population": [20_000_000, 2_000_000, 5_000_000, 1_500_000],
        "patents_per_million": [2.5, 15.0, 1.0, 6.7], "vc_per_million": [0.05, 5.0, 0.8, 0.0],
        "intensity_score": [2.75, 40.0, 5.0, 6.7], "intensity_rank": pd.array([3, 1, 2, pd.NA], dtype="Int64"),
        "tier": ["top", "top", "top", "emerging"],
    })


TOTALS = {"patents": 100.0, "publications": 0.0, "vc": 20.0}
METRICS = ["patents", "publications", "vc"]


def test_cross_border_cluster_is_listed_under_each_economy():
    eco = economies_table(_clusters())
    assert eco["economy"].tolist() == ["US", "US", "CN", "HK"]  # most clusters first, then best rank
    assert eco.loc[eco["economy"] == "HK", "cross_border"].item()
    assert eco.loc[eco["economy"] == "HK", "economy_name"].item() == "Hong Kong"
    assert "DE" not in set(eco["economy"])  # emerging tier left out
    assert eco.loc[eco["economy"] == "US", "n_clusters"].tolist() == [2, 2]


def test_top_by_metric_orders_by_count_and_skips_absent_metrics():
    top = top_by_metric(_clusters(), METRICS, TOTALS)
    assert set(top["metric"]) == {"patents", "vc"}
    assert top[top["metric"] == "patents"]["cluster_id"].tolist() == ["a", "b", "d", "c"]
    assert top[top["metric"] == "vc"]["cluster_id"].tolist()[:2] == ["b", "c"]


def test_top_by_intensity_uses_intensity_rank():
    it = top_by_intensity(_clusters(), METRICS, TOTALS)
    assert it["cluster_id"].tolist() == ["b", "c", "a"]
    assert "publications_per_million" not in it.columns


def test_top_tier_shares():
    sh = top_tier_shares(_clusters(), METRICS, TOTALS).set_index("metric")
    assert sh.loc["patents", "top_tier_share"] == pytest.approx(85.0)
    assert sh.loc["patents", "all_clusters_share"] == pytest.approx(95.0)
    assert sh.loc["vc", "top_tier_share"] == pytest.approx(75.0)
    assert "publications" not in sh.index


def test_markdown_has_every_table_and_escapes_names():
    c = _clusters()
    c.loc[0, "name"] = "A|B"
    md = report_markdown(report_tables(c, {"world_totals": TOTALS}, METRICS), {}, METRICS, notice="SYNTHETIC",
                         top_n=3)
    for title in ("Shares of the world held by the top tier", "Clusters by economy", "Top 10 by patents",
                  "Top 10 by vc", "Top 10 by intensity"):
        assert f"## {title}" in md
    assert "A\\|B" in md and "> **SYNTHETIC**" in md


def test_run_writes_report_files(tmp_path):
    rows = [("patents", f"d{i}", 48.137, 11.575, "DE") for i in range(6)]
    rows += [("patents", f"e{i}", 47.56, 7.59, "CH") for i in range(3)] + [("patents", "f", 47.6, 7.66, "DE")] * 1
    rec = pd.DataFrame(rows, columns=["metric", "doc_id", "lat", "lon", "country"])
    res = cluster.run(rec, load_config(overrides={"min_weight": {"patents": 3.0}}))
    res.write(tmp_path / "out")
    for f in REPORT_FILES:
        assert (tmp_path / "out" / f).is_file(), f
    shares = pd.read_csv(tmp_path / "out" / "report_top_tier_shares.csv")
    assert shares["metric"].tolist() == ["patents"]
    assert shares["top_tier_share"].item() == pytest.approx(100.0)
    eco = pd.read_csv(tmp_path / "out" / "report_economies.csv", keep_default_na=False)
    assert set(eco["economy"]) == {"DE", "CH"}
