"""Safety number: what call participants compare out of band.

Derivation (all integers big-endian, ``len`` = u32 byte length)::

    roster  = sorted list of (identity, signature_key) pairs, duplicates kept
    input   = "orange_fast safety number v1" || u32(len(epoch_authenticator)) || epoch_authenticator
              || u32(number of members)
              || for each member: u32(len(identity)) || identity || u32(len(signature_key)) || signature_key
    digest  = SHA-256(input)                     (32 bytes; the full value, ``hex``)
    shown   = the first 192 bits of digest as 12 groups of 16 bits (see Rendering)

Rendering: the first ``GROUPS * BITS_PER_GROUP`` = 12 x 16 = 192 bits of the digest are split
into 12 big-endian 16-bit chunks; each chunk (0..65535) is written as exactly 5 decimal
digits, zero-padded.  Every group encodes a fixed number of bits, so distinct bit strings
give distinct texts (the rendering is injective on the shown bits, unlike the reference
design's byte-by-byte decimal text); 192 bits are shown, well above the 60-bit minimum.

What it proves, when two people read the same number:
  * they are in the same MLS group *in the same epoch* (the epoch authenticator is a
    secret only members of that epoch can compute; a server cannot make two different
    groups show the same number without breaking SHA-256 or MLS);
  * their clients see the same roster: the same identities bound to the same signature
    keys.  A "ghost" member added by a malicious server, or a substituted KeyPackage
    (man in the middle: someone else's signature key under a real identity), changes the
    number for everybody who compares.

What it does not prove:
  * that an identity belongs to the person you think: identities are whatever the
    credentials say; binding them to people is the job of an authentication service or
    of comparing the roster itself;
  * anything about past or future epochs: the number changes at every epoch (compare
    again after joins and leaves);
  * that a participant's device is not compromised, or that media is not recorded by a
    member.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SafetyNumber", "safety_number", "render_digits", "GROUPS", "BITS_PER_GROUP", "DIGITS_PER_GROUP"]

LABEL = b"orange_fast safety number v1"
GROUPS = 12
BITS_PER_GROUP = 16
DIGITS_PER_GROUP = 5  # 10**5 > 2**16: every 16-bit value fits in 5 digits
MAX_FIELD = 1 << 16  # identities and keys are short; refuse absurd sizes


@dataclass(frozen=True)
class SafetyNumber:
    """A safety number: ``digest`` (32 bytes) and its two renderings."""

    digest: bytes

    @property
    def hex(self) -> str:
        """The full value for machines (64 hex digits)."""
        return self.digest.hex()

    @property
    def text(self) -> str:
        """12 groups of 5 digits separated by spaces (192 bits shown)."""
        return render_digits(self.digest)

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
