"""Runs the Node test suite of web/ (`npm test`: esbuild, then `node --test`) and checks its summary."""

from __future__ import annotations

import re
import shutil
import subprocess

from web_support import WEB, node_env, require_node


def test_npm_test_passes() -> None:
    require_node()
    npm = shutil.which("npm")
    assert npm is not None
    run = subprocess.run([npm, "test"], cwd=WEB, env=node_env(), capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|skipped|cancelled) (\d+)$", out, re.M)}
    assert counts.get("fail") == 0 and counts.get("cancelled") == 0, out[-4000:]
    assert counts.get("pass", 0) >= 7 and counts["pass"] + counts.get("skipped", 0) == counts["tests"], counts
