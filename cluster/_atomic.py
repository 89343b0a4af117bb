"""Writing without losing anything: atomic files and output folders owned by a manifest.

Every command that writes a folder (``run``, ``sweep``, ``kdist``, ``compare``,
``index``) goes through this module, so the rules below hold for all of them (a cache
file is written aside and renamed by :func:`cluster._cache.write_atomic`).

**A folder belongs to the tool only where its manifest says so.** A finished output
folder holds ``manifest.json``: the tool, the command, and every file it wrote with its
size and SHA-256. Writing into an existing folder is allowed only when everything in it
is listed in its manifest and unchanged since (or it is empty); anything else, a file
of the user's, a file the tool wrote but somebody edited, a stray ``run.json``, is
*foreign*, and the command is refused (exit 2) naming the foreign entries before any
work is done. Replacing a run removes exactly the files of the previous manifest whose
checksums still match; an entry that appears in the folder during the run is moved
back into it, never deleted.

**All or nothing.** Files are written into a hidden temporary folder next to the target
(``.<name>.tmp-<pid>-*``) and swapped into place when complete: on Linux with one atomic
``renameat2(RENAME_EXCHANGE)``, elsewhere with two renames and recovery. A failed or
killed run leaves the previous outputs as they were. Each temporary folder is recorded
in the user cache (``pending/``) while it exists, so that the next command of any kind
removes the folders of runs that were killed (:func:`remove_debris`); SIGTERM is turned
into an ordinary exit by :mod:`cluster._runtime`, which removes them at once.

**Inputs are never inside what gets replaced.** An input folder or file at or below the
output folder, or an output folder inside an input folder (whose record files a later
run would read), is refused.

A base module: standard library only.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from cluster.errors import EnvironmentFault, UserInputError, environment_fault

__all__ = ["MANIFEST", "atomic_output_dir", "file_sha256", "foreign_entries", "prepare_output_dir",
           "recover_interrupted", "remove_debris"]

log = logging.getLogger(__name__)

#: The manifest's file name inside an output folder.
MANIFEST = "manifest.json"
_TOOL = "innovation-clusters"
_FORMAT = 1
# Foreign entries named in a refusal; the rest are counted.
_SHOWN = 10


# --------------------------------------------------------------------------------------
# the manifest
# --------------------------------------------------------------------------------------


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks: the manifests' checksums and the input
    fingerprints in ``run.json`` and ``index.json``.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    chunk : int, default 1 MiB
        Bytes read at a time.

    Returns
    -------
    str
        Hexadecimal digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _files_below(folder: Path) -> list[str]:
    """Every file below ``folder`` as a relative POSIX path, sorted (folders implied)."""
    out = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            out.append(Path(root, name).relative_to(folder).as_posix())
    return sorted(out)


def _write_manifest(folder: Path, command: str) -> None:
    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
             for name in _files_below(folder) if name != MANIFEST}
    from cluster._version import __version__

    doc = {"tool": _TOOL, "format": _FORMAT, "command": command, "version": __version__, "files": files}
    (folder / MANIFEST).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")


def _manifest_files(folder: Path) -> dict[str, dict] | None:
    """The files the manifest in ``folder`` lists, or None when it has no valid manifest."""
    try:
        doc = json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("tool") != _TOOL or not isinstance(doc.get("files"), dict):
        return None
    files = {}
    for name, entry in doc["files"].items():
        # Only plain relative paths inside the folder: a manifest cannot claim ../elsewhere.
        parts = Path(name).parts
        if (not isinstance(entry, dict) or Path(name).is_absolute() or ".." in parts or not parts
                or name == MANIFEST):
            return None
        files[name] = entry
    return files


def _owned(folder: Path, name: str, entry: dict) -> bool:
    """``folder/name`` is the file the manifest lists: same size, same checksum."""
    path = folder / name
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size != entry.get("bytes"):
            return False
        return file_sha256(path) == entry.get("sha256")
    except OSError:
        return False


def foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` this tool did not write, or changed since (relative paths).

    Parameters
    ----------
    folder : pathlib.Path
        An existing folder.

    Returns
    -------
    list of str
        Empty when the folder is empty or holds exactly the unchanged files of its
        manifest (and the manifest).
    """
    present = _files_below(folder)
    empty_dirs = [Path(root).relative_to(folder).as_posix() + "/" for root, dirs, files in os.walk(folder)
                  if not dirs and not files and Path(root) != folder]
    files = _manifest_files(folder)
    if files is None:
        return present + empty_dirs
    foreign = [name for name in present
               if name != MANIFEST and not (name in files and _owned(folder, name, files[name]))]
    return foreign + empty_dirs


# --------------------------------------------------------------------------------------
# checks before the work
# --------------------------------------------------------------------------------------


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolved(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return Path(os.path.abspath(path))


def output_target(out_dir: str | Path) -> Path:
    """The folder a command writes: ``out_dir``, or the folder a symbolic link points to.

    A link is kept and its target replaced, as a user who pointed ``--out`` at a link
    expects (replacing the link by a folder would lose where it pointed).
    """
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        target = _resolved(out_dir)
        if not target.parent.is_dir():
            raise UserInputError(f"{{out}} {out_dir} is a symbolic link to {target}, whose folder does not exist. "
                                 "Create it or choose another {out}.")
        return target
    return out_dir


def prepare_output_dir(out_dir: str | Path, *, inputs: Iterable[str | Path] = (), walked: bool = True) -> Path:
    """Check, before any work, that ``out_dir`` can be written or replaced.

    Parameters
    ----------
    out_dir : path-like
        The output folder (a symbolic link is followed, see :func:`output_target`).
    inputs : iterable of path-like
        Files and folders the command reads: none may lie inside ``out_dir``.
    walked : bool, default True
        The input folders are read whole (every record file below them): then
        ``out_dir`` may not lie inside one of them either, where a later run would read
        the outputs as records.

    Returns
    -------
    pathlib.Path
        The folder that will be written.

    Raises
    ------
    UserInputError
        Naming the problem and the fix: a missing or read-only parent, a file in the
        way, the current folder or a mount point, an input inside, foreign entries.
    """
    out_dir = output_target(out_dir)
    recover_interrupted(out_dir)
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise UserInputError(f"Output directory's parent {parent} does not exist. Create it or choose another {{out}}.")
    if not os.access(parent, os.W_OK):
        raise UserInputError(f"Cannot write in {parent}: permission denied. Choose another {{out}}.")
    try:  # as the run will, before the work (root passes os.access in /proc, a read-only mount ...)
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.probe-", dir=parent))
    except OSError as exc:
        raise UserInputError(f"Cannot write in {parent} ({exc.strerror or exc}). Choose another {{out}}.") from None
    real = _resolved(out_dir)
    if _inside(_resolved(Path.cwd()), real):
        raise UserInputError(f"{{out}} {out_dir} is the current folder (or holds it), which a run cannot replace "
                             "without pulling it from under you. Choose a folder inside it, e.g. --out ./out.")
    if out_dir.is_dir() and os.path.ismount(out_dir):
        raise UserInputError(f"{{out}} {out_dir} is a mount point, which cannot be replaced as a whole. "
                             f"Choose a folder inside it, e.g. {out_dir / 'out'}.")
    for item in inputs:
        src = _resolved(Path(item))
        if _inside(src, real) or (walked and Path(item).is_dir() and _inside(real, src)):
            raise UserInputError(f"{{out}} {out_dir} and the input {item} overlap: a command replaces its output "
                                 "folder, so an input may not lie inside it (and the outputs may not land inside "
                                 "an input folder). Choose another {out}.")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserInputError(f"{{out}} {out_dir} is a file, not a directory. Choose another {{out}}.")
        foreign = foreign_entries(out_dir)
        if foreign:
            shown = ", ".join(foreign[:_SHOWN]) + (f" and {len(foreign) - _SHOWN:,} more" if len(foreign) > _SHOWN
                                                  else "")
            legacy = (" (An output folder of an earlier version of this tool has no manifest: delete it yourself "
                      "if you no longer need it.)") if (out_dir / "run.json").exists() and not (
                          out_dir / MANIFEST).exists() else ""
            entries = "entry" if len(foreign) == 1 else "entries"
            raise UserInputError(
                f"Refusing to replace {out_dir}: it holds {len(foreign):,} {entries} "
                f"this tool did not write or that changed since ({shown}), and nothing of yours is ever deleted. "
                f"Move them elsewhere, or choose a new or empty folder for {{out}}.{legacy}")
    return out_dir


# --------------------------------------------------------------------------------------
# the temporary folder and the swap
# --------------------------------------------------------------------------------------


def _pending_dir() -> Path:
    from cluster._cache import cache_dir

    return cache_dir("pending")


def _register(tmp: Path) -> Path | None:
    """Record a temporary folder in the user cache while it exists (best effort)."""
    try:
        folder = _pending_dir()
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=".json", dir=folder)
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "path": str(tmp.resolve())}, fh)
        return Path(name)
    except OSError:
        return None


def _unregister(entry: Path | None) -> None:
    if entry is not None:
        try:
            entry.unlink()
        except OSError:
            pass


def make_temp_dir(out_dir: Path) -> Path:
    """A hidden temporary folder next to ``out_dir``, to be swapped into place when complete."""
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    try:
        # The pid in the name lets a later run tell a live writer from a killed one.
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as exc:
        fault = environment_fault(exc)
        raise fault or EnvironmentFault(f"Cannot write in {parent} ({exc.strerror or exc}): it was writable when "
                                        "the run started. Check the folder and run again.") from None
    # mkdtemp makes the folder private (0700); outputs get the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


@contextmanager
def atomic_output_dir(out_dir: str | Path, *, command: str = "run", inputs: Iterable[str | Path] = (),
                      walked: bool = True):
    """Yield a temporary folder; on success it replaces ``out_dir`` with a manifest of its
    files, on any error (or signal turned into an exit) it is removed and ``out_dir`` is
    left as it was.

    Parameters
    ----------
    out_dir : path-like
        The output folder (checked again by :func:`prepare_output_dir`).
    command : str, default "run"
        The command named in the manifest.
    inputs : iterable of path-like
        What the command reads (see :func:`prepare_output_dir`).
    walked : bool, default True
        See :func:`prepare_output_dir`.

    Yields
    ------
    pathlib.Path
        The temporary folder to write every file into.
    """
    out_dir = prepare_output_dir(out_dir, inputs=inputs, walked=walked)
    tmp = make_temp_dir(out_dir)
    entry = _register(tmp)
    try:
        yield tmp
        _write_manifest(tmp, command)
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _unregister(entry)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two folders (Linux renameat2 RENAME_EXCHANGE); False if unsupported.

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
    """Replace ``out_dir`` by ``tmp`` so that a reader (or a kill) sees old or new, never a mix;
    then remove what the previous manifest lists, and only that."""
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        return
    if _exchange(tmp, out_dir):
        old = tmp  # now holds the previous contents
    else:
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}-0"
        os.rename(out_dir, old)
        os.rename(tmp, out_dir)
    _remove_previous(old, out_dir)


def _remove_previous(old: Path, out_dir: Path) -> None:
    """Delete the previous run's files (its manifest's, unchanged) from ``old``; move anything
    else back into ``out_dir`` (or keep it where it is, said in the log), never delete it."""
    files = _manifest_files(old) or {}
    for name, entry in files.items():
        if _owned(old, name, entry):
            (old / name).unlink()
    if (old / MANIFEST).is_file() and not (old / MANIFEST).is_symlink():
        (old / MANIFEST).unlink()
    for root, dirs, _files in os.walk(old, topdown=False):  # folders the previous files left empty
        for d in dirs:
            try:
                os.rmdir(Path(root, d))
            except OSError:
                pass
    left = sorted(old.iterdir())
    for entry in left:
        target = out_dir / entry.name
        if not target.exists():
            os.rename(entry, target)
            log.warning("%s appeared in %s during the run; it was kept (this tool did not write it)",
                        entry.name, out_dir)
    try:
        old.rmdir()
    except OSError:
        log.warning("kept %s: it holds files this tool did not write", old)


def recover_interrupted(out_dir: Path) -> None:
    """Tidy up after a run that was killed: restore outputs a two-rename swap had moved
    aside, and remove the hidden temporary folders of runs that are no longer alive."""
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{out_dir.name}.old-*"))
    if olds and not out_dir.exists():
        os.rename(olds[-1], out_dir)
        log.warning("restored the previous outputs of an interrupted run into %s", out_dir)
    for debris in parent.glob(f".{out_dir.name}.tmp-*"):
        _remove_if_dead(debris)


def _pid_of(debris: Path) -> int | None:
    head = debris.name.rsplit(".tmp-", 1)[-1].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _remove_if_dead(debris: Path) -> bool:
    pid = _pid_of(debris)
    if pid is None or _alive(pid) or not debris.is_dir():
        return False
    shutil.rmtree(debris, ignore_errors=True)
    log.info("removed %s left by an interrupted run", debris)
    return True


def remove_debris() -> int:
    """Remove the temporary folders of commands that were killed, wherever they wrote.

    Called at the start of every command. Only folders recorded in the user cache's
    ``pending/`` list, whose writer is no longer alive and whose name is one this module
    gives, are removed.

    Returns
    -------
    int
        How many folders were removed.
    """
    removed = 0
    try:
        entries = list(_pending_dir().glob("*.json"))
    except OSError:
        return 0
    for entry in entries:
        try:
            doc = json.loads(entry.read_text("utf-8"))
            pid, path = int(doc["pid"]), Path(doc["path"])
        except (OSError, ValueError, KeyError, TypeError):
            _unregister(entry)
            continue
        if _alive(pid):
            continue
        if ".tmp-" in path.name and _pid_of(path) == pid and path.exists():
            removed += _remove_if_dead(path)
        _unregister(entry)
    return removed


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
