"""Extensions, credentials, capabilities and lifetimes (RFC 9420 §5.3, §7.2, §13)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional

from ..codec import Reader, Struct, Writer, pack_u16_vector
from ..errors import DecodeError
from .encoding import _U16_BASIC, _opaque_bytes
from .enums import CredentialType, ProtocolVersion

__all__ = [
    "Capabilities", "Credential", "Extension", "Lifetime", "default_capabilities", "default_lifetime",
    "find_extension",
]


@dataclass
class Extension(Struct):
    extension_type: int
    extension_data: bytes

    def encode(self, w: Writer) -> None:
        w.u16(self.extension_type).opaque(self.extension_data)

    @classmethod
    def decode(cls, r: Reader) -> "Extension":
        return cls(r.u16(), r.opaque())


def find_extension(extensions: List[Extension], ext_type: int) -> Optional[bytes]:
    """The data of the first extension of ``ext_type``, or None."""
    for e in extensions:
        if e.extension_type == ext_type:
            return e.extension_data
    return None


def _encode_extensions(w: Writer, exts: List[Extension]) -> None:
    w.vector(exts)


@dataclass
class Credential(Struct):
    """Basic (identity) or X.509 (certificate chain, kept opaque) credential."""

    credential_type: int
    identity: bytes = b""
    certificates: List[bytes] = field(default_factory=list)

    @classmethod
    def basic(cls, identity: bytes) -> "Credential":
        return cls(CredentialType.basic, bytes(identity))

    def encode(self, w: Writer) -> None:
        w.u16(self.credential_type)
        if self.credential_type == CredentialType.basic:
            w.opaque(self.identity)
        elif self.credential_type == CredentialType.x509:
            w.vector(self.certificates, Writer.opaque)
        else:
            raise ValueError("cannot encode an unknown credential type")

    def encoded(self) -> bytes:
        """The encoding as bytes (basic credentials without a Writer: hot path of leaf-node encoding)."""
        if self.credential_type == CredentialType.basic:
            ident = self.identity
            return _U16_BASIC + _opaque_bytes(ident)
        return self.to_bytes()

    @classmethod
    def decode(cls, r: Reader) -> "Credential":
        ct = r.u16()
        if ct == CredentialType.basic:
            return cls(CredentialType.basic, r.opaque())
        if ct == CredentialType.x509:
            return cls(CredentialType.x509, b"", r.vector(Reader.opaque))
        raise DecodeError(f"unsupported credential type {ct}")


@dataclass
class Capabilities(Struct):
    versions: List[int] = field(default_factory=lambda: [1])
    cipher_suites: List[int] = field(default_factory=list)
    extensions: List[int] = field(default_factory=list)
    proposals: List[int] = field(default_factory=list)
    credentials: List[int] = field(default_factory=lambda: [1])

    def encode(self, w: Writer) -> None:
        w.raw(self.encoded())

    def encoded(self) -> bytes:
        """The encoding as bytes (hot path of leaf-node encoding)."""
        return (pack_u16_vector(self.versions) + pack_u16_vector(self.cipher_suites)
                + pack_u16_vector(self.extensions) + pack_u16_vector(self.proposals)
                + pack_u16_vector(self.credentials))

    @classmethod
    def decode(cls, r: Reader) -> "Capabilities":
        return cls(r.u16_vector(), r.u16_vector(), r.u16_vector(), r.u16_vector(), r.u16_vector())


def default_capabilities(suite: int) -> Capabilities:
    """Capabilities advertising MLS 1.0, ``suite``, basic credentials and no non-default extension/proposal."""
    return Capabilities(versions=[ProtocolVersion.mls10], cipher_suites=[int(suite)], extensions=[],
                        proposals=[], credentials=[CredentialType.basic])


@dataclass
class Lifetime(Struct):
    not_before: int
    not_after: int

    def encode(self, w: Writer) -> None:
        w.u64(self.not_before).u64(self.not_after)

    @classmethod
    def decode(cls, r: Reader) -> "Lifetime":
        return cls(r.u64(), r.u64())


def default_lifetime(now: Optional[int] = None, days: int = 90) -> Lifetime:
    """From one hour ago to ``days`` days from now (seconds since the epoch)."""
    t = int(time.time()) if now is None else now
    return Lifetime(max(0, t - 3600), t + days * 86400)
