"""HPKE (RFC 9180): DHKEMs over X25519, X448, P-256, P-384, P-521; HKDF-SHA256/384/512; AES-GCM and
ChaCha20-Poly1305 (and export-only); all four modes (base, psk, auth, auth_psk).

Public names:

* ``KEM`` / ``KDF`` / ``AEAD`` -- IntEnums of the RFC 9180 identifiers.
* ``DHKEM`` -- one KEM: ``generate_key_pair()``, ``derive_key_pair(ikm)``, ``public_from_private(sk)``,
  ``encap(pkR, ikmE=None)``, ``decap(enc, skR)``, ``auth_encap``, ``auth_decap``; keys are serialised bytes.
* ``HPKESuite(kem_id, kdf_id, aead_id)`` -- ``setup_base_s/r``, ``setup_psk_s/r``, ``setup_auth_s/r``,
  ``setup_auth_psk_s/r``, ``seal_base``/``open_base`` single-shot helpers, ``key_schedule``.
* ``HPKEContext`` -- ``seal(aad, pt)``, ``open(aad, ct)``, ``export(exporter_context, length)``; attributes
  ``key``, ``base_nonce``, ``exporter_secret`` are private (leading underscore) and never shown in ``repr``.
* ``get_kem(kem_id)``, ``kdf_extract``, ``kdf_expand``.

Errors: ``DecryptionError`` when opening fails or a decapsulation is impossible; ``InvalidPublicKeyError`` for
a malformed public key passed to ``encap``; ``ValueError`` for bad local arguments.
"""

from __future__ import annotations

import hmac
from enum import IntEnum
from functools import lru_cache
from typing import Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization as _ser
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from .errors import DecryptionError, InvalidPublicKeyError, MLSError

__all__ = [
    "KEM",
    "KDF",
    "AEAD",
    "DHKEM",
    "HPKESuite",
    "HPKEContext",
    "get_kem",
    "kdf_extract",
    "kdf_expand",
    "MODE_BASE",
    "MODE_PSK",
    "MODE_AUTH",
    "MODE_AUTH_PSK",
]

MODE_BASE = 0
MODE_PSK = 1
MODE_AUTH = 2
MODE_AUTH_PSK = 3

_HPKE_V1 = b"HPKE-v1"


class KEM(IntEnum):
    DHKEM_P256_HKDF_SHA256 = 0x0010
    DHKEM_P384_HKDF_SHA384 = 0x0011
    DHKEM_P521_HKDF_SHA512 = 0x0012
    DHKEM_X25519_HKDF_SHA256 = 0x0020
    DHKEM_X448_HKDF_SHA512 = 0x0021


class KDF(IntEnum):
    HKDF_SHA256 = 0x0001
    HKDF_SHA384 = 0x0002
    HKDF_SHA512 = 0x0003


class AEAD(IntEnum):
    AES_128_GCM = 0x0001
    AES_256_GCM = 0x0002
    CHACHA20_POLY1305 = 0x0003
    EXPORT_ONLY = 0xFFFF


_KDF_HASH = {KDF.HKDF_SHA256: "sha256", KDF.HKDF_SHA384: "sha384", KDF.HKDF_SHA512: "sha512"}
_HASH_LEN = {"sha256": 32, "sha384": 48, "sha512": 64}
# AEAD id -> (Nk, Nn, Nt)
_AEAD_SIZES = {
    AEAD.AES_128_GCM: (16, 12, 16),
    AEAD.AES_256_GCM: (32, 12, 16),
    AEAD.CHACHA20_POLY1305: (32, 12, 16),
    AEAD.EXPORT_ONLY: (0, 0, 0),
}


def kdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract."""
    if not salt:
        salt = bytes(_HASH_LEN[hash_name])
    return hmac.digest(salt, ikm, hash_name)


def kdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand."""
    nh = _HASH_LEN[hash_name]
    if length <= nh:  # single block: the common case
        return hmac.digest(prk, info + b"\x01", hash_name)[:length]
    if length > 255 * nh:
        raise ValueError("HKDF-Expand length too large")
    out = bytearray()
    t = b""
    i = 1
    while len(out) < length:
        t = hmac.digest(prk, t + info + bytes((i,)), hash_name)
        out += t
        i += 1
    return bytes(out[:length])


class _Labeled:
    """LabeledExtract / LabeledExpand for one suite_id."""

    __slots__ = ("hash_name", "suite_id", "nh")

    def __init__(self, hash_name: str, suite_id: bytes) -> None:
        self.hash_name = hash_name
        self.suite_id = suite_id
        self.nh = _HASH_LEN[hash_name]

    def extract(self, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return kdf_extract(self.hash_name, salt, _HPKE_V1 + self.suite_id + label + ikm)

    def expand(self, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        return kdf_expand(
            self.hash_name, prk, length.to_bytes(2, "big") + _HPKE_V1 + self.suite_id + label + info, length
        )


@lru_cache(maxsize=64)
def _labeled_extract_memo(hash_name: str, suite_id: bytes, label: bytes, data: bytes) -> bytes:
    return kdf_extract(hash_name, b"", _HPKE_V1 + suite_id + label + data)


class DHKEM:
    """A DH-based KEM (RFC 9180 §4.1). Keys are handled as serialised bytes."""

    def __init__(self, kem_id: KEM) -> None:
        self.kem_id = KEM(kem_id)
        self.curve: Optional[ec.EllipticCurve]
        if self.kem_id == KEM.DHKEM_X25519_HKDF_SHA256:
            self.curve = None
            self.hash_name, self.n_secret, self.n_pk, self.n_sk = "sha256", 32, 32, 32
        elif self.kem_id == KEM.DHKEM_X448_HKDF_SHA512:
            self.curve = None
            self.hash_name, self.n_secret, self.n_pk, self.n_sk = "sha512", 64, 56, 56
        elif self.kem_id == KEM.DHKEM_P256_HKDF_SHA256:
            self.curve = ec.SECP256R1()
            self.hash_name, self.n_secret, self.n_pk, self.n_sk = "sha256", 32, 65, 32
            self._order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
            self._bitmask = 0xFF
        elif self.kem_id == KEM.DHKEM_P384_HKDF_SHA384:
            self.curve = ec.SECP384R1()
            self.hash_name, self.n_secret, self.n_pk, self.n_sk = "sha384", 48, 97, 48
            self._order = int(
                "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
            )
            self._bitmask = 0xFF
        else:
            self.curve = ec.SECP521R1()
            self.hash_name, self.n_secret, self.n_pk, self.n_sk = "sha512", 64, 133, 66
            self._order = int(
                "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
                "FFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
                16,
            )
            self._bitmask = 0x01
        self.n_enc = self.n_pk
        self._lab = _Labeled(self.hash_name, b"KEM" + int(self.kem_id).to_bytes(2, "big"))

    def __repr__(self) -> str:
        return f"DHKEM({self.kem_id.name})"

    # -- key handling ----------------------------------------------------------------------------
    def _load_private(self, sk: bytes):  # type: ignore[no-untyped-def]
        try:
            if self.kem_id == KEM.DHKEM_X25519_HKDF_SHA256:
                return x25519.X25519PrivateKey.from_private_bytes(bytes(sk))
            if self.kem_id == KEM.DHKEM_X448_HKDF_SHA512:
                return x448.X448PrivateKey.from_private_bytes(bytes(sk))
            if not 0 < len(sk) <= self.n_sk:  # big-endian scalar (leading zeros may be dropped)
                raise ValueError("bad private key length")
            v = int.from_bytes(sk, "big")
            if not 0 < v < self._order:
                raise ValueError("private scalar out of range")
            return ec.derive_private_key(v, self.curve)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            raise ValueError("invalid HPKE private key") from None

    def _load_public(self, pk: bytes):  # type: ignore[no-untyped-def]
        try:
            if len(pk) != self.n_pk:
                raise ValueError
            if self.kem_id == KEM.DHKEM_X25519_HKDF_SHA256:
                return x25519.X25519PublicKey.from_public_bytes(bytes(pk))
            if self.kem_id == KEM.DHKEM_X448_HKDF_SHA512:
                return x448.X448PublicKey.from_public_bytes(bytes(pk))
            if pk[0] != 4:
                raise ValueError
            return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, bytes(pk))  # type: ignore[arg-type]
        except (ValueError, TypeError):
            raise InvalidPublicKeyError("invalid HPKE public key") from None

    def _ser_public(self, key) -> bytes:  # type: ignore[no-untyped-def]
        if self.curve is None:
            return key.public_bytes(_ser.Encoding.Raw, _ser.PublicFormat.Raw)
        return key.public_bytes(_ser.Encoding.X962, _ser.PublicFormat.UncompressedPoint)

    def _ser_private(self, key) -> bytes:  # type: ignore[no-untyped-def]
        if self.curve is None:
            return key.private_bytes(_ser.Encoding.Raw, _ser.PrivateFormat.Raw, _ser.NoEncryption())
        return key.private_numbers().private_value.to_bytes(self.n_sk, "big")

    def validate_public_key(self, pk: bytes) -> None:
        """Raise ``InvalidPublicKeyError`` unless ``pk`` is a valid serialised public key."""
        self._load_public(pk)

    def public_from_private(self, sk: bytes) -> bytes:
        """The serialised public key of a serialised private key."""
        return self._ser_public(self._load_private(sk).public_key())

    def _generate_obj(self):  # type: ignore[no-untyped-def]
        if self.kem_id == KEM.DHKEM_X25519_HKDF_SHA256:
            return x25519.X25519PrivateKey.generate()
        if self.kem_id == KEM.DHKEM_X448_HKDF_SHA512:
            return x448.X448PrivateKey.generate()
        return ec.generate_private_key(self.curve)  # type: ignore[arg-type]

    def generate_key_pair(self) -> tuple[bytes, bytes]:
        """A fresh random key pair ``(sk, pk)``."""
        k = self._generate_obj()
        return self._ser_private(k), self._ser_public(k.public_key())

    def _ephemeral(self, ikm_e: Optional[bytes]):  # type: ignore[no-untyped-def]
        if ikm_e is not None:
            sk_e, pk_e = self.derive_key_pair(ikm_e)
            return self._load_private(sk_e), pk_e
        k = self._generate_obj()
        return k, self._ser_public(k.public_key())

    def derive_key_pair(self, ikm: bytes) -> tuple[bytes, bytes]:
        """RFC 9180 §7.1.3 DeriveKeyPair: deterministic ``(sk, pk)`` from ``ikm``."""
        dkp_prk = self._lab.extract(b"", b"dkp_prk", bytes(ikm))
        if self.curve is None:
            sk = self._lab.expand(dkp_prk, b"sk", b"", self.n_sk)
            return sk, self.public_from_private(sk)
        for counter in range(256):
            cand = bytearray(self._lab.expand(dkp_prk, b"candidate", bytes((counter,)), self.n_sk))
            cand[0] &= self._bitmask
            v = int.from_bytes(cand, "big")
            if 0 < v < self._order:
                sk = bytes(cand)
                return sk, self.public_from_private(sk)
        raise ValueError("DeriveKeyPairError")  # pragma: no cover - probability ~2**-256

    # -- DH and encapsulation --------------------------------------------------------------------
    def _dh(self, sk_obj, pk_obj) -> bytes:  # type: ignore[no-untyped-def]
        try:
            if self.curve is None:
                out = sk_obj.exchange(pk_obj)
            else:
                out = sk_obj.exchange(ec.ECDH(), pk_obj)
        except ValueError:
            raise DecryptionError("DH computation failed (invalid public key)") from None
        if not any(out):
            raise DecryptionError("DH output is all zero")
        return out

    def _extract_and_expand(self, dh: bytes, kem_context: bytes) -> bytes:
        eae_prk = self._lab.extract(b"", b"eae_prk", dh)
        return self._lab.expand(eae_prk, b"shared_secret", kem_context, self.n_secret)

    def encap(self, pk_r: bytes, ikm_e: Optional[bytes] = None) -> tuple[bytes, bytes]:
        """Encap(pkR) -> ``(shared_secret, enc)``; ``ikm_e`` makes it deterministic (tests)."""
        pk_obj = self._load_public(pk_r)
        sk_e_obj, pk_e = self._ephemeral(ikm_e)
        dh = self._dh(sk_e_obj, pk_obj)
        return self._extract_and_expand(dh, pk_e + bytes(pk_r)), pk_e

    def decap(self, enc: bytes, sk_r: bytes) -> bytes:
        """Decap(enc, skR) -> shared_secret."""
        try:
            pk_e = self._load_public(enc)
        except InvalidPublicKeyError:
            raise DecryptionError("invalid encapsulated key") from None
        sk_obj = self._load_private(sk_r)
        dh = self._dh(sk_obj, pk_e)
        return self._extract_and_expand(dh, bytes(enc) + self._ser_public(sk_obj.public_key()))

    def auth_encap(self, pk_r: bytes, sk_s: bytes, ikm_e: Optional[bytes] = None) -> tuple[bytes, bytes]:
        """AuthEncap(pkR, skS) -> ``(shared_secret, enc)``."""
        pk_obj = self._load_public(pk_r)
        sk_e_obj, pk_e = self._ephemeral(ikm_e)
        sk_s_obj = self._load_private(sk_s)
        dh = self._dh(sk_e_obj, pk_obj) + self._dh(sk_s_obj, pk_obj)
        kem_context = pk_e + bytes(pk_r) + self._ser_public(sk_s_obj.public_key())
        return self._extract_and_expand(dh, kem_context), pk_e

    def auth_decap(self, enc: bytes, sk_r: bytes, pk_s: bytes) -> bytes:
        """AuthDecap(enc, skR, pkS) -> shared_secret."""
        try:
            pk_e = self._load_public(enc)
            pk_s_obj = self._load_public(pk_s)
        except InvalidPublicKeyError:
            raise DecryptionError("invalid public key in AuthDecap") from None
        sk_obj = self._load_private(sk_r)
        dh = self._dh(sk_obj, pk_e) + self._dh(sk_obj, pk_s_obj)
        kem_context = bytes(enc) + self._ser_public(sk_obj.public_key()) + bytes(pk_s)
        return self._extract_and_expand(dh, kem_context)


@lru_cache(maxsize=None)
def get_kem(kem_id: int) -> DHKEM:
    """The (cached) ``DHKEM`` for a KEM identifier."""
    return DHKEM(KEM(kem_id))


class HPKEContext:
    """An HPKE encryption context (sender or receiver). Never reveals its secrets in ``repr``."""

    __slots__ = ("_suite", "_key", "_base_nonce", "_exporter_secret", "_seq", "_aead")

    def __init__(self, suite: "HPKESuite", key: bytes, base_nonce: bytes, exporter_secret: bytes) -> None:
        self._suite = suite
        self._key = key
        self._base_nonce = base_nonce
        self._exporter_secret = exporter_secret
        self._seq = 0
        self._aead = suite._make_aead(key) if suite.aead_id != AEAD.EXPORT_ONLY else None

    def __repr__(self) -> str:
        return f"HPKEContext({self._suite!r}, seq={self._seq})"

    def _nonce(self) -> bytes:
        n = len(self._base_nonce)
        if self._seq >= (1 << (8 * n)) - 1:
            raise MLSError("HPKE message limit reached")
        return bytes(a ^ b for a, b in zip(self._base_nonce, self._seq.to_bytes(n, "big")))

    def seal(self, aad: bytes, pt: bytes) -> bytes:
        if self._aead is None:
            raise ValueError("export-only HPKE context cannot seal")
        ct = self._aead.encrypt(self._nonce(), bytes(pt), bytes(aad))
        self._seq += 1
        return ct

    def open(self, aad: bytes, ct: bytes) -> bytes:
        if self._aead is None:
            raise ValueError("export-only HPKE context cannot open")
        try:
            pt = self._aead.decrypt(self._nonce(), bytes(ct), bytes(aad))
        except InvalidTag:
            raise DecryptionError("HPKE open failed") from None
        self._seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        return self._suite._lab.expand(self._exporter_secret, b"sec", bytes(exporter_context), length)


class HPKESuite:
    """One HPKE ciphersuite (KEM, KDF, AEAD)."""

    def __init__(self, kem_id: int, kdf_id: int, aead_id: int) -> None:
        self.kem = get_kem(kem_id)
        self.kdf_id = KDF(kdf_id)
        self.aead_id = AEAD(aead_id)
        self.hash_name = _KDF_HASH[self.kdf_id]
        self.nh = _HASH_LEN[self.hash_name]
        self.nk, self.nn, self.nt = _AEAD_SIZES[self.aead_id]
        suite_id = b"HPKE" + int(self.kem.kem_id).to_bytes(2, "big") + int(self.kdf_id).to_bytes(2, "big")
        suite_id += int(self.aead_id).to_bytes(2, "big")
        self._lab = _Labeled(self.hash_name, suite_id)

    def __repr__(self) -> str:
        return f"HPKESuite({self.kem.kem_id.name}, {self.kdf_id.name}, {self.aead_id.name})"

    def _make_aead(self, key: bytes):  # type: ignore[no-untyped-def]
        if self.aead_id == AEAD.CHACHA20_POLY1305:
            return ChaCha20Poly1305(key)
        return AESGCM(key)

    def _labeled_hash(self, label: bytes, data: bytes) -> bytes:
        """LabeledExtract("", label, data) for public inputs, memoised (one commit encrypts to many nodes
        with the same info)."""
        return _labeled_extract_memo(self.hash_name, self._lab.suite_id, label, data)

    def key_schedule_secrets(
        self, mode: int, shared_secret: bytes, info: bytes, psk: bytes = b"", psk_id: bytes = b""
    ) -> tuple[bytes, bytes, bytes, bytes]:
        """Return ``(key_schedule_context, key, base_nonce, exporter_secret)`` (RFC 9180 §5.1)."""
        has_psk = bool(psk)
        if has_psk != bool(psk_id):
            raise ValueError("inconsistent PSK inputs")
        if has_psk != (mode in (MODE_PSK, MODE_AUTH_PSK)):
            raise ValueError("PSK input does not match the mode")
        psk_id_hash = self._labeled_hash(b"psk_id_hash", bytes(psk_id))
        info_hash = self._labeled_hash(b"info_hash", bytes(info))
        ksc = bytes((mode,)) + psk_id_hash + info_hash
        secret = self._lab.extract(shared_secret, b"secret", bytes(psk))
        key = self._lab.expand(secret, b"key", ksc, self.nk) if self.nk else b""
        base_nonce = self._lab.expand(secret, b"base_nonce", ksc, self.nn) if self.nn else b""
        exporter_secret = self._lab.expand(secret, b"exp", ksc, self.nh)
        return ksc, key, base_nonce, exporter_secret

    def key_schedule(
        self, mode: int, shared_secret: bytes, info: bytes, psk: bytes = b"", psk_id: bytes = b""
    ) -> HPKEContext:
        _, key, base_nonce, exp = self.key_schedule_secrets(mode, shared_secret, info, psk, psk_id)
        return HPKEContext(self, key, base_nonce, exp)

    # -- setup ------------------------------------------------------------------------------------
    def setup_base_s(self, pk_r: bytes, info: bytes, ikm_e: Optional[bytes] = None) -> tuple[bytes, HPKEContext]:
        ss, enc = self.kem.encap(pk_r, ikm_e)
        return enc, self.key_schedule(MODE_BASE, ss, info)

    def setup_base_r(self, enc: bytes, sk_r: bytes, info: bytes) -> HPKEContext:
        return self.key_schedule(MODE_BASE, self.kem.decap(enc, sk_r), info)

    def setup_psk_s(
        self, pk_r: bytes, info: bytes, psk: bytes, psk_id: bytes, ikm_e: Optional[bytes] = None
    ) -> tuple[bytes, HPKEContext]:
        ss, enc = self.kem.encap(pk_r, ikm_e)
        return enc, self.key_schedule(MODE_PSK, ss, info, psk, psk_id)

    def setup_psk_r(self, enc: bytes, sk_r: bytes, info: bytes, psk: bytes, psk_id: bytes) -> HPKEContext:
        return self.key_schedule(MODE_PSK, self.kem.decap(enc, sk_r), info, psk, psk_id)

    def setup_auth_s(
        self, pk_r: bytes, info: bytes, sk_s: bytes, ikm_e: Optional[bytes] = None
    ) -> tuple[bytes, HPKEContext]:
        ss, enc = self.kem.auth_encap(pk_r, sk_s, ikm_e)
        return enc, self.key_schedule(MODE_AUTH, ss, info)

    def setup_auth_r(self, enc: bytes, sk_r: bytes, info: bytes, pk_s: bytes) -> HPKEContext:
        return self.key_schedule(MODE_AUTH, self.kem.auth_decap(enc, sk_r, pk_s), info)

    def setup_auth_psk_s(
        self, pk_r: bytes, info: bytes, psk: bytes, psk_id: bytes, sk_s: bytes, ikm_e: Optional[bytes] = None
    ) -> tuple[bytes, HPKEContext]:
        ss, enc = self.kem.auth_encap(pk_r, sk_s, ikm_e)
        return enc, self.key_schedule(MODE_AUTH_PSK, ss, info, psk, psk_id)

    def setup_auth_psk_r(
        self, enc: bytes, sk_r: bytes, info: bytes, psk: bytes, psk_id: bytes, pk_s: bytes
    ) -> HPKEContext:
        return self.key_schedule(MODE_AUTH_PSK, self.kem.auth_decap(enc, sk_r, pk_s), info, psk, psk_id)

    # -- single shot ------------------------------------------------------------------------------
    def seal_base(self, pk_r: bytes, info: bytes, aad: bytes, pt: bytes) -> tuple[bytes, bytes]:
        """SealBase -> ``(enc, ciphertext)``."""
        enc, ctx = self.setup_base_s(pk_r, info)
        return enc, ctx.seal(aad, pt)

    def open_base(self, enc: bytes, sk_r: bytes, info: bytes, aad: bytes, ct: bytes) -> bytes:
        """OpenBase -> plaintext; ``DecryptionError`` on failure."""
        return self.setup_base_r(enc, sk_r, info).open(aad, ct)
