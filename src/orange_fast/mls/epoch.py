"""Per-epoch cryptographic state used by the group: key-schedule secrets + secret tree + framing.

``EpochState`` bundles the ``keyschedule.EpochSecrets`` of an epoch with the epoch's secret tree
(``secret_tree``), and exposes exactly what ``group.Group`` needs: ``protect`` / ``unprotect`` of
Public/PrivateMessages (``framing``), ``export``, ``psk_secret`` and persistence.  ``KeySchedule``
is a small facade over ``keyschedule`` for the three ways an epoch starts (commit, Welcome, creation).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

from . import keyschedule as KS
from . import messages as M
from .codec import Reader, Writer
from .errors import MLSError
from .suite import Suite, get_suite

__all__ = ["EpochState", "KeySchedule"]


def _secret_tree_cls() -> Any:
    from . import secret_tree

    return secret_tree.SecretTree


class EpochState:
    """Secrets of one epoch and its (stateful) secret tree."""

    __slots__ = ("suite", "secrets", "secret_tree")

    def __init__(self, suite: Suite, secrets: KS.EpochSecrets, secret_tree: Any) -> None:
        self.suite = suite
        self.secrets = secrets
        self.secret_tree = secret_tree

    @classmethod
    def create(cls, suite: Suite, secrets: KS.EpochSecrets, n_leaves: int) -> "EpochState":
        return cls(suite, secrets, _secret_tree_cls()(suite, secrets.encryption_secret, n_leaves))

    def __repr__(self) -> str:
        return f"EpochState({self.suite.cipher_suite.name})"

    def __getattr__(self, name: str) -> Any:  # secrets passthrough (init_secret, confirmation_key, ...)
        if name in ("suite", "secrets", "secret_tree"):
            raise AttributeError(name)
        return getattr(self.secrets, name)

    def copy(self) -> "EpochState":
        st = self.secret_tree
        if hasattr(st, "copy"):
            st = st.copy()
        else:
            st = type(st).from_bytes(self.suite, st.to_bytes())
        return EpochState(self.suite, self.secrets, st)

    # -- derived values ---------------------------------------------------------------------------
    def export(self, label: bytes, context: bytes, length: int) -> bytes:
        return self.secrets.export(label, context, length)

    def psk_secret(self, pairs: Sequence[Tuple[M.PreSharedKeyID, Optional[bytes]]]) -> bytes:
        return KeySchedule(self.suite).psk_secret(pairs)

    # -- framing ----------------------------------------------------------------------------------
    def protect(self, ac: M.AuthenticatedContent, group_context: bytes, own_leaf: int) -> M.MLSMessage:
        """Protect signed content with this epoch's keys (advances our own ratchet for PrivateMessage)."""
        from . import framing

        if ac.wire_format == M.WireFormat.public_message:
            return framing.protect_public(self.suite, ac, group_context, self.secrets.membership_key)
        return framing.protect_private(self.suite, ac, self.secret_tree, self.secrets.sender_data_secret)

    def unprotect(self, msg: M.MLSMessage, group_context: bytes, tree: Any, ctx: M.GroupContext
                  ) -> M.AuthenticatedContent:
        """Decrypt/verify a Public/PrivateMessage (membership tag, signature of the sender: member leaf,
        external_senders extension, or the KeyPackage / UpdatePath leaf of a new member)."""
        from . import framing

        def member_key(leaf_index: int) -> Optional[bytes]:
            leaf = tree.leaf(leaf_index)
            return None if leaf is None else bytes(leaf.signature_key)

        def external_key(sender_index: int) -> Optional[bytes]:
            data = M.find_extension(list(ctx.extensions), M.ExtensionType.external_senders)
            if data is None:
                return None
            try:
                r = Reader(data)
                senders = r.vector(M.ExternalSender)
                r.finish()
            except MLSError:
                return None
            if sender_index >= len(senders):
                return None
            return bytes(senders[sender_index].signature_key)

        return framing.unprotect(self.suite, msg, ctx, membership_key=self.secrets.membership_key,
                                 secret_tree=self.secret_tree, sender_data_secret=self.secrets.sender_data_secret,
                                 signature_key_for=member_key, external_sender_key_for=external_key)

    # -- persistence ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return Writer().opaque(self.secrets.to_bytes()).opaque(self.secret_tree.to_bytes()).getvalue()

    @classmethod
    def from_bytes(cls, suite: Suite, data: bytes) -> "EpochState":
        r = Reader(data)
        secrets = KS.EpochSecrets.from_bytes(suite, r.opaque())
        tree = _secret_tree_cls().from_bytes(suite, r.opaque())
        r.finish()
        return cls(suite, secrets, tree)


class KeySchedule:
    """Facade over ``keyschedule`` for the group layer."""

    def __init__(self, suite: Suite) -> None:
        self.suite = get_suite(suite)

    def advance(self, init_secret: bytes, commit_secret: bytes, psk_secret: bytes, group_context: bytes,
                n_leaves: int) -> Tuple[EpochState, bytes, bytes]:
        """``(epoch_state, joiner_secret, welcome_secret)`` for the epoch defined by ``group_context``."""
        secrets = KS.key_schedule(self.suite, init_secret, commit_secret, psk_secret, group_context)
        return EpochState.create(self.suite, secrets, n_leaves), secrets.joiner_secret, secrets.welcome_secret

    def from_joiner(self, joiner_secret: bytes, psk_secret: bytes, group_context: bytes, n_leaves: int
                    ) -> EpochState:
        secrets = KS.epoch_secrets_from_joiner(self.suite, joiner_secret, psk_secret, group_context)
        return EpochState.create(self.suite, secrets, n_leaves)

    def welcome_secret(self, joiner_secret: bytes, psk_secret: bytes) -> bytes:
        return KS.welcome_secret_from_joiner(self.suite, joiner_secret, psk_secret)

    def psk_secret(self, pairs: Sequence[Tuple[M.PreSharedKeyID, Optional[bytes]]]) -> bytes:
        inputs = []
        for pid, val in pairs:
            if val is None:
                from .errors import MissingPSKError

                raise MissingPSKError("unknown pre-shared key")
            inputs.append(KS.PSKInput(pid, val))
        return KS.compute_psk_secret(self.suite, inputs)
