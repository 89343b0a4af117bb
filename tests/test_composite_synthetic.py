"""Synthetic data labelled (issue 25): the demo tables say they are synthetic, `cluster index`
refuses them with a real run unless --allow-synthetic, and then every output says so in
its first lines.

Runs and tables are the hand-made ones of tests/test_composite_io.py, the run made real
(run.json and the `synthetic` column false)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_composite_io import _clusters, _fw, _points

from cluster.cli import main
from cluster.composite import run_index
from cluster.errors import UserInputError
from cluster.provenance import table_is_synthetic, table_sidecar

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
CSVS = ("index.csv", "correlations.csv", "treatment.csv", "sensitivity.csv", "leave_one_out.csv")


def _real_run(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    g = _clusters()
    g["synthetic"] = False
    pd.DataFrame(g.drop(columns="geometry")).to_csv(d / "ranking.csv", index=False)
    g.to_parquet(d / "clusters.parquet")
    (d / "run.json").write_text(json.dumps({"synthetic": False}))
    return d


def _synthetic_points(tmp_path):
    p = _points(tmp_path)
    table_sidecar(p).write_text(json.dumps({"synthetic": True}))
    return p


def test_the_demo_tables_say_they_are_synthetic(tmp_path):
    for name in ("universities", "company_hq", "airports"):
        assert table_is_synthetic(DEMO / f"{name}.csv"), name
        meta = json.loads(table_sidecar(DEMO / f"{name}.csv").read_text())
        assert meta["synthetic"] is True and "SYNTHETIC" in meta["notice"]
    assert not table_is_synthetic(_points(tmp_path))  # a plain table: no sidecar


def test_demo_tables_are_written_with_their_sidecars(tmp_path):
    from cluster.composite.demo_tables import write_tables

    paths = write_tables(tmp_path)
    assert {p.name for p in paths} >= {"airports.csv", "airports.csv.provenance.json"}
    for name in ("universities", "company_hq", "airports"):
        assert table_is_synthetic(tmp_path / f"{name}.csv")
        assert (tmp_path / f"{name}.csv").read_bytes() == (DEMO / f"{name}.csv").read_bytes()
        assert table_sidecar(tmp_path / f"{name}.csv").read_bytes() == table_sidecar(DEMO / f"{name}.csv").read_bytes()


def test_parquet_table_flagged_in_its_metadata(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cluster.provenance import PARQUET_SYNTHETIC_KEY

    t = pa.table({"lat": [0.5], "lon": [0.5]}).replace_schema_metadata({PARQUET_SYNTHETIC_KEY: b"true"})
    pq.write_table(t, tmp_path / "t.parquet")
    assert table_is_synthetic(tmp_path / "t.parquet")


def test_synthetic_table_with_a_real_run_is_refused(tmp_path, capsys):
    run, fw, uni = _real_run(tmp_path), _fw(tmp_path), _synthetic_points(tmp_path)
    with pytest.raises(UserInputError, match="allow-synthetic"):
        run_index(run, fw, tmp_path / "o", tables={"uni": str(uni)}, samples=5)
    rc = main(["-q", "index", "--run", str(run), "--framework", str(fw), "--table", f"uni={uni}",
               "--samples", "5", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "uni = " in err and "synthetic" in err and "--allow-synthetic" in err
    assert not (tmp_path / "o").exists()


def test_allowed_synthetic_index_says_so_in_the_first_lines_of_every_output(tmp_path):
    run, fw, uni = _real_run(tmp_path), _fw(tmp_path), _synthetic_points(tmp_path)
    out = tmp_path / "o"
    assert main(["-q", "index", "--run", str(run), "--framework", str(fw), "--table", f"uni={uni}",
                 "--samples", "5", "--allow-synthetic", "--out", str(out)]) == 0
    md = (out / "index.md").read_text().splitlines()
    assert "SYNTHETIC" in md[0] and "demonstration" in md[0]
    for name in CSVS:
        header = (out / name).read_text().splitlines()[0]
        assert header.startswith("synthetic,"), name
        assert set(pd.read_csv(out / name)["synthetic"]) == {True}, name
    info = json.loads((out / "index.json").read_text())
    assert list(info)[:3] == ["synthetic", "notice", "synthetic_tables"]
    assert info["synthetic"] is True and info["synthetic_tables"] == ["uni"] and "SYNTHETIC" in info["notice"]
    import geopandas as gpd

    assert gpd.read_file(out / "index.gpkg", layer="index")["synthetic"].all()


def test_real_run_and_real_table_are_not_labelled(tmp_path):
    run, fw, uni = _real_run(tmp_path), _fw(tmp_path), _points(tmp_path)
    res = run_index(run, fw, tmp_path / "o", tables={"uni": str(uni)}, samples=5)
    assert res.info["synthetic"] is False and res.info["notice"] is None
    assert not (tmp_path / "o" / "index.csv").read_text().startswith("synthetic")
    assert "SYNTHETIC" not in (tmp_path / "o" / "index.md").read_text()


def test_synthetic_run_with_synthetic_tables_needs_no_flag(tmp_path):
    from test_composite_io import _run_dir

    res = run_index(_run_dir(tmp_path), _fw(tmp_path), None, tables={"uni": str(_synthetic_points(tmp_path))},
                    samples=5)
    assert res.info["synthetic"] is True and "synthetic demo world" in res.info["notice"]
