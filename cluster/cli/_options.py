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


def add_run_options(parser, *, eps: bool = True) -> None:
    """Input, config and output options shared by run, sweep and kdist."""
    parser.add_argument("--input", "-i", action="append", metavar="PATH", default=[],
                        help="records file (CSV, Parquet, GeoParquet, GeoPackage); repeat for several")
    parser.add_argument("--layer", metavar="NAME",
                        help="layer to read from GeoPackage inputs (default: the one point layer)")
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


def run_overrides(args) -> dict:
    """Configuration overrides from the shared run options (None = as configured)."""
    return {"layer": args.layer, "top_n": args.top, "year_start": args.year_start, "year_end": args.year_end,
            "min_weight": dict(args.min_weight)}


def records_source(args):
    """What to cluster: the --input files, or (without any) the synthetic demo world."""
    if args.input:
        return args.input
    from cluster.demo import generate_demo

    log.info("no --input: generating the synthetic demo world (%s records, seed %d)",
             f"{args.demo_records:,}", args.seed)
    return generate_demo(args.demo_records, args.seed)
