"""Encoding helpers shared by the wire structs (``opaque<V>``, uint16/uint32 vectors)."""

from __future__ import annotations

from typing import List

from ..codec import Writer, encode_varint

__all__: List[str] = []


def _opaque_bytes(data: bytes) -> bytes:
    """``opaque<V>`` as bytes."""
    return encode_varint(len(data)) + bytes(data)


_U16_BASIC = b"\x00\x01"  # CredentialType.basic as uint16
_EMPTY_VECTOR = b"\x00"


def _u16_list(w: Writer, items: List[int]) -> None:
    w.u16_vector(items)


def _u32_list(w: Writer, items: List[int]) -> None:
    w.u32_vector(items)
