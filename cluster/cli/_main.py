"""Command-line interface: parses arguments and calls the public API, nothing more.

Exit codes: 0 success; 2 bad input or usage (the message alone, no traceback); 3 a fault
of the environment (disk full, permissions, read-only folder, path too long, a scheduler
that does not answer: what happened and what to do); 1 internal error (the traceback goes
to a log file named in the message); 130 interrupted, 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback

from cluster._progress import set_enabled as set_progress
from cluster.cli._options import (
    _float_list,
    _fraction,
    _methods,
    _positive_int,
    _year_window,
    add_run_options,
    input_paths,
    records_source,
    run_overrides,
)
from cluster.errors import EXIT_ENVIRONMENT, UserInputError, environment_fault

log = logging.getLogger("cluster")


def _parser() -> argparse.ArgumentParser:
    def logging_options(parser, default):
        g = parser.add_argument_group("logging")
        g.add_argument("-v", "--verbose", action="count", default=default, help="more log lines (-vv for debug)")
        g.add_argument("-q", "--quiet", action="count", default=default, help="only warnings (-qq: only errors)")
        return parser

    # Subcommands take -v/-q too; SUPPRESS keeps them from resetting `cluster -q run`.
    common = logging_options(argparse.ArgumentParser(add_help=False), argparse.SUPPRESS)

    p = argparse.ArgumentParser(
        prog="cluster",
        description="Find science-and-technology clusters in geocoded activity (patents, "
                    "publications, venture-capital deals) the way WIPO's Global Innovation Index does.",
        epilog="Exit codes: 0 success; 2 bad input or usage (the message names the file, row, "
               "column and fix); 3 a fault of the environment (disk full, permissions, read-only "
               "folder, path too long, an unanswering scheduler); 1 internal error (the traceback "
               "is saved to a log file named in the message); 130 interrupted; 143 terminated. "
               "`cluster COMMAND --help` describes each command.",
    )
    logging_options(p, 0)
    from cluster._version import __version__

    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                   help="print the version (innovation-clusters X.Y.Z) and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", parents=[common], help="cluster records and write boundaries and rankings",
                       description="Cluster records and write clusters.gpkg, clusters.parquet, ranking.csv, "
                                   "ranking.md, map.png, map.html and run.json into --out. "
                                   "Without --input, runs on the "
                                   "synthetic demo world.")
    add_run_options(r)
    r.add_argument("--bootstrap", type=int, metavar="N",
                   help="bootstrap replicates for rank confidence intervals (rank_ci_low/high in "
                        "ranking.csv), 0-10000; 0 = off (default: [bootstrap] replicates, 0)")
    r.add_argument("--rank-range-eps", type=_float_list, metavar="KM,KM,...",
                   help="rank range across settings: recluster the sites at each radius (e.g. 10,15,20; "
                        "hdbscan: floor radii) and add rank_min_settings, rank_max_settings and rank_n_settings "
                        "(default: [ranking] rank_range_eps_km, off)")
    r.add_argument("--rank-range-methods", type=_methods, metavar="M[,M]",
                   help="methods of the rank range: dbscan, dbscan/S, hdbscan, comma-separated (default: "
                        "[ranking] rank_range_methods, else the configured method)")
    r.add_argument("--geojson", action="store_true",
                   help="also write clusters.geojson (RFC 7946; default: [outputs] geojson)")
    r.add_argument("--names", metavar="CSV",
                   help="name overrides applied last: columns name and cluster_id or lat,lon "
                        "(default: [places] name_overrides)")
    r.add_argument("--previous", metavar="DIR",
                   help="output folder of the previous edition: clusters continuing one of its clusters "
                        "(matched by overlap, as `cluster compare` does) keep its cluster_id")

    cp = sub.add_parser("compare", parents=[common], help="what moved between two editions",
                        description="Match the clusters of two editions by overlap (each holding at least "
                                    "--min-overlap of the other's activity, from the sites layer; polygon "
                                    "areas when an edition has none), classify each group as continuing, new, "
                                    "gone, split or merged, and write compare.csv (rank, share and intensity "
                                    "changes), compare.md (newcomers to the top tier, drop-outs, biggest risers "
                                    "and fallers, fastest growing), compare.png (map of movers) and run.json "
                                    "into --out. The editions are two `cluster run` output folders OLD NEW, or "
                                    "two year windows of the same input (--window twice, with the run options). "
                                    "Editions with different metrics or radii are refused (exit 2) unless --force.")
    cp.add_argument("editions", nargs="*", metavar="OLD NEW", help="output folders of two runs, older first")
    add_run_options(cp)
    cp.set_defaults(out="out-compare")
    for action in cp._actions:  # the shared --out says "default: out"
        if action.dest == "out":
            action.help = "output directory (default: out-compare)"
    cp.add_argument("--window", action="append", type=_year_window, default=[], metavar="FIRST-LAST",
                    help="a year window (e.g. 2019-2020); give two, older first, instead of OLD NEW")
    cp.add_argument("--min-overlap", type=_fraction, default=None, metavar="F",
                    help="link threshold: share (0-1) of each cluster's activity inside the other (default 0.1)")
    cp.add_argument("--force", action="store_true", help="compare editions with different metrics or radii anyway")

    sw = sub.add_parser("sweep", parents=[common], help="compare clusterings over a grid of radii and thresholds",
                        description="For every (eps_km, min_weight_scale) combination, cluster and rank, and "
                                    "compare with the baseline (the configured eps_km and thresholds, scale 1). "
                                    "Writes sweep.csv, heatmap_*.png and run.json into --out. Counts come from "
                                    "site memberships (no boundary polygons); see cluster/sweep.py.")
    add_run_options(sw, eps=False, method=False)
    sw.add_argument("--eps-km", type=_float_list, required=True, metavar="KM,KM,...",
                    help="radii to try, comma-separated (e.g. 5,10,20); hdbscan: floor radii")
    sw.add_argument("--method", type=_methods, default=None, metavar="M[,M]",
                    help="methods to try, comma-separated: dbscan, dbscan/S (two-level DBSCAN with "
                         "split_scale S, e.g. dbscan/4) and hdbscan (default: the configured method)")
    sw.add_argument("--reference", metavar="FILE",
                    help="reference metros for the consistency check: a CSV of city points with columns "
                         "name, lat, lon, group (cities of one group belong together), or metro polygons "
                         "(.gpkg, .geojson, .shp, .fgb: US CBSAs, EU functional urban areas; a cluster with "
                         ">= 10%% of two metros' clustered activity merges them); default: the built-in "
                         "GII clusters (cluster/tuning/data/gii_metros.csv); 'none' to skip")
    sw.add_argument("--reference-column", metavar="COL", default=None,
                    help="polygon references: the column naming each metro (default: the first of group, "
                         "name, NAME, URAU_NAME, eFUA_name, fua_name, NAMELSAD)")
    sw.add_argument("--min-weight-scale", type=_float_list, default=[1.0], metavar="S,S,...",
                    help="multipliers of every metric's threshold, comma-separated (default 1)")

    kd = sub.add_parser("kdist", parents=[common], help="weighted k-distance plot to choose the radius",
                        description="For each site of --metric, the distance (km) at which the cumulative weight "
                                    "of its nearest sites (itself included) reaches --k-weight; sorted "
                                    "descending and plotted on a log scale with eps_km marked. Writes "
                                    "kdist.png, kdist.csv and run.json into --out.")
    add_run_options(kd)
    kd.add_argument("--of-metric", metavar="M",
                    help="metric whose sites are measured (default: the only metric with records); "
                         "--metric, as in `run`, names the metric of the --input before it")
    kd.add_argument("--k-weight", type=float, metavar="W",
                    help="cumulative weight to reach (default: the metric's configured threshold)")

    d = sub.add_parser("demo", parents=[common], help="write the synthetic demo world to a Parquet file",
                       description="Write a deterministic synthetic world of activity records built on real "
                                   "GeoNames places (flagged as synthetic in the file's metadata).")
    d.add_argument("--out", "-o", metavar="FILE", required=True, help="output .parquet file")
    d.add_argument("--records", type=_positive_int, default=1_000_000, metavar="N",
                   help="number of records (default 1000000)")
    d.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    d.add_argument("--fields", action="store_true",
                   help="add a field column (technology field, subject, sector; planted per hub)")

    ix = sub.add_parser("index", parents=[common], help="composite index on the clusters, with its audit",
                        description="Build a composite index (GIHI-like, ECNU-like or your own framework TOML) on "
                                    "the clusters of a run, with data treatment, correlation audit and Monte Carlo "
                                    "uncertainty and sensitivity analysis. See cluster/composite/.")
    from cluster.composite._cli import add_arguments as _index_arguments

    _index_arguments(ix)

    sub.add_parser("config", parents=[common], help="print the default configuration (TOML)",
                   description="Print the default configuration with every parameter documented.")
    return p


def _setup_logging(verbose: int, quiet: int) -> None:
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(verbose - quiet, logging.DEBUG)
    if verbose - quiet < -2:
        level = logging.ERROR
    start = time.perf_counter()

    class _Elapsed(logging.Formatter):
        def format(self, record):
            record.elapsed = f"{time.perf_counter() - start:7.1f}s"
            return super().format(record)

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Elapsed("[%(elapsed)s] %(levelname)-7s %(message)s"))
    root = logging.getLogger("cluster")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # Progress bars (on a terminal only) go quiet with -q, as the info lines do.
    set_progress(False if level > logging.INFO else None)


def _cmd_run(args) -> int:
    from pathlib import Path

    from cluster._api import run
    from cluster._atomic import prepare_output_dir
    from cluster.config import load_config

    config = load_config(args.config, {**run_overrides(args), "eps_km": args.eps_km, "bootstrap": args.bootstrap,
                                       "geojson": args.geojson, "name_overrides": args.names,
                                       "rank_range_eps_km": args.rank_range_eps,
                                       "rank_range_methods": args.rank_range_methods})
    # Fail before the work, not after it.
    prepare_output_dir(Path(args.out), inputs=[*input_paths(args), *([args.names] if args.names else [])])
    previous = None
    if args.previous:
        from cluster.editions import load_edition

        previous = load_edition(args.previous)
    result = run(records_source(args), config, previous=previous)
    result.write(args.out)
    top = result.clusters.head(5)
    log.info("top clusters: %s", "; ".join(f"{r.rank}. {r.name} ({r.economies}) {r.score:.2f}"
                                            for r in top.itertuples()))
    return 0


def _cmd_compare(args) -> int:
    from cluster.cli._compare import compare_command

    return compare_command(args)


def _cmd_sweep(args) -> int:
    from cluster.cli._tuning import sweep_command

    return sweep_command(args)


def _cmd_kdist(args) -> int:
    from cluster.cli._tuning import kdist_command

    return kdist_command(args)


def _cmd_demo(args) -> int:
    from cluster.demo import write_demo

    path = write_demo(args.out, n_records=args.records, seed=args.seed, fields=args.fields)
    log.info("wrote %s (%s synthetic records, seed %d)", path, f"{args.records:,}", args.seed)
    return 0


def _cmd_index(args) -> int:
    from cluster.composite._cli import command

    return command(args)


def _cmd_config(args) -> int:
    from cluster.config import default_config_text

    sys.stdout.write(default_config_text())
    return 0


def console() -> None:
    """The ``cluster`` executable: :func:`main`, then an immediate exit
    (:func:`cluster._runtime.finish`: every output is written and closed by then)."""
    from cluster import _runtime

    _runtime.finish(main())


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    command = {"run": _cmd_run, "compare": _cmd_compare, "sweep": _cmd_sweep, "kdist": _cmd_kdist, "demo": _cmd_demo,
               "index": _cmd_index, "config": _cmd_config}[args.command]
    from cluster import _runtime

    try:
        _runtime.start()
        return command(args)
    except UserInputError as exc:
        print(f"error: {exc.for_cli()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # SIGTERM (cluster._runtime): every with block has unwound
        if exc.code == 143:
            print("terminated", file=sys.stderr)
        raise
    except Exception as exc:
        fault = environment_fault(exc)
        if fault is not None:
            print(f"error: {fault.for_cli()}", file=sys.stderr)
            return EXIT_ENVIRONMENT
        fd, path = tempfile.mkstemp(prefix="cluster-error-", suffix=".log")
        with open(fd, "w") as fh:
            fh.write(traceback.format_exc())
        print(f"internal error: {sys.exc_info()[1]!r}. This is a bug; the traceback is in {path}. "
              "Please report it with that file.", file=sys.stderr)
        return 1

