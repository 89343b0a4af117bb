"""The user cache: derived data kept between runs (GeoNames places, the basemap, numba's
compiled kernels, the list of temporary folders in use).

Files live in ``<user cache>/innovation-clusters/<kind>/``, where platformdirs puts a
user's caches on each system (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux,
``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows). Their names carry what they
were derived from (a package version, a source's size and time stamp or hash), so a
changed source is derived again; they are written aside and renamed
(:func:`write_atomic`), so a reader never sees half a file; a file
that cannot be read back is derived again and replaced; and a read-only or full home only
means every run derives them again. A base module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["cache_dir", "cached", "replace_file", "write_atomic"]

_APP = "innovation-clusters"


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cached data (not created).

    Parameters
    ----------
    kind : str
        A folder name, e.g. ``"geonames"``.

    Returns
    -------
    pathlib.Path
    """
    import platformdirs

    return Path(platformdirs.user_cache_dir(_APP, appauthor=False)) / kind


def replace_file(path: Path, write: Callable[[str], None]) -> None:
    """Write a file aside and rename it into place, so that a reader never sees half of it
    and a failure leaves the previous file (the one file writer: caches, the demo file).

    Parameters
    ----------
    path : pathlib.Path
        The file; its folder is created.
    write : callable
        Writes the content to the temporary path it is given (in the same folder, with
        the same suffix).

    Returns
    -------
    None

    Raises
    ------
    OSError
        When the folder cannot be written (the temporary file is removed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """A cache file written by :func:`replace_file`; nothing on a read-only or full home.

    Parameters
    ----------
    path : pathlib.Path
        The cache file.
    write : callable
        Writes the content to the temporary path it is given.

    Returns
    -------
    None
    """
    try:
        replace_file(path, write)
    except OSError:  # a read-only or full home: every run derives the data again
        return


def cached(path: Path, *, derive: Callable[[], object], load: Callable[[Path], object],
           dump: Callable[[object, str], None]):
    """The value kept in ``path``, or ``derive()`` written there for the next run.

    Parameters
    ----------
    path : pathlib.Path
        The cache file (its name says what the value was derived from).
    derive : callable
        Computes the value.
    load : callable
        Reads the value from ``path``; returns None for a file that is not a valid value.
    dump : callable
        ``dump(value, tmp_path)`` writes the value.

    Returns
    -------
    object
        The value.
    """
    try:
        value = load(path)
        if value is not None:
            return value
    except Exception:  # not cached yet, damaged, or from another version: derive again
        pass
    value = derive()
    write_atomic(path, lambda tmp: dump(value, tmp))
    return value
