"""The import rules: no cycles among Retorno's modules, nothing below `workers` imports it, `surveys` stands alone.

Every import counts, at module level or inside a function, except those under `if TYPE_CHECKING:` (never run).
`from package import name` depends on the module `package.name` when that is a module, else on `package`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "bots", "workers", "surveys")
SURVEYS_THIRD_PARTY = {"pydantic", "ruamel", "phonenumbers"}
"""What `surveys` may import besides the standard library and itself: its schema (pydantic), its YAML reader
(ruamel.yaml) and its phone numbers (phonenumbers), all declared in pyproject.toml."""


def _modules() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _runtime_nodes(tree: ast.AST):
    """Every node except what sits under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(modules: dict[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """Each module's imported names: our modules resolved, other names as their top-level package."""
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        found: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target.split(".")[0] in PACKAGES:
                    while target not in modules:
                        target = target.rpartition(".")[0]
                    if target != name:
                        found.add(target)
                else:
                    found.add(target.split(".")[0])
        graph[name] = found
    return graph


MODULES = _modules()
GRAPH = _imports(MODULES)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_modules_are_found():
    assert {"service.app", "bots.base", "workers.inbound", "surveys.engine"} <= set(GRAPH)


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_nothing_below_workers_imports_workers():
    upward = {
        (name, target)
        for name, targets in GRAPH.items()
        if not name.startswith("workers")
        for target in targets
        if target.startswith("workers")
    }
    assert upward == set()


def test_surveys_imports_only_the_standard_library_itself_and_its_declared_libraries():
    allowed = set(sys.stdlib_module_names) | {"__future__"} | SURVEYS_THIRD_PARTY
    foreign = {
        (name, target)
        for name, targets in GRAPH.items()
        if name.split(".")[0] == "surveys"
        for target in targets
        if not (target.split(".")[0] == "surveys" or target in allowed)
    }
    assert foreign == set()
