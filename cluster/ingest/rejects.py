"""Rows left out by ``--on-bad-rows skip`` (``[input] on_bad_rows``): counted and listed.

By default (``fail``) a row that breaks a column rule stops the run with every problem
named. Real files come with bad rows (the Crunchbase rounds shipped in ``data/real/``
have 2,923 rounds without coordinates), and GDAL (``-skipfailures``), DuckDB
(``ignore_errors``, reject tables) and pandas (``on_bad_lines``) let the user choose;
with ``skip`` such rows are left out, the rest is used, and this collector keeps:

* ``rows``: the rows left out, exact whatever their number;
* ``per_rule``: rows per ``"column: rule"`` (a row breaking two rules counts in both);
* ``listed``: the first :data:`LISTED` problems as (file, row, column, value, rule),
  written to ``rejects.csv`` among the outputs.

Problems of a whole file or column (a missing column, a column of dates where numbers
belong, an unreadable file) still stop the run: no row of such a file can be used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Problems listed in ``rejects.csv`` (the counts are exact beyond it).
LISTED = 10_000
REJECT_COLUMNS = ("file", "row", "column", "value", "rule")


@dataclass
class Rejects:
    """Collector of the rows a run left out (see the module docstring).

    Attributes
    ----------
    rows : int
        Rows left out.
    per_rule : dict
        ``"column: rule"`` -> rows breaking it.
    listed : list of tuple
        Up to :data:`LISTED` problems ``(file, row, column, value, rule)``.
    per_rule_exact : bool
        Whether ``per_rule`` counts every row (kept in ``run.json``; always True since
        the engine counts the rows per rule itself, one flag per rule of
        :mod:`cluster.ingest._rules`, however many bad rows it fetches to word).
    """

    rows: int = 0
    per_rule: dict = field(default_factory=dict)
    listed: list = field(default_factory=list)
    per_rule_exact: bool = True

    def add(self, file: str, rows, column: str, values, rule: str) -> None:
        """Count the rows breaking ``rule`` in ``column`` and list the first ones.

        Parameters
        ----------
        file : str
            The input as messages name it.
        rows : array of int
            Row numbers as messages give them (CSV line, else 1-based record).
        column : str
            Record column.
        values : array
            The cells as read, one per row.
        rule : str
            What the rule requires (the message's wording).

        Returns
        -------
        None
        """
        rows = np.asarray(rows)
        key = f"{column}: {rule}"
        self.per_rule[key] = self.per_rule.get(key, 0) + len(rows)
        room = LISTED - len(self.listed)
        for r, v in zip(rows[:max(room, 0)], np.asarray(values, dtype=object)[:max(room, 0)]):
            v = v.item() if isinstance(v, np.generic) else v
            self.listed.append((str(file), int(r), column, "" if v is None else str(v), rule))

    def merge(self, other: Rejects) -> None:
        """Add another collector's counts and listed problems to this one."""
        self.rows += other.rows
        self.per_rule_exact &= other.per_rule_exact
        for k, v in other.per_rule.items():
            self.per_rule[k] = self.per_rule.get(k, 0) + v
        self.listed += other.listed[:max(LISTED - len(self.listed), 0)]

    def frame(self) -> pd.DataFrame:
        """The listed problems (``rejects.csv``), in file and row order."""
        df = pd.DataFrame(self.listed, columns=list(REJECT_COLUMNS))
        return df.sort_values(["file", "row", "column"], kind="stable").reset_index(drop=True)

    def info(self) -> dict:
        """What ``run.json`` says: rows, rows per rule, problems listed."""
        return {"rows": int(self.rows), "per_rule": dict(sorted(self.per_rule.items())),
                "per_rule_exact": self.per_rule_exact, "listed": len(self.listed), "listed_max": LISTED}

    def summary(self) -> str:
        """One line for the log and the run's warnings."""
        rules = "; ".join(f"{k}: {v:,}" for k, v in sorted(self.per_rule.items(), key=lambda kv: -kv[1]))
        return (f"{self.rows:,} row(s) broke a rule and were left out (on_bad_rows = skip): {rules}. "
                "They are listed in rejects.csv")
