"""Command-line interface: parses arguments and calls the pipeline, nothing more.

Exit codes: 0 success; 2 bad input or usage (the message alone, no traceback);
1 internal error (the traceback goes to a log file named in the message).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback

from .errors import UserInputError

log = logging.getLogger("cluster")


def _min_weight(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METRIC=VALUE (e.g. patents=500), got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 < v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive numbers (e.g. 5,10,20), got {text!r}")
    return values


def _run_options(parser, *, eps: bool = True) -> None:
    """Input, config and output options shared by run, sweep and kdist."""
    parser.add_argument("--input", "-i", action="append", metavar="PATH", default=[],
                        help="records file (CSV, Parquet, GeoParquet, GeoPackage); repeat for several")
    parser.add_argument("--config", "-c", metavar="FILE", help="TOML configuration (see `cluster config`)")
    parser.add_argument("--out", "-o", metavar="DIR", default="out", help="output directory (default: out)")
    if eps:
        parser.add_argument("--eps-km", type=float, metavar="KM", help="DBSCAN radius in km (overrides config)")
    parser.add_argument("--min-weight", type=_min_weight, action="append", default=[], metavar="METRIC=VALUE",
                        help="core threshold of one metric in weight units, e.g. patents=500; repeatable")
    parser.add_argument("--top", type=_positive_int, metavar="N", help="size of the top tier (default 100)")
    parser.add_argument("--year-start", type=int, metavar="YEAR", help="first year kept (inclusive)")
    parser.add_argument("--year-end", type=int, metavar="YEAR", help="last year kept (inclusive)")
    parser.add_argument("--demo-records", type=_positive_int, default=1_000_000, metavar="N",
                        help="records in the demo world when no --input is given (default 1000000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="demo world seed (default 0)")


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
               "column and fix); 1 internal error (the traceback is saved to a log file named "
               "in the message). `cluster COMMAND --help` describes each command.",
    )
    logging_options(p, 0)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", parents=[common], help="cluster records and write boundaries and rankings",
                       description="Cluster records and write clusters.gpkg, clusters.parquet, ranking.csv, "
                                   "ranking.md, map.png, map.html and run.json into --out. Without --input, runs on the "
                                   "synthetic demo world.")
    _run_options(r)
    r.add_argument("--bootstrap", type=int, metavar="N",
                   help="bootstrap replicates for rank confidence intervals (rank_ci_low/high in "
                        "ranking.csv); 0 = off (default: [bootstrap] replicates, 0)")
    r.add_argument("--geojson", action="store_true",
                   help="also write clusters.geojson (RFC 7946; default: [outputs] geojson)")

    sw = sub.add_parser("sweep", parents=[common], help="compare clusterings over a grid of radii and thresholds",
                        description="For every (eps_km, min_weight_scale) combination, cluster and rank, and "
                                    "compare with the baseline (the configured eps_km and thresholds, scale 1). "
                                    "Writes sweep.csv, heatmap_*.png and run.json into --out. Counts come from "
                                    "site memberships (no boundary polygons); see cluster/sweep.py.")
    _run_options(sw, eps=False)
    sw.add_argument("--eps-km", type=_float_list, required=True, metavar="KM,KM,...",
                    help="radii to try, comma-separated (e.g. 5,10,20)")
    sw.add_argument("--min-weight-scale", type=_float_list, default=[1.0], metavar="S,S,...",
                    help="multipliers of every metric's threshold, comma-separated (default 1)")

    kd = sub.add_parser("kdist", parents=[common], help="weighted k-distance plot to choose the radius",
                        description="For each site of --metric, the distance (km) at which the cumulative weight "
                                    "of its nearest sites (itself included) reaches --k-weight; sorted "
                                    "descending and plotted on a log scale with eps_km marked. Writes "
                                    "kdist.png, kdist.csv and run.json into --out.")
    _run_options(kd)
    kd.add_argument("--metric", required=True, metavar="M", help="metric whose sites are measured")
    kd.add_argument("--k-weight", type=float, metavar="W",
                    help="cumulative weight to reach (default: the metric's configured threshold)")

    d = sub.add_parser("demo", parents=[common], help="write the synthetic demo world to a Parquet file",
                       description="Write a deterministic synthetic world of activity records built on real "
                                   "GeoNames places (flagged as synthetic in the file's metadata).")
    d.add_argument("--out", "-o", metavar="FILE", required=True, help="output .parquet file")
    d.add_argument("--records", type=_positive_int, default=1_000_000, metavar="N",
                   help="number of records (default 1000000)")
    d.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")

    ix = sub.add_parser("index", parents=[common], help="composite index on the clusters, with its audit",
                        description="Build a composite index (GIHI-like, ECNU-like or your own framework TOML) on "
                                    "the clusters of a run, with data treatment, correlation audit and Monte Carlo "
                                    "uncertainty and sensitivity analysis. See cluster/composite/.")
    from .composite._cli import add_arguments as _index_arguments

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


def _cmd_run(args) -> int:
    from .config import load_config
    from .outputs import prepare_output_dir, write_outputs
    from .pipeline import run
    from .places import load_places
    from pathlib import Path

    overrides = {"eps_km": args.eps_km, "top_n": args.top, "year_start": args.year_start,
                 "year_end": args.year_end, "min_weight": dict(args.min_weight), "bootstrap": args.bootstrap,
                 "geojson": args.geojson}
    config = load_config(args.config, overrides)
    prepare_output_dir(Path(args.out))  # fail before the work, not after it
    result = run(args.input, config, demo_records=args.demo_records, demo_seed=args.seed)
    notice = result.info.get("notice")
    write_outputs(result, args.out, config.metric_names, notice=notice,
                  places=load_places(config.geonames_min_population))
    top = result.clusters.head(5)
    log.info("top clusters: %s", "; ".join(f"{r.rank}. {r.name} ({r.economies}) {r.score:.2f}"
                                            for r in top.itertuples()))
    return 0


def _cmd_sweep(args) -> int:
    from .tuning import sweep_command

    return sweep_command(args)


def _cmd_kdist(args) -> int:
    from .tuning import kdist_command

    return kdist_command(args)


def _cmd_demo(args) -> int:
    from .demo import write_demo

    path = write_demo(args.out, n_records=args.records, seed=args.seed)
    log.info("wrote %s (%s synthetic records, seed %d)", path, f"{args.records:,}", args.seed)
    return 0


def _cmd_index(args) -> int:
    from .composite._cli import command

    return command(args)


def _cmd_config(args) -> int:
    from .config import default_config_text

    sys.stdout.write(default_config_text())
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    command = {"run": _cmd_run, "sweep": _cmd_sweep, "kdist": _cmd_kdist, "demo": _cmd_demo,
               "index": _cmd_index, "config": _cmd_config}[args.command]
    try:
        return command(args)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        fd, path = tempfile.mkstemp(prefix="cluster-error-", suffix=".log")
        with open(fd, "w") as fh:
            fh.write(traceback.format_exc())
        print(f"internal error: {sys.exc_info()[1]!r}. This is a bug; the traceback is in {path}. "
              "Please report it with that file.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
