"""The shape of the core, checked on the source text (``ast``), not by convention:

* the index is a door: outside ``retrievers/`` no module reaches its engine (``._engine``,
  ``engine_impl``) or an underscore member of a ``MultiModalIndex``;
* ``src/`` has no import cycle among module-level imports (imports inside functions are lazy and
  allowed; so are ``if TYPE_CHECKING:`` blocks, which never run);
* the framework-free core (retrievers, readers, embeddings, generators) never imports the
  adapters (``integrations``), not even lazily.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "mm_rag_plugin"
CORE = ("retrievers", "readers", "embeddings", "generators")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.AST) -> list[str]:
    """The modules of ``mm_rag_plugin`` an import statement loads."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(module, node)
        names = [base]
        names += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    out = []
    for name in names:
        # importing a.b.c runs a, a.b and a.b.c
        parts = name.split(".")
        out += [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES]
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.AST]:
    """Import statements that run when the module is imported (not in functions, classes' methods
    or ``if TYPE_CHECKING:``)."""
    found: list[ast.AST] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.Try, ast.With)):
                visit(node.body)
                for h in getattr(node, "handlers", []):
                    visit(h.body)
                visit(getattr(node, "orelse", []))
                visit(getattr(node, "finalbody", []))
            elif isinstance(node, ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return found


def _trees() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


TREES = _trees()


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, tree in TREES.items():
        deps: set[str] = set()
        for node in _module_level_imports(tree):
            deps.update(t for t in _targets(name, node) if t != name)
        # a package's parent runs first: that is not an edge of the module's own making
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_src_has_no_import_cycle() -> None:
    assert find_cycles(import_graph()) == []


def _in_core(name: str) -> bool:
    parts = name.split(".")
    return len(parts) > 1 and parts[1] in CORE


@pytest.mark.parametrize("package", CORE)
def test_the_core_never_imports_the_adapters(package: str) -> None:
    offenders = []
    for name, tree in TREES.items():
        if not name.startswith(f"mm_rag_plugin.{package}"):
            continue
        for node in ast.walk(tree):  # lazy imports included
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                hit = [t for t in _targets(name, node) if t.startswith("mm_rag_plugin.integrations")]
                texts = [a.name for a in node.names] if isinstance(node, ast.Import) else [_resolve(name, node)]
                if hit or any(t.startswith(("langchain", "llama_index")) for t in texts):
                    offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def _reaches_inside(tree: ast.Module) -> list[int]:
    """Lines that touch an engine (``._engine``, ``engine_impl``) or an underscore member of an
    index (an attribute of something named ``index``/``ix``/``new``/``old``/``target``, or of
    ``self.index``)."""
    lines = []
    index_names = {"index", "ix", "idx", "new", "old", "target", "source_index"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if node.attr in ("_engine", "engine_impl"):
            lines.append(node.lineno)
            continue
        if not node.attr.startswith("_") or node.attr.startswith("__"):
            continue
        owner = node.value
        name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else None
        if name in index_names:
            lines.append(node.lineno)
    return lines


def test_nothing_outside_the_retrievers_reaches_past_the_index() -> None:
    offenders = [
        f"{name}:{line}"
        for name, tree in TREES.items()
        if not name.startswith("mm_rag_plugin.retrievers")
        for line in _reaches_inside(tree)
    ]
    assert offenders == []


def test_inside_the_retrievers_only_the_index_calls_its_own_underscore_members() -> None:
    offenders = [
        f"{name}:{line}"
        for name, tree in TREES.items()
        if name.startswith("mm_rag_plugin.retrievers") and name != "mm_rag_plugin.retrievers.index"
        for line in _reaches_inside(tree)
    ]
    assert offenders == []


def test_the_checks_see_a_reach_inside() -> None:
    tree = ast.parse("def f(index):\n    index._commit()\n    x = self.index._engine\n    y = ix.engine_impl\n")
    assert sorted(_reaches_inside(tree)) == [2, 3, 4]
