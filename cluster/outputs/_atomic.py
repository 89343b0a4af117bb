"""Atomic output directories: a run's files appear all together or not at all.

Everything is written into a hidden temporary directory next to the target
(``.<name>.tmp-<pid>-*``) and swapped into place only when complete: on Linux with one
atomic ``renameat2(RENAME_EXCHANGE)``, elsewhere with two renames and recovery. A failed
or killed run therefore leaves the previous outputs as they were and no half-written file
where a user would look; the next run removes the debris of runs no longer alive. A
directory is only ever replaced when it is empty or holds a ``run.json`` (an output
directory of this tool).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cluster.errors import UserInputError

__all__ = ["atomic_output_dir", "prepare_output_dir", "recover_interrupted"]

log = logging.getLogger(__name__)


def prepare_output_dir(out_dir: Path) -> None:
    """Recover from an interrupted earlier run, then check ``out_dir`` can be (re)placed."""
    recover_interrupted(out_dir)
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(f"Output directory's parent {parent} does not exist. Create it or choose another {{out}}.")
    if not os.access(parent, os.W_OK):
        raise UserInputError(f"Cannot write in {parent}: permission denied. Choose another {{out}}.")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserInputError(f"{{out}} {out_dir} is a file, not a directory. Choose another {{out}}.")
        entries = [p.name for p in out_dir.iterdir()]
        if entries and "run.json" not in entries:
            raise UserInputError(
                f"Refusing to replace {out_dir}: it is not empty and holds no run.json, so it is not "
                "an output directory of this tool. Choose a new or empty directory for {out}.")


def make_temp_dir(out_dir: Path) -> Path:
    """A hidden temporary directory next to ``out_dir``, to be swapped into place when complete."""
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    try:
        # The pid in the name lets a later run tell a live writer from a killed one.
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise UserInputError(f"Cannot write in {parent} ({exc.strerror}). Choose another {{out}}.") from None
    # mkdtemp makes the directory private (0700); outputs get the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


@contextmanager
def atomic_output_dir(out_dir: str | Path):
    """Yield a temporary directory; on success it replaces ``out_dir`` atomically, on any
    error it is removed and ``out_dir`` is left as it was (used by ``sweep`` and ``kdist``,
    which, like ``run``, write a ``run.json`` so a later run may replace the directory)."""
    out_dir = Path(out_dir)
    prepare_output_dir(out_dir)
    tmp = make_temp_dir(out_dir)
    try:
        yield tmp
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE); False if unsupported.

    No Python or library API offers an atomic exchange, so it is called through ctypes;
    other systems fall back to two renames with recovery (see ``recover_interrupted``).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp`` so that a reader (or a kill) sees old or new, never a mix."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    if _exchange(tmp, out_dir):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the previous outputs
        return
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-0"
    os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted(out_dir: Path) -> None:
    """Tidy up after a run that was killed: restore outputs a two-rename swap had moved
    aside, and remove the hidden temporary directories of runs that are no longer alive."""
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{out_dir.name}.old-*"))
    if olds and not out_dir.exists():
        os.rename(olds[-1], out_dir)
        log.warning("restored the previous outputs of an interrupted run into %s", out_dir)
    for debris in list(parent.glob(f".{out_dir.name}.tmp-*")) + list(parent.glob(f".{out_dir.name}.old-*")):
        pid = debris.name.rsplit("-", 2)[-2] if debris.name.count("-") >= 2 else ""
        if pid.isdigit() and _alive(int(pid)):
            continue
        shutil.rmtree(debris, ignore_errors=True)
        log.info("removed %s left by an interrupted run", debris)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
