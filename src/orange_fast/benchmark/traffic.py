"""The traffic model of the call benchmark: what one participant's encoder emits.

Per sender, two streams:

* **video** at ``video_fps`` (30) frames per second, a keyframe every ``keyframe_interval`` seconds (2 s),
  sized for a target bitrate (1.5 Mbit/s, typical of 720p): a keyframe is ``keyframe_ratio`` (10) times the
  mean delta frame, delta frames are log-normal around their mean (sigma 0.35), and the sizes are scaled so
  that the stream's mean bitrate equals the target.  At 1.5 Mbit/s that gives deltas of about 5.3 KB and
  keyframes of about 53 KB.  Sizes are clipped to ``[min_video, max_video]`` (``max_video`` keeps a frame in one
  UDP datagram for the loopback relay).
* **audio**: Opus with 20 ms packets, i.e. 50 frames per second, uniform in ``[60, 160]`` bytes.

Each sender starts at a random phase (its frames do not line up with the other senders'), and its first
keyframe comes at a random point of the first interval, as in a call that has been running for a while.

The model is deterministic for a given seed.  :func:`build_schedule` returns every frame of every sender
sorted by time, and :func:`ticks` groups them into receiver ticks (``tick_ms``): the unit in which a receiver
gets its incoming frames and decrypts them in one batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["TrafficModel", "Schedule", "build_schedule", "VIDEO", "AUDIO"]

VIDEO = 0
"""Stream id of video frames."""
AUDIO = 1
"""Stream id of audio frames."""


@dataclass(frozen=True)
class TrafficModel:
    """Parameters of one sender's media (see the module docstring)."""

    video_bitrate: float = 1_500_000.0
    """Video bits per second (mean over a keyframe interval)."""
    video_fps: float = 30.0
    keyframe_interval: float = 2.0
    """Seconds between keyframes."""
    keyframe_ratio: float = 10.0
    """Keyframe size over the mean delta-frame size."""
    delta_sigma: float = 0.35
    """Sigma of the log-normal delta-frame size distribution."""
    min_video: int = 200
    max_video: int = 60_000
    audio_fps: float = 50.0
    audio_min: int = 60
    audio_max: int = 160

    def __post_init__(self) -> None:
        if not (self.video_bitrate > 0 and self.video_fps > 0 and self.audio_fps >= 0):
            raise ValueError("bitrate and frame rates must be positive")
        if not self.keyframe_interval > 0 or not self.keyframe_ratio >= 1:
            raise ValueError("keyframe_interval must be > 0 and keyframe_ratio >= 1")
        if not 0 < self.min_video <= self.max_video or not 0 < self.audio_min <= self.audio_max:
            raise ValueError("size bounds must satisfy 0 < min <= max")
        if self.delta_sigma < 0:
            raise ValueError("delta_sigma must be >= 0")

    @property
    def frames_per_keyframe_interval(self) -> int:
        """Video frames in one keyframe interval (one keyframe plus deltas)."""
        return max(1, round(self.video_fps * self.keyframe_interval))

    @property
    def mean_delta_size(self) -> float:
        """Mean delta-frame size in bytes that makes the mean bitrate equal :attr:`video_bitrate`."""
        k = self.frames_per_keyframe_interval
        interval_bytes = self.video_bitrate / 8.0 * k / self.video_fps
        return interval_bytes / (self.keyframe_ratio + (k - 1))

    @property
    def keyframe_size(self) -> float:
        return self.keyframe_ratio * self.mean_delta_size

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean_delta_size"] = round(self.mean_delta_size, 1)
        d["keyframe_size"] = round(self.keyframe_size, 1)
        return d


@dataclass
class Schedule:
    """Every frame of a call, sorted by send time.

    Arrays of equal length, one entry per frame: ``time`` (seconds from the start), ``sender`` (participant
    index), ``stream`` (:data:`VIDEO`/:data:`AUDIO`), ``size`` (bytes), ``keyframe`` (bool).
    """

    participants: int
    duration: float
    time: np.ndarray
    sender: np.ndarray
    stream: np.ndarray
    size: np.ndarray
    keyframe: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    def ticks(self, tick_ms: float) -> list[np.ndarray]:
        """Frame indices grouped by receiver tick of ``tick_ms`` milliseconds (empty ticks omitted)."""
        if tick_ms <= 0:
            raise ValueError("tick_ms must be > 0")
        tick = np.floor(self.time * 1000.0 / tick_ms).astype(np.int64)
        if len(tick) == 0:
            return []
        bounds = np.flatnonzero(np.diff(tick)) + 1
        return [g for g in np.split(np.arange(len(tick)), bounds) if len(g)]

    def stats(self) -> dict[str, Any]:
        """Observed statistics per sender (means over senders), for checks and the JSON output."""
        v = self.stream == VIDEO
        a = self.stream == AUDIO
        n = max(self.participants, 1)
        d = max(self.duration, 1e-9)
        kf = v & self.keyframe
        kf_interval = float("nan")
        per_sender_kf = [np.sort(self.time[kf & (self.sender == s)]) for s in range(self.participants)]
        gaps = np.concatenate([np.diff(t) for t in per_sender_kf if len(t) > 1] or [np.empty(0)])
        if len(gaps):
            kf_interval = float(gaps.mean())
        return {
            "frames": len(self),
            "video_fps": float(v.sum()) / n / d,
            "audio_fps": float(a.sum()) / n / d,
            "video_bitrate": float(self.size[v].sum()) * 8.0 / n / d,
            "audio_bitrate": float(self.size[a].sum()) * 8.0 / n / d,
            "keyframe_interval": kf_interval,
            "mean_delta_size": float(self.size[v & ~self.keyframe].mean()) if (v & ~self.keyframe).any() else 0.0,
            "mean_keyframe_size": float(self.size[kf].mean()) if kf.any() else 0.0,
            "mean_audio_size": float(self.size[a].mean()) if a.any() else 0.0,
        }


def _sender_frames(model: TrafficModel, duration: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One sender's frames: (time, stream, size, keyframe)."""
    # video
    period = 1.0 / model.video_fps
    phase = rng.uniform(0.0, period)
    nv = int(math.floor((duration - phase) / period)) + 1 if duration > phase else 0
    vt = phase + period * np.arange(nv)
    k = model.frames_per_keyframe_interval
    first_kf = int(rng.integers(0, k))
    key = (np.arange(nv) % k) == (first_kf % k)
    # log-normal deltas with mean 1, scaled to the mean delta size
    sigma = model.delta_sigma
    deltas = rng.lognormal(mean=-0.5 * sigma * sigma, sigma=sigma, size=nv) * model.mean_delta_size
    # keyframes vary less (same scene, intra-coded)
    keys = rng.normal(1.0, 0.05, size=nv) * model.keyframe_size
    vs = np.where(key, keys, deltas)
    vs = np.clip(np.rint(vs), model.min_video, model.max_video).astype(np.int64)
    # audio
    if model.audio_fps > 0:
        aperiod = 1.0 / model.audio_fps
        aphase = rng.uniform(0.0, aperiod)
        na = int(math.floor((duration - aphase) / aperiod)) + 1 if duration > aphase else 0
    else:
        aperiod, aphase, na = 1.0, 0.0, 0
    at = aphase + aperiod * np.arange(na)
    asz = rng.integers(model.audio_min, model.audio_max + 1, size=na).astype(np.int64)
    t = np.concatenate([vt, at])
    stream = np.concatenate([np.full(nv, VIDEO, np.int8), np.full(na, AUDIO, np.int8)])
    size = np.concatenate([vs, asz])
    keyframe = np.concatenate([key, np.zeros(na, bool)])
    return t, stream, size, keyframe


def build_schedule(participants: int, duration: float, model: TrafficModel | None = None, *,
                   seed: int = 1) -> Schedule:
    """Every frame of ``participants`` senders over ``duration`` seconds, sorted by time (stable)."""
    if participants < 1:
        raise ValueError("participants must be >= 1")
    if not duration > 0:
        raise ValueError("duration must be > 0")
    model = model or TrafficModel()
    rng = np.random.default_rng(seed)
    parts = [_sender_frames(model, duration, rng) for _ in range(participants)]
    t = np.concatenate([p[0] for p in parts])
    sender = np.concatenate([np.full(len(p[0]), i, np.int32) for i, p in enumerate(parts)])
    stream = np.concatenate([p[1] for p in parts])
    size = np.concatenate([p[2] for p in parts])
    keyframe = np.concatenate([p[3] for p in parts])
    order = np.argsort(t, kind="stable")
    return Schedule(participants, float(duration), t[order], sender[order], stream[order], size[order],
                    keyframe[order])
