"""The key-provider protocol the aiortc hooks read, and a static provider for tests and demos.

The hooks never derive keys: they ask a :class:`FrameKeys` for an SFrame context that
holds the receive keys, the KID to encrypt outgoing frames under, and a generation
number that changes whenever the send key does.  Optional members refine it:
``keyframe_generation()`` (changes only when a key change needs a keyframe, i.e. a
join), ``sender_of(kid)`` (the sender index a KID names, for binding a receiver to
its sender) and ``epochs_ahead(kid)`` (whether a frame's epoch is still to come, so
the receiver holds it, or is past, so it drops it at once).  ``orange_fast.session``
implements the same protocol from MLS epochs.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import threading
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..sframe.kid import KidLayout, KidLayoutError, sender_bits

if TYPE_CHECKING:  # pragma: no cover
    from orange_fast.sframe import Context

__all__ = [
    "MAX_EPOCHS_AHEAD",
    "FrameKeys",
    "KidLayout",
    "NoFrameKeys",
    "StaticFrameKeys",
    "keyframe_generation",
    "kid_is_ahead",
    "kid_sender",
    "mls_kid",
    "sender_bits",
]


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
        """A number that changes on every send-key change (the hooks snapshot the KID with it)."""
        ...


def keyframe_generation(keys: FrameKeys) -> int:
    """The provider's ``keyframe_generation()`` if it has one, else ``key_generation()``.

    A provider may implement ``keyframe_generation()``: a number that changes only when a
    key change needs a keyframe (a member joined: it has no earlier picture to decode
    from).  Leaves and self-updates then force none, as receivers hold frames of an epoch
    they have not reached yet instead of dropping them.  Without it every send-key change
    forces a keyframe (the conservative choice for a provider that says nothing).
    """
    method = getattr(keys, "keyframe_generation", None)
    return int(method()) if callable(method) else keys.key_generation()


def kid_sender(keys: FrameKeys, kid: int) -> int | None:
    """The sender index a KID names, from the provider's optional ``sender_of(kid)`` (else ``None``)."""
    method = getattr(keys, "sender_of", None)
    return None if not callable(method) else method(kid)


def kid_is_ahead(keys: FrameKeys, kid: int) -> bool:
    """Whether ``kid`` may belong to an epoch the provider has not installed yet.

    Uses the provider's optional ``epochs_ahead(kid)`` (how many epochs after its current
    one the KID's epoch field lies, modulo 2**E; ``None`` without a current epoch):
    1..:data:`MAX_EPOCHS_AHEAD` is ahead; anything else is an older epoch (expired, or from
    before we joined) whose key will never come.  A provider without it: assumed ahead.
    """
    method = getattr(keys, "epochs_ahead", None)
    if not callable(method):
        return True
    ahead = method(kid)
    return ahead is None or 1 <= ahead <= MAX_EPOCHS_AHEAD


MAX_EPOCHS_AHEAD = 8  #: how far ahead of our epoch a frame's epoch may be for it to be held


def mls_kid(epoch: int, index: int, group_size: int, *, epoch_bits: int = 4, context: int = 0) -> int:
    """The RFC 9605 §5.2 KID for a group of ``group_size`` (``S`` = :func:`sender_bits` of it).

    A convenience over :class:`~orange_fast.sframe.kid.KidLayout`, the one definition of the layout.
    """
    if not 0 <= index < group_size:
        raise KidLayoutError("index must be within 0..group_size-1")
    return KidLayout(epoch_bits, sender_bits(group_size), context).kid(index, epoch)


class StaticFrameKeys:
    """Keys derived from a fixed group secret, for tests and demos (not for real calls).

    Every epoch has one base key shared by the group (as MLS gives); per-sender keys
    differ through the KID (RFC 9605 §5.2, the session layer's :class:`KidLayout`
    defaults).  :meth:`advance_epoch` switches the send key and keeps the previous
    epoch's receive keys until :meth:`expire_epoch`.  :meth:`keyframe_generation`
    changes only when an epoch adds a member.
    """

    def __init__(
        self,
        index: int,
        group_size: int,
        group_secret: bytes,
        *,
        suite: int = 4,
        epoch: int = 0,
        epoch_bits: int = 8,
        members: set[int] | None = None,
    ) -> None:
        from orange_fast.sframe import CipherSuite, Context

        if not isinstance(group_secret, (bytes, bytearray)) or len(group_secret) < 16:
            raise ValueError("group_secret must be at least 16 bytes")
        if not isinstance(index, int) or not 0 <= index < group_size:
            raise KidLayoutError("index must be within 0..group_size-1")
        self._suite = CipherSuite(suite)
        self._index = index
        self._group_size = group_size
        self._secret = bytes(group_secret)
        self._layout = KidLayout(epoch_bits=epoch_bits)
        self._layout.kid(index, epoch)  # validates the arguments
        self._members = set(range(group_size)) if members is None else set(members)
        self._lock = threading.Lock()
        self._context = Context(self._suite)
        self._epochs: list[int] = []
        self._generation = 0
        self._keyframe_generation = 0
        self._send_kid: int | None = None
        self._install(epoch, self._members)

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

    def keyframe_generation(self) -> int:
        """Changes when an epoch adds a member (the only key change that needs a keyframe)."""
        with self._lock:
            return self._keyframe_generation

    def sender_of(self, kid: int) -> int:
        """The sender index ``kid`` names."""
        return self._layout.sender_of(kid)

    def epochs_ahead(self, kid: int) -> int | None:
        """How many epochs after our current one ``kid``'s epoch lies (mod 2**E)."""
        with self._lock:
            current = self._epochs[-1] if self._epochs else None
        return self._layout.epochs_ahead(kid, current)

    # -- management ------------------------------------------------------------------
    @property
    def index(self) -> int:
        return self._index

    @property
    def layout(self) -> KidLayout:
        return self._layout

    @property
    def epochs(self) -> list[int]:
        """Epochs whose receive keys are held, oldest first."""
        with self._lock:
            return list(self._epochs)

    def kid(self, epoch: int, index: int) -> int:
        """The KID of ``index``'s frames in ``epoch``."""
        return self._layout.kid(index, epoch)

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
        self._install(epoch, self._members if members is None else set(members))

    def expire_epoch(self, epoch: int) -> None:
        """Forget every key of ``epoch`` (end of its grace period)."""
        with self._lock:
            if epoch not in self._epochs or epoch == self._epochs[-1]:
                raise ValueError("only a previous, held epoch can be expired")
            self._drop_epoch(epoch)

    def _drop_epoch(self, epoch: int) -> None:
        low = self._layout.low_bits(epoch)
        self._epochs.remove(epoch)
        for kid in set(self._context.send_kids() + self._context.receive_kids()):
            if self._layout.epoch_bits_of(kid) == low and self._context.has_key(kid):
                self._context.remove_key(kid)

    def _install(self, epoch: int, members: set[int]) -> None:
        base = self.base_key(epoch)
        with self._lock:
            joined = bool(self._epochs) and bool(members - self._members)
            self._members = members
            low = self._layout.low_bits(epoch)
            # RFC 9605 §5.2: an older epoch with the same low E bits must be dropped.
            for old in [e for e in self._epochs if self._layout.low_bits(e) == low]:
                self._drop_epoch(old)
            for member in sorted(members - {self._index}):
                self._context.add_receive_key(self._layout.kid(member, epoch), base)
            self._epochs.append(epoch)
            if self._index in members:
                kid = self._layout.kid(self._index, epoch)
                if kid not in self._context.send_kids():
                    self._context.add_send_key(kid, base)
                self._send_kid = kid
            else:
                self._send_kid = None
            self._generation += 1
            if joined:
                self._keyframe_generation += 1


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

    def epochs_ahead(self, kid: int) -> int:
        """0 for every KID: no key will ever come, so receivers hold nothing."""
        return 0
