"""Every public function and class documents itself the numpydoc way, and the examples run.

Public: a module-level name without a leading underscore, in a module whose path has no
part starting with an underscore. A function with arguments has a ``Parameters``
section, a function a ``Returns`` (or ``Yields``) section; a class has a docstring.
"""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "cluster"


def _public_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        if any(part.startswith("_") and part != "__init__.py" for part in rel.parts):
            continue
        yield path, ".".join(rel.with_suffix("").parts).removesuffix(".__init__")


def _missing(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    out = []
    for node in ast.parse(path.read_text("utf-8")).body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) or node.name.startswith("_"):
            continue
        doc = ast.get_docstring(node) or ""
        where = f"{path.relative_to(root)}:{node.lineno} {node.name}"
        if not doc:
            out.append(f"{where}: no docstring")
            continue
        if isinstance(node, ast.FunctionDef):
            args = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                    if a.arg not in ("self", "cls")]
            if (args or node.args.vararg or node.args.kwarg) and "Parameters\n" not in doc:
                out.append(f"{where}: no Parameters section")
            if "Returns\n" not in doc and "Yields\n" not in doc:
                out.append(f"{where}: no Returns section")
    return out


def test_public_functions_have_numpydoc_sections():
    missing = [m for path, _ in _public_modules() for m in _missing(path)]
    assert not missing, "\n".join(missing)


def test_the_check_finds_a_bare_function(tmp_path):
    bare = tmp_path / "m.py"
    bare.write_text("def f(x):\n    \"\"\"Does f.\"\"\"\n\n\nclass C:\n    pass\n")
    problems = _missing(bare, tmp_path)
    assert problems == ["m.py:1 f: no Parameters section", "m.py:1 f: no Returns section", "m.py:5 C: no docstring"]


@pytest.mark.parametrize("module", [m for _, m in _public_modules()])
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    failures, _ = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert failures == 0
