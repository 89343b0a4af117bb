"""Benchmark: the whole run against DuckDB's bare reduction of the same records (issue 22).

Input: the demo world with ``field`` and ``institution`` (``generate_demo(N, fields=True)``)
as a folder of 8 Parquet parts, kept in ``benchmarks/data/ingest-N/``.

Methods, each in a fresh subprocess, timed ``--repeats`` times (median reported), peak
RSS (the largest of the runs, in MiB; for the whole run in decimal GB too) and CPU
seconds (user + system, all threads) from ``wait4``; the machine is shared, so the CPU
seconds, less sensitive to other work than the wall time, are reported too:

* ``run``: ``python -m cluster run -q --input DIR --out OUT`` (every stage and output);
  the stage times come from its ``run.json``;
* ``bare``: DuckDB alone: read the parts, document sizes (rows per metric and doc_id),
  rows per (metric, lat, lon, n) and the fractional weight per site, fetched to pandas;
  the floor any reading of these records has to pay;
* ``baseline`` (with ``--baseline TREE``): the whole run of another checkout (e.g. the
  commit before a change), interleaved with the others so both meet the same load.

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


def timed(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of one child."""
    t0 = time.perf_counter()
    # From a neutral folder: ``python -m`` puts the working directory first on the path,
    # which would shadow PYTHONPATH (the tree being timed).
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode()[-2000:]}")
    return dt, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out-dir", default=str(RESULTS))
    ap.add_argument("--baseline", default="", help="another checkout whose whole run is timed alongside")
    args = ap.parse_args(argv)

    def env_for(root):
        return {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    env = env_for(ROOT)
    # Made in a child: the timed children are forked from this process, and a fork of a
    # process that held the 10 M records would report its resident pages as their peak.
    subprocess.run([sys.executable, "-c", f"import bench_ingest; bench_ingest.make_parts({args.records})"],
                   cwd=HERE, check=True)
    parts = make_parts(args.records)  # made: only its folder
    trees = {"run": env, **({"baseline": env_for(Path(args.baseline).resolve())} if args.baseline else {})}
    rows = {"run": [], "bare": [], **({"baseline": []} if args.baseline else {})}
    stages = {k: [] for k in trees}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up (numba cache, OS file cache), not timed.
        for name, tree_env in trees.items():
            timed([sys.executable, "-m", "cluster", "run", "-q", "--input", str(parts), "--out", f"{tmp}/w{name}"],
                  tree_env)
        timed([sys.executable, "-c", BARE, str(parts)], env)
        for i in range(args.repeats):
            for name, tree_env in trees.items():
                rows[name].append(timed([sys.executable, "-m", "cluster", "run", "-q", "--input", str(parts),
                                         "--out", f"{tmp}/{name}{i}"], tree_env))
                stages[name].append(json.loads(Path(f"{tmp}/{name}{i}/run.json").read_text())["timings_s"])
            rows["bare"].append(timed([sys.executable, "-c", BARE, str(parts)], env))
            load.append(os.getloadavg()[0])
    med = {k: (statistics.median(t for t, _, _ in v), max(m for _, m, _ in v), statistics.median(c for _, _, c in v))
           for k, v in rows.items()}
    stage_med = {name: {k: round(statistics.median(s.get(k, 0.0) for s in runs), 3) for k in runs[0]}
                 for name, runs in stages.items()}
    result = {"records": args.records, "repeats": args.repeats, "cpus": os.cpu_count(),
              "run_s": round(med["run"][0], 3), "run_peak_mb": round(med["run"][1]),
              "run_cpu_s": round(med["run"][2], 2),
              "bare_s": round(med["bare"][0], 3), "bare_peak_mb": round(med["bare"][1]),
              "bare_cpu_s": round(med["bare"][2], 2),
              "ratio": round(med["run"][0] / med["bare"][0], 2),
              "cpu_ratio": round(med["run"][2] / med["bare"][2], 2), "run_stages_s": stage_med["run"],
              "load_average_1min": [round(x, 2) for x in load],
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.baseline:
        result.update({"baseline": str(args.baseline), "baseline_s": round(med["baseline"][0], 3),
                       "baseline_peak_mb": round(med["baseline"][1]), "baseline_cpu_s": round(med["baseline"][2], 2),
                       "baseline_ratio": round(med["baseline"][0] / med["bare"][0], 2),
                       "baseline_stages_s": stage_med["baseline"]})
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"bench_ingest_{args.records}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [f"# Whole run vs DuckDB bare reduction, {args.records:,} demo records with field and institution",
          "", f"8 Parquet parts; median of {args.repeats} runs each (after a warm-up), interleaved; peak RSS "
          f"of the process; CPU s = user + system of all its threads; {os.cpu_count()} CPUs shared with other "
          f"work, 1-minute load average {min(load):.1f}-{max(load):.1f} during the runs ({result['date']}).", "",
          "| method | wall s | CPU s | peak MiB (largest run) |", "|---|---:|---:|---:|",
          f"| whole run (`cluster run`) | {result['run_s']} | {result['run_cpu_s']} | {result['run_peak_mb']} |"]
    if args.baseline:
        md.append(f"| whole run, baseline `{args.baseline}` | {result['baseline_s']} | {result['baseline_cpu_s']} | "
                  f"{result['baseline_peak_mb']} |")
    md += [f"| DuckDB bare reduction | {result['bare_s']} | {result['bare_cpu_s']} | {result['bare_peak_mb']} |", "",
           f"Ratio whole run / bare reduction: **{result['ratio']}x** wall, {result['cpu_ratio']}x CPU "
           "(target: within 4x at 10 M)."
           + (f" Baseline: {result['baseline_ratio']}x wall." if args.baseline else ""),
           f"Peak of the whole run: {result['run_peak_mb']} MiB = {result['run_peak_mb'] * 2**20 / 1e9:.2f} GB "
           "(target: at most 2 GB).", ""]
    for tree in stage_med:
        md.append(f"Stages of the {'run' if tree == 'run' else 'baseline'} (median s): "
                  + ", ".join(f"{k} {v}" for k, v in stage_med[tree].items()))
    md.append("")
    (out / f"{name}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
