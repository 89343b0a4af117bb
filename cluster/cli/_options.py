"""Options shared by the subcommands, defined once, and what they turn into."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("cluster")


def _min_weight(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METRIC=VALUE (e.g. patents=500), got {text!r}") from None


def _min_share(text: str) -> tuple[str, float]:
    """``METRIC=PCT%`` (percent: ``patents=0.05%``) or ``METRIC=FRACTION`` (``patents=0.0005``)."""
    name, sep, value = text.partition("=")
    percent = value.strip().endswith("%")
    try:
        if not sep or not name.strip():
            raise ValueError
        number = float(value.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected METRIC=PERCENT%% or METRIC=FRACTION (e.g. patents=0.05%% or patents=0.0005), "
            f"got {text!r}") from None
    return name.strip(), number / 100.0 if percent else number


class _PerInput(argparse.Action):
    """``--map``/``--metric``: apply to the ``--input`` given just before (per-file mapping)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from cluster.errors import UserInputError
        from cluster.ingest.mapping import parse_pairs

        inputs = getattr(namespace, "input", None) or []
        if not inputs:
            parser.error(f"{option_string} applies to the --input before it: give --input FILE first "
                         f"(e.g. --input sites.csv {option_string} {values})")
        specs = dict(getattr(namespace, "input_specs", None) or {})
        spec = specs.setdefault(len(inputs) - 1, {"map": {}, "set": {}})
        if self.dest == "input_metric":
            spec["set"]["metric"] = values.strip()
        else:
            try:
                pairs = parse_pairs(values, option_string)
            except UserInputError as exc:
                parser.error(exc.for_cli())
            spec["map"].update(pairs)
        namespace.input_specs = specs


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _year_window(text: str) -> tuple[int, int]:
    """``2019-2020`` (or a single year ``2021``) -> (first, last), inclusive."""
    first, sep, last = text.partition("-")
    try:
        a, b = int(first), int(last) if sep else int(first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a year window FIRST-LAST (e.g. 2019-2020), got {text!r}") from None
    if a > b:
        raise argparse.ArgumentTypeError(f"the window {text!r} ends before it starts")
    return a, b


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0 < v < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive numbers (e.g. 5,10,20), got {text!r}")
    return values


def _methods(text: str) -> list[str]:
    """``dbscan``, ``dbscan/S`` (two-level, split_scale S >= 1) or ``hdbscan``, comma-separated."""
    from cluster.config import parse_method

    values = [v.strip() for v in text.split(",") if v.strip()]

    def ok(v):
        try:
            parse_method(v)
        except ValueError:
            return False
        return True

    bad = [v for v in values if not ok(v)]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"expected methods among dbscan, dbscan/S (S >= 1: two-level with "
                                         f"split_scale S) and hdbscan, comma-separated, got {text!r}")
    return list(dict.fromkeys(values))


def add_run_options(parser, *, eps: bool = True, metric_constant: bool = True, method: bool = True) -> None:
    """Input, config and output options shared by run, sweep and kdist (``metric_constant``:
    offer ``--metric`` as the per-input constant; ``method``: a single ``--method``)."""
    parser.add_argument("--input", "-i", action="append", metavar="PATH", default=[],
                        help="records: a file (CSV, Parquet, GeoParquet, GeoPackage; CSV may be compressed), a "
                             "directory of them (hive-partitioned Parquet too) or a glob like 'data/**/*.parquet'; "
                             "Parquet also at object-store addresses (s3://bucket/prefix/, with s3fs); "
                             "repeat for several")
    parser.set_defaults(input_specs=None)
    parser.add_argument("--map", action=_PerInput, dest="input_map", metavar="COL=SRC,...",
                        help="column mapping of the --input before it: read the file's column SRC as the "
                             "record column COL, e.g. lat=latitude,lon=longitude,weight=n_inventors "
                             "(also [input.files.\"PATH\"] map in the config)")
    if metric_constant:
        parser.add_argument("--metric", action=_PerInput, dest="input_metric", metavar="M",
                            help="metric of every row of the --input before it, for files without a "
                                 "metric column (e.g. --metric patents)")
    parser.add_argument("--layer", metavar="NAME",
                        help="layer to read from GeoPackage inputs (default: the one point layer)")
    parser.add_argument("--on-bad-rows", choices=("fail", "skip"), dest="on_bad_rows",
                        help="a row that breaks a column rule: fail (default, every such row named) or skip "
                             "(left out, counted in run.json, listed in rejects.csv); [input] on_bad_rows")
    parser.add_argument("--encoding", metavar="NAME",
                        help="text encoding of CSV inputs (default UTF-8, with or without BOM), "
                             "e.g. latin-1; [input] encoding")
    parser.add_argument("--config", "-c", metavar="FILE", help="TOML configuration (see `cluster config`)")
    parser.add_argument("--out", "-o", metavar="DIR", default="out", help="output directory (default: out)")
    if eps:
        parser.add_argument("--eps-km", type=float, metavar="KM",
                            help="DBSCAN radius in km, 0.01-5000; with --method hdbscan the floor radius "
                                 "(overrides config)")
    if method:
        parser.add_argument("--method", choices=("dbscan", "hdbscan"),
                            help="density clustering: dbscan (one radius) or hdbscan (each region at its own "
                                 "density, not split below eps_km); [clustering] method")
    parser.add_argument("--min-weight", type=_min_weight, action="append", default=[], metavar="METRIC=VALUE",
                        help="core threshold of one metric in weight units, e.g. patents=500; repeatable")
    parser.add_argument("--min-share", type=_min_share, action="append", default=[], metavar="METRIC=SHARE",
                        help="core threshold of one metric as a share of its world total: a percent "
                             "(patents=0.05%%) or a fraction (patents=0.0005); repeatable")
    # Numbers that are configuration keys are parsed here and checked by cluster.config (one
    # rule, one place: the message names the key, the option, the range and the fix).
    parser.add_argument("--top", type=int, metavar="N", help="size of the top tier, 1-100000 (default 100)")
    parser.add_argument("--year-start", type=int, metavar="YEAR", help="first year kept (inclusive)")
    parser.add_argument("--year-end", type=int, metavar="YEAR", help="last year kept (inclusive)")
    parser.add_argument("--demo-records", type=_positive_int, default=1_000_000, metavar="N",
                        help="records in the demo world when no --input is given (default 1000000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="demo world seed (default 0)")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--memory-limit", metavar="SIZE",
                        help="memory of the out-of-core reduction of records to sites, e.g. 2GB, at least 64MB "
                             "(past it, DuckDB spills to disk; [engine] memory_limit)")
    engine.add_argument("--scheduler", metavar="ADDRESS",
                        help="reduce the records on this Dask distributed cluster, e.g. tcp://10.0.0.5:8786 "
                             "(its workers must read the --input paths); clustering stays here")
    engine.add_argument("--scheduler-timeout", type=float, metavar="S",
                        help="seconds to wait for the scheduler and a live worker before stopping with exit code 3 "
                             "([engine] scheduler_timeout, default 60)")


def run_overrides(args) -> dict:
    """Configuration overrides from the shared run options (None = as configured)."""
    from cluster.errors import UserInputError

    both = sorted(set(dict(args.min_weight)) & set(dict(args.min_share)))
    if both:
        message = (f"--min-weight and --min-share both set the threshold of {', '.join(both)}; "
                   "give one of the two per metric.")
        raise UserInputError(message)
    files = {args.input[i]: spec for i, spec in sorted((getattr(args, "input_specs", None) or {}).items())}
    return {"layer": args.layer, "on_bad_rows": args.on_bad_rows, "encoding": args.encoding,
            "memory_limit": args.memory_limit, "scheduler": args.scheduler,
            "scheduler_timeout": args.scheduler_timeout, "top_n": args.top,
            "clustering_method": getattr(args, "method", None) if isinstance(getattr(args, "method", None), str)
            else None,
            "year_start": args.year_start, "year_end": args.year_end,
            "min_weight": dict(args.min_weight), "min_share": dict(args.min_share),
            "input_files": files or None}


def input_paths(args) -> list[str]:
    """The local files and folders a command reads (--input, --config): what its output
    folder may not hold (see cluster._atomic.prepare_output_dir)."""
    paths = [*(getattr(args, "input", None) or []), getattr(args, "config", None)]
    return [p for p in paths if p and p != "-" and "://" not in str(p)]


def records_source(args):
    """What to cluster: the --input files, or (without any) the synthetic demo world."""
    if args.input:
        return args.input
    from cluster.demo import generate_demo

    log.info("no --input: generating the synthetic demo world (%s records, seed %d)",
             f"{args.demo_records:,}", args.seed)
    # With the planted fields, so the profiles (top_field_<metric>) show on the demo too.
    return generate_demo(args.demo_records, args.seed, fields=True)
