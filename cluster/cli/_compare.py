"""The ``cluster compare`` command: load or compute two editions, compare, write atomically.

Command-line glue only: the work is :mod:`cluster.editions`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from cluster.errors import UserInputError

log = logging.getLogger(__name__)


def _window_editions(args):
    """Two editions from two year windows of the same input (records read once)."""
    from cluster.cli._options import records_source, run_overrides
    from cluster.config import load_config
    from cluster.editions import edition_from_result
    from cluster.pipeline import cluster_records, load_records

    config = load_config(args.config, {**run_overrides(args), "eps_km": args.eps_km})
    records, synthetic, input_info = load_records(records_source(args), config)
    editions = []
    for first, last in args.window:
        window = dataclasses.replace(config, year_start=first, year_end=last)
        log.info("edition %d–%d", first, last)
        result = cluster_records(records, window, synthetic=synthetic, input_info=input_info)
        editions.append(edition_from_result(result, f"{first}–{last}"))
    return editions


def compare_command(args) -> int:
    from cluster._atomic import prepare_output_dir
    from cluster.cli._options import input_paths
    from cluster.editions import MIN_OVERLAP, compare_editions, load_edition, write_comparison

    if args.editions and args.window:
        message = "Give either two output folders OLD NEW or two --window, not both."
        raise UserInputError(message)
    if args.window:
        if len(args.window) != 2:
            message = f"--window must be given twice (older first), got {len(args.window)}."
            raise UserInputError(message)
    elif len(args.editions) != 2:
        message = (f"cluster compare needs two editions: two output folders OLD NEW of `cluster run`, or "
                   f"--window FIRST-LAST twice; got {len(args.editions)} folder(s).")
        raise UserInputError(message)
    elif args.input:
        message = "--input is for --window; two output folders OLD NEW are compared as they were written."
        raise UserInputError(message)
    out = Path(args.out)
    # Fail before the work, not after it.
    prepare_output_dir(out, inputs=[*args.editions, *input_paths(args)], walked=bool(args.window))
    old, new = _window_editions(args) if args.window else [load_edition(p) for p in args.editions]
    comparison = compare_editions(old, new, min_overlap=args.min_overlap or MIN_OVERLAP, force=args.force)
    write_comparison(comparison, out)
    from cluster.editions.compare import status_counts

    counts = status_counts(comparison.matching)
    risers = comparison.risers_same_footprint()
    log.info("clusters now: %s; before: %s; newcomers to the top tier: %s; risers by growth on the same "
             "footprint: %s",
             ", ".join(f"{n} {s}" for s, n in counts["new"].items()),
             ", ".join(f"{n} {s}" for s, n in counts["old"].items()),
             "; ".join(comparison.newcomers()["new_name"].head(10)) or "none",
             "; ".join(f"{n} {100 * g:+.0f} %" for n, g in zip(risers["new_name"], risers["growth_same_footprint"]))
             or "none")
    return 0
