"""Passive-client vectors: join from a Welcome, then follow every commit (epoch authenticator each epoch).

Files: ``passive-client-welcome.json``, ``passive-client-handling-commit.json``,
``passive-client-random.json`` (every suite present in the files).
"""

from __future__ import annotations

import pytest

from orange_fast import mls
from orange_fast.mls import messages as M
from orange_fast.mls.suite import SignatureKeyPair, get_suite
from vectorfiles import read_vectors, skip_if_missing

FILES = ["passive-client-welcome", "passive-client-handling-commit", "passive-client-random"]
CASES = []
for _name in FILES:
    for _i, _c in enumerate(read_vectors(f"mls/{_name}.json") or []):
        CASES.append(pytest.param(_name, _c, id=f"{_name}-s{_c['cipher_suite']}-{_i}"))


def _join(case: dict) -> mls.Group:
    suite = get_suite(case["cipher_suite"])
    kp = M.KeyPackage.from_bytes(bytes.fromhex(case["key_package"]))
    sig_priv = bytes.fromhex(case["signature_priv"])
    enc_priv = bytes.fromhex(case["encryption_priv"])
    init_priv = bytes.fromhex(case["init_priv"])
    assert suite.signature_public_from_private(sig_priv) == kp.leaf_node.signature_key
    assert suite.hpke_public_from_private(enc_priv) == kp.leaf_node.encryption_key
    assert suite.hpke_public_from_private(init_priv) == kp.init_key
    signer = SignatureKeyPair.from_private(suite.cipher_suite, sig_priv)
    kpp = M.KeyPackagePrivate(kp, init_priv, enc_priv, signer)
    psks = {bytes.fromhex(p["psk_id"]): bytes.fromhex(p["psk"]) for p in case["external_psks"]}
    tree = bytes.fromhex(case["ratchet_tree"]) if case["ratchet_tree"] else None
    return mls.Group.join_from_welcome(bytes.fromhex(case["welcome"]), kpp, tree, psks=psks)


@skip_if_missing("mls/passive-client-welcome.json")
@pytest.mark.parametrize("name,case", CASES)
def test_passive_client(name: str, case: dict) -> None:
    group = _join(case)
    assert group.epoch_authenticator.hex() == case["initial_epoch_authenticator"]
    for ep in case["epochs"]:
        for prop in ep["proposals"]:
            res = group.process(bytes.fromhex(prop))
            assert res.kind == "proposal"
        res = group.process(bytes.fromhex(ep["commit"]))
        assert res.kind == "commit"
        assert group.epoch_authenticator.hex() == ep["epoch_authenticator"]
    # the state survives persistence
    again = mls.Group.from_bytes(group.to_bytes())
    assert again.epoch_authenticator == group.epoch_authenticator
    assert again.to_bytes() == group.to_bytes()


def test_vector_counts() -> None:
    counts = {n: len(read_vectors(f"mls/{n}.json") or []) for n in FILES}
    if not all(counts.values()):
        pytest.skip("passive-client vectors missing")
    assert counts == {"passive-client-welcome": 56, "passive-client-handling-commit": 91,
                      "passive-client-random": 1}
