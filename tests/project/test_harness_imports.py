"""scripts/harness-imports.py: old harness import paths are rewritten, nothing else is touched.

(harness-imports: skip -- the old paths below are test data.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "harness-imports.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("harness_imports", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_absolute_and_relative_paths() -> None:
    rewrite = _load().rewrite
    before = (
        "from orange_fast.rtc.janus import JanusServer\n"
        "from ..rtc.session_room import SessionRoom\n"
        "from orange_fast.rtc.errors import JanusError\n"
        "from ..rtc.errors import JanusError, NetnsError\n"
        "args = ['-m', 'orange_fast.session.runner']\n"
        "from orange_fast.rtc import enable_e2ee\n"
        "from orange_fast.rtc.keys import StaticFrameKeys\n"
        "from orange_fast.rtc.errors import FramingError\n"
    )
    after = (
        "from orange_fast.harness.janus import JanusServer\n"
        "from ..harness.session_room import SessionRoom\n"
        "from orange_fast.harness.errors import JanusError\n"
        "from ..harness.errors import JanusError, NetnsError\n"
        "args = ['-m', 'orange_fast.harness.session_runner']\n"
        "from orange_fast.rtc import enable_e2ee\n"
        "from orange_fast.rtc.keys import StaticFrameKeys\n"
        "from orange_fast.rtc.errors import FramingError\n"
    )
    assert rewrite(before) == after
    assert rewrite(after) == after


def test_moved_module_imports_what_stayed_in_rtc(tmp_path: Path) -> None:
    (tmp_path / "harness").mkdir()
    (tmp_path / "rtc").mkdir()
    for name in ("stats", "keys", "compat"):
        (tmp_path / "rtc" / f"{name}.py").write_text("")
    for name in ("janus", "call"):
        (tmp_path / "harness" / f"{name}.py").write_text("")
    path = tmp_path / "harness" / "call.py"
    text = "from . import compat\nfrom .janus import JanusClient\n    from .stats import percentile\n"
    assert _load().rewrite(text, path) == (
        "from ..rtc import compat\nfrom .janus import JanusClient\n    from ..rtc.stats import percentile\n"
    )
