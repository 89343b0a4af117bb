"""Fuzzing the readers through the command line: whatever the input file holds, a run ends
with exit code 0 (clustered) or 2 (refused with a message), never 1 (an internal error),
emits no warning, and writes nothing when it refuses.

Inputs start from a small valid table and are mutated the ways real files go wrong:
columns dropped, renamed, re-typed or re-cased, values replaced by odd ones, bytes flipped,
inserted or cut off; then written as CSV (plain, semicolon, gzip), Parquet, GeoParquet or
GeoPackage. ``FUZZ_EXAMPLES`` sets the examples per format (default 10 in ``make test``;
``make fuzz`` runs many more and prints the tally).
"""

from __future__ import annotations

import collections
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.cli import main

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
FORMATS = ["csv", "semicolon.csv", "csv.gz", "parquet", "geoparquet", "gpkg"]
TALLY: collections.Counter = collections.Counter()

ODD_VALUES = ["", "nan", "inf", "-inf", "1e308", "-0", "0", "95", "-181", "360.5", "NaN", "None", "null",
              "true", "2021-01-01", "\u00fc", "\x00", "1,5", " 48.1 ", "[1, 2]", "\"", "'", "\\", "🚀"]
COLUMNS = ["metric", "doc_id", "lat", "lon", "weight", "year", "country", "institution", "field"]


@st.composite
def tables(draw):
    n = draw(st.integers(1, 25))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    df = pd.DataFrame({
        "metric": rng.choice(["patents", "publications", "vc"], n),
        "doc_id": [f"d{i}" for i in rng.integers(0, max(1, n // 2), n)],
        "lat": np.round(48.1 + rng.normal(0, 0.02, n), 4),
        "lon": np.round(11.5 + rng.normal(0, 0.02, n), 4),
    })
    if draw(st.booleans()):
        df["weight"] = np.where(rng.random(n) < 0.5, rng.uniform(0.1, 3, n), np.nan)
    if draw(st.booleans()):
        df["year"] = rng.integers(2015, 2024, n)
    if draw(st.booleans()):
        df["country"] = rng.choice(["DE", "AT", "de", ""], n)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["drop", "rename", "recase", "retype", "odd", "duplicate", "truncate_rows"]))
        # Columns by position: renames may give two columns one name.
        pos = draw(st.integers(0, df.shape[1] - 1))
        name = str(df.columns[pos])
        if op == "drop" and df.shape[1] > 1:
            df = df.drop(columns=df.columns[pos])
        elif op == "rename":
            new = draw(st.sampled_from(COLUMNS + ["latitude", "x", "", "lat "]))
            df.columns = [new if i == pos else c for i, c in enumerate(df.columns)]
        elif op == "recase":
            df.columns = [name.upper() if i == pos else c for i, c in enumerate(df.columns)]
        elif op == "retype":
            kind = draw(st.sampled_from(["bool", "str", "int", "date", "float"]))
            col = df.iloc[:, pos]
            df.isetitem(pos, {"bool": lambda s: s.astype(str).str.len() % 2 == 0, "str": lambda s: s.astype(str),
                              "int": lambda s: pd.to_numeric(s, errors="coerce").fillna(0).astype(np.int64),
                              "date": lambda s: pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(s)), "D"),
                              "float": lambda s: pd.to_numeric(s, errors="coerce")}[kind](col))
        elif op == "odd" and len(df):
            row = draw(st.integers(0, len(df) - 1))
            col = df.iloc[:, pos].astype(object).copy()
            col.iloc[row] = draw(st.sampled_from(ODD_VALUES))
            df.isetitem(pos, col)
        elif op == "duplicate":
            df.insert(df.shape[1], name.upper() if name.upper() != name else name.lower(), df.iloc[:, pos],
                      allow_duplicates=True)
        elif op == "truncate_rows":
            df = df.iloc[: draw(st.integers(0, len(df)))]
    return df


def _write(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "semicolon.csv":
        df.to_csv(path, sep=";", index=False)
    elif fmt == "csv.gz":
        df.to_csv(path, index=False, compression="gzip")
    elif fmt == "parquet":
        df.astype({c: str for c in df.columns if df[c].dtype == object}).to_parquet(path)
    else:
        import geopandas as gpd

        lat = pd.to_numeric(df.get("lat", pd.Series(0.0, index=df.index)), errors="coerce").fillna(0.0)
        lon = pd.to_numeric(df.get("lon", pd.Series(0.0, index=df.index)), errors="coerce").fillna(0.0)
        rest = df.drop(columns=[c for c in ("lat", "lon") if c in df.columns])
        rest = rest.astype({c: str for c in rest.columns if rest[c].dtype == object})
        gdf = gpd.GeoDataFrame(rest, geometry=gpd.points_from_xy(lon, lat), crs=4326)
        if fmt == "gpkg":
            gdf.to_file(path, layer="records")
        else:
            gdf.to_parquet(path)


def _mutate_bytes(data: bytes, draw) -> bytes:
    op = draw(st.sampled_from(["none", "none", "flip", "insert", "cut"]))
    if not data or op == "none":
        return data
    pos = draw(st.integers(0, len(data) - 1))
    if op == "flip":
        return data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1:]
    if op == "insert":
        return data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos:]
    return data[:pos]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(df=tables(), data=st.data())
def test_any_file_gives_exit_0_or_2_and_writes_nothing_when_refused(fmt, df, data):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / f"records.{fmt}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # writing the fixture is not under test
                _write(df, path, fmt)
        except Exception:  # the writer refused the mutated table (e.g. mixed types): nothing to test
            return
        path.write_bytes(_mutate_bytes(path.read_bytes(), data.draw))
        out = tmp / "out"
        err = io.StringIO()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            from contextlib import redirect_stderr

            with redirect_stderr(err):
                code = main(["-qq", "run", "--input", str(path), "--out", str(out), "--eps-km", "5",
                             "--min-weight", "patents=1", "--min-weight", "publications=1",
                             "--min-weight", "vc=1"])
        TALLY[(fmt, code)] += 1
        assert code in (0, 2), err.getvalue()
        if code == 2:
            assert not out.exists() and err.getvalue().startswith("error: ")
            assert sorted(p.name for p in tmp.iterdir()) == [path.name]
        else:
            assert (out / "ranking.csv").exists()


def teardown_module(module):
    if TALLY:
        total = sum(TALLY.values())
        by_code = collections.Counter()
        for (_, code), n in TALLY.items():
            by_code[code] += n
        print(f"\nfuzz: {total} examples ({EXAMPLES} per format x {len(FORMATS)} formats); "
              f"exit codes: {dict(sorted(by_code.items()))}")
