"""The import graph of ``src/orange_fast``, read from the sources with :mod:`ast` (nothing imported)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_name(path: Path) -> str:
    """``src/orange_fast/rtc/peer.py`` -> ``orange_fast.rtc.peer``; a package's ``__init__`` -> the package."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the ``orange_fast`` package, by dotted name."""
    return {module_name(p): p for p in sorted((SRC / "orange_fast").rglob("*.py"))}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _import_time_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes run when the module is imported: not function bodies, not ``if TYPE_CHECKING:``."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def imports_of(name: str, path: Path, known: set[str], *, import_time_only: bool = False) -> set[str]:
    """The ``orange_fast`` modules that ``name`` imports anywhere in its body (functions included),
    or, with ``import_time_only``, only those imported while the module itself is imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in _import_time_nodes(tree) if import_time_only else ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, path.name == "__init__.py", node)
            # `from pkg import mod` names a module when pkg.mod is one, else an attribute of pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target.startswith("orange_fast") and target != name:
                out.add(target)
    return out


def graph(*, import_time_only: bool = False) -> dict[str, set[str]]:
    """Module -> the ``orange_fast`` modules it imports (see :func:`imports_of`)."""
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known, import_time_only=import_time_only) for name, path in mods.items()}


def package_graph(g: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the top-level subpackages (``orange_fast.X``)."""
    out: dict[str, set[str]] = {}
    for src, targets in g.items():
        a = ".".join(src.split(".")[:2])
        out.setdefault(a, set()).update(".".join(t.split(".")[:2]) for t in targets)
        out[a].discard(a)
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
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
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found
