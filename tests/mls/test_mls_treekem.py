"""TreeKEM against ``treekem.json``: process the given UpdatePaths, then create and process new ones."""

from __future__ import annotations

import dataclasses

import pytest

from orange_fast.mls import messages as M
from orange_fast.mls import treekem as TK
from orange_fast.mls.errors import MLSError
from orange_fast.mls.suite import get_suite
from orange_fast.mls.tree import RatchetTree
from vectorfiles import read_vectors, skip_if_missing

VEC = "mls/treekem.json"
CASES = read_vectors(VEC) or []


def _context(case: dict, tree: RatchetTree) -> bytes:
    return M.GroupContext(1, case["cipher_suite"], bytes.fromhex(case["group_id"]), case["epoch"],
                          tree.root_tree_hash(), bytes.fromhex(case["confirmed_transcript_hash"]), []).to_bytes()


@skip_if_missing(VEC)
@pytest.mark.parametrize("case", CASES, ids=[f"s{c['cipher_suite']}-{i}" for i, c in enumerate(CASES)])
def test_treekem(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    base = RatchetTree.from_bytes(suite, bytes.fromhex(case["ratchet_tree"]))
    gid = bytes.fromhex(case["group_id"])
    privs: dict = {}
    sig_privs: dict = {}
    for lp in case["leaves_private"]:
        i = lp["index"]
        keys: TK.PrivateKeys = {}
        ep = bytes.fromhex(lp["encryption_priv"])
        keys[2 * i] = (ep, suite.hpke_public_from_private(ep))
        assert keys[2 * i][1] == base.leaf(i).encryption_key
        for ps in lp["path_secrets"]:
            priv, pub = TK.derive_node_keypair(suite, bytes.fromhex(ps["path_secret"]))
            assert base.nodes[ps["node"]] is not None
            assert base.nodes[ps["node"]].encryption_key == pub
            keys[ps["node"]] = (priv, pub)
        privs[i] = keys
        sig_privs[i] = bytes.fromhex(lp["signature_priv"])

    for up in case["update_paths"]:
        sender = up["sender"]
        path = M.UpdatePath.from_bytes(bytes.fromhex(up["update_path"]))
        tree = base.copy()
        TK.merge_path(tree, sender, path)  # verifies the parent hash of the new leaf
        assert tree.root_tree_hash().hex() == up["tree_hash_after"]
        tree.verify_parent_hashes()
        ctx = _context(case, tree)
        for j, expected in enumerate(up["path_secrets"]):
            if j == sender or base.leaf(j) is None:
                continue
            commit_secret, _, lca_secret = TK.decrypt_path(tree, sender, j, path, privs[j], ctx, set())
            assert lca_secret.hex() == expected
            assert commit_secret.hex() == up["commit_secret"]

        # create a fresh UpdatePath from the same sender and let everyone process it
        fresh = base.copy()
        secrets = TK.prepare_path(fresh, sender)
        old = base.leaf(sender)
        leaf = dataclasses.replace(old, encryption_key=secrets.leaf_pub, leaf_node_source=M.LeafNodeSource.commit,
                                   lifetime=None, parent_hash=secrets.leaf_parent_hash)
        leaf.sign(suite, sig_privs[sender], gid, sender)
        fresh.set_leaf(sender, leaf)
        ctx2 = _context(case, fresh)
        new_path = M.UpdatePath.from_bytes(TK.encrypt_path(fresh, sender, secrets, leaf, ctx2, set()).to_bytes())
        merged = base.copy()
        TK.merge_path(merged, sender, new_path)
        assert merged.root_tree_hash() == fresh.root_tree_hash()
        merged.verify_parent_hashes()
        for j in range(base.n_leaves):
            if j == sender or base.leaf(j) is None:
                continue
            commit_secret, _, _ = TK.decrypt_path(merged, sender, j, new_path, privs[j], ctx2, set())
            assert commit_secret == secrets.commit_secret


@skip_if_missing(VEC)
def test_tampered_update_path_rejected() -> None:
    case = next(c for c in CASES if c["cipher_suite"] == 1 and len(c["update_paths"]) > 0)
    suite = get_suite(1)
    base = RatchetTree.from_bytes(suite, bytes.fromhex(case["ratchet_tree"]))
    up = case["update_paths"][0]
    path = M.UpdatePath.from_bytes(bytes.fromhex(up["update_path"]))
    if not path.nodes:
        pytest.skip("empty path")
    bad = dataclasses.replace(path, nodes=[dataclasses.replace(path.nodes[0],
                                                               encryption_key=path.nodes[-1].encryption_key[::-1])]
                              + path.nodes[1:])
    tree = base.copy()
    with pytest.raises(MLSError):
        TK.merge_path(tree, up["sender"], bad)


def test_vector_count() -> None:
    if not CASES:
        pytest.skip("treekem vectors missing")
    assert len(CASES) == 77
