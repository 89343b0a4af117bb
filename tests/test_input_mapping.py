"""Inputs as they come: --map/--metric, [input.files], --min-share and compressed CSV.

Real data: the first rows of PatentsView's inventor locations 2013 as published in
data/real/ (``lat,lon,n_inventors``, see data/README.md).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cluster.cli._main import main
from cluster.cli._options import _min_share
from cluster.config import load_config
from cluster.errors import InputDataError, UserInputError
from cluster.ingest.mapping import InputMapping, mapping_for, parse_pairs
from cluster.ingest.read import read_records

METRICS = ("patents", "publications", "vc")
PATENTSVIEW = Path(__file__).resolve().parents[1] / "data" / "real" / "patentsview_inventor_locations_2013.csv"


def _patentsview_head(tmp_path, n=3000) -> Path:
    path = tmp_path / "patentsview_inventor_locations_2013.csv"
    path.write_text("".join(PATENTSVIEW.read_text("utf-8").splitlines(keepends=True)[: n + 1]), "utf-8")
    return path


def test_mapping_and_constant_read_a_published_file(tmp_path):
    path = _patentsview_head(tmp_path, 50)
    raw = pd.read_csv(path)
    rec, info = read_records([path], METRICS, [InputMapping({"weight": "n_inventors"}, {"metric": "patents"})])
    assert len(rec) == 50 and set(rec["metric"].astype(str)) == {"patents"}
    np.testing.assert_array_equal(rec["weight"].to_numpy(), raw["n_inventors"].to_numpy(dtype=float))
    np.testing.assert_array_equal(rec["lat"].to_numpy(), raw["lat"].to_numpy())
    assert info["files"][0]["mapping"] == "weight=n_inventors, metric:=patents"


def test_without_mapping_the_file_is_refused(tmp_path):
    with pytest.raises(InputDataError, match="missing required column 'metric'"):
        read_records([_patentsview_head(tmp_path, 5)], METRICS)


def test_mapping_renames_and_replaces_a_same_named_column(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("Latitude,lon,lat,n\n48.1,11.5,999,2\n")
    rec, _ = read_records([p], METRICS, [InputMapping({"lat": "latitude", "weight": "n"}, {"metric": "vc"})])
    assert rec["lat"].tolist() == [48.1] and rec["weight"].tolist() == [2.0]


def test_unknown_source_and_target_are_named_with_the_fix(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("lat,lon,n_inventors\n1,2,3\n")
    with pytest.raises(InputDataError) as exc:
        read_records([p], METRICS, [InputMapping({"weight": "n_inventor", "wieght": "lat"}, {"metric": "patents"})])
    msg = str(exc.value)
    assert f"{p}: the mapping weight=n_inventor names a column 'n_inventor'" in msg
    assert "Did you mean 'n_inventors'?" in msg
    assert "mapped column 'wieght' is not a record column. Did you mean 'weight'?" in msg


def test_a_mapped_constant_metric_is_still_validated(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("lat,lon,n\n1,2,3\n")
    with pytest.raises(InputDataError, match="unknown metric"):
        read_records([p], METRICS, [InputMapping({"weight": "n"}, {"metric": "patent"})])


@pytest.mark.parametrize("text", ["lat", "lat=", "=x", "lat=a,lat=b", ","])
def test_bad_map_text_is_refused(text):
    with pytest.raises(UserInputError):
        parse_pairs(text)


def test_config_input_files_match_by_name_path_or_config_dir(tmp_path):
    spec = InputMapping({"weight": "n"})
    files = {"a.csv": spec}
    assert mapping_for(tmp_path / "a.csv", files) is spec
    assert mapping_for(tmp_path / "b.csv", files) is None
    (tmp_path / "sub").mkdir()
    assert mapping_for(tmp_path / "sub" / "c.csv", {"sub/c.csv": spec}, config_dir=tmp_path) is spec


def test_config_file_with_input_files_reads_the_file(tmp_path):
    path = _patentsview_head(tmp_path, 20)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[input.files."patentsview_inventor_locations_2013.csv"]\n'
                   'map = { weight = "n_inventors" }\nset = { metric = "patents" }\n')
    from cluster.pipeline import load_records

    config = load_config(cfg)
    rec, _, info = load_records([path], config)
    from cluster.ingest.engine import records_frame

    frame = records_frame(rec, config.metric_names)
    assert len(frame) == 20 and frame["weight"].notna().all() and (frame["metric"] == "patents").all()
    assert config.to_dict()["input"]["files"]["patentsview_inventor_locations_2013.csv"]["set"] == {"metric": "patents"}


def test_config_input_files_bad_shape_is_a_config_error(tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[input.files."x.csv"]\nmop = { weight = "n" }\n')
    with pytest.raises(UserInputError, match="unknown key 'mop'. Did you mean 'map'"):
        load_config(cfg)


def test_min_share_accepts_percent_and_fraction():
    assert _min_share("patents=0.05%") == ("patents", pytest.approx(0.0005))
    assert _min_share("patents=0.0005") == ("patents", 0.0005)
    a = load_config(overrides={"min_share": dict([_min_share("patents=0.05%")])})
    b = load_config(overrides={"min_share": {"patents": 0.0005}})
    assert a.metric("patents").min_share == pytest.approx(b.metric("patents").min_share)


def _csv(tmp_path) -> tuple[Path, bytes]:
    data = b"metric,doc_id,lat,lon\npatents,A,48.1,11.5\nvc,B,1.3,103.8\npatents,A,48.2,11.6\n"
    return tmp_path, data


def test_gzip_and_zstd_csv_are_read_directly(tmp_path):
    import pyarrow as pa

    _, data = _csv(tmp_path)
    plain = tmp_path / "r.csv"
    plain.write_bytes(data)
    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(data))
    zst = tmp_path / "r.csv.zst"
    with pa.CompressedOutputStream(str(zst), "zstd") as out:
        out.write(data)
    expected, _ = read_records([plain], METRICS)
    for path in (gz, zst):
        got, info = read_records([path], METRICS)
        pd.testing.assert_frame_equal(got, expected)
        assert info["files"][0]["path"] == str(path)


def test_corrupt_compressed_csv_is_a_user_error(tmp_path):
    for name in ("r.csv.gz", "r.csv.zst"):
        p = tmp_path / name
        p.write_bytes(b"this is not compressed at all")
        with pytest.raises(UserInputError, match=str(p)):
            read_records([p], METRICS)


def test_cli_map_before_input_and_conflicting_thresholds_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--map", "weight=n", "--input", "x.csv"])
    assert exc.value.code == 2
    assert "--map applies to the --input before it" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--min-share", "patents=abc"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["run", "--min-weight", "patents=0.05%"])
    assert exc.value.code == 2
    path = _patentsview_head(tmp_path, 10)
    code = main(["run", "--input", str(path), "--map", "weight=n_inventors", "--metric", "patents",
                 "--min-weight", "patents=5", "--min-share", "patents=1%", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "give one of the two per metric" in capsys.readouterr().err
    code = main(["run", "--input", str(path), "--map", "weight=n_inventor", "--metric", "patents",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "Did you mean 'n_inventors'?" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_runs_patentsview_as_published_with_map(tmp_path):
    path = _patentsview_head(tmp_path, 3000)
    out = tmp_path / "out"
    code = main(["-q", "run", "--input", str(path), "--map", "weight=n_inventors", "--metric", "patents",
                 "--min-share", "patents=0.5%", "--out", str(out)])
    assert code == 0
    ranking = pd.read_csv(out / "ranking.csv")
    assert len(ranking) > 0 and ranking["patents"].sum() > 0
    # 0.5 % of the world total, as a fraction in run.json
    import json

    info = json.loads((out / "run.json").read_text())
    assert info["config"]["metrics"]["patents"]["min_share"] == pytest.approx(0.005)
    assert info["inputs"][0]["mapping"] == "weight=n_inventors, metric:=patents"
