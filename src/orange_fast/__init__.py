"""orange_fast: fast, correct end-to-end encryption for group video calls.

SFrame (RFC 9605) over a Cython core linked against a modern static OpenSSL, MLS
(RFC 9420) for group keys, a designated-committer session layer, and aiortc hooks.

The SFrame names are re-exported here lazily, so that ``from orange_fast import mls``
works without loading the compiled core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SFRAME_NAMES = (
    "CipherSuite",
    "Context",
    "encode_header",
    "decode_header",
    "openssl_version",
    "SFrameError",
    "MalformedHeaderError",
    "UnknownKeyError",
    "AuthenticationError",
    "ReplayError",
    "CounterExhaustedError",
    "BufferTooSmallError",
    "BatchDecryptError",
)

__all__ = ["__version__", *_SFRAME_NAMES]

if TYPE_CHECKING:  # pragma: no cover
    from .sframe import (  # noqa: F401
        AuthenticationError,
        BatchDecryptError,
        BufferTooSmallError,
        CipherSuite,
        Context,
        CounterExhaustedError,
        MalformedHeaderError,
        ReplayError,
        SFrameError,
        UnknownKeyError,
        decode_header,
        encode_header,
        openssl_version,
    )


def __getattr__(name: str) -> Any:
    if name in _SFRAME_NAMES:
        from . import sframe

        return getattr(sframe, name)
    raise AttributeError(f"module 'orange_fast' has no attribute {name!r}")
