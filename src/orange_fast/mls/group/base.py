"""Creating a group (RFC 9420 §11) and the read-only views, persistence and framing helpers
shared by the other parts of ``Group``."""

from __future__ import annotations

import hmac
import os
from typing import Any, List, Optional, Type, TypeVar

from .. import messages as M
from ..codec import Reader, Writer
from ..epoch import KeySchedule
from ..errors import (
    DecodeError,
    MLSError,
    StateError,
    UnsupportedError,
)
from ..member import CredentialValidator, Member, member_of
from ..suite import CipherSuite, SignatureKeyPair, get_suite
from ..tree import RatchetTree
from .state import _interim, _State

__all__ = ["GroupBase"]

_G = TypeVar("_G", bound="GroupBase")


class GroupBase:
    """The group object: creation (RFC 9420 §11), read-only views, persistence and framing helpers."""

    def __init__(self, state: _State, credential_validator: Optional[CredentialValidator] = None) -> None:
        self._s = state
        self._validator = credential_validator

    def set_credential_validator(self, validator: Optional[CredentialValidator]) -> None:
        """Install the application's credential-succession rule (None: the strict default).

        A member's replacement leaf (in its Update proposal or its commit's UpdatePath) must keep
        the credential identity and the signature key, unless ``validator(old, new)`` returns
        True for that change (RFC 9420 §5.3.1). The validator is not part of :meth:`to_bytes`;
        pass it again to :meth:`from_bytes`."""
        self._validator = validator

    @property
    def credential_validator(self) -> Optional[CredentialValidator]:
        """The credential-succession rule in force (None: same identity and signature key)."""
        return self._validator

    # -- creation -------------------------------------------------------------------------------------
    @classmethod
    def create(cls: Type[_G], suite: "int | CipherSuite", identity: bytes, signer: SignatureKeyPair,
               group_id: Optional[bytes] = None, *, extensions: Optional[List[M.Extension]] = None,
               private_handshake: bool = True,
               capabilities: Optional[M.Capabilities] = None,
               credential_validator: Optional[CredentialValidator] = None) -> _G:
        """A new one-member group at epoch 0 (RFC 9420 §11)."""
        s = get_suite(suite)
        if signer.suite != s.cipher_suite:
            raise UnsupportedError("signer belongs to another cipher suite")
        if group_id is None:
            group_id = os.urandom(16)
        enc_priv, enc_pub = s.generate_hpke_key_pair()
        leaf = M.LeafNode(
            encryption_key=enc_pub,
            signature_key=signer.public_key,
            credential=M.Credential.basic(bytes(identity)),
            capabilities=capabilities or M.default_capabilities(s.cipher_suite),
            leaf_node_source=M.LeafNodeSource.key_package,
            lifetime=M.default_lifetime(),
        )
        leaf.sign(s, signer.private_key)
        st = _State()
        st.suite = s
        st.tree = RatchetTree(s, [leaf])
        st.own_leaf = 0
        st.signer = signer
        st.privs = {0: (enc_priv, enc_pub)}
        st.context = M.GroupContext(M.ProtocolVersion.mls10, int(s.cipher_suite), bytes(group_id), 0,
                                    st.tree.root_tree_hash(), b"", list(extensions or []))
        init_secret = os.urandom(s.nh)
        ks = KeySchedule(s)
        st.epoch, _joiner, _welcome = ks.advance(init_secret, bytes(s.nh), bytes(s.nh), st.context_bytes(),
                                                 st.tree.n_leaves)
        st.confirmation_tag = s.mac(st.epoch.confirmation_key, b"")
        st.interim_transcript_hash = _interim(s, b"", st.confirmation_tag)
        st.private_handshake = private_handshake
        return cls(st, credential_validator)

    # -- read-only properties ---------------------------------------------------------------------
    @property
    def cipher_suite(self) -> CipherSuite:
        return self._s.suite.cipher_suite

    @property
    def group_id(self) -> bytes:
        return self._s.group_id

    @property
    def epoch(self) -> int:
        return self._s.context.epoch

    @property
    def epoch_authenticator(self) -> bytes:
        return self._s.epoch.epoch_authenticator

    @property
    def own_leaf_index(self) -> int:
        return self._s.own_leaf

    @property
    def is_active(self) -> bool:
        """False once this member was removed from the group."""
        return self._s.active

    @property
    def members(self) -> List[Member]:
        return [member_of(i, leaf) for i, leaf in self._s.tree.leaves()]

    def find_member(self, identity: bytes) -> Optional[Member]:
        """The member whose basic credential identity is ``identity`` (None if absent)."""
        for i, leaf in self._s.tree.leaves():
            if bytes(leaf.credential.identity) == bytes(identity):
                return member_of(i, leaf)
        return None

    @property
    def group_context(self) -> M.GroupContext:
        return self._s.context

    @property
    def tree_hash(self) -> bytes:
        return self._s.context.tree_hash

    @property
    def has_pending_commit(self) -> bool:
        return self._s.pending is not None

    @property
    def pending_proposals(self) -> List[bytes]:
        """References of the proposals cached in this epoch."""
        return list(self._s.proposals)

    def ratchet_tree_bytes(self) -> bytes:
        """``optional<Node> ratchet_tree<V>`` of the current tree (for out-of-band distribution)."""
        return self._s.tree.to_bytes()

    def export_secret(self, label: bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter(label, context, length) of the current epoch."""
        if not 0 < length <= 0xFFFF:
            raise ValueError("length must be in 1..65535")
        return self._s.epoch.export(label, context, length)

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        """Register an external PSK that commits/welcomes of this group may reference."""
        st = self._s.copy()
        st.psks[bytes(psk_id)] = bytes(psk)
        self._s = st

    def set_private_handshake(self, enabled: bool) -> None:
        """Send handshake messages as PrivateMessage (default) or PublicMessage."""
        st = self._s.copy()
        st.private_handshake = bool(enabled)
        self._s = st

    # -- persistence --------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        w = Writer()
        self._s.encode(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls: Type[_G], data: bytes, *,
                   credential_validator: Optional[CredentialValidator] = None) -> _G:
        r = Reader(bytes(data))
        try:
            st = _State.decode(r)
            r.finish()
            if not hmac.compare_digest(st.tree.root_tree_hash(), bytes(st.context.tree_hash)):
                raise DecodeError("group state: ratchet tree does not match the group context")
        except MLSError:
            raise
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DecodeError(f"malformed group state: {type(exc).__name__}") from None
        return cls(st, credential_validator)

    def __repr__(self) -> str:
        return (f"Group(suite={self.cipher_suite.name}, epoch={self.epoch}, members={len(self.members)}, "
                f"own_leaf={self.own_leaf_index})")

    # -- framing helpers ----------------------------------------------------------------------------
    def _frame(self, st: _State, content_type: M.ContentType, content: Any, wire_format: M.WireFormat,
               authenticated_data: bytes = b"") -> M.AuthenticatedContent:
        fc = M.FramedContent(st.group_id, st.context.epoch, M.Sender.member(st.own_leaf), authenticated_data,
                             content_type, content)
        tbs = M.framed_content_tbs(wire_format, fc, st.context_bytes())
        sig = st.signer.sign_with_label("FramedContentTBS", tbs)
        return M.AuthenticatedContent(wire_format, fc, M.FramedContentAuthData(sig, None))

    def _wire_format(self, st: _State) -> M.WireFormat:
        return M.WireFormat.private_message if st.private_handshake else M.WireFormat.public_message

    def _protect(self, st: _State, ac: M.AuthenticatedContent) -> bytes:
        return st.epoch.protect(ac, st.context_bytes(), st.own_leaf).to_bytes()

    def _require_active(self) -> None:
        if not self._s.active:
            raise StateError("this member is no longer in the group")
