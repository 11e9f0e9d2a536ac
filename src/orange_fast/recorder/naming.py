"""Who sent a stream, and what its file is called: from MLS state only, never from the SFU.

A remote's stream is attributed through the SFrame KIDs of the frames that *authenticated*
under the group's keys: the KID carries the sender's MLS leaf index (RFC 9605 §5.2), the
leaf index names a roster entry, and the roster entry's identity (its MLS credential)
names the file.  The SFU's feed ids and display names are never used for that.

Identities are chosen by members, so a hostile member could pick ``../../etc/x``:
:func:`safe_stem` maps any identity to a harmless file-name stem, and
:func:`unique_path` never overwrites an existing file.
"""

from __future__ import annotations

import os
import re

__all__ = ["MAX_STEM", "safe_stem", "sender_leaf", "unique_path"]

MAX_STEM = 80
_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def safe_stem(identity: str) -> str:
    """A file-name stem for ``identity``: only ``[A-Za-z0-9_.-]``, not starting with ``.`` or
    ``-``, 1 to :data:`MAX_STEM` characters (other characters become ``_``)."""
    if not isinstance(identity, str):
        raise TypeError("identity must be a str")
    stem = _BAD.sub("_", identity)[:MAX_STEM]
    if not stem or stem[0] in ".-":
        stem = ("_" + stem)[:MAX_STEM]
    return stem


def unique_path(directory: str, stem: str, suffix: str, taken: set[str]) -> str:
    """``directory/stem + suffix``, or ``stem-2``, ``stem-3``... if that path exists or is in
    ``taken`` (which receives the chosen path)."""
    n = 1
    while True:
        name = stem + suffix if n == 1 else f"{stem}-{n}{suffix}"
        path = os.path.join(directory, name)
        if path not in taken and not os.path.lexists(path):
            taken.add(path)
            return path
        n += 1


def sender_leaf(kid: int, epoch_bits: int, sender_bits: int) -> int:
    """The MLS leaf index a KID names under the ``(context | sender | epoch)`` layout."""
    if kid < 0 or epoch_bits < 0 or sender_bits < 1:
        raise ValueError("kid and bit counts must be non-negative (sender_bits >= 1)")
    return (kid >> epoch_bits) & ((1 << sender_bits) - 1)
