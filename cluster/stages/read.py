"""Stage 1: read and validate activity records.

Reads CSV, Parquet, GeoParquet and GeoPackage point files into one records frame with
the columns ``metric, doc_id, lat, lon, weight, year, country, institution, source``.
Validation collects every problem (file, row, column, value, fix) and raises once.

Row numbers in messages are what a user sees in an editor: for CSV the line number
(header = line 1), for other formats the 1-based record number.

Longitudes in [-180, 360] are accepted (0–360 exports are common) and wrapped to
[-180, 180); anything else is rejected.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from cluster.errors import InputDataError, UserInputError
from cluster.provenance import PARQUET_SYNTHETIC_KEY
from cluster.stages._mapping import InputMapping, apply_mapping

log = logging.getLogger(__name__)

REQUIRED = ("metric", "lat", "lon")
OPTIONAL = ("doc_id", "weight", "year", "country", "field", "institution")
COLUMNS = REQUIRED + OPTIONAL
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


def _read_table(path: Path) -> tuple[pd.DataFrame, int, bool]:
    """Raw table as read, the row offset for messages, and the synthetic flag."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".gz", ".zst"):
        try:
            with warnings.catch_warnings(), _csv_source(path) as source:
                # A first row longer than the header makes pandas guess an index column
                # (or drop data, with index_col=False); that is a ragged file, not a guess.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                df = pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8",
                                 encoding_errors="strict", index_col=False)
        except UnicodeDecodeError:
            raise UserInputError(_utf8_problem(path)) from None
        except pd.errors.EmptyDataError:
            raise UserInputError(f"{path}: the file is empty. Give a CSV with a header row "
                                 f"({', '.join(REQUIRED)}, ...) and at least one record.") from None
        except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
            raise UserInputError(f"{path}: malformed CSV ({exc}). Every row needs as many "
                                 "fields as the header; quote fields that contain commas.") from None
        except (OSError, EOFError) as exc:  # a truncated or corrupt .gz/.zst
            raise UserInputError(f"{path}: cannot decompress ({exc}). Check that the file is a "
                                 "complete gzip (.gz) or zstd (.zst) compressed CSV.") from None
        return df, 2, False
    if suffix in (".parquet", ".geoparquet"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise UserInputError(f"{path}: cannot read as Parquet ({exc}).") from None
        meta = table.schema.metadata or {}
        synthetic = meta.get(PARQUET_SYNTHETIC_KEY) == b"true"
        if b"geo" in meta:
            import geopandas as gpd

            return _points_to_columns(gpd.read_parquet(path), path), 1, synthetic
        return table.to_pandas(), 1, synthetic
    if suffix in (".gpkg", ".geojson", ".json", ".shp", ".fgb"):
        import geopandas as gpd

        try:
            gdf = gpd.read_file(path)
        except Exception as exc:
            raise UserInputError(f"{path}: cannot read as a vector layer ({exc}).") from None
        return _points_to_columns(gdf, path), 1, False
    raise UserInputError(
        f"{path}: unsupported file type '{path.suffix}'. Use .csv, .parquet, .geoparquet or .gpkg. CSV may be compressed (.csv.gz, .csv.zst)."
    )


def _csv_source(path: Path):
    """What pandas reads a CSV from: the path (pandas decompresses ``.gz``, ``.bz2``,
    ``.xz`` itself), or for ``.zst`` a zstd stream from pyarrow, which ships the codec
    (pandas would need the separate ``zstandard`` package)."""
    import contextlib

    if path.suffix.lower() != ".zst":
        return contextlib.nullcontext(path)
    import pyarrow as pa

    try:
        return pa.CompressedInputStream(pa.OSFile(str(path)), "zstd")
    except Exception as exc:  # pyarrow raises OSError/ArrowInvalid for a broken file
        raise UserInputError(f"{path}: cannot open as a zstd-compressed CSV ({exc}).") from None


def _raw_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed for ``.gz`` and ``.zst``."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        import gzip

        return gzip.decompress(path.read_bytes())
    if suffix == ".zst":
        with _csv_source(path) as stream:
            return stream.read()
    return path.read_bytes()


def _utf8_problem(path: Path) -> str:
    """Where a file stops being UTF-8 (pandas reports offsets within its read buffer)."""
    data = _raw_bytes(path)
    try:
        data.decode("utf-8")
        return f"{path}: not UTF-8 text. Re-save the file as UTF-8."
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (f"{path}, line {line} (byte offset {exc.start}): not UTF-8 text "
                f"({data[exc.start:exc.start + 1]!r}). Re-save the file as UTF-8 "
                "(e.g. `iconv -f latin1 -t utf-8`).")


def _points_to_columns(gdf, path: Path) -> pd.DataFrame:
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        log.info("%s: reprojecting from %s to EPSG:4326", path, gdf.crs)
        gdf = gdf.to_crs(4326)
    geom = gdf.geometry
    if len(geom) and not (geom.geom_type == "Point").all():
        raise UserInputError(f"{path}: geometries must be points (found {sorted(set(geom.geom_type))}).")
    df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    df["lat"], df["lon"] = geom.y.to_numpy(), geom.x.to_numpy()
    return df


class _Problems:
    """Collects problems as 'file, row, column: value — fix', a few examples per kind."""

    def __init__(self, path: Path, row_offset: int):
        self.path, self.row_offset, self.items = path, row_offset, []

    def add(self, column: str, rows: np.ndarray, values, what: str, fix: str) -> None:
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        if len(rows) == 0:
            return
        head = rows[:_EXAMPLES_PER_PROBLEM]
        for r, v in zip(head, np.asarray(values)[head]):
            self.items.append(f"{self.path}, row {int(r) + self.row_offset}, column '{column}': "
                              f"{what} (got {v!r}). {fix}")
        if len(rows) > len(head):
            self.items.append(f"{self.path}, column '{column}': {len(rows) - len(head):,} more "
                              f"row(s) with the same problem ({what}).")

    def note(self, message: str) -> None:
        self.items.append(f"{self.path}: {message}")


def _numeric(series: pd.Series) -> np.ndarray:
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        return pd.to_numeric(series.astype(str).str.strip().replace("", "nan"),
                             errors="coerce").to_numpy(dtype=float)
    return series.to_numpy(dtype=float, na_value=np.nan)


def _text(series: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Stripped text of a column (object dtype) and a mask of blank cells (empty, NA, None)."""
    na = series.isna().to_numpy()
    text = series.astype(object).where(~na, "").astype(str).str.strip()
    blank = na | text.isin(["", "nan", "NaN", "None", "<NA>"]).to_numpy()
    return text.astype(object), blank


def _validate(raw: pd.DataFrame, path: Path, row_offset: int, metrics: Sequence[str]) -> pd.DataFrame:
    pr = _Problems(path, row_offset)
    # Positional rows from here on: a caller's index must not realign columns.
    raw = raw.reset_index(drop=True).rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in REQUIRED if c not in raw.columns]
    unknown = [c for c in raw.columns if c not in COLUMNS]
    for col in missing:
        close = [u for u in unknown if _suggest(u) == col]
        hint = f" Rename column '{close[0]}' to '{col}'." if close else f" Add a '{col}' column."
        pr.note(f"missing required column '{col}'.{hint} Expected columns: {', '.join(COLUMNS)}.")
    if "doc_id" not in raw.columns and "weight" not in raw.columns:
        close = [u for u in unknown if _suggest(u) in ("doc_id", "weight")]
        hint = f" Rename column '{close[0]}'." if close else ""
        pr.note("needs a 'doc_id' column (documents are fractionally counted) or a 'weight' "
                f"column (pre-weighted sites).{hint}")
    if pr.items:
        raise InputDataError(pr.items)
    for col in unknown:
        log.info("%s: ignoring column '%s'%s", path, col,
                 f" (did you mean '{_suggest(col)}'?)" if _suggest(col) else "")
    n = len(raw)
    if n == 0:
        raise UserInputError(f"{path}: the file has a header but no records. Add at least one record.")

    out = pd.DataFrame(index=pd.RangeIndex(n))
    metric = _text(raw["metric"])[0].str.lower()
    bad = ~metric.isin(list(metrics)).to_numpy()
    if bad.any():
        pr.add("metric", bad, metric.to_numpy(), "unknown metric",
               f"Use one of: {', '.join(metrics)} (metrics come from the config's [metrics.*] tables).")
    out["metric"] = metric

    lat, lon = _numeric(raw["lat"]), _numeric(raw["lon"])
    for name, arr in (("lat", lat), ("lon", lon)):
        nan = ~np.isfinite(arr)
        pr.add(name, nan, raw[name].to_numpy(), "missing or non-numeric coordinate",
               "Give decimal degrees (WGS84), e.g. 48.137; drop rows that are not geocoded.")
    fin = np.isfinite(lat) & np.isfinite(lon)
    bad_lat = fin & (np.abs(lat) > 90)
    bad_lon = fin & ((lon < -180) | (lon > 360))
    if (bad_lat | bad_lon).any():
        projected = fin & (np.abs(lat) > 1000) & (np.abs(lon) > 1000)
        swapped = bad_lat & ~bad_lon & (np.abs(lon) <= 90)
        if projected.sum() > 0.5 * (bad_lat | bad_lon).sum():
            fix = "These look like projected coordinates (metres); reproject to WGS84 degrees (EPSG:4326)."
        elif swapped.sum() > 0.5 * fin.sum():
            fix = "Latitude and longitude look swapped; exchange the 'lat' and 'lon' columns."
        else:
            fix = "Latitude must be in [-90, 90] and longitude in [-180, 360] (0–360 is wrapped)."
        pr.add("lat", bad_lat, raw["lat"].to_numpy(), "latitude outside [-90, 90]", fix)
        pr.add("lon", bad_lon & ~bad_lat, raw["lon"].to_numpy(), "longitude outside [-180, 360]", fix)
    out["lat"] = lat
    out["lon"] = np.where(fin & (lon >= 180), lon - 360.0, lon)

    if "weight" in raw.columns:
        w = _numeric(raw["weight"])
        # Only an empty cell means "count by document"; a literal NaN is a broken weight.
        text, _ = _text(raw["weight"])
        blank = raw["weight"].isna().to_numpy() | text.eq("").to_numpy()
        badw = ~blank & ~(np.isfinite(w) & (w > 0))
        pr.add("weight", badw, raw["weight"].to_numpy(), "weight must be a finite number > 0",
               "Remove rows with no activity, or leave the weight empty to count documents fractionally.")
        out["weight"] = np.where(blank, np.nan, w)
    else:
        out["weight"] = np.nan
    if "doc_id" in raw.columns:
        doc, blank = _text(raw["doc_id"])
        out["doc_id"] = doc.where(~blank, None)
    else:
        out["doc_id"] = None
    need_doc = out["weight"].isna().to_numpy() & out["doc_id"].isna().to_numpy()
    col = "doc_id" if "doc_id" in raw.columns else "weight"
    pr.add(col, need_doc, np.full(n, "", dtype=object), "row has neither a doc_id nor a weight",
           "Give each record the identifier of its document, or a weight.")

    if "year" in raw.columns:
        y = _numeric(raw["year"])
        blank = _text(raw["year"])[1]
        bady = ~blank & ~(np.isfinite(y) & (np.mod(y, 1) == 0) & (y >= 1000) & (y <= 9999))
        pr.add("year", bady, raw["year"].to_numpy(), "year must be a four-digit integer", "E.g. 2021.")
        out["year"] = pd.array(np.where(np.isfinite(y) & ~bady, y, np.nan), dtype="Float64").astype("Int64")
    else:
        out["year"] = pd.array([pd.NA] * n, dtype="Int64")
    if "country" in raw.columns:
        cc, blank = _text(raw["country"])
        cc = cc.str.upper()
        badc = ~blank & ~cc.str.fullmatch(r"[A-Z]{2}").to_numpy()
        pr.add("country", badc, raw["country"].to_numpy(), "country must be an ISO 3166-1 alpha-2 code",
               "E.g. DE, US, CN; leave it empty when unknown.")
        out["country"] = cc.where(~blank, None)
    else:
        out["country"] = None
    for col in ("institution", "field"):
        out[col] = raw[col].astype(str) if col in raw.columns else None
    if pr.items:
        raise InputDataError(pr.items)
    out["metric"] = out["metric"].astype("category")
    return out


def validate_frame(frame: pd.DataFrame, name: str, metrics: Sequence[str]) -> pd.DataFrame:
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

    if isinstance(frame, gpd.GeoDataFrame):
        frame = _points_to_columns(frame, Path(name))
    df = _validate(frame, Path(name), 1, metrics)
    df["source"] = np.int32(0)
    df["metric"] = df["metric"].astype(pd.CategoricalDtype(list(metrics)))
    return df


def read_records(paths: Iterable[str | Path], metrics: Sequence[str],
                 mappings: Sequence[InputMapping | None] | None = None) -> tuple[pd.DataFrame, dict]:
    """Read and validate activity records from one or more files.

    Parameters
    ----------
    paths : iterable of path-like
        CSV (UTF-8, header row; ``.csv.gz`` and ``.csv.zst`` are decompressed on the fly),
        Parquet, GeoParquet or GeoPackage files.
    metrics : sequence of str
        Metric names allowed in the ``metric`` column (from the config).
    mappings : sequence of InputMapping or None, optional
        Per path, a column mapping and constants applied to the raw table before
        validation (:mod:`cluster.stages._mapping`); ``None`` entries read the file as it is.

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
    frames, files, synthetic, problems = [], [], [], []
    paths = list(paths)
    mappings = list(mappings) if mappings is not None else [None] * len(paths)
    for i, p in enumerate(map(Path, paths)):
        if not p.exists():
            raise UserInputError(f"Input {p} does not exist. Check the path given to {{input}}.")
        if p.is_dir():
            raise UserInputError(f"Input {p} is a directory. Pass files to {{input}}.")
        raw, offset, synth = _read_table(p)
        try:
            raw = apply_mapping(raw, mappings[i], p)
            df = _validate(raw, p, offset, metrics)
        except InputDataError as exc:
            problems += exc.problems
            continue
        df["source"] = np.int32(i)
        frames.append(df)
        synthetic.append(synth)
        files.append({"path": str(p), "bytes": p.stat().st_size, "sha256": file_sha256(p),
                      "records": len(df), "synthetic": synth,
                      **({"mapping": mappings[i].describe()} if mappings[i] else {})})
        log.info("read %s: %s records", p, f"{len(df):,}")
    if problems:
        raise InputDataError(problems)
    if not frames:
        raise UserInputError("No input files given.")
    records = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    records["metric"] = records["metric"].astype(pd.CategoricalDtype(list(metrics)))
    return records, {"synthetic": all(synthetic), "files": files}


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
