"""Benchmark: the boundaries stage with and without leaving covered discs out of the union.

A run of the pipeline on the input (default: the 10 M demo records of
``benchmarks/data/ingest-10000000``, made by ``benchmarks/bench_ingest.py``) hands its
members to :func:`cluster.stages.boundaries.build_boundaries`; the benchmark keeps them and
then times the stage as the pipeline runs it (``build_boundaries`` and ``sites_inside``) in
the same process, on 1 and 2 threads, with the discs that lie inside the union of the
others left out (:mod:`cluster.engine.cover`, the default) and with every disc unioned.
It also reports how many discs were left out, and checks that both give the same
boundaries: the symmetric difference relative to each boundary's area, and the same
boundary for every site.

Usage: ``python benchmarks/bench_boundaries.py [INPUT] [--repeat N]`` (results in
``benchmarks/results/bench_boundaries.md`` and ``.json``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
DEFAULT_INPUT = Path(__file__).parent / "data" / "ingest-10000000"


def _capture(input_path: Path) -> dict:
    """Run the pipeline once and keep what the boundaries stage received."""
    import cluster
    import cluster.stages.boundaries as boundaries

    kept = {}
    build, inside = boundaries.build_boundaries, boundaries.sites_inside

    def build_and_keep(sites, component, radius_km, segments, **kw):
        kept.update(members=sites[["lat", "lon"]].copy(), component=component.copy(), radius_km=radius_km,
                    segments=segments, kw=kw)
        return build(sites, component, radius_km, segments, **kw)

    def inside_and_keep(sites, geoms):
        kept["sites"] = sites[["lat", "lon"]].copy()
        return inside(sites, geoms)

    boundaries.build_boundaries, boundaries.sites_inside = build_and_keep, inside_and_keep
    try:
        cluster.run(str(input_path), progress=False)
    finally:
        boundaries.build_boundaries, boundaries.sites_inside = build, inside
    return kept


def _stage(kept: dict, threads: int):
    from cluster.stages.boundaries import build_boundaries, sites_inside

    wall, cpu = time.perf_counter(), time.process_time()
    geoms = build_boundaries(kept["members"], kept["component"], kept["radius_km"], kept["segments"],
                             **{**kept["kw"], "threads": threads})
    inside = sites_inside(kept["sites"], geoms)
    return time.perf_counter() - wall, time.process_time() - cpu, geoms, inside


def _dropped(kept: dict) -> tuple[int, int]:
    """Discs left out of the unions, and discs in all (one per distinct member location)."""
    import pandas as pd

    from cluster.engine.cover import covered_discs
    from cluster.engine.polygons import disc_vertices

    locs = pd.DataFrame({"c": kept["component"], "lat": kept["members"]["lat"].to_numpy(),
                         "lon": kept["members"]["lon"].to_numpy()}).drop_duplicates()
    locs = locs.sort_values(["c", "lat", "lon"], kind="mergesort")
    dropped = 0
    for _, g in locs.groupby("c", sort=True):
        lat, lon = g["lat"].to_numpy(), g["lon"].to_numpy()
        lon_u = (lon - lon[0] + 180.0) % 360.0 - 180.0 + lon[0]
        rings = disc_vertices(lat, lon_u, kept["radius_km"], kept["segments"])
        dropped += int(covered_discs(lat, lon_u, rings, kept["radius_km"]).sum())
    return dropped, len(locs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default=str(DEFAULT_INPUT))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import shapely

    import cluster.stages.boundaries as boundaries
    from cluster.engine.polygons import disc_union

    kept = _capture(Path(args.input))
    rows, results = [], {}
    for prune in (True, False):
        boundaries.disc_union = functools.partial(disc_union, prune=prune)
        try:
            for threads in (1, 2):
                runs = [_stage(kept, threads) for _ in range(args.repeat)]
                walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
                results[(prune, threads)] = runs[-1][2:]
                rows.append({"prune": prune, "threads": threads, "wall_s": [round(w, 3) for w in walls],
                             "cpu_s": [round(c, 3) for c in cpus], "load_1min": round(os.getloadavg()[0], 2)})
        finally:
            boundaries.disc_union = disc_union
    new, old = results[(True, 2)], results[(False, 2)]
    a = np.array(old[0], dtype=object)
    b = np.array(new[0], dtype=object)
    rel = shapely.area(shapely.symmetric_difference(a, b)) / shapely.area(a)
    dropped, discs = _dropped(kept)
    summary = {"input": str(args.input), "clusters": len(new[0]), "discs": discs, "discs_left_out": dropped,
               "max_rel_symdiff": float(rel.max()), "same_site_assignment": bool(np.array_equal(old[1], new[1])),
               "same_bytes_1_vs_2_threads": [g.wkb for g in results[(True, 1)][0]] == [g.wkb for g in new[0]],
               "runs": rows,
               "machine": f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_boundaries.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = ["# Boundaries stage: covered discs left out of the union", "",
             f"Input `{Path(args.input).name}`: {summary['clusters']} clusters, {discs:,} discs (distinct member "
             f"locations), {dropped:,} ({dropped / max(discs, 1):.1%}) left out as covered by the others.",
             f"Same boundaries: largest symmetric difference {summary['max_rel_symdiff']:.2e} of a boundary's area; "
             f"same boundary for every site: {summary['same_site_assignment']}; byte-identical on 1 and 2 threads: "
             f"{summary['same_bytes_1_vs_2_threads']}.", "",
             "Stage = `build_boundaries` + `sites_inside`, as the pipeline runs it, in one process after a warm-up.",
             "",
             "| discs left out | threads | wall s (runs) | CPU s (runs) | load (1 min) |", "|---|---:|---|---|---:|"]
    for r in rows:
        lines.append(f"| {'yes' if r['prune'] else 'no'} | {r['threads']} | {' '.join(map(str, r['wall_s']))} | "
                     f"{' '.join(map(str, r['cpu_s']))} | {r['load_1min']} |")
    lines += ["", f"Machine: {summary['machine']} (shared; the load column is the machine's 1-minute load)."]
    (RESULTS / "bench_boundaries.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
