"""The corpus in tests/data/bad/: each case must fail with its exact message and exit code,
and create or change no output.

A case is a directory holding its input files and ``case.json``: the ``cluster run``
arguments (``{dir}`` is the case's copy), the exit code and the message expected on stderr.
"""

import json
import shlex
import shutil
from pathlib import Path

import pytest

from cluster.cli import main

BAD = Path(__file__).parent / "data" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if (p / "case.json").is_file())


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.filterwarnings("error")  # a warning would surface as an internal error (exit 1)
@pytest.mark.parametrize("case", CASES)
def test_bad_case(case, tmp_path, capsys):
    spec = json.loads((BAD / case / "case.json").read_text("utf-8"))
    work = tmp_path / case
    shutil.copytree(BAD / case, work)
    args = shlex.split(spec["args"].format(dir=work))
    if "--out" not in args:
        args += ["--out", str(work / "out")]
    before = _snapshot(tmp_path)
    try:
        code = main(["-qq", "run", *args])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == spec["exit"], err
    assert spec["message"] in err, err
    assert "Traceback" not in err
    assert _snapshot(tmp_path) == before  # nothing created, nothing changed, no debris
