"""One call to protect a whole :class:`RTCPeerConnection`: every current and future transceiver."""

from __future__ import annotations

from typing import Any

from aiortc import RTCPeerConnection

from . import compat
from .errors import AlreadyProtectedError
from .keys import FrameKeys
from .receiver import ReceiverProtection, protect_receiver
from .sender import SenderProtection, protect_sender
from .transition import TransitionPolicy

__all__ = ["PeerProtection", "enable_e2ee"]

_HOOK_ATTR = "_orange_fast_e2ee"


class PeerProtection:
    """The hooks installed on one peer connection, with their statistics."""

    def __init__(self, keys: FrameKeys, options: dict[str, Any]) -> None:
        self.keys = keys
        self.options = options
        self.senders: list[SenderProtection] = []
        self.receivers: list[ReceiverProtection] = []

    def __repr__(self) -> str:
        return f"PeerProtection(senders={len(self.senders)}, receivers={len(self.receivers)})"

    def hook_transceiver(self, transceiver: Any) -> None:
        """Protect the transceiver's sender and receiver (idempotent)."""
        if getattr(transceiver.sender, _HOOK_ATTR, None) is None:
            self.senders.append(protect_sender(transceiver.sender, self.keys, **self.options))
        if getattr(transceiver.receiver, _HOOK_ATTR, None) is None:
            self.receivers.append(protect_receiver(transceiver.receiver, self.keys, **self.options))

    def stats(self) -> dict[str, list[dict[str, Any]]]:
        """Per-track statistics: ``{"send": [...], "recv": [...]}``."""
        return {
            "send": [s.stats.snapshot() for s in self.senders],
            "recv": [r.stats.snapshot() for r in self.receivers],
        }


def enable_e2ee(
    pc: RTCPeerConnection,
    keys: FrameKeys,
    *,
    vp8_clear_header: bool = False,
    keyframe_interval: float = 1.0,
    transitions: TransitionPolicy | None = None,
) -> PeerProtection:
    """SFrame-protect every sender and receiver of ``pc``, including transceivers created later.

    Call it right after creating the peer connection (before the first negotiation).
    Both ends must use the same ``vp8_clear_header``.  ``transitions`` sets the epoch
    change behaviour (hold bounds, keyframe policy; default :class:`TransitionPolicy`).

    Raises:
        UnsupportedAiortcError: aiortc outside the supported range or internals changed.
        AlreadyProtectedError: ``pc`` already has E2EE enabled.
        TypeError: ``keys`` is not a :class:`FrameKeys`.
    """
    compat.check_aiortc()
    compat.require_slot(pc, compat.PC_CREATE_TRANSCEIVER)
    if getattr(pc, _HOOK_ATTR, None) is not None:
        raise AlreadyProtectedError("this RTCPeerConnection already has E2EE enabled")
    if not isinstance(keys, FrameKeys):
        raise TypeError("keys must implement orange_fast.rtc.FrameKeys (context, send_kid, key_generation)")
    if not keyframe_interval >= 0:
        raise ValueError("keyframe_interval must be >= 0")
    options = {"vp8_clear_header": vp8_clear_header, "keyframe_interval": keyframe_interval, "transitions": transitions}
    protection = PeerProtection(keys, options)
    for transceiver in pc.getTransceivers():
        protection.hook_transceiver(transceiver)
    original = getattr(pc, compat.PC_CREATE_TRANSCEIVER)

    def create_transceiver(*args: Any, **kwargs: Any) -> Any:
        transceiver = original(*args, **kwargs)
        protection.hook_transceiver(transceiver)
        return transceiver

    setattr(pc, compat.PC_CREATE_TRANSCEIVER, create_transceiver)
    setattr(pc, _HOOK_ATTR, protection)
    return protection
