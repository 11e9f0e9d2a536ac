"""MLS cipher suites (RFC 9420 §5.1) and the labelled crypto operations built on them.

Public names:

* ``CipherSuite`` -- IntEnum of the RFC 9420 suite ids 1..7 with the RFC names.
* ``SignatureScheme`` -- IntEnum of the TLS signature scheme ids used by the suites.
* ``Suite`` / ``get_suite(cs)`` -- per-suite provider (cached; ``CipherSuite.provider`` is a shortcut):
  sizes ``nh``, ``nk``, ``nn``, ``npk`` ...; ``hash``, ``mac``, ``kdf_extract``, ``kdf_expand``,
  ``expand_with_label``, ``derive_secret``, ``derive_tree_secret``, ``ref_hash``,
  ``sign_with_label``/``verify_with_label`` (raw private key bytes), ``encrypt_with_label``/``decrypt_with_label``
  (HPKE base mode), ``aead_encrypt``/``aead_decrypt``, ``derive_key_pair``/``generate_hpke_key_pair``/
  ``hpke_public_from_private``, ``generate_signature_key``/``signature_public_from_private``,
  ``validate_hpke_public_key``/``validate_signature_public_key``, ``hpke`` (the ``HPKESuite``).
* ``SignatureKeyPair`` -- ``generate(suite)``, ``from_private(suite, priv)``, ``public_key``, ``suite``,
  ``sign_with_label(label, content)``, ``to_bytes()``/``from_bytes()``. Private key never in ``repr``.

Labels may be given as ``str`` or ``bytes``; the "MLS 1.0 " prefix is added where RFC 9420 requires it.
Signatures: Ed25519/Ed448 raw; ECDSA DER-encoded (as in TLS), public keys as uncompressed points.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import IntEnum
from functools import lru_cache
from typing import Union

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .codec import Reader, Writer, decode_enum, encode_varint
from .errors import DecodeError, DecryptionError, InvalidPublicKeyError, InvalidSignatureError, UnsupportedError
from .hpke import AEAD, KDF, KEM, HPKESuite, kdf_expand, kdf_extract

__all__ = [
    "CipherSuite",
    "SignatureScheme",
    "Suite",
    "get_suite",
    "SignatureKeyPair",
]

Label = Union[str, bytes]
_MLS_PREFIX = b"MLS 1.0 "


class CipherSuite(IntEnum):
    """RFC 9420 §17.1 cipher suites."""

    MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519 = 0x0001
    MLS_128_DHKEMP256_AES128GCM_SHA256_P256 = 0x0002
    MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 = 0x0003
    MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448 = 0x0004
    MLS_256_DHKEMP521_AES256GCM_SHA512_P521 = 0x0005
    MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448 = 0x0006
    MLS_256_DHKEMP384_AES256GCM_SHA384_P384 = 0x0007

    @property
    def provider(self) -> "Suite":
        """The cached ``Suite`` implementing this cipher suite."""
        return get_suite(self)


class SignatureScheme(IntEnum):
    """TLS SignatureScheme values used by the MLS suites."""

    ecdsa_secp256r1_sha256 = 0x0403
    ecdsa_secp384r1_sha384 = 0x0503
    ecdsa_secp521r1_sha512 = 0x0603
    ed25519 = 0x0807
    ed448 = 0x0808


# suite -> (KEM, KDF, AEAD, hash name, signature scheme)
_SUITES = {
    CipherSuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: (
        KEM.DHKEM_X25519_HKDF_SHA256, KDF.HKDF_SHA256, AEAD.AES_128_GCM, "sha256", SignatureScheme.ed25519),
    CipherSuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256: (
        KEM.DHKEM_P256_HKDF_SHA256, KDF.HKDF_SHA256, AEAD.AES_128_GCM, "sha256",
        SignatureScheme.ecdsa_secp256r1_sha256),
    CipherSuite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519: (
        KEM.DHKEM_X25519_HKDF_SHA256, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305, "sha256", SignatureScheme.ed25519),
    CipherSuite.MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448: (
        KEM.DHKEM_X448_HKDF_SHA512, KDF.HKDF_SHA512, AEAD.AES_256_GCM, "sha512", SignatureScheme.ed448),
    CipherSuite.MLS_256_DHKEMP521_AES256GCM_SHA512_P521: (
        KEM.DHKEM_P521_HKDF_SHA512, KDF.HKDF_SHA512, AEAD.AES_256_GCM, "sha512",
        SignatureScheme.ecdsa_secp521r1_sha512),
    CipherSuite.MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448: (
        KEM.DHKEM_X448_HKDF_SHA512, KDF.HKDF_SHA512, AEAD.CHACHA20_POLY1305, "sha512", SignatureScheme.ed448),
    CipherSuite.MLS_256_DHKEMP384_AES256GCM_SHA384_P384: (
        KEM.DHKEM_P384_HKDF_SHA384, KDF.HKDF_SHA384, AEAD.AES_256_GCM, "sha384",
        SignatureScheme.ecdsa_secp384r1_sha384),
}

_EC_CURVES = {
    SignatureScheme.ecdsa_secp256r1_sha256: (ec.SECP256R1, hashes.SHA256, 32),
    SignatureScheme.ecdsa_secp384r1_sha384: (ec.SECP384R1, hashes.SHA384, 48),
    SignatureScheme.ecdsa_secp521r1_sha512: (ec.SECP521R1, hashes.SHA512, 66),
}


def _label_bytes(label: Label) -> bytes:
    return label.encode("ascii") if isinstance(label, str) else bytes(label)


@lru_cache(maxsize=256)
def _mls_label_cached(label: Union[str, bytes]) -> bytes:
    return _opaque(_MLS_PREFIX + _label_bytes(label))


def _mls_label(label: Label) -> bytes:
    """``opaque label<V> = "MLS 1.0 " + Label`` (cached: labels are a small fixed set)."""
    if not isinstance(label, (str, bytes)):
        label = bytes(label)
    return _mls_label_cached(label)


def _opaque(data: bytes) -> bytes:
    return encode_varint(len(data)) + data


class Suite:
    """All primitives of one MLS cipher suite. Obtain through ``get_suite(cs)``."""

    def __init__(self, cs: CipherSuite) -> None:
        self.cipher_suite = CipherSuite(cs)
        kem_id, kdf_id, aead_id, hash_name, sig = _SUITES[self.cipher_suite]
        self.hpke = HPKESuite(kem_id, kdf_id, aead_id)
        self.kem = self.hpke.kem
        self.hash_name = hash_name
        # the named constructor (hashlib.sha256, ...) skips hashlib.new's name lookup on every call
        self._hash_ctor = getattr(hashlib, hash_name)
        self.signature_scheme = sig
        self.nh = self.hpke.nh
        self.nk = self.hpke.nk
        self.nn = self.hpke.nn
        self.nt = self.hpke.nt
        self._aead_id = aead_id
        self._aead_cls = ChaCha20Poly1305 if aead_id == AEAD.CHACHA20_POLY1305 else AESGCM

    def __repr__(self) -> str:
        return f"Suite({self.cipher_suite.name})"

    # -- hash / KDF -------------------------------------------------------------------------------
    def hash(self, data: bytes) -> bytes:
        return self._hash_ctor(data).digest()

    def mac(self, key: bytes, data: bytes) -> bytes:
        """MAC(key, data) = HMAC with the suite's hash."""
        return hmac.digest(key, data, self.hash_name)

    def kdf_extract(self, salt: bytes, ikm: bytes) -> bytes:
        return kdf_extract(self.hash_name, salt, ikm)

    def kdf_expand(self, prk: bytes, info: bytes, length: int) -> bytes:
        return kdf_expand(self.hash_name, prk, info, length)

    def expand_with_label(self, secret: bytes, label: Label, context: bytes, length: int) -> bytes:
        """ExpandWithLabel (RFC 9420 §8): KDFLabel{length, "MLS 1.0 "+label, context}."""
        info = length.to_bytes(2, "big") + _mls_label(label) + _opaque(bytes(context))
        return kdf_expand(self.hash_name, secret, info, length)

    def derive_secret(self, secret: bytes, label: Label) -> bytes:
        return self.expand_with_label(secret, label, b"", self.nh)

    def derive_tree_secret(self, secret: bytes, label: Label, generation: int, length: int) -> bytes:
        return self.expand_with_label(secret, label, generation.to_bytes(4, "big"), length)

    def ref_hash(self, label: Label, value: bytes) -> bytes:
        """RefHash(label, value) = Hash(RefHashInput{label, value}) (label used as given)."""
        return self.hash(_opaque(_label_bytes(label)) + _opaque(bytes(value)))

    # -- AEAD -------------------------------------------------------------------------------------
    def aead_encrypt(self, key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        return self._aead_cls(bytes(key)).encrypt(bytes(nonce), bytes(plaintext), bytes(aad))

    def aead_decrypt(self, key: bytes, nonce: bytes, aad: bytes, ciphertext: bytes) -> bytes:
        if len(ciphertext) < self.nt:
            raise DecryptionError("ciphertext shorter than the AEAD tag")
        try:
            return self._aead_cls(bytes(key)).decrypt(bytes(nonce), bytes(ciphertext), bytes(aad))
        except InvalidTag:
            raise DecryptionError("AEAD decryption failed") from None

    # -- HPKE -------------------------------------------------------------------------------------
    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """KEM DeriveKeyPair -> ``(private, public)`` serialised."""
        return self.kem.derive_key_pair(ikm)

    def generate_hpke_key_pair(self) -> tuple[bytes, bytes]:
        return self.kem.generate_key_pair()

    def hpke_public_from_private(self, priv: bytes) -> bytes:
        return self.kem.public_from_private(priv)

    def validate_hpke_public_key(self, pub: bytes) -> None:
        self.kem.validate_public_key(pub)

    def encrypt_with_label(self, public_key: bytes, label: Label, context: bytes,
                           plaintext: bytes) -> tuple[bytes, bytes]:
        """EncryptWithLabel -> ``(kem_output, ciphertext)`` (HPKE base mode, empty AAD)."""
        info = _mls_label(label) + _opaque(bytes(context))
        return self.hpke.seal_base(bytes(public_key), info, b"", bytes(plaintext))

    def decrypt_with_label(
        self, private_key: bytes, label: Label, context: bytes, kem_output: bytes, ciphertext: bytes
    ) -> bytes:
        """DecryptWithLabel; raises ``DecryptionError``."""
        info = _mls_label(label) + _opaque(bytes(context))
        return self.hpke.open_base(bytes(kem_output), bytes(private_key), info, b"", bytes(ciphertext))

    # -- signatures -------------------------------------------------------------------------------
    def _load_sig_private(self, priv: bytes):  # type: ignore[no-untyped-def]
        sch = self.signature_scheme
        try:
            if sch == SignatureScheme.ed25519:
                return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(priv))
            if sch == SignatureScheme.ed448:
                return ed448.Ed448PrivateKey.from_private_bytes(bytes(priv))
            curve, _, n = _EC_CURVES[sch]
            # big-endian scalar; some encoders drop leading zero bytes, so accept shorter encodings
            if not 0 < len(priv) <= n:
                raise ValueError
            return ec.derive_private_key(int.from_bytes(priv, "big"), curve())
        except (ValueError, TypeError):
            raise ValueError("invalid signature private key") from None

    def _load_sig_public(self, pub: bytes):  # type: ignore[no-untyped-def]
        return _load_sig_public_cached(self.signature_scheme, bytes(pub))

    def validate_signature_public_key(self, pub: bytes) -> None:
        """Raise ``InvalidPublicKeyError`` unless ``pub`` is valid for the suite's signature scheme."""
        self._load_sig_public(pub)

    def signature_public_from_private(self, priv: bytes) -> bytes:
        return _ser_sig_public(self._load_sig_private(priv).public_key())

    def generate_signature_key(self) -> tuple[bytes, bytes]:
        """A fresh ``(private, public)`` signature key pair (serialised as in the test vectors)."""
        sch = self.signature_scheme
        if sch == SignatureScheme.ed25519:
            ek = ed25519.Ed25519PrivateKey.generate()
            priv = ek.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
            return priv, _ser_sig_public(ek.public_key())
        if sch == SignatureScheme.ed448:
            dk = ed448.Ed448PrivateKey.generate()
            priv = dk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
            return priv, _ser_sig_public(dk.public_key())
        curve, _, n = _EC_CURVES[sch]
        ck = ec.generate_private_key(curve())
        priv = ck.private_numbers().private_value.to_bytes(n, "big")
        return priv, _ser_sig_public(ck.public_key())

    def sign(self, priv: bytes, message: bytes) -> bytes:
        return self._sign_with_key(self._load_sig_private(priv), message)

    def _sign_with_key(self, key, message: bytes) -> bytes:  # type: ignore[no-untyped-def]
        if self.signature_scheme in _EC_CURVES:
            _, h, _ = _EC_CURVES[self.signature_scheme]
            return key.sign(bytes(message), ec.ECDSA(h()))
        return key.sign(bytes(message))

    def verify(self, pub: bytes, message: bytes, signature: bytes) -> bool:
        """True iff the signature verifies; an invalid public key raises ``InvalidPublicKeyError``."""
        key = self._load_sig_public(pub)
        try:
            if self.signature_scheme in _EC_CURVES:
                _, h, _ = _EC_CURVES[self.signature_scheme]
                key.verify(bytes(signature), bytes(message), ec.ECDSA(h()))
            else:
                key.verify(bytes(signature), bytes(message))
        except (InvalidSignature, ValueError):
            return False
        return True

    @staticmethod
    def _sign_content(label: Label, content: bytes) -> bytes:
        return _mls_label(label) + _opaque(bytes(content))

    def sign_with_label(self, priv: bytes, label: Label, content: bytes) -> bytes:
        """SignWithLabel(SignatureKey, Label, Content)."""
        return self.sign(priv, self._sign_content(label, content))

    def verify_with_label(self, pub: bytes, label: Label, content: bytes, signature: bytes) -> bool:
        """VerifyWithLabel -> bool (``InvalidPublicKeyError`` for a malformed key)."""
        return self.verify(pub, self._sign_content(label, content), signature)

    def check_signature(self, pub: bytes, label: Label, content: bytes, signature: bytes, what: str = "") -> None:
        """VerifyWithLabel that raises ``InvalidSignatureError`` (also for a malformed key)."""
        try:
            ok = self.verify_with_label(pub, label, content, signature)
        except InvalidPublicKeyError:
            ok = False
        if not ok:
            raise InvalidSignatureError(f"invalid signature{' on ' + what if what else ''}")


def _ser_sig_public(key) -> bytes:  # type: ignore[no-untyped-def]
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@lru_cache(maxsize=4096)
def _load_sig_public_cached(sch: SignatureScheme, pub: bytes):  # type: ignore[no-untyped-def]
    try:
        if sch == SignatureScheme.ed25519:
            if len(pub) != 32:
                raise ValueError
            return ed25519.Ed25519PublicKey.from_public_bytes(pub)
        if sch == SignatureScheme.ed448:
            if len(pub) != 57:
                raise ValueError
            return ed448.Ed448PublicKey.from_public_bytes(pub)
        curve, _, n = _EC_CURVES[sch]
        if len(pub) != 1 + 2 * n or pub[0] != 4:
            raise ValueError
        return ec.EllipticCurvePublicKey.from_encoded_point(curve(), pub)
    except (ValueError, TypeError):
        raise InvalidPublicKeyError("invalid signature public key") from None


@lru_cache(maxsize=None)
def _get_suite(cs: int) -> Suite:
    return Suite(CipherSuite(cs))


def get_suite(cs: "int | CipherSuite | Suite") -> Suite:
    """The cached ``Suite`` for a cipher suite id; ``UnsupportedError`` for unknown ids."""
    if isinstance(cs, Suite):
        return cs
    try:
        c = CipherSuite(int(cs))
    except ValueError:
        raise UnsupportedError(f"unsupported cipher suite {int(cs)}") from None
    return _get_suite(int(c))


class SignatureKeyPair:
    """A member's signature key pair. ``repr`` shows the suite and a public-key fingerprint only."""

    __slots__ = ("_suite", "_priv", "_pub", "_key")

    def __init__(self, suite: "int | CipherSuite", private_key: bytes, public_key: bytes) -> None:
        self._suite = get_suite(suite)
        self._priv = bytes(private_key)
        self._pub = bytes(public_key)
        self._key = None  # loaded private key object, cached on first use

    @classmethod
    def generate(cls, suite: "int | CipherSuite") -> "SignatureKeyPair":
        s = get_suite(suite)
        priv, pub = s.generate_signature_key()
        return cls(s.cipher_suite, priv, pub)

    @classmethod
    def from_private(cls, suite: "int | CipherSuite", private_key: bytes) -> "SignatureKeyPair":
        s = get_suite(suite)
        return cls(s.cipher_suite, private_key, s.signature_public_from_private(private_key))

    @property
    def suite(self) -> CipherSuite:
        return self._suite.cipher_suite

    @property
    def public_key(self) -> bytes:
        return self._pub

    @property
    def private_key(self) -> bytes:
        """The serialised private key (handle with care; never logged)."""
        return self._priv

    def sign_with_label(self, label: Label, content: bytes) -> bytes:
        if self._key is None:
            self._key = self._suite._load_sig_private(self._priv)
        return self._suite._sign_with_key(self._key, Suite._sign_content(label, content))

    def verify_with_label(self, label: Label, content: bytes, signature: bytes) -> bool:
        return self._suite.verify_with_label(self._pub, label, content, signature)

    def to_bytes(self) -> bytes:
        """Serialise as ``uint16 suite; opaque private<V>; opaque public<V>``."""
        return Writer().u16(int(self.suite)).opaque(self._priv).opaque(self._pub).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "SignatureKeyPair":
        """Inverse of ``to_bytes``; checks that the public key matches the private key."""
        r = Reader(data)
        cs = r.u16()
        priv = r.opaque()
        pub = r.opaque()
        r.finish()
        suite = get_suite(decode_enum(CipherSuite, cs, "cipher suite"))
        try:
            derived = suite.signature_public_from_private(priv)
        except ValueError:
            raise DecodeError("invalid signature private key") from None
        if not hmac.compare_digest(derived, pub):
            raise DecodeError("signature public key does not match the private key")
        return cls(suite.cipher_suite, priv, pub)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SignatureKeyPair):
            return NotImplemented
        return self.suite == other.suite and hmac.compare_digest(self._priv, other._priv)

    def __hash__(self) -> int:
        return hash((int(self.suite), self._pub))

    def __repr__(self) -> str:
        fp = hashlib.sha256(self._pub).hexdigest()[:16]
        return f"SignatureKeyPair(suite={self.suite.name}, public_key_sha256={fp})"
