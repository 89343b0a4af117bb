"""Benchmark: validation and reduction of records by the embedded engine, two trees compared.

The column rules (:mod:`cluster.ingest._rules`) are rendered to the SQL that checks every
row of the scan and to the numpy checks of in-memory frames; this times
:func:`cluster.ingest.reduce` (scan, validate, reduce to site groups) on N demo records as
a folder of 8 Parquet parts and as one CSV (where every cell is text and the rules' casts
and blanks cost the most), and :func:`cluster.ingest.validate_frame` on the CSV read as a
text frame (the DataFrame path), for the code of this
tree and of another (``--against /path/to/old/tree``), alternating runs in fresh
subprocesses so that both meet the same machine load.

Usage: ``python benchmarks/bench_rules.py --records 1000000 --against /work/main``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"

CHILD = '''
import sys, time
from cluster.config import load_config
from cluster.ingest import open_records, reduce
cfg = load_config({})
metrics = [m.name for m in cfg.metrics]
t0 = time.perf_counter()
records = open_records([sys.argv[1]], metrics)
red = reduce(records, metrics, cfg)
print(time.perf_counter() - t0, len(red.groups), red.n_records)
'''
# The DataFrame path: the CSV read by pandas as text (not timed), then validated.
CHILD_FRAME = '''
import sys, time
import pandas as pd
from cluster.ingest import validate_frame
frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
t0 = time.perf_counter()
out = validate_frame(frame, "<DataFrame>", ["patents", "publications", "vc"])
print(time.perf_counter() - t0, len(out))
'''


# The reduction's query as a tree builds it (captured, not run): the queries of two trees
# are then timed alternately on one connection, the fairest comparison of the SQL alone.
CAPTURE = '''
import sys
from cluster.config import load_config
from cluster.ingest import engine, open_records
cfg = load_config({})
metrics = [m.name for m in cfg.metrics]
captured = []
def capture(con, query, records, *, arrays=False):
    captured.append(query)
    raise KeyboardInterrupt
engine._fetch = capture
try:
    engine.reduce_records(open_records([sys.argv[1]], metrics), metrics)
except KeyboardInterrupt:
    pass
sys.stdout.write(captured[0])
'''


def query_times(trees: dict, path: Path, repeats: int) -> dict:
    """Median seconds of each tree's reduction query over ``path``, run alternately."""
    import duckdb

    queries = {t: subprocess.run([sys.executable, "-c", CAPTURE, str(path)], env={**os.environ, "PYTHONPATH": str(r)},
                                 capture_output=True, text=True, check=True).stdout for t, r in trees.items()}
    con = duckdb.connect(config={"memory_limit": "2GB", "preserve_insertion_order": False})
    for q in queries.values():
        con.sql(q).fetchnumpy()  # warm-up
    times: dict = {t: [] for t in trees}
    for _ in range(repeats):
        for t, q in queries.items():
            t0 = time.perf_counter()
            con.sql(q).fetchnumpy()
            times[t].append(time.perf_counter() - t0)
    return {t: round(statistics.median(v), 3) for t, v in times.items()}


def make_inputs(n: int) -> tuple[Path, Path]:
    """The demo records as 8 Parquet parts and as one CSV (made once, kept)."""
    folder = DATA / f"rules-{n}"
    parts, csv = folder / "parts", folder / "records.csv"
    if (folder / "done").exists():
        return parts, csv
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from cluster.demo import generate_demo

    parts.mkdir(parents=True, exist_ok=True)
    world = generate_demo(n, 0)
    for i, idx in enumerate(np.array_split(np.arange(len(world)), 8)):
        world.iloc[idx].to_parquet(parts / f"part-{i}.parquet", index=False)
    world.to_csv(csv, index=False)
    (folder / "done").write_text("ok")
    return parts, csv


def timed(root: Path, path: Path, child: str = CHILD) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", child, str(path)], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), " ".join(out[1:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", default="", help="another tree (the old code) to time alike")
    ap.add_argument("--out-dir", default=str(RESULTS))
    args = ap.parse_args(argv)
    parts, csv = make_inputs(args.records)
    trees = {"this tree": ROOT} | ({"other tree": Path(args.against)} if args.against else {})
    kinds = (("parquet", parts, CHILD), ("csv", csv, CHILD), ("frame", csv, CHILD_FRAME))
    times: dict = {(t, k): [] for t in trees for k, _, _ in kinds}
    checks: dict = {}
    for kind, path, child in kinds:
        for root in trees.values():
            timed(root, path, child)  # warm-up (OS file cache)
        for _ in range(args.repeats):
            for tree, root in trees.items():
                dt, check = timed(root, path, child)
                times[(tree, kind)].append(dt)
                checks.setdefault(kind, set()).add(check)
    same = all(len(v) == 1 for v in checks.values())
    sql = {kind: query_times(trees, path, 2 * args.repeats + 1) for kind, path in (("parquet", parts), ("csv", csv))}
    med = {f"{t} {k}": round(statistics.median(v), 3) for (t, k), v in times.items()}
    result = {"records": args.records, "repeats": args.repeats, "cpus": os.cpu_count(), "median_s": med,
              "query_median_s": sql, "same_groups": same, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_rules.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [f"# Validation + reduction (`cluster.ingest.reduce`), {args.records:,} demo records", "",
          f"Median of {args.repeats} alternating runs in fresh processes (after a warm-up); "
          f"{os.cpu_count()} CPUs shared with other work ({result['date']}). Other tree: "
          f"{args.against or '-'}. Same groups and record counts on both: {same}.", "",
          "| tree | embedded, Parquet (8 parts) s | embedded, CSV s | DataFrame (`validate_frame`) s |",
          "|---|---:|---:|---:|"]
    for tree in trees:
        md.append(f"| {tree} | {med[f'{tree} parquet']} | {med[f'{tree} csv']} | {med[f'{tree} frame']} |")
    md += ["", f"The reduction's SQL alone (each tree's query, timed alternately on one connection, median of "
           f"{2 * args.repeats + 1}):", "", "| tree | Parquet s | CSV s |", "|---|---:|---:|"]
    for tree in trees:
        md.append(f"| {tree} | {sql['parquet'][tree]} | {sql['csv'][tree]} |")
    (out / "bench_rules.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
