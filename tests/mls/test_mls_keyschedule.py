"""key-schedule.json (exporter included) and psk_secret.json, every suite."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.errors import DecodeError
from orange_fast.mls.keyschedule import (
    EpochSecrets,
    PSKInput,
    compute_psk_secret,
    external_init_secret_receiver,
    external_init_secret_sender,
    key_schedule,
    welcome_key_nonce,
)
from orange_fast.mls.messages import GroupContext, PreSharedKeyID
from orange_fast.mls.suite import get_suite

REL = "mls/key-schedule.json"
VECTORS = read_vectors(REL) or []
PREL = "mls/psk_secret.json"
PVECTORS = read_vectors(PREL) or []
h = bytes.fromhex


@skip_if_missing(REL)
def test_key_schedule_suites() -> None:
    assert sorted(v["cipher_suite"] for v in VECTORS) == [1, 2, 3, 4, 5, 6, 7]


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=[f"suite{v['cipher_suite']}" for v in VECTORS])
def test_key_schedule(v: dict) -> None:
    suite = get_suite(v["cipher_suite"])
    init_secret = h(v["initial_init_secret"])
    group_id = h(v["group_id"])
    for epoch, e in enumerate(v["epochs"]):
        gc = GroupContext(1, v["cipher_suite"], group_id, epoch, h(e["tree_hash"]),
                          h(e["confirmed_transcript_hash"]), [])
        assert gc.to_bytes() == h(e["group_context"])
        es = key_schedule(suite, init_secret, h(e["commit_secret"]), h(e["psk_secret"]), gc)
        for name in ("joiner_secret", "welcome_secret", "init_secret", "sender_data_secret", "encryption_secret",
                     "exporter_secret", "epoch_authenticator", "external_secret", "confirmation_key",
                     "membership_key"):
            assert getattr(es, name) == h(e[name]), name
        assert es.resumption_psk == h(e["resumption_psk"])
        assert es.external_pub == h(e["external_pub"])
        ex = e["exporter"]
        # the label is used as its ASCII bytes; the context is hex and gets hashed
        assert es.export(ex["label"].encode(), h(ex["context"]), ex["length"]) == h(ex["secret"])
        # persistence round trip
        again = EpochSecrets.from_bytes(suite, es.to_bytes())
        assert again.epoch_authenticator == es.epoch_authenticator and again.init_secret == es.init_secret
        assert es.epoch_authenticator.hex() not in repr(es)
        init_secret = es.init_secret


@skip_if_missing(REL)
def test_epoch_secrets_from_bytes_rejects_garbage() -> None:
    suite = get_suite(1)
    with pytest.raises(DecodeError):
        EpochSecrets.from_bytes(suite, b"\x00\x01\x05")
    with pytest.raises(DecodeError):
        EpochSecrets.from_bytes(suite, b"\x00\x02")


@pytest.mark.parametrize("cs", [1, 2, 4, 5, 7])
def test_external_init_round_trip(cs: int) -> None:
    s = get_suite(cs)
    priv, pub = s.generate_hpke_key_pair()
    kem_output, init_secret = external_init_secret_sender(s, pub)
    assert len(init_secret) == s.nh
    assert external_init_secret_receiver(s, priv, kem_output) == init_secret
    key, nonce = welcome_key_nonce(s, bytes(s.nh))
    assert (len(key), len(nonce)) == (s.nk, s.nn)


@skip_if_missing(PREL)
def test_psk_suites() -> None:
    assert {v["cipher_suite"] for v in PVECTORS} == {1, 2, 3, 4, 5, 6, 7}


@skip_if_missing(PREL)
@pytest.mark.parametrize("v", PVECTORS, ids=[f"suite{v['cipher_suite']}-{len(v['psks'])}psk-{i}"
                                             for i, v in enumerate(PVECTORS)])
def test_psk_secret(v: dict) -> None:
    psks = [PSKInput(PreSharedKeyID.external(h(p["psk_id"]), h(p["psk_nonce"])), h(p["psk"])) for p in v["psks"]]
    assert compute_psk_secret(v["cipher_suite"], psks) == h(v["psk_secret"])
