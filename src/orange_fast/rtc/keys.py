"""The key-provider protocol the aiortc hooks read, and a static provider for tests and demos.

The hooks never derive keys: they ask a :class:`FrameKeys` for an SFrame context that
holds the receive keys, the KID to encrypt outgoing frames under, and a generation
number that changes whenever the send key does (the hooks then force a keyframe).
``orange_fast.session`` implements the same protocol from MLS epochs.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import threading
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from orange_fast.sframe import Context

__all__ = ["FrameKeys", "StaticFrameKeys", "NoFrameKeys", "mls_kid", "sender_bits"]


@runtime_checkable
class FrameKeys(Protocol):
    """What the hooks need from a key provider.  All members must be thread-safe."""

    @property
    def context(self) -> Context:
        """The SFrame context: send key(s) of this participant, receive keys of everyone.

        Decryption reads the KID from each frame's header, so frames of the previous
        epoch still decrypt while the provider keeps that epoch's keys (grace period).
        """
        ...

    def send_kid(self) -> int | None:
        """The KID for this participant's outgoing frames, or ``None`` if there is no key yet."""
        ...

    def key_generation(self) -> int:
        """A number that changes on every send-key change (the hooks force a keyframe then)."""
        ...


def sender_bits(group_size: int) -> int:
    """RFC 9605 §5.2 ``S``: the smallest S with ``group_size <= 2**S``."""
    if group_size < 1:
        raise ValueError("group_size must be >= 1")
    return (group_size - 1).bit_length()


def mls_kid(epoch: int, index: int, group_size: int, *, epoch_bits: int = 4, context: int = 0) -> int:
    """The RFC 9605 §5.2 KID ``(context << (S+E)) | (index << E) | (epoch mod 2**E)``."""
    if not 0 <= epoch_bits <= 16:
        raise ValueError("epoch_bits must be within 0..16")
    if epoch < 0 or context < 0:
        raise ValueError("epoch and context must be >= 0")
    if not 0 <= index < group_size:
        raise ValueError("index must be within 0..group_size-1")
    s = sender_bits(group_size)
    kid = (context << (s + epoch_bits)) | (index << epoch_bits) | (epoch & ((1 << epoch_bits) - 1))
    if kid >= 1 << 64:
        raise ValueError("KID does not fit in 64 bits")
    return kid


class StaticFrameKeys:
    """Keys derived from a fixed group secret, for tests and demos (not for real calls).

    Every epoch has one base key shared by the group (as MLS gives); per-sender keys
    differ through the KID (RFC 9605 §5.2).  :meth:`advance_epoch` switches the send
    key and keeps the previous epoch's receive keys until :meth:`expire_epoch`.
    """

    def __init__(
        self,
        index: int,
        group_size: int,
        group_secret: bytes,
        *,
        suite: int = 4,
        epoch: int = 0,
        epoch_bits: int = 4,
        members: set[int] | None = None,
    ) -> None:
        from orange_fast.sframe import CipherSuite, Context

        if not isinstance(group_secret, (bytes, bytearray)) or len(group_secret) < 16:
            raise ValueError("group_secret must be at least 16 bytes")
        self._suite = CipherSuite(suite)
        self._index = index
        self._group_size = group_size
        self._secret = bytes(group_secret)
        self._epoch_bits = epoch_bits
        self._members = set(range(group_size)) if members is None else set(members)
        self._lock = threading.Lock()
        self._context = Context(self._suite)
        self._epochs: list[int] = []
        self._generation = 0
        self._send_kid: int | None = None
        mls_kid(epoch, index, group_size, epoch_bits=epoch_bits)  # validates the arguments
        self._install(epoch)

    def __repr__(self) -> str:
        return f"StaticFrameKeys(index={self._index}, epochs={self._epochs})"

    # -- FrameKeys -------------------------------------------------------------------
    @property
    def context(self) -> Context:
        return self._context

    def send_kid(self) -> int | None:
        with self._lock:
            return self._send_kid

    def key_generation(self) -> int:
        with self._lock:
            return self._generation

    # -- management ------------------------------------------------------------------
    @property
    def index(self) -> int:
        return self._index

    @property
    def epochs(self) -> list[int]:
        """Epochs whose receive keys are held, oldest first."""
        with self._lock:
            return list(self._epochs)

    def kid(self, epoch: int, index: int) -> int:
        """The KID of ``index``'s frames in ``epoch``."""
        return mls_kid(epoch, index, self._group_size, epoch_bits=self._epoch_bits)

    def base_key(self, epoch: int) -> bytes:
        """The epoch's base key: HMAC-SHA256 of the group secret, stretched to the suite's Nk."""
        out = b""
        block = 0
        while len(out) < self._suite.Nk:
            out += hmac.new(
                self._secret, b"orange-fast static base key" + struct.pack(">QB", epoch, block), hashlib.sha256
            ).digest()
            block += 1
        return out[: self._suite.Nk]

    def advance_epoch(self, epoch: int, members: set[int] | None = None) -> None:
        """Install ``epoch`` (receive keys for ``members``, send key if we are one) and switch to it."""
        with self._lock:
            if self._epochs and epoch <= self._epochs[-1]:
                raise ValueError("epochs must increase")
        if members is not None:
            self._members = set(members)
        self._install(epoch)

    def expire_epoch(self, epoch: int) -> None:
        """Forget every key of ``epoch`` (end of its grace period)."""
        with self._lock:
            if epoch not in self._epochs or epoch == self._epochs[-1]:
                raise ValueError("only a previous, held epoch can be expired")
            self._epochs.remove(epoch)
            for kid in self._context.send_kids() + self._context.receive_kids():
                if kid & ((1 << self._epoch_bits) - 1) == epoch & ((1 << self._epoch_bits) - 1):
                    if self._context.has_key(kid):
                        self._context.remove_key(kid)

    def _install(self, epoch: int) -> None:
        base = self.base_key(epoch)
        with self._lock:
            low = epoch & ((1 << self._epoch_bits) - 1)
            # RFC 9605 §5.2: an older epoch with the same low E bits must be dropped.
            for old in [e for e in self._epochs if e & ((1 << self._epoch_bits) - 1) == low]:
                self._epochs.remove(old)
                for kid in set(self._context.send_kids() + self._context.receive_kids()):
                    if kid & ((1 << self._epoch_bits) - 1) == low and self._context.has_key(kid):
                        self._context.remove_key(kid)
            for member in sorted(self._members - {self._index}):
                kid = mls_kid(epoch, member, self._group_size, epoch_bits=self._epoch_bits)
                self._context.add_receive_key(kid, base)
            self._epochs.append(epoch)
            if self._index in self._members:
                kid = mls_kid(epoch, self._index, self._group_size, epoch_bits=self._epoch_bits)
                if kid not in self._context.send_kids():
                    self._context.add_send_key(kid, base)
                self._send_kid = kid
            else:
                self._send_kid = None
            self._generation += 1


class NoFrameKeys:
    """A provider without any key: sends nothing, decrypts nothing (a keyless observer)."""

    def __init__(self, suite: int = 4) -> None:
        from orange_fast.sframe import CipherSuite, Context

        self._context = Context(CipherSuite(suite))

    def __repr__(self) -> str:
        return "NoFrameKeys()"

    @property
    def context(self) -> Context:
        return self._context

    def send_kid(self) -> int | None:
        return None

    def key_generation(self) -> int:
        return 0
