"""TreeKEM (RFC 9420 §7.4-7.6): UpdatePath creation and processing.

* :func:`prepare_path` -- sender side, phase 1: blank the direct path, derive fresh path secrets and
  node key pairs for the filtered direct path, write the public keys into the tree and compute the
  parent hashes.  The caller then builds and signs the new LeafNode (it needs ``leaf_parent_hash``)
  and stores it with ``tree.set_leaf``.
* :func:`encrypt_path` -- sender side, phase 2: once the provisional GroupContext (which contains
  the new tree hash) is known, encrypt every path secret to the resolution of the copath child.
* :func:`merge_path` -- receiver side, phase 1: apply the public part of an UpdatePath to the tree
  and verify the parent hash of the new leaf.
* :func:`decrypt_path` -- receiver side, phase 2: decrypt the path secret meant for us, derive the
  rest of the path and check that the derived public keys are the ones announced.

``PrivatePath`` maps node index to ``(private_key, public_key)``; it is pruned whenever the
tree no longer carries the matching public key.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from . import treemath as tm
from .errors import DecryptionError, InvalidCommitError, InvalidTreeError, MLSError
from .tree import RatchetTree

__all__ = ["PathSecrets", "PrivateKeys", "prepare_path", "encrypt_path", "merge_path", "decrypt_path",
           "derive_node_keypair", "prune_private_keys"]

PrivateKeys = Dict[int, Tuple[bytes, bytes]]  # node -> (priv, pub)


def _messages() -> Any:
    from . import messages

    return messages


def derive_node_keypair(suite: Any, path_secret: bytes) -> Tuple[bytes, bytes]:
    """node_priv, node_pub = KEM.DeriveKeyPair(DeriveSecret(path_secret, "node"))."""
    node_secret = suite.derive_secret(path_secret, b"node")
    return suite.derive_key_pair(node_secret)


def next_path_secret(suite: Any, path_secret: bytes) -> bytes:
    return suite.derive_secret(path_secret, b"path")


@dataclass
class PathSecrets:
    """Sender-side secrets of a freshly generated path (never serialised, never logged)."""

    nodes: List[int]  # filtered direct path, leaf to root
    copath: List[int]
    secrets: List[bytes]  # path_secret[i] for nodes[i]
    commit_secret: bytes
    leaf_priv: bytes
    leaf_pub: bytes
    leaf_parent_hash: bytes
    privs: PrivateKeys = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"PathSecrets(nodes={self.nodes})"


def prepare_path(tree: RatchetTree, leaf_index: int, leaf_secret: Optional[bytes] = None,
                 first_path_secret: Optional[bytes] = None) -> PathSecrets:
    """Sender phase 1 (mutates ``tree``): new keys on the filtered direct path + parent hashes."""
    suite = tree.suite
    messages = _messages()
    tree.blank_path(leaf_index)
    fdp = tree.filtered_direct_path_with_copath(leaf_index)
    nodes = [p for p, _ in fdp]
    copath = [c for _, c in fdp]
    nh = suite.nh
    if leaf_secret is None:
        leaf_secret = os.urandom(nh)
    leaf_priv, leaf_pub = derive_node_keypair(suite, leaf_secret)
    secrets: List[bytes] = []
    privs: PrivateKeys = {}
    ps = first_path_secret if first_path_secret is not None else os.urandom(nh)
    for i, p in enumerate(nodes):
        if i > 0:
            ps = next_path_secret(suite, ps)
        secrets.append(ps)
        priv, pub = derive_node_keypair(suite, ps)
        privs[p] = (priv, pub)
        tree.set_node(p, messages.ParentNode(encryption_key=pub, parent_hash=b"", unmerged_leaves=[]))
    commit_secret = next_path_secret(suite, ps) if nodes else next_path_secret(suite, ps)
    leaf_ph, _ = tree.compute_parent_hashes(leaf_index)
    privs[2 * leaf_index] = (leaf_priv, leaf_pub)
    return PathSecrets(nodes, copath, secrets, commit_secret, leaf_priv, leaf_pub, leaf_ph, privs)


def encrypt_path(tree: RatchetTree, leaf_index: int, path: PathSecrets, leaf_node: Any,
                 group_context: bytes, exclude_leaves: Set[int]) -> Any:
    """Sender phase 2: build the UpdatePath (encrypt each path secret to the copath resolution)."""
    suite = tree.suite
    messages = _messages()
    upn = []
    for p, c, ps in zip(path.nodes, path.copath, path.secrets):
        cts = []
        for r in tree.resolution(c, exclude_leaves):
            pub = tree.require_node(r).encryption_key
            kem_output, ct = suite.encrypt_with_label(pub, b"UpdatePathNode", group_context, ps)
            cts.append(messages.HPKECiphertext(kem_output=kem_output, ciphertext=ct))
        upn.append(messages.UpdatePathNode(encryption_key=tree.require_node(p).encryption_key,
                                           encrypted_path_secret=cts))
    return messages.UpdatePath(leaf_node=leaf_node, nodes=upn)


def merge_path(tree: RatchetTree, sender: int, update_path: Any) -> None:
    """Receiver phase 1 (mutates ``tree``): merge the public keys, verify the leaf's parent hash.

    The caller has already validated ``update_path.leaf_node`` (signature, source == commit, ...).
    """
    messages = _messages()
    tree.blank_path(sender)
    fdp = tree.filtered_direct_path(sender)
    if len(update_path.nodes) != len(fdp):
        raise InvalidCommitError("UpdatePath length does not match the filtered direct path")
    seen: Set[bytes] = set()
    for p, node in zip(fdp, update_path.nodes):
        key = bytes(node.encryption_key)
        if key in seen:
            raise InvalidCommitError("duplicate key in UpdatePath")
        seen.add(key)
        tree.set_node(p, messages.ParentNode(encryption_key=key, parent_hash=b"", unmerged_leaves=[]))
    leaf_ph, _ = tree.compute_parent_hashes(sender)
    leaf = update_path.leaf_node
    got = getattr(leaf, "parent_hash", None)
    if got is None or not hmac.compare_digest(bytes(got), leaf_ph):
        raise InvalidCommitError("parent hash of the committer's leaf does not match")
    tree.set_leaf(sender, leaf)


def decrypt_path(tree: RatchetTree, sender: int, receiver: int, update_path: Any, privs: PrivateKeys,
                 group_context: bytes, exclude_leaves: Set[int]) -> Tuple[bytes, PrivateKeys, bytes]:
    """Receiver phase 2: returns ``(commit_secret, new_private_keys, path_secret_at_lca)``.

    ``tree`` is the tree after :func:`merge_path`; ``privs`` the receiver's keys *before* the
    merge (it must hold a private key for some node of the copath resolution).
    """
    suite = tree.suite
    fdp = tree.filtered_direct_path_with_copath(sender)
    rx = 2 * receiver
    for i, (_, c) in enumerate(fdp):
        if not tm.is_in_subtree(c, rx):
            continue
        res = tree.resolution(c, exclude_leaves)
        cts = update_path.nodes[i].encrypted_path_secret
        if len(cts) != len(res):
            raise InvalidCommitError("wrong number of encrypted path secrets")
        for j, r in enumerate(res):
            kp = privs.get(r)
            if kp is None:
                continue
            # the node must still carry the public key we hold the private key for
            node = tree.nodes[r]
            if node is None or bytes(node.encryption_key) != kp[1]:
                continue
            try:
                ps = suite.decrypt_with_label(kp[0], b"UpdatePathNode", group_context,
                                              cts[j].kem_output, cts[j].ciphertext)
            except MLSError:
                raise
            except Exception:  # noqa: BLE001
                raise DecryptionError("cannot decrypt path secret") from None
            lca_secret = ps
            new_privs: PrivateKeys = {}
            for k in range(i, len(fdp)):
                if k > i:
                    ps = next_path_secret(suite, ps)
                priv, pub = derive_node_keypair(suite, ps)
                pk = fdp[k][0]
                if not hmac.compare_digest(pub, bytes(tree.require_node(pk).encryption_key)):
                    raise InvalidCommitError("derived public key does not match the UpdatePath")
                new_privs[pk] = (priv, pub)
            commit_secret = next_path_secret(suite, ps)
            return commit_secret, new_privs, lca_secret
        raise DecryptionError("no private key for the copath resolution")
    raise InvalidCommitError("receiver is not covered by the UpdatePath")


def path_secrets_from(tree: RatchetTree, start_node: int, path_secret: bytes, sender: int
                      ) -> Tuple[bytes, PrivateKeys]:
    """From the path secret at ``start_node`` (on ``sender``'s filtered direct path) derive the
    keys up to the root and the commit secret (used by new members from GroupSecrets.path_secret)."""
    suite = tree.suite
    fdp = tree.filtered_direct_path(sender)
    if start_node not in fdp:
        raise InvalidTreeError("path secret for a node outside the committer's path")
    i = fdp.index(start_node)
    ps = path_secret
    privs: PrivateKeys = {}
    for k in range(i, len(fdp)):
        if k > i:
            ps = next_path_secret(suite, ps)
        priv, pub = derive_node_keypair(suite, ps)
        node = tree.nodes[fdp[k]]
        if node is None or not hmac.compare_digest(pub, bytes(node.encryption_key)):
            raise InvalidTreeError("path secret does not match the tree")
        privs[fdp[k]] = (priv, pub)
    return next_path_secret(suite, ps), privs


def prune_private_keys(tree: RatchetTree, privs: PrivateKeys) -> PrivateKeys:
    """Drop private keys whose node was blanked or re-keyed."""
    out: PrivateKeys = {}
    for x, (priv, pub) in privs.items():
        if x < len(tree.nodes):
            node = tree.nodes[x]
            if node is not None and bytes(node.encryption_key) == pub:
                out[x] = (priv, pub)
    return out
