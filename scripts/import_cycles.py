"""Report import cycles between the modules of a package (default: ``src/sedinfer``).

Reads every ``.py`` file with :mod:`ast` (nothing is imported or executed), collects the
``import`` / ``from ... import`` statements that name modules of the package — at module level
only by default, with ``--all`` also those inside functions — and prints every strongly
connected component of more than one module (Tarjan's algorithm), i.e. every cycle.

A ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else of
``pkg`` itself; importing ``pkg.sub.mod`` also runs ``pkg/__init__.py`` and ``pkg/sub/__init__.py``,
so those count too (except a package's own ``__init__`` importing its submodules, the normal
direction). Imports under ``if TYPE_CHECKING:`` never run and are skipped.

Usage: ``python scripts/import_cycles.py [--all] [SRC_DIR]``; exit status 1 if a cycle is found.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable
from pathlib import Path


def module_names(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under the package directory ``src``."""
    root = src.parent
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module, nested: bool) -> Iterable[ast.Import | ast.ImportFrom]:
    """Import statements that run: at module level (also inside if/try/with), or anywhere."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                stack.extend(node.body)
            stack.extend(node.orelse)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if nested or isinstance(node, ast.ClassDef):
                stack.extend(ast.iter_child_nodes(node))
        else:
            stack.extend(ast.iter_child_nodes(node))


def _with_parents(name: str, modules: dict[str, Path]) -> list[str]:
    """``name`` and the packages above it that are modules of the package (their ``__init__`` runs)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules]


def import_graph(src: Path, nested: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports (module level unless ``nested``)."""
    modules = module_names(src)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _import_nodes(tree, nested):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            for target in targets:
                for dep in _with_parents(target, modules):
                    # an enclosing package merely run on the way is already initialising when
                    # ``mod`` runs: no edge; named explicitly (``from pkg import name``) it is one
                    implied = dep != target and mod.startswith(dep + ".")
                    if dep != mod and not implied:
                        graph[mod].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "src" / "sedinfer"
    parser.add_argument("src", nargs="?", default=str(default),
                        help="package directory (default: src/sedinfer)")
    parser.add_argument("--all", action="store_true",
                        help="also count imports inside functions (deferred imports)")
    args = parser.parse_args(argv)
    graph = import_graph(Path(args.src), nested=args.all)
    found = cycles(graph)
    scope = "module-level and deferred" if args.all else "module-level"
    if not found:
        print(f"no {scope} import cycles among {len(graph)} modules")
        return 0
    print(f"{len(found)} {scope} import cycle(s) among {len(graph)} modules:")
    for comp in found:
        members = set(comp)
        print("  " + ", ".join(comp))
        for m in comp:
            deps = sorted(graph[m] & members)
            print(f"    {m} -> {', '.join(deps)}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
