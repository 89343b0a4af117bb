"""Benchmark: writing a run's outputs (``RunResult.write``), this tree against another (issue 22).

The run is made once, with this tree (``cluster.run`` on ``benchmarks/data/ingest-N/``, the
demo world with ``field`` and ``institution`` in 8 Parquet parts, see bench_ingest.py), and
kept in a pickle. Each repeat then writes it in a fresh subprocess per tree, this one and
``--baseline TREE`` (e.g. ``git archive`` of the commit before a change), interleaved so that
both meet the same load; modules are imported before the clock starts, so what is timed is
``write_outputs`` as a run pays it (first drawing of the map included). Wall seconds and CPU
seconds (all threads of the process) are reported as medians: the machine is shared, and the
CPU seconds are less sensitive to other work than the wall time.

Every file of the two output folders is compared: byte for byte, except ``manifest.json``
(it lists the others' checksums) and ``clusters.gpkg``, compared with its timestamps and
SQLite's file change counter blanked (both vary between two writes by the same code).

Usage: ``python benchmarks/bench_write.py --records 10000000 --baseline /tmp/base``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

MAKE = '''
import pickle, sys
import cluster
res = cluster.run(sys.argv[1])
with open(sys.argv[2], "wb") as f:
    pickle.dump({"clusters": res.clusters, "sites": res.sites_table, "info": res.info, "config": res.config,
                 "profiles": res.profiles, "rejects": res.rejects}, f, protocol=5)
'''

WRITE = '''
import json, pickle, sys, time
import matplotlib.figure, pyogrio, geopandas, pyarrow.compute
import cluster.outputs.files
from cluster.pipeline import RunResult
with open(sys.argv[1], "rb") as f:
    d = pickle.load(f)
res = RunResult(**d)
wall, cpu = time.perf_counter(), time.process_time()
res.write(sys.argv[2])
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}))
'''

_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def comparable(path: Path) -> bytes:
    """A file's bytes, a GeoPackage's with what varies between two writes blanked."""
    data = path.read_bytes()
    if path.suffix == ".gpkg":
        data = bytearray(_STAMP.sub(lambda m: b"X" * len(m.group()), data))
        data[24:28] = data[92:96] = b"\0\0\0\0"  # SQLite's file change counter
    return bytes(data)


def compare(a: Path, b: Path) -> dict:
    """File -> "identical" / "identical (masked)" / "differs" / "missing" for two output folders."""
    out = {}
    for name in sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()}):
        if name == "manifest.json":
            continue
        if not (a / name).is_file() or not (b / name).is_file():
            out[name] = "missing"
        elif (a / name).read_bytes() == (b / name).read_bytes():
            out[name] = "identical"
        else:
            out[name] = "identical (masked)" if comparable(a / name) == comparable(b / name) else "differs"
    return out


def write_once(tree: Path, pickled: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", WRITE, str(pickled), str(out)], env=env, cwd=tempfile.gettempdir(),
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"writing with {tree} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--baseline", type=Path, help="another checkout to compare with")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", type=Path, help="the records folder (default benchmarks/data/ingest-N)")
    args = ap.parse_args()
    data = args.data or HERE / "data" / f"ingest-{args.records}"
    if not data.is_dir():
        sys.exit(f"{data} is missing: make it with benchmarks/bench_ingest.py --records {args.records}")
    trees = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pickled = tmp / "result.pkl"
        subprocess.run([sys.executable, "-c", MAKE, str(data), str(pickled)], check=True, cwd=tmp,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        times: dict = {k: [] for k in trees}
        for i in range(args.repeats):
            for name, tree in trees.items():
                times[name].append(write_once(tree, pickled, tmp / f"{name}-{i}"))
        files = compare(tmp / "this-0", tmp / "baseline-0") if args.baseline else {}
        sizes = {p.name: p.stat().st_size for p in (tmp / "this-0").iterdir()}
    load = os.getloadavg()
    rows = {name: {"wall_s": statistics.median(t["wall_s"] for t in ts),
                   "cpu_s": statistics.median(t["cpu_s"] for t in ts),
                   "wall_s_min": min(t["wall_s"] for t in ts)} for name, ts in times.items()}
    result = {"records": args.records, "repeats": args.repeats, "load_average": load, "times": rows,
              "runs": times, "files": files, "bytes": sizes,
              "baseline": str(args.baseline) if args.baseline else None}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"bench_write_{args.records}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Writing the outputs of a run at {args.records:,} records", "",
             f"Medians of {args.repeats} writes, each in a fresh process; load average at the end "
             f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (2 cores, shared).", "",
             "| tree | wall s (median) | wall s (min) | CPU s (median, all threads) |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {r['wall_s']:.2f} | {r['wall_s_min']:.2f} | {r['cpu_s']:.2f} |" for name, r in rows.items()]
    if files:
        lines += ["", "Files of the two trees' outputs:", "", "| file | bytes | comparison |", "|---|---:|---|"]
        lines += [f"| {f} | {sizes.get(f, 0):,} | {c} |" for f, c in files.items()]
    (RESULTS / f"bench_write_{args.records}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
