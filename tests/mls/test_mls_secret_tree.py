"""secret-tree.json for every suite, plus ratchet behaviour (replay, out of order, window, persistence)."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.errors import ReplayedMessageError, TooDistantGenerationError
from orange_fast.mls.secret_tree import SecretTree, apply_reuse_guard, sender_data_key_nonce
from orange_fast.mls.suite import get_suite

REL = "mls/secret-tree.json"
VECTORS = read_vectors(REL) or []
h = bytes.fromhex


@skip_if_missing(REL)
def test_suites() -> None:
    assert {v["cipher_suite"] for v in VECTORS} == {1, 2, 3, 4, 5, 6, 7}


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=[f"suite{v['cipher_suite']}-{len(v['leaves'])}leaves" for v in VECTORS])
def test_secret_tree(v: dict) -> None:
    cs = v["cipher_suite"]
    sd = v["sender_data"]
    key, nonce = sender_data_key_nonce(cs, h(sd["sender_data_secret"]), h(sd["ciphertext"]))
    assert (key, nonce) == (h(sd["key"]), h(sd["nonce"]))
    tree = SecretTree(cs, h(v["encryption_secret"]), len(v["leaves"]))
    # a second tree consumed in order checks consume() and persistence keep the same chain
    tree2 = SecretTree(cs, h(v["encryption_secret"]), len(v["leaves"]))
    for leaf, gens in enumerate(v["leaves"]):
        for g in gens:
            gen = g["generation"]
            assert tree.key_nonce(leaf, True, gen) == (h(g["handshake_key"]), h(g["handshake_nonce"]))
            assert tree.key_nonce(leaf, False, gen) == (h(g["application_key"]), h(g["application_nonce"]))
            tree2.consume(leaf, False, gen)
            tree2 = SecretTree.from_bytes(cs, tree2.to_bytes())
            with pytest.raises(ReplayedMessageError):
                tree2.key_nonce(leaf, False, gen)
        # own sending from generation 0 yields the vector's generation-0 keys
        first = gens[0]
        if first["generation"] == 0:
            gen0, k0, n0 = tree2.next_send(leaf, True)
            assert (gen0, k0, n0) == (0, h(first["handshake_key"]), h(first["handshake_nonce"]))


def test_out_of_order_and_window() -> None:
    s = get_suite(1)
    t = SecretTree(s, bytes(32), 4, max_forward=10, max_retained=3)
    keys = {g: t.key_nonce(2, False, g) for g in range(6)}
    t.consume(2, False, 5)
    # 2,3,4 retained (window of 3); 0,1 evicted
    for g in (4, 2, 3):
        assert t.key_nonce(2, False, g) == keys[g]
        t.consume(2, False, g)
    for g in (0, 1, 2, 5):
        with pytest.raises(ReplayedMessageError):
            t.key_nonce(2, False, g)
        with pytest.raises(ReplayedMessageError):
            t.consume(2, False, g)
    with pytest.raises(TooDistantGenerationError):
        t.key_nonce(2, False, 6 + 11)
    with pytest.raises(ValueError):
        t.key_nonce(4, False, 0)
    # the other ratchet and other leaves are independent
    assert t.key_nonce(2, True, 0) != keys[0]
    assert "secret" not in repr(t).lower() or "SecretTree(" in repr(t)


def test_copy_is_independent() -> None:
    t = SecretTree(1, bytes(32), 2)
    k0 = t.key_nonce(1, True, 0)
    c = t.copy()
    c.consume(1, True, 0)
    assert t.key_nonce(1, True, 0) == k0  # original untouched
    with pytest.raises(ReplayedMessageError):
        c.key_nonce(1, True, 0)
    assert c.next_send(0, False) == t.next_send(0, False)


def test_reuse_guard() -> None:
    assert apply_reuse_guard(bytes(12), b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04" + bytes(8)
    with pytest.raises(ValueError):
        apply_reuse_guard(bytes(12), b"\x01")
