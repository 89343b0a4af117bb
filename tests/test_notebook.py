"""The notebooks (notebooks/quickstart.ipynb, notebooks/tuning.ipynb) run headless on a small
demo, and are committed without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "tuning.ipynb"


@pytest.mark.parametrize("name", ["tuning.ipynb", "quickstart.ipynb"])
def test_notebook_is_stripped(name):
    nb = json.loads((NOTEBOOKS / name).read_text("utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], "commit the notebook without outputs"
            assert cell["execution_count"] is None, "commit the notebook without execution counts"
        assert "attachments" not in cell or not cell["attachments"]


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
