"""`orange-fast bench --quick` as a real process: table, JSON with the documented keys, PNG plots;
the per-frame benchmark stays reachable; bad options are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import orange_fast

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    src = str(Path(orange_fast.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "orange_fast.cli", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


def test_quick_call_benchmark(tmp_path: Path) -> None:
    out = _run(["--quick", "--json", str(tmp_path / "q.json"), "--plots", str(tmp_path / "plots"),
                "--markdown", str(tmp_path / "q.md")], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "naive/ours" in out.stdout and "Loopback" in out.stdout
    data = json.loads((tmp_path / "q.json").read_text())
    assert [r["participants"] for r in data["results"]] == [2, 4, 8]
    for r in data["results"]:
        assert set(r["ratios"]) >= {"cpu_naive_over_ours", "cpu_ours_over_limit"}
        assert all(v > 0 for v in r["ratios"].values())
        for c in r["contenders"].values():
            assert c["frames_decrypted"] == r["frames_expected_decrypted"]
    lb = data["loopback"]["results"]
    assert [r["participants"] for r in lb] == [2, 4]
    for r in lb:
        assert r["decrypt_failures"] == 0
        # UDP on loopback may drop under heavy load; nearly everything must arrive
        assert r["frames_decrypted"] >= 0.95 * r["frames_expected"]
        assert r["join_ms"] > 0 and r["join"]["handshake_bytes"] > 0
        assert "join_ms" in r["session_join"], r["session_join"]
        assert r["session_join"]["join_ms"] > 0
    for name in ("call_cpu.png", "call_latency.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == PNG_MAGIC
    assert json.loads((tmp_path / "plots" / "call.json").read_text())["results"] == data["results"]
    assert (tmp_path / "q.md").read_text().startswith("Call benchmark")


def test_frames_benchmark_still_reachable(tmp_path: Path) -> None:
    out = _run(["frames", "--quick", "--no-threads", "--sizes", "64", "--suites", "4", "--rounds", "1",
                "--json", str(tmp_path / "f.json")], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads((tmp_path / "f.json").read_text())
    assert {c["op"] for c in data["cases"]} == {"encrypt", "decrypt"}


@pytest.mark.parametrize("args", [
    ["--participants", "1,2", "--no-loopback", "--no-plots"],
    ["--rounds", "0", "--no-loopback", "--no-plots"],
    ["--suite", "99", "--no-loopback", "--no-plots"],
    ["--duration", "0", "--no-loopback", "--no-plots"],
    ["--participants", "x"],
])
def test_bad_options(args: list[str], tmp_path: Path) -> None:
    out = _run(args, tmp_path)
    assert out.returncode == 2
    assert "orange-fast" in out.stderr
