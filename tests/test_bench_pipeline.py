"""The pipeline benchmark's parts: the record generator, the naive pipeline, the harness's
stage attribution. Nothing here is timed."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_pipeline  # noqa: E402
import make_records  # noqa: E402
import naive_pipeline  # noqa: E402

N = 20_000
SEED = 7
CHUNK = 8_000  # three chunks: documents numbered across chunks
ID_PATTERNS = {
    "patents": r"(US|CN|JP|KR|EP|TW|IN|CA|AU|WO)-20(19|2[0-3])-\d{7}-(A1|A2|B1|B2)",
    "publications": r"W\d{10}",
    "vc": r"cb-rnd-[0-9a-f]{8}",
}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    manifest = make_records.write_records(root / "a", N, SEED, chunk_rows=CHUNK)
    return root, manifest


def _read(path) -> pd.DataFrame:
    return ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()


def test_generator_is_deterministic_by_seed(records, tmp_path):
    root, manifest = records
    again = make_records.write_records(tmp_path / "b", N, SEED, chunk_rows=CHUNK)
    other = make_records.write_records(tmp_path / "c", N, SEED + 1, chunk_rows=CHUNK)
    assert again["files"] == manifest["files"]
    for f in manifest["files"]:
        assert (root / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert other["rows"] == manifest["rows"] and other["documents"] != manifest["documents"]
    assert any((root / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes()
               for f in manifest["files"] if (tmp_path / "c" / f).is_file())


def test_hive_partitions_as_documented(records):
    root, manifest = records
    files = sorted(p.relative_to(root / "a").as_posix() for p in (root / "a").rglob("*.parquet"))
    assert files == manifest["files"]
    pattern = re.compile(r"metric=(patents|publications|vc)/year=(2019|202[0-3])/part-0000[0-2]\.parquet")
    assert all(pattern.fullmatch(f) for f in files), files
    # The partition columns live in the path only; each file has the record columns.
    for f in files:
        assert pq.read_schema(root / "a" / f).names == ["doc_id", "lat", "lon", "country"]
    df = _read(root / "a")
    assert len(df) == N
    counts = df["metric"].astype(str).value_counts()
    assert counts.to_dict() == manifest["rows"]
    assert abs(counts["patents"] / N - 0.35) < 0.01 and abs(counts["vc"] / N - 0.10) < 0.01
    assert df["lat"].between(-90, 90).all() and df["lon"].between(-180, 180).all()
    assert df["country"].str.fullmatch(r"[A-Z]{2}").all()


def test_string_ids_and_multi_location_documents(records):
    root, _ = records
    df = _read(root / "a")
    df["metric"] = df["metric"].astype(str)
    for m, pat in ID_PATTERNS.items():
        ids = df.loc[df["metric"] == m, "doc_id"]
        assert ids.str.fullmatch(pat).all(), ids[~ids.str.fullmatch(pat)].head()
    # One document, one metric and one year (so one partition); ids unique across chunks.
    per_doc = df.groupby(["metric", "doc_id"]).agg(rows=("lat", "size"), years=("year", "nunique"))
    assert (per_doc["years"] == 1).all()
    assert per_doc["rows"].max() <= 10
    rows = per_doc["rows"].groupby(level="metric")
    assert rows.mean()["publications"] > rows.mean()["patents"] > rows.mean()["vc"] >= 1.0
    assert (per_doc.loc["patents", "rows"] > 1).mean() > 0.3
    assert (per_doc.loc["patents", "rows"] >= 5).any()
    # A document's rows are in one file.
    files_per_doc = []
    for f in sorted((root / "a").rglob("*.parquet")):
        files_per_doc.append(pq.read_table(f, columns=["doc_id"]).column(0).to_pandas().unique())
    all_ids = np.concatenate(files_per_doc)
    assert len(all_ids) == len(per_doc)


def test_sites_come_from_a_bounded_catalogue(records):
    root, manifest = records
    df = _read(root / "a")
    start, cat_lat, cat_lon = make_records.site_catalogue(SEED)
    places = make_records.world_mod._load_places()
    allowed = set(zip(places.lat.tolist(), places.lon.tolist())) | set(zip(cat_lat.tolist(), cat_lon.tolist()))
    assert len(allowed) < 300_000
    assert set(zip(df["lat"].tolist(), df["lon"].tolist())) <= allowed
    # Rows pile up on shared sites (city- and postcode-level geocoding).
    assert manifest["unique_sites"] == len(set(zip(df["lat"].tolist(), df["lon"].tolist())))
    assert manifest["unique_sites"] < 0.6 * N


def test_flat_layout_keeps_every_column(tmp_path):
    manifest = make_records.write_records(tmp_path / "flat", 3_000, SEED, chunk_rows=2_000, layout="flat")
    assert manifest["files"] == ["part-00000.parquet", "part-00001.parquet"]
    table = pq.read_table(tmp_path / "flat" / "part-00000.parquet")
    assert table.column_names == ["metric", "doc_id", "lat", "lon", "year", "country"]


def test_ensure_records_reuses_a_complete_directory(tmp_path):
    logged = []
    path, manifest = make_records.ensure_records(2_000, SEED, root=tmp_path, log=logged.append)
    assert path.name == "records-2k-s7" and (tmp_path / "records-2k-s7.json").is_file()
    n_logged = len(logged)
    again, _ = make_records.ensure_records(2_000, SEED, root=tmp_path, log=logged.append)
    assert again == path and len(logged) == n_logged  # not regenerated
    (path / manifest["files"][0]).unlink()  # incomplete: regenerated
    make_records.ensure_records(2_000, SEED, root=tmp_path, log=logged.append)
    assert len(logged) > n_logged and (path / manifest["files"][0]).is_file()


def test_parse_and_label_sizes():
    assert make_records.parse_size("1M") == 1_000_000
    assert make_records.parse_size("20k") == 20_000
    assert make_records.parse_size("1.5M") == 1_500_000
    assert make_records.size_label(100_000_000) == "100M"
    assert make_records.size_label(20_000) == "20k"
    with pytest.raises(ValueError):
        make_records.parse_size("0")


def _nearest_km(lat, lon, anchors: pd.DataFrame) -> float:
    from cluster.engine.geo import haversine_km

    return float(haversine_km(lat, lon, anchors["anchor_lat"].to_numpy(), anchors["anchor_lon"].to_numpy()).min())


@pytest.mark.slow
def test_naive_pipeline_finds_the_planted_hubs(records, tmp_path):
    root, _ = records
    info = naive_pipeline.run(str(root / "a"), str(tmp_path / "out"))
    ranking = pd.read_csv(tmp_path / "out" / "ranking.csv")
    assert list(ranking["rank"]) == list(range(1, len(ranking) + 1))
    assert ranking["score"].is_monotonic_decreasing
    # The world totals are the documents (fractional counting gives each 1 in all).
    docs = _read(root / "a").groupby("metric", observed=True)["doc_id"].nunique()
    for m in naive_pipeline.METRICS:
        assert info["world_totals"][m] == pytest.approx(docs[m])
        assert 0 < ranking[f"share_{m}"].sum() <= 100.0 + 1e-9
    # The largest planted hubs lead: Tokyo, Shenzhen-Hong Kong and the Bay Area in the top 10.
    top = ranking.head(10)
    for lat, lon in ((35.69, 139.69), (22.54, 114.06), (37.5, -122.2)):
        assert _nearest_km(lat, lon, top) < 80.0
    import geopandas as gpd

    polys = gpd.read_file(tmp_path / "out" / "clusters.gpkg", layer="clusters")
    assert len(polys) == len(ranking) and polys.crs.to_epsg() == 4326
    assert sorted(polys["cluster_id"]) == sorted(ranking["cluster_id"])


def test_stage_segments_from_log_lines(tmp_path):
    lines = [(2.0, "[ 1.0s] INFO    read x.parquet: 10 records"),
             (3.0, "[ 2.0s] INFO    stage sites ..."), (4.0, "[ 3.0s] INFO    stage sites done in 1.00 s"),
             (4.0, "[ 3.0s] INFO    stage dbscan ..."), (6.5, "[ 5.5s] INFO    stage dbscan done in 2.50 s"),
             (9.0, "[ 8.0s] INFO    wrote out/ranking.csv, out/run.json")]
    segs = bench_pipeline.segments(lines, {"read": 1.5, "sites": 1.0, "dbscan": 2.5}, wall=9.5)
    assert segs == [("startup", 0.0, 1.5), ("read", 1.5, 3.0), ("sites", 3.0, 4.0), ("dbscan", 4.0, 6.5),
                    ("outputs", 6.5, 9.0), ("exit", 9.0, 9.5)]
    (tmp_path / "run.json").write_text('{"timings_s": {"read": 1.5, "sites": 1.0, "dbscan": 2.5}}')
    child = {"lines": lines, "wall_s": 9.5, "returncode": 0, "maxrss_kb": 4096, "killed": None,
             "samples": [(1.0, 1024), (2.0, 2048), (3.5, 3072), (5.0, 4096), (7.0, 2048)]}
    s = bench_pipeline.summarize(child, tmp_path)
    assert s["stages"]["dbscan"]["peak_rss_mb"] == 4.0 and s["stages"]["startup"]["peak_rss_mb"] == 1.0
    assert s["stages"]["outputs"]["wall_s"] == 2.5
    groups = bench_pipeline.group_stages(s["stages"])
    assert set(groups) == {"startup", "read", "sites", "dbscan", "outputs"}


def test_projected_peak_is_linear_in_records():
    assert bench_pipeline.projected_peak_mb([], 10) is None
    assert bench_pipeline.projected_peak_mb([(1_000_000, 850.0)], 10_000_000) == pytest.approx(8500.0)
    hist = [(1_000_000, 850.0), (10_000_000, 4800.0)]
    assert bench_pipeline.projected_peak_mb(hist, 100_000_000) == pytest.approx(4800.0 + 3950.0 * 10)


def test_compare_rankings_matches_clusters_by_anchor(tmp_path):
    a = pd.DataFrame({"rank": [1, 2, 3], "score": [9.0, 5.0, 1.0], "anchor_lat": [0.0, 10.0, 20.0],
                      "anchor_lon": [0.0, 10.0, 20.0]})
    b = pd.DataFrame({"rank": [1, 2, 3], "score": [8.0, 6.0, 2.0], "anchor_lat": [10.0, 0.01, 45.0],
                      "anchor_lon": [10.0, 0.0, 45.0]})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a.to_csv(tmp_path / "a" / "ranking.csv", index=False)
    b.to_csv(tmp_path / "b" / "ranking.csv", index=False)
    c = bench_pipeline.compare_rankings(tmp_path / "a", tmp_path / "b", top=2)
    assert c["clusters"] == [3, 3] and c["matched"] == 2 and c["top2_overlap"] == 2
    assert c["same_anchor"] == 1 and not c["ranking_csv_identical"]
