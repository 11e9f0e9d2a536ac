"""File names, sender attribution and the SFU's publisher lists (pure functions, property-based)."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orange_fast.recorder.member import listed_publishers
from orange_fast.recorder.naming import MAX_STEM, safe_stem, sender_leaf, unique_path
from orange_fast.session.keys import KidLayout


@given(st.text(max_size=300))
def test_safe_stem_is_a_harmless_file_name(identity: str) -> None:
    stem = safe_stem(identity)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", stem)
    assert 1 <= len(stem) <= MAX_STEM
    assert stem not in (".", "..") and os.sep not in stem
    assert safe_stem(identity) == stem


@given(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,60}", fullmatch=True))
def test_safe_stem_keeps_plain_identities(identity: str) -> None:
    assert safe_stem(identity) == identity


def test_safe_stem_examples() -> None:
    assert safe_stem("participant-0") == "participant-0"
    assert safe_stem("../../etc/passwd") == "_.._.._etc_passwd"
    assert safe_stem("") == "_"
    assert safe_stem("-rf") == "_-rf"
    with pytest.raises(TypeError):
        safe_stem(b"alice")  # type: ignore[arg-type]


def test_unique_path_never_reuses_a_name(tmp_path) -> None:
    taken: set[str] = set()
    (tmp_path / "alice.mkv").write_bytes(b"earlier recording")
    first = unique_path(str(tmp_path), "alice", ".mkv", taken)
    second = unique_path(str(tmp_path), "alice", ".mkv", taken)
    assert first == str(tmp_path / "alice-2.mkv")
    assert second == str(tmp_path / "alice-3.mkv")
    assert unique_path(str(tmp_path), "bob", ".mkv", taken) == str(tmp_path / "bob.mkv")
    assert (tmp_path / "alice.mkv").read_bytes() == b"earlier recording"


@given(
    st.integers(1, 16), st.integers(1, 16), st.data(),
)
def test_sender_leaf_inverts_the_session_kid_layout(epoch_bits: int, sender_bits: int, data: st.DataObject) -> None:
    layout = KidLayout(epoch_bits=epoch_bits, sender_bits=sender_bits, context=data.draw(st.integers(0, 255)))
    leaf = data.draw(st.integers(0, (1 << sender_bits) - 1))
    epoch = data.draw(st.integers(0, 1 << 20))
    assert sender_leaf(layout.kid(leaf, epoch), epoch_bits, sender_bits) == leaf


def test_sender_leaf_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        sender_leaf(-1, 8, 16)
    with pytest.raises(ValueError):
        sender_leaf(5, 8, 0)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["id", "publisher", "x"]), inner),
    max_leaves=12,
)
_participant = st.fixed_dictionaries({"id": st.integers(0, 1 << 53) | _json, "publisher": st.booleans() | _json})


@given(st.lists(_participant | _json, max_size=8))
def test_listed_publishers_takes_only_well_formed_publishers(participants: list) -> None:
    feeds = listed_publishers({"videoroom": "participants", "participants": participants})
    expected = {
        p["id"] for p in participants
        if isinstance(p, dict) and p.get("publisher") is True and type(p.get("id")) is int
    }
    assert feeds == expected


@given(_json)
def test_listed_publishers_rejects_any_malformed_answer_with_type_error(data: object) -> None:
    try:
        feeds = listed_publishers(data)
    except TypeError:
        return
    assert isinstance(feeds, set) and all(type(f) is int for f in feeds)


def test_listed_publishers_examples() -> None:
    answer = {
        "participants": [{"id": 7, "publisher": True}, {"id": 8, "publisher": False}, {"id": "9", "publisher": True}]
    }
    assert listed_publishers(answer) == {7}
    assert listed_publishers({}) == set()
    with pytest.raises(TypeError):
        listed_publishers({"participants": {"id": 7}})
    with pytest.raises(TypeError):
        listed_publishers([])
