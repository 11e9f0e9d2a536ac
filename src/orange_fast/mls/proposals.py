"""Proposal validation and application (RFC 9420 §12.1-12.3) and leaf node validation (§7.3, §10.1).

Pure functions over a ``RatchetTree`` and a ``GroupContext``; the group state machine calls them on
copies of its state so that a rejected commit changes nothing.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Set, Tuple

from . import messages as M
from .errors import (
    InvalidKeyPackageError,
    InvalidLeafNodeError,
    InvalidProposalError,
    MLSError,
    UnsupportedError,
)
from .member import CredentialValidator, check_successor
from .suite import Suite
from .tree import RatchetTree

__all__ = [
    "CachedProposal",
    "ResolvedProposal",
    "validate_leaf_node",
    "validate_key_package",
    "validate_proposal_list",
    "apply_proposals",
    "AppliedProposals",
    "PATH_REQUIRED",
]

DEFAULT_EXTENSIONS = {1, 2, 3, 4, 5}
DEFAULT_PROPOSALS = {1, 2, 3, 4, 5, 6, 7}
PATH_REQUIRED = {M.ProposalType.update, M.ProposalType.remove, M.ProposalType.external_init,
                 M.ProposalType.group_context_extensions}


@dataclass
class CachedProposal:
    """A proposal received (or sent) in the current epoch, keyed by its ProposalRef."""

    proposal: M.Proposal
    sender: M.Sender
    ref: bytes


@dataclass
class ResolvedProposal:
    """A proposal of a commit together with its sender (committer for by-value proposals)."""

    proposal: M.Proposal
    sender: M.Sender
    by_reference: bool = False


def _required_capabilities(extensions: Sequence[M.Extension]) -> Optional[M.RequiredCapabilities]:
    data = M.find_extension(list(extensions), M.ExtensionType.required_capabilities)
    if data is None:
        return None
    try:
        return M.RequiredCapabilities.from_bytes(data)
    except MLSError:
        raise InvalidProposalError("malformed required_capabilities extension") from None


def _check_caps_against_required(leaf: M.LeafNode, req: Optional[M.RequiredCapabilities]) -> None:
    if req is None:
        return
    caps = leaf.capabilities
    for e in req.extension_types:
        if e not in DEFAULT_EXTENSIONS and e not in caps.extensions:
            raise InvalidLeafNodeError("leaf does not support a required extension")
    for p in req.proposal_types:
        if p not in DEFAULT_PROPOSALS and p not in caps.proposals:
            raise InvalidLeafNodeError("leaf does not support a required proposal type")
    for c in req.credential_types:
        if c not in caps.credentials:
            raise InvalidLeafNodeError("leaf does not support a required credential type")


def validate_leaf_node(
    suite: Suite,
    leaf: M.LeafNode,
    tree: RatchetTree,
    group_context: M.GroupContext,
    *,
    source: Optional[M.LeafNodeSource],
    leaf_index: Optional[int],
    replacing: Optional[int] = None,
    check_lifetime: bool = False,
    check_uniqueness: bool = True,
    credential_summary: Optional[Tuple[Set[int], Set[int]]] = None,
) -> None:
    """RFC 9420 §7.3 leaf node validation against the group (``replacing``: the leaf being replaced).

    ``credential_summary`` = (credential types in use, types supported by every member), precomputed
    by :func:`credential_summary` when many leaves of one tree are validated.
    """
    if source is not None and leaf.leaf_node_source != source:
        raise InvalidLeafNodeError("unexpected leaf_node_source")
    if leaf.credential.credential_type != M.CredentialType.basic:
        raise UnsupportedError("only basic credentials are supported")
    try:
        suite.validate_signature_public_key(leaf.signature_key)
        suite.validate_hpke_public_key(leaf.encryption_key)
    except MLSError:
        raise InvalidLeafNodeError("invalid public key in leaf node") from None
    except Exception:  # noqa: BLE001
        raise InvalidLeafNodeError("invalid public key in leaf node") from None
    if leaf.leaf_node_source == M.LeafNodeSource.key_package:
        ok = leaf.verify(suite)
    else:
        if leaf_index is None:
            raise InvalidLeafNodeError("leaf index needed to verify this leaf node")
        ok = leaf.verify(suite, group_context.group_id, leaf_index)
    if not ok:
        raise InvalidLeafNodeError("invalid leaf node signature")
    _check_caps_against_required(leaf, _required_capabilities(group_context.extensions))
    if leaf.credential.credential_type not in leaf.capabilities.credentials:
        raise InvalidLeafNodeError("leaf does not list its own credential type")
    for e in leaf.extensions:
        if e.extension_type not in DEFAULT_EXTENSIONS and e.extension_type not in leaf.capabilities.extensions:
            raise InvalidLeafNodeError("leaf uses an extension it does not list in its capabilities")
    if check_lifetime and leaf.leaf_node_source == M.LeafNodeSource.key_package and leaf.lifetime is not None:
        now = int(time.time())
        if not (leaf.lifetime.not_before <= now <= leaf.lifetime.not_after):
            raise InvalidLeafNodeError("leaf node lifetime is not valid now")
    # credential type compatibility with the other members
    if credential_summary is not None:
        in_use, supported = credential_summary
        if leaf.credential.credential_type not in supported:
            raise InvalidLeafNodeError("a member does not support this credential type")
        if not in_use <= set(leaf.capabilities.credentials):
            raise InvalidLeafNodeError("leaf does not support a credential type in use")
    else:
        for idx, other in tree.leaves():
            if idx == replacing:
                continue
            if leaf.credential.credential_type not in other.capabilities.credentials:
                raise InvalidLeafNodeError("a member does not support this credential type")
            if other.credential.credential_type not in leaf.capabilities.credentials:
                raise InvalidLeafNodeError("leaf does not support a credential type in use")
    if check_uniqueness:
        enc = bytes(leaf.encryption_key)
        sig = bytes(leaf.signature_key)
        for x, node in enumerate(tree.nodes):
            if node is None or (x & 1 == 0 and replacing is not None and x == 2 * replacing):
                continue
            if bytes(node.encryption_key) == enc:
                raise InvalidLeafNodeError("encryption key already in use in the group")
            if x & 1 == 0 and bytes(node.signature_key) == sig:
                raise InvalidLeafNodeError("signature key already in use in the group")


def credential_summary(tree: RatchetTree) -> Tuple[Set[int], Set[int]]:
    """(credential types in use, credential types supported by every member) of ``tree``."""
    in_use: Set[int] = set()
    supported: Optional[Set[int]] = None
    for _, leaf in tree.leaves():
        in_use.add(int(leaf.credential.credential_type))
        caps = {int(c) for c in leaf.capabilities.credentials}
        supported = caps if supported is None else supported & caps
    return in_use, supported or set()


def validate_key_package(suite: Suite, kp: M.KeyPackage, tree: RatchetTree, group_context: M.GroupContext,
                         check_lifetime: bool = True) -> None:
    """RFC 9420 §10.1 KeyPackage validation for an Add."""
    if kp.version != M.ProtocolVersion.mls10:
        raise InvalidKeyPackageError("unsupported KeyPackage version")
    if kp.cipher_suite != group_context.cipher_suite:
        raise InvalidKeyPackageError("KeyPackage cipher suite differs from the group's")
    if not kp.verify():
        raise InvalidKeyPackageError("invalid KeyPackage signature")
    if bytes(kp.init_key) == bytes(kp.leaf_node.encryption_key):
        raise InvalidKeyPackageError("init_key equals the leaf encryption key")
    try:
        suite.validate_hpke_public_key(kp.init_key)
    except Exception:  # noqa: BLE001
        raise InvalidKeyPackageError("invalid init key") from None
    try:
        validate_leaf_node(suite, kp.leaf_node, tree, group_context, source=M.LeafNodeSource.key_package,
                           leaf_index=None, check_lifetime=check_lifetime, check_uniqueness=False)
    except InvalidLeafNodeError as exc:
        raise InvalidKeyPackageError(str(exc)) from None
    if int(group_context.cipher_suite) not in kp.leaf_node.capabilities.cipher_suites:
        raise InvalidKeyPackageError("KeyPackage does not list the group's cipher suite")
    if int(group_context.version) not in kp.leaf_node.capabilities.versions:
        raise InvalidKeyPackageError("KeyPackage does not list the protocol version")
    for e in group_context.extensions:
        if e.extension_type not in DEFAULT_EXTENSIONS and e.extension_type not in kp.leaf_node.capabilities.extensions:
            raise InvalidKeyPackageError("KeyPackage does not support a group context extension")


@dataclass
class AppliedProposals:
    """Result of applying a proposal list to a tree copy."""

    added: List[Tuple[int, M.KeyPackage]] = field(default_factory=list)  # (leaf index, kp)
    removed: List[Tuple[int, M.LeafNode]] = field(default_factory=list)
    updated: List[int] = field(default_factory=list)
    psks: List[M.PreSharedKeyID] = field(default_factory=list)
    external_init: Optional[M.ExternalInit] = None
    reinit: Optional[M.ReInit] = None
    extensions: Optional[List[M.Extension]] = None
    path_required: bool = False


def validate_proposal_list(
    suite: Suite,
    props: Sequence[ResolvedProposal],
    tree: RatchetTree,
    group_context: M.GroupContext,
    committer: Optional[int],
    *,
    external: bool,
    known_psk: Any,
    check_lifetime: bool = False,
    credential_validator: Optional[CredentialValidator] = None,
) -> None:
    """RFC 9420 §12.2 (``committer`` is None for an external commit).

    Every Update's leaf must be a valid successor of the leaf it replaces (§5.3.1, §12.1.2), as
    decided by :func:`~.member.check_successor` with ``credential_validator``."""
    types = [p.proposal.proposal_type for p in props]
    if external:
        if types.count(M.ProposalType.external_init) != 1:
            raise InvalidProposalError("external commit needs exactly one ExternalInit")
        if types.count(M.ProposalType.remove) > 1:
            raise InvalidProposalError("external commit with more than one Remove")
        for t in types:
            if t not in (M.ProposalType.external_init, M.ProposalType.remove, M.ProposalType.psk):
                raise InvalidProposalError("proposal type not allowed in an external commit")
        if any(p.by_reference for p in props):
            raise InvalidProposalError("external commit must not reference proposals")
    else:
        if M.ProposalType.external_init in types:
            raise InvalidProposalError("ExternalInit in a regular commit")
    if M.ProposalType.reinit in types and len(types) != 1:
        raise InvalidProposalError("ReInit together with other proposals")
    if types.count(M.ProposalType.group_context_extensions) > 1:
        raise InvalidProposalError("multiple GroupContextExtensions proposals")

    touched: Set[int] = set()
    psk_ids: Set[bytes] = set()
    new_sig_keys: Set[bytes] = set()
    new_enc_keys: Set[bytes] = set()
    removed: Set[int] = set()
    for p in props:
        body = p.proposal.body
        if isinstance(body, M.Remove):
            if tree.leaf(body.removed) is None:
                raise InvalidProposalError("Remove of a blank or unknown leaf")
            if committer is not None and body.removed == committer:
                raise InvalidProposalError("commit removes the committer")
            if body.removed in touched:
                raise InvalidProposalError("multiple Update/Remove for the same leaf")
            touched.add(body.removed)
            removed.add(body.removed)
    ext_for_adds = group_context
    for p in props:
        body = p.proposal.body
        if isinstance(body, M.GroupContextExtensions):
            ext_for_adds = dataclasses.replace(group_context, extensions=list(body.extensions))
    for p in props:
        body = p.proposal.body
        if isinstance(body, M.Update):
            if p.sender.sender_type != M.SenderType.member:
                raise InvalidProposalError("Update from a non-member")
            idx = p.sender.index
            if committer is not None and idx == committer:
                raise InvalidProposalError("commit contains an Update from the committer")
            if idx in touched:
                raise InvalidProposalError("multiple Update/Remove for the same leaf")
            touched.add(idx)
            old = tree.leaf(idx)
            if old is None:
                raise InvalidProposalError("Update for a blank leaf")
            validate_leaf_node(suite, body.leaf_node, tree, group_context, source=M.LeafNodeSource.update,
                               leaf_index=idx, replacing=idx, check_lifetime=False)
            check_successor(idx, old, body.leaf_node, credential_validator)
            if bytes(body.leaf_node.encryption_key) == bytes(old.encryption_key):
                raise InvalidProposalError("Update does not change the encryption key")
            new_enc_keys.add(bytes(body.leaf_node.encryption_key))
        elif isinstance(body, M.Add):
            kp = body.key_package
            validate_key_package(suite, kp, tree, ext_for_adds, check_lifetime=check_lifetime)
            sk = bytes(kp.leaf_node.signature_key)
            ek = bytes(kp.leaf_node.encryption_key)
            if sk in new_sig_keys or ek in new_enc_keys:
                raise InvalidProposalError("duplicate Add of the same client")
            for idx, leaf in tree.leaves():
                if idx in removed:
                    continue
                if bytes(leaf.signature_key) == sk:
                    raise InvalidProposalError("Add of a client already in the group")
            for x, node in enumerate(tree.nodes):
                if node is None or (x & 1 == 0 and (x >> 1) in removed):
                    continue
                if bytes(node.encryption_key) == ek:
                    raise InvalidProposalError("Add with an encryption key already in use")
            new_sig_keys.add(sk)
            new_enc_keys.add(ek)
        elif isinstance(body, M.PreSharedKey):
            pid = body.psk
            if len(pid.psk_nonce) != suite.nh:
                raise InvalidProposalError("psk_nonce has the wrong length")
            if pid.psktype == M.PSKType.resumption and pid.usage != M.ResumptionPSKUsage.application:
                raise InvalidProposalError("resumption PSK with reinit/branch usage outside reinit/branch")
            key = pid.to_bytes()
            if key in psk_ids:
                raise InvalidProposalError("duplicate PSK proposal")
            psk_ids.add(key)
            if known_psk is not None and known_psk(pid) is None:
                from .errors import MissingPSKError

                raise MissingPSKError("unknown pre-shared key")
        elif isinstance(body, M.ReInit):
            if body.version < group_context.version:
                raise InvalidProposalError("ReInit to an older protocol version")
        elif isinstance(body, M.GroupContextExtensions):
            _validate_gce(body, tree, removed, props)
        elif isinstance(body, M.ExternalInit):
            pass
        elif isinstance(body, M.Remove):
            pass
        else:  # pragma: no cover - decoder only produces known types
            raise InvalidProposalError("unknown proposal type")


def _validate_gce(body: M.GroupContextExtensions, tree: RatchetTree, removed: Set[int],
                  props: Sequence[ResolvedProposal]) -> None:
    req = _required_capabilities(body.extensions)
    leaves = [leaf for idx, leaf in tree.leaves() if idx not in removed]
    leaves += [p.proposal.body.key_package.leaf_node for p in props if isinstance(p.proposal.body, M.Add)]
    for leaf in leaves:
        for e in body.extensions:
            if e.extension_type not in DEFAULT_EXTENSIONS and e.extension_type not in leaf.capabilities.extensions:
                raise InvalidProposalError("a member does not support a group context extension")
        try:
            _check_caps_against_required(leaf, req)
        except InvalidLeafNodeError:
            raise InvalidProposalError("a member does not support the required capabilities") from None


def apply_proposals(tree: RatchetTree, props: Sequence[ResolvedProposal]) -> AppliedProposals:
    """RFC 9420 §12.3: GCE, Updates, Removes, Adds (in order), PSKs, ExternalInit, ReInit."""
    out = AppliedProposals()
    for p in props:
        body = p.proposal.body
        if p.proposal.proposal_type in PATH_REQUIRED:
            out.path_required = True
        if isinstance(body, M.GroupContextExtensions):
            out.extensions = list(body.extensions)
    for p in props:
        body = p.proposal.body
        if isinstance(body, M.Update):
            tree.update_leaf(p.sender.index, body.leaf_node)
            out.updated.append(p.sender.index)
    for p in props:
        body = p.proposal.body
        if isinstance(body, M.Remove):
            leaf = tree.member_leaf(body.removed)  # validated: not blank
            tree.remove_leaf(body.removed)
            out.removed.append((body.removed, leaf))
    for p in props:
        body = p.proposal.body
        if isinstance(body, M.Add):
            idx = tree.add_leaf(body.key_package.leaf_node)
            out.added.append((idx, body.key_package))
    for p in props:
        body = p.proposal.body
        if isinstance(body, M.PreSharedKey):
            out.psks.append(body.psk)
        elif isinstance(body, M.ExternalInit):
            out.external_init = body
        elif isinstance(body, M.ReInit):
            out.reinit = body
    return out
