"""The shape of the package: no import cycle, no private name taken from another package, small modules and functions,
and a light ``import initlab``.

The import graph is read from the source with ``ast``: every ``import`` statement anywhere in a module (at the top,
in a function, in a ``try``, under ``if TYPE_CHECKING:``) is an edge: a type-only import that points back up is a
cycle of the design too, even if Python never runs it. ``from pkg import name`` is an edge to ``pkg.name`` when that
is a module of initlab, else to ``pkg``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "initlab"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _package_of(module: str) -> str:
    """The package a module belongs to: itself for a package's ``__init__``, else its parent."""
    return module if _is_package(module) else module.rpartition(".")[0]


def _resolve_from(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(module).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str) -> Iterator[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_from(module, node)
            for alias in node.names:
                yield target, alias.name, node.lineno


def _edges(module: str) -> set[str]:
    out = set()
    for target, name, _ in _imports(module):
        if not target.startswith("initlab"):
            continue
        full = f"{target}.{name}" if name else target
        out.add(full if full in MODULES else target)
    out.discard(module)
    return {m for m in out if m in MODULES}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_reader_sees_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle() -> None:
    graph = {m: _edges(m) for m in MODULES}
    assert sum(map(len, graph.values())) > 100  # the reader found the imports
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _private_owner(target: str, name: str | None) -> str | None:
    """The package that owns the first underscore-prefixed part of ``target.name``, or None if all are public."""
    parts = [*target.split("."), *([name] if name else [])]
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            parent = ".".join(parts[:i])
            return parent if parent in MODULES and _is_package(parent) else parent.rpartition(".")[0]
    return None


def test_no_private_name_from_another_package() -> None:
    offences = []
    for module in MODULES:
        for target, name, line in _imports(module):
            if not target.startswith("initlab"):
                continue
            owner = _private_owner(target, name)
            if owner is not None and owner != _package_of(module):
                offences.append(f"{MODULES[module].relative_to(SRC)}:{line} imports {target}.{name or ''}")
    assert not offences, "\n".join(offences)


def test_modules_and_functions_are_small() -> None:
    long_modules, long_functions = [], []
    for module, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{module}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long_functions.append(f"{module}.{node.name}: {size} lines")
    assert not long_modules, long_modules
    assert not long_functions, long_functions


@pytest.mark.parametrize(
    ("statement", "absent"),
    [
        ("import initlab", ("sqlite3", "rich", "jinja2", "matplotlib", "torch", "multiprocessing")),
        ("import initlab; initlab.HeNormal; initlab.initialize; initlab.diagnose", ("sqlite3", "rich", "jinja2")),
        ("import initlab.cli", ("torch", "numpy", "sqlite3", "matplotlib")),
    ],
)
def test_light_imports(statement: str, absent: tuple[str, ...]) -> None:
    code = f"{statement}; import sys; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    )
    assert "initlab" in loaded
    assert not loaded & set(absent), sorted(loaded & set(absent))
