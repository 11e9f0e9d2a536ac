"""Handshake messages of the session layer as entries of the delivery service's log.

The committer (:mod:`orange_fast.session.committer`) speaks in bodies
(:class:`~.committer.KeyPackageMsg`, :class:`~.committer.CreateMsg`,
:class:`~.committer.CommitMsg`); the delivery service stores opaque ``(kind, payload)``
messages and presence notices.  This module maps one onto the other.

Kinds and payloads (integers big-endian, ``opaque8/16/32`` = length prefix of 1/2/4 bytes)::

    of.kp      u8 version=1 | opaque32 key_package        (an MLSMessage(KeyPackage))
    of.create  u8 version=1 | opaque8 kp_id
    of.commit  u8 version=1 | u32 gen | u64 epoch
               | u16 n_adds    { opaque8 client | opaque8 kp_id }
               | u16 n_removes { opaque8 client | opaque8 kp_id }
               | opaque32 commit | u8 has_welcome | [opaque32 welcome]

``kp_id`` is the KeyPackageRef (RFC 9420 §5.2) of the KeyPackage, computed by every
reader, never taken from the sender.  A commit names its adds by reference only; readers
restore the KeyPackage bytes from the ``of.kp`` entry that published them (every client
reads the room's log from its start), so a commit cannot smuggle in a KeyPackage that was
not published and checked.

Decoding is deterministic and depends only on the log, so every client accepts or rejects
the same entries.  A rejected message (malformed, unknown kind, oversize, a KeyPackage
that fails validation, whose identity is not its sender's, whose lifetime does not cover
its publication, or that reuses a key seen before in the room, a commit that names an
unknown KeyPackage) becomes a *no-op* entry
whose body is :class:`~.committer.Rejected` (its sender and why), which the committer's
fold ignores, so the sequence numbers stay contiguous.

The lifetime check uses the entry's timestamp (the server's clock, the same for every
reader), not the reader's clock: a KeyPackage must have been valid for
:data:`LIFETIME_BEFORE` seconds when it was published and stay valid for
:data:`LIFETIME_AFTER` more, so the committer's MLS commit (which checks lifetimes
against its own clock) accepts it although the decoder never looks at a local clock.

The identity check is what makes the server's authentication reach MLS: the delivery
service stamps every entry with the client id it authenticated, and a KeyPackage is only
accepted if its credential identity is exactly that id.  A member's credential can then
never change (see :mod:`.mlsops`), so every leaf's identity is the id the server
authenticated when the leaf's KeyPackage was published.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..delivery import EntryType
from ..delivery import LogEntry as DeliveryEntry
from ..mls import CipherSuite, KeyPackage, MLSError, validate_key_package
from ..mls.suite import get_suite
from .committer import (
    Body,
    CommitMsg,
    CreateMsg,
    DecodedEntry,
    Evicted,
    Joined,
    KeyPackageMsg,
    Left,
    MemberRef,
    Rejected,
    UpdateProposalMsg,
    Waiting,
)
from .errors import WireError

__all__ = [
    "WIRE_VERSION",
    "KIND_KEY_PACKAGE",
    "KIND_CREATE",
    "KIND_COMMIT",
    "KIND_UPDATE",
    "MAX_PAYLOAD",
    "LIFETIME_BEFORE",
    "LIFETIME_AFTER",
    "WireError",
    "encode_body",
    "parse_payload",
    "WireDecoder",
]

WIRE_VERSION = 1
KIND_KEY_PACKAGE = "of.kp"
KIND_CREATE = "of.create"
KIND_COMMIT = "of.commit"
KIND_UPDATE = "of.update"
MAX_PAYLOAD = 1 << 20
"""Largest handshake payload a client accepts (the delivery service's default limit)."""
MAX_REFS = 4096
"""Most adds or removes one commit may name."""
LIFETIME_BEFORE = 300
"""A KeyPackage must be valid since at least this many seconds before its entry's timestamp."""
LIFETIME_AFTER = 86400
"""...and stay valid at least this many seconds after it."""


# --------------------------------------------------------------------------- encoding


def _opaque(data: bytes, width: int) -> bytes:
    limit = (1 << (8 * width)) - 1
    if len(data) > limit:
        raise WireError("field too long")
    return len(data).to_bytes(width, "big") + data


def _ref(ref: MemberRef) -> bytes:
    return _opaque(ref.client.encode("ascii"), 1) + _opaque(ref.kp_id, 1)


def encode_body(body: Body) -> tuple[str, bytes]:
    """``(kind, payload)`` of a committer body for :meth:`DeliveryClient.append`.

    The KeyPackage of a :class:`KeyPackageMsg` is sent as is; its ``kp_id`` is implied
    (readers recompute it).
    """
    v = bytes([WIRE_VERSION])
    if isinstance(body, KeyPackageMsg):
        return KIND_KEY_PACKAGE, v + _opaque(body.key_package, 4)
    if isinstance(body, CreateMsg):
        return KIND_CREATE, v + _opaque(body.kp_id, 1)
    if isinstance(body, CommitMsg):
        if len(body.adds) > MAX_REFS or len(body.removes) > MAX_REFS:
            raise WireError("too many adds or removes")
        parts = [v, struct.pack(">IQ", body.gen, body.epoch), struct.pack(">H", len(body.adds))]
        parts += [_ref(w.ref) for w in body.adds]
        parts.append(struct.pack(">H", len(body.removes)))
        parts += [_ref(r) for r in body.removes]
        parts.append(_opaque(body.commit, 4))
        if body.welcome is None:
            parts.append(b"\x00")
        else:
            parts.append(b"\x01" + _opaque(body.welcome, 4))
        return KIND_COMMIT, b"".join(parts)
    if isinstance(body, UpdateProposalMsg):
        return KIND_UPDATE, v + struct.pack(">IQ", body.gen, body.epoch) + _opaque(body.proposal, 4)
    raise WireError(f"cannot encode {type(body).__name__}")


# --------------------------------------------------------------------------- parsing


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WireError("truncated payload")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def opaque(self, width: int) -> bytes:
        return self.take(self.uint(width))

    def ref(self) -> tuple[str, bytes]:
        raw = self.opaque(1)
        try:
            client = raw.decode("ascii")
        except UnicodeDecodeError:
            raise WireError("client id is not ASCII") from None
        if not client:
            raise WireError("empty client id")
        kp_id = self.opaque(1)
        if not kp_id:
            raise WireError("empty kp_id")
        return client, kp_id

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise WireError("trailing bytes")


@dataclass(frozen=True)
class ParsedCommit:
    """A syntactically valid ``of.commit`` payload (adds still by reference)."""

    gen: int
    epoch: int
    adds: tuple[tuple[str, bytes], ...]
    removes: tuple[tuple[str, bytes], ...]
    commit: bytes
    welcome: bytes | None


def parse_payload(kind: str, payload: bytes) -> bytes | ParsedCommit | UpdateProposalMsg:
    """Parse one handshake payload: the KeyPackage bytes (``of.kp``), the kp_id (``of.create``),
    a :class:`ParsedCommit` (``of.commit``) or an :class:`UpdateProposalMsg` (``of.update``).
    Raises :class:`WireError`."""
    if not isinstance(payload, (bytes, bytearray)):
        raise WireError("payload must be bytes")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise WireError("payload too large")
    if kind not in (KIND_KEY_PACKAGE, KIND_CREATE, KIND_COMMIT, KIND_UPDATE):
        raise WireError("unknown kind")
    r = _Reader(payload)
    if r.uint(1) != WIRE_VERSION:
        raise WireError("unsupported wire version")
    if kind == KIND_KEY_PACKAGE:
        kp = r.opaque(4)
        r.finish()
        if not kp:
            raise WireError("empty KeyPackage")
        return kp
    if kind == KIND_CREATE:
        kp_id = r.opaque(1)
        r.finish()
        if not kp_id:
            raise WireError("empty kp_id")
        return kp_id
    if kind == KIND_UPDATE:
        gen = r.uint(4)
        epoch = r.uint(8)
        proposal = r.opaque(4)
        r.finish()
        if not proposal:
            raise WireError("empty proposal")
        return UpdateProposalMsg(gen, epoch, proposal)
    gen = r.uint(4)
    epoch = r.uint(8)
    adds = tuple(r.ref() for _ in range(r.uint(2)))
    removes = tuple(r.ref() for _ in range(r.uint(2)))
    commit = r.opaque(4)
    flag = r.uint(1)
    if flag not in (0, 1):
        raise WireError("bad welcome flag")
    welcome = r.opaque(4) if flag else None
    r.finish()
    if not commit:
        raise WireError("empty commit")
    if len(adds) > MAX_REFS or len(removes) > MAX_REFS:
        raise WireError("too many adds or removes")
    return ParsedCommit(gen, epoch, adds, removes, commit, welcome)


# --------------------------------------------------------------------------- the decoder


@dataclass(frozen=True)
class _KnownKP:
    client: str
    key_package: bytes
    signature_key: bytes


class WireDecoder:
    """Stateful decoder of one room's log (feed every entry in order, from seq 1).

    It remembers every accepted KeyPackage (by reference) so that commits can name them
    and so that the MLS adapter can find the leaf of a :class:`MemberRef`.
    """

    def __init__(self, suite: int | CipherSuite) -> None:
        self.suite = CipherSuite(int(suite))
        self._s = get_suite(self.suite)
        self._kps: dict[bytes, _KnownKP] = {}
        self._by_signature_key: dict[bytes, bytes] = {}
        self._seen_keys: set[bytes] = set()

    def signature_key(self, ref: MemberRef) -> bytes | None:
        """The signature key of the KeyPackage ``ref`` names (None if unknown or not the client's)."""
        known = self._kps.get(ref.kp_id)
        if known is None or known.client != ref.client:
            return None
        return known.signature_key

    def key_package_of(self, signature_key: bytes) -> bytes | None:
        """The ``kp_id`` of the accepted KeyPackage with this signature key, or None.

        Unique: a KeyPackage reusing a signature key seen before in the room is rejected.
        """
        return self._by_signature_key.get(bytes(signature_key))

    def key_package_ref(self, key_package: bytes) -> bytes:
        """The KeyPackageRef of ``key_package`` (raises WireError if it does not parse)."""
        try:
            return KeyPackage.from_bytes(key_package).ref(self._s)
        except (MLSError, ValueError) as exc:
            raise WireError(f"bad KeyPackage: {type(exc).__name__}") from None

    def decode(self, d: DeliveryEntry) -> DecodedEntry:
        """Map a delivery entry to a committer entry (a rejected message gets a :class:`Rejected` body)."""
        if d.entry_type == EntryType.JOINED:
            return DecodedEntry(d.seq, Joined(d.sender), None)
        if d.entry_type == EntryType.LEFT:
            return DecodedEntry(d.seq, Left(d.sender), None)
        if d.entry_type == EntryType.EVICTED:
            return DecodedEntry(d.seq, Evicted(d.sender), None)
        try:
            body = self._message(d.sender, d.kind, d.payload, d.timestamp_ms // 1000)
        except WireError as exc:
            return DecodedEntry(d.seq, Rejected(d.sender, str(exc)), d.sender)
        return DecodedEntry(d.seq, body, d.sender)

    def _message(self, sender: str, kind: str, payload: bytes, now: int) -> Body:
        parsed = parse_payload(kind, payload)
        if kind == KIND_KEY_PACKAGE:
            assert isinstance(parsed, bytes)
            return self._key_package(sender, parsed, now)
        if kind == KIND_CREATE:
            assert isinstance(parsed, bytes)
            return CreateMsg(parsed)
        if kind == KIND_UPDATE:
            assert isinstance(parsed, UpdateProposalMsg)
            return parsed
        assert isinstance(parsed, ParsedCommit)
        adds = []
        for client, kp_id in parsed.adds:
            known = self._kps.get(kp_id)
            if known is None or known.client != client:
                raise WireError("commit adds an unknown KeyPackage")
            adds.append(Waiting(MemberRef(client, kp_id), known.key_package))
        removes = tuple(MemberRef(c, k) for c, k in parsed.removes)
        return CommitMsg(parsed.gen, parsed.epoch, tuple(adds), removes, parsed.commit, parsed.welcome)

    def _key_package(self, sender: str, data: bytes, now: int) -> KeyPackageMsg:
        try:
            kp = KeyPackage.from_bytes(data)
            if kp.to_bytes() != data:
                raise WireError("KeyPackage is not canonically encoded")
            validate_key_package(kp, self.suite, check_lifetime=False)
            ref = kp.ref(self._s)
        except WireError:
            raise
        except (MLSError, ValueError, TypeError, IndexError, KeyError) as exc:
            raise WireError(f"invalid KeyPackage: {type(exc).__name__}") from None
        leaf = kp.leaf_node
        if bytes(leaf.credential.identity) != sender.encode("ascii"):
            raise WireError("KeyPackage identity is not its sender's")
        life = leaf.lifetime
        if life is None or not (life.not_before <= now - LIFETIME_BEFORE and now + LIFETIME_AFTER <= life.not_after):
            raise WireError("KeyPackage lifetime does not cover its publication")
        keys = (b"s" + bytes(leaf.signature_key), b"e" + bytes(leaf.encryption_key), b"i" + bytes(kp.init_key))
        if any(k in self._seen_keys for k in keys) or ref in self._kps:
            raise WireError("KeyPackage reuses a key seen before in this room")
        self._seen_keys.update(keys)
        self._kps[ref] = _KnownKP(sender, data, bytes(leaf.signature_key))
        self._by_signature_key[bytes(leaf.signature_key)] = ref
        return KeyPackageMsg(ref, data)
