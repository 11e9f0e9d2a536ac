"""Fuzzing the MLS decoders and framing: truncation of every struct, random and mutated MLSMessage bytes.

Only ``MLSError`` subclasses may escape; a successful decode must re-encode byte-identically (the encoding is
canonical).
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.errors import DecodeError, MLSError
from orange_fast.mls.framing import unprotect
from orange_fast.mls.messages import (
    Add,
    AuthenticatedContent,
    Commit,
    ExternalInit,
    GroupContext,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    KeyPackage,
    LeafNode,
    MLSMessage,
    PreSharedKey,
    PrivateMessageContent,
    RatchetTreeExt,
    ReInit,
    Remove,
    Update,
    Welcome,
    ContentType,
)
from orange_fast.mls.secret_tree import SecretTree

EXAMPLES = int(os.environ.get("ORANGE_FAST_HYPOTHESIS_EXAMPLES", "200"))
REL = "mls/messages.json"
VECTORS = read_vectors(REL) or []
PREL = "mls/message-protection.json"
PVECTORS = read_vectors(PREL) or []
h = bytes.fromhex

FIELDS = {
    "mls_welcome": MLSMessage, "mls_group_info": MLSMessage, "mls_key_package": MLSMessage,
    "ratchet_tree": RatchetTreeExt, "group_secrets": GroupSecrets, "add_proposal": Add,
    "update_proposal": Update, "remove_proposal": Remove, "pre_shared_key_proposal": PreSharedKey,
    "re_init_proposal": ReInit, "external_init_proposal": ExternalInit,
    "group_context_extensions_proposal": GroupContextExtensions, "commit": Commit,
    "public_message_application": MLSMessage, "public_message_proposal": MLSMessage,
    "public_message_commit": MLSMessage, "private_message": MLSMessage,
}
ALL_STRUCTS = sorted({*FIELDS.values(), Welcome, GroupInfo, LeafNode, GroupContext, AuthenticatedContent},
                     key=lambda c: c.__name__)


def _samples() -> list[bytes]:
    out = []
    for v in VECTORS[:6]:
        for f in ("mls_welcome", "mls_group_info", "mls_key_package", "public_message_application",
                  "public_message_proposal", "public_message_commit", "private_message"):
            out.append(h(v[f]))
    for v in PVECTORS:
        for f in ("proposal_pub", "commit_pub", "proposal_priv", "commit_priv", "application_priv"):
            out.append(h(v[f]))
    return out


SAMPLES = _samples()


def _decode_canonical(cls: type, data: bytes) -> None:
    try:
        obj = cls.from_bytes(data)
    except MLSError:
        return
    assert obj.to_bytes() == data


@skip_if_missing(REL)
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_truncation_raises_decode_error(field: str) -> None:
    cls = FIELDS[field]
    for v in VECTORS[:2]:
        data = h(v[field])
        for n in range(len(data)):
            with pytest.raises(DecodeError):
                cls.from_bytes(data[:n])


@pytest.mark.parametrize("cls", ALL_STRUCTS, ids=lambda c: c.__name__)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_only_mls_errors(cls: type, data: bytes) -> None:
    _decode_canonical(cls, data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.binary(max_size=300), ct=st.sampled_from(list(ContentType)))
def test_private_message_content_random(data: bytes, ct: ContentType) -> None:
    try:
        pmc = PrivateMessageContent.from_bytes(data, ct)
    except MLSError:
        return
    assert pmc.to_bytes(ct) == data


@skip_if_missing(REL)
@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(idx=st.integers(0, 10**6), seed=st.integers(0, 2**32 - 1), n_mut=st.integers(1, 4))
def test_mutated_mls_messages(idx: int, seed: int, n_mut: int) -> None:
    rnd = random.Random(seed)
    data = bytearray(SAMPLES[idx % len(SAMPLES)])
    for _ in range(n_mut):
        op = rnd.randrange(4)
        pos = rnd.randrange(len(data)) if data else 0
        if op == 0 and data:
            data[pos] ^= 1 << rnd.randrange(8)
        elif op == 1 and data:
            data[pos] = rnd.randrange(256)
        elif op == 2:
            data.insert(pos, rnd.randrange(256))
        elif data:
            del data[pos]
    _decode_canonical(MLSMessage, bytes(data))


@skip_if_missing(PREL)
@settings(max_examples=EXAMPLES, deadline=None)
@given(which=st.sampled_from(["proposal_pub", "commit_pub", "proposal_priv", "commit_priv", "application_priv"]),
       vi=st.integers(0, 6), pos=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_bitflipped_protected_messages_rejected(which: str, vi: int, pos: int, bit: int) -> None:
    v = PVECTORS[vi % len(PVECTORS)]
    data = bytearray(h(v[which]))
    data[pos % len(data)] ^= 1 << bit
    gc = GroupContext(1, v["cipher_suite"], h(v["group_id"]), v["epoch"], h(v["tree_hash"]),
                      h(v["confirmed_transcript_hash"]), [])
    pub = h(v["signature_pub"])
    with pytest.raises(MLSError):
        unprotect(v["cipher_suite"], bytes(data), gc, membership_key=h(v["membership_key"]),
                  secret_tree=SecretTree(v["cipher_suite"], h(v["encryption_secret"]), 2),
                  sender_data_secret=h(v["sender_data_secret"]),
                  signature_key_for=lambda leaf: pub if leaf == 1 else None)


def test_key_package_from_bytes_requires_mls_message() -> None:
    with pytest.raises(DecodeError):
        KeyPackage.from_bytes(b"\x00\x01\x00\x03")
