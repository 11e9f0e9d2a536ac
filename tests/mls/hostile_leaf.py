"""Well-signed but hostile MLS messages from a member, for tests of the layers above MLS.

A malicious member holds its own signing key and group secrets, so everything it sends is
properly framed and authenticated; only the *content* lies.  Building such messages needs
the group's private helpers, which is why this module lives beside the MLS tests (the
boundary test lets ``tests/mls`` read MLS internals; the session tests import this instead).
"""

from __future__ import annotations

import dataclasses

from orange_fast import mls
from orange_fast.mls import messages as M

__all__ = ["hostile_update", "key_package_reusing"]


def hostile_update(group: mls.Group, *, identity: bytes | None = None, new_key: bool = False,
                   claim_key: bytes | None = None) -> bytes:
    """An Update proposal from ``group``'s member whose new leaf changes its credential.

    Args:
        identity: the identity the new leaf claims (default: the member's own).
        new_key: sign the new leaf with a fresh signature key and name that key (a key swap).
        claim_key: name this signature key in the leaf (e.g. another member's) while the leaf
            is signed with the member's own key (so the leaf signature does not verify).

    The FramedContent is signed with the member's current key and protected with its epoch
    secrets, so framing and membership checks pass; the proposal is cached in the sender's
    own state as a real one would be.
    """
    s = group._s
    old = s.tree.leaf(s.own_leaf)
    signer = mls.SignatureKeyPair.generate(group.cipher_suite) if new_key else s.signer
    priv, pub = s.suite.generate_hpke_key_pair()
    cred = M.Credential.basic(identity) if identity is not None else old.credential
    key = claim_key if claim_key is not None else signer.public_key
    leaf = dataclasses.replace(old, encryption_key=pub, signature_key=key, credential=cred,
                               leaf_node_source=M.LeafNodeSource.update, lifetime=None, parent_hash=None,
                               signature=b"")
    leaf.sign(s.suite, signer.private_key, s.group_id, s.own_leaf)
    msg = group._send_proposal(M.Proposal(M.Update(leaf)))
    group._s.update_keys[bytes(leaf.encryption_key)] = priv
    return msg


def key_package_reusing(identity: bytes, encryption_key: bytes, cipher_suite: int = 1) -> mls.KeyPackage:
    """A well-signed KeyPackage for ``identity`` whose leaf names ``encryption_key`` (e.g. a
    current member's): MLS must refuse to add it (RFC 9420 §7.3 key uniqueness)."""
    signer = mls.SignatureKeyPair.generate(cipher_suite)
    kp, _ = mls.KeyPackage.generate(cipher_suite, identity=identity, signer=signer)
    leaf = dataclasses.replace(kp.leaf_node, encryption_key=encryption_key, signature=b"")
    leaf.sign(cipher_suite, signer.private_key)
    kp = dataclasses.replace(kp, leaf_node=leaf, signature=b"")
    kp.sign(signer.private_key)
    return kp
