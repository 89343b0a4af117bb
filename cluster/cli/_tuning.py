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
    from cluster._atomic import atomic_output_dir, prepare_output_dir
    from cluster.cli._options import input_paths, run_overrides
    from cluster.config import load_config
    from cluster.outputs._text import write_csv
    from cluster.outputs.files import write_json
    from cluster.stages.ranking import site_activity
    from cluster.tuning.consistency import consistency_table, load_reference, write_consistency
    from cluster.tuning.sweep import method_name, rank_ranges, round_table, run_sweep, write_heatmaps

    out = Path(args.out)
    prepare_output_dir(out, inputs=input_paths(args))  # fail before the work, not after it
    reference = None if (args.reference or "").lower() == "none" else load_reference(
        args.reference, name_column=args.reference_column)
    base = load_config(args.config, run_overrides(args))
    for eps in args.eps_km:  # every radius under the configuration's rule, before the work
        load_config(base, {"eps_km": eps})
    config, sites, totals, notice, info, timings = _config_and_sites(args)
    t0 = time.perf_counter()
    table, memberships = run_sweep(sites, totals, config, args.eps_km, args.min_weight_scale, args.method)
    timings["sweep"] = round(time.perf_counter() - t0, 3)
    table = round_table(table)
    key0 = (method_name(config), float(config.eps_km), 1.0)
    activity = site_activity(sites, totals, config)
    ranges = rank_ranges(memberships, key0, activity)
    consistency = None if reference is None else consistency_table(sites, memberships, reference,
                                                                   activity=activity)
    with atomic_output_dir(out, command="sweep", inputs=input_paths(args)) as tmp:
        write_csv(table, tmp / "sweep.csv")
        write_csv(ranges, tmp / "rank_ranges.csv")
        files = ["sweep.csv", "rank_ranges.csv"] + write_heatmaps(table, tmp, baseline_eps=config.eps_km,
                                                                  notice=notice)
        if consistency is not None:
            files += write_consistency(consistency, tmp, notice=notice)
        info.update({"command": "sweep", "eps_km": sorted(set(args.eps_km)),
                     "min_weight_scale": sorted(set(args.min_weight_scale)),
                     "methods": sorted(set(table["method"])),
                     "baseline": {"method": method_name(config), "eps_km": config.eps_km,
                                  "min_weight_scale": 1.0},
                     "reference": None if reference is None else (args.reference or "built-in GII metros"),
                     **({"reference_column": args.reference_column} if args.reference_column else {}),
                     "files": files, "timings_s": timings})
        if consistency is not None:
            best = consistency[consistency["best"]].iloc[0]
            info["fewest_errors"] = {"method": best["method"], "eps_km": float(best["eps_km"]),
                                     "min_weight_scale": float(best["min_weight_scale"]),
                                     "merged": int(best["n_merged"]), "split": int(best["n_split"])}
        write_json(tmp / "run.json", info)
    base = table[table["baseline"]]
    log.info("sweep: %d combinations in %.1f s; baseline (%s, eps %g km) has %d clusters; wrote %s",
             len(table), timings["sweep"], method_name(config), config.eps_km,
             int(base["n_clusters"].iloc[0]) if len(base) else -1, out / "sweep.csv")
    if consistency is not None:
        for _, row in consistency.iterrows():
            log.info("metros: %-9s %5g km x%-4g %3d merged, %3d split, %2d missing%s", row["method"],
                     row["eps_km"], row["min_weight_scale"], row["n_merged"], row["n_split"],
                     row["n_missing"], "  <- fewest errors" if row["best"] else "")
    return 0


def _analysed_metric(args, config, totals) -> str:
    """The metric kdist measures: --of-metric, or the only metric with records."""
    if args.of_metric:
        if args.of_metric not in config.metric_names:
            raise UserInputError(f"--of-metric {args.of_metric}: unknown metric. Configured metrics: "
                                 f"{', '.join(config.metric_names)}.")
        return args.of_metric
    present = [m for m in config.metric_names if totals.get(m, 0.0) > 0]
    if len(present) != 1:
        raise UserInputError("kdist measures one metric: give --of-metric M (metrics with records: "
                             f"{', '.join(present) or 'none'}).")
    return present[0]


def kdist_command(args) -> int:
    from cluster._atomic import atomic_output_dir, prepare_output_dir
    from cluster.cli._options import input_paths
    from cluster.outputs.files import write_json
    from cluster.tuning.kdist import kdist_table, write_kdist

    out = Path(args.out)
    prepare_output_dir(out, inputs=input_paths(args))
    config, sites, totals, notice, info, timings = _config_and_sites(args, eps_km=args.eps_km)
    metric = _analysed_metric(args, config, totals)
    k_weight = args.k_weight if args.k_weight is not None else config.metric(metric).threshold(totals[metric])
    if not (k_weight > 0 and math.isfinite(k_weight)):
        raise UserInputError(f"--k-weight must be > 0 (metric '{metric}' has no records?), got {k_weight!r}.")
    t0 = time.perf_counter()
    table = kdist_table(sites, metric, k_weight)
    timings["kdist"] = round(time.perf_counter() - t0, 3)
    with atomic_output_dir(out) as tmp:
        write_kdist(table, tmp, eps_km=config.eps_km, metric=metric, k_weight=k_weight, notice=notice)
        info.update({"command": "kdist", "metric": metric, "k_weight": k_weight,
                     "eps_km": config.eps_km, "files": ["kdist.csv", "kdist.png"], "timings_s": timings})
        write_json(tmp / "run.json", info)
    log.info("kdist: %s sites of %s, k_weight %.6g; %d within eps_km %g; wrote %s",
             f"{len(table):,}", metric, k_weight, int((table["kdist_km"] <= config.eps_km).sum()),
             config.eps_km, out / "kdist.png")
    return 0
