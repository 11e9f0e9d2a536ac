"""The MLS group state machine (RFC 9420 §8, §11, §12) -- the public entry point of ``orange_fast.mls``.

``Group`` holds one member's view of a group. Every incoming message is processed on a copy of the
state (``_State.copy()``); the copy replaces the live state only when the message was fully
validated, so a malformed or hostile message raises an ``MLSError`` subclass and changes nothing.
:meth:`Group.stage` returns that validated copy as a :class:`StagedMessage` to inspect before
:meth:`Group.merge_staged`; :meth:`Group.process` does both.

Commits created locally (``add``/``remove``/``update``/``commit``) stay pending until
``merge_pending_commit()`` (after the delivery service accepted them) or ``clear_pending_commit()``.

The class is assembled from one module per part of the RFC:

* ``state``: what a member stores and its serialisation, results, next-epoch helpers;
* ``base``: creation (§11), read-only views, persistence, framing helpers;
* ``commit``: proposals and commits made by this member, Welcome and GroupInfo (§12.1, §12.4);
* ``join``: joining from a Welcome or by external commit (§12.4.3);
* ``processing``: staging and merging received messages (§6, §12.4.2).
"""

from __future__ import annotations

from ..member import CredentialValidator, Member
from .join import GroupJoins
from .processing import GroupProcessing, StagedMessage
from .state import CommitOutput, ProcessResult, ProposalMessage

__all__ = ["Group", "Member", "CommitOutput", "ProcessResult", "ProposalMessage", "CredentialValidator",
           "StagedMessage"]


class Group(GroupProcessing, GroupJoins):
    """One member's state of an MLS group (see the package docstring for the parts)."""

