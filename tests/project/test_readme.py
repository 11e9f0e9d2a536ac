"""Every code block of README.md works (issue 10 item 5).

``python`` blocks run as they are, each in a fresh interpreter in an empty directory;
``sh`` blocks must name files that exist, ``orange-fast`` subcommands and flags its parser
accepts, and modules that import; the layout block names directories that exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks(lang: str) -> list[str]:
    """The bodies of README's fenced blocks of language ``lang`` ("" = no language)."""
    return [body for tag, body in FENCE.findall(README.read_text(encoding="utf-8")) if tag == lang]


def _first_line(code: str) -> str:
    return next((line for line in code.splitlines() if line.strip()), "")


PYTHON = blocks("python")


def test_readme_has_the_examples() -> None:
    assert len(PYTHON) >= 4  # SFrame, MLS, session, aiortc
    assert len(blocks("sh")) >= 2


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_python_block_runs(code: str, tmp_path: Path) -> None:
    if "aiortc" in code:
        pytest.importorskip("aiortc")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"README block {_first_line(code)!r} failed:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), "every README example prints what it shows"


def _check_command(words: list[str]) -> None:
    program = words[0]
    if Path(program).name == "orange-fast":
        from orange_fast.cli import COMMANDS, build_parser

        args = words[1:]
        command = next((a for a in args if a in COMMANDS), None)
        try:
            build_parser(command).parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"`{shlex.join(words)}`: orange-fast rejects these arguments") from exc
    elif program == "bash":
        assert (ROOT / words[1]).is_file(), f"`{shlex.join(words)}`: no file {words[1]}"
    elif Path(program).name.startswith("python") and words[1:2] == ["-m"]:
        assert importlib.util.find_spec(words[2]) is not None, f"`{shlex.join(words)}`: no module {words[2]}"
    else:
        assert shutil.which(program) or (ROOT / program).exists(), f"`{shlex.join(words)}`: no command {program}"


@pytest.mark.parametrize("code", blocks("sh"), ids=lambda c: _first_line(c)[:40])
def test_sh_block_names_real_commands(code: str) -> None:
    for line in code.splitlines():
        line = line.split(" #", 1)[0].strip()
        for command in filter(None, (part.strip() for part in line.split("&&"))):
            _check_command(shlex.split(command))


def test_checker_rejects_unknown_flags_and_commands() -> None:
    """The sh check itself: a wrong flag, subcommand or script is reported."""
    for words in (["orange-fast", "bench", "--no-such-flag"], ["orange-fast", "fly"], ["bash", "scripts/nope.sh"]):
        with pytest.raises(AssertionError):
            _check_command(words)


def test_layout_block_names_existing_directories() -> None:
    layout = [b for b in blocks("") if "src/orange_fast/" in b]
    assert len(layout) == 1
    paths = [line.split()[0] for line in layout[0].splitlines() if line and not line.startswith(" ")]
    assert len(paths) >= 8
    missing = [p for p in paths if not (ROOT / p).is_dir()]
    assert missing == []
