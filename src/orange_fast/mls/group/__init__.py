"""The MLS group state machine (RFC 9420): moved into a package, see ``processing``."""

from __future__ import annotations

from .processing import (  # noqa: F401
    CommitOutput,
    CredentialValidator,
    Group,
    Member,
    ProcessResult,
    ProposalMessage,
    StagedMessage,
)

__all__ = ["Group", "Member", "CommitOutput", "ProcessResult", "ProposalMessage", "CredentialValidator",
           "StagedMessage"]
