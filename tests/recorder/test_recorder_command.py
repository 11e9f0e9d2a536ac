"""``orange-fast record`` as a process: joins a room, records a call through Janus until
SIGTERM, leaves with BYE; and its usage errors.

The delivery service runs inside the SFU's network namespace here, so that the recorder
process (``ip netns exec``) reaches both, as it would on a real network.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")

import av  # noqa: E402

from orange_fast.cli import main  # noqa: E402
from orange_fast.recorder.demo import wait_converged  # noqa: E402
from orange_fast.harness.aio import run_bounded  # noqa: E402
from orange_fast.harness.call import sfu_call, tone_for  # noqa: E402
from orange_fast.harness.media import dominant_frequency, read_frame_index  # noqa: E402
from orange_fast.harness.session_room import SessionRoom  # noqa: E402

pytestmark = [pytest.mark.timeout(300)]


def test_record_command_records_until_sigterm_and_leaves(sfu: Any, tmp_path: Any) -> None:
    def start_room() -> SessionRoom:
        room = SessionRoom(2)
        room.token = secrets.token_hex(16).encode()  # a printable token, for the token file
        room.start()
        return room

    room = sfu.netns.run(start_room, timeout=120)
    try:
        (tmp_path / "token").write_bytes(room.token + b"\n")
        sfu_room = 100000 + secrets.randbelow(800000)
        out = tmp_path / "rec"
        proc = sfu.netns.popen(
            [sys.executable, "-m", "orange_fast.cli", "record", "--room", room.room, "--ds", room.url,
             "--janus", sfu.url, "--sfu-room", str(sfu_room), "--token-file", str(tmp_path / "token"),
             "--out", str(out), "--identity", "rec-cli", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_converged(room.clients, 3, 90)
            assert "rec-cli" in [r.identity for r in room.clients[0].roster]
            numbers = room.safety_numbers()
            epoch = room.clients[0].epoch
            sfu.netns.run(
                lambda: run_bounded(
                    sfu_call(sfu.url, n=2, seconds=4.0, keys=list(room.clients), room=sfu_room,
                             keyless_observer=False, plain_observer=False),
                    timeout=150,
                ),
                timeout=200,
            )
            proc.send_signal(signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr[-2000:]
        summary = json.loads(stdout.strip().splitlines()[-1])
        assert summary["identity"] == "rec-cli" and summary["safety_number"] == numbers[0]
        assert sorted(os.listdir(out)) == ["participant-0.mkv", "participant-1.mkv"]
        for i in range(2):
            path = str(out / f"participant-{i}.mkv")
            with av.open(path) as c:
                pictures = [read_frame_index(f) for f in c.decode(video=0)]
            with av.open(path) as c:
                audio = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
            assert [p for p in pictures if p is not None], "no picture carries its number"
            assert abs(dominant_frequency(audio[12000:]) - tone_for(i)) < 5
        # BYE: the committer's removal commit takes the recorder out
        wait_converged(room.clients, 2, 60, exclude="rec-cli")
        assert room.clients[0].epoch > epoch
    finally:
        room.stop()


def test_record_command_usage_errors(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORANGE_FAST_ROOM_TOKEN", raising=False)
    base = ["record", "--room", "r", "--ds", "ws://127.0.0.1:9", "--janus", "http://127.0.0.1:9/janus",
            "--sfu-room", "1", "--out", str(tmp_path / "out")]

    def fails(*args: str) -> str:
        assert main([*base, *args]) == 2
        return capsys.readouterr().err

    assert "no room token" in fails()
    assert "cannot read the token file" in fails("--token-file", str(tmp_path / "missing"))
    (tmp_path / "token").write_text("0123456789abcdef0123")
    assert "--duration must be > 0" in fails("--token-file", str(tmp_path / "token"), "--duration", "0")
    # nothing listens on port 9: joining fails with a clear message that does not show the token
    err = fails("--token-file", str(tmp_path / "token"), "--join-timeout", "3")
    assert "could not join room 'r'" in err and "0123456789abcdef" not in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as exc:
        main(["record", "--room", "r"])  # argparse: required options missing
    assert exc.value.code == 2


def test_recorder_with_a_wrong_token_is_refused(tmp_path: Any) -> None:
    from orange_fast.recorder import Recorder, RecordingError

    with SessionRoom(1) as room:
        recorder = Recorder(room.url, room.room, b"not the room token", str(tmp_path / "out"))
        with pytest.raises(RecordingError, match="could not join room 'demo'") as exc:
            recorder.join(timeout=20)
        assert "not the room token" not in str(exc.value)
        recorder.leave()  # nothing to leave: a no-op
        assert [r.identity for r in room.clients[0].roster] == ["participant-0"]
    assert not (tmp_path / "out").exists()
