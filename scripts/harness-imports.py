"""Rewrite imports of the modules that moved from ``rtc``/``session`` into ``orange_fast.harness``.

The Janus/netns/media/demo modules left ``orange_fast.rtc`` and ``session/runner.py`` became
``orange_fast.harness.session_runner`` (issue 10 item 4).  Code written against the old paths
(e.g. on a branch merged after the move) is fixed in place by::

    python scripts/harness-imports.py src tests        # prints each file it changed

In a module under ``harness/``, a relative import of a module that stayed in ``rtc`` (a
branch's edit to ``rtc/call.py`` that git's rename detection carried into ``harness/call.py``)
becomes ``from ..rtc.x import``.  Idempotent.  ``JanusError``/``NetnsError`` now live in
``orange_fast.harness.errors``: an import that takes them from ``rtc.errors`` together with
other rtc errors is reported, not rewritten.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MOVED = "aio|call|command|demo|janus|media|netns|room|session_room"
RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\borange_fast\.rtc\.({MOVED})\b"), r"orange_fast.harness.\1"),
    (re.compile(rf"(from \.\.+)rtc\.({MOVED})\b"), r"\1harness.\2"),
    (re.compile(r"\borange_fast\.session\.runner\b"), "orange_fast.harness.session_runner"),
    (re.compile(r"orange_fast/rtc/janus_conf"), "orange_fast/harness/janus_conf"),
]
# `from <pkg>.rtc.errors import JanusError[, NetnsError]` (only harness errors) -> harness.errors
HARNESS_ERRORS = re.compile(
    r"(from (?:orange_fast|\.\.+))\.?rtc(?:\.errors)? import (\(?\s*(?:JanusError|NetnsError)"
    r"(?:\s*,\s*(?:JanusError|NetnsError))*\s*,?\s*\)?)"
)
MIXED = re.compile(r"from (?:orange_fast|\.\.+)\.?rtc(?:\.errors)? import [^\n]*(?:JanusError|NetnsError)")


def _harness_errors(match: re.Match[str]) -> str:
    prefix = match.group(1)
    sep = "" if prefix.endswith(".") else "."
    return f"{prefix}{sep}harness.errors import {match.group(2)}"


SIBLING = re.compile(r"^(\s*)from \.(\w*) import ([\w, ()]+)$", re.M)


def _siblings(text: str, harness: set[str], rtc: set[str]) -> str:
    """In a moved module: ``from .x import`` of a module that stayed in rtc -> ``from ..rtc.x import``."""

    def fix(m: re.Match[str]) -> str:
        indent, module, names = m.groups()
        if module and module not in harness and module in rtc:
            return f"{indent}from ..rtc.{module} import {names}"
        wanted = {n.strip() for n in names.strip("()").split(",") if n.strip()}
        if not module and wanted and all(n in rtc and n not in harness for n in wanted):
            return f"{indent}from ..rtc import {names}"
        return m.group(0)

    return SIBLING.sub(fix, text)


def rewrite(text: str, path: Path | None = None) -> str:
    """``text`` with every old harness import path replaced (``path``: where the text lives)."""
    for pattern, repl in RULES:
        text = pattern.sub(repl, text)
    text = HARNESS_ERRORS.sub(_harness_errors, text)
    if path is not None and path.parent.name == "harness" and (path.parent.parent / "rtc").is_dir():
        harness = {p.stem for p in path.parent.glob("*.py")}
        rtc = {p.stem for p in (path.parent.parent / "rtc").glob("*.py")}
        text = _siblings(text, harness, rtc)
    return text


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("src"), Path("tests")]
    leftovers = 0
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            text = path.read_text(encoding="utf-8")
            if "harness-imports: skip" in text:  # e.g. this script's own test data
                continue
            new = rewrite(text, path)
            if new != text:
                path.write_text(new, encoding="utf-8")
                print(f"rewrote {path}")
            for line in new.splitlines():
                if MIXED.search(line) and "harness" not in line:
                    print(f"{path}: import JanusError/NetnsError from orange_fast.harness.errors: {line.strip()}")
                    leftovers += 1
    return 1 if leftovers else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
