"""Exceptions of the package: one place, built-in subclasses.

The command line maps :class:`UserInputError` (and its subclasses) to exit code 2 with
the message alone; faults of the machine rather than of the input or of the code (a full
disk, a read-only folder, a path too long, a scheduler that does not answer: see
:func:`environment_fault`) to exit code 3 with what happened and what to do; anything
else is an internal error (exit code 1, traceback logged).

Messages name what to change. Where that is a parameter, the library speaks of the
Python argument (``out_dir``) and the command line of its option (``--out``): a message
is written once with a placeholder such as ``{out}`` (see :data:`PARAMETERS`), ``str()``
of the exception reads as the library's wording and :meth:`UserInputError.for_cli` as
the command line's.
"""

from __future__ import annotations

import errno

__all__ = ["ConfigError", "EXIT_ENVIRONMENT", "EnvironmentFault", "InputDataError", "PARAMETERS", "UserInputError",
           "environment_fault"]

#: Exit code of a fault of the environment (2 is bad input, 1 a bug).
EXIT_ENVIRONMENT = 3

#: Placeholder -> (wording in the Python API, wording on the command line).
PARAMETERS: dict[str, tuple[str, str]] = {
    "{config}": ("`config`", "--config"),
    "{input}": ("`data`", "--input"),
    "{out}": ("`out_dir`", "--out"),
    "{min_weight}": ("`min_weight`", "--min-weight"),
    "{min_share}": ("`min_share`", "--min-share"),
    "{year_window}": ("`year_start`/`year_end`", "--year-start/--year-end"),
    "{layer}": ("`layer`", "--layer"),
    "{on_bad_rows}": ("`on_bad_rows`", "--on-bad-rows"),
    "{encoding}": ("`encoding`", "--encoding"),
    "{force}": ("`force=True`", "--force"),
    "{previous}": ("`previous`", "--previous"),
    "{scheduler}": ("`scheduler` ([engine] scheduler)", "--scheduler"),
    # Configuration keys that are also command-line options: the option, on the command line only.
    "{--eps-km}": ("", " (--eps-km)"),
    "{--top}": ("", " (--top)"),
    "{--bootstrap}": ("", " (--bootstrap)"),
    "{--rank-range-eps}": ("", " (--rank-range-eps)"),
    "{--rank-range-methods}": ("", " (--rank-range-methods)"),
    "{--memory-limit}": ("", " (--memory-limit)"),
    "{--scheduler-timeout}": ("", " (--scheduler-timeout)"),
    "{--year-start}": ("", " (--year-start)"),
    "{--year-end}": ("", " (--year-end)"),
}


def _render(template: str, cli: bool) -> str:
    for token, words in PARAMETERS.items():
        template = template.replace(token, words[cli])
    return template


class UserInputError(ValueError):
    """Something the user gave us is wrong: a file, a column, a value or a parameter.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it; may hold the placeholders of :data:`PARAMETERS`.
    """

    def __init__(self, message: str = ""):
        self.template = str(message)
        super().__init__(_render(self.template, cli=False))

    def for_cli(self) -> str:
        """The message worded for the command line (options instead of arguments)."""
        return _render(self.template, cli=True)


class ConfigError(UserInputError):
    """The configuration (TOML file, mapping, keyword or command-line override) is invalid."""


class InputDataError(UserInputError):
    """One or more input records are invalid; the message lists every problem found.

    Parameters
    ----------
    problems : list of str
        One line per problem (file, row, column, value and fix).
    rows : int, optional
        How many distinct rows have a problem (the headline counts rows, not lines);
        ``None`` when the problems are not about rows.
    limit : int, default 50
        Problems shown; the rest are counted.
    """

    def __init__(self, problems: list[str], *, rows: int | None = None, limit: int = 50):
        self.problems = list(problems)
        self.rows = rows
        shown = self.problems[:limit]
        more = len(self.problems) - len(shown)
        if rows:
            lines = [f"{rows:,} row(s) with problems in the input:"]
        else:
            lines = [f"{len(self.problems):,} problem(s) in the input:"]
        lines += [f"  - {p}" for p in shown]
        if more:
            lines.append(f"  ... and {more:,} more of the same kinds")
        super().__init__("\n".join(lines))


class EnvironmentFault(RuntimeError):
    """The machine, not the input or the code, stopped the command: a full disk, a folder
    that cannot be written, a service that does not answer. The message says what
    happened and what to do; the command line exits with :data:`EXIT_ENVIRONMENT`.

    Parameters
    ----------
    message : str
        What happened and what to do; may hold the placeholders of :data:`PARAMETERS`.
    """

    def __init__(self, message: str = ""):
        self.template = str(message)
        super().__init__(_render(self.template, cli=False))

    def for_cli(self) -> str:
        """The message worded for the command line (options instead of arguments)."""
        return _render(self.template, cli=True)


# errno -> what happened and what to do.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only", errno.ENAMETOOLONG: "a path is too long",
    errno.EBUSY: "a file or folder is busy (in use, or a mount point)", errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files on the system", errno.EIO: "an input/output error of the device",
    errno.EXDEV: "a rename crossed file systems", errno.ELOOP: "too many levels of symbolic links",
}
_ADVICE = {
    errno.ENOSPC: "Free some space (or set [engine] temp_directory / --out on a larger disk) and run again; "
                  "the previous outputs are intact.",
    errno.EDQUOT: "Free some space within your quota and run again; the previous outputs are intact.",
    errno.ENAMETOOLONG: "Use a shorter path.",
    errno.EMFILE: "Raise the limit (ulimit -n) or read fewer files at once.",
}


def environment_fault(exc: BaseException) -> EnvironmentFault | None:
    """The :class:`EnvironmentFault` an exception stands for, or None when it is not one.

    Parameters
    ----------
    exc : BaseException
        Any exception (an ``OSError`` with one of the errnos above, a ``MemoryError``,
        or an ``EnvironmentFault``).

    Returns
    -------
    EnvironmentFault or None
    """
    if isinstance(exc, EnvironmentFault):
        return exc
    if isinstance(exc, MemoryError):
        return EnvironmentFault("out of memory. Lower [engine] memory_limit or threads, close other programs, "
                                "or run on a larger machine; the previous outputs are intact.")
    if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
        name = str(exc.filename) if exc.filename else ""
        where = f" ({name if len(name) <= 160 else name[:60] + ' ... ' + name[-60:]})" if name else ""
        advice = _ADVICE.get(exc.errno, "Check the folder's permissions and the paths given, then run again.")
        return EnvironmentFault(f"{_ENVIRONMENT_ERRNOS[exc.errno]}{where}: {exc.strerror or exc}. {advice}")
    # Libraries wrap the system's error in their own (DuckDB's IOException, pyogrio's
    # DataSourceError): recognise it by its words.
    text = str(exc)
    for code, words in ((errno.ENOSPC, "No space left on device"), (errno.ENOSPC, "database or disk is full"),
                        (errno.EROFS, "Read-only file system"),
                        (errno.ENAMETOOLONG, "File name too long"), (errno.EDQUOT, "Disk quota exceeded")):
        if words in text:
            return EnvironmentFault(f"{_ENVIRONMENT_ERRNOS[code]}: {text.splitlines()[0][:300]}. "
                                    f"{_ADVICE.get(code, 'Check the folder and run again.')}")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return environment_fault(cause)
    return None
