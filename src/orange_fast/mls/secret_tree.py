"""The secret tree and its hash ratchets (RFC 9420 §9), plus sender-data keys (§6.3.2).

Public names:

* ``SecretTree(suite, encryption_secret, n_leaves, *, max_forward=1024, max_retained=64)``:
  ``key_nonce(leaf, handshake, generation) -> (key, nonce)`` (no observable state change),
  ``consume(leaf, handshake, generation)`` (after a successful decryption: deletes that key, keeps skipped
  keys of earlier generations up to ``max_retained`` per ratchet), ``next_send(leaf, handshake) ->
  (generation, key, nonce)`` (advances the sender's own ratchet; a key is never handed out twice),
  ``copy()``, ``to_bytes()`` / ``SecretTree.from_bytes(suite, data)``.
* ``HashRatchet`` -- one handshake or application ratchet.
* ``sender_data_key_nonce(suite, sender_data_secret, ciphertext) -> (key, nonce)``
* ``apply_reuse_guard(nonce, reuse_guard) -> bytes``
* ``MAX_GENERATION`` (2**32 - 1)

Consumed node secrets are erased as soon as their children are derived (forward secrecy); consumed
ratchet keys are deleted. Errors: ``ReplayedMessageError`` (key already used or discarded),
``TooDistantGenerationError`` (more than ``max_forward`` generations ahead), ``KeyExhaustedError``,
``ValueError`` for a leaf index outside the tree.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Tuple

from .codec import Reader, Writer
from .errors import DecodeError, KeyExhaustedError, ReplayedMessageError, TooDistantGenerationError
from .suite import Suite, get_suite

__all__ = [
    "SecretTree",
    "HashRatchet",
    "sender_data_key_nonce",
    "apply_reuse_guard",
    "MAX_GENERATION",
]

MAX_GENERATION = (1 << 32) - 1


def sender_data_key_nonce(suite: "int | Suite", sender_data_secret: bytes, ciphertext: bytes) -> Tuple[bytes, bytes]:
    """Sender-data key and nonce from the first Nh bytes (the sample) of the content ciphertext."""
    s = get_suite(suite)
    sample = bytes(ciphertext[: s.nh])
    return (s.expand_with_label(sender_data_secret, "key", sample, s.nk),
            s.expand_with_label(sender_data_secret, "nonce", sample, s.nn))


def apply_reuse_guard(nonce: bytes, reuse_guard: bytes) -> bytes:
    """XOR the 4-byte reuse guard into the first 4 bytes of the nonce."""
    if len(reuse_guard) != 4:
        raise ValueError("reuse_guard must be 4 bytes")
    return bytes(a ^ b for a, b in zip(nonce[:4], reuse_guard)) + bytes(nonce[4:])


class HashRatchet:
    """One hash ratchet: ``secret`` is the ratchet secret of generation ``next_generation``."""

    __slots__ = ("suite", "next_generation", "_secret", "_skipped", "max_forward", "max_retained")

    def __init__(self, suite: Suite, secret: bytes, next_generation: int = 0, *, max_forward: int = 1024,
                 max_retained: int = 64) -> None:
        self.suite = suite
        self._secret = secret
        self.next_generation = next_generation
        self._skipped: "OrderedDict[int, Tuple[bytes, bytes]]" = OrderedDict()
        self.max_forward = max_forward
        self.max_retained = max_retained

    def __repr__(self) -> str:
        return f"HashRatchet(next_generation={self.next_generation}, retained={len(self._skipped)})"

    def _key_nonce_next(self, secret: bytes, gen: int) -> Tuple[bytes, bytes, bytes]:
        s = self.suite
        return (s.derive_tree_secret(secret, "key", gen, s.nk), s.derive_tree_secret(secret, "nonce", gen, s.nn),
                s.derive_tree_secret(secret, "secret", gen, s.nh))

    def key_nonce(self, generation: int) -> Tuple[bytes, bytes]:
        """Key and nonce for ``generation`` without changing the ratchet."""
        if generation < self.next_generation:
            kn = self._skipped.get(generation)
            if kn is None:
                raise ReplayedMessageError("key for this generation was already used or discarded")
            return kn
        if generation > MAX_GENERATION:
            raise TooDistantGenerationError("generation out of range")
        if generation - self.next_generation > self.max_forward:
            raise TooDistantGenerationError("generation too far ahead")
        secret = self._secret
        for g in range(self.next_generation, generation):
            secret = self.suite.derive_tree_secret(secret, "secret", g, self.suite.nh)
        key, nonce, _ = self._key_nonce_next(secret, generation)
        return key, nonce

    def consume(self, generation: int) -> None:
        """Forget the key of ``generation``; retain skipped earlier ones (bounded)."""
        if generation < self.next_generation:
            if self._skipped.pop(generation, None) is None:
                raise ReplayedMessageError("key for this generation was already used or discarded")
            return
        if generation - self.next_generation > self.max_forward or generation > MAX_GENERATION:
            raise TooDistantGenerationError("generation too far ahead")
        secret = self._secret
        for g in range(self.next_generation, generation + 1):
            key, nonce, nxt = self._key_nonce_next(secret, g)
            if g < generation and self.max_retained > 0:
                self._skipped[g] = (key, nonce)
                while len(self._skipped) > self.max_retained:
                    self._skipped.popitem(last=False)
            secret = nxt
        self._secret = secret
        self.next_generation = generation + 1

    def next_send(self) -> Tuple[int, bytes, bytes]:
        """Own sending: ``(generation, key, nonce)`` and advance."""
        gen = self.next_generation
        if gen > MAX_GENERATION:
            raise KeyExhaustedError("ratchet exhausted")
        key, nonce, nxt = self._key_nonce_next(self._secret, gen)
        self._secret = nxt
        self.next_generation = gen + 1
        return gen, key, nonce

    def copy(self) -> "HashRatchet":
        """An independent copy."""
        r = HashRatchet(self.suite, self._secret, self.next_generation, max_forward=self.max_forward,
                        max_retained=self.max_retained)
        r._skipped = OrderedDict(self._skipped)
        return r

    def encode(self, w: Writer) -> None:
        w.u64(self.next_generation).opaque(self._secret).u32(self.max_forward).u32(self.max_retained)
        w.vector(list(self._skipped.items()), lambda ww, it: ww.u32(it[0]).opaque(it[1][0]).opaque(it[1][1]))

    @classmethod
    def decode(cls, suite: Suite, r: Reader) -> "HashRatchet":
        nxt = r.u64()
        secret = r.opaque()
        mf = r.u32()
        mr = r.u32()
        rat = cls(suite, secret, nxt, max_forward=mf, max_retained=mr)
        for gen, key, nonce in r.vector(lambda rr: (rr.u32(), rr.opaque(), rr.opaque())):
            rat._skipped[gen] = (key, nonce)
        return rat


def _level(x: int) -> int:
    k = 0
    while (x >> k) & 1:
        k += 1
    return k


class SecretTree:
    """Per-epoch secret tree over ``n_leaves`` leaves (padded to a power of two)."""

    __slots__ = ("suite", "n_leaves", "_width", "_nodes", "_ratchets", "max_forward", "max_retained")

    def __init__(self, suite: "int | Suite", encryption_secret: bytes, n_leaves: int, *, max_forward: int = 1024,
                 max_retained: int = 64) -> None:
        if n_leaves < 1:
            raise ValueError("a secret tree needs at least one leaf")
        self.suite = get_suite(suite)
        self.n_leaves = n_leaves
        w = 1
        while w < n_leaves:
            w <<= 1
        self._width = w
        root = w - 1
        self._nodes: Dict[int, bytes] = {root: bytes(encryption_secret)}
        self._ratchets: Dict[Tuple[int, bool], HashRatchet] = {}
        self.max_forward = max_forward
        self.max_retained = max_retained

    def __repr__(self) -> str:
        return f"SecretTree(n_leaves={self.n_leaves}, held_nodes={len(self._nodes)}, ratchets={len(self._ratchets)})"

    def _derive_leaf(self, leaf: int) -> None:
        target = 2 * leaf
        x = self._width - 1
        # walk down from the root to the lowest held ancestor
        path = []
        while True:
            path.append(x)
            if x == target:
                break
            k = _level(x)
            x = x ^ (0x01 << (k - 1)) if target < x else x ^ (0x03 << (k - 1))
        start = None
        for node in reversed(path):
            if node in self._nodes:
                start = node
                break
        if start is None:  # pragma: no cover - cannot happen: ratchets exist for consumed leaves
            raise ReplayedMessageError("leaf secret no longer available")
        s = self.suite
        x = start
        secret = self._nodes.pop(x)
        while x != target:
            k = _level(x)
            left, right = x ^ (0x01 << (k - 1)), x ^ (0x03 << (k - 1))
            ls = s.expand_with_label(secret, "tree", b"left", s.nh)
            rs = s.expand_with_label(secret, "tree", b"right", s.nh)
            if target < x:
                self._nodes[right] = rs
                x, secret = left, ls
            else:
                self._nodes[left] = ls
                x, secret = right, rs
        for hs in (True, False):
            label = "handshake" if hs else "application"
            self._ratchets[(leaf, hs)] = HashRatchet(s, s.expand_with_label(secret, label, b"", s.nh),
                                                     max_forward=self.max_forward, max_retained=self.max_retained)

    def copy(self) -> "SecretTree":
        """An independent copy (process a message on a copy, keep it only if everything validated)."""
        t = SecretTree.__new__(SecretTree)
        t.suite = self.suite
        t.n_leaves = self.n_leaves
        t._width = self._width
        t._nodes = dict(self._nodes)
        t._ratchets = {k: r.copy() for k, r in self._ratchets.items()}
        t.max_forward = self.max_forward
        t.max_retained = self.max_retained
        return t

    def ratchet(self, leaf: int, handshake: bool) -> HashRatchet:
        """The ratchet of ``leaf`` (derived on first use)."""
        if not 0 <= leaf < self.n_leaves:
            raise ValueError("leaf index outside the secret tree")
        key = (leaf, bool(handshake))
        r = self._ratchets.get(key)
        if r is None:
            self._derive_leaf(leaf)
            r = self._ratchets[key]
        return r

    def key_nonce(self, leaf: int, handshake: bool, generation: int) -> Tuple[bytes, bytes]:
        return self.ratchet(leaf, handshake).key_nonce(generation)

    def consume(self, leaf: int, handshake: bool, generation: int) -> None:
        self.ratchet(leaf, handshake).consume(generation)

    def next_send(self, leaf: int, handshake: bool) -> Tuple[int, bytes, bytes]:
        return self.ratchet(leaf, handshake).next_send()

    def to_bytes(self) -> bytes:
        w = Writer().u16(int(self.suite.cipher_suite)).u32(self.n_leaves).u32(self.max_forward).u32(self.max_retained)
        w.vector(sorted(self._nodes.items()), lambda ww, it: ww.u32(it[0]).opaque(it[1]))

        def enc_r(ww: Writer, it: Tuple[Tuple[int, bool], HashRatchet]) -> None:
            ww.u32(it[0][0]).u8(1 if it[0][1] else 0)
            it[1].encode(ww)

        w.vector(sorted(self._ratchets.items()), enc_r)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, suite: "int | Suite", data: bytes) -> "SecretTree":
        s = get_suite(suite)
        r = Reader(data)
        if r.u16() != int(s.cipher_suite):
            raise DecodeError("SecretTree of another cipher suite")
        n = r.u32()
        mf = r.u32()
        mr = r.u32()
        if n < 1:
            raise DecodeError("empty secret tree")
        tree = cls(s, bytes(s.nh), n, max_forward=mf, max_retained=mr)
        tree._nodes = {}
        for idx, sec in r.vector(lambda rr: (rr.u32(), rr.opaque())):
            if idx >= 2 * tree._width - 1:
                raise DecodeError("secret tree node index out of range")
            tree._nodes[idx] = sec

        def dec_r(rr: Reader) -> Tuple[Tuple[int, bool], HashRatchet]:
            leaf = rr.u32()
            hs = rr.u8()
            if hs > 1 or leaf >= n:
                raise DecodeError("bad ratchet entry")
            return (leaf, hs == 1), HashRatchet.decode(s, rr)

        tree._ratchets = dict(r.vector(dec_r))
        r.finish()
        return tree


