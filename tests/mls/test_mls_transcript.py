"""transcript-hashes.json for every suite."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.messages import AuthenticatedContent, ContentType
from orange_fast.mls.transcript import (
    confirmation_tag,
    next_transcript_hashes,
    verify_confirmation_tag,
)

REL = "mls/transcript-hashes.json"
VECTORS = read_vectors(REL) or []
h = bytes.fromhex


@skip_if_missing(REL)
def test_suites() -> None:
    assert {v["cipher_suite"] for v in VECTORS} == {1, 2, 3, 4, 5, 6, 7}


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=[f"suite{v['cipher_suite']}" for v in VECTORS])
def test_transcript_hashes(v: dict) -> None:
    cs = v["cipher_suite"]
    raw = h(v["authenticated_content"])
    ac = AuthenticatedContent.from_bytes(raw)
    assert ac.to_bytes() == raw
    assert ac.content.content_type == ContentType.commit
    tag = ac.auth.confirmation_tag
    assert tag is not None
    confirmed, interim = next_transcript_hashes(cs, h(v["interim_transcript_hash_before"]), ac)
    assert confirmed == h(v["confirmed_transcript_hash_after"])
    assert interim == h(v["interim_transcript_hash_after"])
    # the confirmation tag in the content is MAC(confirmation_key, confirmed_transcript_hash_after)
    assert confirmation_tag(cs, h(v["confirmation_key"]), confirmed) == tag
    assert verify_confirmation_tag(cs, h(v["confirmation_key"]), confirmed, tag)
    assert not verify_confirmation_tag(cs, h(v["confirmation_key"]), confirmed, bytes(len(tag)))
    # bytes input gives the same result
    assert next_transcript_hashes(cs, h(v["interim_transcript_hash_before"]), raw) == (confirmed, interim)
