"""Receive-side hook: decrypt each encoded frame lazily, in the receiver's decoder thread.

The receiver's decoder-queue ``put`` is wrapped so every complete encoded frame is
handed to the decoder thread as a frame whose ``data`` decrypts on first access.
A frame under a KID the provider does not hold yet is *held* (the decoder thread waits,
bounded in time and bytes, until the provider installs new keys: see
:mod:`.transition`), so an epoch change loses nothing.  A frame that cannot be decrypted
raises :class:`FrameDropped` (an ``av.error.InvalidDataError``): aiortc 1.16 then drops it
and, for video, asks for a keyframe; that request passes through a rate limiter (one per
interval).  A receiver bound to a sender (:meth:`ReceiverProtection.bind_sender`) drops
authenticated frames whose KID names another sender (``wrong_sender``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import av.error
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from orange_fast.sframe import SFrameError

from . import compat
from .errors import AlreadyProtectedError, FramingError, UnsupportedCodecError
from .framing import FrameTransform, transform_for
from .keys import FrameKeys, kid_is_ahead, kid_sender
from .ratelimit import KeyframeLimiter
from .stats import DropReason, TrackStats
from .transition import HoldState, TransitionPolicy

__all__ = ["ReceiverProtection", "protect_receiver", "FrameDropped"]

_HOOK_ATTR = "_orange_fast_e2ee"
_ENODATA = 1094995529  # AVERROR_INVALIDDATA


class FrameDropped(av.error.InvalidDataError):
    """An encoded frame could not be decrypted and was dropped (reason in :attr:`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(_ENODATA, f"E2EE frame dropped: {reason}")
        self.reason = reason


class _QuietDrops(logging.Filter):
    """Keeps aiortc's per-frame 'failed to decode' warnings for our own drops out of the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not any(isinstance(a, FrameDropped) for a in args)


_filter_installed = False


def _install_log_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("aiortc.rtcrtpreceiver").addFilter(_QuietDrops())
        _filter_installed = True


class ReceiverProtection:
    """The E2EE state of one :class:`RTCRtpReceiver` (created by :func:`protect_receiver`)."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        keys: FrameKeys,
        *,
        vp8_clear_header: bool = False,
        keyframe_interval: float = 1.0,
        transitions: TransitionPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.vp8_clear_header = vp8_clear_header
        self.stats = TrackStats(kind=_receiver_kind(receiver), direction="recv")
        self.limiter = KeyframeLimiter(keyframe_interval)
        self.hold = HoldState(transitions or TransitionPolicy(), clock)
        self._clock = clock
        self._transforms: dict[str, FrameTransform | None] = {}
        self._expected_sender: int | None = None

    def bind_sender(self, sender: int | None) -> None:
        """Accept only frames whose (authenticated) KID names ``sender`` (``None``: any sender).

        ``sender`` is the sender index of the KID layout (the MLS leaf index with the
        session layer): the participant the application expects on this track.  The
        check runs after decryption, so the KID is authenticated.  Raises ``TypeError``
        if the key provider cannot name a KID's sender (no ``sender_of``).
        """
        if sender is not None:
            if not isinstance(sender, int) or isinstance(sender, bool) or sender < 0:
                raise TypeError("sender must be a non-negative int or None")
            if not callable(getattr(self.keys, "sender_of", None)):
                raise TypeError("the key provider has no sender_of(kid): it cannot bind a sender")
        self._expected_sender = sender
        self.stats.bound_sender = sender

    @property
    def expected_sender(self) -> int | None:
        """The sender this receiver is bound to, or ``None``."""
        return self._expected_sender

    def __repr__(self) -> str:
        return f"ReceiverProtection(kind={self.stats.kind!r}, codec={self.stats.codec!r})"

    def _transform(self, mime: str) -> FrameTransform | None:
        if mime not in self._transforms:
            try:
                self._transforms[mime] = transform_for(mime, vp8_clear_header=self.vp8_clear_header)
            except UnsupportedCodecError:
                self._transforms[mime] = None
        return self._transforms[mime]

    def unprotect(self, mime: str, wire: bytes) -> bytes:
        """Decrypt one received frame (decoder thread).  Raises :class:`FrameDropped`.

        A frame under a KID not held yet waits for the provider's next keys (bounded).
        """
        transform = self._transform(mime)
        reason: str | None
        if transform is None:
            reason = DropReason.UNSUPPORTED_CODEC
        else:
            self.stats.codec = transform.name
            started: float | None = None
            while True:
                generation = self.keys.key_generation()
                reason, kid, plain = self._try_unprotect(transform, wire)
                if reason != DropReason.UNKNOWN_KEY or not self.hold.should_hold(generation):
                    break
                if not self._may_come(transform, wire):
                    break
                if started is None:
                    started = self._clock()
                stop = self.hold.wait(self.keys.key_generation, generation, started)
                if stop is not None:
                    reason = stop if stop != "stopped" else DropReason.UNKNOWN_KEY
                    break
            if started is not None and reason is None:
                self.stats.count_held(self._clock() - started)
            if reason is None:
                expected = self._expected_sender
                if expected is not None and kid_sender(self.keys, kid) != expected:
                    reason = DropReason.WRONG_SENDER
                else:
                    self.stats.count_decrypted(kid)
                    return plain
        assert reason is not None
        self.stats.count_dropped(reason)
        raise FrameDropped(reason)

    def _may_come(self, transform: FrameTransform, wire: bytes) -> bool:
        """Whether the frame's (unauthenticated) KID names an epoch we may still install."""
        try:
            return kid_is_ahead(self.keys, transform.kid_of(wire))
        except (SFrameError, FramingError, ValueError, TypeError, OverflowError):
            return False  # a header we cannot read will not decrypt later either

    def _try_unprotect(self, transform: FrameTransform, wire: bytes) -> tuple[str | None, int, bytes]:
        from orange_fast import sframe

        try:
            kid, plain = transform.unprotect(self.keys.context, wire)
        except sframe.UnknownKeyError:
            return DropReason.UNKNOWN_KEY, 0, b""
        except sframe.AuthenticationError:
            return DropReason.AUTH, 0, b""
        except sframe.ReplayError:
            return DropReason.REPLAY, 0, b""
        except (sframe.SFrameError, FramingError, ValueError, TypeError, OverflowError):
            # malformed headers or framing, and whatever else a hostile frame triggers:
            # the decoder thread must survive it
            return DropReason.MALFORMED, 0, b""
        return None, kid, plain

    def allow_keyframe_request(self) -> bool:
        """Rate limit for outgoing PLIs (event loop)."""
        if self.limiter.try_acquire(self._clock()):
            self.stats.add("keyframe_requests_sent")
            return True
        self.stats.add("keyframe_requests_suppressed")
        return False


class _ProtectedFrame(JitterFrame):
    """A received encoded frame that decrypts when the decoder reads ``data``."""

    def __init__(self, inner: JitterFrame, mime: str, hook: ReceiverProtection) -> None:
        self._wire = inner.data
        self.timestamp = inner.timestamp
        self._mime = mime
        self._hook = hook
        self._plain: bytes | None = None
        hook.hold.queued(len(self._wire))

    @property  # type: ignore[override]
    def data(self) -> bytes:
        if self._plain is None:
            self._hook.hold.consumed(len(self._wire))
            self._plain = self._hook.unprotect(self._mime, self._wire)
        return self._plain

    @data.setter
    def data(self, value: bytes) -> None:  # pragma: no cover - aiortc never writes it
        self._plain = value


def _receiver_kind(receiver: RTCRtpReceiver) -> str:
    return getattr(receiver, "_RTCRtpReceiver__kind", "unknown")


def protect_receiver(
    receiver: RTCRtpReceiver,
    keys: FrameKeys,
    *,
    vp8_clear_header: bool = False,
    keyframe_interval: float = 1.0,
    transitions: TransitionPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ReceiverProtection:
    """Decrypt every frame ``receiver`` receives; undecryptable frames are dropped.

    ``transitions`` bounds how long a frame of a not-yet-installed epoch is held
    (default :class:`~orange_fast.rtc.transition.TransitionPolicy`).

    Must be installed before the first frame arrives (e.g. right after creating the
    transceiver, or through :func:`orange_fast.rtc.enable_e2ee`).

    Raises:
        UnsupportedAiortcError: aiortc outside the supported range or internals changed.
        AlreadyProtectedError: the receiver is already protected.
    """
    compat.check_aiortc()
    if not isinstance(keys, FrameKeys):
        raise TypeError("keys must implement orange_fast.rtc.FrameKeys (context, send_kid, key_generation)")
    compat.require_slot(receiver, compat.RECEIVER_QUEUE_SLOT)
    if getattr(receiver, _HOOK_ATTR, None) is not None:
        raise AlreadyProtectedError("this RTCRtpReceiver already has E2EE hooks")
    _install_log_filter()
    hook = ReceiverProtection(
        receiver,
        keys,
        vp8_clear_header=vp8_clear_header,
        keyframe_interval=keyframe_interval,
        transitions=transitions,
        clock=clock,
    )
    queue = getattr(receiver, compat.RECEIVER_QUEUE_SLOT)
    original_put = queue.put

    def put(item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is not None:
            codec, frame = item
            item = (codec, _ProtectedFrame(frame, codec.mimeType.lower(), hook))
        else:  # the receiver is stopping: a held frame must not delay the decoder thread's join
            hook.hold.stop()
        original_put(item, block, timeout)

    queue.put = put
    original_pli = receiver._send_rtcp_pli

    async def _send_rtcp_pli(media_ssrc: int) -> None:
        if hook.allow_keyframe_request():
            await original_pli(media_ssrc)

    receiver._send_rtcp_pli = _send_rtcp_pli  # type: ignore[method-assign]
    setattr(receiver, _HOOK_ATTR, hook)
    return hook
