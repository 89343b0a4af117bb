"""Progress bars for the long loops (tqdm), shown only to someone watching.

A bar appears when progress is on and standard error is a terminal: a run in a pipe, a
log file, CI or a notebook prints none. The command line turns progress off with
``-q`` (:func:`set_enabled`); ``set_enabled(True)`` forces bars even without a
terminal. Bars show only for loops lasting over a second (tqdm's ``delay``) and are
cleared when done, so a fast run looks as before.

A base module: it imports only the standard library and (lazily) tqdm, so every layer
may use it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

__all__ = ["bar", "enabled", "progress", "set_enabled"]

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
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


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
    from tqdm import tqdm

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
    from tqdm import tqdm

    return tqdm(desc=desc, total=total, unit=unit, leave=False, file=sys.stderr, delay=DELAY_S,
                dynamic_ncols=True)

