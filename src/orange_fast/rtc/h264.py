"""H.264 framing for SFrame: NAL headers stay intact, ciphertext is escaped.

aiortc's H.264 path does not deliver frames byte-identical to what the sender
packetized: it splits the Annex B stream on start codes, aggregates (STAP-A) or
fragments (FU-A) NAL units, and the receiver rebuilds the stream with 4-byte start
codes.  SFrame ciphertext can contain ``00 00 01``, so it cannot travel raw.

Wire format of one protected access unit (both ends must use it):

* the plaintext access unit is split into NAL units ``(header_i, body_i)``; NAL units
  without a body (end of sequence/stream) carry nothing and are left out;
* ``ct = SFrame(body_1 || ... || body_k, metadata = M)`` where ``M`` binds every
  header byte and body length (so nothing an SFU can see or re-cut is unauthenticated);
* ``ct`` is cut back into k chunks: chunk 1 holds the SFrame header and ``enc(body_1)``,
  chunk k ends with the tag, chunk i otherwise holds ``enc(body_i)``;
* wire NAL i = ``header_i || escape(chunk_i)``, where :func:`escape` inserts an
  emulation-prevention byte ``03`` after ``00 00`` whenever the next byte is ``<= 03``
  (as H.264 does), so no start code can appear inside a NAL unit.

The SFU sees real NAL types (SPS/PPS/IDR) and can detect keyframes.
"""

from __future__ import annotations

from .errors import FramingError

__all__ = ["split_annexb", "escape", "unescape", "join_annexb", "parse_wire"]

START_CODE = b"\x00\x00\x00\x01"


def split_annexb(buf: bytes) -> list[bytes]:
    """Split an Annex B byte stream into NAL units (without start codes).

    Raises:
        FramingError: non-zero bytes before the first start code, or an empty stream.
    """
    buf = bytes(buf)
    first = buf.find(b"\x00\x00\x01")
    if first == -1:
        raise FramingError("no start code in the H.264 access unit")
    if buf[:first].strip(b"\x00"):
        raise FramingError("bytes before the first start code")
    nals = []
    pos = first + 3
    while True:
        nxt = buf.find(b"\x00\x00\x01", pos)
        end = len(buf) if nxt == -1 else nxt
        nal = buf[pos:end].rstrip(b"\x00") if nxt != -1 else buf[pos:end]
        if nal:
            nals.append(nal)
        if nxt == -1:
            break
        pos = nxt + 3
    if not nals:
        raise FramingError("empty H.264 access unit")
    return nals


def join_annexb(nals: list[bytes]) -> bytes:
    """Concatenate NAL units with 4-byte start codes."""
    return b"".join(START_CODE + nal for nal in nals)


def escape(data: bytes) -> bytes:
    """Insert ``03`` after every ``00 00`` that is followed by a byte ``<= 03``."""
    data = bytes(data)
    if b"\x00\x00" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """Invert :func:`escape`.

    Raises:
        FramingError: the input is not an output of :func:`escape` (a ``00 00`` followed
            by a byte ``<= 02``, or an emulation-prevention byte not followed by ``<= 03``).
    """
    data = bytes(data)
    if b"\x00\x00" not in data:
        return data
    out = bytearray()
    zeros = 0
    i = 0
    n = len(data)
    while i < n:
        byte = data[i]
        if zeros >= 2:
            if byte == 3:
                if i + 1 >= n or data[i + 1] > 3:
                    raise FramingError("stray emulation-prevention byte")
                zeros = 0
                i += 1
                continue
            if byte <= 2:
                raise FramingError("start-code emulation inside a NAL unit")
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
        i += 1
    return bytes(out)


def parse_wire(buf: bytes) -> list[bytes]:
    """Split a received access unit (aiortc's depacketized form: every NAL unit
    preceded by ``00 00 00 01``) into its NAL units, still escaped.

    Raises:
        FramingError: the stream does not start with a 4-byte start code, or has an
            empty NAL unit.
    """
    buf = bytes(buf)
    if not buf.startswith(START_CODE):
        raise FramingError("received H.264 frame does not start with a start code")
    nals = []
    pos = 4
    n = len(buf)
    while pos <= n:
        nxt = buf.find(b"\x00\x00\x01", pos)
        if nxt == -1:
            nal = buf[pos:]
            pos = n + 1
        else:
            # aiortc always writes 4-byte start codes; content never contains 00 00 01.
            if nxt - 1 < pos or buf[nxt - 1] != 0:
                raise FramingError("malformed start code in received H.264 frame")
            nal = buf[pos : nxt - 1]
            pos = nxt + 3
        if not nal:
            raise FramingError("empty NAL unit in received H.264 frame")
        nals.append(nal)
    return nals
