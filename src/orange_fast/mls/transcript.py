"""Transcript hashes, confirmation tag and membership tag (RFC 9420 §6.2, §8.1, §8.2).

Public names:

* ``confirmed_transcript_hash(suite, interim_before, authenticated_content)`` -- Hash(interim || wire_format ||
  FramedContent || signature); ``authenticated_content`` is an ``AuthenticatedContent`` or its encoding.
* ``interim_transcript_hash(suite, confirmed, confirmation_tag)`` -- Hash(confirmed || opaque tag<V>).
* ``next_transcript_hashes(suite, interim_before, authenticated_content) -> (confirmed, interim)`` (uses the
  content's confirmation tag).
* ``confirmation_tag(suite, confirmation_key, confirmed_transcript_hash)`` and
  ``verify_confirmation_tag(...) -> bool`` (constant time).
* ``initial_interim_transcript_hash(suite, confirmation_tag)`` -- for epoch 0 (confirmed hash is empty).
* ``membership_tag(suite, membership_key, tbs, auth)`` (tbs = FramedContentTBS bytes, auth =
  FramedContentAuthData bytes) and ``verify_membership_tag(...) -> bool``.
"""

from __future__ import annotations

import hmac
from typing import Any, Tuple

from .codec import encode_varint
from .suite import Suite, get_suite

__all__ = [
    "confirmed_transcript_hash",
    "interim_transcript_hash",
    "next_transcript_hashes",
    "confirmation_tag",
    "verify_confirmation_tag",
    "initial_interim_transcript_hash",
    "membership_tag",
    "verify_membership_tag",
]


def _ac(authenticated_content: Any) -> Any:
    if isinstance(authenticated_content, (bytes, bytearray, memoryview)):
        from .messages import AuthenticatedContent

        return AuthenticatedContent.from_bytes(bytes(authenticated_content))
    return authenticated_content


def confirmed_transcript_hash(suite: "int | Suite", interim_before: bytes, authenticated_content: Any) -> bytes:
    ac = _ac(authenticated_content)
    return get_suite(suite).hash(bytes(interim_before) + ac.confirmed_transcript_hash_input())


def interim_transcript_hash(suite: "int | Suite", confirmed: bytes, confirmation_tag_value: bytes) -> bytes:
    return get_suite(suite).hash(bytes(confirmed) + encode_varint(len(confirmation_tag_value))
                                 + bytes(confirmation_tag_value))


def next_transcript_hashes(suite: "int | Suite", interim_before: bytes,
                           authenticated_content: Any) -> Tuple[bytes, bytes]:
    """``(confirmed, interim)`` after a commit (the content must carry its confirmation tag)."""
    ac = _ac(authenticated_content)
    tag = ac.auth.confirmation_tag
    if tag is None:
        raise ValueError("transcript hashes need a commit with a confirmation tag")
    confirmed = confirmed_transcript_hash(suite, interim_before, ac)
    return confirmed, interim_transcript_hash(suite, confirmed, tag)


def confirmation_tag(suite: "int | Suite", confirmation_key: bytes, confirmed: bytes) -> bytes:
    return get_suite(suite).mac(confirmation_key, confirmed)


def verify_confirmation_tag(suite: "int | Suite", confirmation_key: bytes, confirmed: bytes, tag: bytes) -> bool:
    return hmac.compare_digest(confirmation_tag(suite, confirmation_key, confirmed), bytes(tag))


def initial_interim_transcript_hash(suite: "int | Suite", confirmation_tag_value: bytes) -> bytes:
    """Interim transcript hash of epoch 0 (the confirmed transcript hash is the empty string)."""
    return interim_transcript_hash(suite, b"", confirmation_tag_value)


def membership_tag(suite: "int | Suite", membership_key: bytes, tbs: bytes, auth: bytes) -> bytes:
    """MAC(membership_key, AuthenticatedContentTBM = FramedContentTBS || FramedContentAuthData)."""
    return get_suite(suite).mac(membership_key, bytes(tbs) + bytes(auth))


def verify_membership_tag(suite: "int | Suite", membership_key: bytes, tbs: bytes, auth: bytes, tag: bytes) -> bool:
    return hmac.compare_digest(membership_tag(suite, membership_key, tbs, auth), bytes(tag))


