"""Execute the notebooks in notebooks/ in place, so they are committed with their outputs
(tables and pictures a reader sees without running anything).

    python scripts/run_notebooks.py [NAME.ipynb ...]

Each runs in a kernel of this interpreter from a temporary folder (the files a notebook
writes stay out of the tree), with progress bars off (TQDM_DISABLE: a bar's redraws are
noise in a saved output) and no execution timestamps, so a re-run changes the file only
where an output changed. tests/test_notebook.py re-runs them on smaller inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kernel_env(folder: Path) -> str:
    """A kernel spec for this interpreter under ``folder`` (JUPYTER_PATH); returns its name."""
    spec = folder / "kernels" / "cluster-notebooks"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    return "cluster-notebooks"


def execute(path: Path, work: Path, *, timeout_s: int = 900):
    """Run the notebook at ``path`` in ``work``; return it with its outputs."""
    import nbclient
    import nbformat

    name = kernel_env(work / "jupyter")
    os.environ["JUPYTER_PATH"] = str(work / "jupyter")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ["TQDM_DISABLE"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, kernel_name=name, timeout=timeout_s, record_timing=False,
                            resources={"metadata": {"path": str(work)}}).execute()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


def main(argv=None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=["quickstart.ipynb", "tuning.ipynb"])
    args = parser.parse_args(argv)
    for name in args.names:
        path = ROOT / "notebooks" / name
        with tempfile.TemporaryDirectory(prefix="cluster-notebook-") as work:
            nb = execute(path, Path(work))
        nbformat.write(nb, path)
        print(f"executed {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
