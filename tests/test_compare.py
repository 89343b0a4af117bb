"""Editions (cluster.editions): matching, classification, the compare table, --previous,
and `cluster compare` from the command line.

Hand-built editions (boxes and sites near the equator) for the rules; real PatentsView
inventor locations 2000 and 2013 (data/real/, see data/README.md) for the done criteria.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from cluster.cli._main import main
from cluster.editions import Edition, check_comparable, compare_editions, match_editions, reuse_ids, write_comparison
from cluster.errors import UserInputError

REAL = Path(__file__).resolve().parents[1] / "data" / "real"


def _edition(rows, sites, *, eps_km=10.0, metrics=("patents",), label="e"):
    """rows: (id, name, lon0, lon1, lat0, lat1, score); ranks by score; top tier = ranks 1-2."""
    df = pd.DataFrame(rows, columns=["cluster_id", "name", "x0", "x1", "y0", "y1", "score"])
    df = df.sort_values("score", ascending=False, kind="mergesort").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    df["tier"] = np.where(df["rank"] <= 2, "top", "emerging")
    df["economies"] = "XX"
    df["share_patents"] = df["score"]
    df["intensity_score"] = df["score"] / 10
    df["intensity_rank"] = pd.array(df["rank"], dtype="Int64")
    df["anchor_lon"], df["anchor_lat"] = (df["x0"] + df["x1"]) / 2, (df["y0"] + df["y1"]) / 2
    geoms = [box(r.x0, r.y0, r.x1, r.y1) for r in df.itertuples()]
    clusters = gpd.GeoDataFrame(df.drop(columns=["x0", "x1", "y0", "y1"]), geometry=geoms, crs="EPSG:4326")
    s = None if sites is None else pd.DataFrame(sites, columns=["cluster_id", "lon", "lat", "weight"]).assign(
        metric="patents")
    info = {"config": {"clustering": {"eps_km": eps_km}, "ranking": {"top_n": 2},
                       "metrics": {m: {"min_share": 0.0005, "score_weight": 1.0} for m in metrics}},
            "world_totals": {m: 100.0 for m in metrics}}
    return Edition(clusters=clusters, sites=s, info=info, label=label)


OLD = _edition(
    [("A", "A", 0, 1, 0, 1, 10), ("B", "B", 5, 7, 0, 1, 10.5), ("C", "C", 10, 11, 0, 1, 5),
     ("D", "D", 11, 12, 0, 1, 1), ("E", "E", 20, 21, 0, 1, 3), ("F", "F", 30, 30.2, 0, 0.2, 0.5)],
    [("A", 0.5, 0.5, 10), ("B", 5.5, 0.5, 8), ("B", 6.5, 0.5, 2), ("C", 10.5, 0.5, 5), ("D", 11.5, 0.5, 1),
     ("E", 20.5, 0.5, 3), ("F", 30.1, 0.1, 1)], label="old")
NEW = _edition(
    [("n1", "A", 0, 1, 0, 1, 9), ("n2", "B", 5, 6, 0, 1, 8), ("n3", "B east", 6, 7, 0, 1, 2),
     ("n4", "C", 10, 12, 0, 1, 7), ("n5", "F", 29, 31, -1, 1, 31), ("n6", "G", 40, 41, 0, 1, 4)],
    [("n1", 0.5, 0.5, 9), ("n2", 5.5, 0.5, 8), ("n3", 6.5, 0.5, 2), ("n4", 10.5, 0.5, 6), ("n4", 11.5, 0.5, 1),
     ("n5", 30.1, 0.1, 1), ("n5", 29.5, 0.5, 30), ("n6", 40.5, 0.5, 4)], label="new")


def test_classification_of_every_case():
    m = match_editions(OLD, NEW)
    assert m.method == "sites"
    new, old = m.status_of("new").to_dict(), m.status_of("old").to_dict()
    assert new == {"n1": "continuing", "n2": "continuing", "n3": "split", "n4": "continuing",
                   "n5": "continuing", "n6": "new"}
    assert old == {"A": "continuing", "B": "continuing", "C": "continuing", "D": "merged", "E": "gone",
                   "F": "continuing"}
    cont = dict(zip(m.continuing()["new_id"], m.continuing()["old_id"]))
    assert cont == {"n1": "A", "n2": "B", "n4": "C", "n5": "F"}


def test_overlap_shares_and_iou():
    p = match_editions(OLD, NEW).pairs.set_index(["old_id", "new_id"])
    assert p.loc[("B", "n3"), "old_in_new"] == pytest.approx(0.2)
    assert p.loc[("B", "n3"), "new_in_old"] == pytest.approx(1.0)
    assert p.loc[("F", "n5"), "new_in_old"] == pytest.approx(1 / 31)
    assert p.loc[("A", "n1"), "iou"] == pytest.approx(1.0)
    assert p.loc[("B", "n2"), "iou"] == pytest.approx(0.5, rel=1e-3)


def test_without_sites_polygon_areas_decide():
    old = Edition(OLD.clusters, None, OLD.info, "old")
    m = match_editions(old, NEW)
    assert m.method == "areas"
    assert m.status_of("new")["n1"] == "continuing"


def test_a_small_cluster_inside_a_continuing_one_split_off_it():
    # Issue 25: all of "t" lay inside A, which continues as n1: t split off A (it was
    # "new" before, as San Francisco 2013 inside San Jose–San Francisco 2000 was).
    new = _edition([("n1", "A", 0, 1, 0, 1, 9), ("t", "tiny", 0.9, 1.0, 0.9, 1.0, 0.1)],
                   [("n1", 0.5, 0.5, 9), ("t", 0.95, 0.95, 0.1)])
    old = _edition([("A", "A", 0, 1, 0, 1, 10)], [("A", 0.5, 0.5, 10), ("A", 0.95, 0.95, 0.2)])
    m = match_editions(old, new)
    assert m.status_of("new").to_dict() == {"n1": "continuing", "t": "split"}
    pair = m.pairs.set_index("new_id").loc["t"]
    assert pair["status"] == "split" and pair["group_status"] == "split"


def test_a_split_piece_that_also_absorbed_a_small_cluster():
    # Old: big B (sites at 5.5 and 6.9) and small S inside the new n3; new: n2 continues B,
    # n3 holds B's eastern site (20 % of B) and all of S. n3's main predecessor is B (90 %
    # of n3): a split of B; S merged into n3. The group is regrouped.
    old = _edition([("B", "B", 5, 7, 0, 1, 10), ("S", "S", 6.8, 7.2, 0.8, 1.2, 0.2)],
                   [("B", 5.5, 0.5, 8), ("B", 6.9, 0.5, 2), ("S", 7.1, 1.1, 0.2)])
    new = _edition([("n2", "B", 5, 6, 0, 1, 8), ("n3", "B east", 6.5, 7.5, 0, 1.5, 2.2)],
                   [("n2", 5.5, 0.5, 8), ("n3", 6.9, 0.5, 2), ("n3", 7.1, 1.1, 0.2)])
    c = compare_editions(old, new)
    t = c.table.set_index(["old_id", "new_id"])
    assert t.loc[("B", "n2"), "status"] == "continuing"
    assert t.loc[("B", "n3"), "status"] == "split" and t.loc[("S", "n3"), "status"] == "merged"
    assert set(t["group_status"]) == {"regrouped"}
    # n3's footprint held B's eastern site and S before: 2.2 then and now.
    assert t.loc[("B", "n3"), "old_same_footprint"] == pytest.approx(2.2)
    assert t.loc[("B", "n3"), "growth_same_footprint"] == pytest.approx(0.0)
    g = c.groups().iloc[0]
    assert g["old_score"] == pytest.approx(10.2) and g["new_score"] == pytest.approx(10.2)
    assert g["new_clusters"] == ["B", "B east"]


def test_ties_of_main_links_go_to_the_better_rank():
    # Old A is split in two halves of equal activity (each holds 50 %, min_contained): on
    # the tie, A's main successor is the half of better rank (R, rank 1), which continues.
    old = _edition([("A", "A", 0, 2, 0, 1, 10)], [("A", 0.5, 0.5, 5), ("A", 1.5, 0.5, 5)])
    new = _edition([("L", "left", 0, 1, 0, 1, 5), ("R", "right", 1, 2, 0, 1, 5.1)],
                   [("L", 0.5, 0.5, 5), ("R", 1.5, 0.5, 5)])
    m = match_editions(old, new)
    assert m.status_of("new").to_dict() == {"R": "continuing", "L": "split"}
    # Swap the ranks: the other half continues.
    new2 = _edition([("L", "left", 0, 1, 0, 1, 5.1), ("R", "right", 1, 2, 0, 1, 5)],
                    [("L", 0.5, 0.5, 5), ("R", 1.5, 0.5, 5)])
    assert match_editions(old, new2).status_of("new").to_dict() == {"L": "continuing", "R": "split"}


def test_growth_on_the_same_footprint():
    c = compare_editions(OLD, NEW)
    t = c.table.set_index(["old_id", "new_id"])
    # n5 (score 31) sits where F had 1: growth 30x, on its own footprint.
    f = t.loc[("F", "n5")]
    assert f["footprint"] == "new" and f["old_same_footprint"] == pytest.approx(1.0)
    assert f["new_same_footprint"] == pytest.approx(31.0) and f["growth_same_footprint"] == pytest.approx(30.0)
    # B split in n2 and n3: each part measured on its own footprint (no growth), the
    # score falls from 10.5 to 8 for the continuing part because of the boundary.
    b = t.loc[("B", "n2")]
    assert b["old_same_footprint"] == pytest.approx(8.0) and b["growth_same_footprint"] == pytest.approx(0.0)
    assert b["boundary_change"] and b["score_growth"] < -0.2
    assert not t.loc[("A", "n1"), "boundary_change"]
    # Gone E: the new activity inside its old footprint (none).
    e = c.table[c.table["old_id"] == "E"].iloc[0]
    assert e["footprint"] == "old" and e["new_same_footprint"] == 0.0 and e["growth_same_footprint"] == -1.0
    assert e["group_growth_same_footprint"] == -1.0
    # The split group B -> n2, n3 as a whole.
    g = c.groups().set_index("group_status").loc["split"]
    assert g["old_score"] == pytest.approx(10.5) and g["new_score"] == pytest.approx(10.0)
    assert g["old_same_footprint"] == pytest.approx(10.0) and g["growth_same_footprint"] == pytest.approx(0.0)


def test_compare_table_ranks_and_lists():
    c = compare_editions(OLD, NEW)
    t = c.table
    f = t[(t["old_id"] == "F") & (t["new_id"] == "n5")].iloc[0]
    assert f["status"] == "continuing" and f["old_rank"] == 6 and f["new_rank"] == 1 and f["rank_change"] == 5
    assert f["score_change"] == pytest.approx(30.5)
    assert set(t.loc[t["status"] == "gone", "old_id"]) == {"E"}
    assert set(t.loc[t["status"] == "new", "new_id"]) == {"n6"}
    assert c.newcomers()["new_id"].tolist() == ["n5"]  # F was emerging, now rank 1
    assert c.risers()["new_id"].tolist() == ["n5"]
    # B (old rank 1) continues as n2, rank 3 now: out of the top two. A stays in (rank 2).
    assert c.dropouts()["old_id"].tolist() == ["B"]


def test_different_radius_or_metrics_are_refused_unless_forced():
    other = _edition([("A", "A", 0, 1, 0, 1, 10)], None, eps_km=15.0, metrics=("patents", "vc"), label="other")
    with pytest.raises(UserInputError) as exc:
        check_comparable(OLD, other)
    assert "eps_km 10 in old, 15 in other" in str(exc.value) and "the metrics differ" in str(exc.value)
    assert "--force" in exc.value.for_cli()
    assert len(check_comparable(OLD, other, force=True)) == 2


def test_write_comparison(tmp_path):
    out = write_comparison(compare_editions(OLD, NEW), tmp_path / "cmp")
    for f in ("compare.csv", "compare.md", "compare.png", "run.json"):
        assert (out / f).is_file()
    md = (out / "compare.md").read_text()
    assert "## Newcomers to the top tier (1)" in md and "## Ten biggest risers (1)" in md
    info = json.loads((out / "run.json").read_text())
    assert info["clusters_by_status"]["old"] == {"continuing": 4, "merged": 1, "gone": 1}
    assert info["clusters_by_status"]["new"] == {"continuing": 4, "split": 1, "new": 1}
    assert len(pd.read_csv(out / "compare.csv")) == 8  # 6 linked pairs, 1 gone, 1 new


@dataclass(frozen=True)
class _Result:
    clusters: gpd.GeoDataFrame
    sites: pd.DataFrame
    info: dict
    config: object = None
    profiles: pd.DataFrame | None = None


def test_reuse_ids_keeps_continuing_ids_and_stays_unique():
    clusters = NEW.clusters.copy()
    clusters.loc[clusters["cluster_id"] == "n3", "cluster_id"] = "A"  # a geohash id equal to a reused one
    sites = NEW.sites.replace({"cluster_id": {"n3": "A"}})
    profiles = pd.DataFrame({"cluster_id": ["n1", "A"], "value": ["x", "y"]})
    res = reuse_ids(_Result(clusters, sites, dict(NEW.info), profiles=profiles), OLD)
    ids = dict(zip(res.clusters["name"], res.clusters["cluster_id"]))
    assert ids == {"A": "A", "B": "B", "B east": "A-2", "C": "C", "F": "F", "G": "n6"}
    assert res.clusters["cluster_id"].is_unique
    assert set(res.sites["cluster_id"]) == set(res.clusters["cluster_id"])
    assert res.profiles["cluster_id"].tolist() == ["A", "A-2"]
    assert res.info["previous"]["ids_reused"] == 4


def test_compare_usage_errors_exit_2(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "needs two editions" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not the output folder of a `cluster run`" in capsys.readouterr().err
    assert main(["run", "--previous", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--window", "2020-2019", "--window", "2021"])
    assert exc.value.code == 2


@pytest.fixture(scope="module")
def patentsview(tmp_path_factory):
    """PatentsView 2000 and 2013 clustered as published (--map), 2013 also with --previous;
    at 10 km whatever patentsview.toml says, every site kept (sites_outside)."""
    root = tmp_path_factory.mktemp("pv")
    cfg = root / "patentsview.toml"
    text = (REAL / "patentsview.toml").read_text().replace('"patentsview_', f'"{REAL.as_posix()}/patentsview_')
    if "sites_outside" not in text:
        text += "\n[outputs]\nsites_outside = true\n"
    text = re.sub(r"(?m)^split_scale = .*$", "split_scale = 1.0", text)  # plain DBSCAN at 10 km
    cfg.write_text(text)
    cfg = str(cfg)
    for year in (2000, 2013):
        src = str(REAL / f"patentsview_inventor_locations_{year}.csv")
        assert main(["-q", "run", "--config", cfg, "--eps-km", "10", "--input", src,
                     "--out", str(root / str(year))]) == 0
    src = str(REAL / "patentsview_inventor_locations_2013.csv")
    assert main(["-q", "run", "--input", src, "--map", "weight=n_inventors", "--metric", "patents", "--eps-km", "10",
                 "--config", cfg, "--previous", str(root / "2000"), "--out", str(root / "2013p")]) == 0
    assert main(["-q", "compare", str(root / "2000"), str(root / "2013"), "--out", str(root / "cmp")]) == 0
    return root


@pytest.mark.slow
def test_patentsview_2000_2013_risers_and_newcomers(patentsview):
    md = (patentsview / "cmp" / "compare.md").read_text()
    newcomers = md.split("## Newcomers")[1].split("## Drop-outs")[0]
    risers = md.split("## Ten biggest risers")[1]  # risers, fallers and fastest growing
    assert "| Beijing |" in newcomers and "| Shenzhen |" in newcomers
    assert "| Seoul |" in risers or "| Seoul–Suwon |" in risers  # the name at 15 km (patentsview.toml)


def _pv_table(root):
    return pd.read_csv(root / "cmp" / "compare.csv", keep_default_na=False, na_values=[""])


@pytest.mark.slow
def test_patentsview_san_francisco_split_off_san_jose_san_francisco(patentsview):
    """Issue 25: San Francisco 2013 was read as "continuing" from San Rafael (5 % of its
    activity), rank +154. Its 2000 activity (2,413 inventors at its geocode, PatentsView
    2000) lay inside "San Jose–San Francisco": it split off, with its own growth."""
    t = _pv_table(patentsview)
    sf = t[t["new_name"] == "San Francisco"]
    main_row = sf[sf["old_name"] == "San Jose–San Francisco"].iloc[0]
    assert main_row["status"] == "split" and main_row["boundary_change"]
    assert main_row["new_in_old"] >= 0.9  # nearly all of San Francisco 2013 lay inside it
    assert "continuing" not in set(sf["status"])
    # Same footprint: San Francisco's 2000 activity (the 2,413 inventors at its geocode
    # and its neighbours, world total 506,693) against its 2013 score.
    assert 0.45 <= main_row["old_same_footprint"] <= 0.7
    ratio = main_row["new_score"] / main_row["old_same_footprint"]
    assert main_row["growth_same_footprint"] == pytest.approx(ratio - 1)
    assert 0.8 <= main_row["growth_same_footprint"] <= 2.0
    # San Jose continues San Jose–San Francisco; its rank change is labelled a boundary change.
    sj = t[(t["old_name"] == "San Jose–San Francisco") & (t["status"] == "continuing")].iloc[0]
    assert sj["new_name"] == "San Jose" and sj["boundary_change"]
    md = (patentsview / "cmp" / "compare.md").read_text()
    assert "San Francisco | US | 2 | 12 | split (San Jose–San Francisco)" in md
    assert "+154" not in md


@pytest.mark.slow
def test_patentsview_tokyo_growth_beside_the_yokohama_split(patentsview):
    """Tokyo–Yokohama 2000 (rank 1) -> Tokyo 2013 read as a 45 % fall of the score while
    Yokohama split off; on Tokyo's own 2013 footprint the fall is smaller, and the group
    (Tokyo, Yokohama, ...) is reported as a whole."""
    t = _pv_table(patentsview)
    tokyo = t[(t["old_name"] == "Tokyo–Yokohama") & (t["new_name"] == "Tokyo")].iloc[0]
    yokohama = t[(t["old_name"] == "Tokyo–Yokohama") & (t["new_name"] == "Yokohama")].iloc[0]
    assert tokyo["status"] == "continuing" and yokohama["status"] == "split"
    assert tokyo["boundary_change"] and tokyo["group"] == yokohama["group"]
    assert tokyo["score_growth"] < -0.4
    assert -0.4 < tokyo["growth_same_footprint"] < -0.2
    assert yokohama["growth_same_footprint"] > 0.3
    assert tokyo["group_old_score"] == pytest.approx(tokyo["old_score"])
    assert tokyo["group_new_score"] > tokyo["new_score"] + yokohama["new_score"] - 1e-6
    md = (patentsview / "cmp" / "compare.md").read_text()
    assert md.index("by growth on the same footprint") < md.index("## Newcomers")
    assert "Tokyo–Yokohama → Tokyo, Yokohama" in md and "Ties: the better rank" in md


@pytest.mark.slow
def test_patentsview_same_place_pairs_continue(patentsview):
    from cluster.editions import load_edition

    m = match_editions(load_edition(patentsview / "2000"), load_edition(patentsview / "2013"))
    same = m.pairs[m.pairs["iou"] >= 0.3]
    assert len(same) > 100
    assert (same["status"] == "continuing").mean() >= 0.95


@pytest.mark.slow
def test_patentsview_previous_keeps_every_continuing_id(patentsview):
    from cluster.editions import load_edition

    old = load_edition(patentsview / "2000")
    m = match_editions(old, load_edition(patentsview / "2013p"))
    cont = m.continuing()
    assert len(cont) > 100 and (cont["old_id"] == cont["new_id"]).all()
    ranking = pd.read_csv(patentsview / "2013p" / "ranking.csv")
    assert ranking["cluster_id"].is_unique
    plain = pd.read_csv(patentsview / "2013" / "ranking.csv")
    # Same clusters, same ranks: only the ids of continuing clusters changed, to 2000's.
    np.testing.assert_array_equal(ranking["score"], plain["score"])
    changed = ranking["cluster_id"] != plain["cluster_id"]
    assert changed.sum() >= 10
    # ... or, for a new cluster whose geohash is an id taken over by another, suffixed.
    assert {i.split("-")[0] for i in ranking.loc[changed, "cluster_id"]} <= set(old.clusters["cluster_id"])


@pytest.mark.slow
def test_patentsview_different_radius_exit_2_unless_forced(patentsview, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(patentsview / "2013", other)
    info = json.loads((other / "run.json").read_text())
    info["config"]["clustering"]["eps_km"] = 20.0
    (other / "run.json").write_text(json.dumps(info))
    assert main(["-q", "compare", str(patentsview / "2000"), str(other), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "eps_km 10 in" in err and "--force" in err
    assert main(["-q", "compare", str(patentsview / "2000"), str(other), "--force", "--out", str(tmp_path / "c")]) == 0


@pytest.mark.slow
def test_compare_two_year_windows_of_the_demo(tmp_path):
    out = tmp_path / "cmp"
    assert main(["-q", "compare", "--window", "2019-2020", "--window", "2022-2023", "--demo-records", "60000",
                 "--out", str(out)]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["old"]["label"] == "2019–2020" and info["synthetic"] is True
    assert info["clusters_by_status"]["new"]["continuing"] > 10


def test_footprint_caveat_when_the_older_run_kept_only_clustered_sites(tmp_path):
    from cluster.editions.compare import compare_info, compare_markdown

    c = compare_editions(OLD, NEW)
    assert not OLD.sites_outside
    assert "kept only its clustered sites" in compare_markdown(c)
    assert compare_info(c)["footprint_sites"] == "clustered"
    kept = Edition(OLD.clusters, OLD.sites, {**OLD.info, "config": {**OLD.info["config"],
                                                                    "outputs": {"sites_outside": True}}}, "old")
    c2 = compare_editions(kept, NEW)
    assert "kept only its clustered sites" not in compare_markdown(c2)
    assert compare_info(c2)["footprint_sites"] == "all"
