"""Stages 1 and 2 at any scale: records scanned, validated and reduced out of core.

Records can be far more than memory (five years of publications with one row per author
address: 50–200 M rows), while the sites they reduce to stay bounded (geocodes are
cities, streets and campuses: a few hundred thousand locations). So records never
become a pandas frame: DuckDB scans the files (CSV, compressed CSV, Parquet, directories
of hive-partitioned Parquet, globs), checks every row and reduces them in one pass to
*site groups*, and only those reach Python. DuckDB was measured against Polars and Arrow
datasets for this reduction (``benchmarks/results/bench_pipeline.md``); it streams
Parquet and CSV, spills its hash tables to disk past ``[engine] memory_limit``, and
gives per-file row numbers for messages.

The reduction
-------------
Every row gets a document size ``n`` (rows of its ``(metric, doc_id)`` inside the year
window) unless it carries its own ``weight``. The engine then counts rows per group::

    (metric, lat, lon, country, n, weight) -> c

and nothing else: counts are integers, so the result is the same whatever the order in
which rows arrive, the number of threads or the machine (Dask gives the same groups).
A site's weight is then summed in Python in one fixed order from ``c / n`` (or
``c * weight``), so the embedded engine, the distributed engine and an in-memory frame
give bit-identical site weights (:func:`cluster.stages.sites.sites_from_groups`).
The same pass gives the rows per file.

One scan
--------
When the run needs records after the clustering (a ``field`` or ``institution`` column
to profile, or the bootstrap), every file is read once. The rows, validated and
normalised, go into a temporary DuckDB table of the columns the run needs
(:class:`Kept`: the metric as a byte, coordinates, country as read, ``doc_id``, own
weight, year, two flags, and ``field`` and ``institution`` when present; a column that is
constant for the inputs, such as the weight of records without a weight column, is
not stored but read as a constant), and the document sizes into a second one. The site
groups are counted from these tables; once the clusters are known, the profiles
(:func:`profile_counts`: rows per cluster, metric and value, counted as the sites are)
and the bootstrap's draws (:func:`kept_records`) come from them too, and the pipeline
drops them as soon as neither needs them. Measured on 10 M demo records: building the
table costs about what a second scan of the Parquet files costs, and the profiles, which
read and validated every file again before, take half the time or less. The table holds
about 100 bytes per record (1.0 GB for 10 M, 580 MB of it ``field`` and
``institution``); past ``[engine] memory_limit`` DuckDB spills it to a folder of its own
in ``temp_directory``. Measured and not taken: DuckDB's compressed storage (a database
file in the spill folder, or a compressed in-memory database) holds the same table in
190 MB but takes 1.4 to 2.2 s more to write at 10 M records, and dictionary types
(``ENUM``) for the two text columns halve it for 1.4 s more and a second read of each
file. Counting profiles per site in the reduction itself (grouping
sets) was measured slower: every institution at every site makes many more groups than
the clustered sites by cluster. When nothing is needed after the sites, nothing is kept:
the same query streams the files (document sizes, then rows; each parses only the
columns it needs) with memory bounded by its hash tables (on 100 M records a kept table
would spill 6.6 GB to disk and read it back, for nothing).

Validation
----------
The rules are the table of :mod:`cluster.ingest._rules`, rendered to SQL predicates
that flag a *suspect* row (the same table renders the pandas checks of
:mod:`cluster.ingest.read`). A clean input (the normal case) is never read twice. When
rows are flagged, only those rows are fetched, with their file and row number, and go
through the Python validator, so the messages are the ones a small file gets: file, row,
column, value and fix; the rows per rule are counted by the engine (one flag per rule).
A file DuckDB cannot parse (ragged rows, bytes that are not UTF-8) is handed to the
pandas reader, whose messages name the line.

Inputs DuckDB does not scan (GeoPackage and other vector files, GeoParquet, ``.bz2`` and
``.xz`` CSV, Parquet with binary columns, in-memory frames) are read and validated by
:mod:`cluster.ingest.read` and then reduced by the same query.
"""

from __future__ import annotations

import csv
import glob
import io
import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

import numpy as np
import pandas as pd

import cluster.ingest._rules as rules
from cluster._atomic import file_sha256
from cluster._runtime import trim_heap
from cluster.errors import InputDataError, UserInputError
from cluster.ingest.mapping import InputMapping, mapping_plan
from cluster.ingest.read import (
    _DELIMITERS,
    COLUMNS,
    _format,
    _open_text,
    _read_csv,
    _sniff_delimiter,
    _validate,
    check_case_duplicates,
    check_columns,
    check_world_totals,
    is_utf8,
    mixed_line_endings,
    read_records,
)
from cluster.ingest.rejects import Rejects
from cluster.provenance import PARQUET_SYNTHETIC_KEY

log = logging.getLogger(__name__)

__all__ = ["Kept", "Records", "Reduction", "connect", "in_memory", "kept_records", "open_records", "profile_counts",
           "records_frame", "reduce_records"]

# Scanned by DuckDB; other formats go through the pandas readers.
_SCANNED_COMPRESSION = (None, "gzip", "zstd")
# The column DuckDB adds with each row's file (a name no records file uses).
_FILE_COLUMN = "_ic_source_file"
# Suspect rows fetched per file to word the messages (the count of the rest is exact).
_MAX_SUSPECT_ROWS = 100_000
#: Longest CSV line read, in bytes. Set explicitly: DuckDB's default (2 MiB) silently drops
#: a longer last line, where a row this long is refused by name.
MAX_LINE_BYTES = 16 << 20


@dataclass(frozen=True)
class _Scan:
    """Files DuckDB reads with one table function (same format, delimiter and header)."""

    kind: str  # "csv" or "parquet"
    files: tuple[str, ...]
    label: str  # the path as the user gave it (a file, a directory or a glob)
    plan: tuple  # (name, "column"|"constant", source|value) per column, after the mapping
    types: tuple  # DuckDB type name per column of the file(s), "VARCHAR" for CSV
    delimiter: str = ","
    compression: str | None = None
    hive: bool = False
    header: tuple = ()  # CSV: the header as written (the raw column names DuckDB reads)


@dataclass(frozen=True)
class Records:
    """Where a run's records are, checked down to their columns but not yet read.

    Attributes
    ----------
    scans : tuple
        File groups DuckDB scans.
    frames : tuple of DataFrame
        Records already validated in memory (in-memory input, or formats read by
        :mod:`cluster.ingest.read`), with a ``source`` column.
    files : list of dict
        Per file: path, bytes, SHA-256, synthetic flag and mapping (``run.json`` inputs).
    synthetic : bool
        Every input is flagged as synthetic demo data.
    rejects : Rejects or None
        ``on_bad_rows = skip``: where the rows left out are counted (those of ``frames``
        already, those of ``scans`` by the reduction); None: a bad row stops the run.
    """

    scans: tuple = ()
    frames: tuple = ()
    files: list = field(default_factory=list)
    synthetic: bool = False
    rejects: Rejects | None = None

    @property
    def paths(self) -> list[str]:
        """Every file the scans read (local paths and object-store addresses)."""
        return [f for s in self.scans for f in s.files]

    @property
    def columns(self) -> set[str]:
        """Record columns present in at least one input."""
        cols = {n.strip().lower() for s in self.scans for n, _, _ in s.plan}
        for f in self.frames:
            cols |= {c for c in f.columns if f[c].notna().any()}
        return cols & set(COLUMNS)


_SPILL_FOLDERS = itertools.count()
_SPILL_PREFIX = "innovation-clusters-spill-"


def connect(config=None):
    """A DuckDB connection with the run's memory limit, threads and spill directory.

    Parameters
    ----------
    config : Config, optional
        ``memory_limit``, ``threads`` and ``temp_directory`` of ``[engine]``.

    Returns
    -------
    duckdb.DuckDBPyConnection
    """
    import duckdb

    settings = {"memory_limit": getattr(config, "memory_limit", "2GB"),
                # Order is not needed by the reduction (groups are counted); dropping it
                # lets DuckDB stream without buffering.
                "preserve_insertion_order": False}
    threads = getattr(config, "threads", 0) or os.cpu_count() or 1
    settings["threads"] = threads
    # DuckDB spills into a folder of its own inside ``temp_directory`` (by default the
    # system's temporary directory, not DuckDB's ``.tmp`` in the working directory); it
    # creates that folder when it first spills and deletes it on close.
    root = getattr(config, "temp_directory", "") or tempfile.gettempdir()
    settings["temp_directory"] = os.path.join(
        root, f"{_SPILL_PREFIX}{os.getpid()}-{next(_SPILL_FOLDERS)}")
    con = duckdb.connect(config=settings)
    from cluster._progress import enabled

    # DuckDB's own bar shows the scan's progress, on a terminal only (and not with -q).
    try:
        con.execute(f"SET enable_progress_bar = {str(enabled()).lower()}")
    except duckdb.Error:  # in Jupyter without ipywidgets DuckDB refuses to touch the setting
        pass
    # DuckDB's allocator (jemalloc) keeps freed memory for a second or so; the pipeline
    # hands it back at once where a stage has dropped a lot (cluster._runtime.trim_heap),
    # rather than jemalloc's background threads purging on their own clock, which stalled
    # the next stage's page faults (sites_from_groups 0.15 -> 0.5 s at 10 M records).
    return con


# --------------------------------------------------------------------------- object stores

def is_url(path) -> bool:
    """Whether an input is an object-store (or other fsspec) address, not a local path.

    Parameters
    ----------
    path : str or path-like
        An input as given.

    Returns
    -------
    bool
        True for ``scheme://...`` (``s3://bucket/records/``, ``gs://bucket/part-*.parquet``).

    Examples
    --------
    >>> is_url("s3://bucket/records/"), is_url("data/records.csv")
    (True, False)
    """
    scheme, sep, _ = str(path).partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


def _filesystem(url: str):
    """``(fsspec filesystem, path without the scheme)`` of an address."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        scheme = url.partition("://")[0]
        raise UserInputError(f"{url}: cannot read {scheme}:// addresses ({exc}). Install the fsspec package for "
                             f"that store (s3fs for s3://, gcsfs for gs://, adlfs for az://) in this environment "
                             f"and on the Dask workers.") from None


def register_filesystems(con, files) -> None:
    """Let DuckDB read the object-store ``files`` through fsspec (once per scheme).

    DuckDB's own object-store readers are extensions fetched from the internet on first
    use; fsspec's are Python packages, installed like the rest, that take credentials
    and endpoints from the store's usual settings (``AWS_*`` variables, fsspec config).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection that will read the files.
    files : iterable of str
        Inputs; local paths among them are ignored.

    Returns
    -------
    None

    Raises
    ------
    UserInputError
        When the store's fsspec package is not installed.
    """
    schemes = {str(f).partition("://")[0] for f in files if is_url(f)}
    if not schemes:
        return
    known = set(con.list_filesystems())
    for scheme in sorted(schemes):
        fs, _ = _filesystem(f"{scheme}://")
        if not known & set(_protocols(fs)):  # DuckDB names a filesystem by its protocol
            con.register_filesystem(fs)


def _protocols(fs) -> tuple:
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)


def _expand_url(url: str) -> list[str]:
    """:func:`_expand` for an object-store address: a file, every record file under a
    prefix, or a glob (``**`` included), as full addresses."""
    fs, path = _filesystem(url)
    scheme = url.partition("://")[0]
    if any(ch in path for ch in "*?["):
        hits = sorted(k for k, info in fs.glob(path, detail=True).items() if info.get("type") == "file")
        if not hits:
            raise UserInputError(f"Input pattern {url} matches no file. Check the pattern given to {{input}}.")
    elif fs.isdir(path):
        root = path.rstrip("/")
        hits = sorted(k for k, info in fs.find(root, detail=True).items() if info.get("type") == "file"
                      and not any(part.startswith((".", "_")) for part in k[len(root) + 1:].split("/"))
                      and _format(PurePosixPath(k))[0])
        if not hits:
            raise UserInputError(f"Input {url} is a prefix without record files (.parquet ...). Pass files, "
                                 "a prefix of them or a glob to {input}.")
    elif fs.isfile(path):
        hits = [path]
    else:
        raise UserInputError(f"Input {url} does not exist. Check the address given to {{input}} and the "
                             "store's credentials.")
    return [f"{scheme}://{k}" for k in hits]


def _open_remote(url: str, mapping, con) -> tuple[list, list]:
    """The scans and file entries of one object-store input (Parquet only)."""
    import pyarrow.parquet as pq

    urls = _expand_url(url)
    other = [u for u in urls if _format(PurePosixPath(u))[0] != "parquet"]
    if other:
        raise UserInputError(f"{other[0]}: object-store inputs are read as Parquet; give .parquet files there "
                             "(or copy other formats to a local path).")
    fs, path = _filesystem(url)
    keys = [u.partition("://")[2] for u in urls]
    root = PurePosixPath(path.rstrip("/"))
    hive = _hive_input([PurePosixPath(k) for k in keys], root, not any(ch in path for ch in "*?[") and fs.isdir(path))
    scan = _parquet_scan(urls, url, mapping, hive, con, fs=fs)
    if scan is None:
        raise UserInputError(f"{url}: GeoParquet or binary columns are read from local files only; give plain "
                             "Parquet with lat/lon columns at object-store addresses.")
    check_columns([n for n, _, _ in scan.plan], url if len(urls) > 1 else urls[0])
    _check_types(scan, urls)
    files = []
    for u, k in zip(urls, keys):
        info = fs.info(k)
        meta = pq.read_schema(k, filesystem=fs).metadata or {}
        # The store's own fingerprint (reading every byte back to hash it would cost more
        # than the run); SHA-256 of the bytes when the store gives none.
        tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("content_md5")
        files.append({"path": u, "bytes": int(info.get("size") or 0),
                      "synthetic": meta.get(PARQUET_SYNTHETIC_KEY) == b"true",
                      **({"etag": str(tag).strip('"')} if tag else {}),
                      **({"mapping": mapping.describe()} if mapping else {})})
    return [scan], files


# --------------------------------------------------------------------------- streams

# Leading bytes of the formats a stream may hold (a pipe has no suffix to tell).
_MAGIC = ((b"\x1f\x8b", ".csv.gz"), (b"\x28\xb5\x2f\xfd", ".csv.zst"), (b"BZh", ".csv.bz2"),
          (b"\xfd7zXZ\x00", ".csv.xz"), (b"PAR1", ".parquet"), (b"SQLite format 3\x00", ".gpkg"))


def is_stream(given) -> bool:
    """Whether an input is standard input (``-``) or a pipe / character device
    (``<(zcat x.csv.gz)`` gives ``/dev/fd/63``): read once, in order, without a suffix.

    Parameters
    ----------
    given : str or path-like
        An input as given.

    Returns
    -------
    bool
    """
    import stat

    if str(given) == "-":
        return True
    if is_url(given) or any(ch in str(given) for ch in "*?["):
        return False
    try:
        mode = os.stat(given).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def read_stream(given: str, metrics: Sequence[str], mapping=None, *, layer: str | None = None,
                rejects: Rejects | None = None, encoding: str | None = None):
    """Records of standard input or a pipe, as :func:`cluster.ingest.read.read_records`.

    The stream is copied to a temporary file (Parquet and GeoPackage need to seek; a pipe
    can be read only once) whose format is told by its first bytes, not a suffix; messages
    name the input as given (``<stdin>`` for ``-``).

    Parameters
    ----------
    given : str
        ``-`` or the pipe's path.
    metrics : sequence of str
        Metric names.
    mapping : InputMapping, optional
        Column mapping and constants.
    layer : str, optional
        GeoPackage layer.
    rejects : Rejects, optional
        ``on_bad_rows = skip``: the collector of rows left out.
    encoding : str, optional
        Text encoding of a CSV stream.

    Returns
    -------
    records : DataFrame
    info : dict
        As :func:`cluster.ingest.read.read_records`, the path being the input as given.
    """
    import shutil
    import sys
    import tempfile

    label = "<stdin>" if given == "-" else given
    with tempfile.TemporaryDirectory(prefix="cluster-stream-") as tmp:
        spooled = Path(tmp) / "input"
        src = sys.stdin.buffer if given == "-" else open(given, "rb")  # noqa: SIM115 (stdin stays open)
        try:
            with open(spooled, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        finally:
            if src is not sys.stdin.buffer:
                src.close()
        with open(spooled, "rb") as fh:
            head = fh.read(16)
        if not head:
            raise UserInputError(f"{label}: the input is empty. Give a CSV with a header row "
                                 f"(metric, lat, lon, ...) and at least one record.")
        suffix = next((sfx for magic, sfx in _MAGIC if head.startswith(magic)), ".csv")
        named = spooled.rename(spooled.with_suffix(suffix))
        mine = None if rejects is None else Rejects()
        try:
            recs, info = read_records([named], metrics, [mapping], layer=layer, rejects=mine, encoding=encoding)
        except UserInputError as exc:
            raise _renamed(exc, str(named), label) from None
        if mine is not None:
            mine.listed = [(label if f == str(named) else f, *rest) for f, *rest in mine.listed]
            rejects.merge(mine)
        for f in info["files"]:
            f["path"] = label
    return recs, info


def _renamed(exc: UserInputError, old: str, new: str) -> UserInputError:
    """The same error with the input's name ``old`` replaced by ``new``."""
    if isinstance(exc, InputDataError):
        return InputDataError([p.replace(old, new) for p in exc.problems], rows=exc.rows)
    return type(exc)(exc.template.replace(old, new))


# --------------------------------------------------------------------------- discovery

def _expand(path: str) -> list[Path]:
    """The files of one input: itself, the record files under a directory, or a glob."""
    p = Path(path)
    if any(ch in str(path) for ch in "*?["):
        hits = sorted(Path(h) for h in glob.glob(str(path), recursive=True) if Path(h).is_file())
        if not hits:
            raise UserInputError(f"Input pattern {path} matches no file. Check the pattern given to {{input}}.")
        return hits
    if not p.exists():
        raise UserInputError(f"Input {p} does not exist. Check the path given to {{input}}.")
    if p.is_dir():
        hits = sorted(f for f in p.rglob("*") if f.is_file() and not any(
            part.startswith((".", "_")) for part in f.relative_to(p).parts) and _format(f)[0])
        if not hits:
            raise UserInputError(f"Input {p} is a directory without record files (.csv, .csv.gz, .parquet, "
                                 ".gpkg ...). Pass files, a directory of them or a glob to {input}.")
        return hits
    return [p]


def _glob_root(path: PurePath) -> PurePath:
    """The folders of a glob before its first wildcard (``data`` for ``data/**/*.parquet``)."""
    parts = path.parts
    fixed = next((i for i, part in enumerate(parts) if any(ch in part for ch in "*?[")), len(parts))
    return type(path)(*parts[:fixed]) if fixed else type(path)(".")


def _hive_input(files: Sequence[PurePath], given: PurePath, is_dir: bool) -> bool:
    """Whether an input's files are hive partitions: ``key=value`` folders between the
    directory (or prefix) given, or a glob's fixed folders, and the files."""
    if any(ch in str(given) for ch in "*?["):
        return _is_hive(files, _glob_root(given))
    return is_dir and _is_hive(files, given)


def _is_hive(files: Sequence[PurePath], root: PurePath) -> bool:
    """Directories named ``key=value`` between the input and its files (hive partitions)."""
    for f in files:
        try:
            parts = f.relative_to(root).parts[:-1]
        except ValueError:
            parts = f.parts[:-1]
        if any("=" in part for part in parts):
            return True
    return False


def _csv_header(path: Path, compression: str | None, delimiter: str) -> list[str]:
    with _open_text(path, compression) as fh:
        head = fh.read(1 << 16)
    head = head.lstrip("\ufeff")
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        raise UserInputError(f"{path}: the file is empty. Give a CSV with a header row "
                             f"(metric, lat, lon, ...) and at least one record.")
    if len(lines) == 1 and len(head) < (1 << 16):
        raise UserInputError(f"{path}: the file has a header but no records. Add at least one record.")
    return next(csv.reader(io.StringIO(lines[0]), delimiter=delimiter))


def _parquet_scan(files: list, label: str, mapping, hive: bool, con, *, fs=None) -> _Scan | None:
    """The scan of Parquet files (local paths, or addresses on the fsspec filesystem
    ``fs``), or None when the pandas reader must read them (GeoParquet geometry, binary
    columns)."""
    import pyarrow.parquet as pq

    for f in files:
        try:
            schema = (pq.read_schema(str(f).partition("://")[2], filesystem=fs) if fs is not None
                      else pq.read_schema(f))
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise UserInputError(f"{f}: cannot read as Parquet ({exc}).") from None
        # DuckDB's names are case-insensitive: it would rename a second 'LAT' to 'lat_1'.
        check_case_duplicates(schema.names, f)
        if b"geo" in (schema.metadata or {}):
            return None
    desc = con.execute(f"DESCRIBE SELECT * FROM {_parquet_function(files, hive)}").fetchall()
    names, types = [r[0] for r in desc if r[0] != _FILE_COLUMN], [str(r[1]) for r in desc if r[0] != _FILE_COLUMN]
    if any(t == "BLOB" for t in types):
        return None
    plan = tuple(mapping_plan(names, mapping, label))
    typed = dict(zip(names, types))
    return _Scan(kind="parquet", files=tuple(map(str, files)), label=label, plan=plan,
                 types=tuple(typed.get(src, "VARCHAR") if kind == "column" else "VARCHAR"
                             for _, kind, src in plan), hive=hive)


def _parquet_function(files: Sequence, hive: bool, *, rows: bool = False) -> str:
    listed = ", ".join(_sql_text(str(f)) for f in files)
    return (f"read_parquet([{listed}], union_by_name=true, hive_partitioning={str(hive).lower()}, "
            f"filename={_sql_text(_FILE_COLUMN)}{', file_row_number=true' if rows else ''})")


def _csv_function(scan: _Scan, files: Sequence | None = None) -> str:
    listed = ", ".join(_sql_text(str(f)) for f in (files or scan.files))
    columns = ", ".join(f"{_sql_text(src)}: 'VARCHAR'" for src in _raw_names(scan))
    comp = {"gzip": "gzip", "zstd": "zstd"}.get(scan.compression, "none")
    return (f"read_csv([{listed}], delim={_sql_text(scan.delimiter)}, header=true, "
            f"columns={{{columns}}}, quote='\"', escape='\"', strict_mode=true, null_padding=false, "
            f"max_line_size={MAX_LINE_BYTES}, "
            f"compression='{comp}', filename={_sql_text(_FILE_COLUMN)}, auto_detect=false, union_by_name=false)")


def _raw_names(scan: _Scan) -> list[str]:
    return list(scan.header) or list(dict.fromkeys(src for _, kind, src in scan.plan if kind == "column"))


def open_records(data, metrics: Sequence[str], mappings: Sequence[InputMapping | None] | None = None, *,
                 layer: str | None = None, con=None, on_bad_rows: str = "fail",
                 encoding: str | None = None) -> Records:
    """Find and check the record inputs: files, their formats, columns and fingerprints.

    Nothing is read but headers, Parquet footers and (for fingerprints) the bytes; the
    rows are read by :func:`reduce_records`.

    Parameters
    ----------
    data : sequence of path-like
        Files, directories (every record file below, hive partitions ``key=value``
        becoming columns) or glob patterns (``data/**/*.parquet``).
    metrics : sequence of str
        Metric names allowed in ``metric``.
    mappings : sequence of InputMapping or None, optional
        Per input, the column mapping and constants of ``[input.files]``.
    layer : str, optional
        The layer read from GeoPackages.
    con : duckdb.DuckDBPyConnection, optional
        The connection to describe Parquet schemas with (default: a new one).
    on_bad_rows : {"fail", "skip"}, default "fail"
        What a row that breaks a column rule does: stop the run (every problem named),
        or be left out and counted (:class:`~cluster.ingest.rejects.Rejects`).
    encoding : str, optional
        Text encoding of CSV inputs (default UTF-8, with or without a byte-order mark).
        Other encodings are read by the in-memory reader (DuckDB reads UTF-8 only).

    Returns
    -------
    Records

    Raises
    ------
    UserInputError
        A missing path, an unsupported format, a CSV whose header or delimiter is
        refused; :class:`~cluster.errors.InputDataError` for missing or ambiguous
        columns (named with the closest column of the file).
    """
    inputs = list(data)
    mappings = list(mappings) if mappings is not None else [None] * len(inputs)
    con = con or connect()
    scans, frames, files, problems, bad_rows = [], [], [], [], 0
    rejects = Rejects() if on_bad_rows == "skip" else None
    for i, given in enumerate(inputs):
        mapping = mappings[i]
        if is_url(given):
            register_filesystems(con, [given])
            try:
                remote_scans, remote_files = _open_remote(str(given), mapping, con)
            except InputDataError as exc:
                problems += exc.problems
                bad_rows += exc.rows or 0
                continue
            scans += remote_scans
            files += remote_files
            continue
        if is_stream(given):
            try:
                recs, info = read_stream(str(given), metrics, mapping, layer=layer, rejects=rejects,
                                         encoding=encoding)
            except InputDataError as exc:
                problems += exc.problems
                bad_rows += exc.rows or 0
                continue
            frames.append(recs.assign(source=np.int32(len(files))))
            files += info["files"]
            continue
        paths = _expand(str(given))
        root = Path(str(given))
        by_format: dict = {}
        for f in paths:
            kind, compression = _format(f)
            if not kind:
                raise UserInputError(
                    f"{f}: unsupported file type '{f.suffix}'. Use .csv, .parquet, .geoparquet or .gpkg. "
                    "CSV may be compressed (.csv.gz, .csv.zst, .csv.bz2, .csv.xz).")
            by_format.setdefault((kind, compression), []).append(f)
        try:
            for (kind, compression), group in by_format.items():
                scanned = []
                if kind == "parquet":
                    scan = _parquet_scan(group, str(given), mapping, _hive_input(group, root, root.is_dir()), con)
                    if scan is not None:
                        check_columns([n for n, _, _ in scan.plan], str(given) if len(group) > 1 else group[0])
                        _check_types(scan, group)
                        scanned, group = [scan], []
                elif kind == "csv" and compression in _SCANNED_COMPRESSION and is_utf8(encoding):
                    scanned, group = _csv_scans(group, compression, mapping, str(given))
                scans += scanned
                if not group:
                    continue
                # Formats DuckDB does not scan: read and validated in memory.
                recs, info = read_records(group, metrics, [mapping] * len(group), layer=layer, rejects=rejects,
                                          encoding=encoding)
                frames.append(recs.assign(source=np.int32(len(files) + recs["source"].to_numpy())))
                files += info["files"]
                continue
        except InputDataError as exc:
            problems += exc.problems
            bad_rows += exc.rows or 0
            continue
        for f in paths:
            if any(str(f) in s.files for s in scans):
                files.append({"path": str(f), "bytes": f.stat().st_size, "synthetic": _synthetic(f),
                              **({"mapping": mapping.describe()} if mapping else {})})
    if problems:
        raise InputDataError(problems, rows=bad_rows or None)
    if not files:
        raise UserInputError("No input files given.")
    _fingerprint(files)
    return Records(scans=tuple(scans), frames=tuple(frames), files=files,
                   synthetic=all(f.get("synthetic", False) for f in files), rejects=rejects)


def _csv_scans(group: list[Path], compression, mapping, label: str) -> tuple[list[_Scan], list[Path]]:
    """One scan per (delimiter, header) among the CSV files of an input, and the files
    DuckDB's strict parser cannot read (mixed line endings), for the pandas reader."""
    out: dict = {}
    other = []
    for f in group:
        delimiter = _sniff_delimiter(f, compression)  # refuses an unreadable file by name
        with _open_text(f, compression) as fh:
            if mixed_line_endings(fh.read(1 << 16)):
                log.info("%s: lines end in both LF and CRLF; read with the in-memory reader", f)
                other.append(f)
                continue
        if delimiter != ",":
            log.info("%s: fields separated by %s", f, _DELIMITERS[delimiter])
        header = _csv_header(f, compression, delimiter)
        out.setdefault((delimiter, tuple(header)), []).append(f)
    scans = []
    for (delimiter, header), files in out.items():
        plan = tuple(mapping_plan(list(header), mapping, files[0] if len(files) == 1 else label))
        check_columns([n for n, _, _ in plan], files[0] if len(files) == 1 else label)
        scans.append(_Scan(kind="csv", files=tuple(map(str, files)), label=label, plan=plan,
                           types=tuple("VARCHAR" for _ in plan), delimiter=delimiter, compression=compression,
                           header=tuple(header)))
    return scans, other


_NON_NUMERIC = (("BOOLEAN", "true/false values"), ("DATE", "dates or times"), ("TIME", "dates or times"),
                ("INTERVAL", "dates or times"), ("[]", "lists, mappings or bytes"),
                ("STRUCT", "lists, mappings or bytes"), ("MAP", "lists, mappings or bytes"))


def _check_types(scan: _Scan, files) -> None:
    """Typed Parquet columns that must hold numbers but hold booleans, dates or lists."""
    where = files[0] if len(files) == 1 else scan.label
    problems = []
    for (name, _, _), typ in zip(scan.plan, scan.types):
        col = name.strip().lower()
        if col not in rules.NUMERIC:
            continue
        for marker, kind in _NON_NUMERIC:
            if marker in typ:
                problems.append(f"{where}: {rules.non_numeric_problem(col, kind)}")
                break
    if problems:
        raise InputDataError(problems)


def _synthetic(path: Path) -> bool:
    if _format(path)[0] != "parquet":
        return False
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return meta.get(PARQUET_SYNTHETIC_KEY) == b"true"


def _fingerprint(files: list[dict]) -> None:
    """SHA-256 of every input file (``run.json``), several files at once on threads
    (hashlib releases the GIL)."""
    todo = [f for f in files if "sha256" not in f and "etag" not in f]
    if not todo:
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(4, len(todo))) as pool:
        for f, digest in zip(todo, pool.map(lambda f: _sha256(f["path"]), todo)):
            f["sha256"] = digest


def _sha256(path: str) -> str:
    if not is_url(path):
        return file_sha256(Path(path))
    import hashlib

    fs, key = _filesystem(path)
    digest = hashlib.sha256()
    with fs.open(key, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- SQL

def _sql_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _normalized(scan: _Scan, metrics: Sequence[str], source: str, *, rows: bool = False, raw: bool = False,
                index: int = 0, per_rule: bool = False) -> str:
    """SELECT of the record columns, validated by the rules of :mod:`cluster.ingest._rules`
    (rendered to SQL), plus ``ok`` (no problem on the row), ``row_ok`` (no problem but
    those of the grouping keys), ``_scan`` (``index``), ``_file`` and, with ``rows``,
    ``_rownum`` (0-based row of the file). With ``raw`` the file's own columns come along
    (to word the problems of suspect rows); with ``per_rule`` a flag per rule
    (:func:`_rule_flag`: the row breaks it)."""
    cols = {}
    for (name, kind, src), typ in zip(scan.plan, scan.types):
        key = name.strip().lower()
        if key not in cols:
            cols[key] = (_sql_text(src) if kind == "constant" else _ident(src),
                         "VARCHAR" if kind == "constant" else typ)
    numeric = {c for c, (_, typ) in cols.items() if typ.split("(")[0] in _NUMERIC_TYPES}
    raw_cols = [f"_raw_{i}" for i in range(len(_raw_names(scan)))] if raw else []

    # Layer 1: the cells as text (trimmed, '' as NULL) or as numbers, each computed once.
    def text(col):
        return _trimmed(f"CAST({cols[col][0]} AS VARCHAR)") if col in cols else "NULL::VARCHAR"

    def number(col):
        if col not in cols:
            return "NULL::DOUBLE"
        if col in numeric:
            return f"CAST({cols[col][0]} AS DOUBLE)"
        # DuckDB reads digit separators ('1_000' is 1000), pandas does not: a number with
        # an underscore is not one, as cluster.ingest._rules.as_numbers reads it.
        cell = f"CAST({cols[col][0]} AS VARCHAR)"
        return f"CASE WHEN NOT contains({cell}, '_') THEN TRY_CAST(trim({cell}) AS DOUBLE) END"

    layer1 = [f"{text('metric')} AS t_metric", f"{number('lat')} AS n_lat", f"{number('lon')} AS n_lon",
              f"{number('weight')} AS n_weight", f"{number('year')} AS n_year"]
    for col in ("doc_id", "field", "institution"):
        layer1.append(f"{text(col)} AS t_{col}")
    # A numeric weight or year is blank by nb_* alone: no text needed.
    for col in ("weight", "year"):
        layer1.append(f"{'NULL::VARCHAR' if col in numeric else text(col)} AS t_{col}")
    # Country as read: checked and normalised on the groups (a few per site), not per row.
    layer1.append(f"{'CAST(' + cols['country'][0] + ' AS VARCHAR)' if 'country' in cols else 'NULL::VARCHAR'}"
                  " AS c_country")
    for col in ("weight", "year"):
        # A numeric cell is blank when missing or NaN (as pandas reads it).
        layer1.append(f"({cols[col][0]} IS NULL OR isnan(CAST({cols[col][0]} AS DOUBLE))) AS nb_{col}"
                      if col in numeric else f"{'false' if col in cols else 'true'} AS nb_{col}")
    layer1 += [f"{int(index)} AS _scan", f"{_FILE_COLUMN} AS _file"] + (["file_row_number AS _rownum"] if rows else [])
    # The file's own cells, as read (raw names may clash with the record columns).
    layer1 += [f"{_ident(src)} AS _raw_{i}" for i, src in enumerate(_raw_names(scan))] if raw else []
    cell = _row_cell(numeric)
    params = {"metrics": tuple(metrics)}
    norm = {col: rules.to_sql(expr, cell) for col, expr in rules.NORMALISED.items()}
    layer2 = [
        f"{norm['metric']} AS metric", f"{norm['doc_id']} AS doc_id", f"{norm['lat']} AS lat",
        f"{norm['lon']} AS lon", f"{norm['weight']} AS weight", f"CAST({norm['year']} AS INTEGER) AS year",
        f"{norm['country']} AS country", "c_country", f"{norm['field']} AS field",
        f"{norm['institution']} AS institution",
        # The row rules of cluster.ingest._rules; those of metric and country, which are
        # grouping keys, are checked once per group by reduce_records (_keys_ok) and here
        # for ``ok``.
        f"coalesce({rules.sql_all_ok(cell, params, key=False)}, false) AS row_ok",
    ] + ([f"{rules.sql_bad(r, cell, params)} AS {_rule_flag(r)}" for r in rules.RULES] if per_rule else []) + [
        "_scan", "_file",
    ] + (["_rownum"] if rows else []) + raw_cols
    inner = f"SELECT {', '.join(layer1)} FROM {source}"
    return (f"SELECT *, coalesce(row_ok AND {_keys_ok('metric', 'c_country', metrics)}, false) AS ok "
            f"FROM (SELECT {', '.join(layer2)} FROM ({inner}))")


def _row_cell(numeric: set) -> Callable[[str, str], str]:
    """The SQL of the rules' cells (:mod:`cluster.ingest._rules`) over the first layer of
    :func:`_normalized`: ``n_<col>`` numbers, ``t_<col>`` trimmed text ('' as NULL),
    ``nb_<col>`` blank numeric cells, ``c_country`` the country as read. ``numeric``: the
    columns the file types as numbers."""
    def cell(kind: str, col: str) -> str:
        if col == "country":
            return _country_cell(kind, "c_country")
        if kind == "num":
            return f"n_{col}"
        if kind == "text":
            return f"t_{col}"
        if col in numeric:  # a numeric cell is blank when missing or NaN (as pandas reads it)
            return f"nb_{col}"
        return f"(t_{col} IS NULL)" if kind == "empty" else _blank(f"t_{col}")

    return cell


def _key_cell(raw_country: str) -> Callable[[str, str], str]:
    """The SQL of the grouping keys' cells: the country as read in column ``raw_country``."""
    def cell(kind: str, col: str) -> str:
        if col != "country":
            raise ValueError(f"a grouping key's rule reads {kind}({col})")
        return _country_cell(kind, raw_country)

    return cell


def _country_cell(kind: str, raw_country: str) -> str:
    """The SQL of a rule's cell of the country as read in column ``raw_country``."""
    t = _trimmed(raw_country)
    return {"text": t, "empty": f"({t} IS NULL)", "blank": _blank(t)}[kind]


def _rule_flag(rule: rules.Rule) -> str:
    """The column of :func:`_normalized` (``per_rule``) flagging the rows that break ``rule``."""
    return f"_bad_{rule.name}"


def _trimmed(text: str) -> str:
    """SQL: ``text`` without surrounding spaces, '' as NULL. Trimming only the cells that
    need it: most do not, and trim() copies every string (a third of a 10 M-row scan)."""
    return f"nullif(CASE WHEN {text} LIKE ' %' OR {text} LIKE '% ' THEN trim({text}) ELSE {text} END, '')"


def _blank(text: str) -> str:
    """SQL: a trimmed cell that pandas reads as missing (:data:`cluster.ingest._rules.BLANK_TEXTS`)."""
    return f"({text} IS NULL OR {text} IN ({', '.join(map(_sql_text, rules.BLANK_TEXTS))}))"


def _country(raw: str) -> str:
    """SQL: the country code of a cell as read (upper case; NULL when blank), as
    :data:`cluster.ingest._rules.NORMALISED` gives it."""
    return rules.to_sql(rules.NORMALISED["country"], _key_cell(raw))


# Every two-letter code, in the order of _country_code's numbers (alphabetical).
_COUNTRIES = [a + b for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]


def _country_code(raw: str) -> str:
    """SQL: the normalised country of a cell as read as a number, its position in
    :data:`_COUNTRIES` (-1 when blank; NULL when not two letters, a row _keys_ok rejects)."""
    t = _country(raw)
    return (f"CASE WHEN {t} IS NULL THEN -1 WHEN regexp_full_match({t}, {_sql_text(rules.COUNTRY_PATTERN)}) "
            f"THEN (ascii({t}[1]) - 65) * 26 + ascii({t}[2]) - 65 END")


def _keys_ok(metric: str, raw_country: str, metrics: Sequence[str]) -> str:
    """SQL: the rules of the grouping keys (:mod:`cluster.ingest._rules`, ``key``), over the
    normalised metric in column ``metric`` and the country as read in ``raw_country``."""
    return rules.sql_all_ok(_key_cell(raw_country), {"metrics": tuple(metrics)}, key=True,
                            bound={rules.METRIC: metric})


_NUMERIC_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")


def _scan_source(scan: _Scan, *, rows: bool = False, files=None) -> str:
    if scan.kind == "parquet":
        return _parquet_function(files or scan.files, scan.hive, rows=rows)
    return _csv_function(scan, files)


def _frame_sql(name: str) -> str:
    return f"""
        SELECT CAST(metric AS VARCHAR) AS metric, CAST(doc_id AS VARCHAR) AS doc_id, lat, lon,
               CASE WHEN isnan(weight) THEN NULL ELSE weight END AS weight,
               CAST(year AS INTEGER) AS year, CAST(country AS VARCHAR) AS country,
               CAST(field AS VARCHAR) AS field, CAST(institution AS VARCHAR) AS institution,
               CAST(country AS VARCHAR) AS c_country, true AS row_ok, true AS ok, -1 AS _scan, '{name}' AS _file
        FROM {name}"""


@dataclass(frozen=True)
class Reduction:
    """What the engine returns: counts, never records.

    Attributes
    ----------
    groups : DataFrame
        ``metric, lat, lon, country, n, weight, c``: ``c`` records at that site and
        country with document size ``n`` (fractional rows) or that pre-set ``weight``.
        ``metric`` and ``country`` are categorical; a key may come in several groups
        (see :func:`cluster.stages.sites.sites_from_groups`).
    n_records : int
        Records read (valid; the year window not applied).
    outside_years : int
        Records outside the year window.
    years : dict
        Records per year (``None`` for rows without a year).
    per_file : dict
        Records per file path.
    kept : Kept or None
        The records as read, for the profiles and the bootstrap (:func:`profile_counts`,
        :func:`kept_records`); None when not asked for.
    """

    groups: pd.DataFrame
    n_records: int
    outside_years: int
    years: dict
    per_file: dict
    kept: Kept | None = None


def _union(records: Records, metrics: Sequence[str], con) -> str:
    parts = [_normalized(s, metrics, _scan_source(s), index=i) for i, s in enumerate(records.scans)]
    for i, frame in enumerate(records.frames):
        name = f"_frame_{i}"
        cols = frame[[c for c in ("metric", "doc_id", "lat", "lon", "weight", "year", "country", "field",
                                  "institution") if c in frame.columns]].copy()
        cols["metric"] = cols["metric"].astype(str)
        for c in ("doc_id", "country", "field", "institution"):
            if c not in cols:
                cols[c] = None
            cols[c] = cols[c].astype(object)
        if "year" not in cols:
            cols["year"] = pd.array([pd.NA] * len(cols), dtype="Int64")
        con.register(name, cols)
        parts.append(_frame_sql(name))
    return "\nUNION ALL BY NAME\n".join(f"({p})" for p in parts)


@dataclass(frozen=True)
class Kept:
    """The records as the one pass over the files kept them, for the stages after the
    clustering (profiles, bootstrap): they never read the files again.

    On the embedded engine, a DuckDB temporary table of the record columns those stages
    need (``metric, lat, lon, doc_id, weight, inwin``, ``field`` and ``institution`` when
    present) and one of the document sizes; on a Dask cluster, what the same graph
    counted: ``values`` (rows per site and field or institution value) and, with the
    bootstrap, ``units`` (rows per document and site).

    Attributes
    ----------
    kinds : tuple of str
        ``field`` and/or ``institution``: the profile columns present in the records.
    metrics : tuple of str
        The metric names; the table holds a metric as its position here.
    per_file : bool
        The table says each row's input (``_scan``, ``_fkey``).
    con : duckdb.DuckDBPyConnection or None
        The connection holding ``table`` and ``docs`` (embedded engine).
    table, docs : str
        What a query reads the records and the document sizes from (embedded engine):
        the records' table, or a subquery of it that adds the columns constant for
        these inputs (not stored), and the sizes' table.
    values : DataFrame or None
        ``metric, lat, lon, kind, value, n, weight, c`` (Dask).
    units : DataFrame or None
        ``metric, doc_id, lat, lon, weight, c`` (Dask, with the bootstrap).
    stored : str
        The records' temporary table (embedded engine).
    """

    kinds: tuple = ()
    metrics: tuple = ()
    per_file: bool = False
    con: object = None
    table: str = ""
    docs: str = ""
    values: pd.DataFrame | None = None
    units: pd.DataFrame | None = None
    stored: str = ""

    def release(self) -> None:
        """Drop the temporary tables (their memory goes back to DuckDB)."""
        if self.con is not None:  # streamed (nothing kept): no connection, nothing to drop
            self.con.execute(f"DROP TABLE IF EXISTS {self.stored}")
            self.con.execute(f"DROP TABLE IF EXISTS {self.docs}")


_KEPT_TABLES = itertools.count()


def _joined(kept: Kept) -> str:
    """Every kept record with, for a row inside the year window without its own weight,
    ``n``: the rows of its document inside the window."""
    # Only documents at several rows are in the sizes (a row without a match is its
    # document's only one): half the documents or more in real data, so a hash table
    # half the size.
    return f"""
        SELECT r.*, CASE WHEN r.inwin AND r.weight IS NULL AND r.doc_id IS NOT NULL THEN coalesce(d.d_n, 1) END AS n
        FROM {kept.table} r LEFT JOIN {kept.docs} d
          ON r.weight IS NULL AND r.metric = d.d_metric AND r.doc_id = d.d_doc"""


def _metric_code(metric: str, metrics: Sequence[str]) -> str:
    """SQL: the position of a (normalised) metric in ``metrics``, NULL for another."""
    return "CASE " + metric + " " + " ".join(f"WHEN {_sql_text(m)} THEN {i}" for i, m in enumerate(metrics)) + " END"


def _keep(records: Records, metrics: Sequence[str], con, year_start, year_end, *, per_file: bool,
          multi: Sequence[int], materialize: bool = True) -> Kept:
    """Read every file once into a temporary table of the columns the run needs, and count
    the rows of each document (a second temporary table). Without ``materialize`` the
    two are subqueries instead, which the reduction streams (nothing is kept).

    ``inwin``: inside the year window (and valid, when bad rows are skipped); ``good``:
    the row passes the rules of its own cells (with ``on_bad_rows = skip`` also those of
    its keys); ``_scan`` and ``_fkey`` say where a row comes from, when rows are counted
    per file."""
    # One scan, materialised: the sites, the document sizes, the profiles and the
    # bootstrap's draws all come from this table (the files are parsed and validated
    # once; a second scan of Parquet costs as much as building the table). Only the
    # columns used later are kept; DuckDB spills the table to ``temp_directory`` past
    # ``memory_limit``.
    skip = records.rejects is not None
    kinds = tuple(k for k in rules.PROFILE_COLUMNS if k in records.columns)
    fkey = f"CASE WHEN _scan IN ({', '.join(map(str, multi))}) THEN _file END" if multi else "NULL::VARCHAR"
    n = next(_KEPT_TABLES)
    # The metric as its position in ``metrics`` (NULL for another: its groups are then
    # refused by the key check), a byte instead of a string: 10 M records are held in
    # memory, and joins and groups on a number are faster.
    cols = {"metric": f"CAST({_metric_code('metric', metrics)} AS UTINYINT)", "lat": "lat", "lon": "lon",
            "c_country": "c_country", "doc_id": "doc_id", "weight": "weight", "year": "CAST(year AS SMALLINT)",
            "inwin": f"{'ok AND ' if skip else ''}{_window(year_start, year_end)}",
            "good": "ok" if skip else "row_ok", **{k: k for k in kinds}}
    if per_file:
        cols.update(_scan="_scan", _fkey=fkey)
    # A column that is constant for these inputs is not stored (an all-NULL DOUBLE still
    # takes 9 bytes a row in memory, 90 MB for 10 M records); reads add it back.
    constant = {}
    if "weight" not in records.columns:
        constant["weight"] = "NULL::DOUBLE"
    if year_start is None and year_end is None:
        constant["year"] = "NULL::SMALLINT"  # read only to count the years outside a window
        if not skip:
            constant["inwin"] = "true"
    rows = (f"SELECT {', '.join(f'{e} AS {c}' for c, e in cols.items() if c not in constant)} "
            f"FROM ({_union(records, metrics, con)})")

    def docs(table):
        return f"""SELECT metric AS d_metric, doc_id AS d_doc, count(*) AS d_n FROM {table}
            WHERE inwin AND weight IS NULL GROUP BY metric, doc_id HAVING count(*) > 1"""

    def with_constants(table):
        return f"(SELECT *, {', '.join(f'{e} AS {c}' for c, e in constant.items())} FROM {table})" if constant \
            else table

    if not materialize:
        # Nothing is needed after the sites: the reduction streams the files twice (the
        # document sizes, then the rows; only the columns each needs are parsed) and its
        # memory stays bounded by its hash tables, where a table of 100 M records would
        # spill gigabytes to disk and read them back.
        table = with_constants(f"({rows})")
        return Kept(kinds=kinds, table=table, docs=f"({docs(table)})", metrics=tuple(metrics), per_file=per_file)
    kept = Kept(kinds=kinds, con=con, table=with_constants(f"_ic_kept_{n}"), docs=f"_ic_docs_{n}",
                metrics=tuple(metrics), per_file=per_file, stored=f"_ic_kept_{n}")
    try:
        _execute(con, f"CREATE TEMP TABLE {kept.stored} AS {rows}", records)
        con.execute(f"CREATE TEMP TABLE {kept.docs} AS {docs(kept.table)}")
    except BaseException:
        kept.release()
        raise
    return kept


def reduce_records(records: Records, metrics: Sequence[str], *, year_start: int | None = None,
                   year_end: int | None = None, con=None, config=None, keep: bool = False) -> Reduction:
    """Validate every record and reduce them to site groups, reading every file once.

    Parameters
    ----------
    records : Records
        From :func:`open_records` (or :func:`in_memory`).
    metrics : sequence of str
        Metric names allowed in ``metric``.
    year_start, year_end : int, optional
        Inclusive year window; rows outside it are counted, not reduced.
    con : duckdb.DuckDBPyConnection, optional
        Default: :func:`connect` with ``config``.
    config : Config, optional
        The engine settings for a new connection.
    keep : bool, default False
        Keep the records read (``Reduction.kept``) for :func:`profile_counts` and
        :func:`kept_records`; without, nothing is kept and the reduction streams.

    Returns
    -------
    Reduction

    Raises
    ------
    InputDataError
        Every invalid record with file, row, column, value and fix.
    UserInputError
        A file DuckDB and pandas cannot parse.
    """
    con = con or connect(config)
    register_filesystems(con, records.paths)
    # Rows per file come with the groups when there are several inputs: per scan, and per
    # file of a multi-file CSV scan (Parquet files give theirs from their footers).
    multi = [i for i, sc in enumerate(records.scans) if sc.kind == "csv" and len(sc.files) > 1]
    per_file = bool(len(records.scans) + len(records.frames) > 1 or multi)
    kept = _keep(records, metrics, con, year_start, year_end, per_file=per_file, multi=multi, materialize=keep)
    try:
        reduction = _reduce_kept(records, metrics, con, kept, per_file=per_file)
    except BaseException:
        kept.release()
        raise
    finally:
        for i in range(len(records.frames)):
            con.unregister(f"_frame_{i}")
    if not keep:
        return reduction
    # Only what the stages after the clustering read (:func:`profile_counts`,
    # :func:`kept_records`) stays: the country as read, the flags and the year go now
    # (about 80 MB at 10 M records, while the clustering and the profiles run).
    needed = {"metric", "lat", "lon", "doc_id", "weight", "inwin", *kept.kinds}
    for (name,) in con.execute(f"SELECT column_name FROM (DESCRIBE {kept.stored})").fetchall():
        if name not in needed:
            con.execute(f"ALTER TABLE {kept.stored} DROP COLUMN {name}")
    return Reduction(groups=reduction.groups, n_records=reduction.n_records, outside_years=reduction.outside_years,
                     years=reduction.years, per_file=reduction.per_file, kept=kept)


def _reduce_kept(records: Records, metrics: Sequence[str], con, kept: Kept, *, per_file: bool) -> Reduction:
    """The site groups, rows per file and year counts of the kept records."""
    # Skipping bad rows: they are neither inside nor outside the window, only counted
    # (c_bad); failing on them: any bad group stops the run (ok).
    skip = records.rejects is not None
    valid = " AND good" if skip else ""
    # Rows are grouped by the fewest keys the weights need: the country as read (the
    # groups, a few per site, are then checked and normalised), and the document size
    # and own weight as one number (n > 0, or -weight; a row has one of them). Validity
    # and the year window are counts, not keys. Per-row string work and wide keys are the
    # costliest parts of the reduction.
    rows = f"""
        SELECT metric, lat, lon, c_country, CASE WHEN weight IS NULL THEN CAST(n AS DOUBLE) ELSE -weight END AS nw,
               {'_scan, _fkey' if per_file else '0 AS _scan, NULL::VARCHAR AS _fkey'},
               count(*) FILTER (WHERE inwin) AS c_in, count(*) FILTER (WHERE NOT inwin{valid}) AS c_out,
               count(*) FILTER (WHERE NOT good) AS c_bad
        FROM ({_joined(kept)}) GROUP BY ALL"""
    # The groups are checked and their country normalised, then returned as they are: two
    # raw countries that normalise alike (' de', 'DE') give two groups of the same key,
    # which sites.sites_from_groups adds up (integer counts: exact). Metric and country
    # come back as integer codes (text for 1.4 M groups is most of the fetch).
    name = "(CASE metric " + " ".join(f"WHEN {i} THEN {_sql_text(m)}" for i, m in enumerate(metrics)) + " END)"
    # The key rules and the country's code are worked out once per distinct (metric,
    # country as read), a few hundred pairs, not once per group (1.9 M at 10 M records,
    # a tenth of a second of regular expressions), and joined back to the groups.
    keys = f"""
        SELECT metric AS k_metric, c_country AS k_country, {_country_code('c_country')} AS k_code,
               {'true' if skip else _keys_ok(name, 'c_country', metrics)} AS k_ok
        FROM (SELECT DISTINCT metric, c_country FROM g1)"""
    checked = f"""
        SELECT {'true' if skip else 'coalesce(c_bad = 0 AND k_ok, false)'} AS ok,
               metric AS metric_code, lat, lon, k_code AS country_code,
               CASE WHEN nw > 0 THEN CAST(nw AS BIGINT) END AS n, CASE WHEN nw < 0 THEN -nw END AS weight,
               _scan, _fkey, c_in, c_out, c_bad
        FROM g1 JOIN k ON g1.metric IS NOT DISTINCT FROM k.k_metric AND g1.c_country IS NOT DISTINCT FROM k.k_country"""
    key = "ok, metric_code, lat, lon, country_code, n, weight"
    sites_part = f"SELECT 1 AS g_key, {key}, 0 AS _scan, NULL::VARCHAR AS _fkey, c_in, c_out, c_bad FROM g"
    if per_file:
        query = f"""
            WITH g1 AS ({rows}), k AS ({keys}), g AS ({checked})
            {sites_part}
            UNION ALL
            SELECT 0 AS g_key, ok, NULL, NULL, NULL, NULL, NULL, NULL, _scan, _fkey,
                   CAST(sum(c_in) AS BIGINT), CAST(sum(c_out) AS BIGINT), CAST(sum(c_bad) AS BIGINT)
            FROM g GROUP BY ok, _scan, _fkey"""
    else:
        query = f"WITH g1 AS ({rows}), k AS ({keys}), g AS ({checked}) {sites_part}"
    # In the order sites.sites_from_groups sums them (metrics in the configuration's
    # order, then the key): DuckDB sorts in parallel, numpy's lexsort would not.
    order = ("ORDER BY g_key, metric_code NULLS FIRST, lat, lon, country_code, "
             "n NULLS FIRST, weight NULLS FIRST")
    # As numpy arrays: a DataFrame of 1.4 M groups costs more to build than to use.
    out = _fetch(con, f"SELECT * FROM ({query}) {order}", records, arrays=True)
    trim_heap()  # the query's hash tables (300 MB at 10 M records) back before the sites' arrays come
    if not out["ok"].all():
        _row_problems(records, metrics, con)
    c = out["c_in"] + out["c_out"]
    site = out["g_key"] == 1
    if skip and (bad := int(out["c_bad"][site].sum())):
        _row_problems(records, metrics, con, rejects=records.rejects, exact=bad)
    files = (pd.DataFrame({"_scan": out["_scan"], "_fkey": out["_fkey"], "c": c})[~site] if per_file
             else pd.DataFrame({"_scan": out["_scan"], "c": c}))
    sel = site & (out["c_in"] > 0)
    every = bool(sel.all())  # the common case: the fetched arrays are the groups' columns, not copied

    def column(name, dtype=None):
        values = out[name] if every else out[name][sel]
        return values if dtype is None else values.astype(dtype, copy=False)

    groups = pd.DataFrame({
        "metric": pd.Categorical.from_codes(column("metric_code", np.int64), categories=list(metrics)),
        "lat": column("lat"), "lon": column("lon"),
        "country": pd.Categorical.from_codes(column("country_code", np.int64), categories=_COUNTRIES),
        "n": column("n"), "weight": column("weight"), "c": column("c_in", np.int64)}, copy=False)
    outside = int(out["c_out"][site].sum())
    years = {}
    if outside and not sel.any():
        years = dict(con.sql(f"SELECT year, count(*) FROM {kept.table} GROUP BY year").fetchall())
    return Reduction(groups=groups, n_records=int(c[site].sum()), outside_years=outside, years=years,
                     per_file=_per_file(records, files))


def profile_counts(kept: Kept, metrics: Sequence[str], site_cluster: pd.DataFrame) -> pd.DataFrame | None:
    """Rows per cluster, metric and ``field``/``institution`` value, from the records the
    reduction kept (the files are not read again), once the clusters are known.

    Parameters
    ----------
    kept : Kept
        ``Reduction.kept``.
    metrics : sequence of str
        Metric names.
    site_cluster : DataFrame
        ``metric, lat, lon, cluster`` of every site inside a cluster.

    Returns
    -------
    DataFrame or None
        ``cluster, metric, kind, value, n, weight, c`` (see :func:`reduce_records` for
        ``n`` and ``weight``; sum with :func:`cluster.stages.sites.cluster_values`); None
        when no input has a ``field`` or ``institution`` column.
    """
    if not kept.kinds:
        return None
    table = site_cluster[["metric", "lat", "lon", "cluster"]].assign(metric=site_cluster["metric"].astype(str))
    if kept.con is None:  # counted per site by the Dask graph: joined to the clusters here
        counts = kept.values.assign(metric=kept.values["metric"].astype(str)).merge(
            table, on=["metric", "lat", "lon"], how="inner", sort=False)
        keys = ["cluster", "metric", "kind", "value", "n", "weight"]
        return counts.groupby(keys, dropna=False, sort=False, observed=True)["c"].sum().reset_index()
    con = kept.con
    codes = pd.Index(list(kept.metrics)).get_indexer(table["metric"])
    con.register("_site_cluster", table.assign(metric=codes.astype(np.int16)))
    # Each kind grouped on its own (the kind a constant added to the few groups, not a key
    # of 15 M unpivoted rows: a tenth less time).
    per_kind = " UNION ALL ".join(
        f"SELECT cluster, metric, '{k}' AS kind, value, n, weight, c FROM (SELECT cluster, metric, {k} AS value, "
        f"n, weight, count(*) AS c FROM j WHERE {k} IS NOT NULL GROUP BY ALL)"
        for k in kept.kinds)
    try:
        # The kept rows with their document sizes, as the site groups count them
        # (:func:`_joined`), at the clustered sites; only the columns counted go on, and
        # DuckDB streams these rows to each kind's group-by.
        counts = _arrow_frame(con, f"""
            WITH j AS (SELECT s.cluster, r.metric, r.n, r.weight, {', '.join(f'r.{k}' for k in kept.kinds)}
                       FROM ({_joined(kept)}) r JOIN _site_cluster s
                       ON r.metric = s.metric AND r.lat = s.lat AND r.lon = s.lon WHERE r.inwin)
            {per_kind}""")
        counts["metric"] = pd.Categorical.from_codes(counts["metric"].to_numpy(dtype=np.int64), categories=kept.metrics)
        return counts
    finally:
        con.unregister("_site_cluster")


def kept_records(kept: Kept, metrics: Sequence[str]) -> pd.DataFrame:
    """The kept records inside the year window, one row per record (the bootstrap's draws).

    Parameters
    ----------
    kept : Kept
        ``Reduction.kept``.
    metrics : sequence of str
        Metric names.

    Returns
    -------
    DataFrame
        ``metric`` (categorical), ``doc_id``, ``lat``, ``lon``, ``weight`` (NaN = fractional).
    """
    if kept.con is None:  # Dask: rows per (document, site, weight), one row each again
        units = kept.units
        df = units.loc[np.repeat(units.index.to_numpy(), units["c"].to_numpy(dtype=np.int64)),
                       ["metric", "doc_id", "lat", "lon", "weight"]].reset_index(drop=True)
    else:
        df = kept.con.sql(f"SELECT metric, doc_id, lat, lon, weight FROM {kept.table} WHERE inwin").df()
        df["metric"] = pd.Categorical.from_codes(df["metric"].to_numpy(dtype=np.int64), categories=kept.metrics)
    df["metric"] = df["metric"].astype(str).astype(pd.CategoricalDtype(list(metrics)))
    df["weight"] = df["weight"].astype(float)
    return df


def _window(year_start: int | None, year_end: int | None) -> str:
    window = []
    if year_start is not None:
        window.append(f"year >= {int(year_start)}")
    if year_end is not None:
        window.append(f"year <= {int(year_end)}")
    return f"(year IS NOT NULL AND {' AND '.join(window)})" if window else "true"


def _per_file(records: Records, out: pd.DataFrame) -> dict:
    """Records per input file: Parquet footers, in-memory frames, and the group counts of CSV."""
    import pyarrow.parquet as pq

    per = {}
    for i, scan in enumerate(records.scans):
        if scan.kind == "parquet":
            for f in scan.files:
                if is_url(f):
                    fs, key = _filesystem(f)
                    per[f] = pq.read_metadata(key, filesystem=fs).num_rows
                else:
                    per[f] = pq.read_metadata(f).num_rows
        elif len(scan.files) == 1:
            per[scan.files[0]] = int(out.loc[out["_scan"] == i, "c"].sum())
        else:
            sel = out[out["_scan"] == i]
            per.update({k: int(v) for k, v in sel.groupby("_fkey")["c"].sum().items()})
    return per


def _arrow_table(con, query: str):
    """A query's whole result as a pyarrow Table (DuckDB's ``arrow()`` gives a record batch
    reader in recent versions, a table in older ones)."""
    result = con.sql(query).arrow()
    return result.read_all() if hasattr(result, "read_all") else result


def _arrow_frame(con, query: str) -> pd.DataFrame:
    """A query's result as pandas through Arrow: text stays in Arrow's buffers (pandas'
    ``str`` dtype) instead of one Python object per cell (ten times the time on 1 M rows)."""
    return _arrow_table(con, query).to_pandas()


def _execute(con, statement: str, records: Records) -> None:
    """Run a statement that reads the files; a parse error is worded as by :func:`_fetch`."""
    import duckdb

    try:
        con.execute(statement)
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as exc:
        _explain_parse_error(records, exc)
        raise


def _fetch(con, query: str, records: Records, *, arrays: bool = False):
    """Run the reduction; a parse error is worded by the pandas reader of that file.

    With ``arrays``, a dict of numpy arrays: NULL is NaN in numbers (as float), None in
    text, False in booleans."""
    import duckdb

    try:
        if not arrays:
            return con.sql(query).df()
        # Through Arrow: a column without NULLs is handed over without a copy, where
        # ``fetchnumpy`` copies every column into masked arrays (0.3 s of 1.4 for the 1.9 M
        # groups of 10 M records).
        table = _arrow_table(con, query)
        return {name: _filled(table.column(name)) for name in table.column_names}
    except (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException) as exc:
        _explain_parse_error(records, exc)
        raise


def _filled(column) -> np.ndarray:
    """A fetched Arrow column as numpy, its NULLs filled (see :func:`_fetch`)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_boolean(kind):
        return column.fill_null(False).to_numpy()
    if pa.types.is_decimal(kind) or (pa.types.is_integer(kind) and column.null_count):
        column = column.cast(pa.float64())
        kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return column.to_numpy()  # NULL -> NaN in floats
    if column.null_count == len(column):  # e.g. the file of each group, without several files
        return np.full(len(column), None, dtype=object)  # (Arrow makes a None per cell: 0.2 s at 2 M)
    return np.asarray(column.to_numpy(), dtype=object)  # text: NULL -> None


def _explain_parse_error(records: Records, exc: Exception) -> None:
    """Raise the pandas reader's message for the CSV that DuckDB could not parse."""
    text = str(exc)
    import re

    long_line = re.search(r"CSV Error on Line: (\d+).*?Actual Size: ?(\d+) bytes", text, re.S)
    for scan in records.scans:
        for f in scan.files:
            if f in text or len(records.scans) == 1 and len(scan.files) == 1:
                if long_line and "line size" in text:
                    line, size = int(long_line.group(1)), int(long_line.group(2))
                    raise UserInputError(
                        f"{f}, row {line}: the line is {size:,} bytes long, over the {MAX_LINE_BYTES >> 20} MiB a "
                        "record may take (a missing closing quote or newline, or a value that is not a record's). "
                        "Fix or remove that row.") from None
                if scan.kind == "csv":
                    _read_csv(Path(f), scan.compression)  # raises the worded message
                    if "state machine" in text:  # pandas reads it: line endings mixed past the sniffed start
                        raise UserInputError(
                            f"{f}: the lines end in both LF and CRLF past its first 64 KiB. Save the file "
                            "with one kind of line ending (e.g. `dos2unix FILE`).") from None
                raise UserInputError(f"{f}: cannot read ({text.splitlines()[0]}).") from None
    raise UserInputError(f"Cannot read the input ({text.splitlines()[0]}).") from None


def _row_problems(records: Records, metrics: Sequence[str], con, *, rejects: Rejects | None = None,
                  exact: int = 0) -> None:
    """Fetch the suspect rows of each file with their row numbers and word them with the
    Python validator (same messages as a file read in memory), raised at once; with
    ``rejects``, collected there instead (``exact``: the rows the engine left out, the
    count kept whatever the number fetched; the rows per rule counted by the engine, one
    flag per rule of :mod:`cluster.ingest._rules`, so exact too)."""
    problems, rows = [], 0
    before = rejects.rows if rejects is not None else 0
    register_filesystems(con, records.paths)
    for scan in records.scans:
        for f in scan.files:
            source = _scan_source(scan, rows=scan.kind == "parquet", files=[f])
            if scan.kind == "csv":
                # CSV has no row-number column: number the rows of this one file in order
                # (an ordered scan, only on this path).
                source = f"(SELECT *, row_number() OVER () - 1 AS file_row_number FROM {source})"
            sql = _normalized(scan, metrics, source, rows=True, raw=True, per_rule=rejects is not None)
            con.execute("SET preserve_insertion_order = true")
            suspect = con.sql(f"SELECT * FROM ({sql}) WHERE NOT ok ORDER BY _rownum "
                              f"LIMIT {_MAX_SUSPECT_ROWS}").df()
            if suspect.empty:
                continue
            # Only the first rows are fetched and worded; the headline counts them all, and
            # the rows per rule are counted here (skipping: every rule, exact).
            per_rule = [f", count(*) FILTER (WHERE {_rule_flag(r)})" for r in rules.RULES] if rejects else []
            finite, bad, *counts = con.sql(
                f"SELECT count(*) FILTER (WHERE isfinite(lat) AND isfinite(lon)), count(*) FILTER (WHERE NOT ok)"
                f"{''.join(per_rule)} FROM ({sql})").fetchall()[0]
            names = _raw_names(scan)
            raw = pd.DataFrame({name: suspect[f"_raw_{i}"] for i, name in enumerate(names)})
            if scan.kind == "csv":
                # As the pandas reader reads CSV: text, '' for an empty cell.
                raw = raw.astype(object).where(raw.notna(), "")
            plan_frame = pd.DataFrame({name: (raw[src] if kind == "column" else src)
                                       for name, kind, src in scan.plan}, index=raw.index)
            counted = dict(rejects.per_rule) if rejects is not None else {}
            try:
                _validate(plan_frame, f if is_url(f) else Path(f), 2 if scan.kind == "csv" else 1, metrics,
                          row_numbers=suspect["_rownum"].to_numpy(dtype=np.int64), n_finite=int(finite),
                          rejects=rejects)
            except InputDataError as exc:
                problems += exc.problems
                rows += max(exc.rows or 0, int(bad))
            if rejects is not None:  # the engine's exact counts, not those of the rows fetched
                columns = [n.strip().lower() for n, _, _ in scan.plan]
                for rule, count in zip(rules.RULES, counts):
                    if count:
                        key = rule.counted_in(columns)
                        counted[key] = counted.get(key, 0) + int(count)
                rejects.per_rule = counted
    con.execute("SET preserve_insertion_order = false")
    if rejects is not None:
        rejects.rows = before + exact
        return
    if problems:
        raise InputDataError(problems, rows=rows or None)
    raise UserInputError("The engine flagged rows the validator accepts; please report this with the input.")


def records_frame(records: Records, metrics: Sequence[str], *, year_start: int | None = None,
                  year_end: int | None = None, con=None, config=None) -> pd.DataFrame:
    """The validated records inside the year window as one pandas frame.

    Memory grows with the number of records, and the files are read again: a run uses
    :func:`kept_records` (the records its one pass kept) instead.

    Parameters
    ----------
    records : Records
        From :func:`open_records`.
    metrics : sequence of str
        Metric names.
    year_start, year_end : int, optional
        Inclusive year window.
    con, config
        As :func:`reduce_records`.

    Returns
    -------
    DataFrame
        ``metric`` (categorical), ``doc_id``, ``lat``, ``lon``, ``weight`` (NaN =
        fractional), ``year``, ``country``, ``field``, ``institution``.
    """
    con = con or connect(config)
    register_filesystems(con, records.paths)
    where = []
    if year_start is not None:
        where.append(f"year >= {int(year_start)}")
    if year_end is not None:
        where.append(f"year <= {int(year_end)}")
    cond = f"AND year IS NOT NULL AND {' AND '.join(where)}" if where else ""
    df = con.sql(f"SELECT * EXCLUDE (ok, _file) FROM ({_union(records, metrics, con)}) WHERE ok {cond}").df()
    df["metric"] = df["metric"].astype(pd.CategoricalDtype(list(metrics)))
    df["weight"] = df["weight"].astype(float)
    df["year"] = df["year"].astype("Int64")
    return df


def in_memory(frame: pd.DataFrame, *, synthetic: bool = False, rejects: Rejects | None = None) -> Records:
    """Records already validated in memory (:func:`cluster.ingest.read.validate_frame`).

    Parameters
    ----------
    frame : DataFrame
        Validated records.
    synthetic : bool, default False
        The records are the synthetic demo world.
    rejects : Rejects, optional
        The rows left out of ``frame`` when it was validated (``on_bad_rows = skip``).

    Returns
    -------
    Records
    """
    return Records(frames=(frame,), files=[], synthetic=synthetic, rejects=rejects)


def raise_overflow(records: Records, metrics: Sequence[str]) -> None:
    """Word a weight overflow with the rows of the heaviest weights (the in-memory reader's
    message; only reached when a metric's weights sum past the largest float).

    Parameters
    ----------
    records : Records
        The inputs.
    metrics : sequence of str
        Metric names.

    Returns
    -------
    None

    Raises
    ------
    UserInputError
        Always.
    """
    for frame in records.frames:
        check_world_totals(frame, "The records")
    paths = [f for s in records.scans for f in s.files]
    if paths:
        read_records(paths, metrics, rejects=None if records.rejects is None else Rejects())
    raise UserInputError("The weights of a metric sum to more than the largest float (about 1.8e308). "
                         "Scale the weights down, e.g. to documents or fractions of a document.")
