"""One scan (issue 22): the records are read once, by the sites stage; the profiles and the
bootstrap use what that pass kept, on the embedded engine and on a Dask cluster.

The input files are moved away right after the sites stage: a run that read them again
(the profiles' second pass, the bootstrap's re-read before issue 22) fails; this one
gives the same profiles, rank intervals and sites as a run that keeps them.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import cluster
import cluster.pipeline as pipeline
from cluster.demo import generate_demo


@pytest.fixture()
def parts(tmp_path):
    """The demo world with field and institution as two Parquet parts, rows shuffled
    (documents span the parts), plus a few pre-weighted rows."""
    world = generate_demo(20_000, 5, fields=True).sample(frac=1.0, random_state=1).reset_index(drop=True)
    folder = tmp_path / "records"
    folder.mkdir()
    world.iloc[::2].to_parquet(folder / "part-0.parquet", index=False)
    world.iloc[1::2].to_parquet(folder / "part-1.parquet", index=False)
    return folder


def _run_then_remove(folder, monkeypatch, **kw):
    """A run whose input disappears as soon as the sites stage has returned."""
    original = pipeline.prepare_sites
    gone = folder.parent / "gone"

    def sites_then_remove(*args, **kwargs):
        prepared = original(*args, **kwargs)
        shutil.move(folder, gone)
        return prepared

    monkeypatch.setattr(pipeline, "prepare_sites", sites_then_remove)
    try:
        return cluster.run(str(folder), **kw)
    finally:
        monkeypatch.setattr(pipeline, "prepare_sites", original)
        shutil.move(gone, folder)


def _assert_same(a, b):
    pd.testing.assert_frame_equal(a.profiles, b.profiles)
    assert a.sites_table["weight"].to_numpy().tobytes() == b.sites_table["weight"].to_numpy().tobytes()
    cols = ["cluster_id", "rank", "rank_ci_low", "rank_ci_high"]
    pd.testing.assert_frame_equal(pd.DataFrame(a.clusters[cols]), pd.DataFrame(b.clusters[cols]))


@pytest.mark.parametrize("engine", ["embedded", pytest.param("dask", marks=pytest.mark.slow)])
def test_profiles_and_bootstrap_never_read_the_files_again(parts, monkeypatch, engine, request):
    kw = {"bootstrap": 8}
    if engine == "dask":
        pytest.importorskip("distributed")
        kw["scheduler"] = request.getfixturevalue("scheduler")
    expected = cluster.run(str(parts), **kw)
    assert expected.profiles is not None and len(expected.profiles)
    assert "rank_ci_low" in expected.clusters
    got = _run_then_remove(parts, monkeypatch, **kw)
    _assert_same(expected, got)


def test_profiles_weights_are_fractional_counts_of_the_records(parts):
    """The profile weights from the kept records equal a direct pandas count: every record
    at a clustered site adds 1/n (n = rows of its document) to its value."""
    result = cluster.run(str(parts))
    records = pd.read_parquet(parts)
    n = records.groupby(["metric", "doc_id"])["doc_id"].transform("size").to_numpy()
    sites = result.sites_table[["metric", "lat", "lon", "cluster_id"]].assign(metric=lambda d: d["metric"].astype(str))
    rec = records.assign(w=1.0 / n).merge(sites, on=["metric", "lat", "lon"], how="inner")
    rec = rec[rec["cluster_id"].notna()]
    for kind in ("field", "institution"):
        want = rec.groupby(["cluster_id", "metric", kind])["w"].sum()
        got = result.profiles[result.profiles["kind"] == kind].set_index(["cluster_id", "metric", "value"])["weight"]
        want.index.names = got.index.names
        assert len(got) == len(want)
        np.testing.assert_allclose(got.sort_index().to_numpy(), want.sort_index().to_numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("year_start", [None, 2020])
def test_kept_records_are_the_records_a_second_read_gives(parts, year_start):
    """The bootstrap's draws from the kept table are the rows a re-read of the files
    (``records_frame``, the two-pass way) gives: same rows, same weights, same window."""
    from cluster.config import load_config
    from cluster.ingest import connect, kept_records, open_records, records_frame, reduce

    config = load_config(overrides={"bootstrap": 2, "year_start": year_start})
    metrics = list(config.metric_names)
    records = open_records([str(parts)], metrics)
    con = connect(config)
    reduction = reduce(records, metrics, config, con=con, keep=True)
    kept = kept_records(reduction.kept, metrics)
    again = records_frame(records, metrics, year_start=year_start, con=con)
    cols = ["metric", "doc_id", "lat", "lon", "weight"]

    def rows(df):
        out = df[cols].assign(metric=df["metric"].astype(str), weight=df["weight"].fillna(-1.0))
        return out.sort_values(cols, kind="mergesort").reset_index(drop=True)

    assert len(kept) == len(again) > 0
    pd.testing.assert_frame_equal(rows(kept), rows(again))
    reduction.kept.release()


# ------------------------------------------------------------------ what is kept, and where

def test_columns_constant_for_the_inputs_are_not_stored(parts, tmp_path):
    """No weight column and no year window: the kept table stores neither ``weight`` nor
    ``year`` nor ``inwin`` (90 MB of NULL doubles at 10 M records), yet reads them as
    constants; with a weight column and a window it stores the weight and the window's
    flag; the columns only the reduction reads are dropped once it has returned."""
    from cluster.ingest import connect, open_records, reduce

    metrics = ["patents", "publications", "vc"]
    con = connect()
    plain = reduce(open_records([str(parts)], metrics), metrics, con=con, keep=True)
    stored = {r[0] for r in con.sql(f"DESCRIBE {plain.kept.stored}").fetchall()}
    assert {"weight", "year", "inwin"}.isdisjoint(stored) and {"lat", "lon", "doc_id", "field"} <= stored
    assert con.sql(f"SELECT count(*) FROM {plain.kept.table} WHERE inwin AND weight IS NULL").fetchall()[0][0] \
        == plain.n_records
    plain.kept.release()

    weighted = pd.read_parquet(parts).assign(weight=np.nan)
    weighted.loc[::7, "weight"] = 0.25
    weighted.to_parquet(tmp_path / "weighted.parquet", index=False)
    config = cluster.load_config(overrides={"year_start": 2000})
    full = reduce(open_records([str(tmp_path / "weighted.parquet")], metrics), metrics, config, con=con, keep=True)
    stored = {r[0] for r in con.sql(f"DESCRIBE {full.kept.stored}").fetchall()}
    assert {"weight", "inwin"} <= stored
    # Read only by the reduction (the groups' country, the flags, the years outside the
    # window): gone once it has returned.
    assert {"c_country", "good", "year"}.isdisjoint(stored)
    assert con.sql(f"SELECT count(*) FROM {full.kept.table} WHERE weight = 0.25").fetchall()[0][0] > 0
    full.kept.release()


def test_duckdb_spills_into_its_own_folder_of_the_temporary_directory(tmp_path, monkeypatch):
    """DuckDB's default spill folder is ``.tmp`` in the working directory: a run that
    spilled wrote there. Now it spills into a folder of its own in ``temp_directory``
    (default: the system's temporary directory), which is gone once the connection is."""
    import tempfile

    from cluster.ingest import connect

    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    con = connect(cluster.load_config(overrides={"memory_limit": "64MB", "threads": 1}))
    spill = con.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]
    assert spill.startswith(str(temp))
    con.execute("CREATE TEMP TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(2000000)")
    assert list(temp.iterdir()), "the table did not spill: the test proves nothing"
    con.close()
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_memory_goes_back_to_the_system():
    """glibc keeps the pages of freed arrays for later allocations: the reduction's
    transients stayed in the process through the stages after it (about 240 MB at 10 M
    records) until ``trim_heap`` handed them back."""
    import gc

    from cluster._runtime import _malloc_trim, trim_heap

    if _malloc_trim() is None:
        pytest.skip("not glibc")

    def rss_mb():
        with open("/proc/self/status") as f:
            return int(f.read().split("VmRSS:")[1].split()[0]) / 1024

    # 256 MB in 64 kB blocks (below glibc's mmap threshold: they come from the heap), and
    # a block above them that stays: freed, their pages are not at the heap's top, so
    # glibc keeps them.
    blocks = [np.ones(8_000) for _ in range(4_000)]
    pin = np.ones(8_000)
    del blocks
    gc.collect()
    before = rss_mb()
    trim_heap()
    assert rss_mb() < before - 100, (before, rss_mb())
    del pin


def test_a_dropped_duckdb_table_goes_back_to_the_system():
    """DuckDB's allocator (jemalloc in Linux wheels) returns a dropped table's memory over
    a second or so: the kept records (1 GB at 10 M) stayed while the next stage allocated,
    and added up to the run's peak, until ``trim_heap`` purged them at once."""
    from cluster._runtime import _duckdb_purge, trim_heap
    from cluster.ingest.engine import connect

    con = connect()
    if _duckdb_purge() is None:
        pytest.skip("DuckDB without jemalloc")

    def rss_mb():
        with open("/proc/self/status") as f:
            return int(f.read().split("VmRSS:")[1].split()[0]) / 1024

    # Against the process's memory before the table (not just before the purge: jemalloc
    # may have handed part of it back on its own by then, which made this test flaky).
    base = rss_mb()
    con.execute("CREATE TEMP TABLE t AS SELECT range::VARCHAR || 'some institution name' AS s FROM range(8000000)")
    grown = rss_mb() - base
    assert grown > 200, grown  # the table is in this process's memory
    con.execute("DROP TABLE t")
    trim_heap()
    assert rss_mb() - base < grown / 3, (base, grown, rss_mb())
    con.close()


def test_fetched_groups_fill_nulls_as_the_reduction_reads_them():
    """The reduction's arrays come through Arrow: NULL is NaN in numbers (integers become
    floats only when they hold a NULL), False in booleans, None in text; columns without
    NULLs keep their type."""
    from cluster.ingest.engine import _fetch, connect

    con = connect()
    out = _fetch(con, """SELECT *, NULL::VARCHAR AS z FROM (VALUES (1, 2::UTINYINT, 1.5, true, 'a', 7),
                                                                 (NULL, 3::UTINYINT, NULL, NULL, NULL, 8))
                         t(i, u, f, b, s, k)""", records=None, arrays=True)
    np.testing.assert_array_equal(out["i"], [1.0, np.nan])
    assert out["i"].dtype == np.float64 and out["f"].dtype == np.float64
    np.testing.assert_array_equal(out["f"], [1.5, np.nan])
    assert out["u"].dtype == np.uint8 and out["u"].tolist() == [2, 3]
    assert out["k"].dtype == np.int32 and out["k"].tolist() == [7, 8]
    assert out["b"].dtype == bool and out["b"].tolist() == [True, False]
    assert out["s"].dtype == object and out["s"].tolist() == ["a", None]
    assert out["z"].dtype == object and out["z"].tolist() == [None, None]
