"""The fault suite of issue 21: nothing lost, nothing hung.

Every test here failed on the code before it (adac84b): folders wiped because they held a
``run.json``, inputs deleted with a previous output folder, ``compare A B --out A``
destroying A, a forked side process, a scheduler without workers waited for for ever, a
full disk reported as a bug, a damaged numba cache failing every later run, ``--out .``
failing after the whole run, a symbolic link replaced by a folder, broken editions read
with AttributeError/KeyError, a damaged GeoNames cache, temporary folders of killed or
terminated commands left behind.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pandas as pd
import pytest
from helpers import two_city_csv

import cluster.outputs._text as text
from cluster.cli import main

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}




def _run(inp, out, *extra) -> int:
    return main(["-q", "run", "--input", str(inp), "--out", str(out), "--eps-km", "10",
                 "--min-weight", "patents=3", "--min-weight", "vc=3", "--min-weight", "publications=3", *extra])


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------
# data lost (cases 1-3)
# ----------------------------------------------------------------------------------------


def test_a_folder_with_a_stray_run_json_is_not_wiped(tmp_path, capsys):
    p = tmp_path / "p"
    (p / "d").mkdir(parents=True)
    (p / "d" / "n").write_text("k")
    (p / "run.json").write_text("{}")
    before = _tree(p)
    assert _run(two_city_csv(tmp_path / "r.csv"), p) == 2
    err = capsys.readouterr().err
    assert "d/n" in err and "run.json" in err and "nothing of yours is ever deleted" in err
    assert _tree(p) == before


def test_an_input_inside_the_previous_output_folder_is_refused_and_kept(tmp_path, capsys):
    prev = tmp_path / "prev"
    assert _run(two_city_csv(tmp_path / "r.csv"), prev) == 0
    (tmp_path / "r.csv").rename(prev / "r.csv")  # the user keeps the input beside the outputs
    before = _tree(prev)
    assert _run(prev / "r.csv", prev) == 2
    assert "r.csv" in capsys.readouterr().err
    assert _tree(prev) == before


def test_input_exactly_at_out_or_out_inside_an_input_folder_is_refused(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    two_city_csv(data / "r.csv")
    assert _run(data, data / "out") == 2  # outputs would be read as records next time
    assert "overlap" in capsys.readouterr().err
    assert not (data / "out").exists()


def test_compare_into_one_of_its_editions_is_refused(tmp_path, capsys):
    a, b = tmp_path / "A", tmp_path / "B"
    assert _run(two_city_csv(tmp_path / "r.csv"), a) == 0
    assert _run(tmp_path / "r.csv", b) == 0
    before = _tree(a)
    assert main(["-q", "compare", str(a), str(b), "--out", str(a)]) == 2
    assert "overlap" in capsys.readouterr().err
    assert _tree(a) == before


def test_replacing_a_run_removes_exactly_the_files_of_its_manifest(tmp_path):
    out = tmp_path / "out"
    assert _run(two_city_csv(tmp_path / "r.csv"), out) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tool"] == "innovation-clusters" and manifest["command"] == "run"
    assert set(manifest["files"]) | {"manifest.json"} == {p.name for p in out.iterdir()}
    assert _run(tmp_path / "r.csv", out, "--geojson") == 0  # replaced: ours only
    assert (out / "clusters.geojson").is_file()
    assert _run(tmp_path / "r.csv", out) == 0  # and the geojson of the last run goes with it
    assert not (out / "clusters.geojson").exists()


def test_an_edited_output_is_foreign_and_kept(tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(two_city_csv(tmp_path / "r.csv"), out) == 0
    (out / "ranking.csv").write_text("my notes\n")
    assert _run(tmp_path / "r.csv", out) == 2
    assert "ranking.csv" in capsys.readouterr().err
    assert (out / "ranking.csv").read_text() == "my notes\n"


def test_a_file_appearing_during_the_run_is_kept(tmp_path, monkeypatch):
    import cluster._atomic as atomic

    out = tmp_path / "out"
    assert _run(two_city_csv(tmp_path / "r.csv"), out) == 0
    real = atomic._swap_into_place

    def swap(tmp, target):
        (target / "late.txt").write_text("mine")  # after the check, before the swap
        real(tmp, target)

    monkeypatch.setattr(atomic, "_swap_into_place", swap)
    assert _run(tmp_path / "r.csv", out) == 0
    assert (out / "late.txt").read_text() == "mine"


def test_a_symbolic_link_out_is_kept_and_its_target_written(tmp_path):
    target, link = tmp_path / "target", tmp_path / "link"
    target.mkdir()
    link.symlink_to(target)
    assert _run(two_city_csv(tmp_path / "r.csv"), link) == 0
    assert link.is_symlink() and (target / "ranking.csv").is_file()
    assert _run(tmp_path / "r.csv", link) == 0  # and again
    assert link.is_symlink() and (target / "manifest.json").is_file()


def test_out_dot_is_refused_before_the_work(tmp_path, monkeypatch, capsys):
    inp = two_city_csv(tmp_path / "r.csv")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _run(inp, ".") == 2
    assert "current folder" in capsys.readouterr().err
    assert list(work.iterdir()) == []


# ----------------------------------------------------------------------------------------
# hangs (cases 4-5)
# ----------------------------------------------------------------------------------------


def test_nothing_forks_and_no_thread_is_started_ahead(tmp_path, monkeypatch):
    """A child forked from a process that runs threads can inherit a lock held by nobody;
    the map is drawn in the process, and no import-ahead thread runs beside the engine."""
    def no_fork(*a, **k):
        raise AssertionError("os.fork called")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(os, "register_at_fork", lambda **k: None, raising=False)
    before = {t.name for t in threading.enumerate()}
    assert _run(two_city_csv(tmp_path / "r.csv"), tmp_path / "out") == 0
    assert (tmp_path / "out" / "map.png").stat().st_size > 0
    assert "import-ahead" not in {t.name for t in threading.enumerate()} - before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_scheduler_without_workers_ends_within_the_timeout(tmp_path):
    port = _free_port()
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", str(port), "--no-dashboard"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        t0 = time.monotonic()
        inp = str(two_city_csv(tmp_path / "r.csv"))
        done = subprocess.run([sys.executable, "-m", "cluster", "run", "-q", "--input", inp,
                               "--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "3",
                               "--out", str(tmp_path / "out")], capture_output=True, text=True, env=ENV, timeout=120)
        assert done.returncode == 3, done.stderr
        assert "no live worker after 3 s" in done.stderr and f"127.0.0.1:{port}" in done.stderr
        assert time.monotonic() - t0 < 60
    finally:
        sched.kill()
        sched.wait()


@pytest.mark.slow
def test_an_http_server_is_not_taken_for_a_scheduler(tmp_path):
    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        inp = str(two_city_csv(tmp_path / "r.csv"))
        done = subprocess.run([sys.executable, "-m", "cluster", "run", "-q", "--input", inp,
                               "--scheduler", address, "--scheduler-timeout", "2", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, env=ENV, timeout=120)
        assert done.returncode == 3, done.stderr
        assert "is not a Dask scheduler" in done.stderr
    finally:
        server.shutdown()


def test_an_unknown_scheduler_scheme_is_a_usage_error(tmp_path, capsys):
    assert _run(two_city_csv(tmp_path / "r.csv"), tmp_path / "out", "--scheduler", "foo://x") == 2
    assert "tcp://host:8786" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------
# faults of the environment (cases 8-12)
# ----------------------------------------------------------------------------------------


def test_disk_full_is_a_fault_of_the_environment_and_the_previous_outputs_stay(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert _run(two_city_csv(tmp_path / "r.csv"), out) == 0
    before = _tree(out)

    def full(self, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    # the CSV files of common column types are written without pandas (cluster.outputs._text)
    monkeypatch.setattr(text, "_write_parts", lambda path, parts: full(None, path))
    assert _run(tmp_path / "r.csv", out) == 3
    err = capsys.readouterr().err
    assert "the disk is full" in err and "This is a bug" not in err and "previous outputs are intact" in err
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 if hasattr(os, "geteuid") else True, reason="mounting a tmpfs needs root")
def test_a_really_full_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        inp = str(two_city_csv(tmp_path / "r.csv"))
        done = subprocess.run([sys.executable, "-m", "cluster", "run", "-q", "--input", inp,
                               "--min-weight", "patents=3", "--min-weight", "vc=3", "--min-weight", "publications=3",
                               "--out", str(mnt / "out")], capture_output=True, text=True, env=ENV, timeout=300)
        assert done.returncode == 3, done.stderr
        assert "the disk is full" in done.stderr
        assert list(mnt.iterdir()) == []  # nothing half-written
    finally:
        subprocess.run(["umount", str(mnt)])


def test_a_read_only_folder_is_named(tmp_path, monkeypatch, capsys):
    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    import cluster._atomic as atomic

    monkeypatch.setattr(atomic, "make_temp_dir", read_only)
    assert _run(two_city_csv(tmp_path / "r.csv"), tmp_path / "out") == 3
    assert "read-only" in capsys.readouterr().err


def test_a_path_too_long_is_named(tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    assert _run(two_city_csv(tmp_path / "r.csv"), out) in (2, 3)
    assert "too long" in capsys.readouterr().err


@pytest.mark.slow
def test_a_damaged_numba_cache_is_rebuilt(tmp_path):
    cache = tmp_path / "numba"
    env = {**ENV, "NUMBA_CACHE_DIR": str(cache)}
    code = "from cluster.engine.dbscan import warm_up; warm_up(); print('ok')"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600).returncode == 0
    files = [p for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")]
    assert files
    for p in files:  # truncated, as by a kill or a full disk while numba wrote them
        p.write_bytes(p.read_bytes()[:20])
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "damaged" in done.stderr and done.stdout.strip() == "ok"
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "damaged" not in again.stderr


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_folders_of_killed_commands_are_removed_by_the_next_command(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from cluster._cache import cache_dir

    pid = _dead_pid()
    debris = tmp_path / "elsewhere" / f".out-index.tmp-{pid}-abc123"
    debris.mkdir(parents=True)
    (debris / "index.csv").write_text("half")
    pending = cache_dir("pending")
    pending.mkdir(parents=True)
    (pending / f"{pid}-x.json").write_text(json.dumps({"pid": pid, "path": str(debris)}))
    assert main(["-q", "config"]) == 0  # any command
    assert not debris.exists() and not list(pending.iterdir())


@pytest.mark.slow
def test_sigterm_removes_the_temporary_folder_and_keeps_the_previous_outputs(tmp_path):
    out, inp, marker = tmp_path / "out", two_city_csv(tmp_path / "r.csv"), tmp_path / "marker"
    assert _run(inp, out) == 0
    before = _tree(out)
    driver = ("import sys, time, pathlib\n"
              "import cluster.outputs.files as o\n"
              "real = o.draw_map\n"
              "def draw_map(*a, **k):\n"
              "    real(*a, **k)\n"
              "    pathlib.Path(sys.argv[1]).write_text('here')\n"
              "    time.sleep(60)\n"
              "o.draw_map = draw_map\n"
              "from cluster.cli import main\n"
              "sys.exit(main(sys.argv[2:]))\n")
    args = ["-q", "run", "--input", str(inp), "--out", str(out), "--eps-km", "2", "--min-weight", "patents=3",
            "--min-weight", "vc=3", "--min-weight", "publications=3"]
    proc = subprocess.Popen([sys.executable, "-c", driver, str(marker), *args], env=ENV, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "out", "r.csv"]


# ----------------------------------------------------------------------------------------
# broken editions (case 11)
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ed")
    assert _run(two_city_csv(tmp / "r.csv"), tmp / "e") == 0
    return tmp / "e"


def _broken(edition: Path, tmp_path: Path, how: str) -> Path:
    import shutil

    bad = tmp_path / f"bad-{how}"
    shutil.copytree(edition, bad)
    if how == "list":
        (bad / "run.json").write_text("[1]")
    elif how == "types":
        info = json.loads((bad / "run.json").read_text())
        info["world_totals"] = "lots"
        info["config"]["clustering"] = [1]
        (bad / "run.json").write_text(json.dumps(info))
    elif how == "gpkg":
        (bad / "clusters.gpkg").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    elif how == "parquet":
        import geopandas as gpd

        gdf = gpd.read_parquet(bad / "clusters.parquet").drop(columns=["cluster_id"])
        gdf.to_parquet(bad / "clusters.parquet")
    return bad


@pytest.mark.parametrize("how", ["list", "types", "gpkg", "parquet"])
def test_broken_editions_are_named_not_crashed_on(edition, tmp_path, how, capsys):
    bad = _broken(edition, tmp_path, how)
    assert main(["-q", "compare", str(bad), str(edition), "--out", str(tmp_path / "c")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert _run(edition.parent / "r.csv", tmp_path / "o", "--previous", str(bad)) == 2


def test_a_geonames_cache_with_bad_rows_is_read_again(tmp_path):
    from cluster.stages import places

    good = places.load_places(15000)
    path = tmp_path / "geonames.parquet"
    bad = good.copy()
    bad.loc[bad.index[0], "section_of"] = len(bad) + 10  # past the table: an IndexError later, before
    bad.to_parquet(path, index=False)
    assert places._read_cached(path) is None
    good.to_parquet(path, index=False)
    assert places._read_cached(path) is not None


# ----------------------------------------------------------------------------------------
# records (case 11, 12)
# ----------------------------------------------------------------------------------------


def test_a_huge_record_is_named_not_dropped(tmp_path, monkeypatch, capsys):
    import cluster.ingest.engine as scan

    monkeypatch.setattr(scan, "MAX_LINE_BYTES", 1 << 20)  # as with 16 MiB, on a smaller file
    path = tmp_path / "r.csv"
    rows = ["metric,doc_id,lat,lon"] + [f"patents,d{i},48.1,11.5" for i in range(30)]
    path.write_text("\n".join(rows) + "\npatents," + "x" * (3 << 20) + ",48.1,11.5\n")
    assert _run(path, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "row 32" in err and "3,145,7" in err


def test_the_headline_counts_every_bad_row_past_those_worded(tmp_path, monkeypatch, capsys):
    import cluster.ingest.engine as scan

    monkeypatch.setattr(scan, "_MAX_SUSPECT_ROWS", 10)  # as 100,000 of 1,000,000
    path = tmp_path / "r.csv"
    path.write_text("metric,doc_id,lat,lon\n" + "".join(f"patents,d{i},95.0,11.5\n" for i in range(40))
                    + "".join(f"patents,g{i},48.1,11.5\n" for i in range(10)))
    assert _run(path, tmp_path / "out") == 2
    assert "40 row(s) with problems" in capsys.readouterr().err
