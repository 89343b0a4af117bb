"""Composite indices from a run's output directory: unit table, user tables, outputs, CLI.

The "run" is a tiny hand-made output directory (ranking.csv + clusters.parquet + run.json)
of 12 square clusters one degree wide along the equator and the 40th parallel.
"""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from cluster.cli import main
from cluster.composite import load_framework, run_index, unit_table
from cluster.composite.indicators import base_table
from cluster.stages.boundaries import cluster_area_km2

N = 12


def _clusters():
    rng = np.random.default_rng(0)
    ids = [f"c{i:02d}" for i in range(N)]
    pat, pub, vc = rng.gamma(2, 500, N), rng.gamma(2, 800, N), rng.gamma(1.5, 40, N)
    pop = rng.uniform(5e5, 2e7, N)
    df = pd.DataFrame(
        {
            "cluster_id": ids,
            "name": [f"City {i}" for i in range(N)],
            "economies": ["AA/BB" if i % 4 == 0 else "AA" for i in range(N)],
            "patents": pat,
            "publications": pub,
            "vc": vc,
        }
    )
    for m in ("patents", "publications", "vc"):
        df[f"share_{m}"] = 100 * df[m] / df[m].sum() / 3
    df["score"] = df[[f"share_{m}" for m in ("patents", "publications", "vc")]].sum(axis=1)
    df = df.sort_values("score", ascending=False).reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, N + 1))
    df["population"] = pop.round()
    for m in ("patents", "publications", "vc"):
        df[f"{m}_per_million"] = df[m] / df["population"] * 1e6
    df["n_sites"] = 10
    df["synthetic"] = True
    geoms = [box(2 * i, 0, 2 * i + 1, 1) if i < 6 else box(2 * (i - 6), 40, 2 * (i - 6) + 1, 41) for i in range(N)]
    order = [int(c[1:]) for c in df["cluster_id"]]
    return gpd.GeoDataFrame(df, geometry=[geoms[i] for i in order], crs=4326)


def _run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    g = _clusters()
    pd.DataFrame(g.drop(columns="geometry")).to_csv(d / "ranking.csv", index=False)
    g.to_parquet(d / "clusters.parquet")
    (d / "run.json").write_text(json.dumps({"synthetic": True}))
    return d


def _points(tmp_path):
    """Universities: 3 in c00 (two institutions), 1 in c01, 1 outside every cluster."""
    p = tmp_path / "uni.csv"
    pd.DataFrame(
        {
            "institution": ["U1", "U1", "U2", "U3", "U4"],
            "lat": [0.5, 0.2, 0.7, 0.5, 30.0],
            "lon": [0.5, 0.3, 0.8, 2.5, 30.0],
            "score": [80.0, 80.0, 60.0, 40.0, 99.0],
            "researchers": [100, 50, 70, 30, 10],
        }
    ).to_csv(p, index=False)
    return p


_FW = """
[index]
name = "Toy"
[units]
top_n = 0
[uncertainty]
samples = 20
max_samples = 40
seed = 3
weights = 0.2
normalisation = ["minmax", "rank"]
[[table]]
name = "uni"
kind = "points"
[table.aggregate]
uni_n = "count"
uni_best = "max:score"
uni_sum = "sum:score"
uni_inst = "nunique:institution"
uni_hhi = "hhi:institution"
[[group]]
code = "index"
[[group]]
code = "size"
parent = "index"
[[group]]
code = "rate"
parent = "index"
[[indicator]]
code = "patents"
parent = "size"
column = "patents"
[[indicator]]
code = "vc"
parent = "size"
column = "vc"
[[indicator]]
code = "pubs_pm"
parent = "rate"
column = "publications"
denominator = "population"
scale = 1e6
[[indicator]]
code = "uni_n"
parent = "rate"
column = "uni_n"
[[indicator]]
code = "growth"
parent = "rate"
column = "patents_growth"
optional = true
"""


def _fw(tmp_path, text=_FW):
    p = tmp_path / "fw.toml"
    p.write_text(text)
    return p


def test_geodesic_area_of_a_one_degree_square():
    # WGS84: 1 degree of latitude 110.57 km, of longitude 111.32 km at the equator.
    assert cluster_area_km2([box(0, 0, 1, 1)])[0] == pytest.approx(12364, rel=1e-3)  # on the sphere
    # Against the sphere of equal area (R = 6371.007 km): R^2 dlon (sin lat2 - sin lat1), within 1 %.
    r2 = 6371.007**2 * np.radians(1)
    for lat in (0, 30, 60):
        sphere = r2 * (np.sin(np.radians(lat + 1)) - np.sin(np.radians(lat)))
        assert cluster_area_km2([box(0, lat, 1, lat + 1)])[0] == pytest.approx(sphere, rel=0.01)


def test_points_joined_in_space(tmp_path):
    fw = load_framework(_fw(tmp_path))
    u = unit_table(fw, _clusters(), tables={"uni": str(_points(tmp_path))})
    assert u.loc["c00", ["uni_n", "uni_best", "uni_sum", "uni_inst"]].tolist() == [3, 80, 220, 2]
    assert u.loc["c00", "uni_hhi"] == pytest.approx((2 / 3) ** 2 + (1 / 3) ** 2)
    assert u.loc["c01", ["uni_n", "uni_best", "uni_hhi"]].tolist() == [1, 40, 1.0]
    c02 = u.loc["c02"]
    assert c02["uni_n"] == 0 and c02["uni_sum"] == 0 and np.isnan(c02["uni_best"]) and np.isnan(c02["uni_hhi"])
    assert u["area_km2"].gt(9000).all() and (u["population_density"] == u["population"] / u["area_km2"]).all()
    assert u.loc["c00", "n_economies"] == 2 and u.loc["c00", "economy"] == "AA"


def test_sites_concentration(tmp_path):
    g = _clusters()
    sites = pd.DataFrame(
        {"cluster_id": ["c00", "c00", "c00", "c01"], "metric": ["patents"] * 4, "weight": [2.0, 1.0, 1.0, 5.0]}
    )
    u = base_table(g, None, sites)
    assert u.loc["c00", "hhi_patents"] == pytest.approx(0.25 + 0.0625 * 2)
    assert u.loc["c01", "hhi_patents"] == 1.0 and u.loc["c00", "sites_patents"] == 3


def test_cli_writes_every_output_and_is_byte_identical(tmp_path):
    run, fw, uni = _run_dir(tmp_path), _fw(tmp_path), _points(tmp_path)
    args = ["-q", "index", "--run", str(run), "--framework", str(fw), "--table", f"uni={uni}"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a, b = tmp_path / "a", tmp_path / "b"
    for f in (
        "index.csv",
        "index.md",
        "index.gpkg",
        "correlations.csv",
        "correlations.png",
        "treatment.csv",
        "sensitivity.csv",
        "leave_one_out.csv",
        "uncertainty.png",
        "index.json",
    ):
        assert (a / f).is_file(), f
    assert (a / "index.csv").read_bytes() == (b / "index.csv").read_bytes()
    t = pd.read_csv(a / "index.csv")
    assert t["index_rank"].tolist() == list(range(1, N + 1))
    for c in (
        "index_score",
        "rank_median",
        "rank_p05",
        "rank_p95",
        "size_score",
        "size_rank",
        "rate_score",
        "patents",
        "patents_rank",
        "patents_raw",
    ):
        assert c in t.columns
    layer = gpd.read_file(a / "index.gpkg", layer="index")
    assert len(layer) == N and layer.crs.to_epsg() == 4326
    assert "SYNTHETIC" in (a / "index.md").read_text()
    # A rerun into the same directory replaces it; another seed gives other replicates.
    assert main(args + ["--out", str(a), "--seed", "4"]) == 0
    assert json.loads((a / "index.json").read_text())["uncertainty"]["seed"] == 4


def test_cli_without_monte_carlo_and_with_compare(tmp_path):
    run, fw = _run_dir(tmp_path), _fw(tmp_path)
    comp = tmp_path / "compare.csv"
    pd.DataFrame({"cluster_id": [f"c{i:02d}" for i in range(N)], "patents_growth": np.linspace(-5, 20, N)}).to_csv(
        comp, index=False
    )
    out = tmp_path / "o"
    assert (
        main(
            [
                "-q",
                "index",
                "--run",
                str(run),
                "--framework",
                str(fw),
                "--compare",
                str(comp),
                "--table",
                f"uni={_points(tmp_path)}",
                "--samples",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    t = pd.read_csv(out / "index.csv")
    assert "growth" in t.columns and "rank_p05" not in t.columns
    assert not (out / "sensitivity.csv").exists()
    assert t.sort_values("growth")["growth_raw"].is_monotonic_increasing


@pytest.mark.parametrize(
    "text, message",
    [
        (
            _FW + '\n[[indicator]]\ncode = "bad"\nparent = "rate"\ncolumn = "vc"\nweight = 0\n',
            "weight must be a positive number, got 0",
        ),
        (_FW.replace("[units]", "[unit]"), "unknown section [unit]. Did you mean 'units'"),
        (_FW + '\n[[group]]\ncode = "x"\nparent = "y"\n[[group]]\ncode = "y"\nparent = "x"\n', "cycle in the tree"),
        (_FW.replace('column = "vc"', 'column = "vcc"'), "column 'vcc' is not in the unit table. Did you mean 'vc'"),
        (_FW.replace("scale = 1e6", "scale = 1e6\nsacle = 2"), "unknown key 'sacle'. Did you mean 'scale'"),
    ],
)
def test_cli_bad_framework_exit_2_with_the_fix(tmp_path, capsys, text, message):
    run, uni = _run_dir(tmp_path), _points(tmp_path)
    rc = main(
        [
            "-q",
            "index",
            "--run",
            str(run),
            "--framework",
            str(_fw(tmp_path, text)),
            "--table",
            f"uni={uni}",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_bad_inputs_exit_2(tmp_path, capsys):
    run, fw = _run_dir(tmp_path), _fw(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("institution,lat,lon,score\nU1,0.5,0.5,80\nU2,95,0.5,1\n")
    cases = [
        (["--run", str(tmp_path / "nowhere"), "--framework", str(fw)], "not found"),
        (["--run", str(run), "--framework", "gihhi"], "shipped frameworks: gihi, ecnu"),
        (["--run", str(run), "--framework", str(fw), "--table", f"uni={bad}"], "row 3"),
        (["--run", str(run), "--framework", str(fw), "--table", f"unis={bad}"], "no [[table]] named 'unis'"),
        (["--run", str(run), "--framework", str(fw)], "column 'uni_n' is not in the unit table"),
    ]
    for extra, message in cases:
        rc = main(["-q", "index", *extra, "--out", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert rc == 2 and message in err, (extra, err)
    (tmp_path / "notmine").mkdir()
    (tmp_path / "notmine" / "keep.txt").write_text("x")
    rc = main(
        [
            "-q",
            "index",
            "--run",
            str(run),
            "--framework",
            str(fw),
            "--table",
            f"uni={_points(tmp_path)}",
            "--out",
            str(tmp_path / "notmine"),
        ]
    )
    assert rc == 2 and "Refusing to replace" in capsys.readouterr().err
    assert (tmp_path / "notmine" / "keep.txt").read_text() == "x"


@pytest.mark.parametrize("name", ["gihi", "ecnu"])
def test_shipped_frameworks_run_on_a_run_directory(tmp_path, name):
    res = run_index(
        _run_dir(tmp_path), name, tmp_path / "o", tables={"universities": str(_points(tmp_path))}, samples=10,
        max_samples=20,
    )
    assert len(res.table) == N and res.table["index_score"].notna().all()
    assert (tmp_path / "o" / "index.csv").is_file()
    dropped = " ".join(res.dropped)
    assert "hq_count" in dropped and "air_passengers" in dropped  # tables not given: left out, said so


def test_in_memory_clusters(tmp_path):
    fw = load_framework(_fw(tmp_path))
    res = run_index(_clusters(), fw, tables={"uni": str(_points(tmp_path))}, samples=5)
    assert res.table.index.name == "cluster_id" and len(res.table) == N
