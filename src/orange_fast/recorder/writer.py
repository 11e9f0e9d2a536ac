"""One remote's decrypted audio and video, re-encoded into one Matroska file with PyAV.

:class:`MediaFile` is the container: H.264 (libx264) video and Opus audio, streams added
when the file is opened, timestamps from the arrival time (a late-starting or stalled
stream stays in step with the other one).  :class:`RemoteRecording` consumes the decoded
tracks of one subscription and opens the file on the first frame that decoded, when the
frame's SFrame KID has told who sent it (see :mod:`.naming`); a subscription whose frames
never decrypt produces no file at all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import av

__all__ = ["MediaFile", "RemoteRecording"]

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
SUFFIX = ".mkv"


class MediaFile:
    """A Matroska file with an H.264 video and/or an Opus audio stream, written frame by frame.

    Args:
        path: the file to create.
        video_size: ``(width, height)`` of the video stream, or ``None`` for no video.
        audio_layout: channel layout of the audio stream (``"stereo"``...), or ``None``.
        start: the monotonic time that is timestamp 0.
    """

    def __init__(
        self, path: str, *, video_size: tuple[int, int] | None, audio_layout: str | None, start: float, crf: int = 20
    ) -> None:
        if video_size is None and audio_layout is None:
            raise ValueError("a media file needs a video or an audio stream")
        self.path = path
        self.frames = {"audio": 0, "video": 0}
        self._start = start
        self._next_pts = {"audio": 0, "video": 0}
        self._streams: dict[str, Any] = {}
        self._closed = False
        self._container: Any = av.open(path, "w", format="matroska")
        try:
            if video_size is not None:
                video = self._container.add_stream("libx264", rate=VIDEO_CLOCK)
                video.width, video.height = video_size
                video.pix_fmt = "yuv420p"
                video.codec_context.time_base = fractions.Fraction(1, VIDEO_CLOCK)
                video.options = {"preset": "veryfast", "crf": str(crf)}
                self._streams["video"] = video
            if audio_layout is not None:
                audio = self._container.add_stream("libopus", rate=AUDIO_RATE)
                audio.layout = audio_layout
                self._streams["audio"] = audio
        except BaseException:
            self._container.close()
            raise

    def __repr__(self) -> str:
        return f"MediaFile({self.path!r}, frames={self.frames})"

    def has(self, kind: str) -> bool:
        """Whether the file has a ``kind`` stream."""
        return kind in self._streams

    def write(self, kind: str, frame: Any, at: float) -> None:
        """Encode one decoded frame (``av.VideoFrame``/``av.AudioFrame``) of ``kind`` that
        arrived at monotonic time ``at``.

        Raises:
            ValueError: the file is closed, has no ``kind`` stream, or the audio frame's rate
                or layout differs from the stream's.
        """
        if self._closed:
            raise ValueError("file is closed")
        stream = self._streams.get(kind)
        if stream is None:
            raise ValueError(f"no {kind} stream in this file")
        elapsed = max(0.0, at - self._start)
        if kind == "video":
            if (frame.width, frame.height) != (stream.width, stream.height) or frame.format.name != "yuv420p":
                frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
            pts = max(round(elapsed * VIDEO_CLOCK), self._next_pts["video"])
            frame.pts, frame.time_base = pts, fractions.Fraction(1, VIDEO_CLOCK)
            self._next_pts["video"] = pts + 1
        else:
            if frame.sample_rate != AUDIO_RATE or frame.layout.name != stream.layout.name:
                raise ValueError("audio frame rate or layout differs from the stream's")
            # contiguous samples, re-anchored to the clock only after a gap (lost or late audio)
            pts = self._next_pts["audio"]
            now = round(elapsed * AUDIO_RATE)
            if now - pts > AUDIO_RATE // 2:
                pts = now
            frame.pts, frame.time_base = pts, fractions.Fraction(1, AUDIO_RATE)
            self._next_pts["audio"] = pts + frame.samples
        for packet in stream.encode(frame):
            self._container.mux(packet)
        self.frames[kind] += 1

    def close(self) -> int:
        """Flush the encoders, close the file and return its size in bytes (idempotent)."""
        if not self._closed:
            self._closed = True
            try:
                for stream in self._streams.values():
                    for packet in stream.encode(None):
                        self._container.mux(packet)
            finally:
                self._container.close()
        return os.path.getsize(self.path) if os.path.exists(self.path) else 0


class RemoteRecording:
    """The decoded tracks of one subscribed feed, recorded into a file (or several parts).

    ``open_file(video_size=, audio_layout=, start=)`` is called once the first decoded
    frame of every kind has arrived (or :data:`MAX_PENDING` frames of one kind while the
    other is still missing) and returns the :class:`MediaFile`: the caller names it from
    the authenticated sender of the frames.  Nothing decoded, no file.  A kind that starts
    only later (a camera switched on after 5 s) closes the file and starts a new part with
    every stream.
    """

    MAX_PENDING = 250  # 5 s of audio waiting for the first decodable picture (a keyframe)

    def __init__(self, tracks: list[Any], open_file: Callable[..., MediaFile]) -> None:
        self.tracks = list(tracks)
        self.kinds = {t.kind for t in self.tracks}
        self.file: MediaFile | None = None
        self.paths: list[str] = []
        self.decoded = {"audio": 0, "video": 0}
        self.written = {"audio": 0, "video": 0}
        self.errors = 0
        self.bytes = 0
        self._open_file = open_file
        self._pending: list[tuple[str, Any, float]] = []
        # encoding runs off the event loop (aiortc's RTP and RTCP run there), one frame at a
        # time in arrival order: one worker thread per recording owns the file
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="recorder-writer")
        self._tasks = [asyncio.ensure_future(self._consume(t)) for t in self.tracks]

    async def _consume(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        loop = asyncio.get_running_loop()
        try:
            while True:
                frame = await track.recv()
                self.decoded[track.kind] += 1
                await loop.run_in_executor(self._writer, self._take, track.kind, frame, time.monotonic())
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def _take(self, kind: str, frame: Any, at: float) -> None:
        try:
            if self.file is not None and not self.file.has(kind):
                self._close_part()  # a kind that started late: a new part with every stream
            if self.file is None:
                self._pending.append((kind, frame, at))
                seen = {k for k, _, _ in self._pending}
                if seen != self.kinds and len(self._pending) < self.MAX_PENDING:
                    return
                self._open()
            else:
                self._write(kind, frame, at)
        except (ValueError, av.FFmpegError, OSError) as exc:
            self.errors += 1
            if self.errors <= 3:
                logger.warning("recording a %s frame failed: %s", kind, type(exc).__name__)

    def _write(self, kind: str, frame: Any, at: float) -> None:
        assert self.file is not None
        self.file.write(kind, frame, at)
        self.written[kind] += 1

    def _open(self) -> None:
        pending, self._pending = self._pending, []
        video = next((f for k, f, _ in pending if k == "video"), None)
        audio = next((f for k, f, _ in pending if k == "audio"), None)
        self.file = self._open_file(
            video_size=None if video is None else (video.width, video.height),
            audio_layout=None if audio is None else audio.layout.name,
            start=pending[0][2],
        )
        self.paths.append(self.file.path)
        for kind, frame, at in pending:
            self._write(kind, frame, at)

    def _close_part(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            self.bytes += file.close()

    async def close(self) -> None:
        """Stop consuming (bounded in time) and close the file (pending frames are written)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        await asyncio.get_running_loop().run_in_executor(self._writer, self._finish)
        self._writer.shutdown(wait=False)

    def _finish(self) -> None:
        try:
            if self.file is None and self._pending:
                self._open()
        except (ValueError, av.FFmpegError, OSError) as exc:
            self.errors += 1
            logger.warning("recording the last frames failed: %s", type(exc).__name__)
        self._close_part()
