"""`orange-fast call` end to end: delivery service + session clients (MLS, designated
committer) provide the SFrame keys of aiortc participants calling through Janus."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")

from orange_fast.harness.janus import janus_available  # noqa: E402

pytestmark = [pytest.mark.timeout(300)]


def test_call_command_with_session_keys() -> None:
    reason = janus_available()
    if reason is not None:
        pytest.skip(f"Janus harness unavailable: {reason}")
    proc = subprocess.run(
        [sys.executable, "-m", "orange_fast.cli", "call", "-n", "3", "--seconds", "3", "--json"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["delivery_service"].startswith("ws://127.0.0.1:")
    numbers = [p["safety_number"] for p in summary["participants"]]
    # every participant shows the same safety number: 12 groups of 5 digits
    assert len(set(numbers)) == 1
    groups = numbers[0].split()
    assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)
    for p in summary["participants"]:
        assert p["frames_encrypted"] > 0 and p["frames_decrypted"] > 0
        # each remote's video and audio track is bound to that remote's MLS leaf (issue 9, finding 5)
        assert p["tracks_bound_to_sender"] == 2 * (len(summary["participants"]) - 1)
        assert "wrong_sender" not in p["frames_dropped"]
        for remote in p["frames_decrypted_per_remote"].values():
            assert remote["audio_frames_decoded"] > 0
            assert abs(remote["audio_hz"] - remote["audio_hz_expected"]) < 5
    assert summary["keyless_observer"]["decoded_frames"] == 0
    assert summary["sfu_view"]["plaintext_windows_found"] == 0


def test_call_command_rejects_one_participant() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orange_fast.cli", "call", "-n", "1"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "at least 2 participants" in proc.stderr
