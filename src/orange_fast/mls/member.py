"""A group member as the application sees it, and the credential-succession rule (RFC 9420 §5.3.1).

A leaf that replaces another one (an Update proposal's leaf, a commit's UpdatePath leaf) must be a
valid *successor* of the leaf it replaces. The default rule keeps both the credential identity and
the signature key; an application that rotates keys or renames members passes a
``CredentialValidator`` that decides which changes it accepts.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Callable, Optional

from . import messages as M
from .errors import CredentialSuccessionError

__all__ = ["Member", "CredentialValidator", "member_of", "check_successor"]


@dataclass(frozen=True)
class Member:
    """A group member as seen in the ratchet tree."""

    leaf_index: int
    identity: bytes
    signature_key: bytes
    encryption_key: bytes = b""

    def __repr__(self) -> str:
        return f"Member(leaf_index={self.leaf_index}, identity={self.identity!r})"


CredentialValidator = Callable[[Member, Member], bool]
"""``validator(old, new) -> bool``: may the member ``old`` become ``new``?

Called only when the credential identity or the signature key changes (a plain key refresh with
the same identity and signature key is always a valid successor). Return True to accept the
change (e.g. a signature-key rotation the application vouches for); anything else rejects it with
:class:`~orange_fast.mls.errors.CredentialSuccessionError`. An exception raised by the validator
propagates unchanged, and the group state is left untouched."""


def member_of(idx: int, leaf: M.LeafNode) -> Member:
    """The :class:`Member` view of the leaf at ``idx``."""
    return Member(idx, bytes(leaf.credential.identity), bytes(leaf.signature_key), bytes(leaf.encryption_key))


def check_successor(idx: int, old: M.LeafNode, new: M.LeafNode,
                    validator: Optional[CredentialValidator]) -> None:
    """Raise :class:`CredentialSuccessionError` unless ``new`` may replace ``old`` at leaf ``idx``.

    Default (no validator): same credential type, identity and signature key. With a validator,
    an identity or signature-key change is allowed when ``validator(old, new)`` returns True; a
    change of credential type is never allowed.
    """
    if old.credential.credential_type != new.credential.credential_type:
        raise CredentialSuccessionError("replacement leaf changes the credential type")
    same_id = hmac.compare_digest(bytes(old.credential.identity), bytes(new.credential.identity))
    same_key = hmac.compare_digest(bytes(old.signature_key), bytes(new.signature_key))
    if same_id and same_key:
        return
    if validator is not None and validator(member_of(idx, old), member_of(idx, new)) is True:
        return
    what = "identity" if not same_id else "signature key"
    raise CredentialSuccessionError(f"replacement leaf changes the member's {what} without consent")
