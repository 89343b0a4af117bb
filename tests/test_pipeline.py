"""The whole pipeline on small hand-built inputs and through the CLI."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import shapely
from helpers import make_records, offsets_km

import cluster
from cluster.cli import main
from cluster.ingest.read import validate_frame
from cluster.outputs.files import OUTPUT_FILES
from cluster.pipeline import cluster_records

METRICS = ("patents", "publications", "vc")


def _world(seed=0):
    """Three hand-built regions plus scattered noise.

    * Basel: patents in Basel (CH) and publications in Lörrach (DE), 8 km apart;
    * Fiji across the antimeridian: sites at 179.98 E and 179.97 W;
    * Munich: patents only, 20 sites in a 10 km square.
    """
    rng = np.random.default_rng(seed)
    basel = make_records([(47.5596, 7.5886, "CH"), (47.5650, 7.6000, "CH")], "patents", per_site=6, doc_prefix="b")
    lorrach = make_records([(47.6156, 7.6611, "DE"), (47.6100, 7.6500, "DE")], "publications", per_site=6,
                           doc_prefix="l")
    fiji = make_records([(-16.80, 179.98), (-16.82, -179.97), (-16.79, 179.99)], "vc", per_site=3, doc_prefix="f")
    munich = make_records([offsets_km(48.137, 11.575, *rng.uniform(-5, 5, 2)) for _ in range(20)], "patents",
                          per_site=1, doc_prefix="m")
    noise = make_records([(rng.uniform(-50, 60), rng.uniform(-170, 170)) for _ in range(30)], "publications",
                         per_site=1, doc_prefix="n")
    return pd.concat([basel, lorrach, fiji, munich, noise], ignore_index=True)


@pytest.fixture
def result(config):
    records = validate_frame(_world(), "<world>", METRICS)
    return cluster_records(records, config)


def test_cross_border_cluster_lists_both_economies(result):
    c = result.clusters
    basel = c[c["economies"].str.contains("CH")].iloc[0]
    assert basel["economies"] in ("CH/DE", "DE/CH")
    assert basel["patents"] == pytest.approx(12) and basel["publications"] == pytest.approx(12)
    assert "Basel" in basel["name"]


def test_antimeridian_cluster_is_one_valid_multipolygon(result):
    c = result.clusters
    fiji = c[c["vc"] > 0].iloc[0]
    assert fiji["vc"] == pytest.approx(9)
    assert fiji.geometry.geom_type == "MultiPolygon" and fiji.geometry.is_valid
    assert fiji["geometry"].bounds[0] == pytest.approx(-180) and fiji["geometry"].bounds[2] == pytest.approx(180)


def test_every_cluster_valid_and_contains_its_sites(result):
    c, s = result.clusters, result.sites
    assert c.crs.to_epsg() == 4326
    assert shapely.is_valid(c.geometry.values).all()
    member = s[s["metric_cluster"] >= 0]
    geom_of = dict(zip(c["cluster_id"], c.geometry))
    for cid, grp in member.groupby("cluster_id"):
        assert shapely.contains_xy(geom_of[cid], grp["lon"], grp["lat"]).all()
    # Munich (20 patents) is its own cluster; scattered noise forms none.
    assert len(c) == 3
    munich = c[c["name"].str.contains("Munich")]
    assert len(munich) == 1 and munich["patents"].iloc[0] == pytest.approx(20)
    assert munich["economies"].iloc[0] == "DE"  # no country column: from the nearest place
    assert c["rank"].tolist() == [1, 2, 3]


def test_shares_use_world_totals_including_noise(result):
    c = result.clusters
    pubs_total = 12 + 30  # Lörrach + noise
    basel = c[c["economies"].str.contains("CH")].iloc[0]
    assert basel["share_publications"] == pytest.approx(100 * 12 / pubs_total)


def _run(args):
    return main(["-q", "run", *args])


def test_cli_writes_every_output_and_is_deterministic(tmp_path, write_csv):
    world = _world()
    a = write_csv(world, "a.csv")
    b = write_csv(world.sample(frac=1, random_state=7), "b.csv")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[metrics.patents]\nmin_weight = 3\n[metrics.publications]\nmin_weight = 3\n"
                   "[metrics.vc]\nmin_weight = 3\n")
    assert _run(["--input", str(a), "--config", str(cfg), "--out", str(tmp_path / "o1")]) == 0
    assert _run(["--input", str(b), "--config", str(cfg), "--out", str(tmp_path / "o2")]) == 0
    for f in OUTPUT_FILES:
        assert (tmp_path / "o1" / f).stat().st_size > 0, f
    for f in ("ranking.csv", "clusters.parquet"):
        assert (tmp_path / "o1" / f).read_bytes() == (tmp_path / "o2" / f).read_bytes(), f
    ranking = pd.read_csv(tmp_path / "o1" / "ranking.csv")
    for col in ["rank", "cluster_id", "name", "economies", "patents", "publications", "vc", "share_patents",
                "share_publications", "share_vc", "score", "population", "patents_per_million",
                "publications_per_million", "vc_per_million", "intensity_rank", "tier"]:
        assert col in ranking.columns, col
    import geopandas as gpd
    gpkg = gpd.read_file(tmp_path / "o1" / "clusters.gpkg", layer="clusters")
    assert gpkg.crs.to_epsg() == 4326 and len(gpkg) == len(ranking) and gpkg.is_valid.all()
    info = json.loads((tmp_path / "o1" / "run.json").read_text())
    assert info["counts"]["clusters"] == len(ranking) and info["inputs"][0]["sha256"]
    assert info["synthetic"] is False and "SYNTHETIC" not in (tmp_path / "o1" / "ranking.md").read_text()


def test_failed_run_leaves_previous_outputs_intact(tmp_path, write_csv, monkeypatch, capsys):
    good = write_csv(_world(), "good.csv")
    out = tmp_path / "out"
    assert _run(["--input", str(good), "--min-weight", "patents=3", "--min-weight", "publications=3",
                 "--min-weight", "vc=3", "--out", str(out)]) == 0
    before = {f: (out / f).read_bytes() for f in OUTPUT_FILES}
    bad = tmp_path / "bad.csv"
    bad.write_text("metric,doc_id,lat,lon\npatents,A,91,10\n")
    assert _run(["--input", str(bad), "--out", str(out)]) == 2
    # An internal failure while writing (here: drawing the map) must not touch out/ either.
    import cluster.outputs.files as outputs

    monkeypatch.setattr(outputs, "draw_map", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "logs"))
    (tmp_path / "logs").mkdir()
    assert _run(["--input", str(good), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError('boom')" in err and "Traceback" not in err
    log = next((tmp_path / "logs").glob("cluster-error-*.log"))
    assert str(log) in err and "RuntimeError: boom" in log.read_text()
    assert {f: (out / f).read_bytes() for f in OUTPUT_FILES} == before
    assert sorted(os.listdir(tmp_path)) == ["bad.csv", "good.csv", "logs", "out"]  # no debris


def test_refuses_to_replace_a_foreign_directory(tmp_path, write_csv, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert _run(["--input", str(write_csv(_world())), "--out", str(tmp_path / "mine")]) == 2
    assert "Refusing to replace" in capsys.readouterr().err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--min-weight", "patents"])
    assert exc.value.code == 2
    assert main(["-qq", "run", "--top", "0"]) == 2  # checked by the configuration's rule (exit 2)
    assert "[ranking] top_n (--top) must be a positive integer" in capsys.readouterr().err


def test_whole_pipeline_on_a_small_demo(tmp_path):
    out = tmp_path / "out"
    assert main(["-q", "run", "--demo-records", "40000", "--seed", "3", "--out", str(out)]) == 0
    import geopandas as gpd

    clusters = gpd.read_parquet(out / "clusters.parquet")
    assert len(clusters) >= 20 and clusters.is_valid.all() and clusters["synthetic"].all()
    assert (clusters["name"].str.len() > 0).all()
    assert (clusters["economies"].str.contains("/")).any()  # a cross-border cluster
    assert clusters["rank"].tolist() == list(range(1, len(clusters) + 1))
    info = json.loads((out / "run.json").read_text())
    assert info["synthetic"] is True and info["demo"] == {"records": 40000, "seed": 3, "notice": info["notice"]}
    assert "SYNTHETIC DEMO DATA" in (out / "ranking.md").read_text()
    # Every top-tier cluster holds more activity than any emerging one.
    top = clusters[clusters["tier"] == "top"]["score"]
    emerging = clusters[clusters["tier"] == "emerging"]["score"]
    assert emerging.empty or top.min() >= emerging.max()


def test_the_executable_flushes_its_output_and_exit_code_before_its_fast_exit(tmp_path):
    # `cluster` ends with os._exit once everything is written (cli.console): what it
    # printed and its exit status must still arrive.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "cluster", "config"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "[engine]" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("metric,doc_id,lat,lon\npatents,A,95,1\n")
    done = subprocess.run([sys.executable, "-m", "cluster", "run", "--input", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "lat" in done.stderr and "row 2" in done.stderr


def test_absent_metrics_are_noted_once_and_quietly(caplog):
    """A single-metric input is the common case: one info line, no warning per metric."""
    import logging

    rows = [{"metric": "patents", "doc_id": f"d{i}", "lat": 48.1 + (i % 5) * 0.01, "lon": 11.5} for i in range(30)]
    with caplog.at_level(logging.INFO, logger="cluster"):
        res = cluster.run(pd.DataFrame(rows), min_weight={"patents": 3}, top_n=5)
    assert not [w for w in res.info["warnings"] if "no records" in w]
    said = [r for r in caplog.records if "no records of" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO
    assert "publications, vc" in said[0].getMessage()
