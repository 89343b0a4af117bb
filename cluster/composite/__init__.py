"""Composite indices on the clusters (JRC/OECD Handbook method, COINr's steps), with their audit.

Public API (see each module's docstring for the method):

* :func:`load_framework`: read and validate a framework TOML (tree of groups and indicators);
* :func:`unit_table`: the clusters of a run with every column an indicator can use,
  user tables joined (by id, or in space);
* :func:`compute_index`: data treatment, normalisation, weighting, aggregation, correlation
  audit, Monte Carlo uncertainty and sensitivity analysis, in memory;
* :func:`run_index`: all of it from a run's output directory (or a clusters GeoDataFrame),
  writing ``index.csv``, ``index.md``, ``index.gpkg`` and the audit files.

This subpackage imports from the rest of :mod:`cluster` only :mod:`cluster.errors`,
:mod:`cluster.provenance` (synthetic tables) and a boundary helper; it reads
a run from disk (``ranking.csv``, ``clusters.gpkg``/``clusters.parquet``, ``run.json``).
"""

# Imported on first use (PEP 562): every command line builds `cluster index`'s arguments
# from cluster.composite._cli, which must not wait for scipy.stats and pandas.
_LAZY = {"aggregate": "compute", "normalise": "compute", "ranks": "compute", "Framework": "framework",
         "load_framework": "framework", "parse_framework": "framework", "IndexResult": "index",
         "compute_index": "index", "run_index": "index", "load_run": "indicators", "unit_table": "indicators",
         "Uncertainty": "uncertainty"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cluster.composite' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
