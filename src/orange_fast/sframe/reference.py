"""A small, obvious pure-Python SFrame (RFC 9605) used as a differential test oracle.

This module is **not** a fallback for the compiled core: nothing in the package imports
it; only the tests and benchmarks do.  It is written from the byte-level rules in
``shared/specs/SFRAME.md`` (not from the C code), on top of the ``cryptography``
package, and favours clarity over speed:

* :func:`encode_header` / :func:`decode_header` -- the §4.3 header codec (strict decoder);
* :func:`derive_key_salt` -- §4.4.2 key and salt derivation (HKDF with the suite hash);
* :func:`make_nonce` -- salt XOR counter;
* :func:`aead_seal` / :func:`aead_open` -- AES-GCM, and AES-CTR + truncated HMAC;
* :class:`ReplayWindow` -- the SRTP-style window over counters;
* :class:`Context` -- send and receive keys, counters, replay protection, with the
  same exception types as the core (:mod:`orange_fast.sframe.errors`).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import (
    AuthenticationError,
    CounterExhaustedError,
    MalformedHeaderError,
    ReplayError,
    UnknownKeyError,
)
from .suites import CipherSuite

__all__ = [
    "MAX_U64",
    "encode_header",
    "decode_header",
    "derive_key_salt",
    "make_nonce",
    "aead_seal",
    "aead_open",
    "ReplayWindow",
    "Context",
]

MAX_U64 = 2**64 - 1
_KEY_LABEL = b"SFrame 1.0 Secret key "
_SALT_LABEL = b"SFrame 1.0 Secret salt "


def _as_bytes(value: object, what: str) -> bytes:
    """Copy a bytes-like object into ``bytes``; TypeError for anything else."""
    if isinstance(value, (str, int)) or value is None:
        raise TypeError(f"{what} must be a bytes-like object, not {type(value).__name__}")
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(value).__name__}") from None
    if not view.c_contiguous:
        raise TypeError(f"{what} must be C-contiguous")
    return view.tobytes()


def _as_u64(value: object, what: str) -> int:
    """Check that ``value`` is an int in [0, 2**64)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_U64:
        raise ValueError(f"{what} must be in [0, 2**64), got {value}")
    return value


# ----------------------------------------------------------------------------- header


def _nibble(value: int) -> tuple[int, bytes]:
    """The 4-bit field and the extension bytes of one header value."""
    if value < 8:
        return value, b""
    n = (value.bit_length() + 7) // 8
    return 0x8 | (n - 1), value.to_bytes(n, "big")


def encode_header(kid: int, ctr: int) -> bytes:
    """Encode ``(kid, ctr)`` minimally: config byte, then KID bytes, then CTR bytes."""
    kid = _as_u64(kid, "kid")
    ctr = _as_u64(ctr, "ctr")
    kn, kb = _nibble(kid)
    cn, cb = _nibble(ctr)
    return bytes([(kn << 4) | cn]) + kb + cb


def _read_field(nib: int, buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one header field starting at ``pos``; return (value, new position)."""
    if not nib & 0x8:
        return nib, pos
    n = (nib & 0x7) + 1
    raw = buf[pos : pos + n]
    if len(raw) < n:
        raise MalformedHeaderError("SFrame header is truncated")
    if raw[0] == 0:
        raise MalformedHeaderError("SFrame header field has a leading zero byte (non-minimal)")
    value = int.from_bytes(raw, "big")
    if value < 8:
        raise MalformedHeaderError("SFrame header field extended for a value below 8 (non-minimal)")
    return value, pos + n


def decode_header(buf: object) -> tuple[int, int, int]:
    """Strictly decode a header at the start of ``buf``; return ``(kid, ctr, header_len)``."""
    data = _as_bytes(buf, "buf")
    if not data:
        raise MalformedHeaderError("empty SFrame ciphertext")
    config = data[0]
    kid, pos = _read_field(config >> 4, data, 1)
    ctr, pos = _read_field(config & 0xF, data, pos)
    return kid, ctr, pos


# ----------------------------------------------------------------------------- crypto


def _hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """RFC 5869 extract; an empty salt means HashLen zero bytes."""
    if not salt:
        salt = bytes(hashlib.new(hash_name).digest_size)
    return hmac.new(salt, ikm, hash_name).digest()


def _hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 expand."""
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hash_name).digest()
        out += block
        counter += 1
    return out[:length]


def derive_key_salt(suite: CipherSuite | int, kid: int, base_key: bytes) -> tuple[bytes, bytes]:
    """RFC 9605 §4.4.2: ``(sframe_key, sframe_salt)`` of ``kid`` under ``base_key``."""
    suite = CipherSuite(suite)
    p = suite.params
    secret = _hkdf_extract(p.hash_name, b"", bytes(base_key))
    tail = struct.pack(">QH", kid, int(suite))
    key = _hkdf_expand(p.hash_name, secret, _KEY_LABEL + tail, p.Nk)
    salt = _hkdf_expand(p.hash_name, secret, _SALT_LABEL + tail, p.Nn)
    return key, salt


def make_nonce(salt: bytes, ctr: int) -> bytes:
    """``salt XOR ctr`` with the counter as a big-endian integer of len(salt) bytes."""
    return (int.from_bytes(salt, "big") ^ ctr).to_bytes(len(salt), "big")


def _ctr_hmac_tag(suite: CipherSuite, auth_key: bytes, nonce: bytes, aad: bytes, ct: bytes) -> bytes:
    """Truncated HMAC over the length-prefixed nonce, aad and ciphertext (§4.5.1)."""
    p = suite.params
    mac_in = struct.pack(">QQQ", len(aad), len(ct), p.Nt) + nonce + aad + ct
    return hmac.new(auth_key, mac_in, p.hash_name).digest()[: p.Nt]


def _aes_ctr(enc_key: bytes, nonce: bytes, data: bytes) -> bytes:
    """AES-CTR with the initial block nonce || 0x00000000."""
    ctx = Cipher(algorithms.AES(enc_key), modes.CTR(nonce + b"\0\0\0\0")).encryptor()
    return ctx.update(data) + ctx.finalize()


def aead_seal(suite: CipherSuite | int, key: bytes, nonce: bytes, aad: bytes, pt: bytes) -> bytes:
    """AEAD encryption of the suite; returns ``ciphertext || tag``."""
    suite = CipherSuite(suite)
    p = suite.params
    if p.gcm:
        return AESGCM(key).encrypt(nonce, pt, aad)
    enc_key, auth_key = key[: p.Nka], key[p.Nka :]
    ct = _aes_ctr(enc_key, nonce, pt)
    return ct + _ctr_hmac_tag(suite, auth_key, nonce, aad, ct)


def aead_open(suite: CipherSuite | int, key: bytes, nonce: bytes, aad: bytes, ct_tag: bytes) -> bytes:
    """AEAD decryption; raises AuthenticationError (or MalformedHeaderError if too short)."""
    suite = CipherSuite(suite)
    p = suite.params
    if len(ct_tag) < p.Nt:
        raise MalformedHeaderError("ciphertext is shorter than the authentication tag")
    if p.gcm:
        from cryptography.exceptions import InvalidTag

        try:
            return AESGCM(key).decrypt(nonce, ct_tag, aad)
        except InvalidTag:
            raise AuthenticationError("authentication failed") from None
    enc_key, auth_key = key[: p.Nka], key[p.Nka :]
    ct, tag = ct_tag[: len(ct_tag) - p.Nt], ct_tag[len(ct_tag) - p.Nt :]
    if not hmac.compare_digest(_ctr_hmac_tag(suite, auth_key, nonce, aad, ct), tag):
        raise AuthenticationError("authentication failed")
    return _aes_ctr(enc_key, nonce, ct)


# ----------------------------------------------------------------------------- replay


@dataclass
class ReplayWindow:
    """SRTP-style window (RFC 3711 §3.3.2) over counters.

    ``size`` counters ending at the highest accepted one (``top``) are tracked: a
    counter above ``top`` is new; one with ``top - ctr >= size`` is too old; inside
    the window it is a replay if already accepted.  ``size == 0`` disables checks.
    """

    size: int
    top: int | None = None
    seen: set[int] = field(default_factory=set)

    def check(self, ctr: int) -> None:
        """Raise ReplayError if ``ctr`` may not be accepted (no state change)."""
        if self.size == 0 or self.top is None or ctr > self.top:
            return
        if self.top - ctr >= self.size:
            raise ReplayError(f"counter {ctr} is below the replay window")
        if ctr in self.seen:
            raise ReplayError(f"counter {ctr} was already accepted")

    def accept(self, ctr: int) -> None:
        """Record ``ctr`` as accepted (call only after the tag verified)."""
        if self.size == 0:
            return
        if self.top is None or ctr > self.top:
            self.top = ctr
            low = ctr - self.size + 1
            self.seen = {c for c in self.seen if c >= low}
        self.seen.add(ctr)


# ----------------------------------------------------------------------------- context


@dataclass
class _Key:
    """Derived material of one KID plus its direction-specific state."""

    key: bytes = field(repr=False)
    salt: bytes = field(repr=False)
    send: bool
    next_ctr: int = 0  #: send keys: next counter; 2**64 once exhausted
    window: ReplayWindow | None = None  #: receive keys


class Context:
    """Reference SFrame context with the core's semantics (see module docstring)."""

    def __init__(self, suite: CipherSuite | int, *, replay_window: int = 128) -> None:
        try:
            self.suite = CipherSuite(suite)
        except (ValueError, TypeError):
            raise ValueError(f"unknown SFrame cipher suite {suite!r}") from None
        if isinstance(replay_window, bool) or not isinstance(replay_window, int):
            raise TypeError("replay_window must be an int")
        if replay_window < 0:
            raise ValueError("replay_window must be >= 0")
        self.replay_window = replay_window
        self._keys: dict[int, _Key] = {}
        self._retired: dict[int, int] = {}  # send KID -> first unused counter

    def __repr__(self) -> str:
        nsend = sum(k.send for k in self._keys.values())
        return f"reference.Context(suite={self.suite.name}, send_keys={nsend}, receive_keys={len(self._keys) - nsend})"

    def _make(self, kid: int, base_key: object, send: bool) -> _Key:
        raw = _as_bytes(base_key, "base_key")
        if not raw:
            raise ValueError("base_key must not be empty")
        key, salt = derive_key_salt(self.suite, kid, raw)
        window = None if send else ReplayWindow(self.replay_window)
        return _Key(key, salt, send, window=window)

    def add_send_key(self, kid: int, base_key: object, *, start_counter: int | None = None) -> None:
        """Install a send key; the counter resumes where this KID stopped (or at ``start_counter``)."""
        kid = _as_u64(kid, "kid")
        if kid in self._keys:
            raise ValueError(f"KID {kid} already has a key")
        floor = self._retired.get(kid, 0)
        if start_counter is not None:
            start = _as_u64(start_counter, "start_counter")
            if start < floor:
                raise ValueError(f"start_counter would reuse counters of KID {kid}")
            floor = start
        entry = self._make(kid, base_key, True)
        entry.next_ctr = floor
        self._keys[kid] = entry

    def add_receive_key(self, kid: int, base_key: object) -> None:
        """Install or replace a receive key (a replacement starts a fresh window)."""
        kid = _as_u64(kid, "kid")
        old = self._keys.get(kid)
        if old is not None and old.send:
            raise ValueError(f"KID {kid} is a send key")
        self._keys[kid] = self._make(kid, base_key, False)

    def remove_key(self, kid: int) -> None:
        """Forget a key; a send KID's counter position is remembered."""
        kid = _as_u64(kid, "kid")
        entry = self._keys.pop(kid, None)
        if entry is None:
            raise UnknownKeyError(f"no key for KID {kid}")
        if entry.send:
            self._retired[kid] = entry.next_ctr

    def has_key(self, kid: int) -> bool:
        """True if ``kid`` has a key of either direction."""
        return _as_u64(kid, "kid") in self._keys

    def _send(self, kid: int) -> _Key:
        kid = _as_u64(kid, "kid")
        entry = self._keys.get(kid)
        if entry is None or not entry.send:
            raise UnknownKeyError(f"no send key for KID {kid}")
        return entry

    def next_counter(self, kid: int) -> int:
        """Counter of the next frame of ``kid``."""
        entry = self._send(kid)
        if entry.next_ctr > MAX_U64:
            raise CounterExhaustedError(f"send counter of KID {kid} is exhausted")
        return entry.next_ctr

    def encrypt(self, kid: int, frame: object, metadata: object = b"") -> bytes:
        """``header || AEAD(key, nonce, header || metadata, frame)``; uses one counter."""
        entry = self._send(kid)
        pt = _as_bytes(frame, "frame")
        meta = _as_bytes(metadata, "metadata")
        ctr = entry.next_ctr
        if ctr > MAX_U64:
            raise CounterExhaustedError(f"send counter of KID {kid} is exhausted")
        entry.next_ctr = ctr + 1
        return self._seal(entry, kid, ctr, pt, meta)

    def _seal(self, entry: _Key, kid: int, ctr: int, pt: bytes, meta: bytes) -> bytes:
        """Build one ciphertext for an explicit counter (no counter bookkeeping)."""
        hdr = encode_header(kid, ctr)
        return hdr + aead_seal(self.suite, entry.key, make_nonce(entry.salt, ctr), hdr + meta, pt)

    def encrypt_batch(self, kid: int, frames: list, metadata: object = b"") -> list[bytes]:
        """All-or-nothing batch under one KID."""
        entry = self._send(kid)
        if entry.next_ctr + len(frames) - 1 > MAX_U64:
            raise CounterExhaustedError(f"send counter of KID {kid} cannot cover the batch")
        return [self.encrypt(kid, f, metadata) for f in frames]

    def decrypt_with_kid(self, ciphertext: object, metadata: object = b"") -> tuple[int, int, bytes]:
        """Parse, look up, replay-check, authenticate and decrypt; ``(kid, ctr, pt)``."""
        data = _as_bytes(ciphertext, "ciphertext")
        meta = _as_bytes(metadata, "metadata")
        kid, ctr, hlen = decode_header(data)
        if len(data) - hlen < self.suite.Nt:
            raise MalformedHeaderError("ciphertext is shorter than the authentication tag")
        entry = self._keys.get(kid)
        if entry is None or entry.send:
            raise UnknownKeyError(f"no receive key for KID {kid}")
        assert entry.window is not None
        entry.window.check(ctr)
        hdr = data[:hlen]
        pt = aead_open(self.suite, entry.key, make_nonce(entry.salt, ctr), hdr + meta, data[hlen:])
        entry.window.accept(ctr)
        return kid, ctr, pt

    def decrypt(self, ciphertext: object, metadata: object = b"") -> bytes:
        """Decrypt one ciphertext (KID from its header)."""
        return self.decrypt_with_kid(ciphertext, metadata)[2]

