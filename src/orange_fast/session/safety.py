"""Safety number: what call participants compare out of band.

Derivation (all integers big-endian, ``len`` = u32 byte length)::

    roster  = sorted list of (identity, signature_key) pairs, duplicates kept
    input   = "orange_fast safety number v1" || u32(len(epoch_authenticator)) || epoch_authenticator
              || u32(number of members)
              || for each member: u32(len(identity)) || identity || u32(len(signature_key)) || signature_key
    digest  = SHA-256(input)                     (32 bytes; the full value, ``hex``)
    shown   = the first 192 bits of digest as 12 groups of 16 bits (see Rendering)
    short   = the first 80 bits of digest as 5 groups, i.e. the first 5 groups of ``shown``

Rendering: the first ``GROUPS * BITS_PER_GROUP`` = 12 x 16 = 192 bits of the digest are split
into 12 big-endian 16-bit chunks; each chunk (0..65535) is written as exactly 5 decimal
digits, zero-padded.  Every group encodes a fixed number of bits, so distinct bit strings
give distinct texts (the rendering is injective on the shown bits, unlike the reference
design's byte-by-byte decimal text); 192 bits are shown, well above the 60-bit minimum.

What it proves, when two people read the same number (exactly what the input binds):
  * they are in the same MLS group *in the same epoch*: the epoch authenticator is a
    secret only members of that epoch can compute, so a server that splits the room into
    two groups (a man in the middle) cannot make them show the same number without a
    SHA-256 collision on the shown bits;
  * their clients hold the same roster: the same list of identities bound to the same
    signature keys.  A substituted KeyPackage (someone else's key under a real identity)
    gives the two sides different rosters, hence different numbers.

What it does not prove:
  * that the roster is the one you expect.  Everybody in one group computes the same
    number, so a "ghost" member that the server (or a member's client) got added is in
    every member's roster *and* in every member's number: equal numbers do not reveal it.
    Look at the roster (the application gets ``roster``/``joined`` events) and count the
    people you expect;
  * that an identity belongs to the person you think: identities are client ids that the
    delivery service authenticated (the session refuses a KeyPackage whose identity is
    not the sender the server stamped); binding them to people is the application's job;
  * anything about other epochs: the number changes at every epoch (compare again after
    joins, leaves and self-updates);
  * that a participant's device is not compromised, or that media is not recorded by a
    member.

The short number (80 bits) is for reading aloud.  A man in the middle who controls
both groups can search for a collision of the shown bits by making many commits offline
(a birthday search: about 2**40 epoch computations for 80 bits, 2**96 for the full
192 bits); compare the full number when you can.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "SafetyNumber",
    "safety_number",
    "render_digits",
    "GROUPS",
    "SHORT_GROUPS",
    "BITS_PER_GROUP",
    "DIGITS_PER_GROUP",
]

LABEL = b"orange_fast safety number v1"
GROUPS = 12
SHORT_GROUPS = 5  # 80 bits, the first 5 groups of the full text
BITS_PER_GROUP = 16
DIGITS_PER_GROUP = 5  # 10**5 > 2**16: every 16-bit value fits in 5 digits
MAX_FIELD = 1 << 16  # identities and keys are short; refuse absurd sizes


@dataclass(frozen=True)
class SafetyNumber:
    """A safety number: ``digest`` (32 bytes) and its renderings (full and short)."""

    digest: bytes

    @property
    def hex(self) -> str:
        """The full value for machines (64 hex digits)."""
        return self.digest.hex()

    @property
    def text(self) -> str:
        """12 groups of 5 digits separated by spaces (192 bits shown)."""
        return render_digits(self.digest)

    @property
    def short(self) -> str:
        """5 groups of 5 digits (80 bits) to read aloud: the first 5 groups of :attr:`text`."""
        return render_digits(self.digest, SHORT_GROUPS)

    def matches(self, other: SafetyNumber) -> bool:
        """Constant-time comparison of the full digests."""
        if not isinstance(other, SafetyNumber):
            raise TypeError("can only compare with a SafetyNumber")
        return hmac.compare_digest(self.digest, other.digest)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"SafetyNumber({self.text!r})"


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
    else:
        raise TypeError(f"{what} must be bytes-like, not {type(value).__name__}")
    if len(b) >= MAX_FIELD:
        raise ValueError(f"{what} is too long ({len(b)} bytes)")
    return b


def safety_number(epoch_authenticator: bytes, members: Iterable[tuple[bytes, bytes]]) -> SafetyNumber:
    """Compute the safety number of a group epoch.

    Args:
        epoch_authenticator: the MLS epoch authenticator (RFC 9420 §8.7), at least 16 bytes.
        members: ``(identity, signature_key)`` of every member, in any order (they are
            sorted here, so every member computes the same value).

    Raises:
        TypeError: a value is not bytes-like, or a member is not a pair.
        ValueError: the authenticator is shorter than 16 bytes, a field is too long, or
            there is no member.
    """
    auth = _as_bytes(epoch_authenticator, "epoch_authenticator")
    if len(auth) < 16:
        raise ValueError("epoch_authenticator must be at least 16 bytes")
    roster: list[tuple[bytes, bytes]] = []
    for m in members:
        if not isinstance(m, tuple) or len(m) != 2:
            raise TypeError("each member must be an (identity, signature_key) pair")
        roster.append((_as_bytes(m[0], "identity"), _as_bytes(m[1], "signature_key")))
    if not roster:
        raise ValueError("a group has at least one member")
    roster.sort()
    h = hashlib.sha256()
    h.update(LABEL)
    h.update(_u32(len(auth)))
    h.update(auth)
    h.update(_u32(len(roster)))
    for ident, key in roster:
        h.update(_u32(len(ident)))
        h.update(ident)
        h.update(_u32(len(key)))
        h.update(key)
    return SafetyNumber(h.digest())


def render_digits(digest: bytes, groups: int = GROUPS) -> str:
    """Render the first ``groups`` 16-bit big-endian chunks of ``digest`` as 5-digit groups.

    Injective: each group is a fixed-width, zero-padded rendering of a fixed-size chunk.
    """
    if not isinstance(digest, (bytes, bytearray, memoryview)):
        raise TypeError("digest must be bytes-like")
    d = bytes(digest)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError("groups must be a positive int")
    if len(d) * 8 < groups * BITS_PER_GROUP:
        raise ValueError(f"digest too short for {groups} groups")
    out = []
    for i in range(groups):
        chunk = int.from_bytes(d[2 * i : 2 * i + 2], "big")
        out.append(f"{chunk:0{DIGITS_PER_GROUP}d}")
    return " ".join(out)
