"""Typed exceptions of the MLS layer (RFC 9420).

Public names: ``MLSError`` (base) and its subclasses ``DecodeError``, ``InvalidSignatureError``,
``WrongEpochError``, ``WrongGroupError``, ``InvalidTreeError``, ``InvalidProposalError``,
``MissingProposalError``, ``InvalidCommitError``, ``DecryptionError``, ``UnsupportedError``,
``ReplayedMessageError``, ``InvalidMessageError``, ``InvalidKeyPackageError``,
``InvalidLeafNodeError``, ``ConfirmationTagError``, ``MembershipTagError``, ``KeyExhaustedError``,
``TooDistantGenerationError``, ``MissingPSKError``, ``InvalidWelcomeError``, ``InvalidGroupInfoError``,
``StateError``, ``InvalidPublicKeyError``, ``CredentialSuccessionError``.

Messages never contain key material: they describe *what* was wrong, never the secret bytes.
"""

from __future__ import annotations

__all__ = [
    "MLSError",
    "DecodeError",
    "InvalidSignatureError",
    "WrongEpochError",
    "WrongGroupError",
    "InvalidTreeError",
    "InvalidProposalError",
    "MissingProposalError",
    "InvalidCommitError",
    "DecryptionError",
    "UnsupportedError",
    "ReplayedMessageError",
    "InvalidMessageError",
    "InvalidKeyPackageError",
    "InvalidLeafNodeError",
    "ConfirmationTagError",
    "MembershipTagError",
    "KeyExhaustedError",
    "TooDistantGenerationError",
    "MissingPSKError",
    "InvalidWelcomeError",
    "InvalidGroupInfoError",
    "StateError",
    "InvalidPublicKeyError",
    "CredentialSuccessionError",
]


class MLSError(Exception):
    """Base class of every error raised by ``orange_fast.mls``."""


class DecodeError(MLSError, ValueError):
    """Malformed TLS/MLS encoding: truncated, trailing bytes, bad varint, unknown enum, ..."""


class InvalidMessageError(MLSError):
    """A well-formed message that violates a semantic rule of RFC 9420."""


class InvalidSignatureError(InvalidMessageError):
    """A signature did not verify."""


class WrongEpochError(InvalidMessageError):
    """The message is for another epoch than the group's current one."""


class WrongGroupError(InvalidMessageError):
    """The message is for another group."""


class InvalidTreeError(InvalidMessageError):
    """A ratchet tree failed validation (tree hash, parent hash, leaf nodes, ...)."""


class InvalidLeafNodeError(InvalidTreeError):
    """A LeafNode failed validation (RFC 9420 §7.3)."""


class CredentialSuccessionError(InvalidLeafNodeError):
    """A replacement leaf (Update proposal, commit UpdatePath) is not a valid successor of the leaf it
    replaces (RFC 9420 §5.3.1): its credential identity or signature key changed without the
    application's consent (see ``Group``'s ``credential_validator``)."""


class InvalidKeyPackageError(InvalidMessageError):
    """A KeyPackage failed validation (RFC 9420 §10.1)."""


class InvalidProposalError(InvalidMessageError):
    """A proposal, or a list of proposals, is invalid (RFC 9420 §12.1, §12.2)."""


class MissingProposalError(InvalidProposalError):
    """A commit references a proposal that is not in the proposal cache."""


class InvalidCommitError(InvalidMessageError):
    """A commit is invalid (RFC 9420 §12.4)."""


class ConfirmationTagError(InvalidCommitError):
    """The confirmation tag did not match."""


class MembershipTagError(InvalidMessageError):
    """The membership tag of a PublicMessage did not match."""


class DecryptionError(MLSError):
    """AEAD/HPKE decryption failed (wrong key, corrupted ciphertext)."""


class ReplayedMessageError(DecryptionError):
    """The key for this generation was already consumed (replay or duplicate)."""


class TooDistantGenerationError(DecryptionError):
    """The generation is too far in the future, or too old and no longer retained."""


class KeyExhaustedError(MLSError):
    """A ratchet ran out of generations (2**32)."""


class MissingPSKError(MLSError):
    """A pre-shared key referenced by a message is not known locally."""


class InvalidWelcomeError(InvalidMessageError):
    """A Welcome could not be processed (no matching KeyPackage, bad GroupSecrets, ...)."""


class InvalidGroupInfoError(InvalidMessageError):
    """A GroupInfo failed validation (signature, missing extension, ...)."""


class UnsupportedError(MLSError):
    """An unsupported cipher suite, credential type, extension, version, ..."""


class StateError(MLSError):
    """The operation is not allowed in the current local state (e.g. a pending commit exists)."""


class InvalidPublicKeyError(InvalidMessageError):
    """A public key (HPKE or signature) is not a valid encoding for its algorithm."""
