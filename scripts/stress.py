"""``make stress``: many runs under CPU load; fails on any that does not end, or ends badly.

A run that can hang (a lock inherited through ``fork``, a wait without a deadline) hangs
rarely and mostly on a busy machine, so one run proves nothing: this starts a busy loop
on every core, then makes ``--runs`` runs (default 50), two at a time, alternating the
synthetic demo world and the real PatentsView 2013 file as published (``--map``). Each
run gets ``--timeout`` seconds (default 300) to end; the table of outcomes is printed and
the exit code is 1 when any run timed out or exited other than 0.

Usage: ``python scripts/stress.py [--runs N] [--timeout S]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "data" / "real" / "patentsview_inventor_locations_2013.csv"


def _burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _command(i: int, out: Path) -> list[str]:
    base = [sys.executable, "-m", "cluster", "run", "-q", "--out", str(out)]
    if i % 2 and REAL.is_file():
        return base + ["--input", str(REAL), "--map", "weight=n_inventors", "--metric", "patents",
                       "--min-share", "patents=0.05%"]
    return base + ["--demo-records", "50000", "--seed", str(i)]


def _one(i: int, work: Path, timeout: float) -> tuple[int, str, float]:
    t0 = time.monotonic()
    try:
        done = subprocess.run(_command(i, work / f"out-{i}"), capture_output=True, text=True, timeout=timeout,
                              cwd=work)
        status = "ok" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-200:]}"
    except subprocess.TimeoutExpired:
        status = f"HUNG (no end within {timeout:g} s)"
    return i, status, time.monotonic() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    ctx = mp.get_context("spawn")  # no fork: this script practises what it checks
    stop = ctx.Event()
    burners = [ctx.Process(target=_burn, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 1)]
    for b in burners:
        b.start()
    try:
        with tempfile.TemporaryDirectory(prefix="cluster-stress-") as tmp, ThreadPoolExecutor(2) as pool:
            results = sorted(pool.map(lambda i: _one(i, Path(tmp), args.timeout), range(args.runs)))
    finally:
        stop.set()
        for b in burners:
            b.join(5)
            if b.is_alive():
                b.kill()
    bad = [r for r in results if r[1] != "ok"]
    print(f"{'run':>4}  {'input':<12} {'seconds':>8}  outcome")
    for i, status, seconds in results:
        print(f"{i:>4}  {'PatentsView' if i % 2 and REAL.is_file() else 'demo':<12} {seconds:8.1f}  {status}")
    print(f"{len(results) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
