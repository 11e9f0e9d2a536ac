"""Stand-alone KeyPackage validation (RFC 9420 §10.1), for a delivery service or a session layer
that must check a KeyPackage before any group exists.

``validate_key_package`` runs every check of §10.1 that does not depend on a particular group:
version, cipher suite, KeyPackage and leaf signatures, public-key encodings, init key distinct from
the leaf's encryption key, capabilities (own credential type, used extensions, the suite and the
version), and optionally the lifetime. A group re-checks a KeyPackage against its own members and
extensions when it is added.
"""

from __future__ import annotations

from typing import Optional, Union

from . import messages as M
from .errors import DecodeError, InvalidKeyPackageError, MLSError
from .proposals import validate_key_package as _validate_for_group
from .suite import CipherSuite, get_suite
from .tree import RatchetTree

__all__ = ["validate_key_package"]


def validate_key_package(key_package: Union[bytes, M.KeyPackage],
                         cipher_suite: "Optional[Union[int, CipherSuite]]" = None, *,
                         check_lifetime: bool = True) -> M.KeyPackage:
    """Parse (if given bytes) and validate a KeyPackage on its own; returns the KeyPackage.

    Args:
        key_package: a ``KeyPackage`` or its encoding (the bare struct, not an MLSMessage).
        cipher_suite: the suite the KeyPackage must use (default: the one it names, if supported).
        check_lifetime: also require the leaf's lifetime to cover the current time.

    Raises:
        DecodeError: ``key_package`` is not a well-formed KeyPackage.
        InvalidKeyPackageError: any validation rule fails.
        UnsupportedError: the cipher suite or credential type is not supported.
    """
    if isinstance(key_package, M.KeyPackage):
        kp = key_package
    else:
        try:
            kp = M.KeyPackage.from_bytes(bytes(key_package))
        except MLSError:
            raise
        except (ValueError, IndexError, TypeError) as exc:
            raise DecodeError(f"malformed KeyPackage: {type(exc).__name__}") from None
    suite = get_suite(kp.cipher_suite if cipher_suite is None else cipher_suite)
    if int(kp.cipher_suite) != int(suite.cipher_suite):
        raise InvalidKeyPackageError("KeyPackage cipher suite differs from the expected one")
    context = M.GroupContext(M.ProtocolVersion.mls10, int(suite.cipher_suite), b"", 0, b"", b"", [])
    _validate_for_group(suite, kp, RatchetTree(suite, []), context, check_lifetime=check_lifetime)
    return kp
