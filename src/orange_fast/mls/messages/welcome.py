"""Welcome, GroupSecrets and GroupInfo (RFC 9420 §12.4.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from ..codec import Reader, Struct, Writer
from ..errors import InvalidPublicKeyError, InvalidSignatureError
from ..suite import get_suite
from .commit import HPKECiphertext
from .credentials import Extension
from .group_context import GroupContext
from .proposal import PreSharedKeyID

__all__ = [
    "EncryptedGroupSecrets", "GroupInfo", "GroupSecrets", "PathSecret", "Welcome",
]


@dataclass
class PathSecret(Struct):
    path_secret: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.path_secret)

    @classmethod
    def decode(cls, r: Reader) -> "PathSecret":
        return cls(r.opaque())

    def __repr__(self) -> str:
        return "PathSecret(...)"


@dataclass
class GroupSecrets(Struct):
    joiner_secret: bytes
    path_secret: Optional[PathSecret] = None
    psks: List[PreSharedKeyID] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        w.opaque(self.joiner_secret).optional(self.path_secret).vector(self.psks)

    @classmethod
    def decode(cls, r: Reader) -> "GroupSecrets":
        return cls(r.opaque(), r.optional(PathSecret), r.vector(PreSharedKeyID))

    def __repr__(self) -> str:
        return f"GroupSecrets(path_secret={'set' if self.path_secret else None}, psks={len(self.psks)})"


@dataclass
class EncryptedGroupSecrets(Struct):
    new_member: bytes
    encrypted_group_secrets: HPKECiphertext

    def encode(self, w: Writer) -> None:
        w.opaque(self.new_member)
        self.encrypted_group_secrets.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "EncryptedGroupSecrets":
        return cls(r.opaque(), HPKECiphertext.decode(r))


@dataclass
class Welcome(Struct):
    cipher_suite: int
    secrets: List[EncryptedGroupSecrets] = field(default_factory=list)
    encrypted_group_info: bytes = b""

    def encode(self, w: Writer) -> None:
        w.u16(self.cipher_suite).vector(self.secrets).opaque(self.encrypted_group_info)

    @classmethod
    def decode(cls, r: Reader) -> "Welcome":
        return cls(r.u16(), r.vector(EncryptedGroupSecrets), r.opaque())


@dataclass
class GroupInfo(Struct):
    group_context: GroupContext
    extensions: List[Extension] = field(default_factory=list)
    confirmation_tag: bytes = b""
    signer: int = 0
    signature: bytes = b""

    def _encode_tbs(self, w: Writer) -> None:
        self.group_context.encode(w)
        w.vector(self.extensions).opaque(self.confirmation_tag).u32(self.signer)

    def encode(self, w: Writer) -> None:
        self._encode_tbs(w)
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> "GroupInfo":
        return cls(GroupContext.decode(r), r.vector(Extension), r.opaque(), r.u32(), r.opaque())

    def tbs(self) -> bytes:
        w = Writer()
        self._encode_tbs(w)
        return w.getvalue()

    def sign(self, signature_private_key: bytes) -> None:
        self.signature = get_suite(self.group_context.cipher_suite).sign_with_label(
            signature_private_key, "GroupInfoTBS", self.tbs())

    def verify(self, signature_public_key: bytes) -> bool:
        try:
            return get_suite(self.group_context.cipher_suite).verify_with_label(
                signature_public_key, "GroupInfoTBS", self.tbs(), self.signature)
        except InvalidPublicKeyError:
            return False

    def check_signature(self, signature_public_key: bytes) -> None:
        if not self.verify(signature_public_key):
            raise InvalidSignatureError("invalid GroupInfo signature")
