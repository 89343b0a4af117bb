"""``cluster index``: arguments and command, kept here so the CLI module only wires them."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("cluster")


def _table(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME=FILE (e.g. universities=data/demo/universities.csv), got {text!r}"
        )
    return name.strip(), path.strip()


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``cluster index`` to ``parser``."""
    parser.add_argument(
        "--run", "-r", metavar="DIR", default="out", help="output directory of `cluster run` (default: out)"
    )
    parser.add_argument(
        "--framework",
        "-f",
        metavar="FILE",
        required=True,
        help="framework TOML, or a shipped one: gihi (GIHI-like, 3 dimensions), ecnu (ECNU-like, 5 dimensions)",
    )
    parser.add_argument(
        "--table",
        "-t",
        type=_table,
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="file of the framework's [[table]] NAME (CSV keyed by cluster_id, or points); repeatable",
    )
    parser.add_argument(
        "--compare",
        metavar="FILE",
        help="CSV keyed by cluster_id with growth columns between two editions (joined as a "
        "user table named 'compare')",
    )
    parser.add_argument("--out", "-o", metavar="DIR", default="out-index", help="output directory (default: out-index)")
    parser.add_argument(
        "--samples",
        type=_non_negative_int,
        metavar="N",
        help="Monte Carlo samples N (2N replicates; default [uncertainty] samples), at most 100000; "
        "0 = no uncertainty analysis",
    )
    parser.add_argument(
        "--max-samples",
        type=_non_negative_int,
        metavar="N",
        help="largest N the convergence check of the sensitivity indices may double the samples to "
        "(default [uncertainty] max_samples)",
    )
    parser.add_argument(
        "--seed", type=_non_negative_int, metavar="S", help="Monte Carlo seed (default [uncertainty] seed)"
    )
    parser.add_argument(
        "--allow-synthetic",
        action="store_true",
        help="combine synthetic tables (the demo tables) with a real run, as a demonstration: every "
        "output then says it is synthetic",
    )
    parser.add_argument(
        "--top",
        type=_non_negative_int,
        metavar="N",
        help="units: the top N clusters of the run (default [units] top_n; 0 = all)",
    )


def command(args) -> int:
    """Run ``cluster index`` with parsed ``args``; returns the exit code."""
    from . import run_index

    samples = args.samples
    res = run_index(
        args.run,
        args.framework,
        args.out,
        tables=dict(args.table),
        compare=args.compare,
        samples=samples if samples else None,
        seed=args.seed,
        max_samples=args.max_samples,
        monte_carlo_on=samples != 0,
        top_n=args.top,
        allow_synthetic=args.allow_synthetic,
    )
    if res.sensitivity is not None and len(res.sensitivity):
        s = res.sensitivity.sort_values("first_order", ascending=False, kind="stable").iloc[0]
        log.info("largest first-order sensitivity index: %s (S1 = %.2f, 95 %% interval %.2f–%.2f)", s["factor"],
                 s["first_order_clipped"], s["first_order_low"], s["first_order_high"])
    return 0
