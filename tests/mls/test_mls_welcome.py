"""welcome.json for every suite: decrypt GroupSecrets with the KeyPackage's init key, decrypt and verify the
GroupInfo, and check its confirmation tag through the key schedule (no ratchet tree needed)."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.errors import DecryptionError
from orange_fast.mls.keyschedule import (
    epoch_secrets_from_joiner,
    welcome_key_nonce,
    welcome_secret_from_joiner,
    zero_secret,
)
from orange_fast.mls.messages import GroupInfo, GroupSecrets, KeyPackage, MLSMessage, WireFormat
from orange_fast.mls.suite import get_suite
from orange_fast.mls.transcript import confirmation_tag

REL = "mls/welcome.json"
VECTORS = read_vectors(REL) or []
h = bytes.fromhex


@skip_if_missing(REL)
def test_suites() -> None:
    assert {v["cipher_suite"] for v in VECTORS} == {1, 2, 3, 4, 5, 6, 7}


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=[f"suite{v['cipher_suite']}" for v in VECTORS])
def test_welcome(v: dict) -> None:
    s = get_suite(v["cipher_suite"])
    kp = KeyPackage.from_bytes(h(v["key_package"]))
    assert kp.to_bytes() == h(v["key_package"])
    assert kp.verify()
    assert kp.leaf_node.verify(s)
    assert s.hpke_public_from_private(h(v["init_priv"])) == kp.init_key
    msg = MLSMessage.from_bytes(h(v["welcome"]))
    assert msg.wire_format == WireFormat.welcome and msg.to_bytes() == h(v["welcome"])
    welcome = msg.body
    assert welcome.cipher_suite == v["cipher_suite"]
    ref = kp.ref()
    mine = [e for e in welcome.secrets if e.new_member == ref]
    assert len(mine) == 1
    egs = mine[0].encrypted_group_secrets
    gs_raw = s.decrypt_with_label(h(v["init_priv"]), "Welcome", welcome.encrypted_group_info, egs.kem_output,
                                  egs.ciphertext)
    gs = GroupSecrets.from_bytes(gs_raw)
    assert gs.psks == []
    psk_secret = zero_secret(s)
    key, nonce = welcome_key_nonce(s, welcome_secret_from_joiner(s, gs.joiner_secret, psk_secret))
    gi = GroupInfo.from_bytes(s.aead_decrypt(key, nonce, b"", welcome.encrypted_group_info))
    assert gi.group_context.cipher_suite == v["cipher_suite"]
    assert gi.verify(h(v["signer_pub"]))
    assert not gi.verify(kp.leaf_node.signature_key)
    es = epoch_secrets_from_joiner(s, gs.joiner_secret, psk_secret, gi.group_context)
    assert confirmation_tag(s, es.confirmation_key, gi.group_context.confirmed_transcript_hash) == gi.confirmation_tag
    # a wrong key or tampered ciphertext fails cleanly
    with pytest.raises(DecryptionError):
        s.decrypt_with_label(h(v["init_priv"]), "Welcome", welcome.encrypted_group_info + b"x", egs.kem_output,
                             egs.ciphertext)
    with pytest.raises(DecryptionError):
        s.aead_decrypt(key, nonce, b"x", welcome.encrypted_group_info)
