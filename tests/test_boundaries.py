"""The glue's import graph: no cycle, nothing imports the CLI, only public sampler names.

DESIGN.md's direction is trainers <- optuna_mix -> samplers; tests/samplers/ and
tests/trainers/ check the two outer packages, this file the glue between them.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import optuna_mix
from helpers import REPO

GLUE = Path(optuna_mix.__file__).parent
GLUE_FILES = sorted(GLUE.rglob("*.py"))
BENCHMARK_FILES = sorted((REPO / "benchmarks").glob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(GLUE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def imports_of(path: Path) -> set[str]:
    """The optuna_mix modules a file imports, at any depth (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from optuna_mix import schema` imports a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
    return {n for n in found if n == "optuna_mix" or n.startswith("optuna_mix.")}


def glue_graph() -> dict[str, set[str]]:
    """Glue module -> the glue modules it imports (the sampler and trainer packages left out)."""
    outer = ("optuna_mix.samplers", "optuna_mix.trainers")
    graph = {}
    for f in GLUE_FILES:
        graph[module_name(f)] = {n for n in imports_of(f) if not n.startswith(outer)}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_glue_has_no_import_cycle():
    graph = glue_graph()
    assert len(graph) >= 15 and "optuna_mix.cli.study" in graph
    assert find_cycle(graph) is None


def test_nothing_outside_the_cli_imports_the_cli():
    for f in [*GLUE_FILES, *BENCHMARK_FILES]:
        if module_name(f).startswith("optuna_mix.cli") and f.is_relative_to(GLUE):
            continue
        bad = {n for n in imports_of(f) if n == "optuna_mix.cli" or n.startswith("optuna_mix.cli.")}
        assert not bad, f"{f.relative_to(REPO)} imports {bad}"


def _is_super_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "super")


def _private_uses(path: Path) -> list[str]:
    """Private sampler imports and `obj._name` on objects other than self/cls."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optuna_mix.samplers"):
            if any(p.startswith("_") for p in node.module.split(".")):
                out.append(f"import from {node.module}")
            out += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            out += [f"import {a.name}" for a in node.names
                    if a.name.startswith("optuna_mix.samplers.") and "._" in a.name]
        elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
              and not node.attr.startswith("__")
              and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
              and not _is_super_call(node.value)):  # an override calling the hook it overrides
            out.append(f"line {node.lineno}: .{node.attr}")
    return out


def test_the_glue_and_the_benchmarks_use_only_public_sampler_names():
    for f in [*GLUE_FILES, *BENCHMARK_FILES]:
        assert _private_uses(f) == [], f.relative_to(REPO)
