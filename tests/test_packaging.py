"""Packaging: what a plain install holds, what the extras add, and the message when an
optional feature's extra is missing."""

import sys
import tomllib
from pathlib import Path

import pytest
from shapely.geometry import box

from cluster.errors import UserInputError

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]


def _names(requirements):
    import re

    return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_a_plain_install_leaves_out_the_optional_features():
    core = _names(PYPROJECT["dependencies"])
    assert "rtree" not in core  # nothing imports it
    assert not {"rasterio", "exactextract", "dask", "s3fs", "jupyterlab", "pytest"} & core
    extras = PYPROJECT["optional-dependencies"]
    assert _names(extras["raster"]) == {"rasterio", "exactextract"}
    assert {"jupyterlab", "ipywidgets"} <= _names(extras["notebook"])
    assert {"rasterio", "exactextract", "pytest", "nbclient"} <= _names(extras["test"])


def test_no_module_imports_a_package_that_is_not_declared():
    import ast

    declared = _names(PYPROJECT["dependencies"]) | {n for e in PYPROJECT["optional-dependencies"].values()
                                                     for n in _names(e)}
    aliases = {"sklearn": "scikit-learn", "yaml": "pyyaml", "distributed": "dask", "affine": "rasterio",
               "fsspec": "s3fs",  # s3fs brings it (the [s3] extra)
               "IPython": "ipykernel", "ipywidgets": "ipywidgets"}
    stdlib = set(sys.stdlib_module_names)
    missing = set()
    for path in (ROOT / "cluster").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top in stdlib or top == "cluster":
                    continue
                if aliases.get(top, top).lower() not in declared:
                    missing.add((top, str(path.relative_to(ROOT))))
    assert not missing, sorted(missing)


def test_raster_population_without_its_extra_names_the_extra(monkeypatch, tmp_path):
    from cluster.stages.population import raster_sums

    monkeypatch.setitem(sys.modules, "rasterio", None)  # as if not installed
    with pytest.raises(UserInputError, match=r"pip install 'innovation-clusters\[raster\]'"):
        raster_sums([box(0, 0, 1, 1)], tmp_path / "pop.tif")
