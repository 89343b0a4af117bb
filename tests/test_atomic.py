"""A run killed with SIGKILL at any point leaves the previous outputs intact (or the new ones
complete), and the next run clears what the killed one left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import two_city_csv

from cluster.outputs.files import OUTPUT_FILES

# Runs the CLI with one stage slowed down: when the run reaches `where`, it touches a
# marker file and sleeps, so the test can kill it exactly there.
DRIVER = r"""
import sys, time, pathlib
import cluster._atomic as a
import cluster.outputs.files as o
marker, where = pathlib.Path(sys.argv[1]), sys.argv[2]
def pause():
    marker.write_text("here")
    time.sleep(60)
if where == "mid-write":
    real = o.draw_map
    def draw_map(*a, **k):
        real(*a, **k)
        pause()
    o.draw_map = draw_map
elif where == "after-swap":
    real = a._exchange
    def _exchange(x, y):
        done = real(x, y)
        pause()
        return done
    a._exchange = _exchange
from cluster.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _snapshot(out: Path) -> dict:
    return {f: (out / f).read_bytes() for f in OUTPUT_FILES}




def _args(inp, out, eps):
    return ["-q", "run", "--input", str(inp), "--out", str(out), "--eps-km", str(eps),
            "--min-weight", "patents=3", "--min-weight", "vc=3", "--min-weight", "publications=3"]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid-write", "after-swap"])
def test_sigkill_leaves_old_or_new_outputs_never_a_mix(tmp_path, where):
    inp, out, marker = two_city_csv(tmp_path / "r.csv"), tmp_path / "out", tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    assert subprocess.run([sys.executable, "-m", "cluster.cli", *_args(inp, out, 10)], env=env).returncode == 0
    old = _snapshot(out)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(marker), where, *_args(inp, out, 2)], env=env)
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before the kill point"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    now = _snapshot(out)
    if where == "mid-write":
        assert now == old
    else:
        assert now != old and set(now) == set(old)  # the new outputs, complete
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["marker", "out", "r.csv"]
    # The next run removes the killed run's hidden debris.
    assert subprocess.run([sys.executable, "-m", "cluster.cli", *_args(inp, out, 10)], env=env).returncode == 0
    again = _snapshot(out)
    for f in ("ranking.csv", "clusters.parquet"):  # the files promised byte-identical
        assert again[f] == old[f]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker", "out", "r.csv"]
