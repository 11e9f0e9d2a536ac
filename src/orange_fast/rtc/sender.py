"""Send-side hook: replace the sender's lazily created encoder with a protecting subclass.

aiortc encodes and packetizes in one step, so the whole encoded frame only exists
inside the encoder.  The subclass transforms it at the codec's single packetization
entry point (VP8 ``_packetize``, H.264 ``_split_bitstream``, audio ``encode``/``pack``),
so aiortc's keyframe requests (PLI/FIR), bitrate adaptation (REMB, via the inherited
``target_bitrate``) and audio level keep working.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from aiortc.codecs.g711 import PcmaEncoder, PcmuEncoder
from aiortc.codecs.g722 import G722Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpsender import RTCRtpSender

from . import compat
from .errors import AlreadyProtectedError, FramingError, UnsupportedCodecError
from .framing import FrameTransform, H264Transform, transform_for
from .keys import FrameKeys, keyframe_generation
from .ratelimit import KeyframeLimiter
from .stats import DropReason, TrackStats
from .transition import TransitionPolicy

__all__ = ["SenderProtection", "protect_sender"]

logger = logging.getLogger(__name__)

_HOOK_ATTR = "_orange_fast_e2ee"


class SenderProtection:
    """The E2EE state of one :class:`RTCRtpSender` (created by :func:`protect_sender`)."""

    def __init__(
        self,
        sender: RTCRtpSender,
        keys: FrameKeys,
        *,
        vp8_clear_header: bool = False,
        keyframe_interval: float = 1.0,
        transitions: TransitionPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.vp8_clear_header = vp8_clear_header
        self.stats = TrackStats(kind=sender.kind, direction="send")
        self.limiter = KeyframeLimiter(keyframe_interval)
        self.policy = transitions or TransitionPolicy()
        self._clock = clock
        self._last_generation: int | None = None
        self._keyframe_due = threading.Event()
        self._sender = sender

    def __repr__(self) -> str:
        return f"SenderProtection(kind={self.stats.kind!r}, codec={self.stats.codec!r})"

    # -- called from aiortc (event loop) --------------------------------------------------
    def on_keyframe_request(self) -> None:
        """PLI/FIR from the remote end: honoured at most once per interval, the rest coalesced."""
        self.stats.add("keyframe_requests_received")
        if self.limiter.request(self._clock()):
            self._keyframe_due.set()  # granted now: the next frame is a keyframe

    # -- called from the encoder thread ---------------------------------------------------
    def begin_frame(self, force_keyframe: bool, *, video: bool = True) -> tuple[int | None, bool]:
        """Snapshot the send KID for the next frame and decide whether it must be a keyframe.

        A key change forces a keyframe only when the policy says so: with ``"join"`` (the
        default) when the provider's keyframe generation changed (a member joined), with
        ``"every"`` on every send-key change.  Audio frames all decode independently: they
        take the KID snapshot only.
        """
        while True:
            generation = self.keys.key_generation()
            kid = self.keys.send_kid()
            if self.keys.key_generation() == generation:
                break
        if not video:
            return kid, False
        if self.policy.keyframes == "join":
            generation = keyframe_generation(self.keys)
        now = self._clock()
        force = force_keyframe
        if generation != self._last_generation:
            if self._last_generation is not None:
                self.stats.add("keyframes_forced_by_key_change")
            self._last_generation = generation
            # a keyframe for a key change does not use up the request budget: a joiner's
            # own request, right after its subscription starts, is still honoured at once
            force = True
        elif self._keyframe_due.is_set() or self.limiter.poll(now):
            self.stats.add("keyframe_requests_honoured")
            force = True
        if force:
            self._keyframe_due.clear()
        return kid, force

    def protect(self, transform: FrameTransform, kid: int | None, frame: bytes) -> bytes | None:
        """Encrypt one encoded frame; ``None`` drops it (counted by reason)."""
        from orange_fast import sframe

        if kid is None:
            self.stats.count_dropped(DropReason.NO_SEND_KEY)
            return None
        try:
            out = transform.protect(self.keys.context, kid, frame)
        except sframe.UnknownKeyError:
            self.stats.count_dropped(DropReason.NO_SEND_KEY)
            return None
        except sframe.CounterExhaustedError:
            self.stats.count_dropped(DropReason.COUNTER_EXHAUSTED)
            return None
        except FramingError:
            self.stats.count_dropped(DropReason.FRAMING)
            return None
        self.stats.count_encrypted(kid)
        return out

    def protect_nals(self, transform: H264Transform, kid: int | None, access_unit: bytes) -> list[bytes]:
        from orange_fast import sframe

        if kid is None:
            self.stats.count_dropped(DropReason.NO_SEND_KEY)
            return []
        try:
            out = transform.protect_nals(self.keys.context, kid, access_unit)
        except sframe.UnknownKeyError:
            self.stats.count_dropped(DropReason.NO_SEND_KEY)
            return []
        except sframe.CounterExhaustedError:
            self.stats.count_dropped(DropReason.COUNTER_EXHAUSTED)
            return []
        except FramingError:
            self.stats.count_dropped(DropReason.FRAMING)
            return []
        self.stats.count_encrypted(kid)
        return out

    def make_encoder(self, codec: Any) -> Any:
        """A protecting encoder for the negotiated ``codec`` (RTCRtpCodecParameters)."""
        mime = codec.mimeType.lower()
        transform = transform_for(mime, vp8_clear_header=self.vp8_clear_header)
        cls = _ENCODERS.get(mime)
        if cls is None:  # pragma: no cover - transform_for already refused it
            raise UnsupportedCodecError(f"no protected encoder for {codec.mimeType!r}")
        encoder = cls()
        encoder._oe_hook = self
        encoder._oe_transform = transform
        encoder._oe_kid = None
        self.stats.codec = transform.name
        return encoder


class _VideoFrameHook:
    """Shared by the video encoders: pick the send KID (and any forced keyframe) once per
    frame, before the codec encodes (raw frames) or packs (pre-encoded packets) it."""

    _oe_hook: SenderProtection
    _oe_kid: int | None

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        self._oe_kid, force = self._oe_hook.begin_frame(force_keyframe)
        return super().encode(frame, force)  # type: ignore[misc]

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        self._oe_kid, _ = self._oe_hook.begin_frame(False)
        return super().pack(packet)  # type: ignore[misc]


class _ProtectedVp8Encoder(_VideoFrameHook, Vp8Encoder):
    _oe_transform: FrameTransform

    def _packetize(self, buffer: bytes, picture_id: int) -> list[bytes]:  # type: ignore[override]
        if not buffer:
            return []
        protected = self._oe_hook.protect(self._oe_transform, self._oe_kid, buffer)
        if protected is None:
            return []
        return super()._packetize(protected, picture_id)


class _ProtectedH264Encoder(_VideoFrameHook, H264Encoder):
    _oe_transform: H264Transform

    def _split_bitstream(self, buf: bytes) -> Any:  # type: ignore[override]
        if not buf:
            return iter(())
        return iter(self._oe_hook.protect_nals(self._oe_transform, self._oe_kid, buf))


def _audio_encoder(base: type) -> type:
    class _ProtectedAudioEncoder(base):  # type: ignore[valid-type, misc]
        _oe_hook: SenderProtection
        _oe_transform: FrameTransform

        def _protect_all(self, payloads: list[bytes], timestamp: int) -> tuple[list[bytes], int]:
            if not payloads:
                return payloads, timestamp
            kid, _ = self._oe_hook.begin_frame(False, video=False)
            out = []
            for payload in payloads:
                protected = self._oe_hook.protect(self._oe_transform, kid, payload)
                if protected is not None:
                    out.append(protected)
            return out, timestamp

        def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
            return self._protect_all(*super().encode(frame, force_keyframe))

        def pack(self, packet: Any) -> tuple[list[bytes], int]:
            return self._protect_all(*super().pack(packet))

    _ProtectedAudioEncoder.__name__ = _ProtectedAudioEncoder.__qualname__ = f"_Protected{base.__name__}"
    return _ProtectedAudioEncoder


_ENCODERS: dict[str, type] = {
    "video/vp8": _ProtectedVp8Encoder,
    "video/h264": _ProtectedH264Encoder,
    "audio/opus": _audio_encoder(OpusEncoder),
    "audio/pcmu": _audio_encoder(PcmuEncoder),
    "audio/pcma": _audio_encoder(PcmaEncoder),
    "audio/g722": _audio_encoder(G722Encoder),
}


def protect_sender(
    sender: RTCRtpSender,
    keys: FrameKeys,
    *,
    vp8_clear_header: bool = False,
    keyframe_interval: float = 1.0,
    transitions: TransitionPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SenderProtection:
    """Encrypt every frame ``sender`` sends with SFrame under ``keys``.

    Works with any :class:`MediaStreamTrack` (raw frames or pre-encoded packets).  Must
    be called before the sender starts (before ``setLocalDescription``/``setRemoteDescription``
    complete), or at least before its first frame.  A codec without E2EE rules stops
    the sender instead of sending clear media.

    Raises:
        UnsupportedAiortcError: aiortc outside the supported range or internals changed.
        AlreadyProtectedError: the sender is already protected.
    """
    compat.check_aiortc()
    if not isinstance(keys, FrameKeys):
        raise TypeError("keys must implement orange_fast.rtc.FrameKeys (context, send_kid, key_generation)")
    compat.require_slot(sender, compat.SENDER_ENCODER_SLOT)
    if getattr(sender, _HOOK_ATTR, None) is not None:
        raise AlreadyProtectedError("this RTCRtpSender already has E2EE hooks")
    if getattr(sender, compat.SENDER_ENCODER_SLOT) is not None:
        # an unprotected encoder already exists: replace it (the next frame uses ours)
        setattr(sender, compat.SENDER_ENCODER_SLOT, None)
    hook = SenderProtection(
        sender,
        keys,
        vp8_clear_header=vp8_clear_header,
        keyframe_interval=keyframe_interval,
        transitions=transitions,
        clock=clock,
    )
    original_next = sender._next_encoded_frame

    async def _next_encoded_frame(codec: Any) -> Any:
        if getattr(sender, compat.SENDER_ENCODER_SLOT) is None:
            setattr(sender, compat.SENDER_ENCODER_SLOT, hook.make_encoder(codec))
        return await original_next(codec)

    sender._next_encoded_frame = _next_encoded_frame  # type: ignore[method-assign]
    sender._send_keyframe = hook.on_keyframe_request  # type: ignore[method-assign]
    setattr(sender, _HOOK_ATTR, hook)
    return hook
