"""Stage 1: read and validate activity records.

Reads CSV, Parquet, GeoParquet and GeoPackage point files into one records frame with
the columns ``metric, doc_id, lat, lon, weight, year, country, institution, source``.
Validation applies the rules of :mod:`cluster.ingest._rules` (their numpy rendering),
collects every problem (file, row, column, value, fix) and raises once.

Row numbers in messages are what a user sees in an editor: for CSV the line number
(header = line 1), for other formats the 1-based record number.

Longitudes in [-180, 360] are accepted (0–360 exports are common) and wrapped to
[-180, 180); anything else is rejected.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

import cluster.ingest._rules as rules
from cluster._atomic import file_sha256
from cluster.errors import InputDataError, UserInputError
from cluster.ingest.mapping import InputMapping, apply_mapping
from cluster.ingest.rejects import Rejects
from cluster.provenance import PARQUET_SYNTHETIC_KEY

log = logging.getLogger(__name__)

# The column specification lives with the row rules (cluster.ingest._rules).
REQUIRED, OPTIONAL, COLUMNS = rules.REQUIRED, rules.OPTIONAL, rules.COLUMNS
# Names users often have in their exports, mapped to ours for the suggestion.
_ALIASES = {
    "latitude": "lat", "y": "lat", "longitude": "lon", "lng": "lon", "long": "lon", "x": "lon",
    "id": "doc_id", "document": "doc_id", "docid": "doc_id", "doc": "doc_id",
    "count": "weight", "n": "weight", "country_code": "country", "iso2": "country",
}
_EXAMPLES_PER_PROBLEM = 5


def _suggest(name: str) -> str:
    low = name.strip().lower()
    if low in _ALIASES:
        return _ALIASES[low]
    close = difflib.get_close_matches(low, COLUMNS, n=1, cutoff=0.6)
    return close[0] if close else ""


# Compressed text is read directly (pandas decompresses); the inner suffix says the format.
_COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
_TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".geoparquet")
_VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb")
# Delimiters a CSV may use; anything else is named in the refusal.
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def _format(path: Path) -> tuple[str, str | None]:
    """``(format, compression)`` of a file from its suffixes (``data.csv.gz`` -> csv, gzip)."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = _COMPRESSION.get(suffixes[-1]) if suffixes else None
    inner = (suffixes[-2] if len(suffixes) >= 2 else "") if compression else (suffixes[-1] if suffixes else "")
    if compression:
        return "csv", compression  # a compressed file is text (Parquet compresses inside)
    if inner in _TEXT_SUFFIXES:
        return "csv", None
    if inner in _PARQUET_SUFFIXES:
        return "parquet", None
    if inner in _VECTOR_SUFFIXES:
        return "vector", None
    return "", None


def _read_table(path: Path, *, layer: str | None = None, rejects: Rejects | None = None,
                encoding: str | None = None) -> tuple[pd.DataFrame, int, bool]:
    """Raw table as read, the row offset for messages, and the synthetic flag."""
    kind, compression = _format(path)
    if kind == "csv":
        return _read_csv(path, compression, encoding), 2, False
    if kind == "parquet":
        return _read_parquet(path, rejects)
    if kind == "vector":
        return _read_vector(path, layer, rejects), 1, False
    raise UserInputError(
        f"{path}: unsupported file type '{path.suffix}'. Use .csv, .parquet, .geoparquet or .gpkg. "
        "CSV may be compressed (.csv.gz, .csv.zst, .csv.bz2, .csv.xz)."
    )


def _open_text(path: Path, compression: str | None, encoding: str | None = None):
    """A text handle on a (possibly compressed) file, for sniffing and error reports."""
    kw = {"encoding": encoding or "utf-8", "errors": "replace", "newline": ""}
    if compression == "gzip":
        import gzip

        return gzip.open(path, "rt", **kw)
    if compression == "zstd":
        import zstandard

        return zstandard.open(path, "rt", **kw)
    if compression == "bz2":
        import bz2

        return bz2.open(path, "rt", **kw)
    if compression == "xz":
        import lzma

        return lzma.open(path, "rt", **kw)
    return open(path, **kw)


def is_utf8(encoding: str | None) -> bool:
    """Whether an ``[input] encoding`` is UTF-8 (empty: the default), BOM or not.

    Parameters
    ----------
    encoding : str or None
        A codec name.

    Returns
    -------
    bool
    """
    import codecs

    return not encoding or codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _sniff_delimiter(path: Path, compression: str | None, encoding: str | None = None) -> str:
    """The CSV's delimiter: comma, semicolon or tab, as its header line shows it.

    One candidate in the header decides; several are settled by :class:`csv.Sniffer` on
    the first lines. A header with none of them is one column (validation names what is
    missing) unless it shows another separator, which is refused by name.
    """
    import csv

    try:
        with _open_text(path, compression, encoding) as fh:
            head = fh.read(1 << 16)
    except Exception as exc:  # decompressors raise their own types (zlib.error, LZMAError, ZstdError)
        raise UserInputError(f"{path}: cannot read {f'as {compression} ' if compression else ''}({exc}).") from None
    head = head.lstrip("\ufeff")
    first = head.splitlines()[0] if head.strip() else ""
    present = [d for d in _DELIMITERS if d in first]
    if len(present) == 1:
        return present[0]
    if len(present) > 1:
        try:
            return csv.Sniffer().sniff(head[: head.rfind("\n") + 1] or head, delimiters="".join(present)).delimiter
        except csv.Error:
            return max(present, key=first.count)
    others = [c for c in "|: " if c in first.strip()]
    if others:
        name = {"|": "a pipe '|'", ":": "a colon ':'", " ": "spaces"}[others[0]]
        raise UserInputError(f"{path}: the header line has no comma, semicolon or tab; its fields seem to be "
                             f"separated by {name}. Save the file as comma-, semicolon- or tab-separated CSV.")
    return ","


def _read_csv(path: Path, compression: str | None, encoding: str | None = None) -> pd.DataFrame:
    sep = _sniff_delimiter(path, compression, encoding)
    if sep != ",":
        log.info("%s: fields separated by %s", path, _DELIMITERS[sep])
    try:
        with warnings.catch_warnings():
            # A first row longer than the header makes pandas guess an index column
            # (or drop data, with index_col=False); that is a ragged file, not a guess.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding or "utf-8",
                               encoding_errors="strict", index_col=False, compression=compression)
    except UnicodeDecodeError:
        raise UserInputError(_utf8_problem(path, compression, encoding)) from None
    except pd.errors.EmptyDataError:
        raise UserInputError(f"{path}: the file is empty. Give a CSV with a header row "
                             f"({', '.join(REQUIRED)}, ...) and at least one record.") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        raise UserInputError(f"{path}: malformed CSV ({exc}). Every row needs as many "
                             "fields as the header; quote fields that contain the delimiter.") from None
    except Exception as exc:  # a truncated or corrupt compressed file: zlib.error, LZMAError, ZstdError
        raise UserInputError(f"{path}: cannot read as {compression or 'plain'} CSV ({exc}).") from None


def _read_parquet(path: Path, rejects: Rejects | None = None) -> tuple[pd.DataFrame, int, bool]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise UserInputError(f"{path}: cannot read as Parquet ({exc}).") from None
    meta = table.schema.metadata or {}
    synthetic = meta.get(PARQUET_SYNTHETIC_KEY) == b"true"
    if b"geo" in meta:
        import geopandas as gpd

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # geopandas' notes on the GeoParquet version
                gdf = gpd.read_parquet(path)
        except Exception as exc:  # malformed 'geo' metadata: ValueError, KeyError, JSON errors
            raise UserInputError(f"{path}: the GeoParquet 'geo' metadata cannot be read ({exc}). Fix the "
                                 "metadata, or drop it and give 'lat' and 'lon' columns.") from None
        return _decode_bytes(_points_to_columns(gdf, path, rejects), path), 1, synthetic
    return _decode_bytes(table.to_pandas(), path), 1, synthetic


def _decode_bytes(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Columns of bytes (Parquet binary) as UTF-8 text; a value that is not UTF-8 is refused
    with its row and the offset of its first bad byte."""
    for col in df.columns:
        if df[col].dtype != object:
            continue
        values = df[col].to_numpy()
        is_bytes = np.fromiter((isinstance(v, (bytes, bytearray)) for v in values), bool, len(values))
        if not is_bytes.any():
            continue
        decoded = values.copy()
        for row in np.flatnonzero(is_bytes):
            try:
                decoded[row] = bytes(values[row]).decode("utf-8")
            except UnicodeDecodeError as exc:
                msg = (f"{path}, row {row + 1}, column '{col}': not UTF-8 text at byte offset {exc.start} "
                       f"(got {bytes(values[row])[:40]!r}). Store the column as UTF-8 strings.")
                raise UserInputError(msg) from None
        df = df.assign(**{col: decoded})
    return df


def _read_vector(path: Path, layer: str | None, rejects: Rejects | None = None):
    import geopandas as gpd
    import pyogrio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layers = pyogrio.list_layers(path)
    except Exception as exc:
        raise UserInputError(f"{path}: cannot read as a vector layer ({exc}).") from None
    names = [str(n) for n, _ in layers]
    points = [str(n) for n, g in layers if g and "point" in str(g).lower()]
    if layer:
        if layer not in names:
            raise UserInputError(f"{path}: no layer '{layer}'. Its layers: {', '.join(names) or 'none'}. "
                                 "Name one of them with {layer}.")
    elif len(points) > 1:
        raise UserInputError(f"{path} holds several point layers ({', '.join(points)}). Choose one with "
                             "{layer}.")
    elif len(names) > 1:
        layer = points[0] if points else names[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. pyogrio's note that it read the first layer
            gdf = gpd.read_file(path, layer=layer or None)
    except Exception as exc:
        raise UserInputError(f"{path}: cannot read as a vector layer ({exc}).") from None
    return _points_to_columns(gdf, path, rejects)


def _raw_bytes(path: Path, compression: str | None) -> bytes:
    """The file's bytes, decompressed."""
    if compression is None:
        return path.read_bytes()
    if compression == "zstd":
        import zstandard

        with zstandard.open(path, "rb") as fh:
            return fh.read()
    import bz2
    import gzip
    import lzma

    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression]
    with opener(path, "rb") as fh:
        return fh.read()


def _utf8_problem(path: Path, compression: str | None = None, encoding: str | None = None) -> str:
    """Where a file stops being text in its encoding (UTF-8 by default), by line (a CSV's
    row) and byte offset (pandas reports offsets within its read buffer)."""
    data = _raw_bytes(path, compression)
    name = encoding or "UTF-8"
    try:
        data.decode(encoding or "utf-8")
        return f"{path}: not {name} text. Re-save the file as UTF-8, or name its encoding with {{encoding}}."
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (f"{path}, line {line} (byte offset {exc.start}): not {name} text "
                f"({data[exc.start:exc.start + 1]!r}). Re-save the file as UTF-8 "
                "(e.g. `iconv -f latin1 -t utf-8`), or name its encoding with {encoding} (e.g. latin-1).")


def _points_to_columns(gdf, path: Path, rejects: Rejects | None = None) -> pd.DataFrame:
    """``lat``/``lon`` columns from point geometries (reprojected to EPSG:4326).

    Null, empty and non-point geometries are refused with their rows (with ``rejects``:
    left out, the kept rows' 0-based numbers in ``attrs["row_numbers"]``); a layer
    without a CRS is taken as WGS84 degrees (the coordinate checks catch metres).
    """
    geom = gdf.geometry
    pr = _Problems(path, 1, rejects=rejects)
    null = geom.isna().to_numpy()
    empty = ~null & geom.is_empty.to_numpy()
    kinds = geom.geom_type.to_numpy(dtype=object)
    other = ~null & ~empty & (kinds != "Point")
    shown = np.where(null, "null", np.where(empty, "empty", kinds)).astype(object)
    pr.add("geometry", null, shown, "null geometry", "Drop the row or give it a point.")
    pr.add("geometry", empty, shown, "empty geometry", "Drop the row or give it a point.")
    pr.add("geometry", other, shown, "geometry must be a point", "Give one point per record.")
    kept = None
    if pr.items and rejects is not None:
        rejects.rows += pr.n_rows
        kept = np.flatnonzero(~(null | empty | other))
        gdf = gdf.iloc[kept]
    elif pr.items:
        raise InputDataError(pr.items, rows=pr.n_rows)
    if gdf.crs is None:
        log.info("%s: no CRS; taking the coordinates as WGS84 degrees", path)
    elif gdf.crs.to_epsg() != 4326:
        log.info("%s: reprojecting from %s to EPSG:4326", path, gdf.crs)
        try:
            gdf = gdf.to_crs(4326)
        except Exception as exc:  # pyproj errors for a CRS it cannot transform
            raise UserInputError(f"{path}: cannot reproject from {gdf.crs} to WGS84 ({exc}).") from None
        geom = gdf.geometry
    if kept is not None:
        geom = gdf.geometry
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).reset_index(drop=True)
    df["lat"], df["lon"] = geom.y.to_numpy(), geom.x.to_numpy()
    if kept is not None:
        df.attrs["row_numbers"] = kept
    return df


class _Problems:
    """Collects problems as 'file, row, column: value — fix', a few examples per kind;
    with a :class:`~cluster.ingest.rejects.Rejects` collector, every row of a row rule."""

    def __init__(self, path: Path, row_offset: int, row_numbers: np.ndarray | None = None,
                 rejects: Rejects | None = None):
        self.path, self.row_offset, self.items = path, row_offset, []
        self.row_numbers = row_numbers
        self.rejects = rejects
        self.rows: set[int] = set()

    @property
    def n_rows(self) -> int:
        """Distinct rows with at least one problem."""
        return len(self.rows)

    def add(self, column: str, rows: np.ndarray, values, what: str, fix: str) -> None:
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        if len(rows) == 0:
            return
        self.rows.update(int(r) for r in rows)
        if self.rejects is not None:
            numbers = rows if self.row_numbers is None else self.row_numbers[rows]
            self.rejects.add(str(self.path), np.asarray(numbers, dtype=np.int64) + self.row_offset, column,
                             np.asarray(values, dtype=object)[rows], what)
        head = rows[:_EXAMPLES_PER_PROBLEM]
        for r, v in zip(head, np.asarray(values)[head]):
            v = v.item() if isinstance(v, np.generic) else v  # 95.0, not np.float64(95.0)
            row = int(r if self.row_numbers is None else self.row_numbers[r])
            self.items.append(f"{self.path}, row {row + self.row_offset}, column '{column}': "
                              f"{what} (got {v!r}). {fix}")
        if len(rows) > len(head):
            self.items.append(f"{self.path}, column '{column}': {len(rows) - len(head):,} more "
                              f"row(s) with the same problem ({what}).")

    def note(self, message: str) -> None:
        self.items.append(f"{self.path}: {message}")


def check_case_duplicates(columns: Sequence, path) -> None:
    """Refuse columns whose names differ only by case or surrounding spaces.

    Parameters
    ----------
    columns : sequence
        Column names as the file holds them.
    path : path-like
        The input, for messages.

    Returns
    -------
    None

    Raises
    ------
    InputDataError
        Naming each pair.
    """
    pr = _Problems(Path(str(path)), 1)
    seen: dict[str, str] = {}
    for original in columns:
        name = str(original).strip().lower()
        if name in seen:
            pr.note(f"columns '{seen[name]}' and '{original}' differ only by case or spaces. Keep one of them.")
        seen.setdefault(name, str(original))
    if pr.items:
        raise InputDataError(pr.items)


def mixed_line_endings(head: str) -> bool:
    """Whether the complete lines of a text's start end in both LF and CRLF (files joined
    across systems: pandas and Python's csv read them, DuckDB's strict parser does not).

    Parameters
    ----------
    head : str
        The first bytes of a file as text (newlines untranslated).

    Returns
    -------
    bool
    """
    crlf = head.count("\r\n")
    return 0 < crlf < head.count("\n")


def check_columns(columns: Sequence, path) -> list[str]:
    """The record column names of a table's columns (stripped, lower case), checked.

    Parameters
    ----------
    columns : sequence
        The table's column names, as read (after any mapping).
    path : path-like
        The input, for messages.

    Returns
    -------
    list of str
        One name per column, in order.

    Raises
    ------
    InputDataError
        Columns that differ only by case, a missing required column (with the closest
        column of the file), or neither ``doc_id`` nor ``weight``.
    """
    pr = _Problems(Path(str(path)), 1)
    names = [str(c).strip().lower() for c in columns]
    check_case_duplicates(columns, path)
    missing = [c for c in REQUIRED if c not in names]
    unknown = [c for c in names if c not in COLUMNS]
    for col in missing:
        close = [u for u in unknown if _suggest(u) == col]
        hint = f" Rename column '{close[0]}' to '{col}'." if close else f" Add a '{col}' column."
        pr.note(f"missing required column '{col}'.{hint} Expected columns: {', '.join(COLUMNS)}.")
    if "doc_id" not in names and "weight" not in names:
        close = [u for u in unknown if _suggest(u) in ("doc_id", "weight")]
        hint = f" Rename column '{close[0]}'." if close else ""
        pr.note("needs a 'doc_id' column (documents are fractionally counted) or a 'weight' "
                f"column (pre-weighted sites).{hint}")
    if pr.items:
        raise InputDataError(pr.items, rows=pr.n_rows)
    for col in unknown:
        log.info("%s: ignoring column '%s'%s", path, col,
                 f" (did you mean '{_suggest(col)}'?)" if _suggest(col) else "")
    return names


def _validate(raw: pd.DataFrame, path: Path, row_offset: int, metrics: Sequence[str], *,
              row_numbers: np.ndarray | None = None, n_finite: int | None = None,
              rejects: Rejects | None = None) -> pd.DataFrame:
    """Validated records of ``raw`` (every problem collected, then raised at once).

    ``row_numbers`` (0-based rows of the file, one per row of ``raw``) and ``n_finite``
    (rows of the whole file with finite coordinates) are given when ``raw`` holds only
    the suspect rows of a larger file (:mod:`cluster.ingest.engine`). With ``rejects``
    (``on_bad_rows = skip``) rows breaking a row rule are left out and collected there.
    """
    pr = _Problems(path, row_offset, row_numbers, rejects)
    names = check_columns(raw.columns, path)
    # Positional rows from here on: a caller's index must not realign columns.
    raw = raw.reset_index(drop=True).set_axis(names, axis=1)
    n = len(raw)
    if n == 0:
        raise UserInputError(f"{path}: the file has a header but no records. Add at least one record.")

    for col in rules.NUMERIC:
        if col in raw.columns and (kind := _non_numeric_kind(raw[col])):
            pr.note(rules.non_numeric_problem(col, kind))
    if pr.items:
        raise InputDataError(pr.items)

    # Every row rule of the table (cluster.ingest._rules), in its order.
    cells = rules.FrameCells(raw)
    params = {"metrics": tuple(metrics)}
    bad = rules.violations(cells, metrics)
    for rule in rules.RULES:
        if not bad[rule.name].any():
            continue
        column = rule.named_column(raw.columns)
        if rule.shows is None:
            values = raw[rule.column].to_numpy()
        else:
            shown = rules.to_numpy(rule.shows, cells, params)
            shown = pd.Series(shown, index=range(n), dtype=object) if np.ndim(shown) == 0 else shown
            values = shown.astype(object).fillna("").to_numpy()
        if rule.hint:
            fix = rules.HINTS[rule.hint](cells, bad, n_finite)
        else:
            fix = rule.fix.format(metrics=", ".join(metrics))
        pr.add(column, bad[rule.name], values, rule.what, fix)

    # The records, normalised by the table's expressions (the engine renders them to SQL).
    out = pd.DataFrame(index=pd.RangeIndex(n))
    for col in ("metric", "doc_id", "lat", "lon", "weight", "year", "country", "institution", "field"):
        value = rules.to_numpy(rules.NORMALISED[col], cells, params)
        if isinstance(value, pd.Series):  # text: object values, None where missing
            value = value.astype(object).where(value.notna(), None)
        out[col] = value
    out["metric"] = out["metric"].fillna("")
    out["year"] = out["year"].astype("Float64").astype("Int64")
    if pr.items and rejects is not None:
        rejects.rows += pr.n_rows
        dropped = np.zeros(n, dtype=bool)
        dropped[list(pr.rows)] = True
        out = out[~dropped].reset_index(drop=True)
        if out.empty and row_numbers is None:
            raise UserInputError(f"{path}: every record breaks a rule ({'; '.join(rejects.per_rule)}); none "
                                 "is left to cluster. Fix the file (see the rules in the messages of "
                                 "--on-bad-rows fail).")
    elif pr.items:
        raise InputDataError(pr.items, rows=pr.n_rows)
    check_world_totals(out, str(path), row_offset=row_offset)
    out["metric"] = out["metric"].astype("category")
    return out


def _non_numeric_kind(series: pd.Series) -> str:
    """What a column that must hold numbers holds instead ('' when it may be numbers)."""
    if pd.api.types.is_bool_dtype(series):
        return "true/false values"
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return "dates or times"
    if series.dtype == object:
        sample = series.dropna().head(1000)
        if sample.map(lambda v: isinstance(v, (bool, np.bool_))).any():
            return "true/false values"
        if sample.map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray, bytes))).any():
            return "lists, mappings or bytes"
    return ""


def validate_frame(frame: pd.DataFrame, name: str, metrics: Sequence[str], *,
                   rejects: Rejects | None = None) -> pd.DataFrame:
    """Validate an in-memory records frame exactly as a file would be.

    Parameters
    ----------
    frame : DataFrame or GeoDataFrame
        Records with the columns of a records file; a GeoDataFrame of points gives
        ``lat``/``lon`` from its geometry (reprojected to EPSG:4326 when it has a CRS).
    name : str
        What messages call the frame (e.g. ``"<DataFrame>"``); rows are numbered from 1.
    metrics : sequence of str
        Metric names allowed in ``metric``.
    rejects : Rejects, optional
        Given (``on_bad_rows = skip``), rows breaking a rule are left out and collected there.

    Returns
    -------
    DataFrame
        As :func:`read_records` (``source`` = 0).

    Raises
    ------
    InputDataError
        Listing every invalid record.
    """
    import geopandas as gpd

    row_numbers = None
    frame = _decode_bytes(frame, Path(name))  # bytes cells (as from Parquet binary) are text or refused
    if isinstance(frame, gpd.GeoDataFrame):
        frame = _points_to_columns(frame, Path(name), rejects)
        row_numbers = frame.attrs.get("row_numbers")
    df = _validate(frame, Path(name), 1, metrics, row_numbers=row_numbers, rejects=rejects)
    df["source"] = np.int32(0)
    df["metric"] = df["metric"].astype(pd.CategoricalDtype(list(metrics)))
    return df


def read_records(paths: Iterable[str | Path], metrics: Sequence[str],
                 mappings: Sequence[InputMapping | None] | None = None, *,
                 layer: str | None = None, rejects: Rejects | None = None,
                 encoding: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Read and validate activity records from one or more files.

    Parameters
    ----------
    paths : iterable of path-like
        CSV (UTF-8, header row; ``.csv.gz`` and ``.csv.zst`` are decompressed on the fly),
        Parquet, GeoParquet or GeoPackage files.
    metrics : sequence of str
        Metric names allowed in the ``metric`` column (from the config).
    layer : str, optional
        The layer to read from GeoPackages (and other multi-layer files); by default
        the one point layer (a file with several is refused, naming them).
    mappings : sequence of InputMapping or None, optional
        Per path, a column mapping and constants applied to the raw table before
        validation (:mod:`cluster.ingest.mapping`); ``None`` entries read the file as it is.
    rejects : Rejects, optional
        Given (``on_bad_rows = skip``), rows breaking a rule are left out and collected there.
    encoding : str, optional
        Text encoding of CSV files (default UTF-8, with or without a byte-order mark).

    Returns
    -------
    records : DataFrame
        Columns ``metric, doc_id, lat, lon, weight, year, country, institution, field,
        source`` (``source`` = file index); ``weight`` is NaN where the record is
        counted fractionally by document. Longitudes are wrapped to [-180, 180).
    info : dict
        ``synthetic`` (True when every input is flagged as synthetic demo data) and
        ``files`` (per-file path, size, SHA-256 and record count).

    Raises
    ------
    UserInputError
        A path that does not exist or cannot be read; :class:`InputDataError` listing
        every invalid record (file, row, column, value and fix).
    """
    frames, files, synthetic, problems, bad_rows = [], [], [], [], 0
    paths = list(paths)
    mappings = list(mappings) if mappings is not None else [None] * len(paths)
    for i, p in enumerate(map(Path, paths)):
        if not p.exists():
            raise UserInputError(f"Input {p} does not exist. Check the path given to {{input}}.")
        if p.is_dir():
            raise UserInputError(f"Input {p} is a directory. Pass files to {{input}}.")
        try:
            raw, offset, synth = _read_table(p, layer=layer, rejects=rejects, encoding=encoding)
            row_numbers = raw.attrs.get("row_numbers")
            raw = apply_mapping(raw, mappings[i], p)
            df = _validate(raw, p, offset, metrics, row_numbers=row_numbers, rejects=rejects)
        except InputDataError as exc:
            problems += exc.problems
            bad_rows += exc.rows or 0
            continue
        df["source"] = np.int32(i)
        frames.append(df)
        synthetic.append(synth)
        files.append({"path": str(p), "bytes": p.stat().st_size, "sha256": file_sha256(p),
                      "records": len(df), "synthetic": synth,
                      **({"mapping": mappings[i].describe()} if mappings[i] else {})})
        log.info("read %s: %s records", p, f"{len(df):,}")
    if problems:
        raise InputDataError(problems, rows=bad_rows or None)
    if not frames:
        raise UserInputError("No input files given.")
    records = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    records["metric"] = records["metric"].astype(pd.CategoricalDtype(list(metrics)))
    if len(frames) > 1:
        check_world_totals(records, "The inputs together")
    return records, {"synthetic": all(synthetic), "files": files}


def check_world_totals(records: pd.DataFrame, where: str, *, row_offset: int | None = None) -> None:
    """Refuse weights whose sum per metric is not a finite float (it would overflow).

    Every site's weight is at most its metric's world total, so a finite world total
    keeps every sum downstream finite.

    Parameters
    ----------
    records : DataFrame
        Validated records (``metric``, ``weight``).
    where : str
        The input's name, for the message.
    row_offset : int, optional
        Row number of the first record in the file (2 for a CSV with a header); given,
        the message names the heaviest rows.

    Returns
    -------
    None

    Raises
    ------
    UserInputError
        Naming the metric and the rows with the largest weights.
    """
    w = records["weight"].to_numpy(dtype=float)
    metric = records["metric"].astype(str).to_numpy()
    for m in np.unique(metric):
        sel = np.flatnonzero((metric == m) & np.isfinite(w))
        with np.errstate(over="ignore"):
            total = w[sel].sum()
        if not np.isfinite(total):
            heavy = sel[np.argsort(-w[sel], kind="stable")[:5]]
            rows = (" The largest are in rows " + ", ".join(f"{int(r) + row_offset} ({w[r]:.3g})" for r in heavy)
                    + "." if row_offset is not None else "")
            msg = (f"{where}, column 'weight': the weights of metric '{m}' sum to more than the largest "
                   f"float (about 1.8e308).{rows} Scale the weights down, e.g. to documents or "
                   "fractions of a document.")
            raise UserInputError(msg)
