"""Exceptions of the package: one place, built-in subclasses.

The CLI maps :class:`UserInputError` (and its subclasses) to exit code 2 with the
message alone; anything else is an internal error (exit code 1, traceback logged).
"""

from __future__ import annotations


class UserInputError(ValueError):
    """Something the user gave us is wrong: a file, a column, a value or an option."""


class ConfigError(UserInputError):
    """The configuration (TOML file or command-line override) is invalid."""


class InputDataError(UserInputError):
    """One or more input records are invalid; the message lists every problem found."""

    def __init__(self, problems: list[str], *, limit: int = 50):
        self.problems = list(problems)
        shown = self.problems[:limit]
        more = len(self.problems) - len(shown)
        lines = [f"{len(self.problems):,} problem(s) in the input:"]
        lines += [f"  - {p}" for p in shown]
        if more:
            lines.append(f"  ... and {more:,} more of the same kinds")
        super().__init__("\n".join(lines))
