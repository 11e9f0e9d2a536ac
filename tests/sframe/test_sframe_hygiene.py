"""No key material in repr(Context) or in any exception message."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sframe_support import ALL_SUITES, key_material_hex

from orange_fast import sframe

BASE = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")
KID = 0x0102030405


def _all_errors(suite) -> list[BaseException]:
    """Provoke every kind of failure on a Context holding keys."""
    tx = sframe.Context(suite)
    tx.add_send_key(KID, BASE, start_counter=2**64 - 1)
    rx = sframe.Context(suite, replay_window=4)
    rx.add_receive_key(KID, BASE)
    rx.add_receive_key(KID + 1, BASE[::-1])
    ct = tx.encrypt(KID, b"secret media", b"m")
    bad = bytearray(ct)
    bad[-1] ^= 1
    calls = [
        lambda: tx.encrypt(KID, b"x"),  # exhausted
        lambda: tx.encrypt_batch(KID, [b"x"]),
        lambda: tx.next_counter(KID),
        lambda: rx.decrypt(bytes(bad), b"m"),  # auth
        lambda: rx.decrypt(ct, b"wrong"),
        lambda: rx.decrypt(ct[:3]),  # malformed
        lambda: rx.decrypt(b""),
        lambda: rx.decrypt(sframe.encode_header(99, 0) + bytes(40)),  # unknown
        lambda: rx.encrypt(KID, b"x"),  # direction
        lambda: tx.decrypt(ct),
        lambda: rx.decrypt_into(ct, bytearray(1), b"m"),  # too small
        lambda: rx.decrypt_batch([ct, bytes(bad)], b"m"),
        lambda: rx.decrypt(ct, "str"),
        lambda: tx.add_send_key(KID, BASE),
        lambda: rx.add_receive_key(KID + 2, b""),
        lambda: sframe.decode_header(b"\x88\x00"),
        lambda: pickle.dumps(rx),
    ]
    errors = []
    rx.decrypt(ct, b"m")
    calls.append(lambda: rx.decrypt(ct, b"m"))  # replay
    for call in calls:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - we inspect every failure
            errors.append(exc)
            if isinstance(exc, sframe.BatchDecryptError):
                errors.extend(exc.errors.values())
        else:
            pytest.fail(f"expected a failure from {call}")
    return [tx, rx, *errors]


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
def test_no_key_material_in_repr_or_messages(suite) -> None:
    secrets = key_material_hex(suite, KID, BASE) + key_material_hex(suite, KID + 1, BASE[::-1])
    raw = [BASE, BASE[::-1]]
    objects = _all_errors(suite)
    assert len(objects) > 15
    for obj in objects:
        texts = [repr(obj), str(obj)] + [repr(a) for a in getattr(obj, "args", ())]
        for text in texts:
            for s in secrets:
                assert s not in text, f"key material in {type(obj).__name__}: {text!r}"
            for r in raw:
                assert repr(r)[2:-1] not in text
    assert "Context" in repr(objects[0])


def test_context_is_not_picklable() -> None:
    ctx = sframe.Context(4)
    ctx.add_send_key(1, BASE)
    with pytest.raises(TypeError):
        pickle.dumps(ctx)


def test_exceptions_are_typed() -> None:
    assert issubclass(sframe.MalformedHeaderError, ValueError)
    assert issubclass(sframe.BufferTooSmallError, ValueError)
    for cls in (sframe.MalformedHeaderError, sframe.UnknownKeyError, sframe.AuthenticationError,
                sframe.ReplayError, sframe.CounterExhaustedError, sframe.BufferTooSmallError,
                sframe.BatchDecryptError):
        assert issubclass(cls, sframe.SFrameError)
    # a decrypted frame never aliases the input buffer
    tx = sframe.Context(4)
    tx.add_send_key(1, BASE)
    rx = sframe.Context(4)
    rx.add_receive_key(1, BASE)
    buf = np.frombuffer(tx.encrypt(1, b"abc"), np.uint8).copy()
    pt = rx.decrypt(buf)
    buf[:] = 0
    assert pt == b"abc"


def test_reference_repr_has_no_key_material() -> None:
    from orange_fast.sframe import reference as ref

    ctx = ref.Context(1)
    ctx.add_send_key(KID, BASE)
    ctx.add_receive_key(KID + 1, BASE)
    texts = repr(ctx) + repr(list(ctx._keys.values()))
    suite = sframe.CipherSuite(1)
    for s in key_material_hex(suite, KID, BASE) + key_material_hex(suite, KID + 1, BASE):
        assert s not in texts
    assert str(BASE) not in texts
