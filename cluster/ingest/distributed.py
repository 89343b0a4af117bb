"""The sites stage on a Dask cluster, for inputs past what one machine reads in time.

``[engine] scheduler = "tcp://host:8786"`` (``cluster run --scheduler``) sends the
reduction of records to sites to an existing Dask distributed cluster; everything after
it (clustering, boundaries, names, ranking, outputs) stays on this machine, because the
sites it returns are bounded by the number of distinct locations, not of records.

How the work is split
---------------------
1. Every input file is one task: the worker reads it with its own DuckDB (the same SQL
   as the embedded engine, :func:`cluster.ingest.engine._normalized`), so the rows are
   validated by the same rules (:mod:`cluster.ingest._rules`), and returns them as a
   pandas partition.
2. Document sizes: rows per ``(metric, doc_id)`` inside the year window, a Dask
   group-by (a tree reduction across workers: a document may span files).
3. Each row gets its document's size by a shuffle join, and rows are counted per
   ``(metric, lat, lon, country, n, weight)``: integers, so the groups do not depend on
   partitions, workers or the order tasks finish in.
4. In the same graph (one read of every file): rows per site and ``field`` or
   ``institution`` value (the profiles) and, with the bootstrap, rows per document and
   site (its draws), kept on the client (:class:`cluster.ingest.engine.Kept`).
5. The client turns the counts into weights (:func:`cluster.stages.sites.sites_from_groups`):
   the site weights are bit-identical to the embedded engine's.

The workers need this package (``pip install innovation-clusters`` in their
environment) and must be able to read the paths (a shared file system, or object-store
URLs DuckDB reads). A row that breaks a rule is worded on the client by the embedded
engine, which reads that file again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import pandas as pd

from cluster.errors import EnvironmentFault, UserInputError
from cluster.ingest._rules import PROFILE_COLUMNS
from cluster.ingest.engine import (
    Kept,
    Records,
    Reduction,
    _normalized,
    _scan_source,
    _window,
    connect,
    register_filesystems,
)

log = logging.getLogger(__name__)

_COLUMNS = {"metric": "object", "doc_id": "object", "lat": "float64", "lon": "float64", "weight": "float64",
            "year": "float64", "country": "object", "field": "object", "institution": "object", "ok": "bool",
            "_file": "object"}
_KEY = ["metric", "lat", "lon", "country", "n", "weight"]


def _read_file(scan, metrics: Sequence[str], path: str) -> pd.DataFrame:
    """One input file read and validated by DuckDB on a worker (record columns, ``ok``)."""
    con = connect()  # one thread: Dask runs several tasks per worker at once
    con.execute("SET threads = 1")
    register_filesystems(con, [path])  # an object-store address: read with the worker's fsspec
    sql = _normalized(scan, metrics, _scan_source(scan, files=[path]))
    cols = ", ".join(_COLUMNS)
    df = con.sql(f"SELECT {cols} FROM ({sql})").df()
    return df.astype(_COLUMNS)


def _frame_partition(frame: pd.DataFrame) -> pd.DataFrame:
    """A validated in-memory frame in the partitions' layout."""
    out = pd.DataFrame({c: frame[c] if c in frame.columns else None for c in _COLUMNS if c not in ("ok", "_file")})
    out["metric"] = out["metric"].astype(str)
    out["ok"] = True
    out["_file"] = "<memory>"
    return out.astype(_COLUMNS)


def reduce_records_distributed(records: Records, metrics: Sequence[str], config, *, client=None,
                               keep: bool = False) -> Reduction:
    """:func:`cluster.ingest.engine.reduce_records` on a Dask distributed cluster.

    Parameters
    ----------
    records : Records
        From :func:`cluster.ingest.engine.open_records`.
    metrics : sequence of str
        Metric names.
    config : Config
        ``scheduler`` (the cluster's address), ``year_start``, ``year_end``.
    client : distributed.Client, optional
        A connected client (default: one connected to ``config.scheduler``).
    keep : bool, default False
        Count, in the same graph, what the profiles (rows per site and ``field`` or
        ``institution`` value) and, with ``bootstrap_replicates``, the bootstrap (rows per
        document and site) need: ``Reduction.kept``; the files are read once.

    Returns
    -------
    Reduction
        The same groups as the embedded engine (row counts: equal, not merely close).

    Raises
    ------
    UserInputError
        When Dask is not installed or the scheduler cannot be reached;
        :class:`~cluster.errors.InputDataError` for invalid records.
    """
    try:
        import dask
        import dask.dataframe as dd
        from distributed import Client
    except ImportError:
        message = ("The distributed engine needs Dask: pip install 'innovation-clusters[distributed]' "
                   "(or leave [engine] scheduler empty for the embedded engine).")
        raise UserInputError(message) from None
    own = client is None
    timeout = float(getattr(config, "scheduler_timeout_s", 60.0))
    if own:
        client = _connect(Client, config.scheduler, timeout)
    try:
        _wait_for_workers(client, config.scheduler, timeout)
        log.info("reducing on the Dask cluster at %s (%d workers)", config.scheduler,
                 len(client.scheduler_info().get("workers", {})))
        parts = [dask.delayed(_read_file)(scan, list(metrics), f) for scan in records.scans for f in scan.files]
        parts += [dask.delayed(_frame_partition)(frame) for frame in records.frames]
        meta = pd.DataFrame({c: pd.Series(dtype=t) for c, t in _COLUMNS.items()})
        rows = dd.from_delayed(parts, meta=meta, verify_meta=False)
        inwin = _in_window(rows, config.year_start, config.year_end)
        if records.rejects is not None:  # bad rows skipped: neither inside nor outside the window
            inwin = inwin & rows["ok"]
        rows = rows.assign(inwin=inwin)
        frac = rows[rows["ok"] & rows["inwin"] & rows["weight"].isna()]
        sizes = frac.groupby(["metric", "doc_id"]).size(split_out=max(1, rows.npartitions // 4)).rename("n")
        joined = rows.merge(sizes.reset_index(), on=["metric", "doc_id"], how="left")
        joined = joined.assign(n=joined["n"].where(joined["weight"].isna()))
        counted = joined.groupby(["ok", "inwin", "_file"] + _KEY, dropna=False).size().rename("c")
        # The profiles' and the bootstrap's counts come from the same graph: every file is
        # read once, and only counts come back (integers: the same whatever the partitions).
        kinds = [k for k in PROFILE_COLUMNS if k in records.columns] if keep else []
        inside = joined[joined["inwin"]]
        extra = [inside[~inside[k].isna()].groupby(["metric", "lat", "lon", "n", "weight", k], dropna=False)
                 .size().rename("c") for k in kinds]
        draws = keep and getattr(config, "bootstrap_replicates", 0) > 0
        if draws:
            extra.append(inside.groupby(["metric", "doc_id", "lat", "lon", "weight"], dropna=False).size().rename("c"))
        try:
            futures = client.compute([counted, *extra])
            out = _result(client, futures[0], config.scheduler, timeout).reset_index()
            extra = [_result(client, f, config.scheduler, timeout).reset_index() for f in futures[1:]]
        except Exception as exc:  # a worker's DuckDB parse error, re-raised here as its own type
            import duckdb

            if not isinstance(exc, (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.IOException)):
                raise
            from cluster.ingest.engine import _explain_parse_error

            _explain_parse_error(records, exc)  # the embedded engine's words: file, line, fix
            raise
    finally:
        if own:
            client.close()
    ok = out["ok"].astype(bool)
    if (~ok).any():
        from cluster.ingest.engine import _row_problems

        _row_problems(records, metrics, connect(config), rejects=records.rejects, exact=int(out.loc[~ok, "c"].sum()))
        if records.rejects is not None:
            out = out[ok.to_numpy()]
    per_file = {k: int(v) for k, v in out.groupby("_file")["c"].sum().items()}
    inside = out["inwin"].astype(bool)
    # Partitions are files, so a key may come once per file: sites_from_groups adds up
    # the counts of a repeated key, as it does for the embedded engine's groups.
    groups = out.loc[inside, _KEY + ["c"]].reset_index(drop=True)
    groups["country"] = groups["country"].astype(object).where(groups["country"].notna(), None)
    outside = int(out.loc[~inside, "c"].sum())
    years = {}
    if outside and not inside.any():
        con = connect(config)
        register_filesystems(con, records.paths)
        from cluster.ingest.engine import _union

        years = dict(con.sql(f"SELECT year, count(*) FROM ({_union(records, metrics, con)}) "
                             f"WHERE NOT {_window(config.year_start, config.year_end)} GROUP BY year").fetchall())
    kept = None
    if keep:
        values = [v.rename(columns={k: "value"}).assign(kind=k) for k, v in zip(kinds, extra)]
        values = (pd.concat(values, ignore_index=True)[["metric", "lat", "lon", "kind", "value", "n", "weight", "c"]]
                  if values else None)
        kept = Kept(kinds=tuple(kinds), values=values, units=extra[len(kinds)] if draws else None)
    return Reduction(groups=groups.reset_index(drop=True), n_records=int(out["c"].sum()),
                     outside_years=outside, years=years, per_file=per_file, kept=kept)


def _probe(address: str, timeout: float) -> None:
    """Check that a ``tcp://`` address answers as a Dask scheduler does, within ``timeout``.

    A Dask scheduler greets every new connection with its handshake (a msgpack frame
    naming ``compression`` and ``pickle-protocol``) before the client says anything; an
    HTTP server, or any other service, waits for a request, and distributed's own
    ``Client`` then waits for ever past its connect timeout. Hand-written because
    distributed has no such check.
    """
    import socket

    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rpartition(":")
    if not port.isdigit():
        raise UserInputError(f"{{scheduler}} {address}: no port. Give the scheduler's address as tcp://host:8786.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            greeting = b""
            while len(greeting) < 64:
                chunk = sock.recv(256)
                if not chunk:
                    break
                greeting += chunk
    except TimeoutError:
        greeting = None
    except OSError as exc:
        raise EnvironmentFault(f"Cannot reach the Dask scheduler at {address} ({exc.strerror or exc}). Check that "
                               "it runs and {scheduler}, or leave it empty for the embedded engine.") from None
    if not greeting or b"pickle-protocol" not in greeting and b"compression" not in greeting:
        said = "said nothing" if not greeting else f"answered {greeting[:24]!r}"
        raise EnvironmentFault(f"The service at {address} is not a Dask scheduler: it {said} within {timeout:g} s "
                               "where a scheduler greets at once (an HTTP server, or the wrong port?). Check "
                               "{scheduler} (the scheduler's port, 8786 by default, not its dashboard's).")


def _connect(Client, address: str, timeout: float):
    """A client connected to ``address``, or an error within ``timeout`` seconds."""
    if address.startswith("tcp://") or "://" not in address:
        _probe(address, timeout)
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise EnvironmentFault(f"Cannot reach the Dask scheduler at {address} ({exc}). Check {{scheduler}}, "
                               "or leave it empty for the embedded engine.") from None


def _wait_for_workers(client, address: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise EnvironmentFault(f"The Dask scheduler at {address} has no live worker after {timeout:g} s. Start "
                               f"workers (`dask worker {address}`), or raise {{scheduler}}'s timeout "
                               "(--scheduler-timeout / [engine] scheduler_timeout).") from None


def _result(client, future, address: str, timeout: float, poll: float = 2.0):
    """The future's result; stops (exit code 3) once the cluster has had no worker for
    ``timeout`` seconds, instead of waiting for ever for work nobody will do."""
    from distributed import TimeoutError as DaskTimeout

    from cluster._progress import waiting

    with waiting(f"reducing on the Dask cluster at {address}"):
        return _poll(client, future, address, timeout, poll, DaskTimeout)


def _poll(client, future, address, timeout, poll, DaskTimeout):
    since = None
    while True:
        try:
            return future.result(timeout=poll)
        except (TimeoutError, DaskTimeout):
            pass
        workers = len(client.nthreads())
        if workers:
            since = None
            continue
        since = since or time.monotonic()
        if time.monotonic() - since > timeout:
            future.cancel()
            raise EnvironmentFault(f"The Dask cluster at {address} lost every worker and got none back within "
                                   f"{timeout:g} s. Restart its workers and run again.")


def _in_window(rows, year_start, year_end):
    """Rows inside the inclusive year window (all rows without a window)."""
    if year_start is None and year_end is None:
        return rows["ok"] | True
    inwin = ~rows["year"].isna()
    if year_start is not None:
        inwin = inwin & (rows["year"] >= year_start)
    if year_end is not None:
        inwin = inwin & (rows["year"] <= year_end)
    return inwin


__all__ = ["reduce_records_distributed"]
