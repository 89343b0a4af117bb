"""Cost of a 5 x 4 `cluster sweep` against one `cluster run`, both end to end on the demo.

Each command runs in a fresh process (as a user runs them), after one warm-up call so
that numba's compiled engine is cached; wall-clock times include reading (demo
generation), sites, and writing outputs. Writes benchmarks/results/sweep_cost.md.

    python benchmarks/bench_sweep.py [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
EPS = "5,7.5,10,15,20"
SCALES = "0.5,1,2,4"


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    exe = [sys.executable, "-m", "cluster.cli", "-q"]
    demo = ["--demo-records", str(args.records)]
    with tempfile.TemporaryDirectory() as tmp:
        run_cmd = exe + ["run", "--out", f"{tmp}/run"] + demo
        sweep_cmd = exe + ["sweep", "--out", f"{tmp}/sweep", "--eps-km", EPS, "--min-weight-scale", SCALES] + demo
        timed(exe + ["run", "--out", f"{tmp}/warm", "--demo-records", "20000"])  # numba cache warm-up
        runs, sweeps = [], []
        for _ in range(args.repeat):
            runs.append(timed(run_cmd))
            sweeps.append(timed(sweep_cmd))
        table = pd.read_csv(f"{tmp}/sweep/sweep.csv")
    run_s, sweep_s = min(runs), min(sweeps)
    ratio = sweep_s / run_s
    lines = [
        "# Cost of a threshold sweep",
        "",
        f"`cluster sweep --eps-km {EPS} --min-weight-scale {SCALES}` ({len(table)} combinations) "
        f"against one `cluster run`, both on the {args.records:,}-record demo world, end to end in "
        f"fresh processes (best of {args.repeat}; demo generation, sites and writing included).",
        "",
        "| command | seconds (each try) | best |",
        "|---|---|---:|",
        f"| `cluster run` | {', '.join(f'{s:.1f}' for s in runs)} | {run_s:.1f} |",
        f"| `cluster sweep` (5 x 4) | {', '.join(f'{s:.1f}' for s in sweeps)} | {sweep_s:.1f} |",
        "",
        f"**Sweep / run = {ratio:.2f}** (the requirement is at most 4). The {len(table)} combinations "
        f"themselves took {table['seconds'].sum():.1f} s in all "
        f"({table['seconds'].min():.2f}–{table['seconds'].max():.2f} s each): records are read and "
        "reduced to sites once, and each combination reruns only DBSCAN, the overlay and a "
        "membership-based ranking (no boundary polygons, places or GIS files).",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
    ]
    out = HERE / "results" / "sweep_cost.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
