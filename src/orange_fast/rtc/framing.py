"""Per-codec E2EE framing: which bytes stay clear, what the AEAD binds, how the wire looks.

Every rule binds, as SFrame metadata, a version byte, a codec/mode byte and every byte
that travels in the clear, so a frame cannot be moved to another codec or mode, and
nothing an SFU can see or change goes unauthenticated.  Nothing depends on RTP headers
(SSRC, timestamps, sequence numbers): receivers see re-mapped timestamps and no SSRC.

* Opus (and the other audio codecs): the whole packet is one SFrame ciphertext.
* VP8: by default the whole frame is encrypted.  With ``vp8_clear_header=True`` the
  VP8 payload header stays clear for the SFU: 10 bytes on keyframes (frame tag, start
  code, dimensions; keyframe bit P=0 as the encoder set it) and 3 bytes (frame tag)
  otherwise.  Both ends must agree on the mode.
* H.264: see :mod:`orange_fast.rtc.h264`.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from . import h264
from .errors import FramingError, UnsupportedCodecError

if TYPE_CHECKING:  # pragma: no cover
    from orange_fast.sframe import Context

__all__ = [
    "FrameTransform",
    "OpaqueTransform",
    "Vp8Transform",
    "H264Transform",
    "transform_for",
    "FRAMING_VERSION",
]

FRAMING_VERSION = 1

# codec/mode identifiers bound into the AEAD
_ID_OPUS = 1
_ID_VP8 = 2
_ID_VP8_CLEAR = 3
_ID_H264 = 4
_ID_PCMU = 5
_ID_PCMA = 6
_ID_G722 = 7

VP8_KEYFRAME_HEADER = 10
VP8_INTERFRAME_HEADER = 3


class FrameTransform:
    """Turns a plaintext encoded frame into its protected wire form and back."""

    codec_id: int = 0
    name: str = "?"

    def _metadata(self, extra: bytes = b"") -> bytes:
        return bytes((FRAMING_VERSION, self.codec_id)) + extra

    def protect(self, context: Context, kid: int, frame: bytes) -> bytes:
        """Encrypt ``frame`` under ``kid``; raises SFrame errors or :class:`FramingError`."""
        raise NotImplementedError

    def kid_of(self, wire: bytes) -> int:
        """The KID in a protected frame's SFrame header (not authenticated); raises SFrame
        errors or :class:`FramingError` on a malformed frame."""
        from orange_fast.sframe import decode_header

        return int(decode_header(self._sframe_part(wire))[0])

    def _sframe_part(self, wire: bytes) -> bytes:
        return wire

    def unprotect(self, context: Context, wire: bytes) -> tuple[int, bytes]:
        """Return ``(kid, plaintext frame)``; raises SFrame errors or :class:`FramingError`."""
        raise NotImplementedError


class OpaqueTransform(FrameTransform):
    """The whole frame is one SFrame ciphertext (Opus, G.711, G.722)."""

    def __init__(self, codec_id: int, name: str) -> None:
        self.codec_id = codec_id
        self.name = name

    def protect(self, context: Context, kid: int, frame: bytes) -> bytes:
        return context.encrypt(kid, frame, self._metadata())

    def unprotect(self, context: Context, wire: bytes) -> tuple[int, bytes]:
        kid, _ctr, plain = context.decrypt_with_kid(wire, self._metadata())
        return kid, plain


def vp8_header_size(first_byte: int) -> int:
    """Size of the VP8 payload header kept clear: 10 on keyframes (P bit 0), 3 otherwise."""
    return VP8_INTERFRAME_HEADER if first_byte & 1 else VP8_KEYFRAME_HEADER


class Vp8Transform(FrameTransform):
    """VP8: fully encrypted, or with the payload header clear (``clear_header=True``)."""

    name = "VP8"

    def __init__(self, clear_header: bool = False) -> None:
        self.clear_header = bool(clear_header)
        self.codec_id = _ID_VP8_CLEAR if self.clear_header else _ID_VP8

    def protect(self, context: Context, kid: int, frame: bytes) -> bytes:
        if not self.clear_header:
            return context.encrypt(kid, frame, self._metadata())
        if not frame:
            raise FramingError("empty VP8 frame")
        n = vp8_header_size(frame[0])
        if len(frame) <= n:
            raise FramingError("VP8 frame shorter than its payload header")
        clear = bytes(frame[:n])
        return clear + context.encrypt(kid, frame[n:], self._metadata(clear))

    def _sframe_part(self, wire: bytes) -> bytes:
        if not self.clear_header:
            return wire
        if not wire:
            raise FramingError("empty VP8 frame")
        return wire[vp8_header_size(wire[0]) :]

    def unprotect(self, context: Context, wire: bytes) -> tuple[int, bytes]:
        if not self.clear_header:
            kid, _ctr, plain = context.decrypt_with_kid(wire, self._metadata())
            return kid, plain
        if not wire:
            raise FramingError("empty VP8 frame")
        n = vp8_header_size(wire[0])
        if len(wire) <= n:
            raise FramingError("VP8 frame shorter than its payload header")
        clear = bytes(wire[:n])
        kid, _ctr, plain = context.decrypt_with_kid(wire[n:], self._metadata(clear))
        return kid, clear + plain


class H264Transform(FrameTransform):
    """H.264 with intact NAL headers and escaped ciphertext (see :mod:`.h264`)."""

    codec_id = _ID_H264
    name = "H264"

    @staticmethod
    def _split_nal(nal: bytes) -> tuple[int, bytes]:
        header = nal[0]
        if header & 0x80:
            raise FramingError("H.264 NAL unit with the forbidden bit set")
        if not 1 <= header & 0x1F <= 23:
            raise FramingError(f"H.264 NAL unit type {header & 0x1F} cannot be protected")
        return header, nal[1:]

    def _bind(self, headers: list[int], lengths: list[int]) -> bytes:
        return self._metadata(
            struct.pack(">H", len(headers)) + b"".join(struct.pack(">BI", h, n) for h, n in zip(headers, lengths))
        )

    def protect_nals(self, context: Context, kid: int, access_unit: bytes) -> list[bytes]:
        """Protect an Annex B access unit; return the wire NAL units (without start codes)."""
        headers: list[int] = []
        bodies: list[bytes] = []
        for nal in h264.split_annexb(access_unit):
            header, body = self._split_nal(nal)
            if body:  # end-of-sequence/stream NAL units carry nothing: left out
                headers.append(header)
                bodies.append(body)
        if not bodies:
            raise FramingError("H.264 access unit without payload")
        if len(bodies) > 0xFFFF:
            raise FramingError("too many NAL units in one access unit")
        lengths = [len(b) for b in bodies]
        ct = context.encrypt(kid, b"".join(bodies), self._bind(headers, lengths))
        total = sum(lengths)
        hdr_len = len(ct) - total - context.suite.Nt
        # cut: chunk 1 gets the SFrame header, the last chunk gets the tag
        cuts = []
        pos = 0
        for i, n in enumerate(lengths):
            size = n + (hdr_len if i == 0 else 0) + (len(ct) - hdr_len - total if i == len(lengths) - 1 else 0)
            cuts.append(ct[pos : pos + size])
            pos += size
        return [bytes((h,)) + h264.escape(c) for h, c in zip(headers, cuts)]

    def protect(self, context: Context, kid: int, frame: bytes) -> bytes:
        return h264.join_annexb(self.protect_nals(context, kid, frame))

    def _sframe_part(self, wire: bytes) -> bytes:
        for nal in h264.parse_wire(wire):
            return h264.unescape(self._split_nal(nal)[1])  # the SFrame header opens the first NAL
        raise FramingError("H.264 frame without a NAL unit")

    def unprotect(self, context: Context, wire: bytes) -> tuple[int, bytes]:
        from orange_fast.sframe import decode_header

        headers: list[int] = []
        chunks: list[bytes] = []
        for nal in h264.parse_wire(wire):
            header, escaped = self._split_nal(nal)
            headers.append(header)
            chunks.append(h264.unescape(escaped))
        ct = b"".join(chunks)
        _kid, _ctr, hdr_len = decode_header(ct)
        tag = context.suite.Nt
        lengths = [len(c) for c in chunks]
        lengths[0] -= hdr_len
        lengths[-1] -= tag
        if min(lengths) < 0 or (len(lengths) > 1 and min(lengths) == 0) or sum(lengths) <= 0:
            raise FramingError("received H.264 chunks do not fit the SFrame header and tag")
        kid, _ctr, plain = context.decrypt_with_kid(ct, self._bind(headers, lengths))
        nals = []
        pos = 0
        for h, n in zip(headers, lengths):
            nals.append(bytes((h,)) + plain[pos : pos + n])
            pos += n
        return kid, h264.join_annexb(nals)


def transform_for(mime_type: str, *, vp8_clear_header: bool = False) -> FrameTransform:
    """The framing rule of a codec (``"video/VP8"``, ``"video/H264"``, ``"audio/opus"``...).

    Raises:
        UnsupportedCodecError: codecs without a rule are refused, never sent in clear.
    """
    mime = mime_type.lower()
    if mime == "video/vp8":
        return Vp8Transform(vp8_clear_header)
    if mime == "video/h264":
        return H264Transform()
    if mime == "audio/opus":
        return OpaqueTransform(_ID_OPUS, "opus")
    if mime == "audio/pcmu":
        return OpaqueTransform(_ID_PCMU, "PCMU")
    if mime == "audio/pcma":
        return OpaqueTransform(_ID_PCMA, "PCMA")
    if mime == "audio/g722":
        return OpaqueTransform(_ID_G722, "G722")
    raise UnsupportedCodecError(f"no E2EE framing for codec {mime_type!r}")
