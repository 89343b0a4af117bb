"""Cluster profiles (cluster.stages.profiles): top fields and institutions per cluster.

Hand-built records with known fractional counts, and the demo world, whose hubs have a
planted top institution (patents: ``Synthetic Corp {50 * hub}``, the Zipf head of the
hub's applicants; articles: ``Synthetic University of {hub}``) and a planted field
(``cluster.demo.hub_fields``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

import cluster
from cluster.config import load_config
from cluster.demo import HUBS, generate_demo, hub_fields
from cluster.ingest.read import validate_frame
from cluster.stages.sites import document_sizes, fractional_weights


def _records():
    """Two cities 500 km apart, 6 single-site patents each, plus one patent co-invented
    in both (1/2 to each). Munich: 4 'Optics' by 'A', 2 'Transport' by 'B'; Stuttgart:
    6 'Transport' by 'C'; the shared patent is 'Optics' by 'A'."""
    rows = []
    for i in range(6):
        rows.append(("patents", f"m{i}", 48.137, 11.575, "Optics" if i < 4 else "Transport", "A" if i < 4 else "B"))
        rows.append(("patents", f"s{i}", 48.776, 9.177, "Transport", "C"))
    rows.append(("patents", "x", 48.137, 11.575, "Optics", "A"))
    rows.append(("patents", "x", 48.776, 9.177, "Optics", "A"))
    return pd.DataFrame(rows, columns=["metric", "doc_id", "lat", "lon", "field", "institution"])


@pytest.fixture(scope="module")
def small():
    config = load_config(overrides={"min_weight": {"patents": 3.0, "publications": 3.0, "vc": 3.0}})
    return cluster.run(_records(), config)


def test_profiles_hold_fractional_shares(small):
    p = small.profiles
    munich = small.clusters.loc[small.clusters["name"].str.contains("Munich"), "cluster_id"].item()
    m = p[(p["cluster_id"] == munich) & (p["kind"] == "field")].set_index("value")
    # Munich counts 6 + 1/2 patents: Optics 4.5, Transport 2.
    assert m.loc["Optics", "weight"] == pytest.approx(4.5)
    assert m.loc["Optics", "share"] == pytest.approx(4.5 / 6.5)
    assert m.loc["Transport", "share"] == pytest.approx(2 / 6.5)
    assert m.loc["Optics", "position"] == 1
    row = small.clusters.set_index("cluster_id").loc[munich]
    assert row["top_field_patents"] == "Optics" and row["top_institution_patents"] == "A"
    assert row["patents"] == pytest.approx(6.5)


def test_profile_weights_add_up_to_the_cluster_counts(small):
    p = small.profiles
    for kind in ("field", "institution"):
        total = p[p["kind"] == kind].groupby("cluster_id")["weight"].sum()
        counts = small.clusters.set_index("cluster_id")["patents"]
        np.testing.assert_allclose(total.reindex(counts.index).to_numpy(), counts.to_numpy())


def test_metric_without_values_has_empty_top_columns(small):
    assert small.clusters["top_field_publications"].isna().all()
    assert small.clusters["top_institution_vc"].isna().all()


def test_blank_values_count_in_the_denominator_only():
    rec = _records()
    rec.loc[rec["doc_id"].isin(["m4", "m5"]), "institution"] = "  "
    config = load_config(overrides={"min_weight": {"patents": 3.0}})
    res = cluster.run(rec, config)
    munich = res.clusters.loc[res.clusters["name"].str.contains("Munich"), "cluster_id"].item()
    inst = res.profiles[(res.profiles["cluster_id"] == munich) & (res.profiles["kind"] == "institution")]
    assert inst["value"].tolist() == ["A"]
    assert inst["share"].item() == pytest.approx(4.5 / 6.5)


def test_no_field_or_institution_means_no_profiles():
    rec = _records().drop(columns=["field", "institution"])
    res = cluster.run(rec, load_config(overrides={"min_weight": {"patents": 3.0}}))
    assert res.profiles is None
    assert not [c for c in res.clusters.columns if c.startswith("top_")]


def test_profile_weights_equal_the_records_fractional_weights_summed_by_hand():
    rec = generate_demo(20_000, 3, fields=True)
    rec["weight"] = np.where(np.arange(len(rec)) % 7 == 0, 2.5, np.nan)
    res = cluster.run(rec)
    v = validate_frame(rec, "<demo>", ("patents", "publications", "vc"))
    w = fractional_weights(v, document_sizes(v))
    sites = res.sites.assign(metric=res.sites["metric"].astype(str))
    key = pd.DataFrame({"metric": v["metric"].astype(str), "lat": v["lat"], "lon": v["lon"], "w": w,
                        "field": v["field"]})
    joined = key.merge(sites[["metric", "lat", "lon", "cluster_id"]], on=["metric", "lat", "lon"])
    by_hand = joined.dropna(subset=["cluster_id", "field"]).groupby(["cluster_id", "metric", "field"])["w"].sum()
    p = res.profiles[res.profiles["kind"] == "field"].set_index(["cluster_id", "metric", "value"])["weight"]
    assert len(p) == len(by_hand)
    np.testing.assert_allclose(p.reindex(by_hand.index).to_numpy(), by_hand.round(9).to_numpy(), atol=1e-9)


def test_profiles_do_not_depend_on_row_order(small):
    rec = _records().sample(frac=1.0, random_state=4).reset_index(drop=True)
    res = cluster.run(rec, load_config(overrides={"min_weight": {"patents": 3.0}}))
    pd.testing.assert_frame_equal(res.profiles.reset_index(drop=True), small.profiles.reset_index(drop=True),
                                  check_exact=False, rtol=1e-12)


def _expected(values, strength):
    """The planted value with the largest summed hub strength, and whether it leads the
    second by at least 1.5 times (a clear planted signal)."""
    total = pd.Series(strength).groupby(list(values)).sum().sort_values(ascending=False)
    clear = len(total) == 1 or total.iloc[0] >= 1.5 * total.iloc[1]
    return total.index[0], clear, set(total.index)


@pytest.mark.slow
def test_demo_profiles_name_the_planted_institution_and_field():
    seed = 0
    res = cluster.run(generate_demo(300_000, seed, fields=True))
    planted = hub_fields(seed)
    hub_pts = shapely.points([h[3] for h in HUBS], [h[2] for h in HUBS])
    strength = {m: np.array([h[4 + i] for h in HUBS]) for i, m in enumerate(("patents", "publications", "vc"))}
    institution = {"patents": [f"Synthetic Corp {50 * i}" for i in range(len(HUBS))],
                   "publications": [f"Synthetic University of {h[0]}" for h in HUBS]}
    n_clear = 0
    for _, c in res.clusters.head(5).iterrows():
        inside = np.flatnonzero(shapely.contains(c.geometry, hub_pts))
        assert len(inside), c["name"]
        for m in ("patents", "publications"):
            for kind, values in (("field", planted[m]), ("institution", institution[m])):
                best, clear, candidates = _expected([values[i] for i in inside], strength[m][inside])
                got = c[f"top_{kind}_{m}"]
                # Always one of the values planted in the cluster's hubs; the planted
                # leader whenever the hubs' strengths make it clear.
                assert got in candidates, (c["name"], m, kind, got)
                if clear:
                    n_clear += 1
                    assert got == best, (c["name"], m, kind, got, best)
    assert n_clear >= 15  # of 20 (5 clusters x 2 metrics x 2 kinds)


def test_profiles_csv_is_the_join_of_profiles_and_clusters_in_rank_order(tmp_path):
    from cluster.outputs._text import write_csv
    from cluster.outputs.files import write_profiles_csv

    clusters = pd.DataFrame({"rank": [1, 2, 3, 4], "cluster_id": ["C9", "C2", "C5", "C7"],
                             "name": ["=Evil", "Bonn, Köln", None, "Bonn, Köln"]})
    profiles = pd.DataFrame({"cluster_id": ["C2", "C9", "C2", "C0", "C9", "C5"],
                             "metric": ["patents", "patents", "vc", "patents", "vc", "patents"],
                             "kind": ["field", "field", "institution", "field", "field", "institution"],
                             "position": [1, 1, 1, 1, 1, 1], "value": ["x", "-y", 'a "b"', "z", None, "w"],
                             "weight": [1.23456789, 2.0, 0.5, 1.0, 3.0, 1e-9],
                             "share": [0.1234567, 1.0, 0.25, 1.0, np.nan, 0.0]})
    write_profiles_csv(tmp_path / "p.csv", profiles, clusters)
    # What it was written as before: pandas' inner join in the clusters' order, rounded.
    df = clusters[["cluster_id", "rank", "name"]].merge(profiles, on="cluster_id", how="inner", sort=False)
    df = df[["rank", "cluster_id", "name", "metric", "kind", "position", "value", "weight", "share"]]
    df["weight"], df["share"] = df["weight"].round(4), df["share"].round(6)
    write_csv(df, tmp_path / "ref.csv")
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    assert (tmp_path / "p.csv").read_text("utf-8").splitlines()[1] == "1,C9,'=Evil,patents,field,1,'-y,2.0,1.0"
    with pytest.raises(ValueError, match="cluster ids repeat"):
        write_profiles_csv(tmp_path / "p.csv", profiles, pd.concat([clusters, clusters]))
