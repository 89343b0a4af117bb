"""Text from the data, made safe for the files people open: Markdown and CSV.

Two rules, each in one place, used by every writer of the tool:

* :func:`md_escape` (and :func:`md_code`, :func:`md_paragraphs`): text from the data or the
  user (cluster names, institutions, fields, metric names, a framework's labels, codes and
  description) inside Markdown;
* :func:`csv_safe` / :func:`write_csv`: every CSV file the tool writes. A spreadsheet
  (Excel, LibreOffice, Google Sheets) runs a cell that begins with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return as a formula (CSV injection). As OWASP advises
  (https://owasp.org/www-community/attacks/CSV_Injection), such a *text* cell gets a single
  quote in front, which spreadsheets show as text. Numbers stay numbers: columns of a
  numeric (or boolean, or date) type are written as they are, and so are the numbers in
  a column of mixed values. A text cell is quoted even when it reads as a number ("-3"):
  in a text column it is text (an institution, a field), and a quoted cell is text in
  every spreadsheet. Column headers get the same treatment. A carriage return inside a
  text cell becomes a line feed: Python's CSV writer with ``\n`` line ends leaves a field
  holding a bare ``\r`` unquoted, and every reader then splits the row there.

The bytes of a CSV are pandas' (``to_csv(index=False, lineterminator="\n")``: Python's
CSV writer, minimal quoting, missing values empty, floats as numpy's shortest
round-trip text). A table of the common column types (integers, float64, booleans,
text, categoricals of integers or text: each category formatted once) is formatted
column by column, the rows joined with Arrow's compute functions instead of Python's
row-by-row writer (:func:`_csv_parts`): the same bytes several times faster
(``profiles.csv``, ~400 k rows at 10 M records). A table with a column of any
other type goes through pandas.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

# OWASP's list: the characters a spreadsheet takes as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def md_escape(text: str) -> str:
    """Escape text from the data for a Markdown table cell.

    Parameters
    ----------
    text : str
        Any text (names come from data and may hold ``|``, ``<``, ``*`` ...).

    Returns
    -------
    str
        The text with Markdown's special characters backslash-escaped, on one line.

    Examples
    --------
    >>> md_escape("Evil|Town <b>")
    'Evil\\\\|Town \\\\<b\\\\>'
    """
    out = str(text)
    for ch in "\\`*_{}[]<>()#+!|":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def md_code(text: str) -> str:
    """Text from the data or the user as a Markdown code span (codes, column names, paths).

    The fence is one backtick longer than the longest run of backticks inside (CommonMark),
    the text goes on one line, and ``|`` is escaped (GitHub's tables split a row at a bare
    ``|`` even inside a code span; ``\\|`` shows as ``|`` there).

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The code span, fences included.

    Examples
    --------
    >>> md_code("pubs_pm")
    '`pubs_pm`'
    >>> md_code("a`b")
    '`` a`b ``'
    """
    out = str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("|", "\\|")
    longest, run = 0, 0
    for ch in out:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if longest or out.startswith(" ") or out.endswith(" ") else ""
    return f"{fence}{pad}{out}{pad}{fence}"


def md_paragraphs(text: str) -> str:
    """Escape free text of several paragraphs (e.g. a framework's ``description``):
    each paragraph (separated by a blank line) escaped by :func:`md_escape`.

    Parameters
    ----------
    text : str
        Free text.

    Returns
    -------
    str
        The escaped paragraphs, separated by a blank line.
    """
    paragraphs = [p for p in str(text).replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "\n\n".join(md_escape(p.strip()) for p in paragraphs)


def csv_cell(value):
    """One cell made safe for a spreadsheet: a text value beginning with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return gets a leading single quote, and a carriage
    return inside it becomes a line feed; anything else (numbers, missing values, other
    text) is returned as it is.

    Parameters
    ----------
    value : object
        A cell.

    Returns
    -------
    object
        The cell, quoted when it is text that a spreadsheet would run as a formula.

    Examples
    --------
    >>> csv_cell("=SUM(A1)"), csv_cell("-3"), csv_cell(-3), csv_cell("Munich")
    ("'=SUM(A1)", "'-3", -3, 'Munich')
    """
    if isinstance(value, str):
        if value.startswith(FORMULA_STARTS):
            value = "'" + value
        if "\r" in value:  # see the module docstring: a line end of its own
            value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def _runs_as_formula(value) -> bool:
    """Whether :func:`csv_cell` changes ``value``."""
    return isinstance(value, str) and (value.startswith(FORMULA_STARTS) or "\r" in value)


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """The table with every text cell neutralised by :func:`csv_cell` (see the module
    docstring); columns of a numeric, boolean or date type are left untouched.

    Parameters
    ----------
    df : DataFrame
        Any table.

    Returns
    -------
    DataFrame
        A copy when a cell or header changed, else ``df`` itself.
    """
    out = df
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        if (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)
                or pd.api.types.is_datetime64_any_dtype(s.dtype) or isinstance(s.dtype, pd.IntervalDtype)):
            continue
        values = s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s
        if isinstance(s.dtype, pd.StringDtype):  # text only: vectorised (a Python call per cell is slow)
            hit = (s.str.startswith(FORMULA_STARTS) | s.str.contains("\r", regex=False)).fillna(False).to_numpy(bool)
        elif isinstance(s.dtype, pd.CategoricalDtype):  # each category checked once, the cells by their codes
            hit = np.append(s.cat.categories.map(_runs_as_formula).to_numpy(bool), False)[s.cat.codes.to_numpy()]
        else:
            hit = values.map(_runs_as_formula).to_numpy(bool)
        if hit.any():
            if out is df:
                out = df.copy()
            out.isetitem(i, values.map(csv_cell).astype(s.dtype if not isinstance(
                s.dtype, pd.CategoricalDtype) else object))
    headers = [csv_cell(c) for c in df.columns]
    if headers != list(df.columns):
        out = out.copy() if out is df else out
        out.columns = headers
    return out


def write_csv(df: pd.DataFrame, path) -> Path:
    """Write a table as every CSV of the tool is written: neutralised text cells
    (:func:`csv_safe`), no index, ``\\n`` line ends (same bytes on every platform).

    Parameters
    ----------
    df : DataFrame
        The table.
    path : path-like
        The file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    safe = csv_safe(df)
    parts = _csv_parts(safe)
    if parts is None:
        safe.to_csv(path, index=False, lineterminator="\n")
    else:
        _write_parts(path, parts)
    return path


def _write_parts(path: Path, parts) -> None:
    """Write the buffers of :func:`_csv_parts` into ``path``."""
    with path.open("wb") as f:
        for part in parts:
            f.write(part)


# pandas' nullable integer types (missing values written empty).
_NULLABLE_INTS = (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype,
                  pd.UInt8Dtype, pd.UInt16Dtype, pd.UInt32Dtype, pd.UInt64Dtype)

# Characters for which Python's CSV writer (pandas' to_csv, minimal quoting, "\n" line
# ends) may quote a text field; a field with none of them is written as it is. A superset
# on purpose: the few fields holding one are written by the csv module itself.
_CSV_SPECIAL = r'[,"\r\n]'


def _csv_row(fields: list) -> str:
    """One row as Python's CSV writer writes it with pandas' settings (line end included)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


def _csv_field(text: str) -> str:
    """One text field as Python's CSV writer writes it in a row of several fields."""
    return _csv_row([text, ""])[:-2]  # the empty second field and the line end


def _csv_floats(values: np.ndarray):
    """float64 values as pandas writes them (numpy's ``values.astype(str)``, NaN empty), as
    Arrow text. Each distinct value is formatted once (told apart by its bits, so that
    ``-0.0`` stays ``-0.0``): rounded columns hold few of them (``profiles.csv``: ~20 k
    in ~400 k rows)."""
    import pyarrow as pa

    codes, uniques = pd.factorize(np.ascontiguousarray(values, dtype=np.float64).view(np.int64))
    distinct = uniques.view(np.float64)
    text = pa.array(distinct.astype(str), type=pa.large_string(), mask=np.isnan(distinct))
    return text.take(pa.array(codes))


def _csv_text(values):
    """Arrow text as Python's CSV writer writes it (quoted and quotes doubled where needed)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    special = np.asarray(pc.fill_null(pc.match_substring_regex(values, _CSV_SPECIAL), False))
    if special.any():
        quoted = [_csv_field(v) for v in values.filter(pa.array(special)).to_pylist()]
        values = pc.replace_with_mask(values, pa.array(special), pa.array(quoted, type=pa.large_string()))
    return values


def _csv_column(s: pd.Series):
    """One column as the text pandas writes (nulls for empty cells), or None when its type
    is not one :func:`_csv_parts` formats."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iu":
            return pc.cast(pa.array(s.to_numpy()), pa.large_string())
        if dtype.kind == "b":
            return pa.array(np.where(s.to_numpy(), "True", "False"), type=pa.large_string())
        if dtype == np.float64:
            return _csv_floats(s.to_numpy())
        if dtype.kind == "O" and pd.api.types.infer_dtype(s, skipna=True) == "string":
            return _csv_text(pa.array(s.to_numpy(), type=pa.large_string(), from_pandas=True))
        return None
    if isinstance(dtype, pd.StringDtype):
        values = pa.array(s, type=pa.large_string(), from_pandas=True)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        return _csv_text(values)
    if isinstance(dtype, _NULLABLE_INTS):
        return pc.cast(pa.array(s, from_pandas=True), pa.large_string())
    if isinstance(dtype, pd.CategoricalDtype):  # each category formatted once, the cells taken by code
        categories = pd.Series(dtype.categories)
        if categories.dtype.kind not in "iuOT" and not isinstance(categories.dtype, pd.StringDtype):
            return None
        names = _csv_column(categories)
        if names is None:
            return None
        codes = s.cat.codes.to_numpy()
        return names.take(pa.array(codes, mask=codes < 0))
    return None


def _csv_parts(df: pd.DataFrame):
    """The bytes of ``df.to_csv(index=False, lineterminator="\\n")`` as UTF-8 buffers (the
    header line, then the rows built column by column with Arrow); None when pandas must
    write the table: a column of another type, a header that is not text, fewer than two
    columns (a lone empty field is written ``""``), or text Arrow cannot hold."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if (df.shape[1] < 2 or isinstance(df.columns, pd.MultiIndex)
            or not all(isinstance(c, str) for c in df.columns)):
        return None
    try:
        header = _csv_row(list(df.columns)).encode("utf-8")
    except UnicodeError:
        return None
    if len(df) == 0:
        return [header]
    try:
        columns = [_csv_column(df.iloc[:, i]) for i in range(df.shape[1])]
    except (pa.ArrowException, UnicodeError):  # e.g. lone surrogates: pandas names the error
        return None
    if any(c is None for c in columns):
        return None
    comma, newline, empty = (pa.scalar(c, pa.large_string()) for c in (",", "\n", ""))
    rows = pc.binary_join_element_wise(*columns, comma, null_handling="replace", null_replacement="")
    rows = pc.binary_join_element_wise(rows, empty, newline)  # each row + "\n"
    offsets = rows.buffers()[1]
    first, last = (int(v) for v in np.frombuffer(offsets, np.int64)[[rows.offset, rows.offset + len(rows)]])
    return [header, memoryview(rows.buffers()[2])[first:last]]
