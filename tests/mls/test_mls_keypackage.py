"""KeyPackage generation, signatures, refs and the private-part serialisation, for every suite."""

from __future__ import annotations

import pytest

from orange_fast.mls.errors import DecodeError
from orange_fast.mls.messages import (
    KeyPackage,
    KeyPackagePrivate,
    LeafNodeSource,
    MLSMessage,
    WireFormat,
    make_key_package_ref,
)
from orange_fast.mls.suite import CipherSuite, SignatureKeyPair, get_suite


@pytest.mark.parametrize("cs", list(CipherSuite), ids=lambda c: c.name)
def test_generate_and_round_trip(cs: CipherSuite) -> None:
    signer = SignatureKeyPair.generate(cs)
    kp, kpp = KeyPackage.generate(cs, identity=b"alice", signer=signer)
    s = get_suite(cs)
    assert kp.verify() and kp.leaf_node.verify(s)
    assert kp.leaf_node.leaf_node_source == LeafNodeSource.key_package
    assert kp.leaf_node.credential.identity == b"alice"
    assert kp.init_key != kp.leaf_node.encryption_key
    data = kp.to_bytes()
    msg = MLSMessage.from_bytes(data)
    assert msg.wire_format == WireFormat.key_package
    assert KeyPackage.from_bytes(data) == kp
    assert KeyPackage.from_raw_bytes(kp.raw_bytes()) == kp
    assert kp.ref() == make_key_package_ref(cs, kp.raw_bytes()) and len(kp.ref()) == s.nh
    again = KeyPackagePrivate.from_bytes(kpp.to_bytes())
    assert again.init_private_key == kpp.init_private_key
    assert again.encryption_private_key == kpp.encryption_private_key
    assert again.signer == signer and again.key_package == kp
    assert s.hpke_public_from_private(kpp.init_private_key) == kp.init_key
    # tampering breaks the signature
    kp.leaf_node.credential.identity = b"mallory"
    assert not kp.verify()


def test_private_part_must_match() -> None:
    signer = SignatureKeyPair.generate(1)
    kp, kpp = KeyPackage.generate(1, identity=b"a", signer=signer)
    _, other = KeyPackage.generate(1, identity=b"b", signer=signer)
    forged = KeyPackagePrivate(kp, other.init_private_key, kpp.encryption_private_key, signer)
    with pytest.raises(DecodeError):
        KeyPackagePrivate.from_bytes(forged.to_bytes())
    with pytest.raises(DecodeError):
        KeyPackagePrivate.from_bytes(kpp.to_bytes()[:-3])


def test_wrong_suite_signer_refused() -> None:
    with pytest.raises(ValueError):
        KeyPackage.generate(1, identity=b"a", signer=SignatureKeyPair.generate(2))
