"""Runs the Node test suite of web/ (`npm test`: esbuild, then `node --test`) and checks its summary."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from web_support import WEB, node_env, require_node


def test_npm_test_passes() -> None:
    require_node()
    npm = shutil.which("npm")
    assert npm is not None
    run = subprocess.run(
        [npm, "test"], cwd=WEB, env=node_env(), capture_output=True, text=True, timeout=300, check=False
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|skipped|cancelled) (\d+)$", out, re.MULTILINE)}
    assert counts.get("fail") == 0 and counts.get("cancelled") == 0, out[-4000:]
    assert counts.get("pass", 0) >= 5 and counts["pass"] + counts.get("skipped", 0) == counts["tests"], counts


def test_bundle_loads_and_round_trips_a_frame() -> None:
    """The one-file ESM bundle (what a page imports) works on its own, without node_modules."""
    exe = require_node()
    bundle = WEB / "dist" / "orange-fast.js"
    if not bundle.exists():
        subprocess.run([exe, "build.mjs"], cwd=WEB, check=True, timeout=120, capture_output=True)
    script = f"""
      const m = await import({json.dumps(bundle.as_uri())});
      const tx = new m.Context(4), rx = new m.Context(4);
      const key = new Uint8Array(16).fill(7);
      await tx.addSendKey(300, key); await rx.addReceiveKey(300, key);
      const ct = await tx.encrypt(300, new TextEncoder().encode("hello"));
      const pt = new TextDecoder().decode(await rx.decrypt(ct));
      console.log(JSON.stringify({{pt, session: typeof m.SessionClient, safety: typeof m.safetyNumber}}));
    """
    run = subprocess.run(
        [exe, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, cwd="/", check=False
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"pt": "hello", "session": "function", "safety": "function"}


def test_packaged_bundle_is_the_built_one_when_present() -> None:
    """``orange_fast.web.bundle_path()``: None in a build without node, else the bundled client."""
    from orange_fast.web import bundle_path

    path = bundle_path()
    if path is None:
        pytest.skip("orange_fast/web/orange-fast.js not built (scripts/setup.sh without node/npm)")
    text = path.read_text(encoding="utf-8")
    assert "SFrame 1.0 Secret key" in text and "orange_fast safety number v1" in text
