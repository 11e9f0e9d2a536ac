"""E2EE for aiortc: SFrame on every encoded frame (VP8, H.264, Opus), keys from a provider.

A few lines in an aiortc app::

    from aiortc import RTCPeerConnection
    from orange_fast.rtc import enable_e2ee

    pc = RTCPeerConnection()
    e2ee = enable_e2ee(pc, keys)     # keys: any FrameKeys, e.g. from orange_fast.session
    ...                              # addTrack / offer / answer as usual
    print(e2ee.stats())

aiortc has no public encoded-frame API, so the hooks touch its internals; the supported
aiortc range is checked (:func:`check_aiortc`) before anything is hooked.
"""

from __future__ import annotations

from .compat import SUPPORTED_AIORTC, check_aiortc
from .errors import (
    AlreadyProtectedError,
    FramingError,
    RtcError,
    UnsupportedAiortcError,
    UnsupportedCodecError,
)
from .keys import FrameKeys, KidLayout, NoFrameKeys, StaticFrameKeys, mls_kid
from .stats import DropReason, TrackStats
from .transition import TransitionPolicy

__all__ = [
    "enable_e2ee",
    "protect_sender",
    "protect_receiver",
    "PeerProtection",
    "SenderProtection",
    "ReceiverProtection",
    "FrameKeys",
    "StaticFrameKeys",
    "NoFrameKeys",
    "mls_kid",
    "KidLayout",
    "TrackStats",
    "TransitionPolicy",
    "DropReason",
    "check_aiortc",
    "SUPPORTED_AIORTC",
    "RtcError",
    "UnsupportedAiortcError",
    "UnsupportedCodecError",
    "FramingError",
    "AlreadyProtectedError",
]

_LAZY = {
    "enable_e2ee": "peer",
    "PeerProtection": "peer",
    "protect_sender": "sender",
    "SenderProtection": "sender",
    "protect_receiver": "receiver",
    "ReceiverProtection": "receiver",
}


def __getattr__(name: str) -> object:
    # the hooks import aiortc; keep `import orange_fast.rtc` cheap and aiortc optional
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
