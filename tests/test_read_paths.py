"""Every read path meets the whole bad-input corpus (tests/data/bad/input_*).

The paths are enumerated in :data:`cluster.ingest.READ_PATHS`; this test has one runner
per path and fails when a path has none, so a new path cannot skip the corpus. Each
case must give, on each path where it applies, the same kind of message as the command
line's expected one (``case.json``): the same rule and column, the row (a DataFrame
numbers records, a CSV lines), naming the file (``<DataFrame>`` for a frame) and the fix.

* ``dataframe``: the case's file read by pandas/geopandas as it is, given to
  :func:`cluster.run` as a frame (cases about the file itself, which no frame can hold,
  do not apply);
* ``embedded``: ``cluster run`` in this process (DuckDB);
* ``dask``: :func:`cluster.run` with ``scheduler`` on a loopback ``LocalCluster``,
  worded as the command line would (exactly the embedded engine's message).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest

import cluster
import cluster.ingest as ingest
from cluster.cli import main
from cluster.errors import UserInputError

BAD = Path(__file__).parent / "data" / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.name.startswith("input_") and (p / "case.json").is_file())
ROW = re.compile(r"row (\d+), column '(\w+)': ([^(]+?) \(got")


def _spec(case: str, tmp_path: Path) -> tuple[dict, list[str], Path]:
    spec = json.loads((BAD / case / "case.json").read_text("utf-8"))
    work = tmp_path / case
    shutil.copytree(BAD / case, work)
    return spec, shlex.split(spec["args"].format(dir=work)), work


def _api_kwargs(args: list[str]) -> dict | None:
    """``cluster.run`` arguments of a case's command line (None: options the API path lacks)."""
    names = {"--input": "data", "--layer": "layer", "--year-start": "year_start", "--year-end": "year_end"}
    if len(args) % 2 or any(a not in names for a in args[::2]):
        return None
    kw = {names[k]: v for k, v in zip(args[::2], args[1::2])}
    for k in ("year_start", "year_end"):
        if k in kw:
            kw[k] = int(kw[k])
    return kw


def _embedded(spec, args, work, capsys, address) -> str:
    code = main(["-qq", "run", *args, "--out", str(work / "out")])
    assert code == spec["exit"]
    return capsys.readouterr().err


def _dask(spec, args, work, capsys, address) -> str:
    kw = _api_kwargs(args)
    if kw is None:
        pytest.skip("options the Python API names otherwise")
    with pytest.raises(UserInputError) as exc:
        cluster.run(scheduler=address, **kw)
    return exc.value.for_cli()


def _frame(path: Path) -> pd.DataFrame | None:
    """The case's file as a frame, read as it is (None when no frame can hold it)."""
    import geopandas as gpd

    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        if path.suffix == ".parquet":
            try:
                return gpd.read_parquet(path)
            except (ValueError, KeyError):
                return pd.read_parquet(path)
        if path.suffix == ".gpkg":
            import pyogrio

            if len(pyogrio.list_layers(path)) > 1:
                return None  # a layer is chosen from a file, not a frame
            return gpd.read_file(path)
    except Exception:  # noqa: BLE001 - the problem is the file's, not a record's
        return None
    return None


def _dataframe(spec, args, work, capsys, address) -> str:
    kw = _api_kwargs(args)
    path = Path(kw["data"]) if kw else None
    about_records = any(w in spec["message"] for w in ("column", "row ", "year window"))
    frame = _frame(path) if about_records and path is not None and path.is_file() else None
    if frame is None or frame.empty:
        pytest.skip("a problem of the file itself (no frame holds it)")
    kw.pop("data")
    kw.pop("layer", None)
    with pytest.raises(UserInputError) as exc:
        cluster.run(frame, **kw)
    return exc.value.for_cli()


RUNNERS = {"dataframe": _dataframe, "embedded": _embedded, "dask": _dask}


def test_every_read_path_has_a_runner():
    assert set(RUNNERS) == set(ingest.READ_PATHS)


@pytest.fixture(scope="module")
def address():
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as local:
        yield local.scheduler_address


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("path", [p if p != "dask" else pytest.param(p, marks=pytest.mark.slow)
                                  for p in ingest.READ_PATHS])
@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_the_same_kind_of_message_on_every_path(case, path, tmp_path, capsys, request):
    spec, args, work = _spec(case, tmp_path)
    where = request.getfixturevalue("address") if path == "dask" else None
    message = RUNNERS[path](spec, args, work, capsys, where)
    assert "Traceback" not in message
    expected = spec["message"]
    if path != "dataframe":
        assert expected in message, message
        return
    # A frame: the same rule on the same column, rows numbered as records, named <DataFrame>.
    assert "<DataFrame>" in message or "The records" in message or "year window" in message, message
    want = ROW.search(expected)
    if want:
        row, column, rule = want.groups()
        row = int(row) - (1 if Path(_api_kwargs(args)["data"]).suffix == ".csv" else 0)
        assert f"row {row}, column '{column}': {rule} (got" in message, message
    else:
        fixed = expected.split(": ", 1)[-1] if ": " in expected else expected
        assert fixed.split(".")[0] in message, message
