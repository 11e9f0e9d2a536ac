"""The call benchmark's traffic model: rates, keyframe cadence, bitrate and sizes match what it claims.

Expected values come from the model's definition (fps, seconds, bitrate), never from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orange_fast.benchmark.traffic import AUDIO, VIDEO, TrafficModel, build_schedule


@pytest.fixture(scope="module")
def long_call():
    return build_schedule(6, 20.0, TrafficModel(), seed=7)


def test_frame_rates_per_sender(long_call) -> None:
    for s in range(6):
        mine = long_call.sender == s
        video = int((mine & (long_call.stream == VIDEO)).sum())
        audio = int((mine & (long_call.stream == AUDIO)).sum())
        # 30 fps and 50 fps over 20 s, the first frame at a random phase: 600 and 1000, +-1
        assert abs(video - 600) <= 1
        assert abs(audio - 1000) <= 1


def test_keyframe_every_two_seconds(long_call) -> None:
    for s in range(6):
        t = np.sort(long_call.time[(long_call.sender == s) & long_call.keyframe])
        assert len(t) in (10, 11)  # 20 s / 2 s
        assert np.allclose(np.diff(t), 2.0, atol=1e-6)
    assert not long_call.keyframe[long_call.stream == AUDIO].any()


def test_mean_bitrate_and_sizes(long_call) -> None:
    stats = long_call.stats()
    assert stats["video_bitrate"] == pytest.approx(1_500_000, rel=0.06)
    # 1.5 Mbit/s, 60 frames per 2 s interval, keyframe = 10 deltas: delta = 187500*2/69 = 5435 B
    assert stats["mean_delta_size"] == pytest.approx(187_500 * 2 / 69, rel=0.06)
    assert 5_000 <= stats["mean_delta_size"] <= 7_000
    assert stats["mean_keyframe_size"] == pytest.approx(10 * 187_500 * 2 / 69, rel=0.06)
    audio = long_call.size[long_call.stream == AUDIO]
    assert audio.min() >= 60 and audio.max() <= 160
    assert stats["audio_fps"] == pytest.approx(50, abs=0.1)
    assert stats["video_fps"] == pytest.approx(30, abs=0.1)
    assert stats["keyframe_interval"] == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("bitrate,interval", [(500_000, 1.0), (3_000_000, 4.0)])
def test_configurable_bitrate_and_keyframe_interval(bitrate: float, interval: float) -> None:
    sched = build_schedule(3, 16.0, TrafficModel(video_bitrate=bitrate, keyframe_interval=interval), seed=3)
    stats = sched.stats()
    assert stats["video_bitrate"] == pytest.approx(bitrate, rel=0.08)
    assert stats["keyframe_interval"] == pytest.approx(interval, abs=1e-6)


def test_schedule_sorted_and_deterministic() -> None:
    a = build_schedule(4, 1.0, seed=5)
    b = build_schedule(4, 1.0, seed=5)
    c = build_schedule(4, 1.0, seed=6)
    assert np.all(np.diff(a.time) >= 0)
    assert np.array_equal(a.size, b.size) and np.array_equal(a.time, b.time)
    assert not np.array_equal(a.size, c.size)
    assert set(a.sender.tolist()) == {0, 1, 2, 3}
    assert a.time.min() >= 0 and a.time.max() < 1.0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), duration=st.floats(0.05, 1.5), tick=st.floats(1.0, 50.0))
def test_ticks_partition_the_frames(n: int, duration: float, tick: float) -> None:
    sched = build_schedule(n, duration, seed=1)
    ticks = sched.ticks(tick)
    flat = np.concatenate(ticks) if ticks else np.empty(0, dtype=np.int64)
    assert sorted(flat.tolist()) == list(range(len(sched)))
    for group in ticks:
        slot = np.floor(sched.time[group] * 1000.0 / tick)
        assert len(set(slot.tolist())) == 1
    starts = [math.floor(sched.time[g[0]] * 1000.0 / tick) for g in ticks]
    assert starts == sorted(set(starts))


@pytest.mark.parametrize("kwargs", [
    {"video_bitrate": 0}, {"video_fps": -1}, {"keyframe_interval": 0}, {"keyframe_ratio": 0.5},
    {"min_video": 10, "max_video": 5}, {"audio_min": 0}, {"delta_sigma": -1},
])
def test_bad_model_parameters(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TrafficModel(**kwargs)


def test_bad_schedule_arguments() -> None:
    with pytest.raises(ValueError):
        build_schedule(0, 1.0)
    with pytest.raises(ValueError):
        build_schedule(2, 0.0)
    with pytest.raises(ValueError):
        build_schedule(2, 1.0).ticks(0)
