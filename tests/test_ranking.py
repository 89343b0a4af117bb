"""Ranking stage, and the published GII 2023 table reproduced through the pipeline."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cluster.config import load_config
from cluster.ingest.read import validate_frame
from cluster.pipeline import cluster_records
from cluster.stages.ranking import assign_cluster_ids, geohash, rank_clusters

GII = Path(__file__).parent / "data" / "gii2023_top_clusters.csv"
# Where each published cluster is (its main city), for building the test input.
GII_PLACES = {
    "Tokyo–Yokohama": (35.69, 139.69), "Shenzhen–Hong Kong–Guangzhou": (22.55, 114.07),
    "Seoul": (37.57, 126.98), "Beijing": (39.91, 116.40), "Shanghai–Suzhou": (31.22, 121.46),
    "San Jose–San Francisco": (37.34, -121.89), "Osaka–Kobe–Kyoto": (34.69, 135.50),
    "Boston–Cambridge": (42.36, -71.06), "San Diego": (32.72, -117.16), "New York City": (40.71, -74.01),
    "Nanjing": (32.06, 118.78), "Paris": (48.85, 2.35), "Wuhan": (30.58, 114.27),
    "Hangzhou": (30.29, 120.16), "Nagoya": (35.18, 136.91),
}


def test_geohash_reference_value():
    assert geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"  # the standard worked example
    base = "g" + geohash(1.0, 2.0, 7)
    assert assign_cluster_ids([1.0, 1.0, 5.0], [2.0, 2.0, 2.0]) == [base, base + "-2", "g" + geohash(5.0, 2.0, 7)]


def test_scores_ties_tiers_and_intensity():
    counts = pd.DataFrame({"patents": [10.0, 30.0, 10.0, 5.0], "vc": [0.0, 10.0, 0.0, 0.0]})
    out = rank_clusters(counts, {"patents": 100.0, "vc": 20.0}, {"patents": 1.0, "vc": 2.0},
                        population=[1e6, 4e6, 2e6, 0], cluster_ids=["b", "a", "c", "d"], top_n=3)
    assert out["cluster_id"].tolist() == ["a", "b", "c", "d"]  # b and c tie on score: id order
    assert out.loc[0, "score"] == pytest.approx(30 + 2 * 50)
    assert out["tier"].tolist() == ["top", "top", "top", "emerging"]
    assert out.loc[0, "patents_per_million"] == pytest.approx(7.5)
    # intensity = score per million: a 32.5, b 10, c 5; d has no population and no rank
    assert out["intensity_rank"].tolist()[:3] == [1, 2, 3] and pd.isna(out.loc[3, "intensity_rank"])
    assert np.isnan(out.loc[3, "intensity_score"])


def test_absent_metric_is_left_out_of_the_score():
    counts = pd.DataFrame({"patents": [10.0], "vc": [0.0]})
    out = rank_clusters(counts, {"patents": 100.0, "vc": 0.0}, {}, [1e6], ["x"], top_n=1)
    assert out.loc[0, "score"] == pytest.approx(10.0) and np.isnan(out.loc[0, "share_vc"])


def _gii_world_totals(rows):
    """World totals consistent with every published (rounded to 0.1) share."""
    totals = {}
    for count, share in (("pct_applications", "pct_share_pct"), ("scientific_articles", "articles_share_pct")):
        lo = max(float(r[count]) / (float(r[share]) + 0.05) * 100 for r in rows)
        hi = min(float(r[count]) / (float(r[share]) - 0.05) * 100 for r in rows)
        assert lo < hi, "the published shares admit no common world total"
        totals[count] = (lo + hi) / 2
    return totals


def test_gii_2023_table_is_reproduced():
    rows = list(csv.DictReader(GII.open(encoding="utf-8")))
    totals = _gii_world_totals(rows)
    recs = []
    for r in rows:
        lat, lon = GII_PLACES[r["cluster"]]
        recs.append({"metric": "patents", "weight": float(r["pct_applications"]), "lat": lat, "lon": lon})
        recs.append({"metric": "publications", "weight": float(r["scientific_articles"]), "lat": lat, "lon": lon})
    # The rest of the world: isolated sites in the southern oceans, each far below the threshold.
    n_rest = 10_000
    grid_lat = -60.0 + (np.arange(n_rest) // 180) * 1.0
    grid_lon = -179.0 + (np.arange(n_rest) % 180) * 2.0
    for metric, key in (("patents", "pct_applications"), ("publications", "scientific_articles")):
        rest = totals[key] - sum(float(r[key]) for r in rows)
        recs += [{"metric": metric, "weight": rest / n_rest, "lat": a, "lon": b} for a, b in zip(grid_lat, grid_lon)]
    config = load_config(overrides={"min_weight": {"patents": 1000.0, "publications": 1000.0}})
    from dataclasses import replace
    config = replace(config, metrics=config.metrics[:2])
    records = validate_frame(pd.DataFrame(recs), "<gii>", config.metric_names)
    result = cluster_records(records, config)
    got = result.clusters
    assert len(got) == len(rows)
    for r in rows:
        lat, lon = GII_PLACES[r["cluster"]]
        hit = got[(got["anchor_lat"] == lat) & (got["anchor_lon"] == lon)]
        assert len(hit) == 1, r["cluster"]
        hit = hit.iloc[0]
        assert hit["rank"] == int(r["rank"]), r["cluster"]
        assert hit["patents"] == pytest.approx(float(r["pct_applications"]))
        assert abs(hit["share_patents"] - float(r["pct_share_pct"])) <= 0.05 + 1e-9
        assert abs(hit["share_publications"] - float(r["articles_share_pct"])) <= 0.05 + 1e-9
        assert abs(hit["score"] - float(r["total_pct"])) <= 0.1
