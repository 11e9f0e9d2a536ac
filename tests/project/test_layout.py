"""The library apart from its harness (issue 10 item 4), checked on the sources' import graph.

The runtime library is ``sframe``, ``mls``, ``session``, ``delivery`` and ``rtc`` (the aiortc
hooks only).  ``harness`` (Janus SFU, network namespaces, synthetic media, the demo call,
the session process driver) and ``benchmark`` sit on top of it: they may import the library,
never the reverse, and no two modules import each other, directly or through others.
"""

from __future__ import annotations

import importlib

import pytest
from import_graph import cycles, graph, modules, package_graph

LIBRARY = ("sframe", "mls", "session", "delivery", "rtc")
HARNESS = ("harness", "benchmark")


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_library_never_imports_the_harness() -> None:
    g = graph()
    library = [m for m in g if _package(m) in LIBRARY or m == "orange_fast"]
    assert len(library) > 40  # the walk found the sources
    bad = {m: sorted(t for t in g[m] if _package(t) in HARNESS) for m in library}
    assert {m: t for m, t in bad.items() if t} == {}


def test_library_packages_are_layered() -> None:
    """No two library packages import each other, directly or through others (lazy imports count)."""
    packages = package_graph(graph())
    library = {p: {t for t in ts if _package(t) in LIBRARY} for p, ts in packages.items() if _package(p) in LIBRARY}
    assert len(library) == len(LIBRARY)  # the walk found the packages
    assert cycles(library) == []
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]


def test_no_import_time_cycle() -> None:
    """No cycle among the imports that run when a module is imported."""
    g = graph(import_time_only=True)
    assert any(g.values())  # the walk found imports
    assert cycles(g) == []


def test_no_cycle_in_rtc_or_harness() -> None:
    """Not even through imports inside functions (``rtc.command`` <-> ``rtc.demo`` was one)."""
    g = graph()
    both = ("rtc", "harness")
    part = {m: {t for t in ts if _package(t) in both} for m, ts in g.items() if _package(m) in both}
    assert len(part) > 15
    assert cycles(part) == []


def test_cycle_detection_sees_function_level_imports() -> None:
    """The checker itself: a cycle through an import inside a function is reported."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_rtc_holds_only_the_hooks() -> None:
    """Nothing in ``rtc`` starts processes, namespaces or an SFU: those live in ``harness``."""
    rtc = {m: p for m, p in modules().items() if _package(m) == "rtc"}
    for name, path in rtc.items():
        text = path.read_text(encoding="utf-8")
        for marker in ("subprocess", "setns", "janus_conf", "VideoRoom"):
            assert marker not in text, f"{name} mentions {marker}: harness code in the library"


@pytest.mark.parametrize("name", sorted(m for m in modules() if _package(m) == "harness"))
def test_harness_modules_import(name: str) -> None:
    if name.endswith((".call", ".demo", ".media", ".room")):
        pytest.importorskip("aiortc")
    importlib.import_module(name)


def test_formal_explorer_importable_without_path_edits() -> None:
    """``formal/`` is on pytest's ``pythonpath`` (pyproject.toml): no ``sys.path`` edits in tests."""
    explore = importlib.import_module("explore")
    assert callable(explore.explore) and explore.AbstractOps is not None


PACKAGES = sorted(m for m, p in modules().items() if p.name == "__init__.py")


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves(name: str) -> None:
    """``from package import *`` works: each name in ``__all__`` exists (a moved module leaves none behind)."""
    if name == "orange_fast.rtc":
        pytest.importorskip("aiortc")  # its lazy names load the hooks
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)  # noqa: S102 - the statement under test
    package = importlib.import_module(name)
    assert set(getattr(package, "__all__", ())) <= set(namespace)
