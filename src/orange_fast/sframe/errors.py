"""Typed exceptions of the SFrame layer.

Every failure of :mod:`orange_fast.sframe` raises a subclass of :class:`SFrameError`
(or ``TypeError``/``ValueError`` for arguments of the wrong type or size).  Messages
name the KID and counter where useful, never key material.
"""

from __future__ import annotations

__all__ = [
    "SFrameError",
    "MalformedHeaderError",
    "UnknownKeyError",
    "AuthenticationError",
    "ReplayError",
    "CounterExhaustedError",
    "BufferTooSmallError",
    "BatchDecryptError",
]


class SFrameError(Exception):
    """Base class of every SFrame failure."""


class MalformedHeaderError(SFrameError, ValueError):
    """The SFrame header is truncated, non-minimal, or the ciphertext is shorter than the tag."""


class UnknownKeyError(SFrameError, KeyError):
    """No key of the needed direction is installed for the KID."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep a plain message
        return str(self.args[0]) if self.args else "unknown key"


class AuthenticationError(SFrameError):
    """The authentication tag did not verify (wrong key, metadata, or tampered data)."""


class ReplayError(SFrameError):
    """The counter was already accepted, or lies below the replay window."""


class CounterExhaustedError(SFrameError):
    """The send counter of a KID has reached 2**64 - 1; install a new key."""


class BufferTooSmallError(SFrameError, ValueError):
    """The caller's output buffer cannot hold the result."""


class BatchDecryptError(SFrameError):
    """At least one frame of a batch failed to decrypt.

    Nothing is lost: :attr:`results` holds the plaintext of every frame that
    decrypted (``None`` where it failed), and :attr:`errors` maps the index of each
    failed frame to its exception.
    """

    def __init__(self, results: list, errors: dict) -> None:
        self.results = results
        self.errors = errors
        first = min(errors)
        super().__init__(
            f"{len(errors)} of {len(results)} frames failed to decrypt "
            f"(first: frame {first}: {type(errors[first]).__name__}: {errors[first]})"
        )
