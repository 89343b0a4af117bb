"""The ``cluster sweep`` and ``cluster kdist`` commands: load once, compute, write atomically.

Command-line glue only: the work is :mod:`cluster.tuning`; outputs go through
:func:`cluster.outputs.atomic_output_dir` like a run's.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from cluster.errors import UserInputError

log = logging.getLogger(__name__)


def _config_and_sites(args, eps_km=None):
    from cluster.cli._options import records_source, run_overrides
    from cluster.config import load_config
    from cluster.pipeline import library_versions, load_records
    from cluster.stages.sites import prepare_sites

    config = load_config(args.config, {**run_overrides(args), "eps_km": eps_km})
    records, synthetic, input_info = load_records(records_source(args), config)
    timings = dict(input_info["timings_s"])
    t0 = time.perf_counter()
    prepared = prepare_sites(records, config)
    sites, totals = prepared.sites, prepared.totals
    timings["sites"] = round(time.perf_counter() - t0, 3)
    notice = input_info.get("notice") if synthetic else None
    info = {"tool": "innovation-clusters", "synthetic": bool(synthetic), "notice": notice,
            "config": config.to_dict(), "config_source": config.source,
            "inputs": input_info.get("files", []), "demo": input_info.get("demo"),
            "world_totals": totals, "sites": len(sites), "versions": library_versions()}
    return config, sites, totals, notice, info, timings


def sweep_command(args) -> int:
    from cluster.cli._options import run_overrides
    from cluster.config import load_config
    from cluster.outputs._atomic import atomic_output_dir, prepare_output_dir
    from cluster.outputs._text import write_csv
    from cluster.outputs.files import write_json
    from cluster.tuning.sweep import round_table, run_sweep, write_heatmaps

    out = Path(args.out)
    prepare_output_dir(out)  # fail before the work, not after it
    base = load_config(args.config, run_overrides(args))
    for eps in args.eps_km:  # every radius under the configuration's rule, before the work
        load_config(base, {"eps_km": eps})
    config, sites, totals, notice, info, timings = _config_and_sites(args)
    t0 = time.perf_counter()
    table, _ = run_sweep(sites, totals, config, args.eps_km, args.min_weight_scale)
    timings["sweep"] = round(time.perf_counter() - t0, 3)
    table = round_table(table)
    with atomic_output_dir(out) as tmp:
        write_csv(table, tmp / "sweep.csv")
        files = ["sweep.csv"] + write_heatmaps(table, tmp, baseline_eps=config.eps_km, notice=notice)
        info.update({"command": "sweep", "eps_km": sorted(set(args.eps_km)),
                     "min_weight_scale": sorted(set(args.min_weight_scale)),
                     "baseline": {"eps_km": config.eps_km, "min_weight_scale": 1.0},
                     "files": files, "timings_s": timings})
        write_json(tmp / "run.json", info)
    base = table[table["baseline"]]
    log.info("sweep: %d combinations in %.1f s; baseline (eps %g km) has %d clusters; wrote %s",
             len(table), timings["sweep"], config.eps_km,
             int(base["n_clusters"].iloc[0]) if len(base) else -1, out / "sweep.csv")
    return 0


def kdist_command(args) -> int:
    from cluster.outputs._atomic import atomic_output_dir, prepare_output_dir
    from cluster.outputs.files import write_json
    from cluster.tuning.kdist import kdist_table, write_kdist

    out = Path(args.out)
    prepare_output_dir(out)
    config, sites, totals, notice, info, timings = _config_and_sites(args, eps_km=args.eps_km)
    if args.metric not in config.metric_names:
        raise UserInputError(f"--metric {args.metric}: unknown metric. Configured metrics: "
                             f"{', '.join(config.metric_names)}.")
    k_weight = args.k_weight if args.k_weight is not None else config.metric(args.metric).threshold(totals[args.metric])
    if not (k_weight > 0 and math.isfinite(k_weight)):
        raise UserInputError(f"--k-weight must be > 0 (metric '{args.metric}' has no records?), got {k_weight!r}.")
    t0 = time.perf_counter()
    table = kdist_table(sites, args.metric, k_weight)
    timings["kdist"] = round(time.perf_counter() - t0, 3)
    with atomic_output_dir(out) as tmp:
        write_kdist(table, tmp, eps_km=config.eps_km, metric=args.metric, k_weight=k_weight, notice=notice)
        info.update({"command": "kdist", "metric": args.metric, "k_weight": k_weight,
                     "eps_km": config.eps_km, "files": ["kdist.csv", "kdist.png"], "timings_s": timings})
        write_json(tmp / "run.json", info)
    log.info("kdist: %s sites of %s, k_weight %.6g; %d within eps_km %g; wrote %s",
             f"{len(table):,}", args.metric, k_weight, int((table["kdist_km"] <= config.eps_km).sum()),
             config.eps_km, out / "kdist.png")
    return 0
