"""Typed exceptions of :mod:`orange_fast.rtc`."""

from __future__ import annotations

__all__ = [
    "RtcError",
    "UnsupportedAiortcError",
    "UnsupportedCodecError",
    "FramingError",
    "AlreadyProtectedError",
]


class RtcError(Exception):
    """Base class of every :mod:`orange_fast.rtc` failure."""


class UnsupportedAiortcError(RtcError, ImportError):
    """The installed aiortc is outside the supported range or lacks a private name the hooks need."""


class UnsupportedCodecError(RtcError, ValueError):
    """The negotiated codec has no E2EE framing rule (the stream is refused rather than sent in clear)."""


class FramingError(RtcError, ValueError):
    """A frame does not fit the codec's E2EE framing (malformed wire frame or unsupported bitstream)."""


class AlreadyProtectedError(RtcError):
    """The sender or receiver already has E2EE hooks installed."""
