"""Runtime plumbing, in one place: what a process needs around the domain code.

The domain modules (stages, engine, outputs) neither start threads or processes at
import nor depend on timing to be correct; what a command needs around them lives here,
called by the command line (:func:`start` before the command, :func:`finish` after it),
for the engine's cache by the engine itself, and between its heaviest stages by the
pipeline and the reduction (:func:`trim_heap`):

- **numba's cache** in a folder of its own under the user cache
  (``<user cache>/innovation-clusters/numba``, ``NUMBA_CACHE_DIR`` wins when set), so that
  compiled kernels survive a read-only install and a damaged cache can be thrown away
  without touching anything else. A truncated or garbled cache file makes numba raise
  while loading (an ``UnpicklingError`` deep in ``numba.core.caching``);
  :func:`rebuild_damaged_cache` recognises that, removes the folder and compiles again,
  once, instead of failing every later run.
- **Signals**: SIGTERM (what ``kill``, systemd and batch schedulers send) becomes an
  ordinary exit, so every ``with`` block unwinds and the temporary output folders are
  removed at once, as on Ctrl-C.
- **Debris**: the temporary folders of commands that were killed with SIGKILL are removed
  by the next command of any kind (:func:`cluster._atomic.remove_debris`).
- **Memory back to the system**: glibc keeps freed arrays' memory for later
  allocations, and DuckDB's allocator a dropped table's for a second or so;
  :func:`trim_heap` hands both back, so one stage's transients do not add to the next
  stage's peak.
- **Work alongside**: :func:`alongside` runs one function on a worker thread while the
  caller goes on (the pipeline counts the profiles in the engine, whose query runs
  without the GIL, while places and ranking run in Python); when the caller fails, the
  worker is interrupted and waited for, at most a minute, before the error goes on.
- **Fast exit**: once every output is written and closed, the process ends without the
  interpreter's teardown (numba's LLVM and the modules' memory: 0.6 s of a 13 s run on
  10 M records, for nothing).

There is deliberately no helper process and no import-ahead thread: a process forked
while another thread holds a lock (DuckDB's and numba's pools run about 29 threads)
keeps that lock, held by nobody, for ever, and that hung runs that drew ``map.png`` in a
forked child; the thread that imported later stages ahead saved half a second and is
not worth an argument about import locks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

__all__ = ["alongside", "finish", "numba_cache_dir", "rebuild_damaged_cache", "start", "trim_heap"]

log = logging.getLogger(__name__)


def _writable(directory: Path) -> bool:
    """``directory`` exists or can be made, and a file can be written in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def numba_cache_dir() -> str:
    """The folder of numba's compiled kernels, set for numba before they are decorated.

    ``NUMBA_CACHE_DIR`` when set; else ``<user cache>/innovation-clusters/numba``; else,
    on a read-only home, a folder of this user's in the temporary directory.

    Returns
    -------
    str
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    from cluster._cache import cache_dir

    uid = os.getuid() if hasattr(os, "getuid") else "user"
    chosen = None
    for directory in (cache_dir("numba"), Path(tempfile.gettempdir()) / f"innovation-clusters-numba-{uid}"):
        if _writable(directory):
            chosen = str(directory)
            break
    if chosen is not None:
        # numba reads the variable when it is imported (and worker processes inherit it);
        # when it is imported already, its config is set directly.
        os.environ["NUMBA_CACHE_DIR"] = chosen
        if "numba" in sys.modules:
            sys.modules["numba"].config.CACHE_DIR = chosen
    return chosen or ""


def _from_numba_cache(exc: BaseException) -> bool:
    """The exception was raised while numba loaded a cached kernel."""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if filename.endswith("numba/core/caching.py"):
            return True
        tb = tb.tb_next
    return False


def rebuild_damaged_cache(fn: Callable) -> Callable:
    """Decorate an entry point of the engine: a damaged numba cache is removed and the
    call made again, compiling afresh, instead of failing this and every later run.

    Parameters
    ----------
    fn : callable
        A function that calls numba kernels compiled with ``cache=True``.

    Returns
    -------
    callable
    """
    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _from_numba_cache(exc):
                raise
            import numba

            folder = numba.config.CACHE_DIR or os.environ.get("NUMBA_CACHE_DIR")
            log.warning("numba's cache of compiled kernels in %s is damaged (%s: %s); removed it, compiling "
                        "again (about 15 s)", folder, type(exc).__name__, exc)
            if folder:
                shutil.rmtree(folder, ignore_errors=True)
                Path(folder).mkdir(parents=True, exist_ok=True)
            return fn(*args, **kwargs)

    return call


@contextlib.contextmanager
def alongside(fn: Callable, *args, interrupt: Callable[[], None] | None = None,
              deadline_s: float = 60.0) -> Iterator[Future]:
    """Call ``fn(*args)`` on a worker thread while the ``with`` block runs.

    The result (or the error) of ``fn`` comes from the future the block receives. When the
    block raises, ``interrupt`` is called until ``fn`` has returned (an interruption that
    comes before ``fn`` has started its work is lost, so it is repeated), for at most
    ``deadline_s`` seconds; then the block's error goes on and ``fn``'s is dropped.

    Parameters
    ----------
    fn : callable
        The work; it must not touch what the block uses (e.g. a DuckDB connection).
    *args
        Its arguments.
    interrupt : callable, optional
        Stops ``fn`` early (e.g. ``DuckDBPyConnection.interrupt``).
    deadline_s : float, default 60
        Seconds to wait for ``fn`` after the block failed.

    Yields
    ------
    concurrent.futures.Future
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="cluster-alongside")
    try:
        future = pool.submit(fn, *args)
        try:
            yield future
        except BaseException:
            deadline = time.monotonic() + deadline_s
            while not future.done() and time.monotonic() < deadline:
                if interrupt is not None:
                    interrupt()
                wait([future], timeout=0.05)
            if not future.done():
                log.warning("work on a worker thread did not stop within %.0f s of its interruption", deadline_s)
            raise
    finally:
        pool.shutdown(wait=False)  # its one thread ends with its one task


def trim_heap() -> None:
    """Hand freed memory back to the system: the C heap's (glibc's ``malloc_trim``) and
    that of DuckDB's allocator (jemalloc's purge of every arena); elsewhere nothing.

    glibc keeps the memory of freed arrays for later allocations: after the reduction of
    10 M records about 240 MB of it, which the next stages' arrays and queries would add
    to the process's peak. jemalloc, in the DuckDB of Linux wheels, returns a dropped
    table's memory over a second or so (its decay), and while it does the next stage's
    allocations add up to a peak: 1 GB for the records kept at 10 M. The pipeline calls
    this between its heaviest stages and once the kept records are dropped; it takes a
    few milliseconds.

    Returns
    -------
    None
    """
    for release in (_malloc_trim(), _duckdb_purge()):
        if release is not None:
            release()


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name and sys.platform.startswith("linux") else None
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return None if trim is None else functools.partial(trim, 0)


def _duckdb_purge():
    """Purge DuckDB's jemalloc arenas, or None (DuckDB not loaded, or without jemalloc).

    DuckDB offers no statement for this (its ``allocator_flush_threshold`` flushes after
    a query's task, not after ``DROP TABLE``), so jemalloc's own control interface is
    called, as its manual documents it (``arena.<MALLCTL_ARENAS_ALL>.purge``), through
    the symbol DuckDB's build exports; a DuckDB without it is left as it is."""
    # The extension module, under the names DuckDB wheels have given it.
    module = next((sys.modules[m] for m in ("_duckdb", "duckdb._duckdb", "duckdb.duckdb") if m in sys.modules), None)
    return None if module is None else _jemalloc_purge(getattr(module, "__file__", None))


@functools.lru_cache(maxsize=2)
def _jemalloc_purge(library: str | None):
    import ctypes

    try:
        mallctl = ctypes.CDLL(library).duckdb_je_mallctl if library else None
    except (OSError, AttributeError):
        return None
    if mallctl is None:
        return None
    mallctl.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    mallctl.restype = ctypes.c_int
    return functools.partial(mallctl, b"arena.4096.purge", None, None, None, 0)  # 4096: MALLCTL_ARENAS_ALL


def _terminate(signum, frame):  # noqa: ARG001 (signal handler signature)
    raise SystemExit(128 + signum)


def start() -> None:
    """Prepare the process for a command: numba's cache folder, SIGTERM as an exit, and the
    temporary folders of killed commands removed.

    Returns
    -------
    None
    """
    numba_cache_dir()
    if hasattr(signal, "SIGTERM") and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        try:
            signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread (an embedding application): leave it be
            pass
    from cluster._atomic import remove_debris

    removed = remove_debris()
    if removed:
        log.info("removed %d temporary folder(s) of commands that were killed", removed)


def finish(code: int) -> None:
    """End the process with ``code`` once every output is written: streams and log
    handlers flushed, no interpreter teardown.

    Parameters
    ----------
    code : int
        The exit code.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
