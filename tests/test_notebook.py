"""The notebooks (notebooks/quickstart.ipynb, notebooks/tuning.ipynb) are committed with
their outputs (scripts/run_notebooks.py), so a reader sees the tables and pictures without
running anything; here they are re-run headless on a small demo, and use the public API only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "tuning.ipynb"


@pytest.mark.parametrize("name, pictures", [("tuning.ipynb", 3), ("quickstart.ipynb", 2)])
def test_notebook_is_committed_with_its_outputs(name, pictures):
    nb = json.loads((NOTEBOOKS / name).read_text("utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), "run scripts/run_notebooks.py before committing"
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "run it top to bottom"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= pictures
    for cell in nb["cells"]:
        assert "attachments" not in cell or not cell["attachments"]


@pytest.mark.parametrize("name", ["tuning.ipynb", "quickstart.ipynb"])
def test_notebook_uses_the_public_api(name):
    nb = json.loads((NOTEBOOKS / name).read_text("utf-8"))
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    imports = [line for line in source.splitlines() if line.startswith(("import cluster", "from cluster"))]
    # the package itself and its demo world; never the stages, the pipeline or the tools' modules
    assert imports and all(line in ("import cluster", "from cluster.demo import generate_demo") for line in imports), \
        imports


def _execute(path: Path, tmp_path: Path, monkeypatch):
    """Run a notebook in a kernel of this interpreter, with inline figures; return it."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    # A kernel spec pointing at this interpreter, so the kernel is the venv's whatever
    # other "python3" kernels the machine has.
    spec = tmp_path / "jupyter" / "kernels" / "cluster-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cluster test kernel", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="cluster-test", timeout=300,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def _outputs(nb, kind=None):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if kind is None or o.output_type == kind]


@pytest.mark.slow
def test_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNING_RECORDS", "30000")
    nb = _execute(NOTEBOOK, tmp_path, monkeypatch)
    images = [o for o in _outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # heat maps, k-distance curve, the two maps
    errors = _outputs(nb, "error")
    assert not errors
    table = next(o for o in _outputs(nb) if "text/html" in o.get("data", {}))
    assert "adjusted_rand" in table["data"]["text/html"]  # the sweep's table


@pytest.mark.slow
def test_quickstart_runs_on_a_dataframe_and_a_geodataframe(tmp_path, monkeypatch):
    from cluster.outputs import OUTPUT_FILES

    monkeypatch.setenv("QUICKSTART_RECORDS", "30000")
    monkeypatch.setenv("QUICKSTART_OUT", str(tmp_path / "out"))
    nb = _execute(NOTEBOOKS / "quickstart.ipynb", tmp_path, monkeypatch)
    assert not _outputs(nb, "error")
    # res.plot() shows inline, before and after res.write() (which must not switch backends)
    assert sum("image/png" in o.get("data", {}) for o in _outputs(nb)) == 2
    printed = "".join(o.get("text", "") for o in _outputs(nb, "stream"))
    assert "same clusters as from the DataFrame: True" in printed
    assert "[clustering] eps_km must be in [0.01, 5000] km, got -5" in printed
    assert set(OUTPUT_FILES) <= {p.name for p in (tmp_path / "out").iterdir()}
    html = [o["data"]["text/html"] for o in _outputs(nb) if "text/html" in o.get("data", {})]
    assert any("cluster-runresult" in h for h in html)  # the result's own display
    assert any(h.startswith("<iframe srcdoc=") for h in html)  # explore(): the offline map
