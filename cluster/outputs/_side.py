"""One output made in a second process while this one writes the others.

Drawing ``map.png`` (matplotlib, about a second) holds the GIL, so a thread would not
overlap it with writing the GeoPackage, GeoParquet and the tables; a process does. On
Linux the process is forked when the job is handed over: it starts in milliseconds with
everything already imported and loaded, shares the run's data (nothing is pickled on the
way in), and sends back only the job's result or exception. It dies with its parent
(``PR_SET_PDEATHSIG``), so a killed run leaves no process behind. Elsewhere (macOS and
Windows, where forking is unsafe or missing), with one CPU, or with
``INNOVATION_CLUSTERS_SIDE_PROCESS=0``, the job runs in this process when handed over.
The outputs are the same either way.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Set to ``0`` to make every output in the calling process (e.g. under a debugger).
ENV_SWITCH = "INNOVATION_CLUSTERS_SIDE_PROCESS"


def side_process_available() -> bool:
    """Whether :func:`submit` forks (Linux, two CPUs or more, not switched off)."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return sys.platform.startswith("linux") and cpus > 1


def submit(fn: Callable, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` in a forked process where :func:`side_process_available`,
    else here and now.

    Returns
    -------
    context manager with ``.result()``
        ``.result()`` waits for the job and returns its value or raises its exception
        (with the side process's traceback as a note); call it before using what the job
        writes. A job whose process dies without an answer is run again here. Leaving the
        ``with`` block without the result (an error in this process) stops the job, so it
        writes nothing more.

    Examples
    --------
    >>> with submit(pow, 2, 10) as job:
    ...     job.result()
    1024
    """
    if not side_process_available():
        return _Done(fn, args, kwargs)
    return _Forked(fn, args, kwargs)


class _Done:
    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        self._value = fn(*args, **kwargs)

    def result(self):
        return self._value

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


class _Forked:
    def __init__(self, fn: Callable, args: tuple, kwargs: dict):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._call = (fn, args, kwargs)
        self._answer, sender = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_run, args=(os.getpid(), sender, fn, args, kwargs), name="side-output",
                                    daemon=True)
        self._process.start()
        sender.close()

    def result(self):
        try:
            ok, value, trace = self._answer.recv()
        except EOFError:  # died without an answer (killed, out of memory): do it here
            self._process.join()
            log.debug("side process ended with code %s without an answer; making the output here",
                      self._process.exitcode)
            fn, args, kwargs = self._call
            return fn(*args, **kwargs)
        finally:
            self._answer.close()
        self._process.join()
        if ok:
            return value
        value.add_note(f"(raised in the side process; its traceback:)\n{trace}")
        raise value

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self._process.is_alive():  # left without the result: stop the job
            self._process.kill()
        self._process.join()
        self._answer.close()


def _run(parent: int, sender, fn: Callable, args: tuple, kwargs: dict) -> None:
    """The side process: do the job, send back ``(ok, value or exception, traceback)``."""
    _die_with(parent)
    try:
        answer = (True, fn(*args, **kwargs), "")
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
        answer = (False, exc, traceback.format_exc())
    try:
        sender.send(answer)
    except Exception:  # an exception or value that cannot be pickled: its text
        sender.send((False, RuntimeError(repr(answer[1])), answer[2]))
    sender.close()


def _die_with(parent: int) -> None:
    """Ask Linux to end this process when its parent (pid ``parent``) ends: a killed run."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: the job still runs
        pass
    if os.getppid() != parent:  # the parent ended before the request was made
        os._exit(1)
