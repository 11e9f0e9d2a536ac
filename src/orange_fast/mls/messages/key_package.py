"""KeyPackages (RFC 9420 §10) and the KeyPackage/proposal references (§5.2)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import List, Optional

from ..codec import Reader, Struct, Writer
from ..errors import DecodeError, InvalidPublicKeyError, UnsupportedError
from ..suite import CipherSuite, SignatureKeyPair, Suite, get_suite
from .credentials import Capabilities, Credential, Extension, Lifetime, default_capabilities, default_lifetime
from .enums import LeafNodeSource, ProtocolVersion, WireFormat
from .nodes import LeafNode

__all__ = [
    "KeyPackage", "KeyPackagePrivate", "make_key_package_ref", "make_proposal_ref",
]


def make_key_package_ref(suite: "int | Suite", key_package_raw: bytes) -> bytes:
    """KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)."""
    return get_suite(suite).ref_hash(b"MLS 1.0 KeyPackage Reference", key_package_raw)


def make_proposal_ref(suite: "int | Suite", authenticated_content_bytes: bytes) -> bytes:
    """ProposalRef = RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent)."""
    return get_suite(suite).ref_hash(b"MLS 1.0 Proposal Reference", authenticated_content_bytes)


@dataclass
class KeyPackage(Struct):
    version: int
    cipher_suite: int
    init_key: bytes
    leaf_node: LeafNode
    extensions: List[Extension] = field(default_factory=list)
    signature: bytes = b""

    def _encode_tbs(self, w: Writer) -> None:
        w.u16(self.version).u16(self.cipher_suite).opaque(self.init_key)
        self.leaf_node.encode(w)
        w.vector(self.extensions)

    def encode(self, w: Writer) -> None:
        self._encode_tbs(w)
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> "KeyPackage":
        return cls(r.u16(), r.u16(), r.opaque(), LeafNode.decode(r), r.vector(Extension), r.opaque())

    def tbs(self) -> bytes:
        w = Writer()
        self._encode_tbs(w)
        return w.getvalue()

    def raw_bytes(self) -> bytes:
        """The bare ``KeyPackage`` encoding (what KeyPackageRef hashes)."""
        w = Writer()
        self.encode(w)
        return w.getvalue()

    @classmethod
    def from_raw_bytes(cls, data: bytes) -> "KeyPackage":
        return Struct.from_bytes.__func__(cls, data)  # type: ignore[attr-defined]

    def to_bytes(self) -> bytes:
        """``MLSMessage(KeyPackage)`` serialisation (public API)."""
        from .framing import MLSMessage  # framing decodes KeyPackages: imported at call time

        return MLSMessage(WireFormat.key_package, self).to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "KeyPackage":  # type: ignore[override]
        """Parse an ``MLSMessage`` carrying a KeyPackage."""
        from .framing import MLSMessage  # framing decodes KeyPackages: imported at call time

        msg = MLSMessage.from_bytes(data)
        if msg.wire_format != WireFormat.key_package:
            raise DecodeError("MLSMessage does not carry a KeyPackage")
        return msg.body  # type: ignore[return-value]

    def ref(self, suite: "int | Suite | None" = None) -> bytes:
        return make_key_package_ref(self.cipher_suite if suite is None else suite, self.raw_bytes())

    def sign(self, signature_private_key: bytes) -> None:
        self.signature = get_suite(self.cipher_suite).sign_with_label(signature_private_key, "KeyPackageTBS",
                                                                      self.tbs())

    def verify(self) -> bool:
        """True iff the KeyPackage signature verifies under the leaf node's signature key."""
        try:
            return get_suite(self.cipher_suite).verify_with_label(self.leaf_node.signature_key, "KeyPackageTBS",
                                                                  self.tbs(), self.signature)
        except (InvalidPublicKeyError, UnsupportedError):
            return False

    @classmethod
    def generate(cls, suite: "int | CipherSuite", identity: bytes, signer: SignatureKeyPair, *,
                 capabilities: Optional[Capabilities] = None, lifetime: Optional[Lifetime] = None,
                 extensions: Optional[List[Extension]] = None,
                 leaf_extensions: Optional[List[Extension]] = None,
                 credential: Optional[Credential] = None) -> "tuple[KeyPackage, KeyPackagePrivate]":
        """A fresh signed KeyPackage and its private part (init/encryption keys and the signer)."""
        s = get_suite(suite)
        if signer.suite != s.cipher_suite:
            raise ValueError("signer belongs to another cipher suite")
        init_priv, init_pub = s.generate_hpke_key_pair()
        enc_priv, enc_pub = s.generate_hpke_key_pair()
        leaf = LeafNode(
            encryption_key=enc_pub,
            signature_key=signer.public_key,
            credential=credential if credential is not None else Credential.basic(identity),
            capabilities=capabilities if capabilities is not None else default_capabilities(s.cipher_suite),
            leaf_node_source=LeafNodeSource.key_package,
            lifetime=lifetime if lifetime is not None else default_lifetime(),
            extensions=list(leaf_extensions or []),
        )
        leaf.sign(s, signer.private_key)
        kp = cls(ProtocolVersion.mls10, int(s.cipher_suite), init_pub, leaf, list(extensions or []))
        kp.sign(signer.private_key)
        return kp, KeyPackagePrivate(kp, init_priv, enc_priv, signer)


class KeyPackagePrivate:
    """The private half of a KeyPackage: init and encryption private keys, and the signer."""

    __slots__ = ("key_package", "init_private_key", "encryption_private_key", "signer")

    def __init__(self, key_package: KeyPackage, init_private_key: bytes, encryption_private_key: bytes,
                 signer: SignatureKeyPair) -> None:
        self.key_package = key_package
        self.init_private_key = bytes(init_private_key)
        self.encryption_private_key = bytes(encryption_private_key)
        self.signer = signer

    def __repr__(self) -> str:
        return f"KeyPackagePrivate(ref={self.key_package.ref().hex()[:16]}...)"

    def to_bytes(self) -> bytes:
        return (Writer().opaque(self.key_package.raw_bytes()).opaque(self.init_private_key)
                .opaque(self.encryption_private_key).opaque(self.signer.to_bytes()).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> "KeyPackagePrivate":
        r = Reader(data)
        kp_raw, init_priv, enc_priv, signer_b = r.opaque(), r.opaque(), r.opaque(), r.opaque()
        r.finish()
        kp = KeyPackage.from_raw_bytes(kp_raw)
        signer = SignatureKeyPair.from_bytes(signer_b)
        s = get_suite(kp.cipher_suite)
        try:
            ok = (hmac.compare_digest(s.hpke_public_from_private(init_priv), kp.init_key)
                  and hmac.compare_digest(s.hpke_public_from_private(enc_priv), kp.leaf_node.encryption_key)
                  and hmac.compare_digest(signer.public_key, kp.leaf_node.signature_key))
        except ValueError:
            ok = False
        if not ok:
            raise DecodeError("KeyPackagePrivate keys do not match the KeyPackage")
        return cls(kp, init_priv, enc_priv, signer)
