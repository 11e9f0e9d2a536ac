"""No private key material or secrets in reprs of the MLS-A objects."""

from __future__ import annotations

from orange_fast.mls.hpke import HPKESuite
from orange_fast.mls.keyschedule import PSKInput, key_schedule
from orange_fast.mls.messages import GroupSecrets, KeyPackage, PathSecret, PreSharedKeyID
from orange_fast.mls.secret_tree import SecretTree
from orange_fast.mls.suite import CipherSuite, SignatureKeyPair, get_suite


def _absent(secret: bytes, text: str) -> None:
    assert secret.hex() not in text
    assert repr(secret) not in text


def test_reprs_hide_secrets() -> None:
    cs = CipherSuite(1)
    signer = SignatureKeyPair.generate(cs)
    _absent(signer.private_key, repr(signer))
    kp, kpp = KeyPackage.generate(cs, b"alice", signer)
    for secret in (kpp.init_private_key, kpp.encryption_private_key, signer.private_key):
        _absent(secret, repr(kpp))
    ps = PathSecret(b"\x11" * 32)
    gs = GroupSecrets(b"\x22" * 32, ps, [])
    _absent(ps.path_secret, repr(ps))
    _absent(gs.joiner_secret, repr(gs))
    _absent(ps.path_secret, repr(gs))
    es = key_schedule(cs, b"\x33" * 32, b"\x44" * 32, bytes(32), b"gc")
    for name in ("exporter_secret", "init_secret", "epoch_authenticator", "encryption_secret"):
        _absent(getattr(es, name), repr(es))
    tree = SecretTree(cs, b"\x55" * 32, 4)
    tree.key_nonce(1, True, 0)
    _absent(b"\x55" * 32, repr(tree))
    _absent(b"\x55" * 32, repr(tree.ratchet(1, True)))
    p = PSKInput(PreSharedKeyID.external(b"id", b"n" * 32), b"\x66" * 32)
    _absent(p.psk, repr(p))
    hs = HPKESuite(0x20, 1, 1)
    sk, pk = hs.kem.generate_key_pair()
    enc, ctx = hs.setup_base_s(pk, b"")
    _absent(ctx._key, repr(ctx))
    assert get_suite(cs).nh == 32
