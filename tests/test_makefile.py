"""``make clean`` removes what every Makefile target writes (issue 25: it left
``out-pv2000``, ``out-pv2013`` and ``out-compare`` behind)."""

from __future__ import annotations

import re
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[1] / "Makefile"


def _recipes(text: str) -> dict[str, str]:
    """target -> its recipe (continuation lines joined)."""
    text = text.replace("\\\n", " ")
    recipes, target = {}, None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+):", line)
        if m:
            target = m.group(1)
            recipes[target] = ""
        elif line.startswith("\t") and target:
            recipes[target] += line + "\n"
    return recipes


def test_clean_removes_every_out_folder():
    recipes = _recipes(MAKEFILE.read_text())
    removed = set(recipes["clean"].split())
    written = set()
    for target, recipe in recipes.items():
        if target != "clean":
            written |= set(re.findall(r"--out\s+(\S+)", recipe))
    assert {"out-pv2000", "out-pv2013", "out-compare"} <= written
    assert written, "no --out found: the Makefile changed shape"
    assert written <= removed, sorted(written - removed)
    assert "benchmarks/data" in removed  # `make bench` writes its records there


def test_index_real_uses_no_synthetic_table():
    """`make index-real` joined the synthetic demo tables to the real clusters (issue 25)."""
    recipe = _recipes(MAKEFILE.read_text())["index-real"]
    assert "DEMO_TABLES" not in recipe and "data/demo" not in recipe
    assert "--allow-synthetic" not in recipe
