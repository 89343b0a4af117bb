"""The house's one-way streets: imports point from the command line down to the engine.

Layers, top to bottom: the package API and the command line; the tools on top (tuning,
demo, editions, composite indices); the pipeline; the outputs; the stages; the engine
and configuration; the base modules (errors, provenance, version). A module may import
its own layer or lower ones, never a higher one, and the import graph (function-level
imports included) has no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "cluster"

LAYERS = [
    ("cluster._version", "cluster._progress", "cluster._cache", "cluster._atomic", "cluster._runtime",
     "cluster.errors", "cluster.provenance"),
    ("cluster.config", "cluster.engine"),
    ("cluster.ingest",),
    ("cluster.stages",),
    ("cluster.outputs",),
    ("cluster.pipeline",),
    ("cluster.tuning", "cluster.demo", "cluster.editions", "cluster.composite"),
    ("cluster.cli", "cluster.__main__", "cluster._api", "cluster"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # "cluster" itself (the API in __init__) is a layer; its submodules are not.
            if module == prefix or (prefix != "cluster" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (level, len(prefix))
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best[0]


def _imports(path: Path, module: str) -> set[str]:
    """Every cluster module imported anywhere in the file (functions included)."""
    tree = ast.parse(path.read_text("utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "cluster"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] == "cluster":
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    return {(m := _module_name(p)): _imports(p, m) for p in sorted(PACKAGE.rglob("*.py"))}


def test_imports_never_point_upwards():
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            if _layer(target) > _layer(module):
                wrong.append(f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})")
    assert not wrong, "\n".join(wrong)


def test_no_stage_imports_outputs_tuning_or_cli():
    bad = [(m, t) for m, ts in _graph().items() if m.startswith("cluster.stages") for t in ts
           if t.startswith(("cluster.outputs", "cluster.tuning", "cluster.cli", "cluster.pipeline", "cluster.demo"))]
    assert not bad


def test_stages_and_pipeline_use_only_the_ingestion_interface():
    """One package in: the stages and the pipeline import ``cluster.ingest`` itself (its
    public names), never its modules; the ingestion package imports no stage."""
    graph = _graph()
    deep = [(m, t) for m, ts in graph.items() if m.startswith(("cluster.stages", "cluster.pipeline"))
            for t in ts if t.startswith("cluster.ingest.")]
    assert not deep, deep
    up = [(m, t) for m, ts in graph.items() if m.startswith("cluster.ingest") for t in ts
          if t.startswith(("cluster.stages", "cluster.pipeline"))]
    assert not up, up
    assert "cluster.ingest" in graph["cluster.pipeline"] and "cluster.ingest" in graph["cluster.stages.sites"]


def test_import_graph_has_no_cycle():
    graph = _graph()
    modules = set(graph)

    def resolve(target: str) -> str | None:
        # `from cluster.stages.places import x` is an edge to that module; `from cluster import x`
        # to the package's __init__.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {r for t in ts if (r := resolve(t)) and r != m} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_the_layers_test_sees_real_imports():
    graph = _graph()
    assert "cluster.stages.clustering" in graph["cluster.pipeline"]
    assert "cluster.engine.dbscan" in graph["cluster.stages.clustering"]


@pytest.mark.slow
def test_a_run_imports_no_tuning_cli_or_demo_code():
    code = (
        "import sys, pandas as pd, cluster\n"
        "rows = [{'metric': 'patents', 'doc_id': f'd{i}', 'lat': 48.1 + (i % 5) * 0.01, 'lon': 11.5}\n"
        "        for i in range(30)]\n"
        "res = cluster.run(pd.DataFrame(rows), min_weight={'patents': 3}, top_n=5)\n"
        "assert len(res.clusters) == 1\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cluster.tuning', 'cluster.cli', 'cluster.demo',"
        " 'cluster.outputs'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
