"""The column rules of a records table, written once.

Every rule a record must keep (a known metric, finite coordinates in range, a weight
that is a finite number > 0, a four-digit year, a two-letter country, a document or a
weight per row) is one entry of :data:`RULES`: its name, the column messages name, what
it requires (the words of the message, of ``rejects.csv`` and of ``run.json``'s counts),
the fix, and the check a good row passes, written in a tiny expression form. That form
is rendered two ways:

* :func:`to_numpy`: a vectorised check over the cells of a pandas frame
  (:mod:`cluster.ingest.read` validates in-memory frames and the suspect rows of files);
* :func:`to_sql`: a DuckDB boolean expression (:mod:`cluster.ingest.engine` checks every
  row of a scan with it, on this machine and on Dask workers).

So the pandas checks and the SQL predicates cannot drift apart: there is one source for
both, and ``tests/test_rules.py`` runs each rule's own counter-example through every path
and both renderings over a table of edge values (NaN, infinities, -0.0, bounds, blanks).

The cells
---------
Rules see a record's cells through four leaves, defined alike for both renderings:

* ``num(col)``: the cell as a number (missing, blank or not a number: NaN / NULL);
* ``text(col)``: the cell as text without surrounding spaces (' ', not tabs or other
  white space; empty: NA / NULL);
* ``empty(col)``: the cell is missing or empty (a NaN in a numeric column);
* ``blank(col)``: empty, or one of the spellings of a missing value pandas writes
  (:data:`BLANK_TEXTS`).

A column a table lacks has every cell missing. In SQL a comparison with NULL is NULL;
each rule is written so that its check, with NULL read as false, is the pandas result
(comparisons of numbers behind ``finite``): the edge-value test holds both to it.

Whole-table rules (required columns, a ``doc_id`` or ``weight`` column, columns of
numbers that hold dates or booleans) are the column specification :data:`COLUMNS` and
:func:`non_numeric_problem`, also used by both readers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- columns

#: Columns every records table has.
REQUIRED = ("metric", "lat", "lon")
#: Columns a records table may have.
OPTIONAL = ("doc_id", "weight", "year", "country", "field", "institution")
#: Every record column, in the order messages list them.
COLUMNS = REQUIRED + OPTIONAL
#: Columns profiled per cluster (``profiles.csv``): counted from the records' one pass.
PROFILE_COLUMNS = ("field", "institution")
#: Columns whose cells are numbers (a column of dates, booleans or lists there is refused).
NUMERIC = ("lat", "lon", "weight", "year")
#: Text cells that mean "no value" (as pandas writes missing values).
BLANK_TEXTS = ("nan", "NaN", "None", "<NA>")
#: A country code, ISO 3166-1 alpha-2, in either case. Matched on the cell as written, not
#: upper-cased first: Python and DuckDB upper-case some letters differently ('ß' is 'SS' in
#: Python, 'ẞ' in DuckDB), and the pandas check once accepted what the SQL refused.
COUNTRY_PATTERN = "[A-Za-z]{2}"


def non_numeric_problem(column: str, kind: str) -> str:
    """The problem of a numeric column holding something else (``kind``: "dates or times" ...).

    Parameters
    ----------
    column : str
        One of :data:`NUMERIC`.
    kind : str
        What the column holds.

    Returns
    -------
    str
        The message, without the file.
    """
    unit = "decimal degrees (WGS84)." if column in ("lat", "lon") else "numbers."
    return f"column '{column}' holds {kind}, not numbers. Give {unit}"


# --------------------------------------------------------------------------- expressions

@dataclass(frozen=True)
class Expr:
    """A node of a rule's check: ``op`` and its arguments (expressions or constants).

    Built with the leaf functions (:func:`num`, :func:`text`, :func:`empty`,
    :func:`blank`), the functions below and the operators ``& | ~ < <= > >=``.
    """

    op: str
    args: tuple = ()

    def __and__(self, other: Expr) -> Expr:
        return Expr("and", (self, other))

    def __or__(self, other: Expr) -> Expr:
        return Expr("or", (self, other))

    def __invert__(self) -> Expr:
        return Expr("not", (self,))

    def __lt__(self, other) -> Expr:
        return Expr("<", (self, _lit(other)))

    def __le__(self, other) -> Expr:
        return Expr("<=", (self, _lit(other)))

    def __gt__(self, other) -> Expr:
        return Expr(">", (self, _lit(other)))

    def __ge__(self, other) -> Expr:
        return Expr(">=", (self, _lit(other)))

    def __sub__(self, other) -> Expr:
        return Expr("-", (self, _lit(other)))


def _lit(value) -> Expr:
    return value if isinstance(value, Expr) else Expr("lit", (value,))


def num(col: str) -> Expr:
    """The cell as a number (NaN / NULL when missing, blank or not a number)."""
    return Expr("num", (col,))


def text(col: str) -> Expr:
    """The cell as text without surrounding spaces (None / NULL when empty)."""
    return Expr("text", (col,))


def empty(col: str) -> Expr:
    """The cell is missing or empty (NaN in a numeric column)."""
    return Expr("empty", (col,))


def blank(col: str) -> Expr:
    """The cell is empty or a spelling of a missing value (:data:`BLANK_TEXTS`)."""
    return Expr("blank", (col,))


def finite(x: Expr) -> Expr:
    """A number that is neither missing nor NaN nor infinite."""
    return Expr("finite", (x,))


def absolute(x: Expr) -> Expr:
    return Expr("abs", (x,))


def whole(x: Expr) -> Expr:
    """A finite number without a fractional part (use behind :func:`finite`)."""
    return Expr("whole", (x,))


def lower(x: Expr) -> Expr:
    return Expr("lower", (x,))


def upper(x: Expr) -> Expr:
    return Expr("upper", (x,))


def one_of(x: Expr, param: str) -> Expr:
    """Text among the names the run gives as ``param`` (e.g. ``metrics``)."""
    return Expr("in", (x, param))


def matches(x: Expr, pattern: str) -> Expr:
    """Text matching a regular expression as a whole (the subset DuckDB and Python share)."""
    return Expr("match", (x, pattern))


def when(cond: Expr, then: Expr, otherwise=None) -> Expr:
    """``then`` where ``cond`` holds, else ``otherwise`` (default missing: NULL, NaN or None)."""
    return Expr("when", (cond, then, _lit(otherwise)))


def leaves(expr: Expr) -> set[tuple[str, str]]:
    """The ``(kind, column)`` cells an expression reads."""
    if expr.op in ("num", "text", "empty", "blank"):
        return {(expr.op, expr.args[0])}
    return set().union(*(leaves(a) for a in expr.args if isinstance(a, Expr)))


def to_sql(expr: Expr, cell: Callable[[str, str], str], params: Mapping[str, Sequence[str]] | None = None,
           bound: Mapping[Expr, str] | None = None) -> str:
    """A DuckDB boolean (or value) expression.

    Parameters
    ----------
    expr : Expr
        The expression.
    cell : callable
        ``cell(kind, column)``: the SQL of a leaf (``kind`` one of num, text, empty, blank).
    params : mapping, optional
        Values of the run (``metrics``).
    bound : mapping, optional
        Sub-expressions already computed by the query, as their SQL name (e.g. the
        normalised ``metric`` column): used instead of computing them again.

    Returns
    -------
    str
        NULL where a cell it compares is NULL; callers read NULL as false (coalesce).
    """
    params, bound = params or {}, bound or {}

    def go(e):
        if not isinstance(e, Expr):
            return _sql_literal(e)
        if e in bound:
            return bound[e]
        op, a = e.op, e.args
        if op in ("num", "text", "empty", "blank"):
            return cell(op, a[0])
        if op == "lit":
            return _sql_literal(a[0])
        if op == "and":
            return f"({go(a[0])} AND {go(a[1])})"
        if op == "or":
            return f"({go(a[0])} OR {go(a[1])})"
        if op == "not":
            return f"(NOT {go(a[0])})"
        if op in ("<", "<=", ">", ">=", "-"):
            return f"({go(a[0])} {op} {go(a[1])})"
        if op == "when":
            otherwise = "" if a[2].op == "lit" and a[2].args[0] is None else f" ELSE {go(a[2])}"
            return f"CASE WHEN {go(a[0])} THEN {go(a[1])}{otherwise} END"
        if op == "finite":
            return f"isfinite({go(a[0])})"
        if op == "abs":
            return f"abs({go(a[0])})"
        if op == "whole":
            x = go(a[0])
            return f"({x} = floor({x}))"
        if op in ("lower", "upper"):
            return f"{op}({go(a[0])})"
        if op == "in":
            return f"({go(a[0])} IN ({', '.join(map(_sql_literal, params[a[1]]))}))"
        if op == "match":
            return f"regexp_full_match({go(a[0])}, {_sql_literal(a[1])})"
        raise ValueError(f"unknown operation {op!r}")

    return go(expr)


def _sql_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def to_numpy(expr: Expr, cell: Callable[[str, str], np.ndarray | pd.Series],
             params: Mapping[str, Sequence[str]] | None = None) -> np.ndarray | pd.Series:
    """A vectorised evaluation over the cells of a frame.

    Parameters
    ----------
    expr : Expr
        The expression.
    cell : callable
        ``cell(kind, column)``: the values of a leaf: float array for num, a pandas text
        Series (missing: NA) for text, bool arrays for empty and blank; see :class:`FrameCells`.
    params : mapping, optional
        Values of the run (``metrics``).

    Returns
    -------
    ndarray or Series
        One value per row: bool or float arrays (comparisons with NaN are false), text
        as a pandas Series (its string methods are vectorised, numpy's object arrays not).
    """
    params = params or {}

    def go(e):
        op, a = e.op, e.args
        if op in ("num", "text", "empty", "blank"):
            return cell(op, a[0])
        if op == "lit":
            return a[0]
        if op == "and":
            return go(a[0]) & go(a[1])
        if op == "or":
            return go(a[0]) | go(a[1])
        if op == "not":
            return ~go(a[0])
        if op in ("<", "<=", ">", ">="):
            x, y = go(a[0]), go(a[1])
            with np.errstate(invalid="ignore"):
                return {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op](x, y)
        if op == "-":
            return go(a[0]) - go(a[1])
        if op == "when":
            cond, then, otherwise = go(a[0]), go(a[1]), go(a[2])
            if isinstance(then, pd.Series):  # text: missing is NA
                return then.where(cond) if otherwise is None else then.where(cond, otherwise)
            return np.where(cond, then, np.nan if otherwise is None else otherwise)
        if op == "finite":
            return np.isfinite(go(a[0]))
        if op == "abs":
            return np.abs(go(a[0]))
        if op == "whole":
            with np.errstate(invalid="ignore"):
                return np.mod(go(a[0]), 1) == 0
        if op in ("lower", "upper"):
            return getattr(_texts(go(a[0])).str, op)()
        if op == "in":
            return _texts(go(a[0])).isin(list(params[a[1]])).to_numpy(dtype=bool)
        if op == "match":
            return _texts(go(a[0])).str.fullmatch(a[1]).fillna(False).to_numpy(dtype=bool)
        raise ValueError(f"unknown operation {op!r}")

    return go(expr)


#: Text cells as Arrow strings: Arrow's string kernels (utf8proc) change case as DuckDB
#: does ('İ' lower-cases to 'i' in both, to 'i̇' in Python; 'ß' upper-cases to 'ẞ', to
#: 'SS' in Python), and are vectorised.
_STR = pd.StringDtype("pyarrow", na_value=np.nan)


def _texts(values) -> pd.Series:
    """Text values as a pandas Series of strings (NA where missing)."""
    if isinstance(values, pd.Series):
        return values
    return pd.Series(np.asarray(values, dtype=object), dtype=_STR)


# --------------------------------------------------------------------------- the rules

@dataclass(frozen=True)
class Rule:
    """One rule a record's cells keep.

    Attributes
    ----------
    name : str
        Its identifier (tests, code).
    column : str
        The column messages and ``rejects.csv`` name.
    what : str
        What it requires, in the words of messages, ``rejects.csv``'s ``rule`` and
        ``run.json``'s ``per_rule`` (``"column: what"``).
    fix : str
        How to fix a row; ``{metrics}`` is the run's metric names.
    check : Expr
        True on a row that keeps the rule.
    after : tuple of str
        Rules checked first: this one judges only rows that keep them (a missing
        latitude is not also out of range).
    key : bool
        The engine checks it once per group of the reduction (a grouping key's rule),
        not per row.
    shows : Expr or None
        The value messages show (None: the cell as read).
    column_if_absent : str
        The column named when ``column`` is not in the table.
    hint : str
        A fix chosen from the whole table's bad rows (:data:`HINTS`) instead of ``fix``.
    example : dict
        Cells (as CSV text) of a row that breaks this rule and no other, over :data:`GOOD_ROW`.
    """

    name: str
    column: str
    what: str
    fix: str
    check: Expr
    after: tuple = ()
    key: bool = False
    shows: Expr | None = None
    column_if_absent: str = ""
    hint: str = ""
    example: dict = field(default_factory=dict)

    @property
    def counted_as(self) -> str:
        """The rule's key in ``run.json``'s ``per_rule`` when it names ``column``."""
        return f"{self.column}: {self.what}"

    def named_column(self, columns) -> str:
        """The column messages name, given the table's record ``columns``."""
        return self.column if self.column in columns or not self.column_if_absent else self.column_if_absent

    def counted_in(self, columns) -> str:
        """The rule's key in ``run.json``'s ``per_rule`` (``"column: what"``) for a table
        with these record ``columns``."""
        return f"{self.named_column(columns)}: {self.what}"


#: The normalised metric (lower case) and the weight a row carries (None: counted by document).
METRIC = lower(text("metric"))
WEIGHT_OK = finite(num("weight")) & (num("weight") > 0)

#: A row every rule accepts; each rule's ``example`` changes some of its cells.
GOOD_ROW = {"metric": "patents", "doc_id": "A", "lat": "48.1", "lon": "11.5", "weight": "", "year": "2020",
            "country": "DE", "field": "", "institution": ""}

_COORD_FIX = "Latitude must be in [-90, 90] and longitude in [-180, 360] (0–360 is wrapped)."
_DEGREES_FIX = "Give decimal degrees (WGS84), e.g. 48.137; drop rows that are not geocoded."

#: The rules, in the order messages list a table's problems.
RULES: tuple[Rule, ...] = (
    Rule("metric_known", "metric", "unknown metric",
         "Use one of: {metrics} (metrics come from the config's [metrics.*] tables).",
         one_of(METRIC, "metrics"), key=True, shows=METRIC, example={"metric": "patent"}),
    Rule("lat_number", "lat", "missing or non-numeric coordinate", _DEGREES_FIX,
         finite(num("lat")), example={"lat": ""}),
    Rule("lon_number", "lon", "missing or non-numeric coordinate", _DEGREES_FIX,
         finite(num("lon")), example={"lon": "east"}),
    Rule("lat_range", "lat", "latitude outside [-90, 90]", _COORD_FIX,
         absolute(num("lat")) <= 90, after=("lat_number", "lon_number"), hint="coordinates",
         example={"lat": "95"}),
    Rule("lon_range", "lon", "longitude outside [-180, 360]", _COORD_FIX,
         (num("lon") >= -180) & (num("lon") <= 360), after=("lat_number", "lon_number", "lat_range"),
         hint="coordinates", example={"lon": "400"}),
    # Only an empty cell means "count by document"; a literal NaN is a broken weight.
    Rule("weight_positive", "weight", "weight must be a finite number > 0",
         "Remove rows with no activity, or leave the weight empty to count documents fractionally.",
         empty("weight") | WEIGHT_OK, example={"weight": "0"}),
    Rule("doc_or_weight", "doc_id", "row has neither a doc_id nor a weight",
         "Give each record the identifier of its document, or a weight.",
         ~blank("doc_id") | (~empty("weight") & WEIGHT_OK), shows=Expr("lit", ("",)),
         column_if_absent="weight", example={"doc_id": ""}),
    Rule("year_integer", "year", "year must be a four-digit integer", "E.g. 2021.",
         blank("year") | (finite(num("year")) & whole(num("year")) & (num("year") >= 1000)
                          & (num("year") <= 9999)), example={"year": "20"}),
    Rule("country_code", "country", "country must be an ISO 3166-1 alpha-2 code",
         "E.g. DE, US, CN; leave it empty when unknown.",
         blank("country") | matches(text("country"), COUNTRY_PATTERN), key=True,
         example={"country": "Germany"}),
)
BY_NAME = {r.name: r for r in RULES}

#: The record columns as the readers return them, from the cells of a table: metric in
#: lower case, longitudes wrapped to [-180, 180), a weight only where it is valid (else
#: counted by document), a valid year, the country in upper case, blanks missing.
NORMALISED: dict[str, Expr] = {
    "metric": METRIC,
    "doc_id": when(~blank("doc_id"), text("doc_id")),
    "lat": num("lat"),
    "lon": when(num("lon") >= 180, num("lon") - 360, num("lon")),
    "weight": when(WEIGHT_OK, num("weight")),
    "year": when(~blank("year") & BY_NAME["year_integer"].check, num("year")),
    "country": when(~blank("country"), upper(text("country"))),
    "field": when(~blank("field"), text("field")),
    "institution": when(~blank("institution"), text("institution")),
}


def _bad(rule: Rule) -> Expr:
    """The rows a rule refuses: those that keep the rules it comes after, and not it."""
    guard = None
    for name in rule.after:
        guard = BY_NAME[name].check if guard is None else guard & BY_NAME[name].check
    return ~rule.check if guard is None else guard & ~rule.check


def sql_all_ok(cell: Callable[[str, str], str], params: Mapping | None = None, *, key: bool | None = False,
               bound: Mapping[Expr, str] | None = None) -> str:
    """SQL: a row keeps every rule (``key``: only the grouping keys' rules, False: only the
    others, None: all); NULL where a cell is NULL (read it as false).

    A rule's ``after`` guards are dropped here: the rules they name are in the conjunction
    (``A AND (NOT A OR B)`` is ``A AND B``), and the shorter predicate is the hot path.
    """
    chosen = [r for r in RULES if key is None or r.key == key]
    return "(" + " AND ".join(to_sql(r.check, cell, params, bound) for r in chosen) + ")" if chosen else "true"


def sql_bad(rule: Rule, cell: Callable[[str, str], str], params: Mapping | None = None,
            bound: Mapping[Expr, str] | None = None) -> str:
    """SQL: the row breaks ``rule`` (true or false, never NULL)."""
    guard = [f"coalesce({to_sql(BY_NAME[n].check, cell, params, bound)}, false)" for n in rule.after]
    return "(" + " AND ".join(guard + [f"NOT coalesce({to_sql(rule.check, cell, params, bound)}, false)"]) + ")"


def numpy_bad(rule: Rule, cell: Callable[[str, str], np.ndarray], params: Mapping | None = None) -> np.ndarray:
    """The rows of a frame that break ``rule`` (bool array)."""
    return np.asarray(to_numpy(_bad(rule), cell, params), dtype=bool)


class FrameCells:
    """The leaves of the rules over a raw records frame (columns named as records columns).

    Each cell kind of a column is computed once, on first use.

    Parameters
    ----------
    raw : DataFrame
        The table as read (text or typed columns), columns already lower-case record names.
    """

    def __init__(self, raw: pd.DataFrame):
        self.raw, self.n = raw, len(raw)
        self._cache: dict = {}

    def __call__(self, kind: str, col: str) -> np.ndarray:
        key = (kind, col)
        if key not in self._cache:
            self._cache[key] = self._compute(kind, col)
        return self._cache[key]

    def _compute(self, kind: str, col: str) -> np.ndarray | pd.Series:
        if col not in self.raw.columns:
            return {"num": np.full(self.n, np.nan), "text": pd.Series([None] * self.n, dtype=_STR),
                    "empty": np.ones(self.n, bool), "blank": np.ones(self.n, bool)}[kind]
        if kind == "num":
            return as_numbers(self.raw[col])
        stripped, na = self.stripped(col)
        if kind == "text":
            return stripped.where(~(na | stripped.eq("").to_numpy()))
        if kind == "empty":
            return na | stripped.eq("").to_numpy()
        return na | stripped.isin(("",) + BLANK_TEXTS).to_numpy()

    def stripped(self, col: str) -> tuple[pd.Series, np.ndarray]:
        """Text of a column without surrounding spaces ('' where missing) and the missing mask."""
        key = ("stripped", col)
        if key not in self._cache:
            series = self.raw[col]
            na = series.isna().to_numpy()
            # Spaces only, as the engine trims (a tab or a no-break space is kept, by both).
            text_ = series.astype(object).where(~na, "").astype(_STR).str.strip(" ").reset_index(drop=True)
            self._cache[key] = (text_, na)
        return self._cache[key]


def as_numbers(series: pd.Series) -> np.ndarray:
    """A column's cells as float (NaN where missing, blank or not a number, e.g. '1_000':
    the engine refuses digit separators alike)."""
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        return pd.to_numeric(series.astype(str).str.strip().replace("", "nan"),
                             errors="coerce").to_numpy(dtype=float)
    return series.to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------- message hints

def coordinate_fix(cells: FrameCells, bad: Mapping[str, np.ndarray], n_finite: int | None) -> str:
    """The fix of out-of-range coordinates, from what the bad rows look like: projected
    metres, swapped columns, or the ranges.

    Parameters
    ----------
    cells : FrameCells
        The table's cells.
    bad : mapping
        Rule name -> rows breaking it (:func:`violations`).
    n_finite : int or None
        Rows of the whole file with finite coordinates (when ``cells`` holds only some).

    Returns
    -------
    str
    """
    bad_lat, bad_lon = bad["lat_range"], bad["lon_range"]
    lat, lon = cells("num", "lat"), cells("num", "lon")
    fin = np.isfinite(lat) & np.isfinite(lon)
    with np.errstate(invalid="ignore"):
        projected = fin & (np.abs(lat) > 1000) & (np.abs(lon) > 1000)
        swapped = bad_lat & (np.abs(lon) <= 90)
    if projected.sum() > 0.5 * (bad_lat | bad_lon).sum():
        return "These look like projected coordinates (metres); reproject to WGS84 degrees (EPSG:4326)."
    if swapped.sum() > 0.5 * (fin.sum() if n_finite is None else n_finite):
        return "Latitude and longitude look swapped; exchange the 'lat' and 'lon' columns."
    return _COORD_FIX


#: Fixes chosen from a table's bad rows, by :attr:`Rule.hint`: ``f(cells, bad, n_finite)``.
HINTS = {"coordinates": coordinate_fix}


def violations(cells: FrameCells, metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """Per rule name, the rows that break it (the pandas rendering of every rule).

    Parameters
    ----------
    cells : FrameCells
        The table's cells.
    metrics : sequence of str
        The run's metric names.

    Returns
    -------
    dict
        Rule name -> bool array.
    """
    return {r.name: numpy_bad(r, cells, {"metrics": tuple(metrics)}) for r in RULES}


__all__ = ["BLANK_TEXTS", "BY_NAME", "COLUMNS", "COUNTRY_PATTERN", "GOOD_ROW", "HINTS", "METRIC", "NORMALISED",
           "NUMERIC", "OPTIONAL", "PROFILE_COLUMNS", "REQUIRED", "RULES", "Expr", "FrameCells", "Rule", "as_numbers",
           "blank", "coordinate_fix", "empty", "finite", "leaves", "matches", "non_numeric_problem", "num",
           "numpy_bad",
           "one_of", "sql_all_ok", "sql_bad", "text", "to_numpy", "to_sql", "violations", "when"]
