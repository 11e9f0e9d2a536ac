"""External senders (RFC 9420 §12.1.8): a server listed in the group's ``external_senders`` extension
signs Add/Remove/PSK/GroupContextExtensions proposals that members then commit by reference.
"""

from __future__ import annotations

from typing import List, Sequence

from . import messages as M
from .codec import Writer
from .suite import SignatureKeyPair

__all__ = ["external_senders_extension", "external_proposal", "remove_proposal", "add_proposal"]


def external_senders_extension(senders: Sequence[tuple]) -> M.Extension:
    """``external_senders`` GroupContext extension from ``[(signature_public_key, identity), ...]``."""
    items: List[M.ExternalSender] = [M.ExternalSender(bytes(pk), M.Credential.basic(bytes(ident)))
                                     for pk, ident in senders]
    return M.Extension(M.ExtensionType.external_senders, Writer().vector(items).getvalue())


def external_proposal(signer: SignatureKeyPair, sender_index: int, group_id: bytes, epoch: int,
                      proposal: M.Proposal) -> bytes:
    """A proposal from external sender ``sender_index`` as ``MLSMessage(PublicMessage)`` bytes."""
    fc = M.FramedContent(bytes(group_id), int(epoch), M.Sender(M.SenderType.external, int(sender_index)), b"",
                         M.ContentType.proposal, proposal)
    tbs = M.framed_content_tbs(M.WireFormat.public_message, fc, None)
    sig = signer.sign_with_label("FramedContentTBS", tbs)
    pm = M.PublicMessage(fc, M.FramedContentAuthData(sig, None), None)
    return M.MLSMessage(M.WireFormat.public_message, pm).to_bytes()


def remove_proposal(signer: SignatureKeyPair, sender_index: int, group_id: bytes, epoch: int,
                    leaf_index: int) -> bytes:
    return external_proposal(signer, sender_index, group_id, epoch, M.Proposal(M.Remove(int(leaf_index))))


def add_proposal(signer: SignatureKeyPair, sender_index: int, group_id: bytes, epoch: int,
                 key_package: bytes) -> bytes:
    kp = M.KeyPackage.from_bytes(bytes(key_package))
    return external_proposal(signer, sender_index, group_id, epoch, M.Proposal(M.Add(kp)))
