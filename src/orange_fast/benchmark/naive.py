"""The straightforward SFrame a user would write on top of ``cryptography``.

This is the baseline of the benchmarks, not part of the library: a cached AEAD
object per key, the header and nonce built in Python per frame, the output
concatenated.  It is correct (the benchmarks check it against the core) but makes
no effort beyond the obvious.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from ..sframe.suites import CipherSuite

__all__ = ["NaiveSFrame"]


def _header(kid: int, ctr: int) -> bytes:
    def field(v: int) -> tuple[int, bytes]:
        if v < 8:
            return v, b""
        n = (v.bit_length() + 7) // 8
        return 0x8 | (n - 1), v.to_bytes(n, "big")

    k, kb = field(kid)
    c, cb = field(ctr)
    return bytes([(k << 4) | c]) + kb + cb


class NaiveSFrame:
    """One send or receive key of the straightforward implementation."""

    def __init__(self, suite: CipherSuite, kid: int, base_key: bytes) -> None:
        self.suite = CipherSuite(suite)
        self.kid = kid
        self.ctr = 0
        p = self.suite.params
        algo = hashes.SHA512() if p.hash_name == "sha512" else hashes.SHA256()
        # HKDF-Extract with no salt (RFC 5869 2.2): HMAC keyed with HashLen zero bytes
        extract = HMAC(bytes(algo.digest_size), algo)
        extract.update(base_key)
        secret = extract.finalize()
        tail = kid.to_bytes(8, "big") + int(self.suite).to_bytes(2, "big")
        key = HKDFExpand(algo, p.Nk, b"SFrame 1.0 Secret key " + tail).derive(secret)
        self.salt = int.from_bytes(
            HKDFExpand(algo, p.Nn, b"SFrame 1.0 Secret salt " + tail).derive(secret), "big"
        )
        self.nt = p.Nt
        self.gcm = p.gcm
        if p.gcm:
            self.aead = AESGCM(key)
        else:
            self.enc_key = key[: p.Nka]
            self.mac = hmac.new(key[p.Nka :], digestmod=getattr(hashlib, p.hash_name))

    def encrypt(self, frame: bytes, metadata: bytes = b"") -> bytes:
        ctr = self.ctr
        self.ctr += 1
        hdr = _header(self.kid, ctr)
        nonce = (self.salt ^ ctr).to_bytes(12, "big")
        if self.gcm:
            return hdr + self.aead.encrypt(nonce, frame, hdr + metadata)
        aad = hdr + metadata
        enc = Cipher(algorithms.AES(self.enc_key), modes.CTR(nonce + b"\0\0\0\0")).encryptor()
        ct = enc.update(frame) + enc.finalize()
        mac = self.mac.copy()
        mac.update(
            len(aad).to_bytes(8, "big") + len(ct).to_bytes(8, "big") + self.nt.to_bytes(8, "big")
            + nonce + aad + ct
        )
        return hdr + ct + mac.digest()[: self.nt]

    def decrypt(self, data: bytes, metadata: bytes = b"") -> bytes:
        # a user's parser: the full header decode, in Python
        cfg = data[0]
        pos = 1
        kid = cfg >> 4
        if kid & 8:
            n = (kid & 7) + 1
            kid = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        ctr = cfg & 0xF
        if ctr & 8:
            n = (ctr & 7) + 1
            ctr = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        hdr = data[:pos]
        nonce = (self.salt ^ ctr).to_bytes(12, "big")
        if self.gcm:
            return self.aead.decrypt(nonce, data[pos:], hdr + metadata)
        aad = hdr + metadata
        ct, tag = data[pos : len(data) - self.nt], data[len(data) - self.nt :]
        mac = self.mac.copy()
        mac.update(
            len(aad).to_bytes(8, "big") + len(ct).to_bytes(8, "big") + self.nt.to_bytes(8, "big")
            + nonce + aad + ct
        )
        if not hmac.compare_digest(mac.digest()[: self.nt], tag):
            raise ValueError("authentication failed")
        dec = Cipher(algorithms.AES(self.enc_key), modes.CTR(nonce + b"\0\0\0\0")).decryptor()
        return dec.update(ct) + dec.finalize()
