"""MLS (RFC 9420) for orange_fast: group key agreement for end-to-end encrypted calls.

Public API::

    from orange_fast import mls
    suite = mls.CipherSuite(1)
    signer = mls.SignatureKeyPair.generate(suite)
    kp, kp_private = mls.KeyPackage.generate(suite, identity=b"alice", signer=signer)
    group = mls.Group.create(suite, identity=b"alice", signer=signer)
    out = group.add([kp.to_bytes()]); group.merge_pending_commit()
    bob = mls.Group.join_from_welcome(out.welcome, kp_private)
    group.export_secret(b"SFrame 1.0 Base Key", b"", 16)
    staged = bob.stage(commit_bytes)   # inspect staged.added / removed / epoch, then
    bob.merge_staged(staged)           # or staged.discard(); bob.process(m) does both at once
    mls.validate_key_package(kp.to_bytes())   # no group needed

Every error is an ``MLSError`` subclass (see ``orange_fast.mls.errors``).
"""

from __future__ import annotations

from .errors import (
    ConfirmationTagError,
    CredentialSuccessionError,
    DecodeError,
    DecryptionError,
    InvalidCommitError,
    InvalidGroupInfoError,
    InvalidKeyPackageError,
    InvalidLeafNodeError,
    InvalidMessageError,
    InvalidProposalError,
    InvalidSignatureError,
    InvalidTreeError,
    InvalidWelcomeError,
    MembershipTagError,
    MissingProposalError,
    MissingPSKError,
    MLSError,
    ReplayedMessageError,
    StateError,
    UnsupportedError,
    WrongEpochError,
    WrongGroupError,
)
from .group import CommitOutput, Group, ProcessResult, StagedMessage
from .keypackages import validate_key_package
from .member import CredentialValidator, Member
from .messages import Capabilities, Credential, Extension, ExtensionType, KeyPackage, KeyPackagePrivate
from .suite import CipherSuite, SignatureKeyPair

__all__ = [
    "CipherSuite",
    "SignatureKeyPair",
    "KeyPackage",
    "KeyPackagePrivate",
    "Credential",
    "Capabilities",
    "Extension",
    "ExtensionType",
    "Group",
    "Member",
    "CredentialValidator",
    "CommitOutput",
    "ProcessResult",
    "StagedMessage",
    "validate_key_package",
    "MLSError",
    "DecodeError",
    "DecryptionError",
    "InvalidCommitError",
    "InvalidGroupInfoError",
    "InvalidKeyPackageError",
    "InvalidLeafNodeError",
    "InvalidMessageError",
    "InvalidProposalError",
    "InvalidSignatureError",
    "InvalidTreeError",
    "InvalidWelcomeError",
    "MembershipTagError",
    "MissingProposalError",
    "MissingPSKError",
    "ReplayedMessageError",
    "StateError",
    "UnsupportedError",
    "WrongEpochError",
    "WrongGroupError",
    "ConfirmationTagError",
    "CredentialSuccessionError",
]
