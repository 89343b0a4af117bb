"""Composite indices on the clusters (JRC/OECD Handbook method, COINr's steps), with their audit.

Public API (see each module's docstring for the method):

* :func:`load_framework`: read and validate a framework TOML (tree of groups and indicators);
* :func:`unit_table`: the clusters of a run with every column an indicator can use,
  user tables joined (by id, or in space);
* :func:`compute_index`: data treatment, normalisation, weighting, aggregation, correlation
  audit, Monte Carlo uncertainty and sensitivity analysis, in memory;
* :func:`run_index`: all of it from a run's output directory (or a clusters GeoDataFrame),
  writing ``index.csv``, ``index.md``, ``index.gpkg`` and the audit files.

This subpackage imports from the rest of :mod:`cluster` only :mod:`cluster.errors`; it reads
a run from disk (``ranking.csv``, ``clusters.gpkg``/``clusters.parquet``, ``run.json``).
"""

from .compute import aggregate, normalise, ranks
from .framework import Framework, load_framework, parse_framework
from .index import IndexResult, compute_index, run_index
from .indicators import load_run, unit_table
from .uncertainty import Uncertainty

__all__ = [
    "Framework",
    "IndexResult",
    "Uncertainty",
    "aggregate",
    "compute_index",
    "load_framework",
    "load_run",
    "normalise",
    "parse_framework",
    "ranks",
    "run_index",
    "unit_table",
]
