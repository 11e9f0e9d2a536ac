"""SFrame (RFC 9605): end-to-end encryption of media frames.

The compiled core (:mod:`orange_fast.sframe._core`) does the work; this package
re-exports it with the suite table and the typed errors::

    from orange_fast import sframe
    ctx = sframe.Context(sframe.CipherSuite.AES_128_GCM_SHA256_128)
    ctx.add_send_key(kid, base_key)
    ct = ctx.encrypt(kid, frame, metadata=b"")

There is no pure-Python fallback: :mod:`orange_fast.sframe.reference` exists as the
test oracle only.
"""

from __future__ import annotations

from .errors import (
    AuthenticationError,
    BatchDecryptError,
    BufferTooSmallError,
    CounterExhaustedError,
    MalformedHeaderError,
    ReplayError,
    SFrameError,
    UnknownKeyError,
)
from .suites import CipherSuite, SuiteParams

try:
    from ._core import (
        MAX_HEADER_SIZE,
        STATUS_AUTH,
        STATUS_MALFORMED,
        STATUS_OK,
        STATUS_REPLAY,
        STATUS_UNKNOWN_KEY,
        Context,
        decode_header,
        encode_header,
        openssl_cpu_info,
        openssl_static,
        openssl_version,
        openssl_version_number,
    )
except ImportError as exc:  # pragma: no cover - exercised only in a broken install
    raise ImportError(
        "orange_fast.sframe: the compiled core (orange_fast.sframe._core) is missing or "
        "failed to load. Build it with `bash scripts/fetch-openssl.sh && pip install .` from "
        "the source tree (see README.md), or install a prebuilt wheel. "
        f"Underlying error: {exc}"
    ) from exc

__all__ = [
    "CipherSuite",
    "SuiteParams",
    "Context",
    "encode_header",
    "decode_header",
    "openssl_version",
    "openssl_version_number",
    "openssl_static",
    "openssl_cpu_info",
    "MAX_HEADER_SIZE",
    "STATUS_OK",
    "STATUS_MALFORMED",
    "STATUS_UNKNOWN_KEY",
    "STATUS_AUTH",
    "STATUS_REPLAY",
    "SFrameError",
    "MalformedHeaderError",
    "UnknownKeyError",
    "AuthenticationError",
    "ReplayError",
    "CounterExhaustedError",
    "BufferTooSmallError",
    "BatchDecryptError",
]
