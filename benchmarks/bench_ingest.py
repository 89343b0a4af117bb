"""Benchmark: the whole run against DuckDB's bare reduction of the same records (issue 22).

Input: the demo world with ``field`` and ``institution`` (``generate_demo(N, fields=True)``)
as a folder of 8 Parquet parts, kept in ``benchmarks/data/ingest-N/``.

Methods, each in a fresh subprocess, timed ``--repeats`` times (median reported), peak
RSS from ``wait4``:

* ``run``: ``python -m cluster run -q --input DIR --out OUT`` (every stage and output);
  the stage times come from its ``run.json``;
* ``bare``: DuckDB alone: read the parts, document sizes (rows per metric and doc_id),
  rows per (metric, lat, lon, n) and the fractional weight per site, fetched to pandas;
  the floor any reading of these records has to pay.

The table gives the ratio run / bare (the issue's target: within 4x at 10 M records,
peak at most 2 GB). Usage: ``python benchmarks/bench_ingest.py --records 1000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"

BARE = '''
import duckdb, sys
con = duckdb.connect(config={"memory_limit": "2GB", "preserve_insertion_order": False})
src = f"read_parquet('{sys.argv[1]}/*.parquet')"
q = f"""WITH r AS (SELECT metric, doc_id, lat, lon FROM {src}),
 d AS (SELECT metric AS m, doc_id AS doc, count(*) AS n FROM r GROUP BY ALL),
 g AS (SELECT metric, lat, lon, n, count(*) AS c FROM r JOIN d ON r.metric = d.m AND r.doc_id = d.doc GROUP BY ALL)
 SELECT metric, lat, lon, sum(c / n) AS weight FROM g GROUP BY ALL"""
out = con.sql(q).df()
print(len(out))
'''


def make_parts(n: int) -> Path:
    folder = DATA / f"ingest-{n}"
    if (folder / "done").exists():
        return folder
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from cluster.demo import generate_demo

    folder.mkdir(parents=True, exist_ok=True)
    world = generate_demo(n, 0, fields=True)
    for i, idx in enumerate(np.array_split(np.arange(len(world)), 8)):
        world.iloc[idx].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "done").write_text("ok")
    return folder


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
    return dt, usage.ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-dir", default=str(RESULTS))
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    parts = make_parts(args.records)
    rows = {"run": [], "bare": []}
    stages = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up (numba cache, OS file cache), not timed.
        timed([sys.executable, "-m", "cluster", "run", "-q", "--input", str(parts), "--out", f"{tmp}/w"], env)
        timed([sys.executable, "-c", BARE, str(parts)], env)
        for i in range(args.repeats):
            rows["run"].append(timed([sys.executable, "-m", "cluster", "run", "-q", "--input", str(parts),
                                      "--out", f"{tmp}/o{i}"], env))
            stages.append(json.loads(Path(f"{tmp}/o{i}/run.json").read_text())["timings_s"])
            rows["bare"].append(timed([sys.executable, "-c", BARE, str(parts)], env))
    med = {k: (statistics.median(t for t, _ in v), max(m for _, m in v)) for k, v in rows.items()}
    stage_med = {k: round(statistics.median(s.get(k, 0.0) for s in stages), 3) for k in stages[0]}
    result = {"records": args.records, "repeats": args.repeats, "cpus": os.cpu_count(),
              "run_s": round(med["run"][0], 3), "run_peak_mb": round(med["run"][1]),
              "bare_s": round(med["bare"][0], 3), "bare_peak_mb": round(med["bare"][1]),
              "ratio": round(med["run"][0] / med["bare"][0], 2), "run_stages_s": stage_med,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"bench_ingest_{args.records}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [f"# Whole run vs DuckDB bare reduction, {args.records:,} demo records with field and institution",
          "", f"8 Parquet parts; median of {args.repeats} runs each (after a warm-up); peak RSS of the "
          f"process; {os.cpu_count()} CPUs shared with other work ({result['date']}).", "",
          "| method | wall s | peak MB |", "|---|---:|---:|",
          f"| whole run (`cluster run`) | {result['run_s']} | {result['run_peak_mb']} |",
          f"| DuckDB bare reduction | {result['bare_s']} | {result['bare_peak_mb']} |", "",
          f"Ratio whole run / bare reduction: **{result['ratio']}x** (target: within 4x at 10 M).", "",
          "Stages of the run (median s): " + ", ".join(f"{k} {v}" for k, v in stage_med.items()), ""]
    (out / f"{name}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
