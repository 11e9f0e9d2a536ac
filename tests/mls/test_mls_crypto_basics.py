"""crypto-basics.json: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret, Sign/Verify/EncryptWithLabel."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.errors import DecodeError, DecryptionError, UnsupportedError
from orange_fast.mls.suite import CipherSuite, SignatureKeyPair, get_suite

REL = "mls/crypto-basics.json"
VECTORS = read_vectors(REL) or []
h = bytes.fromhex


@skip_if_missing(REL)
def test_all_suites_present() -> None:
    assert sorted(v["cipher_suite"] for v in VECTORS) == [1, 2, 3, 4, 5, 6, 7]


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=[f"suite{v['cipher_suite']}" for v in VECTORS])
def test_crypto_basics(v: dict) -> None:
    s = get_suite(v["cipher_suite"])
    rh = v["ref_hash"]
    assert s.ref_hash(rh["label"], h(rh["value"])) == h(rh["out"])
    ew = v["expand_with_label"]
    assert s.expand_with_label(h(ew["secret"]), ew["label"], h(ew["context"]), ew["length"]) == h(ew["out"])
    ds = v["derive_secret"]
    assert s.derive_secret(h(ds["secret"]), ds["label"]) == h(ds["out"])
    dt = v["derive_tree_secret"]
    assert s.derive_tree_secret(h(dt["secret"]), dt["label"], dt["generation"], dt["length"]) == h(dt["out"])
    sw = v["sign_with_label"]
    assert s.verify_with_label(h(sw["pub"]), sw["label"], h(sw["content"]), h(sw["signature"]))
    assert s.signature_public_from_private(h(sw["priv"])) == h(sw["pub"])
    sig = s.sign_with_label(h(sw["priv"]), sw["label"], h(sw["content"]))
    assert s.verify_with_label(h(sw["pub"]), sw["label"], h(sw["content"]), sig)
    assert not s.verify_with_label(h(sw["pub"]), sw["label"] + "x", h(sw["content"]), sig)
    ec_ = v["encrypt_with_label"]
    pt = s.decrypt_with_label(h(ec_["priv"]), ec_["label"], h(ec_["context"]), h(ec_["kem_output"]),
                              h(ec_["ciphertext"]))
    assert pt == h(ec_["plaintext"])
    assert s.hpke_public_from_private(h(ec_["priv"])) == h(ec_["pub"])
    kem_out, ct = s.encrypt_with_label(h(ec_["pub"]), ec_["label"], h(ec_["context"]), h(ec_["plaintext"]))
    assert s.decrypt_with_label(h(ec_["priv"]), ec_["label"], h(ec_["context"]), kem_out, ct) == h(ec_["plaintext"])
    with pytest.raises(DecryptionError):
        s.decrypt_with_label(h(ec_["priv"]), ec_["label"] + "x", h(ec_["context"]), kem_out, ct)


@pytest.mark.parametrize("cs", list(CipherSuite))
def test_signature_key_pair(cs: CipherSuite) -> None:
    kp = SignatureKeyPair.generate(cs)
    sig = kp.sign_with_label("Label", b"content")
    assert get_suite(cs).verify_with_label(kp.public_key, "Label", b"content", sig)
    assert not get_suite(cs).verify_with_label(kp.public_key, "Label", b"contenT", sig)
    again = SignatureKeyPair.from_bytes(kp.to_bytes())
    assert again == kp and again.public_key == kp.public_key
    r = repr(kp)
    assert kp.private_key.hex() not in r and cs.name in r
    with pytest.raises(DecodeError):
        SignatureKeyPair.from_bytes(kp.to_bytes()[:-1])


def test_unknown_suite() -> None:
    with pytest.raises(UnsupportedError):
        get_suite(8)
    assert CipherSuite(1).provider.nh == 32
