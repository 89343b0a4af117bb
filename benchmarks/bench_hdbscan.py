"""HDBSCAN* on the sphere and two-level DBSCAN against DBSCAN, same records, same run.

What is timed: ``cluster.engine.hdbscan.hdbscan_sphere`` (floor = ``EPS_KM``) and
``cluster.engine.dbscan.dbscan_sphere`` (radius ``EPS_KM``), both with the core threshold
0.05 % of the records, and two-level DBSCAN (``dbscan_sphere(..., split_scale=3)``, the
shipped ``data/real/patentsview.toml``), end to end from records to labels, on the
city-level records of :mod:`bench_dbscan` (GeoNames places, p ~ population**1.2, 90 % on
the place point, the rest jittered and rounded to 0.01 degree). After a warm-up (numba
compiles or loads its cache), each repeat runs the three methods one after the other, in
an order that rotates from repeat to repeat, ``REPEATS`` times; the median of each is
reported, and the ratios are of medians in this one run, so that the load of a shared
machine weighs on all alike. Peak memory: the process's peak resident set (Linux
``VmHWM``, reset just before one more call of each method) above what it held before.

HDBSCAN*'s core distances and minimum spanning tree are kd-tree searches (weighted
nearest neighbours, then Borůvka's algorithm): about O(u log u) time for u distinct
sites in practice, O(u) memory (it was Prim's algorithm on the complete graph, O(u^2):
11.7 s at 1 M records, 144 times DBSCAN). DBSCAN costs about u times the sites within
two radii; two-level DBSCAN is the same scan carried on to the higher weight, a second
union-find and the remainder's few sites. The results file says how many sites each size had.

Usage: ``python benchmarks/bench_hdbscan.py [N ...]`` (default 30000 100000 300000 1000000);
writes ``benchmarks/results/bench_hdbscan.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_dbscan import EPS_KM, MIN_SHARE, SEED, _peak_rss_kb, _proc_status_kb, _reset_peak, make_records  # noqa: E402

REPEATS = 7
SPLIT = 3.0  # two-level DBSCAN as data/real/patentsview.toml


def _timed(fns: dict) -> tuple[dict, dict]:
    """Median seconds of each function over ``REPEATS`` rounds (each round runs all of them,
    in an order rotating from round to round), and each one's result."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    out = {}
    for r in range(REPEATS):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            out[k] = fns[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}, out


def _methods(lat, lon, min_weight) -> dict:
    """The three methods on one input, as functions of nothing."""
    from cluster.engine.dbscan import dbscan_sphere
    from cluster.engine.hdbscan import hdbscan_sphere

    return {"dbscan": partial(dbscan_sphere, lat, lon, eps_km=EPS_KM, min_weight=min_weight),
            "two_level": partial(dbscan_sphere, lat, lon, eps_km=EPS_KM, min_weight=min_weight, split_scale=SPLIT),
            "hdbscan": partial(hdbscan_sphere, lat, lon, min_weight=min_weight, floor_km=EPS_KM)}


def _peak_worker(method: str, n: int) -> None:
    """In a fresh process: one call's peak resident memory above what the process held
    before it (Linux ``VmHWM``, reset just before), MB, printed; after a warm-up."""
    warm = make_records(2000, SEED)
    _methods(*warm, 5.0)[method]()
    lat, lon = make_records(n, SEED)
    fn = _methods(lat, lon, MIN_SHARE * n)[method]
    before = _proc_status_kb("VmRSS")
    if not (before and _reset_peak()):
        print(json.dumps([None, None]))
        return
    fn()
    peak = _peak_rss_kb()
    print(json.dumps([round((peak - before) / 1024, 1), round(peak / 1024, 1)]))


def _peak_mb(method: str, n: int) -> list:
    """[peak above the start, whole process peak], MB, of one call in a fresh process."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--peak", method, str(n)], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    return json.loads(out[-1]) if out else [None, None]


def main(sizes) -> None:
    import numba
    import sklearn

    warm = make_records(2000, SEED)
    for fn in _methods(*warm, 5.0).values():
        fn()
    rows = []
    for n in sizes:
        lat, lon = make_records(n, SEED)
        sites = len(np.unique(np.column_stack([lat, lon]), axis=0))
        min_weight = MIN_SHARE * n
        fns = _methods(lat, lon, min_weight)
        sec, out = _timed(fns)
        peak = {k: _peak_mb(k, n) for k in fns}
        rows.append({"records": n, "sites": sites, "dbscan_s": round(sec["dbscan"], 4),
                     "two_level_s": round(sec["two_level"], 4), "hdbscan_s": round(sec["hdbscan"], 4),
                     "two_level_ratio": round(sec["two_level"] / sec["dbscan"], 2),
                     "ratio": round(sec["hdbscan"] / sec["dbscan"], 2),
                     "dbscan_clusters": int(out["dbscan"][0].max() + 1),
                     "two_level_clusters": int(out["two_level"][0].max() + 1),
                     "hdbscan_clusters": int(out["hdbscan"][0].max() + 1),
                     **{f"peak_mb_{k}": peak[k][0] for k in fns},
                     **{f"process_peak_mb_{k}": peak[k][1] for k in fns}})
        print(json.dumps(rows[-1]), flush=True)
    real = _real_sites()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {
        "description": "hdbscan_sphere (floor eps_km), two-level and plain dbscan_sphere (radius eps_km), same "
                       f"records, same run; median of {REPEATS} interleaved runs after a warm-up",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "load_average_1min_at_end": load, "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                    "scikit-learn": sklearn.__version__},
        "input": {"generator": "benchmarks/bench_dbscan.py make_records (GeoNames places, city-level)",
                  "seed": SEED},
        "parameters": {"eps_km": EPS_KM, "min_share": MIN_SHARE, "split_scale": SPLIT, "hdbscan_selection": "eom"},
        "results": rows,
        "patentsview_2013_sites": real,
    }
    out = ROOT / "benchmarks" / "results"
    (out / "bench_hdbscan.json").write_text(json.dumps(info, indent=2) + "\n")
    lines = ["# HDBSCAN* on the sphere and two-level DBSCAN vs DBSCAN (same records, same run)", "",
             f"`benchmarks/bench_hdbscan.py`, {info['date']}: eps_km = {EPS_KM:g} (HDBSCAN*'s floor), core "
             f"threshold {MIN_SHARE:.2%} of the records, two-level at {SPLIT:g} times it; median of {REPEATS} "
             f"interleaved runs; {info['machine']['cpus']} CPUs shared with other agents' jobs (1-minute load "
             f"average {load:.1f} at the end), so the seconds move from run to run and the ratios, of medians "
             "in one run, less.", "",
             f"| records | distinct sites | DBSCAN (s) | two-level x{SPLIT:g} (s) | ratio | HDBSCAN* (s) | ratio "
             "| peak MB DBSCAN / two-level / HDBSCAN* | clusters DBSCAN / two-level / HDBSCAN* |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['records']:,} | {r['sites']:,} | {r['dbscan_s']:.3f} | {r['two_level_s']:.3f} | "
                     f"{r['two_level_ratio']:.1f} | {r['hdbscan_s']:.3f} | {r['ratio']:.1f} | "
                     f"{r['peak_mb_dbscan']} / {r['peak_mb_two_level']} / {r['peak_mb_hdbscan']} | "
                     f"{r['dbscan_clusters']} / {r['two_level_clusters']} / {r['hdbscan_clusters']} |")
    lines += ["", "Peak MB: the peak resident memory of one call above what its process held before (a "
              "fresh process per method and size, after a warm-up; the records themselves not counted): "
              "the record-to-site map and the labels (8 bytes a record each) and O(u) for the sites; where the "
              "call fits in memory the process already held (small inputs), it shows as 0. The whole process "
              f"peaked at {rows[-1]['process_peak_mb_dbscan']} / {rows[-1]['process_peak_mb_two_level']} / "
              f"{rows[-1]['process_peak_mb_hdbscan']} MB at {rows[-1]['records']:,} records (Python, numpy, "
              "numba and the records included).", "",
              "Before and after, side by side (2026-12-04, one process, 1,000,000 records, the previous "
              "commit's HDBSCAN* module and its two-level composition -- two DBSCAN calls, a kd-tree query "
              "and a third DBSCAN on the records, kept as the reference in tests/test_two_level.py -- "
              "interleaved with the new ones, median of 11, three runs at a load average of 2.6-3.4, "
              "labels checked identical): two-level 6.8-7.4 times DBSCAN before, 1.1-1.2 after; HDBSCAN* "
              "5.9-6.3 times before, 4.8-5.3 after. On the same machine less loaded, HDBSCAN* measured "
              "3.8-4.0 times (the published table before this change had 4.8). Two-level DBSCAN is now one "
              "pass (`dbscan_sphere(..., split_scale=S)`: one fold, one grid, the core scan carried on to S "
              "times the threshold, a second union-find over the dense sites and the remainder's few "
              "sites). HDBSCAN* sorts by radix instead of numpy's stable argsorts, builds its kd-tree's "
              "subtrees on threads and scans its annuli without branches; the rest is its core distances "
              "(about 150 sites and 46 tree nodes examined per site, most of them the light sites within "
              "its core distance; a per-leaf candidate list, a tree of 8 or 32 sites a leaf, always "
              "selecting from the annulus, and an upper bound from the nearest heavy site were measured "
              "slower) and Borůvka's rounds (in the second, every site searches for its lightest edge out "
              "of its component), which the 3-times target leaves short: HDBSCAN* stays at about 4 to 5 "
              "times DBSCAN here, and about 5 on one core.", "",
              "HDBSCAN*'s core distances and spanning tree are kd-tree searches on the u distinct sites "
              "(weighted nearest neighbours, then Borůvka's algorithm), about O(u log u) time in practice and "
              "O(u) memory; before that, Prim on the complete mutual-reachability graph, O(u^2), took 11.702 s "
              "at 1,000,000 records (144.2 times DBSCAN). Above, the methods run on the records as given "
              "(duplicates included); in a run they get the sites.", "",
              f"The clustering stage (`cluster_metrics`) on PatentsView 2013 ({real['sites']:,} sites, "
              f"0.05 % threshold), median of {REPEATS} interleaved runs:", "",
              "| setting | seconds | ratio to DBSCAN 15 km |", "|---|---:|---:|"]
    for name, sec in real["seconds"].items():
        lines.append(f"| {name} | {sec:.3f} | {sec / real['seconds']['dbscan 15 km']:.1f} |")
    (out / "bench_hdbscan.md").write_text("\n".join(lines) + "\n")


def _real_sites() -> dict:
    """The clustering stage on the PatentsView 2013 sites, for the three methods."""
    import pandas as pd

    from cluster.config import load_config
    from cluster.stages.clustering import cluster_metrics

    df = pd.read_csv(ROOT / "data" / "real" / "patentsview_inventor_locations_2013.csv")
    sites = pd.DataFrame({"metric": pd.Categorical(["patents"] * len(df), ["patents"]), "lat": df["lat"],
                          "lon": df["lon"], "weight": df["n_inventors"].astype(float)})
    totals = {"patents": float(df["n_inventors"].sum())}
    settings = {"dbscan 15 km": {"eps_km": 15.0}, "dbscan/3 15 km (shipped)": {"eps_km": 15.0, "split_scale": 3.0},
                "hdbscan floor 10 km": {"eps_km": 10.0, "method": "hdbscan"}}
    fns = {}
    for name, clustering in settings.items():
        config = load_config({"clustering": clustering, "metrics": {"patents": {"min_share": 5e-4}}})
        fns[name] = partial(cluster_metrics, sites, config, totals)
        fns[name]()
    sec, _ = _timed(fns)
    seconds = {name: round(sec[name], 4) for name in settings}
    return {"sites": len(sites), "seconds": seconds}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peak"]:
        _peak_worker(sys.argv[2], int(sys.argv[3]))
        sys.exit()
    main([int(a) for a in sys.argv[1:]] or [30_000, 100_000, 300_000, 1_000_000])
