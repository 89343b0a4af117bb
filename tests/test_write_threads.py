"""Writing on two threads keeps the rules of writing on one (cluster.outputs.files).

``clusters.gpkg`` is written on a worker thread while the calling thread writes the other
files and draws ``map.png``. An error on either side is raised with its own type and
message, after both sides have stopped, and the temporary folder is then removed: no output
folder appears, an existing one keeps its files, no debris is left beside it. The progress
bar still counts every file.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import two_city_csv

import cluster
import cluster.outputs.files as files
from cluster.outputs.files import OUTPUT_FILES


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    inp = two_city_csv(tmp_path_factory.mktemp("in") / "r.csv")
    return cluster.run(str(inp), eps_km=10, min_weight={"patents": 3, "vc": 3, "publications": 3})


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fail_in(monkeypatch, name: str, where: list):
    def boom(*a, **k):
        where.append(threading.current_thread().name)
        raise RuntimeError(f"{name} broke")

    monkeypatch.setattr(files, name, boom)


# The whole GeoPackage on the worker, its sites table built there too (on the calling
# thread it made writing at 10 M records 0.2 s longer).
@pytest.mark.parametrize("name, thread", [("sites_table", "cluster-gpkg"), ("write_sites_table", "cluster-gpkg"),
                                          ("finish_geopackage", "cluster-gpkg"),
                                          ("write_map_html", "MainThread"), ("draw_map", "MainThread")])
def test_an_error_on_either_thread_leaves_no_output_folder(result, tmp_path, monkeypatch, name, thread):
    where: list = []
    _fail_in(monkeypatch, name, where)
    with pytest.raises(RuntimeError, match=f"^{name} broke$"):
        result.write(tmp_path / "out")
    assert where and where[0].startswith(thread)
    assert list(tmp_path.iterdir()) == []  # no output folder, no temporary folder


@pytest.mark.parametrize("name", ["write_sites_table", "draw_map"])
def test_an_error_on_either_thread_keeps_the_previous_outputs(result, tmp_path, monkeypatch, name):
    out = tmp_path / "out"
    result.write(out)
    before = _tree(out)
    _fail_in(monkeypatch, name, [])
    with pytest.raises(RuntimeError, match=f"^{name} broke$"):
        result.write(out)
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_the_worker_finishes_before_the_folder_is_swapped(result, tmp_path, monkeypatch):
    """A slow GeoPackage: the folder is swapped in only with it complete (and the main
    thread's files already there)."""
    real, seen = files.finish_geopackage, {}
    release = threading.Event()

    def slow_finish(path, **kwargs):
        release.wait(timeout=30)
        seen["map.png"] = (path.parent / "map.png").is_file()
        real(path, **kwargs)

    def draw_then_release(*a, **k):
        real_draw(*a, **k)
        release.set()

    real_draw = files.draw_map
    monkeypatch.setattr(files, "finish_geopackage", slow_finish)
    monkeypatch.setattr(files, "draw_map", draw_then_release)
    out = result.write(tmp_path / "out")
    assert seen == {"map.png": True}
    assert {f for f in OUTPUT_FILES} <= {p.name for p in out.iterdir()}
    import sqlite3

    with sqlite3.connect(out / "clusters.gpkg") as con:
        assert con.execute("SELECT count(*) FROM run_info").fetchone()[0] > 0


def test_the_progress_bar_counts_every_file(result, tmp_path, monkeypatch):
    counted, names = [], []

    class Bar:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def set_postfix_str(self, text, refresh=True):
            names.append(text)

        def update(self, n=1):
            counted.append(n)

    totals = []

    def bar(*, desc, total, unit):
        totals.append(total)
        return Bar()

    monkeypatch.setattr(files, "bar", bar)
    result.write(tmp_path / "out")
    assert sum(counted) == totals[0] and len(set(names)) == len(names)
    assert {"clusters.gpkg: clusters", "clusters.gpkg: sites", "map.png", "run.json"} <= set(names)
