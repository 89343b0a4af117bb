"""Work alongside (cluster._runtime.alongside): the profiles are counted by the engine on a
worker thread while places and ranking run (issue 22's speed target).

The worker's result is what the same call gives inline; its error comes out of the future;
an error of the calling side interrupts the worker and waits for it, with a deadline, so
that no query runs on after a failed run (a process would otherwise wait for it at exit).
"""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd
import pytest

import cluster
import cluster.pipeline as pipeline
from cluster._runtime import alongside
from cluster.demo import generate_demo


def _workers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("cluster-alongside")]


def test_the_result_and_the_error_of_the_worker_come_out_of_the_future():
    with alongside(sum, [1, 2, 3]) as future:
        pass
    assert future.result(timeout=10) == 6
    with alongside(int, "not a number") as future:
        pass
    with pytest.raises(ValueError, match="not a number"):
        future.result(timeout=10)


def test_an_error_here_interrupts_the_worker_and_waits_for_it():
    stopped = threading.Event()
    ended = []

    def work():
        stopped.wait(timeout=30)
        ended.append(time.monotonic())

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="places broke"):
        with alongside(work, interrupt=stopped.set):
            raise RuntimeError("places broke")
    assert ended and ended[0] - t0 < 10  # interrupted, not timed out after 30 s
    assert ended[0] <= time.monotonic()  # it had ended before the error went on


def test_a_worker_that_does_not_stop_is_left_after_the_deadline(caplog):
    release = threading.Event()
    try:
        with caplog.at_level(logging.WARNING, logger="cluster._runtime"):
            t0 = time.monotonic()
            with pytest.raises(RuntimeError, match="places broke"):
                with alongside(release.wait, 30, deadline_s=0.3):
                    raise RuntimeError("places broke")
        assert time.monotonic() - t0 < 10
        assert "did not stop within" in caplog.text
    finally:
        release.set()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    generate_demo(20_000, 5, fields=True).to_parquet(folder / "part-0.parquet", index=False)
    return folder


def test_a_failing_stage_stops_the_profiles_query(folder, monkeypatch):
    """Places fail while the engine counts the profiles: the run raises the places' error
    at once, and the engine's query (here one that would run for hours) is interrupted."""
    started = threading.Event()

    def endless_count(kept, metrics, site_cluster):
        started.set()
        kept.con.execute("SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3").fetchall()

    def broken_places(*args, **kwargs):
        assert started.wait(timeout=30)
        time.sleep(0.2)  # the query is running
        raise RuntimeError("places broke")

    monkeypatch.setattr(pipeline, "profile_counts", endless_count)
    monkeypatch.setattr(pipeline, "_describe", broken_places)
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="places broke"):
        cluster.run(str(folder))
    assert time.monotonic() - t0 < 60
    deadline = time.monotonic() + 10
    while _workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers() == []


def test_profiles_counted_alongside_are_those_counted_after_the_ranking(folder, monkeypatch):
    """The counts are keyed by boundary while the ranking is not known yet, then by the
    cluster's row: the same profiles as counting them at the end."""
    alongside_result = cluster.run(str(folder))

    class Done:  # the worker's future, filled in the calling thread after the ranking
        def __init__(self, fn, *args):
            self.fn, self.args = fn, args

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.value = self.fn(*self.args)
            return False

        def result(self):
            return self.value

    monkeypatch.setattr(pipeline, "alongside", lambda fn, *args, interrupt=None: Done(fn, *args))
    inline = cluster.run(str(folder))
    assert alongside_result.profiles is not None and len(alongside_result.profiles) > 0
    pd.testing.assert_frame_equal(alongside_result.profiles, inline.profiles)
    pd.testing.assert_frame_equal(pd.DataFrame(alongside_result.clusters.drop(columns="geometry")),
                                  pd.DataFrame(inline.clusters.drop(columns="geometry")))
