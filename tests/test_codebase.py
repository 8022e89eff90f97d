"""Structure a newcomer can rely on: no import cycles, no class too big to read, one reader of the env."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "scripts" / "haha"
MAX_CLASS_LINES = 150


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports (at the top or inside functions alike).

    `from haha.pkg import sub` counts as importing `haha.pkg.sub` when `sub` is a module: a package's
    `__init__` runs first either way, so it is not an edge of its own.
    """
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in known] or [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in known and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_class_is_too_big_to_read() -> None:
    big = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                big.append(f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert big == []


# Settings reads the environment; the CLI hands it over. vLLM is configured only through its environment,
# so its engine may set defaults there before importing it (a write, not a read).
ENV_READERS = {"haha.settings", "haha.cli"}
ENV_WRITES = {("haha.evaluate.vllm_engine", "setdefault")}


def environment_uses(module: str, source: str) -> list[int]:
    """Lines where `source` touches os.environ / os.getenv / os.putenv, minus the allowed writes."""
    tree = ast.parse(source)
    allowed = {
        id(node.func.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and (module, node.func.attr) in ENV_WRITES
    }
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            lines += [node.lineno for a in node.names if a.name in {"environ", "getenv", "putenv"}]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "getenv", "putenv"}
            and id(node) not in allowed
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_settings_reads_the_environment() -> None:
    readers = {
        f"{name}:{line}"
        for name, path in modules().items()
        if name not in ENV_READERS
        for line in environment_uses(name, path.read_text())
    }
    assert readers == set()


def test_the_environment_finder_finds_reads() -> None:
    source = "import os\nfrom os import getenv\na = os.environ.get('X')\nos.environ.setdefault('Y', '1')\n"
    assert environment_uses("haha.x", source) == [2, 3, 4]
    assert environment_uses("haha.evaluate.vllm_engine", source) == [2, 3]
