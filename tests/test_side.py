"""map.png is drawn in a forked side process (cluster.outputs._side): the same bytes as in
the run's own process, errors and deaths reported, no process left behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cluster.outputs._side import ENV_SWITCH, side_process_available, submit

needs_fork = pytest.mark.skipif(not side_process_available(), reason="no side process on this platform")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone for our purpose
        return fh.read().split(") ")[-1][0] != "Z"


@needs_fork
def test_jobs_run_in_another_process_and_return_their_value():
    with submit(os.getpid) as job:
        assert job.result() != os.getpid()
    with submit(divmod, 17, 5) as job:
        assert job.result() == (3, 2)


def test_switched_off_jobs_run_here(monkeypatch):
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert not side_process_available()
    with submit(os.getpid) as job:
        assert job.result() == os.getpid()


def _fails():
    raise ValueError("no map today")


@needs_fork
def test_an_error_comes_back_with_the_side_traceback():
    with submit(_fails) as job, pytest.raises(ValueError, match="no map today") as caught:
        job.result()
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "side process" in notes and "_fails" in notes


@needs_fork
def test_a_job_whose_process_dies_is_done_here():
    parent = os.getpid()

    def job():
        if os.getpid() != parent:
            os._exit(3)  # as if killed
        return "made here"

    with submit(job) as handle:
        assert handle.result() == "made here"


@needs_fork
def test_leaving_without_the_result_stops_the_job(tmp_path):
    mark = tmp_path / "pid"

    def slow():
        mark.write_text(str(os.getpid()))
        time.sleep(60)

    with pytest.raises(RuntimeError), submit(slow):
        deadline = time.monotonic() + 30
        while not mark.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError("the run failed elsewhere")
    assert not _pid_alive(int(mark.read_text()))


@needs_fork
def test_the_side_process_dies_with_a_killed_run(tmp_path):
    mark = tmp_path / "pid"
    driver = textwrap.dedent(f"""
        import os, time
        from cluster.outputs._side import submit
        def slow():
            open({str(mark)!r}, "w").write(str(os.getpid()))
            time.sleep(60)
        with submit(slow) as job:
            job.result()
    """)
    run = subprocess.Popen([sys.executable, "-c", driver])
    try:
        deadline = time.monotonic() + 60
        while not (mark.exists() and mark.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        side = int(mark.read_text())
        run.send_signal(signal.SIGKILL)
        run.wait(30)
        deadline = time.monotonic() + 10
        while _pid_alive(side) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pid_alive(side)
    finally:
        run.kill()


@needs_fork
def test_map_png_is_the_same_from_the_side_process(tmp_path, monkeypatch):
    import cluster
    from cluster.demo import generate_demo

    res = cluster.run(generate_demo(n_records=20_000, seed=3))
    res.write(tmp_path / "side")
    monkeypatch.setenv(ENV_SWITCH, "0")
    res.write(tmp_path / "here")
    for name in ("map.png", "ranking.csv", "clusters.parquet"):
        assert (tmp_path / "side" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name
