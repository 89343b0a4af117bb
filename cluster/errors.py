"""Exceptions of the package: one place, built-in subclasses.

The command line maps :class:`UserInputError` (and its subclasses) to exit code 2 with
the message alone; anything else is an internal error (exit code 1, traceback logged).

Messages name what to change. Where that is a parameter, the library speaks of the
Python argument (``out_dir``) and the command line of its option (``--out``): a message
is written once with a placeholder such as ``{out}`` (see :data:`PARAMETERS`), ``str()``
of the exception reads as the library's wording and :meth:`UserInputError.for_cli` as
the command line's.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputDataError", "PARAMETERS", "UserInputError"]

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
