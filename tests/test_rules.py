"""One table of column rules (:mod:`cluster.ingest._rules`), one behaviour on every path.

* every rule's own counter-example (:attr:`Rule.example`) is refused naming that rule's
  column and words, and skipped and counted under that rule alone, alike on the DataFrame
  path, the embedded engine (CSV and Parquet) and Dask;
* the pandas and SQL renderings of each rule agree row by row on a table of edge values
  (NaN, infinities, -0.0, bounds, blanks and their spellings, padding, non-ASCII text);
* the two read paths agree end to end on the same edge table (which rows are left out,
  under which rule): the test that catches a drift between the pandas checks and the
  SQL the engine runs, whatever produced them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cluster.errors import InputDataError
from cluster.ingest import Rejects, open_records, reduce, validate_frame

METRICS = ("patents", "publications", "vc")
GOOD = {"metric": "patents", "doc_id": "A", "lat": "48.1", "lon": "11.5", "weight": "", "year": "2020",
        "country": "DE"}

# Text cells at the edges of the rules, per column (each in an otherwise good row).
EDGES = {
    "metric": ["PATENTS", " patents ", "patent", "", " ", "nan", "vc", "Vc ", "vc\t", "\u00a0vc",
               "publ\u0130cations", "V\u212a"],
    "lat": ["", " ", "nan", "NaN", "None", "<NA>", "inf", "-inf", "Infinity", "1e400", "90", "90.0", "-90",
            "90.0000001", "-90.5", "-0.0", " 48.1 ", "abc", "+48.1", "48,1", ".5", "5.", "1e1", "0x10",
            "1_0", "\u221248.1", "\uff14\uff18", "\t48.1", "48.1\t", "\u00a048.1"],
    "lon": ["", "nan", "-180", "-180.0001", "360", "360.0001", "180", "359.9", "-0.0", "inf", " 11.5", "x"],
    "weight": ["", " ", "nan", "NaN", "None", "<NA>", "0", "-0.0", "-1", "1e-320", "1e400", "inf", "2", " 3 ",
               "abc", "0.5", "1_0", "\t", "\u00a0"],
    "doc_id": ["", " ", "nan", "None", "<NA>", "NaN", " A ", "0", "\t", "\u00a0", " nan", "\tA"],
    "year": ["", " ", "nan", "None", "2020", "2020.0", "2020.5", "999", "1000", "9999", "10000", "-2020", "2e3",
             "inf", " 2020 ", "abc", "0", "2_020", "\t2020", "\t"],
    "country": ["", " ", "de", " DE ", "D1", "DEU", "nan", "None", "ÄÖ", "ß", "dı", "u s", "\tDE", "DE\u00a0"],
}
# Rows that combine cells (a document or a weight, a bad weight and no document ...).
COMBOS = [{"doc_id": "", "weight": "2"}, {"doc_id": "", "weight": "0"}, {"doc_id": "nan", "weight": ""},
          {"doc_id": "", "weight": "nan"}, {"lat": "95", "lon": "400"}, {"lat": "", "lon": "400"},
          {"lat": "4000000", "lon": "5000000"}, {"metric": "x", "country": "Germany", "year": "20"}]


def _edge_rows() -> list[dict]:
    rows = [dict(GOOD, doc_id=f"G{i}") for i in range(3)]
    rows += [dict(GOOD, **{col: v}) for col, values in EDGES.items() for v in values]
    rows += [dict(GOOD, **combo) for combo in COMBOS]
    return rows


def _write_csv(rows: list[dict], path):
    pd.DataFrame(rows, dtype=str).to_csv(path, index=False, lineterminator="\n")
    return path


def _frame_verdicts(frame: pd.DataFrame, name: str = "<DataFrame>") -> tuple[set, int]:
    rejects = Rejects()
    kept = validate_frame(frame, name, METRICS, rejects=rejects)
    return {(row, column, rule) for _, row, column, _, rule in rejects.listed}, len(kept)


def _engine_verdicts(path, offset: int) -> tuple[set, int, dict]:
    records = open_records([path], METRICS, on_bad_rows="skip")
    red = reduce(records, METRICS)
    listed = {(row - offset, column, rule) for _, row, column, _, rule in records.rejects.listed}
    return listed, red.n_records, records.rejects.per_rule


def test_both_read_paths_leave_out_the_same_edge_rows_under_the_same_rules(tmp_path):
    rows = _edge_rows()
    frame = pd.DataFrame(rows, dtype=str)
    want, n_kept = _frame_verdicts(frame)
    got, n_read, _ = _engine_verdicts(_write_csv(rows, tmp_path / "edges.csv"), offset=1)
    assert sorted(got - want) == [] and sorted(want - got) == []
    assert n_read == n_kept
    # Parquet of text columns: the same rows.
    frame.to_parquet(tmp_path / "edges.parquet", index=False)
    got, n_read, _ = _engine_verdicts(tmp_path / "edges.parquet", offset=0)
    assert got == want and n_read == n_kept


def _typed_frame() -> pd.DataFrame:
    nan, inf = np.nan, np.inf
    lat = [48.1, nan, inf, -inf, -0.0, 90.0, 90.0000001, -90.0, -90.5, 48.1, 48.1, 48.1, 48.1, 48.1, 48.1, 48.1]
    lon = [11.5, 11.5, 11.5, 11.5, -0.0, 360.0, 11.5, -180.0, 11.5, 360.5, -180.5, 11.5, 11.5, 11.5, 11.5, 11.5]
    weight = [nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, -0.0, 5e-324, inf, nan]
    year = [2020.0, 2020.0, nan, 2020.5, 999.0, 9999.0, 1000.0, 10000.0, -inf, inf, 2020.0, 2020.0, 2020.0,
            2020.0, 2020.0, 2020.0]
    n = len(lat)
    doc = ["A"] * (n - 1) + [None]
    return pd.DataFrame({"metric": ["patents"] * n, "doc_id": doc, "lat": lat, "lon": lon, "weight": weight,
                         "year": year, "country": ["DE"] * n})


def test_both_read_paths_agree_on_typed_edge_values(tmp_path):
    frame = _typed_frame()
    want, n_kept = _frame_verdicts(frame)
    frame.to_parquet(tmp_path / "typed.parquet", index=False)
    got, n_read, _ = _engine_verdicts(tmp_path / "typed.parquet", offset=0)
    assert got == want and n_read == n_kept
    # The year as a nullable integer column (Parquet INT64 with nulls).
    frame = frame.assign(year=pd.array([2020, None, 999] + [2020] * (len(frame) - 3), dtype="Int64"))
    want, n_kept = _frame_verdicts(frame)
    frame.to_parquet(tmp_path / "typed_int.parquet", index=False)
    got, n_read, _ = _engine_verdicts(tmp_path / "typed_int.parquet", offset=0)
    assert got == want and n_read == n_kept


# --------------------------------------------------------------------------- the table itself

try:
    from cluster.ingest import _rules as rules
except ImportError:  # the code before the table (the end-to-end tests above still run there)
    rules = None
RULES = rules.RULES if rules else [pytest.param(None, marks=pytest.mark.skip(reason="no rules table"))]


def _one_bad(rule, n_good: int = 3) -> pd.DataFrame:
    rows = [dict(rules.GOOD_ROW, doc_id=f"G{i}") for i in range(n_good)]
    rows.append(dict(rules.GOOD_ROW, **rule.example))
    return pd.DataFrame(rows, dtype=str)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: getattr(r, "name", "none"))
def test_each_rules_counter_example_breaks_that_rule_alone(rule):
    bad = rules.violations(rules.FrameCells(_one_bad(rule)), METRICS)
    assert {name: np.flatnonzero(b).tolist() for name, b in bad.items() if b.any()} == {rule.name: [3]}


def _skipped_on(path_kind: str, rule, tmp_path, scheduler=None) -> tuple[dict, list]:
    frame = _one_bad(rule)
    if path_kind == "dataframe":
        rejects = Rejects()
        validate_frame(frame, "<DataFrame>", METRICS, rejects=rejects)
        return rejects.per_rule, [r[1:3] + r[4:] for r in rejects.listed]
    if path_kind == "parquet":
        path = tmp_path / "one.parquet"
        frame.to_parquet(path, index=False)
    else:
        path = _write_csv(frame.to_dict("records"), tmp_path / "one.csv")
    records = open_records([path], METRICS, on_bad_rows="skip")
    if scheduler:
        from cluster.config import load_config

        config = load_config({"engine": {"scheduler": scheduler}})
        reduce(records, METRICS, config)
    else:
        reduce(records, METRICS)
    return records.rejects.per_rule, [r[1:3] + r[4:] for r in records.rejects.listed]


PATHS = ["dataframe", "csv", "parquet"]
# Each read path of cluster.ingest.READ_PATHS and how these tests run the counter-examples on it.
COVERED = {"dataframe": "dataframe", "embedded": "csv, parquet", "dask": "csv on a scheduler (slow)"}


def test_every_read_path_meets_the_counter_examples():
    from cluster.ingest import READ_PATHS

    assert set(COVERED) == set(READ_PATHS)


@pytest.mark.parametrize("path_kind", PATHS)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: getattr(r, "name", "none"))
def test_each_rules_counter_example_is_counted_under_that_rule_on_every_path(rule, path_kind, tmp_path):
    per_rule, listed = _skipped_on(path_kind, rule, tmp_path)
    row = 4 + (path_kind == "csv")  # records are numbered from 1, CSV lines from the header
    assert per_rule == {rule.counted_as: 1}
    assert listed == [(row, rule.column, rule.what)]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_each_rules_counter_example_is_counted_alike_on_dask(scheduler, tmp_path):
    for rule in rules.RULES:
        assert _skipped_on("csv", rule, tmp_path, scheduler) == _skipped_on("csv", rule, tmp_path), rule.name


@pytest.mark.parametrize("path_kind", PATHS)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: getattr(r, "name", "none"))
def test_each_rules_counter_example_is_refused_naming_file_row_column_value_and_fix(rule, path_kind, tmp_path):
    frame = _one_bad(rule)
    row = 4 + (path_kind == "csv")
    with pytest.raises(InputDataError) as exc:
        if path_kind == "dataframe":
            validate_frame(frame, "<DataFrame>", METRICS)
        else:
            path = tmp_path / f"one.{path_kind}"
            if path_kind == "csv":
                _write_csv(frame.to_dict("records"), path)
            else:
                frame.to_parquet(path, index=False)
            reduce(open_records([path], METRICS), METRICS)
    name = "<DataFrame>" if path_kind == "dataframe" else f"one.{path_kind}"
    shown = frame[rule.column][3]
    if rule.shows is not None:  # what the rule shows instead of the cell (e.g. the metric in lower case)
        value = rules.to_numpy(rule.shows, rules.FrameCells(frame), {"metrics": METRICS})
        shown = value if np.ndim(value) == 0 else pd.Series(value).fillna("").iloc[3]
    fix = rule.fix.format(metrics=", ".join(METRICS))
    assert exc.value.rows == 1
    assert f"{name}, row {row}, column '{rule.column}': {rule.what} (got {shown!r}). {fix}" in str(exc.value)


def test_the_sql_and_numpy_renderings_of_each_rule_agree_on_edge_values(tmp_path):
    """Each rule's SQL flag (engine._normalized, per_rule) against its numpy rendering,
    row by row, on text (CSV) and typed (Parquet) cells."""
    import duckdb

    from cluster.ingest import engine

    text = pd.DataFrame(_edge_rows(), dtype=str)
    for frame, path in ((text, _write_csv(text.to_dict("records"), tmp_path / "e.csv")),
                        (_typed_frame(), tmp_path / "t.parquet")):
        frame = frame.assign(rowid=np.arange(len(frame)).astype(str))
        if path.suffix == ".csv":
            _write_csv(frame.to_dict("records"), path)
        else:
            frame.to_parquet(path, index=False)
        want = rules.violations(rules.FrameCells(frame), METRICS)
        records = open_records([path], METRICS)
        con = duckdb.connect()
        (scan,) = records.scans
        sql = engine._normalized(scan, METRICS, engine._scan_source(scan), raw=True, per_rule=True)
        raw_row = f"_raw_{list(engine._raw_names(scan)).index('rowid')}"
        got = con.sql(f"SELECT * FROM ({sql}) ORDER BY CAST({raw_row} AS INTEGER)").df()
        for rule in rules.RULES:
            flags = got[engine._rule_flag(rule)].to_numpy(dtype=bool)
            differ = np.flatnonzero(flags != want[rule.name])
            assert differ.size == 0, (rule.name, path.suffix, frame.iloc[differ].to_dict("records"))
        ok = ~np.logical_or.reduce([want[r.name] for r in rules.RULES])
        assert (got["ok"].to_numpy(dtype=bool) == ok).all()
        assert (got["row_ok"].to_numpy(dtype=bool)
                == ~np.logical_or.reduce([want[r.name] for r in rules.RULES if not r.key])).all()
        # The records the two renderings of the normalisations make of the rows kept.
        cells = rules.FrameCells(frame)
        for col, expr in rules.NORMALISED.items():
            mine = pd.Series(rules.to_numpy(expr, cells, {"metrics": METRICS}))[ok].reset_index(drop=True)
            sql = got[col][ok].reset_index(drop=True)
            if col == "year":
                sql = sql.astype(float)
            pd.testing.assert_series_equal(sql.astype(mine.dtype), mine, check_names=False, obj=col)


def test_renderings_of_the_expression_form():
    cells = rules.FrameCells(pd.DataFrame({"lat": ["1", "", "x"], "country": [" de", "nan", "D1"]}))
    check = rules.finite(rules.num("lat")) & (rules.num("lat") > 0)
    assert rules.to_numpy(check, cells).tolist() == [True, False, False]
    assert rules.to_sql(check, lambda kind, col: f"{kind}_{col}") == "(isfinite(num_lat) AND (num_lat > 0))"
    assert rules.leaves(rules.BY_NAME["doc_or_weight"].check) == {("blank", "doc_id"), ("empty", "weight"),
                                                                   ("num", "weight")}
    assert rules.numpy_bad(rules.BY_NAME["country_code"], cells).tolist() == [False, False, True]


def test_rows_per_rule_are_exact_past_the_rows_the_engine_words(tmp_path, monkeypatch):
    """The engine words the first suspect rows of a file (100,000); the counts per rule
    are the engine's own, exact for all of them."""
    from cluster.ingest import engine

    monkeypatch.setattr(engine, "_MAX_SUSPECT_ROWS", 3)
    rows = [dict(GOOD, doc_id=f"G{i}") for i in range(4)]
    rows += [dict(GOOD, lat="")] * 5 + [dict(GOOD, year="20")] * 4 + [dict(GOOD, doc_id="", lat="95")] * 2
    records = open_records([_write_csv(rows, tmp_path / "r.csv")], METRICS, on_bad_rows="skip")
    red = reduce(records, METRICS)
    assert red.n_records == 4 and records.rejects.rows == 11
    assert records.rejects.per_rule == {"lat: missing or non-numeric coordinate": 5,
                                         "year: year must be a four-digit integer": 4,
                                         "lat: latitude outside [-90, 90]": 2,
                                         "doc_id: row has neither a doc_id nor a weight": 2}
    assert records.rejects.per_rule_exact is True


def test_a_country_python_upper_cases_to_two_letters_is_refused_alike(tmp_path):
    """'ß'.upper() is 'SS' in Python (a code) and 'ẞ' in DuckDB: the pandas check accepted
    what the engine's SQL refused (a run then stopped with "the engine flagged rows the
    validator accepts", or left the row out unlisted)."""
    rows = [dict(GOOD, doc_id="A"), dict(GOOD, doc_id="B", country="ß")]
    msg = r"row 2, column 'country': country must be an ISO 3166-1 alpha-2 code \(got 'ß'\)"
    with pytest.raises(InputDataError, match=msg):
        validate_frame(pd.DataFrame(rows), "<DataFrame>", METRICS)
    with pytest.raises(InputDataError, match=msg.replace("row 2", "row 3")):
        reduce(open_records([_write_csv(rows, tmp_path / "r.csv")], METRICS), METRICS)


def test_a_rule_comes_only_after_rules_checked_in_the_same_place():
    """The engine checks the grouping keys' rules per group and the others per row, and
    drops a rule's guards in their conjunction (``A and (not A or B)`` is ``A and B``):
    valid only when the rules a rule comes after are checked in the same place."""
    for rule in rules.RULES:
        assert all(rules.BY_NAME[name].key == rule.key for name in rule.after), rule.name
        assert [r.name for r in rules.RULES].index(rule.name) > max(
            ([r.name for r in rules.RULES].index(n) for n in rule.after), default=-1)


@pytest.mark.parametrize(("column", "value"), [("lat", "1_0"), ("year", "2_020"), ("doc_id", "\t"),
                                               ("doc_id", "\u00a0"), ("country", "ß"),
                                               ("metric", "publ\u0130cations")])
def test_cells_the_two_paths_once_judged_differently_are_judged_alike(column, value, tmp_path):
    """Drifts the edge table found between pandas and the engine's SQL: DuckDB read '1_0'
    as 10 (pandas: not a number); pandas stripped a tab or a no-break space to nothing (a
    blank doc_id; DuckDB trims spaces only); 'ß' upper-cased to the code 'SS' in Python only;
    'İ' lower-cased to 'i' in DuckDB and to 'i̇' in Python (the metric 'publications' or not)."""
    rows = [dict(GOOD, doc_id="G"), dict(GOOD, **{column: value})]
    frame_rejects = Rejects()
    validate_frame(pd.DataFrame(rows, dtype=str), "<DataFrame>", METRICS, rejects=frame_rejects)
    _, n_read, per_rule = _engine_verdicts(_write_csv(rows, tmp_path / "r.csv"), offset=1)
    assert per_rule == frame_rejects.per_rule
    assert n_read == 2 - frame_rejects.rows
