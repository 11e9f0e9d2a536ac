"""TLS presentation language (RFC 8446 §3) with MLS variable-length vectors (RFC 9420 §2.1.2).

Public names:

* ``Writer`` -- append-only encoder: ``u8/u16/u32/u64``, ``varint``, ``opaque`` (``opaque<V>``), ``raw``,
  ``u16_vector``/``u32_vector`` (fast paths for integer vectors),
  ``vector(items, encode_item)``, ``optional(value, encode_item)``, ``struct(obj)``, ``getvalue()``.
* ``Reader`` -- strict decoder over bytes: the same methods (``u8 ... u64``, ``varint``, ``opaque``, ``raw(n)``,
  ``vector(decode_item)``, ``optional(decode_item)``, ``struct(cls)``), plus ``remaining``, ``at_end``,
  ``finish()``. Every failure (truncation, trailing bytes, non-minimal varint, bad optional flag)
  raises ``DecodeError``, never another exception.
* ``Struct`` -- base class for wire structures. Subclasses (usually dataclasses) implement
  ``encode(self, w: Writer)`` and ``decode(cls, r: Reader)``; they then get ``to_bytes()`` and
  ``from_bytes(data)`` (which rejects trailing bytes and converts stray errors into ``DecodeError``).
* ``encode_varint(n) -> bytes``, ``decode_varint(data, offset=0) -> (value, new_offset)``,
  ``encode_opaque(data) -> bytes`` (varint length prefix + data), ``pack_u16_vector(items)`` /
  ``pack_u32_vector(items)`` (``uintN items<V>`` as bytes), ``MAX_VARINT`` (2**30 - 1).

Varints: the top two bits of the first byte give the length (00: 1 byte, 01: 2, 10: 4; 11 is invalid);
the decoder rejects values that would fit in a shorter encoding.
"""

from __future__ import annotations

import struct as _struct
from typing import Any, Callable, Iterable, Optional, Type, TypeVar

from .errors import DecodeError, MLSError

__all__ = [
    "MAX_VARINT",
    "Writer",
    "Reader",
    "Struct",
    "encode_varint",
    "decode_varint",
    "encode_opaque",
    "pack_u16_vector",
    "pack_u32_vector",
]

MAX_VARINT = (1 << 30) - 1

T = TypeVar("T")
S = TypeVar("S", bound="Struct")

_U16 = _struct.Struct(">H")
_U32 = _struct.Struct(">I")
_U64 = _struct.Struct(">Q")


_VARINT1 = tuple(bytes((i,)) for i in range(0x40))


def encode_varint(n: int) -> bytes:
    """Minimal MLS varint encoding of ``n`` (0 <= n < 2**30)."""
    if n < 0:
        raise ValueError("varint must be non-negative")
    if n < 0x40:
        return _VARINT1[n]
    if n < 0x4000:
        return _U16.pack(0x4000 | n)
    if n <= MAX_VARINT:
        return _U32.pack(0x80000000 | n)
    raise ValueError("varint too large (max 2**30 - 1)")


def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a varint at ``offset``; return ``(value, offset_after)``. Raises ``DecodeError``."""
    if offset >= len(data):
        raise DecodeError("truncated varint")
    first = data[offset]
    prefix = first >> 6
    if prefix == 0:
        return first, offset + 1
    if prefix == 1:
        if offset + 2 > len(data):
            raise DecodeError("truncated varint")
        v = ((first & 0x3F) << 8) | data[offset + 1]
        if v < 0x40:
            raise DecodeError("non-minimal varint encoding")
        return v, offset + 2
    if prefix == 2:
        if offset + 4 > len(data):
            raise DecodeError("truncated varint")
        v = ((first & 0x3F) << 24) | (data[offset + 1] << 16) | (data[offset + 2] << 8) | data[offset + 3]
        if v < 0x4000:
            raise DecodeError("non-minimal varint encoding")
        return v, offset + 4
    raise DecodeError("invalid varint prefix 0b11")


_U16_PACKERS = tuple(_struct.Struct(f">{n}H") for n in range(16))
_U32_PACKERS = tuple(_struct.Struct(f">{n}I") for n in range(16))


def pack_u16_vector(items: "list[int]") -> bytes:
    """``uint16 items<V>`` encoded (varint byte length, then the big-endian values)."""
    n = len(items)
    if n == 0:
        return b"\x00"
    if n < 16:
        return _VARINT1[2 * n] + _U16_PACKERS[n].pack(*items)
    return encode_varint(2 * n) + _struct.Struct(f">{n}H").pack(*items)


def pack_u32_vector(items: "list[int]") -> bytes:
    """``uint32 items<V>`` encoded (varint byte length, then the big-endian values)."""
    n = len(items)
    if n == 0:
        return b"\x00"
    if n < 16:
        return _VARINT1[4 * n] + _U32_PACKERS[n].pack(*items)
    return encode_varint(4 * n) + _struct.Struct(f">{n}I").pack(*items)


def encode_opaque(data: bytes) -> bytes:
    """``opaque<V>``: varint length followed by the bytes."""
    return encode_varint(len(data)) + bytes(data)


class Writer:
    """Append-only TLS encoder."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    def raw(self, data: bytes | bytearray | memoryview) -> "Writer":
        """Append bytes without a length prefix (fixed-size fields)."""
        self._buf += data
        return self

    def u8(self, v: int) -> "Writer":
        if not 0 <= v <= 0xFF:
            raise ValueError("uint8 out of range")
        self._buf.append(v)
        return self

    def u16(self, v: int) -> "Writer":
        self._buf += _U16.pack(v)
        return self

    def u32(self, v: int) -> "Writer":
        self._buf += _U32.pack(v)
        return self

    def u64(self, v: int) -> "Writer":
        self._buf += _U64.pack(v)
        return self

    def varint(self, v: int) -> "Writer":
        self._buf += encode_varint(v)
        return self

    def opaque(self, data: bytes | bytearray | memoryview) -> "Writer":
        """``opaque<V>``: varint length prefix then the bytes."""
        n = len(data)
        buf = self._buf
        if n < 0x40:
            buf.append(n)
        else:
            buf += encode_varint(n)
        buf += data
        return self

    def struct(self, obj: "Struct") -> "Writer":
        """Encode a nested struct in place (no length prefix)."""
        obj.encode(self)
        return self

    def vector(self, items: Iterable[T], encode_item: Optional[Callable[["Writer", T], Any]] = None) -> "Writer":
        """``T items<V>``: varint byte length then the encoded items.

        ``encode_item(writer, item)`` defaults to ``item.encode(writer)`` (structs).
        """
        sub = Writer()
        if encode_item is None:
            for it in items:
                it.encode(sub)  # type: ignore[attr-defined]
        else:
            for it in items:
                encode_item(sub, it)
        self._buf += encode_varint(len(sub._buf))
        self._buf += sub._buf
        return self

    def u16_vector(self, items: "list[int]") -> "Writer":
        """``uint16 items<V>`` (fast path)."""
        self._buf += pack_u16_vector(items)
        return self

    def u32_vector(self, items: "list[int]") -> "Writer":
        """``uint32 items<V>`` (fast path)."""
        self._buf += pack_u32_vector(items)
        return self

    def optional(self, value: Optional[T], encode_item: Optional[Callable[["Writer", T], Any]] = None) -> "Writer":
        """``optional<T>``: uint8 presence flag (0/1) then the value."""
        if value is None:
            self._buf.append(0)
        else:
            self._buf.append(1)
            if encode_item is None:
                value.encode(self)  # type: ignore[attr-defined]
            else:
                encode_item(self, value)
        return self


class Reader:
    """Strict TLS decoder. Every error is a ``DecodeError``."""

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes | bytearray | memoryview, start: int = 0, end: Optional[int] = None) -> None:
        if not isinstance(data, bytes):
            data = bytes(data)
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        """Number of unread bytes."""
        return self._end - self._pos

    @property
    def position(self) -> int:
        """Absolute offset of the next unread byte in the underlying buffer."""
        return self._pos

    @property
    def data(self) -> bytes:
        """The underlying buffer."""
        return self._data

    def at_end(self) -> bool:
        return self._pos >= self._end

    def finish(self) -> None:
        """Raise ``DecodeError`` if bytes remain."""
        if self._pos != self._end:
            raise DecodeError(f"{self._end - self._pos} trailing byte(s)")

    def _take(self, n: int) -> int:
        p = self._pos
        if n < 0 or p + n > self._end:
            raise DecodeError("truncated input")
        self._pos = p + n
        return p

    def raw(self, n: int) -> bytes:
        """Exactly ``n`` bytes."""
        p = self._take(n)
        return self._data[p : p + n]

    def u8(self) -> int:
        p = self._take(1)
        return self._data[p]

    def u16(self) -> int:
        p = self._take(2)
        return _U16.unpack_from(self._data, p)[0]

    def u32(self) -> int:
        p = self._take(4)
        return _U32.unpack_from(self._data, p)[0]

    def u64(self) -> int:
        p = self._take(8)
        return _U64.unpack_from(self._data, p)[0]

    def varint(self) -> int:
        p = self._pos
        if p >= self._end:
            raise DecodeError("truncated varint")
        d = self._data
        first = d[p]
        prefix = first >> 6
        if prefix == 0:
            self._pos = p + 1
            return first
        if prefix == 1:
            if p + 2 > self._end:
                raise DecodeError("truncated varint")
            v = ((first & 0x3F) << 8) | d[p + 1]
            if v < 0x40:
                raise DecodeError("non-minimal varint encoding")
            self._pos = p + 2
            return v
        if prefix == 2:
            if p + 4 > self._end:
                raise DecodeError("truncated varint")
            v = ((first & 0x3F) << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]
            if v < 0x4000:
                raise DecodeError("non-minimal varint encoding")
            self._pos = p + 4
            return v
        raise DecodeError("invalid varint prefix 0b11")

    def opaque(self) -> bytes:
        """``opaque<V>``."""
        p = self._pos
        if p < self._end:
            first = self._data[p]
            if first < 0x40:  # one-byte length (the common case): inline
                q = p + 1 + first
                if q > self._end:
                    raise DecodeError("truncated input")
                self._pos = q
                return self._data[p + 1 : q]
        n = self.varint()
        return self.raw(n)

    def sub(self, n: int) -> "Reader":
        """A reader over the next ``n`` bytes (which are consumed from this reader)."""
        p = self._take(n)
        return Reader(self._data, p, p + n)

    def struct(self, cls: Type[S]) -> S:
        """Decode a nested struct in place."""
        return cls.decode(self)

    def vector(self, decode_item: Callable[["Reader"], T] | Type[T]) -> list[T]:
        """``T items<V>``: the items must exactly fill the announced length."""
        p = self._pos
        if p < self._end and self._data[p] == 0:  # empty vector (common: extensions)
            self._pos = p + 1
            return []
        n = self.varint()
        sub = self.sub(n)
        fn: Callable[[Reader], T]
        if isinstance(decode_item, type) and issubclass(decode_item, Struct):
            fn = decode_item.decode  # type: ignore[assignment]
        else:
            fn = decode_item  # type: ignore[assignment]
        out: list[T] = []
        while sub._pos < sub._end:
            out.append(fn(sub))
        return out

    def u16_vector(self) -> "list[int]":
        """``uint16 items<V>`` (fast path)."""
        n = self.varint()
        if n & 1:
            raise DecodeError("uint16 vector length is odd")
        p = self._take(n)
        k = n // 2
        return list((_U16_PACKERS[k] if k < 16 else _struct.Struct(f">{k}H")).unpack_from(self._data, p))

    def u32_vector(self) -> "list[int]":
        """``uint32 items<V>`` (fast path)."""
        n = self.varint()
        if n & 3:
            raise DecodeError("uint32 vector length is not a multiple of 4")
        p = self._take(n)
        k = n // 4
        return list((_U32_PACKERS[k] if k < 16 else _struct.Struct(f">{k}I")).unpack_from(self._data, p))

    def optional(self, decode_item: Callable[["Reader"], T] | Type[T]) -> Optional[T]:
        """``optional<T>``: presence flag must be 0 or 1."""
        flag = self.u8()
        if flag == 0:
            return None
        if flag != 1:
            raise DecodeError("invalid optional presence flag")
        if isinstance(decode_item, type) and issubclass(decode_item, Struct):
            return decode_item.decode(self)  # type: ignore[return-value]
        return decode_item(self)  # type: ignore[call-arg,return-value]


class Struct:
    """Base class for wire structures.

    Subclasses implement ``encode(self, w)`` and the classmethod ``decode(cls, r)``.
    """

    __slots__ = ()

    def encode(self, w: Writer) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def decode(cls: Type[S], r: Reader) -> S:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """TLS serialisation of this struct."""
        w = Writer()
        self.encode(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls: Type[S], data: bytes | bytearray | memoryview) -> S:
        """Decode exactly one struct from ``data``; trailing bytes are an error.

        Only ``MLSError`` subclasses escape (unexpected errors become ``DecodeError``).
        """
        r = Reader(data)
        try:
            obj = cls.decode(r)
        except MLSError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeError) as exc:
            raise DecodeError(f"malformed {cls.__name__}: {type(exc).__name__}") from None
        r.finish()
        return obj


def decode_enum(enum_cls: Any, value: int, what: str) -> Any:
    """Convert ``value`` into ``enum_cls`` or raise ``DecodeError``."""
    member = enum_cls._value2member_map_.get(value) if type(value) is int else None
    if member is not None:
        return member
    try:
        return enum_cls(value)
    except ValueError:
        raise DecodeError(f"unknown {what} {value}") from None
