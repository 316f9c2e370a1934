"""The package has no import cycles, at module level nor through deferred (in-function) imports.

The graph is read from the source with ``ast`` by ``scripts/import_cycles.py`` (nothing is
imported); a cycle found there fails here with the modules and edges that form it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "sedinfer"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_cycles", module)
    spec.loader.exec_module(module)
    return module


def _describe(graph: dict[str, set[str]], comps: list[list[str]]) -> str:
    lines = []
    for comp in comps:
        members = set(comp)
        lines += [f"{m} -> {', '.join(sorted(graph[m] & members))}" for m in comp]
    return "; ".join(lines)


@pytest.mark.parametrize("nested", [False, True], ids=["module-level", "with-deferred"])
def test_no_import_cycles(tool, nested):
    graph = tool.import_graph(SRC, nested=nested)
    assert "sedinfer.cli" in graph and "sedinfer.posterior.galaxies" in graph
    comps = tool.cycles(graph)
    assert not comps, f"import cycles: {_describe(graph, comps)}"


def test_cycle_finder_sees_cycles(tool, tmp_path):
    """The finder itself: a two-module cycle through a deferred import and a ``from pkg import``."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.b import B\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from pkg import a\nB = 1\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    module_level = tool.import_graph(pkg)
    assert tool.cycles(module_level) == []
    assert "pkg.a" not in module_level["pkg.c"]          # TYPE_CHECKING imports never run
    deferred = tool.import_graph(pkg, nested=True)
    assert tool.cycles(deferred) == [["pkg.a", "pkg.sub", "pkg.sub.b"]]
    assert deferred["pkg.a"] == {"pkg.sub", "pkg.sub.b"}  # the package __init__ runs on the way
