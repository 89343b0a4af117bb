"""Benchmark: the whole pipeline, Parquet records to every output, at 1 M, 10 M (and 100 M) records.

Input
-----
``benchmarks/make_records.py``: N records of the synthetic demo world's geography as
hive-partitioned Parquet (``DIR/metric=M/year=Y/part-*.parquet``, zstd), with
realistic string document ids (``US-2021-0123456-A1``, ``W2741809807``,
``cb-rnd-1f3a9c07``), documents of 1..10 locations and a bounded set of sites
(102 k distinct coordinates at 1 M records, 196 k at 10 M, 236 k at 100 M), generated
in 4 M-row chunks (100 M: 150 s, 0.95 GB peak, 857 MB on disk) and kept in
``benchmarks/data/`` (reused when the same size and seed are there). Generation time
is reported, not counted.

Methods (each run in a fresh subprocess)
----------------------------------------
* ``new``: this checkout, ``python -m cluster run --input DIR --out OUT`` (the
  directory; with ``--new-input auto``, the default, it falls back to one ``--input
  FILE --metric M`` per file when this checkout's reader does not take a directory).
* ``before``: the project before issue 11 (commit ``674a4be``, extracted with
  ``git archive`` into ``benchmarks/data/before-<commit>/`` and put first on
  ``PYTHONPATH``), same Python and libraries, ``--input FILE --metric M`` per file.
* ``naive``: ``benchmarks/naive_pipeline.py``, the straightforward geopandas +
  scikit-learn pipeline a user would write (read, fractional counts, dedup, weighted
  haversine DBSCAN per metric, buffered union, overlay, spatial-join counts, score).

Measurement
-----------
Warm: the first size of each method is run once untimed (numba's cache, imports, the
OS file cache); larger sizes reuse that numba cache and have their files read once
before timing (file cache). Sizes up to 1 M, and 10 M for the fast methods (new,
naive: 10 M is the size of the issue's wall-time target), are timed ``--repeats`` times
(default 3) and the median run reported; larger sizes, and ``before`` past 1 M, once.
Each run waits (up to ``--max-wait`` s) for idle CPUs first: the machine is shared.

Wall time per stage: the ``timings_s`` of the run's ``run.json``; ``startup`` (the
interpreter and imports until reading starts), ``outputs`` (writing every file, after
the last stage) and the total (spawn to exit) come from the run's ``stage NAME ...`` /
``stage NAME done`` log lines, timestamped by this process as they arrive on stderr.
Peak RSS per stage: the child's ``VmRSS`` (``/proc/PID/status``) sampled every 20 ms
and attributed to the stage running at that instant; the process peak is its
``ru_maxrss`` from ``wait4``. A watchdog kills a child whose RSS passes ``--mem-cap-gb``
(default 18 GB of the machine's 24), and a size whose peak, extrapolated linearly from
the smaller sizes, would pass it is not run ("not run (projected X GB)").

Outputs compared (smallest size): number of clusters, overlap of the top 100 by
score, Spearman correlation of the scores of clusters matched by anchor (the heaviest
location, mutual nearest within ``eps_km``), and whether ``ranking.csv`` is identical.

Usage: ``python benchmarks/bench_pipeline.py`` (1 M and 10 M, results in
``benchmarks/results/bench_pipeline.{md,json}``), ``--sizes 1M,10M,100M``,
``--methods new,naive``, or ``--quick`` (20 k and 100 k, printed only).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import make_records  # noqa: E402
from bench_dbscan import wait_until_quiet  # noqa: E402

BEFORE_COMMIT = "674a4be"
EPS_KM = 10.0
METHODS = ("new", "before", "naive")
RSS_POLL_S = 0.02
# Stage names (the project's and the naive pipeline's) grouped into the table's columns;
# any other stage name goes to "other".
GROUPS = {
    "startup": ("startup",),
    "read": ("read", "scan", "ingest", "validate"),
    "sites": ("sites", "weights", "reduce"),
    "dbscan": ("dbscan", "overlay"),
    "boundaries": ("boundaries",),
    "places / counts": ("places", "counts", "population"),
    "ranking": ("ranking", "profiles", "bootstrap"),
    "outputs": ("outputs", "write"),
}
_STAGE_START = re.compile(r"\bstage (\S+) \.\.\.")
_STAGE_DONE = re.compile(r"\bstage (\S+) done")
_WROTE = re.compile(r"\bINFO\s+wrote ")


# --------------------------------------------------------------------------------------
# One run in a child process
# --------------------------------------------------------------------------------------


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def run_child(cmd: list[str], *, env: dict, cwd: str, mem_cap_kb: int, timeout_s: float) -> dict:
    """Run ``cmd``; return its wall time, exit status, stderr lines with arrival times
    (s since spawn), RSS samples ``(t, kb)``, ``ru_maxrss`` (kB) and whether the
    watchdog killed it (and why)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[tuple[float, str]] = []
    samples: list[tuple[float, int]] = []
    killed: list[str] = []
    done = threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))

    def poll_rss():
        while not done.is_set():
            kb = _rss_kb(proc.pid)
            t = time.perf_counter() - t0
            if kb is not None:
                samples.append((t, kb))
                if kb > mem_cap_kb and not killed:
                    killed.append(f"RSS {kb / 1e6:.1f} GB above the cap of {mem_cap_kb / 1e6:.1f} GB")
                    _kill(proc.pid)
            if t > timeout_s and not killed:
                killed.append(f"wall time above {timeout_s:.0f} s")
                _kill(proc.pid)
            done.wait(RSS_POLL_S)

    reader = threading.Thread(target=read_stderr, daemon=True)
    poller = threading.Thread(target=poll_rss, daemon=True)
    reader.start()
    poller.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    poller.join()
    reader.join(timeout=5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "returncode": proc.returncode, "lines": lines, "samples": samples,
            "maxrss_kb": usage.ru_maxrss, "killed": killed[0] if killed else None}


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # the child leads its own session (start_new_session)
    except ProcessLookupError:
        pass


def segments(lines: list[tuple[float, str]], timings: dict, wall: float) -> list[tuple[str, float, float]]:
    """``(stage, t_start, t_end)`` in seconds since spawn, from the stage log lines.

    A stage timed in ``run.json`` without log lines of its own (the project's ``read``)
    is placed just before the first logged stage; ``startup`` runs from the spawn to the
    first stage, ``outputs`` from the end of the last stage to the ``wrote ...`` line and
    ``exit`` from there to the process's end.
    """
    segs, open_at = [], {}
    for t, line in lines:
        if m := _STAGE_START.search(line):
            open_at[m.group(1)] = t
        elif (m := _STAGE_DONE.search(line)) and m.group(1) in open_at:
            segs.append((m.group(1), open_at.pop(m.group(1)), t))
    if not segs:
        return [("startup", 0.0, wall)]
    first, last = segs[0][1], segs[-1][2]
    logged = {s for s, _, _ in segs}
    before = sum(v for k, v in timings.items() if k not in logged)
    lead = [(k, 0.0, 0.0) for k in timings if k not in logged]
    t = max(first - before, 0.0)
    placed = []
    for k, _, _ in lead:
        placed.append((k, t, t + timings[k]))
        t += timings[k]
    wrote = next((t for t, line in lines if _WROTE.search(line) and t >= last), None)
    out = [("startup", 0.0, max(first - before, 0.0)), *placed, *segs]
    if wrote is not None:
        out += [("outputs", last, wrote), ("exit", wrote, wall)]
    else:
        out.append(("outputs", last, wall))
    return out


def summarize(child: dict, out_dir: Path) -> dict:
    """Per-stage wall and peak RSS of one finished run."""
    info = {}
    run_json = out_dir / "run.json"
    if child["returncode"] == 0 and run_json.is_file():
        info = json.loads(run_json.read_text())
    timings = info.get("timings_s", {})
    segs = segments(child["lines"], timings, child["wall_s"])
    t = np.array([s[0] for s in child["samples"]]) if child["samples"] else np.zeros(0)
    kb = np.array([s[1] for s in child["samples"]]) if child["samples"] else np.zeros(0)
    stages = {}
    for name, a, b in segs:
        sel = (t >= a) & (t <= b)
        stages[name] = {"wall_s": round(float(timings.get(name, b - a)), 3),
                        "peak_rss_mb": round(float(kb[sel].max()) / 1024, 1) if sel.any() else None}
    return {"total_wall_s": round(child["wall_s"], 3), "peak_rss_mb": round(child["maxrss_kb"] / 1024, 1),
            "stages": stages, "returncode": child["returncode"], "killed": child["killed"],
            "counts": info.get("counts", {}),
            "stderr_tail": [line for _, line in child["lines"][-8:]] if child["returncode"] else []}


def group_stages(stages: dict) -> dict:
    """Stage figures summed (wall) and maxed (RSS) into the columns of :data:`GROUPS`."""
    out = {}
    names = {n: g for g, ns in GROUPS.items() for n in ns}
    for name, v in stages.items():
        if name == "exit":
            continue
        g = names.get(name, "other")
        cur = out.setdefault(g, {"wall_s": 0.0, "peak_rss_mb": None})
        cur["wall_s"] = round(cur["wall_s"] + v["wall_s"], 3)
        if v["peak_rss_mb"] is not None:
            cur["peak_rss_mb"] = max(cur["peak_rss_mb"] or 0.0, v["peak_rss_mb"])
    return out


# --------------------------------------------------------------------------------------
# Commands of the three methods
# --------------------------------------------------------------------------------------


def per_file_inputs(data: Path, layout: str) -> list[str]:
    """``--input FILE [--metric M]`` for every Parquet file of ``data``."""
    args = []
    for f in sorted(data.rglob("*.parquet")):
        args += ["--input", str(f)]
        if layout == "hive":
            metric = next(p.split("=", 1)[1] for p in f.relative_to(data).parts if p.startswith("metric="))
            args += ["--metric", metric]
    return args


def ensure_before(commit: str) -> Path:
    """The project at ``commit``, extracted (``git archive``) under benchmarks/data."""
    dest = make_records.DATA_DIR / f"before-{commit}"
    if (dest / "cluster" / "__init__.py").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def command(method: str, data: Path, layout: str, out: Path, new_input: str, before_dir: Path | None):
    """(argv, PYTHONPATH) of one method on one input."""
    py = sys.executable
    if method == "naive":
        return [py, str(HERE / "naive_pipeline.py"), str(data), str(out)], str(ROOT)
    if method == "before":
        return [py, "-m", "cluster", "run", *per_file_inputs(data, layout), "--out", str(out)], str(before_dir)
    inputs = ["--input", str(data)] if new_input == "dir" else per_file_inputs(data, layout)
    return [py, "-m", "cluster", "run", *inputs, "--out", str(out)], str(ROOT)


def warm_file_cache(data: Path) -> None:
    for f in sorted(data.rglob("*.parquet")):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


# --------------------------------------------------------------------------------------
# Comparing outputs
# --------------------------------------------------------------------------------------


def compare_rankings(a_dir: Path, b_dir: Path, eps_km: float = EPS_KM, top: int = 100) -> dict:
    """Clusters of run ``a`` against run ``b``: counts, top-``top`` overlap and the
    Spearman correlation of the scores of clusters matched by anchor (mutual nearest
    anchors within ``eps_km``)."""
    import pandas as pd
    from scipy.stats import spearmanr

    from cluster.engine.geo import haversine_km

    a = pd.read_csv(a_dir / "ranking.csv").sort_values("rank").reset_index(drop=True)
    b = pd.read_csv(b_dir / "ranking.csv").sort_values("rank").reset_index(drop=True)
    d = haversine_km(a["anchor_lat"].to_numpy()[:, None], a["anchor_lon"].to_numpy()[:, None],
                     b["anchor_lat"].to_numpy()[None, :], b["anchor_lon"].to_numpy()[None, :])
    ab, ba = d.argmin(axis=1), d.argmin(axis=0)
    pairs = [(i, j) for i, j in enumerate(ab) if ba[j] == i and d[i, j] <= eps_km]
    ia = np.array([i for i, _ in pairs], dtype=int)
    jb = np.array([j for _, j in pairs], dtype=int)
    top_a = set(range(min(top, len(a))))
    top_b = set(range(min(top, len(b))))
    in_both = sum(1 for i, j in pairs if i in top_a and j in top_b)
    rho = float(spearmanr(a["score"].to_numpy()[ia], b["score"].to_numpy()[jb])[0]) if len(pairs) > 2 else None
    score_diff = np.abs(a["score"].to_numpy()[ia] - b["score"].to_numpy()[jb])
    return {
        "clusters": [len(a), len(b)], "matched": len(pairs),
        f"top{top}_overlap": in_both,
        "spearman_matched_scores": None if rho is None else round(rho, 6),
        "same_anchor": int((d[ia, jb] == 0).sum()),
        "max_abs_score_diff_matched": round(float(score_diff.max()), 6) if len(pairs) else None,
        "top10": [[str(x) for x in a.get("name", a["rank"]).head(10)],
                  [str(x) for x in b.get("name", b["rank"]).head(10)]],
        "ranking_csv_identical": (a_dir / "ranking.csv").read_bytes() == (b_dir / "ranking.csv").read_bytes(),
    }


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def projected_peak_mb(history: list[tuple[int, float]], n: int) -> float | None:
    """Peak RSS (MB) at ``n`` records, extrapolated linearly from the last two measured
    sizes (proportionally from one)."""
    if not history:
        return None
    if len(history) == 1:
        n0, p0 = history[0]
        return p0 * n / n0
    (n0, p0), (n1, p1) = history[-2], history[-1]
    return p1 + (p1 - p0) / (n1 - n0) * (n - n1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1M,10M", help="record counts, e.g. 1M,10M,100M (default 1M,10M)")
    ap.add_argument("--methods", default=",".join(METHODS), help="subset of new,before,naive")
    ap.add_argument("--seed", type=int, default=make_records.SEED)
    ap.add_argument("--layout", choices=["hive", "flat"], default="hive")
    ap.add_argument("--data-dir", default=str(make_records.DATA_DIR),
                    help="where records, outputs and the 'before' checkout go (default benchmarks/data)")
    ap.add_argument("--before-commit", default=BEFORE_COMMIT)
    ap.add_argument("--new-input", choices=["auto", "dir", "files"], default="auto",
                    help="how 'new' is given the records: the directory, one --input per file, or auto "
                         "(the directory if this checkout reads it, else files)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs at sizes up to 1 M (median reported)")
    ap.add_argument("--mem-cap-gb", type=float, default=18.0, help="kill a run above this RSS (default 18)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="kill a run after this many seconds")
    ap.add_argument("--max-wait", type=float, default=120.0,
                    help="seconds to wait for idle CPUs before each timed run (default 120)")
    ap.add_argument("--out-dir", default=None, help="results directory (default benchmarks/results; "
                                                    "none with --quick)")
    ap.add_argument("--quick", action="store_true", help="20k and 100k records, printed only")
    ap.add_argument("--markdown", metavar="JSON", help="only rewrite the .md next to this results JSON")
    args = ap.parse_args(argv)
    if args.markdown:
        src = Path(args.markdown)
        src.with_suffix(".md").write_text(markdown(json.loads(src.read_text())))
        return 0

    sizes = [make_records.parse_size(s) for s in ("20k,100k" if args.quick else args.sizes).split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := set(methods) - set(METHODS):
        ap.error(f"unknown methods: {', '.join(sorted(unknown))}")
    out_dir = Path(args.out_dir) if args.out_dir else (None if args.quick else HERE / "results")
    data_root = Path(args.data_dir)
    mem_cap_kb = int(args.mem_cap_gb * 1e6)
    max_wait = 0.0 if args.quick else args.max_wait
    before_dir = ensure_before(args.before_commit) if "before" in methods else None
    new_input = args.new_input
    runs_root = data_root / "runs"
    runs_root.mkdir(parents=True, exist_ok=True)

    inputs, results = {}, {}
    history: dict[str, list[tuple[int, float]]] = {m: [] for m in methods}
    failed: dict[str, str] = {}
    for n in sorted(sizes):
        label = make_records.size_label(n)
        data, manifest = make_records.ensure_records(n, args.seed, root=data_root, layout=args.layout)
        inputs[label] = {k: v for k, v in manifest.items() if k != "files"} | {"files": len(manifest["files"]),
                                                                                "path": str(data)}
        print(f"{label}: {n:,} records, {sum(manifest['unique_metric_sites'].values()):,} sites "
              f"(metric, lat, lon), {len(manifest['files'])} files, generated in {manifest['generate_s']:.1f} s",
              flush=True)
        warm_file_cache(data)
        results[label] = {}
        for method in methods:
            if method in failed:
                results[label][method] = {"not_run": f"not run ({failed[method]} at a smaller size)"}
                print(f"  {method:7s} {results[label][method]['not_run']}", flush=True)
                continue
            proj = projected_peak_mb(history[method], n)
            if proj is not None and proj > mem_cap_kb / 1024 * 0.9:
                why = f"not run (projected {proj / 1024:.0f} GB peak RSS, cap {args.mem_cap_gb:g} GB)"
                results[label][method] = {"not_run": why, "projected_peak_rss_mb": round(proj)}
                print(f"  {method:7s} {why}", flush=True)
                continue
            out = runs_root / f"{method}-{label}"
            env = dict(os.environ)
            first_size = not history[method]
            if first_size:  # untimed warm-up: imports, numba cache, file cache
                if method == "new" and new_input == "auto":
                    argv_, pp = command(method, data, args.layout, out, "dir", before_dir)
                    env["PYTHONPATH"] = pp
                    warm = run_child(argv_, env=env, cwd=str(runs_root), mem_cap_kb=mem_cap_kb,
                                     timeout_s=args.timeout)
                    new_input = "dir" if warm["returncode"] == 0 else "files"
                    print(f"  new: --input DIR {'works' if new_input == 'dir' else 'fails'}; "
                          f"giving {'the directory' if new_input == 'dir' else 'one --input per file'}", flush=True)
                    if new_input == "files":
                        argv_, pp = command(method, data, args.layout, out, new_input, before_dir)
                        run_child(argv_, env=env, cwd=str(runs_root), mem_cap_kb=mem_cap_kb, timeout_s=args.timeout)
                else:
                    argv_, pp = command(method, data, args.layout, out, new_input, before_dir)
                    env["PYTHONPATH"] = pp
                    run_child(argv_, env=env, cwd=str(runs_root), mem_cap_kb=mem_cap_kb, timeout_s=args.timeout)
            argv_, pp = command(method, data, args.layout, out, new_input, before_dir)
            env["PYTHONPATH"] = pp
            repeats = args.repeats if n <= 1_000_000 or (n <= 10_000_000 and method != "before") else 1
            timed = []
            for _ in range(repeats):
                busy = wait_until_quiet(max_wait)
                child = run_child(argv_, env=env, cwd=str(runs_root), mem_cap_kb=mem_cap_kb, timeout_s=args.timeout)
                s = summarize(child, out)
                s["cpu_busy_before"] = round(busy, 3)
                timed.append(s)
                if s["returncode"] != 0:
                    break
            ok = [s for s in timed if s["returncode"] == 0]
            if not ok:
                s = timed[-1]
                why = s["killed"] or f"exit {s['returncode']}"
                failed[method] = why
                results[label][method] = {"failed": why, "stderr_tail": s["stderr_tail"],
                                          "peak_rss_mb": s["peak_rss_mb"], "total_wall_s": s["total_wall_s"]}
                print(f"  {method:7s} FAILED: {why}\n    " + "\n    ".join(s["stderr_tail"]), flush=True)
                continue
            walls = [s["total_wall_s"] for s in ok]
            best = ok[int(np.argsort(walls)[len(walls) // 2])]  # the median run (upper median)
            best = dict(best, runs_total_wall_s=walls, repeats=len(ok), command_input=(
                "directory" if (method == "new" and new_input == "dir") else
                ("script" if method == "naive" else "one --input per file")))
            best["groups"] = group_stages(best["stages"])
            results[label][method] = best
            history[method].append((n, best["peak_rss_mb"]))
            print(f"  {method:7s} {best['total_wall_s']:7.1f} s  peak {best['peak_rss_mb'] / 1024:5.2f} GB  "
                  + "  ".join(f"{g} {v['wall_s']:.1f}" for g, v in best["groups"].items()), flush=True)

    compare = {}
    first = make_records.size_label(min(sizes))
    for other in ("before", "naive"):
        if "new" in methods and other in methods and "total_wall_s" in results[first].get("new", {}) \
                and "total_wall_s" in results[first].get(other, {}):
            compare[f"new_vs_{other}"] = compare_rankings(runs_root / f"new-{first}", runs_root / f"{other}-{first}")
            print(f"  compare at {first}, new vs {other}: {_compare_line(compare[f'new_vs_{other}'])}", flush=True)

    result = {
        "description": "whole pipeline, hive-partitioned Parquet records to every output, per stage: "
                       "this project (new), the project at the commit before issue 11 (before), and the "
                       "straightforward geopandas + scikit-learn pipeline (naive)",
        "date": datetime.date.today().isoformat(),
        "machine": machine_info(),
        "parameters": {"eps_km": EPS_KM, "min_share": 0.0005, "before_commit": args.before_commit,
                       "new_input": new_input, "repeats_up_to_1M": args.repeats,
                       "repeats_at_10M": "new and naive", "mem_cap_gb": args.mem_cap_gb,
                       "seed": args.seed, "layout": args.layout},
        "inputs": inputs,
        "results": results,
        "ratios": ratios(results),
        "compare_at": first,
        "compare": compare,
    }
    if out_dir is None:
        print(markdown(result))
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "bench_pipeline.json").write_text(json.dumps(result, indent=1) + "\n")
        (out_dir / "bench_pipeline.md").write_text(markdown(result))
        print(f"wrote {out_dir / 'bench_pipeline.json'} and {out_dir / 'bench_pipeline.md'}")
    return 0 if not failed else 1


def _compare_line(c: dict) -> str:
    return (f"{c['clusters'][0]} vs {c['clusters'][1]} clusters, {c['matched']} matched, top-100 overlap "
            f"{c['top100_overlap']}, Spearman {c['spearman_matched_scores']}, "
            f"ranking.csv {'identical' if c['ranking_csv_identical'] else 'differs'}")


def ratios(results: dict) -> dict:
    out = {}
    for label, r in results.items():
        new = r.get("new", {})
        for other in ("before", "naive"):
            o = r.get(other, {})
            if "total_wall_s" in new and "total_wall_s" in o and "groups" in o:
                out.setdefault(label, {})[f"{other}/new"] = {
                    "wall": round(o["total_wall_s"] / new["total_wall_s"], 2),
                    "peak_rss": round(o["peak_rss_mb"] / new["peak_rss_mb"], 2)}
    return out


def machine_info() -> dict:
    import importlib.metadata as md

    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    versions = {}
    for pkg in ("numpy", "pandas", "pyarrow", "numba", "scikit-learn", "geopandas", "shapely", "pyproj",
                "pyogrio", "duckdb", "dask", "distributed"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {"cpus": os.cpu_count(), "ram_gb": round(mem_kb / 1024**2, 1), "platform": platform.platform(),
            "python": platform.python_version(), **versions}


def _fmt_s(v) -> str:
    return "" if v is None else (f"{v:.2f}" if v < 10 else f"{v:.1f}")


def _fmt_gb(mb) -> str:
    return "" if mb is None else f"{mb / 1024:.2f}"


def markdown(r: dict) -> str:
    m = r["machine"]
    cols = list(GROUPS) + ["other"]
    used = [c for c in cols if any(c in x.get("groups", {}) for res in r["results"].values()
                                   for x in res.values())]
    lines = [
        "# Pipeline benchmark",
        "",
        f"Generated by `python benchmarks/bench_pipeline.py --sizes {','.join(r['results'])}` on "
        f"{r['date']}, {m['cpus']} CPUs, {m['ram_gb']:g} GB RAM ({m['platform']}; Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("cpus", "ram_gb", "platform", "python"))
        + ").",
        "",
        "Input: `benchmarks/make_records.py` (seed "
        f"{r['parameters']['seed']}): the demo world's geography as hive-partitioned Parquet "
        "(`metric=M/year=Y/part-*.parquet`, zstd), string document ids, 1-10 locations per document, "
        "a bounded set of city- and postcode-level sites. Default config: eps 10 km, core threshold "
        "0.05 % of each metric's world total.",
        "",
        "Methods: **new** = this checkout (`cluster run --input "
        + ("DIR" if r["parameters"]["new_input"] == "dir" else "FILE --metric M ...")
        + "`); **before** = the project at "
        f"{r['parameters']['before_commit']} (before issue 11; `--input FILE --metric M` per file); "
        "**naive** = `benchmarks/naive_pipeline.py` (pandas read, groupby fractional counts and dedup, "
        "scikit-learn haversine DBSCAN per metric with sample weights, Mercator-buffered discs, "
        "unary_union overlay, sjoin counts).",
        "",
        "## Inputs",
        "",
        "| records | documents | sites (metric, lat, lon) | distinct coordinates | files | MB on disk | "
        "generation |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i in r["inputs"].values():
        lines.append(f"| {i['n_records']:,} | {sum(i['documents'].values()):,} | "
                     f"{sum(i['unique_metric_sites'].values()):,} | {i['unique_sites']:,} | {i['files']} | "
                     f"{i['bytes'] / 1e6:,.0f} | {i['generate_s']:.1f} s |")
    lines += ["", "## Wall time per stage (s) and peak RSS (GB)", "",
              "| records | method | " + " | ".join(used) + " | **total** | **peak RSS** | runs (total s) "
              "| CPU busy before |",
              "|---:|---|" + "---:|" * (len(used) + 4)]
    for label, res in r["results"].items():
        for meth, x in res.items():
            if "groups" not in x:
                why = x.get("not_run") or f"failed: {x.get('failed')}"
                lines.append(f"| {label} | {meth} | " + " | ".join("" for _ in used) + f" | {why} | | | |")
                continue
            g = x["groups"]
            lines.append(f"| {label} | {meth} | " + " | ".join(_fmt_s(g.get(c, {}).get("wall_s")) for c in used)
                         + f" | **{_fmt_s(x['total_wall_s'])}** | **{_fmt_gb(x['peak_rss_mb'])}** | "
                         + ", ".join(_fmt_s(w) for w in x.get("runs_total_wall_s", []))
                         + f" | {x.get('cpu_busy_before', 0):.0%} |")
    lines += ["", "## Peak RSS per stage (GB)", "",
              "| records | method | " + " | ".join(used) + " |", "|---:|---|" + "---:|" * len(used)]
    for label, res in r["results"].items():
        for meth, x in res.items():
            if "groups" in x:
                g = x["groups"]
                lines.append(f"| {label} | {meth} | "
                             + " | ".join(_fmt_gb(g.get(c, {}).get("peak_rss_mb")) for c in used) + " |")
    lines += ["", "## Ratios (higher = new is better)", "",
              "| records | before / new wall | before / new peak RSS | naive / new wall | naive / new peak RSS |",
              "|---:|---:|---:|---:|---:|"]
    def cell(d, k):
        return f"{d[k]:.2f}x" if k in d else "n/a"

    for label in r["results"]:
        q = r["ratios"].get(label, {})
        b, nv = q.get("before/new", {}), q.get("naive/new", {})
        lines.append(f"| {label} | {cell(b, 'wall')} | {cell(b, 'peak_rss')} | {cell(nv, 'wall')} | "
                     f"{cell(nv, 'peak_rss')} |")
    if r["compare"]:
        lines += ["", f"## Same outputs? (at {r['compare_at']})", "",
                  "| new vs | clusters (new, other) | matched by anchor | top-100 overlap | Spearman of matched "
                  "scores | max score difference | ranking.csv |", "|---|---:|---:|---:|---:|---:|---|"]
        for k, c in r["compare"].items():
            lines.append(f"| {k.split('_vs_')[1]} | {c['clusters'][0]}, {c['clusters'][1]} | {c['matched']} | "
                         f"{c['top100_overlap']} | {c['spearman_matched_scores']} | "
                         f"{c['max_abs_score_diff_matched']} | "
                         f"{'identical' if c['ranking_csv_identical'] else 'differs'} |")
    lines += [
        "",
        "Notes. Warm runs: the first size of each method is run once untimed (imports, numba cache, "
        "file cache); larger sizes have their files read once first. Sizes up to 1 M, and 10 M for new "
        f"and naive: median of {r['parameters']['repeats_up_to_1M']} runs ('runs' lists every total); larger, "
        "and before past 1 M: one run (the machine is a shared 2-core VM, "
        "so spread is wide; 'CPU busy before' is the share of both CPUs other processes used just before "
        "the reported run, after waiting up to two minutes for them to go quiet). Stage times are the "
        "runs' own `timings_s`; startup (interpreter and imports "
        "until reading starts) and outputs (every file written) come from timestamped log lines; total "
        "is spawn to exit. Peak RSS per stage: VmRSS sampled every 20 ms; the process peak is "
        "`ru_maxrss`. Columns: read (files to validated records), sites (fractional counts and "
        "dedup), dbscan (+ overlay), places / counts (the project's population, names and economies; "
        "the naive pipeline's sjoin counts), ranking (+ profiles). The naive pipeline computes less "
        "than the project (no names, population, intensities, maps, GeoParquet or report), so its "
        "outputs stage is smaller by design.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
