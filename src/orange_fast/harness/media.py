"""Synthetic media for tests and the demo: numbered video frames and a pure tone.

Each video frame carries its index as two rows of 16 blocks (the bits, then their
complement), large enough to survive lossy coding; :func:`read_frame_index` reads it
back and returns ``None`` for a picture that does not carry a valid index (e.g.
garbage decoded from ciphertext).  The audio track plays a sine tone;
:func:`dominant_frequency` finds it in received audio.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import numpy as np
from av import AudioFrame, VideoFrame
from aiortc.mediastreams import MediaStreamTrack

__all__ = [
    "NumberedVideoTrack",
    "ToneAudioTrack",
    "read_frame_index",
    "dominant_frequency",
    "tone_fraction",
    "FrameSink",
    "read_media_file",
]

WIDTH, HEIGHT = 320, 240
BITS = 16
_BLOCK_W = WIDTH // BITS
_ROW_H = 40
_LOW, _HIGH = 16, 235
VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_PTIME = 0.020


def draw_frame_index(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A yuv420p picture (as the (h*3/2, w) uint8 array PyAV uses) carrying ``index``."""
    if not 0 <= index < 1 << BITS:
        raise ValueError("index out of range")
    y = np.full((height, width), 128, dtype=np.uint8)
    for bit in range(BITS):
        on = (index >> (BITS - 1 - bit)) & 1
        x0 = bit * _BLOCK_W
        y[20 : 20 + _ROW_H, x0 : x0 + _BLOCK_W] = _HIGH if on else _LOW
        y[80 : 80 + _ROW_H, x0 : x0 + _BLOCK_W] = _LOW if on else _HIGH
    # a moving gradient below, so that inter frames carry real data
    ramp = (np.arange(width, dtype=np.int32)[None, :] + index * 4) % 256
    y[140:, :] = ramp.astype(np.uint8)
    uv = np.full((height // 2, width), 128, dtype=np.uint8)
    return np.concatenate([y, uv])


def read_frame_index(frame: VideoFrame) -> int | None:
    """The index drawn by :func:`draw_frame_index`, or ``None`` if the picture carries none."""
    if frame.width != WIDTH or frame.height != HEIGHT:
        return None
    y = frame.to_ndarray(format="yuv420p")[:HEIGHT].astype(np.int32)
    value = 0
    for bit in range(BITS):
        x0 = bit * _BLOCK_W + 4
        top = y[28 : 20 + _ROW_H - 8, x0 : x0 + _BLOCK_W - 8].mean()
        bottom = y[88 : 80 + _ROW_H - 8, x0 : x0 + _BLOCK_W - 8].mean()
        a, b = top > 128, bottom > 128
        if a == b or min(abs(top - 128), abs(bottom - 128)) < 50:
            return None
        value = (value << 1) | int(a)
    return value


class NumberedVideoTrack(MediaStreamTrack):
    """A 320x240 video track at ``fps`` whose frame ``i`` shows the number ``i``."""

    kind = "video"

    def __init__(self, fps: int = 30) -> None:
        super().__init__()
        self.fps = fps
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            from aiortc.mediastreams import MediaStreamError

            raise MediaStreamError
        index = self.sent
        now = time.monotonic()
        if self._start is None or now - (self._start + index / self.fps) > 1.0:
            self._start = now - index / self.fps  # (re)anchor: never try to catch up a backlog
        # always yield to the event loop, even when behind schedule
        await asyncio.sleep(max(0.0, self._start + index / self.fps - now))
        frame = VideoFrame.from_ndarray(draw_frame_index(index % (1 << BITS)), format="yuv420p")
        frame.pts = index * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A mono 48 kHz sine tone of ``frequency`` Hz in 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency = frequency
        self.amplitude = amplitude
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            from aiortc.mediastreams import MediaStreamError

            raise MediaStreamError
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        index = self.sent
        now = time.monotonic()
        if self._start is None or now - (self._start + index * AUDIO_PTIME) > 1.0:
            self._start = now - index * AUDIO_PTIME  # (re)anchor: never try to catch up a backlog
        await asyncio.sleep(max(0.0, self._start + index * AUDIO_PTIME - now))
        t = (np.arange(samples) + index * samples) / AUDIO_RATE
        pcm = (np.sin(2 * np.pi * self.frequency * t) * self.amplitude * 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.sent += 1
        return frame


def dominant_frequency(samples: np.ndarray, rate: int = AUDIO_RATE) -> float:
    """The frequency (Hz) of the strongest spectral peak of mono ``samples``."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 256:
        return 0.0
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1.0 / rate)[int(np.argmax(spectrum))])


def tone_fraction(samples: np.ndarray, frequency: float, rate: int = AUDIO_RATE, width: float = 15.0) -> float:
    """Share of the signal's energy within ``width`` Hz of ``frequency`` (1.0: a pure tone)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < 256:
        return 0.0
    x = x - x.mean()
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    total = float(power.sum())
    if total == 0.0:
        return 0.0
    freqs = np.fft.rfftfreq(x.size, 1.0 / rate)
    return float(power[np.abs(freqs - frequency) <= width].sum() / total)


def read_media_file(path: str) -> tuple[list[int | None], np.ndarray]:
    """Read a media file back (PyAV): the index drawn in each picture (``None`` where it does
    not read, :func:`read_frame_index`) and channel 0 of its audio (empty without audio)."""
    import av

    with av.open(path) as c:
        indices = [read_frame_index(f) for f in c.decode(video=0)]
    with av.open(path) as c:
        chunks = [f.to_ndarray()[0] for f in c.decode(audio=0)]
    return indices, np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def audio_frame_mono(frame: AudioFrame) -> np.ndarray:
    """Channel 0 of a received s16 audio frame as int16 samples."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        return arr[0]
    return arr.reshape(-1)[::channels]


class FrameSink:
    """Consumes a received track, recording decoded video indices or audio samples."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.track = track
        self.kind = track.kind
        self.frames = 0
        self.indices: list[int | None] = []
        self.audio: list[np.ndarray] = []
        self._task: asyncio.Task[Any] | None = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while True:
                frame = await self.track.recv()
                self.frames += 1
                # a received track yields decoded frames of its kind (never encoded packets)
                if isinstance(frame, VideoFrame):
                    self.indices.append(read_frame_index(frame))
                elif isinstance(frame, AudioFrame):
                    self.audio.append(audio_frame_mono(frame))
        except (MediaStreamError, asyncio.CancelledError):
            pass

    @property
    def valid_indices(self) -> list[int]:
        return [i for i in self.indices if i is not None]

    def frequency(self, skip_frames: int = 10) -> float:
        """Dominant frequency of the received audio (the first frames skipped)."""
        if len(self.audio) <= skip_frames:
            return 0.0
        return dominant_frequency(np.concatenate(self.audio[skip_frames:]))

    def tone_fraction(self, frequency: float, skip_frames: int = 10) -> float:
        """Share of the received audio's energy at ``frequency`` (see :func:`tone_fraction`)."""
        if len(self.audio) <= skip_frames:
            return 0.0
        return tone_fraction(np.concatenate(self.audio[skip_frames:]), frequency)

    async def stop(self) -> None:
        """Stop consuming (bounded in time: a track stuck in ``recv`` cannot hang the caller)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=2)
