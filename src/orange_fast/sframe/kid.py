"""The RFC 9605 §5.2 KID layout for keys from MLS: one definition for every layer.

``KID = (context << (S + E)) | (sender_index << E) | (epoch mod 2**E)``

``E`` (``epoch_bits``) and ``S`` (``sender_bits``) are fixed per :class:`KidLayout`; the
defaults (E = 8, S = 16, context 0) are the session layer's and the aiortc demo keys'.
With ``context = 0``, ``S`` changes no KID (it only places the context field), so a
fixed ``S`` costs nothing; a sender index that does not fit in ``S`` bits is refused.
Pure: no key material, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KidLayout", "KidLayoutError", "sender_bits"]


class KidLayoutError(ValueError):
    """A KID layout or KID argument out of range (nothing was changed)."""


def _int(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{what} must be an int")
    return v


def sender_bits(group_size: int) -> int:
    """RFC 9605 §5.2 ``S`` for a group size: the smallest S with ``group_size <= 2**S`` (at least 1)."""
    if _int(group_size, "group_size") < 1:
        raise KidLayoutError("group_size must be >= 1")
    return max(1, (group_size - 1).bit_length())


@dataclass(frozen=True)
class KidLayout:
    """The RFC 9605 §5.2 KID layout: ``E`` epoch bits, ``S`` sender bits, a context value."""

    epoch_bits: int = 8
    sender_bits: int = 16
    context: int = 0

    def __post_init__(self) -> None:
        e = _int(self.epoch_bits, "epoch_bits")
        s = _int(self.sender_bits, "sender_bits")
        c = _int(self.context, "context")
        if not 1 <= e <= 32:
            raise KidLayoutError("epoch_bits must be in 1..32")
        if not 1 <= s <= 32:
            raise KidLayoutError("sender_bits must be in 1..32")
        if c < 0 or c.bit_length() > 64 - s - e:
            raise KidLayoutError("context does not fit in the remaining KID bits")

    def kid(self, sender_index: int, epoch: int, context: int | None = None) -> int:
        """``(context << (S+E)) | (sender_index << E) | (epoch mod 2**E)``."""
        idx = _int(sender_index, "sender_index")
        ep = _int(epoch, "epoch")
        ctx = self.context if context is None else _int(context, "context")
        if idx < 0 or idx >= 1 << self.sender_bits:
            raise KidLayoutError(f"sender index {idx} does not fit in {self.sender_bits} bits")
        if ep < 0:
            raise KidLayoutError("epoch must be >= 0")
        if ctx < 0 or ctx.bit_length() > 64 - self.sender_bits - self.epoch_bits:
            raise KidLayoutError("context does not fit in the remaining KID bits")
        e, s = self.epoch_bits, self.sender_bits
        return (ctx << (s + e)) | (idx << e) | (ep & ((1 << e) - 1))

    def low_bits(self, epoch: int) -> int:
        """``epoch mod 2**E``: the epoch field of its KIDs."""
        return epoch & ((1 << self.epoch_bits) - 1)

    def sender_of(self, kid: int) -> int:
        """The sender index a KID names (the inverse of :meth:`kid` for that field)."""
        if _int(kid, "kid") < 0 or kid >= 1 << 64:
            raise KidLayoutError("a KID is a 64-bit unsigned integer")
        return (kid >> self.epoch_bits) & ((1 << self.sender_bits) - 1)

    def epoch_bits_of(self, kid: int) -> int:
        """The ``epoch mod 2**E`` field of a KID."""
        if _int(kid, "kid") < 0 or kid >= 1 << 64:
            raise KidLayoutError("a KID is a 64-bit unsigned integer")
        return kid & ((1 << self.epoch_bits) - 1)

    def epochs_ahead(self, kid: int, current_epoch: int | None) -> int | None:
        """``(epoch field of kid - current_epoch) mod 2**E``: 0 for the current epoch, small
        for a later one, close to ``2**E`` for an earlier one; ``None`` without a current epoch."""
        if current_epoch is None:
            return None
        return (self.epoch_bits_of(kid) - current_epoch) % (1 << self.epoch_bits)
