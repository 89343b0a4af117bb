"""Every CSV of the tool has pandas' bytes, whichever way :func:`write_csv` builds them.

:func:`cluster.outputs._text.write_csv` formats the common column types column by column
with Arrow (``profiles.csv`` holds ~400 k rows at 10 M records) and hands any other table to
pandas. The reference here is pandas itself: ``csv_safe(df).to_csv(index=False,
lineterminator="\\n")``, what every CSV was written with before. Edge values: floats of
every magnitude and form (``-0.0``, integral, tiny, huge, NaN, inf, random bit patterns),
text with commas, quotes, line ends, formula starts, non-ASCII and missing values, in each
of pandas' text types.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster.outputs._text import _csv_parts, csv_safe, write_csv

TEXTS = ["plain", "", "a,b", 'say "hi"', '"', ",", "line\nbreak", "\n", "cr\rhere", "a\r\nb", "tab\there",
         " lead", "trail ", "=SUM(A1)", "-3", "+1", "@x", "'q", "ünïcödé – ok", "x\x00y", "\u2028", "😀",
         None, np.nan]
FLOATS = [0.0, -0.0, 1.0, -1.0, 100.0, 1e15, 1e16, 1e22, 9007199254740993.0, 4503599627370495.5, 1e-4,
          9.9999e-5, 1e-5, 1e-7, -1e-4, 0.1 + 0.2, 2.5, 1234.5678, 123456789012345.67, 5e-324,
          1.7976931348623157e308, np.inf, -np.inf, np.nan]


def _pandas(df: pd.DataFrame) -> bytes:
    return csv_safe(df).to_csv(index=False, lineterminator="\n").encode("utf-8")


def _written(df: pd.DataFrame, tmp_path) -> bytes:
    return write_csv(df, tmp_path / "t.csv").read_bytes()


def _fast_path_taken(df: pd.DataFrame) -> bool:
    return _csv_parts(csv_safe(df)) is not None


@pytest.mark.parametrize("text_dtype", [object, "str", "string"])
def test_edge_values_give_pandas_bytes(tmp_path, text_dtype):
    n = len(TEXTS) * len(FLOATS)
    text = pd.Series([TEXTS[i % len(TEXTS)] for i in range(n)], dtype=text_dtype)
    df = pd.DataFrame({"name": text, "rank": np.arange(n), "weight": [FLOATS[i % len(FLOATS)] for i in range(n)],
                       "flag": np.arange(n) % 3 == 0, "small": np.arange(n, dtype=np.uint8),
                       "neg": -np.arange(n, dtype=np.int32),
                       "maybe": pd.array([None if i % 4 == 0 else i for i in range(n)], dtype="Int64"),
                       "=formula header": text.iloc[::-1].to_numpy()})
    assert _fast_path_taken(df)
    assert _written(df, tmp_path) == _pandas(df)


def test_floats_of_every_magnitude_give_pandas_bytes(tmp_path):
    rng = np.random.default_rng(22)
    n = 60_000
    bits = rng.integers(0, 2**63, n, dtype=np.uint64).view(np.float64)  # every form, NaN payloads
    scaled = rng.random(n) * 10.0 ** rng.integers(-9, 22, n) * rng.choice([-1, 1], n)
    rounded = np.concatenate([np.round(rng.random(n // 7) * 10.0 ** rng.integers(-3, 9, n // 7), k)
                              for k in range(7)])
    for x in (bits, scaled, rounded):
        with np.errstate(over="ignore", invalid="ignore"):  # rounding huge values: inf, NaN
            df = pd.DataFrame({"i": np.arange(len(x)), "x": x, "share": np.round(x, 6)})
        assert _written(df, tmp_path) == _pandas(df)


def test_other_tables_are_written_by_pandas(tmp_path):
    tables = [pd.DataFrame({"only": ["", None, "a"]}),  # a lone empty field is written ""
              pd.DataFrame({"a": [1, 2], "when": pd.to_datetime(["2020-01-01", "2021-06-30"])}),
              pd.DataFrame({"a": [1, 2], "f32": np.array([0.1, 2.5], dtype=np.float32)}),
              pd.DataFrame({"a": [1, 2], "mixed": ["x", 3]}, dtype=object),
              pd.DataFrame({"a": [1, 2], "c": pd.Categorical([0.5, 1e-7])}),  # categories of floats
              pd.DataFrame({"a": pd.Series([], dtype=int), "b": pd.Series([], dtype=float)})]
    for df in tables:
        assert _written(df, tmp_path) == _pandas(df), df.dtypes.to_dict()
    assert not any(_fast_path_taken(df) for df in tables[:-1])


@pytest.mark.parametrize("text_dtype", [object, "str"])
def test_categoricals_of_text_and_integers_give_pandas_bytes(tmp_path, text_dtype):
    # profiles.csv writes its repeated columns (rank, cluster id, name, metric, kind) as
    # categoricals: each category is formatted once and the cells taken by their codes.
    n = len(TEXTS) * 3
    names = [t for t in TEXTS if isinstance(t, str)]
    text = pd.Series([TEXTS[i % len(TEXTS)] for i in range(n)], dtype=text_dtype)
    df = pd.DataFrame({"rank": pd.Categorical([(i * 7) % 11 - 3 for i in range(n)]),
                       "name": pd.Categorical(text, categories=pd.Index(names[::-1], dtype=text_dtype)),
                       "safe": pd.Categorical([["a", "b,c", None][i % 3] for i in range(n)]),
                       "id": pd.Categorical.from_codes([i % 4 - 1 for i in range(n)], categories=[10, 20, 30]),
                       "weight": np.arange(n) / 7.0})
    assert _fast_path_taken(df)
    assert _written(df, tmp_path) == _pandas(df)
    assert _written(df.iloc[:0], tmp_path) == _pandas(df.iloc[:0])
