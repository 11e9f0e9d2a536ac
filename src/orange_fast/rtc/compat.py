"""Start-up check of the aiortc internals the hooks rely on.

aiortc has no public encoded-frame API, so :mod:`orange_fast.rtc` touches a few private
names.  They are checked once, before any hook is installed: an aiortc outside the
supported range, or one whose internals moved, raises :class:`UnsupportedAiortcError`
with a message naming what is missing instead of failing in the middle of a call.
"""

from __future__ import annotations

import importlib.metadata
import threading
from typing import Any

from .errors import UnsupportedAiortcError

__all__ = ["SUPPORTED_AIORTC", "check_aiortc", "aiortc_version"]

#: Supported aiortc versions: ``>= 1.16, < 1.17`` (1.15 handles decoder errors differently).
SUPPORTED_AIORTC = ((1, 16), (1, 17))

#: (module, attribute path) pairs that must exist.
_REQUIRED: tuple[tuple[str, str], ...] = (
    ("aiortc.rtcrtpsender", "RTCRtpSender._next_encoded_frame"),
    ("aiortc.rtcrtpsender", "RTCRtpSender._send_keyframe"),
    ("aiortc.rtcrtpreceiver", "RTCRtpReceiver._send_rtcp_pli"),
    ("aiortc.rtcrtpreceiver", "decoder_worker"),
    ("aiortc.rtcpeerconnection", "RTCPeerConnection._RTCPeerConnection__createTransceiver"),
    ("aiortc.jitterbuffer", "JitterFrame"),
    ("aiortc.codecs.vpx", "Vp8Encoder._packetize"),
    ("aiortc.codecs.h264", "H264Encoder._split_bitstream"),
    ("aiortc.codecs.h264", "H264Encoder._encode_frame"),
    ("aiortc.codecs.opus", "OpusEncoder.encode"),
    ("aiortc.codecs.opus", "OpusEncoder.pack"),
    ("av.error", "InvalidDataError"),
)

#: Private instance slots (checked on each object when it is hooked).
SENDER_ENCODER_SLOT = "_RTCRtpSender__encoder"
RECEIVER_QUEUE_SLOT = "_RTCRtpReceiver__decoder_queue"
PC_CREATE_TRANSCEIVER = "_RTCPeerConnection__createTransceiver"

_checked = False
_lock = threading.Lock()


def aiortc_version() -> tuple[int, ...]:
    """The installed aiortc version as a tuple of ints (``(0,)`` if unknown)."""
    try:
        text = importlib.metadata.version("aiortc")
    except importlib.metadata.PackageNotFoundError as exc:
        raise UnsupportedAiortcError("aiortc is not installed (pip install 'aiortc>=1.16,<1.17')") from exc
    parts = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (0,)


def _resolve(module: str, path: str) -> Any:
    obj: Any = importlib.import_module(module)
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def check_aiortc() -> None:
    """Verify the aiortc version and every private name the hooks use (cached after success).

    Raises:
        UnsupportedAiortcError: version out of range or a name is missing.
    """
    global _checked
    with _lock:
        if _checked:
            return
        version = aiortc_version()
        low, high = SUPPORTED_AIORTC
        if not (low <= version[:2] < high):
            raise UnsupportedAiortcError(
                f"orange_fast.rtc supports aiortc >= {low[0]}.{low[1]}, < {high[0]}.{high[1]}; "
                f"found {'.'.join(map(str, version))}"
            )
        missing = []
        for module, path in _REQUIRED:
            try:
                _resolve(module, path)
            except (ImportError, AttributeError):
                missing.append(f"{module}.{path}")
        if missing:
            raise UnsupportedAiortcError(
                "aiortc internals changed; missing: " + ", ".join(missing)
            )
        _checked = True


def require_slot(obj: object, slot: str) -> None:
    """Raise :class:`UnsupportedAiortcError` if ``obj`` lacks the private attribute ``slot``."""
    if not hasattr(obj, slot):
        raise UnsupportedAiortcError(
            f"aiortc internals changed: {type(obj).__name__} has no attribute {slot!r}"
        )
