"""Progress bars for the long waits (tqdm), shown only to someone watching.

A bar appears when progress is on and someone is watching: standard error is a terminal,
or the code runs in a Jupyter kernel (a notebook; a widget bar through ``tqdm.auto``
when ipywidgets is installed, the ``[notebook]`` extra, else a text bar). A run in a
pipe, a log file or CI prints none. The command line turns progress off with ``-q``
(:func:`set_enabled`), the API with ``progress=False`` (:func:`setting`);
``set_enabled(True)`` forces bars even without a terminal, and tqdm's own
``TQDM_DISABLE=1`` silences them all. Bars show only for waits lasting over a second
(tqdm's ``delay``) and are cleared when done, so a fast run looks as before.

Where a user waits: the scan of the records (DuckDB's own bar), the boundaries, the
names, writing the outputs, the bootstrap replicates, the sweep's combinations, the
index's Monte Carlo, and the engine's one-time compilation (:func:`waiting`: a bar with
no total, showing the time elapsed).

A base module: it imports only the standard library and (lazily) tqdm, so every layer
may use it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager

__all__ = ["bar", "enabled", "progress", "set_enabled", "setting", "waiting"]

# None: automatic (on when standard error is a terminal).
_enabled: bool | None = None
# Seconds a loop must last before its bar appears.
DELAY_S = 1.0


def set_enabled(value: bool | None) -> None:
    """Turn progress bars on (True), off (False) or back to automatic (None).

    Parameters
    ----------
    value : bool or None
        None: on when standard error is a terminal.

    Returns
    -------
    None
    """
    global _enabled
    _enabled = value


def enabled() -> bool:
    """Whether bars are drawn now (see :func:`set_enabled`).

    Returns
    -------
    bool
    """
    if _enabled is not None:
        return _enabled
    if in_notebook():
        return True
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


@contextmanager
def setting(value: bool | None):
    """Progress on (True), off (False) or as it was (None) inside a ``with`` block.

    Parameters
    ----------
    value : bool or None
        The API's ``progress=`` argument; None leaves the setting alone.

    Yields
    ------
    None
    """
    global _enabled
    before = _enabled
    if value is not None:
        _enabled = bool(value)
    try:
        yield
    finally:
        _enabled = before


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's ZMQ shell).

    Returns
    -------
    bool
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython without a shell
        return False
    return type(shell).__name__ == "ZMQInteractiveShell"


def _tqdm():
    """tqdm's class for where the output goes: a widget in a notebook (when ipywidgets is
    installed: ``tqdm.auto``), text on standard error elsewhere."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401  (tqdm.auto would warn and fall back without it)
            from tqdm.auto import tqdm

            return tqdm
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm


def progress(iterable: Iterable, *, desc: str, total: int | None = None, unit: str = "it") -> Iterable:
    """``iterable``, with a progress bar on standard error when :func:`enabled`.

    Parameters
    ----------
    iterable : iterable
        What the loop goes over.
    desc : str
        What is being done (the bar's label), e.g. ``"boundaries"``.
    total : int, optional
        Number of items (default ``len(iterable)`` when it has one).
    unit : str, default "it"
        Name of one item, e.g. ``"cluster"``.

    Returns
    -------
    iterable
        ``iterable`` itself when bars are off, else a tqdm wrapper yielding the same items.
    """
    if not enabled():
        return iterable
    tqdm = _tqdm()
    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, file=sys.stderr, delay=DELAY_S,
                dynamic_ncols=True)


class _NoBar:
    """What :func:`bar` returns when bars are off: accepts the calls, draws nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def bar(*, desc: str, total: int, unit: str = "it"):
    """A progress bar advanced by hand (``update()``), for steps that are not one loop.

    Parameters
    ----------
    desc : str
        What is being done.
    total : int
        Number of steps.
    unit : str, default "it"
        Name of one step.

    Returns
    -------
    context manager
        With ``update(n=1)``, ``set_postfix_str(text)`` and ``close()``; draws nothing
        when bars are off.
    """
    if not enabled():
        return _NoBar()
    tqdm = _tqdm()
    return tqdm(desc=desc, total=total, unit=unit, leave=False, file=sys.stderr, delay=DELAY_S,
                dynamic_ncols=True)



@contextmanager
def waiting(desc: str, *, every_s: float = 0.5):
    """A bar with no total for a wait that is not a loop (e.g. numba compiling): it shows
    ``desc`` and the seconds elapsed, refreshed by a thread, once the wait passes the
    delay; cleared at the end.

    Parameters
    ----------
    desc : str
        What is being waited for.
    every_s : float, default 0.5
        Refresh interval in seconds.

    Yields
    ------
    None
    """
    if not enabled():
        yield
        return
    tqdm = _tqdm()
    shown = tqdm(desc=desc, total=None, leave=False, file=sys.stderr, delay=DELAY_S,
                 bar_format="{desc}: {elapsed}", dynamic_ncols=True)
    done = threading.Event()
    start = time.monotonic()

    def tick():
        while not done.wait(every_s):
            if time.monotonic() - start >= DELAY_S:  # refresh() itself ignores the delay
                shown.refresh()

    thread = threading.Thread(target=tick, name="progress-waiting", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        shown.close()
