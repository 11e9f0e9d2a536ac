"""HPKE (RFC 9180) against the appendix A vectors, all four modes."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.errors import DecryptionError
from orange_fast.mls.hpke import HPKESuite

REL = "hpke/rfc9180-appendix-a.json"
VECTORS = read_vectors(REL) or []


def _id(v: dict) -> str:
    return f"kem{v['kem_id']:#x}-kdf{v['kdf_id']}-aead{v['aead_id']:#x}-mode{v['mode']}"


@skip_if_missing(REL)
def test_vector_count() -> None:
    assert len(VECTORS) == 28


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=[_id(v) for v in VECTORS])
def test_hpke_vector(v: dict) -> None:
    h = bytes.fromhex
    suite = HPKESuite(v["kem_id"], v["kdf_id"], v["aead_id"])
    kem = suite.kem
    sk_e, pk_e = kem.derive_key_pair(h(v["ikmE"]))
    assert (sk_e, pk_e) == (h(v["skEm"]), h(v["pkEm"]))
    sk_r, pk_r = kem.derive_key_pair(h(v["ikmR"]))
    assert (sk_r, pk_r) == (h(v["skRm"]), h(v["pkRm"]))
    mode = v["mode"]
    info = h(v["info"])
    psk = h(v.get("psk", ""))
    psk_id = h(v.get("psk_id", ""))
    if mode in (2, 3):
        sk_s, pk_s = kem.derive_key_pair(h(v["ikmS"]))
        assert (sk_s, pk_s) == (h(v["skSm"]), h(v["pkSm"]))
        ss, enc = kem.auth_encap(pk_r, sk_s, ikm_e=h(v["ikmE"]))
        assert kem.auth_decap(enc, sk_r, pk_s) == ss
    else:
        ss, enc = kem.encap(pk_r, ikm_e=h(v["ikmE"]))
        assert kem.decap(enc, sk_r) == ss
    assert enc == h(v["enc"])
    assert ss == h(v["shared_secret"])
    ksc, key, base_nonce, exp = suite.key_schedule_secrets(mode, ss, info, psk, psk_id)
    assert ksc == h(v["key_schedule_context"])
    assert key == h(v["key"])
    assert base_nonce == h(v["base_nonce"])
    assert exp == h(v["exporter_secret"])
    # Receiver contexts through the public setup functions.
    if mode == 0:
        ctx_r = suite.setup_base_r(enc, sk_r, info)
        _, ctx_s = suite.setup_base_s(pk_r, info, ikm_e=h(v["ikmE"]))
    elif mode == 1:
        ctx_r = suite.setup_psk_r(enc, sk_r, info, psk, psk_id)
        _, ctx_s = suite.setup_psk_s(pk_r, info, psk, psk_id, ikm_e=h(v["ikmE"]))
    elif mode == 2:
        ctx_r = suite.setup_auth_r(enc, sk_r, info, pk_s)
        _, ctx_s = suite.setup_auth_s(pk_r, info, sk_s, ikm_e=h(v["ikmE"]))
    else:
        ctx_r = suite.setup_auth_psk_r(enc, sk_r, info, psk, psk_id, pk_s)
        _, ctx_s = suite.setup_auth_psk_s(pk_r, info, psk, psk_id, sk_s, ikm_e=h(v["ikmE"]))
    if v["aead_id"] != 0xFFFF:
        last = -1
        for e in v["encryptions"]:
            # vectors list selected sequence numbers; advance both contexts to each one
            while last + 1 < e["seq"]:
                c = ctx_s.seal(b"", b"")
                ctx_r.open(b"", c)
                last += 1
            ct = ctx_s.seal(h(e["aad"]), h(e["pt"]))
            assert ct == h(e["ct"])
            assert ctx_r.open(h(e["aad"]), ct) == h(e["pt"])
            last = e["seq"]
    for e in v["exports"]:
        assert ctx_r.export(h(e["exporter_context"]), e["L"]) == h(e["exported_value"])
        assert ctx_s.export(h(e["exporter_context"]), e["L"]) == h(e["exported_value"])


@skip_if_missing(REL)
def test_open_rejects_tampering() -> None:
    v = next(x for x in VECTORS if x["mode"] == 0 and x["aead_id"] != 0xFFFF)
    h = bytes.fromhex
    suite = HPKESuite(v["kem_id"], v["kdf_id"], v["aead_id"])
    sk_r, pk_r = suite.kem.derive_key_pair(h(v["ikmR"]))
    enc, ct = suite.seal_base(pk_r, b"info", b"aad", b"hello")
    assert suite.open_base(enc, sk_r, b"info", b"aad", ct) == b"hello"
    bad = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(DecryptionError):
        suite.open_base(enc, sk_r, b"info", b"aad", bad)
    with pytest.raises(DecryptionError):
        suite.open_base(enc, sk_r, b"other", b"aad", ct)
    with pytest.raises(DecryptionError):
        suite.open_base(b"\x00" * len(enc), sk_r, b"info", b"aad", ct)
