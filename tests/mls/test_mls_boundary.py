"""The MLS boundary (issue 10): nothing outside ``orange_fast.mls`` reads private state of an MLS
object. The scan is static (AST): it collects every underscore name the ``mls`` package defines
(private methods, attributes, slots, module-level helpers) and fails on any use of one of them
as an attribute of something other than ``self``/``cls``/``super()``, or on a private name
imported from ``mls``, in ``src/`` outside ``mls/`` and in ``tests/`` outside ``tests/mls/``.

Python has no types at this level, so a name that code outside ``mls`` also defines for its own
objects (``_commit`` of the session committer, say) is only flagged if it is one of the names of
the group's state (``CORE``), which are never legitimate outside ``mls``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable, Iterator, List, Set

ROOT = Path(__file__).resolve().parents[2]
MLS = ROOT / "src" / "orange_fast" / "mls"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def mls_private_names(root: Path = MLS) -> Set[str]:
    """Every non-dunder underscore name the mls package defines on its objects or modules."""
    return mls_private_names_in(root.rglob("*.py"))


def mls_private_names_in(paths: Iterable[Path]) -> Set[str]:
    """Every non-dunder underscore name defined (def, class, attribute store, slot, global) in ``paths``."""
    names: Set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(node.name):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
                names.add(node.attr)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id == "__slots__" and isinstance(node.value, ast.Tuple):
                        names.update(e.value for e in node.value.elts
                                     if isinstance(e, ast.Constant) and isinstance(e.value, str)
                                     and _private(e.value))
                    elif isinstance(t, ast.Name) and _private(t.id):
                        names.add(t.id)
    return names


CORE = {"_s", "_State", "_Pending"}


def _defined_outside() -> Set[str]:
    names: Set[str] = set()
    for path in _outside_files():
        names |= mls_private_names_in([path])
    return names


def _is_mls_module(module: str, level: int, path: Path) -> bool:
    if level == 0:
        return module == "orange_fast.mls" or module.startswith("orange_fast.mls.")
    # relative import from inside src/orange_fast/<pkg>/...: resolve against the file's package
    pkg = path.parent
    for _ in range(level - 1):
        pkg = pkg.parent
    target = pkg.joinpath(*module.split(".")) if module else pkg
    return target == MLS or MLS in target.parents


def violations(source: str, path: Path, private: Set[str]) -> Iterator[str]:
    """Uses of MLS private names in ``source`` (one message per use)."""
    tree = ast.parse(source, str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private:
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) \
                    and node.value.func.id == "super":
                continue
            yield f"{path}:{node.lineno}: .{node.attr}"
        elif isinstance(node, ast.ImportFrom) and _is_mls_module(node.module or "", node.level, path):
            for alias in node.names:
                if _private(alias.name):
                    yield f"{path}:{node.lineno}: import {alias.name}"


def _outside_files() -> Iterator[Path]:
    for path in (ROOT / "src").rglob("*.py"):
        if MLS not in path.parents:
            yield path
    for path in (ROOT / "tests").rglob("*.py"):
        if (ROOT / "tests" / "mls") not in path.parents:
            yield path


def test_nothing_outside_mls_reads_private_mls_state() -> None:
    private = (mls_private_names() - _defined_outside()) | CORE
    found: List[str] = []
    for path in _outside_files():
        found.extend(violations(path.read_text(), path, private))
    assert found == []


def test_the_scan_finds_what_it_must() -> None:
    private = mls_private_names()
    assert {"_s", "_State", "_stage", "_frame"} <= private
    here = ROOT / "src" / "orange_fast" / "session" / "x.py"
    bad = ("saved = group._s\n"
           "tree = ops.group._s.tree\n"
           "from orange_fast.mls.group import _State\n"
           "from ..mls.group import _State as S\n"
           "out = g._frame(st)\n")
    assert len(list(violations(bad, here, private))) == 5
    good = ("self._s = get_suite(1)\n"
            "x = group.members\n"
            "from ..mls import Group\n"
            "from ..delivery import _private_thing\n"
            "super()._frame(st)\n")
    assert list(violations(good, here, private)) == []
