"""Ingestion: the story of a record up to the sites, in one package.

Records come in; weighted-site groups, profile counts and the problems found go out.
Every file is read once: what the profiles and the bootstrap need after the clustering
is kept from that pass (:class:`Kept`).
The stages use only the names exported here (``tests/test_architecture.py`` checks it).

Modules, in the order a record meets them:

* :mod:`~cluster.ingest.engine` finds the inputs (paths, directories with hive
  partitions, globs, object-store addresses, standard input and pipes, compressed
  files) and scans them with the embedded engine (DuckDB), validating every row and
  reducing it to site groups in one pass;
* :mod:`~cluster.ingest._rules` holds the column rules, once: each is rendered to the
  pandas check and to the engine's SQL predicate;
* :mod:`~cluster.ingest.read` reads what DuckDB does not scan (GeoPackage, GeoParquet,
  ``.bz2``/``.xz`` CSV, other encodings, in-memory frames) and words every problem
  (file, row, column, value, fix);
* :mod:`~cluster.ingest.mapping` applies per-file column mappings and constants;
* :mod:`~cluster.ingest.rejects` counts and lists the rows ``on_bad_rows = "skip"``
  leaves out;
* :mod:`~cluster.ingest.distributed` runs the same reduction on a Dask cluster.

Weights are not summed here: the groups hold integer counts, and
:func:`cluster.stages.sites.sites_from_groups` sums them in one fixed order, so every
reader gives bit-identical sites.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.ingest._rules import PROFILE_COLUMNS
from cluster.ingest.engine import (
    Kept,
    Records,
    Reduction,
    connect,
    in_memory,
    kept_records,
    open_records,
    profile_counts,
    raise_overflow,
    records_frame,
)
from cluster.ingest.mapping import InputMapping, mapping_for
from cluster.ingest.read import COLUMNS, validate_frame
from cluster.ingest.rejects import Rejects

#: Every way records reach a run: an in-memory frame (:func:`validate_frame`), files
#: scanned by the embedded engine (:func:`open_records`), and the same on a Dask cluster
#: (``[engine] scheduler``). ``tests/test_read_paths.py`` runs the bad-input corpus
#: through each; a new path is added here and gets a runner there.
READ_PATHS = ("dataframe", "embedded", "dask")

__all__ = ["COLUMNS", "PROFILE_COLUMNS", "READ_PATHS", "InputMapping", "Kept", "Records", "Reduction", "Rejects",
           "connect", "in_memory", "kept_records", "mapping_for", "open_records", "profile_counts", "raise_overflow",
           "records_frame", "reduce", "validate_frame"]


def reduce(records: Records, metrics: Sequence[str], config=None, *, con=None, keep: bool = False) -> Reduction:
    """Validate every record and reduce them to site groups, on the engine the config names.

    Parameters
    ----------
    records : Records
        From :func:`open_records` or :func:`in_memory`.
    metrics : sequence of str
        Metric names, in the configuration's order.
    config : Config, optional
        ``year_start``, ``year_end`` and ``[engine]``: with ``scheduler`` set, the
        reduction runs on that Dask cluster; else on the embedded engine.
    con : duckdb.DuckDBPyConnection, optional
        The embedded engine's connection (default: a new one with ``config``'s settings).
    keep : bool, default False
        Keep what the profiles and the bootstrap need from the same pass
        (``Reduction.kept``): the files are read once.

    Returns
    -------
    Reduction
        Site groups (integer counts), records read, outside the year window, per file;
        the rows left out are counted in ``records.rejects`` (``on_bad_rows = "skip"``).

    Raises
    ------
    InputDataError
        Every invalid record (``on_bad_rows = "fail"``), with file, row, column, value and fix.
    """
    if config is not None and getattr(config, "scheduler", ""):
        from cluster.ingest.distributed import reduce_records_distributed

        return reduce_records_distributed(records, metrics, config, keep=keep)
    from cluster.ingest.engine import reduce_records

    return reduce_records(records, metrics, year_start=getattr(config, "year_start", None),
                          year_end=getattr(config, "year_end", None), con=con, config=config, keep=keep)
