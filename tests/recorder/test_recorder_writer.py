"""The recorder's files: frames written with PyAV come back out of the file (real encoders,
real tracks producing numbered pictures and a tone)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV is not installed (aiortc brings it)")
pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")

from orange_fast.recorder.writer import MediaFile, RemoteRecording  # noqa: E402
from orange_fast.harness.aio import run_bounded  # noqa: E402
from orange_fast.harness.media import (  # noqa: E402
    NumberedVideoTrack,
    ToneAudioTrack,
    dominant_frequency,
    draw_frame_index,
    read_frame_index,
)


def _read(path: str) -> tuple[list[int | None], np.ndarray]:
    with av.open(path) as c:
        indices = [read_frame_index(f) for f in c.decode(video=0)] if c.streams.video else []
    with av.open(path) as c:
        audio = [f.to_ndarray()[0] for f in c.decode(audio=0)] if c.streams.audio else []
    return indices, (np.concatenate(audio) if audio else np.zeros(0))


def _picture(i: int) -> Any:
    return av.VideoFrame.from_ndarray(draw_frame_index(i), format="yuv420p")


def _tone(k: int, hz: float) -> Any:
    t = (np.arange(960) + k * 960) / 48000
    pcm = (np.sin(2 * np.pi * hz * t) * 0.3 * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(np.repeat(pcm, 2).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = 48000
    return frame


def test_media_file_round_trip(tmp_path) -> None:
    path = str(tmp_path / "x.mkv")
    start = time.monotonic()
    f = MediaFile(path, video_size=(320, 240), audio_layout="stereo", start=start)
    for i in range(20):
        f.write("video", _picture(i), start + i / 15)
        for j in range(3):
            f.write("audio", _tone(3 * i + j, 660.0), start + (3 * i + j) * 0.02)
    size = f.close()
    assert size > 1000 and f.close() == size  # idempotent
    indices, audio = _read(path)
    assert indices == list(range(20))
    assert audio.size >= 0.9 * 60 * 960
    assert abs(dominant_frequency(audio) - 660.0) < 5


def test_media_file_rejects_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError):
        MediaFile(str(tmp_path / "none.mkv"), video_size=None, audio_layout=None, start=0.0)
    f = MediaFile(str(tmp_path / "audio.mkv"), video_size=None, audio_layout="stereo", start=0.0)
    with pytest.raises(ValueError):
        f.write("video", _picture(1), 0.0)
    mono = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
    mono.sample_rate = 48000
    with pytest.raises(ValueError):
        f.write("audio", mono, 0.0)
    f.write("audio", _tone(0, 440.0), 0.0)
    f.close()
    with pytest.raises(ValueError):
        f.write("audio", _tone(1, 440.0), 0.02)


async def _record(
    tmp_path, tracks: list[Any], seconds: float, max_pending: int = RemoteRecording.MAX_PENDING
) -> tuple[RemoteRecording, list[dict[str, Any]]]:
    opened: list[dict[str, Any]] = []

    def open_file(**kwargs: Any) -> MediaFile:
        opened.append(kwargs)
        name = "remote.mkv" if len(opened) == 1 else f"remote-{len(opened)}.mkv"
        return MediaFile(str(tmp_path / name), **kwargs)

    class Recording(RemoteRecording):
        MAX_PENDING = max_pending

    rec = Recording(tracks, open_file)
    await asyncio.sleep(seconds)
    for t in tracks:
        t.stop()
    await rec.close()
    return rec, opened


def test_remote_recording_of_live_tracks(tmp_path) -> None:
    video, audio = NumberedVideoTrack(15), ToneAudioTrack(770.0)
    rec, opened = run_bounded(_record(tmp_path, [video, audio], 1.5), timeout=60)
    assert len(opened) == 1 and opened[0]["video_size"] == (320, 240)
    assert rec.errors == 0 and rec.bytes > 1000
    indices, samples = _read(str(tmp_path / "remote.mkv"))
    assert len(indices) >= 10 and indices == list(range(len(indices)))
    assert rec.paths == [str(tmp_path / "remote.mkv")] and rec.written["video"] == len(indices)
    assert abs(dominant_frequency(samples) - 770.0) < 5


def test_remote_recording_without_frames_writes_no_file(tmp_path) -> None:
    class Silent(NumberedVideoTrack):
        async def recv(self) -> Any:
            await asyncio.sleep(3600)

    rec, opened = run_bounded(_record(tmp_path, [Silent()], 0.3), timeout=30)
    assert opened == [] and rec.paths == [] and rec.bytes == 0
    assert list(tmp_path.iterdir()) == []


def test_remote_recording_starts_a_part_for_a_late_camera(tmp_path) -> None:
    class LateCamera(NumberedVideoTrack):
        async def recv(self) -> Any:
            if self.sent == 0:
                await asyncio.sleep(0.6)
            return await super().recv()

    rec, opened = run_bounded(
        _record(tmp_path, [ToneAudioTrack(880.0), LateCamera(15)], 1.8, max_pending=5), timeout=60
    )
    # 5 audio frames waited for a picture, then the audio-only part began; the first picture
    # closed it and started a part with both streams
    assert [o["video_size"] for o in opened] == [None, (320, 240)]
    assert rec.paths == [str(tmp_path / "remote.mkv"), str(tmp_path / "remote-2.mkv")]
    assert rec.errors == 0
    first, second = (_read(p) for p in rec.paths)
    assert first[0] == [] and abs(dominant_frequency(first[1]) - 880.0) < 5
    assert len(second[0]) >= 10 and second[0] == list(range(len(second[0])))
    assert abs(dominant_frequency(second[1]) - 880.0) < 5
    assert rec.bytes == sum(os.path.getsize(p) for p in rec.paths)
