"""SFrame keys per MLS epoch: RFC 9605 §5.2 KIDs, grace period, real SFrame contexts."""

from __future__ import annotations

import hashlib
import hmac
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orange_fast.session.keys import (
    EXPORTER_LABEL,
    EpochKeys,
    KeyOp,
    KeyRing,
    KeyScheduleError,
    KidLayout,
    KidLayoutError,
)

# --------------------------------------------------------------------------- KID layout


@pytest.mark.parametrize(
    "epoch, index, context, kid",
    [
        # RFC 9605 §5.2 figure (E=4, S=6), as listed in specs/SFRAME.md §7.2
        (14, 3, 0, 0x3E),
        (14, 20, 0, 0x14E),
        (16, 2, 2, 0x820),
        (16, 2, 3, 0xC20),
        (17, 33, 0, 0x211),
        (17, 51, 0, 0x331),
    ],
)
def test_rfc9605_kid_examples(epoch: int, index: int, context: int, kid: int) -> None:
    assert KidLayout(epoch_bits=4, sender_bits=6).kid(index, epoch, context) == kid


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 12), st.integers(1, 20), st.integers(0, 2**20), st.integers(0, 2**40), st.integers(0, 15)
)
def test_kid_fields_round_trip(e: int, s: int, idx: int, epoch: int, ctx: int) -> None:
    layout = KidLayout(epoch_bits=e, sender_bits=s)
    idx %= 1 << s
    kid = layout.kid(idx, epoch, ctx)
    assert kid & ((1 << e) - 1) == epoch % (1 << e)
    assert (kid >> e) & ((1 << s) - 1) == idx
    assert kid >> (s + e) == ctx


def test_kid_bad_inputs() -> None:
    layout = KidLayout(epoch_bits=4, sender_bits=6)
    with pytest.raises(KidLayoutError):
        layout.kid(64, 1)  # does not fit in 6 bits
    with pytest.raises(KidLayoutError):
        layout.kid(-1, 1)
    with pytest.raises(KidLayoutError):
        layout.kid(1, -1)
    with pytest.raises(TypeError):
        layout.kid("1", 1)  # type: ignore[arg-type]
    with pytest.raises(KidLayoutError):
        KidLayout(epoch_bits=0)
    with pytest.raises(KidLayoutError):
        KidLayout(epoch_bits=30, sender_bits=30, context=1 << 10)


# --------------------------------------------------------------------------- pure ring

KEY = bytes(range(16))
KEY2 = bytes(range(1, 17))


def ring(grace: float = 2.0) -> KeyRing:
    return KeyRing(KidLayout(epoch_bits=2, sender_bits=4), 16, grace)


def test_install_first_epoch() -> None:
    r = ring()
    ops = r.install(0, KEY, 1, [0, 1, 2], now=0.0)
    assert [o for o, _ in ops] == [KeyOp("send", 1 << 2), KeyOp("recv", 0), KeyOp("recv", 2 << 2)]
    assert all(k == KEY for _, k in ops)
    assert r.send_kid == 4
    assert r.installed() == {4: "send", 0: "recv", 8: "recv"}


def test_previous_epoch_kept_for_grace_then_dropped() -> None:
    r = ring(grace=2.0)
    r.install(0, KEY, 0, [0, 1], now=0.0)
    ops = r.install(1, KEY2, 0, [0, 2], now=10.0)  # member 1 removed, 2 added
    assert not any(o.op == "remove" for o, _ in ops)
    # epoch 0 (send 0, recv 4) and epoch 1 (send 1, recv 9) both installed
    assert r.installed() == {0: "send", 4: "recv", 1: "send", 9: "recv"}
    assert r.send_kid == 1
    assert r.expire(11.9) == []
    assert r.expire(12.0) == [KeyOp("remove", 0), KeyOp("remove", 4)]
    assert r.installed() == {1: "send", 9: "recv"}  # the removed member's key is gone


def test_same_low_epoch_bits_drop_old_epoch_at_once() -> None:
    r = ring(grace=100.0)
    r.install(0, KEY, 0, [0, 1], now=0.0)
    r.install(1, KEY, 0, [0, 1], now=0.0)
    r.install(2, KEY, 0, [0, 1], now=0.0)
    r.install(3, KEY, 0, [0, 1], now=0.0)
    ops = r.install(4, KEY2, 0, [0, 1], now=0.0)  # 4 mod 4 == 0: epoch 0 must go
    removed = [o.kid for o, _ in ops if o.op == "remove"]
    assert removed == [0, 4]
    assert {1, 2, 3}.issubset(r.installed())


def test_retire_and_clear() -> None:
    r = ring(grace=1.0)
    r.install(0, KEY, 0, [0, 1], now=0.0)
    assert r.retire(5.0) == []
    assert r.send_kid is None and r.installed() == {0: "send", 4: "recv"}
    assert r.expire(6.0) == [KeyOp("remove", 0), KeyOp("remove", 4)]
    r.install(1, KEY, 0, [0, 1], now=7.0)
    assert sorted(o.kid for o in r.clear()) == [1, 5]
    assert r.installed() == {}


@pytest.mark.parametrize(
    "args, exc",
    [
        ((1, b"short", 0, [0, 1], 0.0), KeyScheduleError),
        ((1, "x" * 16, 0, [0, 1], 0.0), TypeError),
        ((0, KEY, 0, [0, 1], 0.0), KeyScheduleError),  # epoch already installed
        ((1, KEY, 0, [0, 99], 0.0), KeyScheduleError),  # index does not fit
        ((1, KEY, 0, [0, "1"], 0.0), TypeError),
        ((-1, KEY, 0, [0], 0.0), KeyScheduleError),
        ((1, KEY, 0, [0], "now"), TypeError),
    ],
)
def test_bad_install_changes_nothing(args: tuple, exc: type) -> None:
    r = ring()
    r.install(0, KEY, 0, [0, 1], now=0.0)
    before = (r.current, r.previous)
    with pytest.raises(exc):
        r.install(*args)
    assert (r.current, r.previous) == before


# --------------------------------------------------------------------------- real SFrame contexts

sframe = pytest.importorskip("orange_fast.sframe", reason="compiled SFrame core not built")
try:  # the import above may succeed on a stub without Context
    Context = sframe.Context
    CipherSuite = sframe.CipherSuite
except AttributeError:  # pragma: no cover
    pytest.skip("orange_fast.sframe.Context not available", allow_module_level=True)


def _expand_with_label(secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """RFC 9420 ExpandWithLabel over HKDF-SHA256 (independent of the code under test)."""
    full = b"MLS 1.0 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def make_exporter(exporter_secret: bytes):  # noqa: ANN201
    """MLS-Exporter(label, context, length) of RFC 9420 §8.5 for a given exporter_secret."""

    def export(label: bytes, context: bytes, length: int) -> bytes:
        derived = _expand_with_label(exporter_secret, label, b"", 32)  # DeriveSecret
        return _expand_with_label(derived, b"exported", hashlib.sha256(context).digest(), length)

    return export


def members(n: int, suite: int = 4, grace: float = 2.0) -> list[EpochKeys]:
    return [EpochKeys(Context(CipherSuite(suite)), grace_period=grace) for _ in range(n)]


def install_all(ms: dict[int, EpochKeys], epoch: int, secret: bytes, now: float) -> None:
    exp = make_exporter(secret)
    for idx, m in ms.items():
        m.install_from_exporter(exp, epoch, idx, list(ms), now)


@pytest.mark.parametrize("suite", [1, 4, 5])
def test_every_member_decrypts_every_other(suite: int) -> None:
    ms = dict(enumerate(members(3, suite)))
    install_all(ms, 5, b"\x11" * 32, 0.0)
    kids = {m.send_kid for m in ms.values()}
    assert kids == {KidLayout().kid(i, 5) for i in range(3)}
    for i, sender in ms.items():
        ct = sender.encrypt(b"frame from %d" % i, b"meta")
        for j, receiver in ms.items():
            if i != j:
                assert receiver.decrypt(ct, b"meta") == b"frame from %d" % i


def test_exporter_label_and_length() -> None:
    seen = []

    def exp(label: bytes, context: bytes, length: int) -> bytes:
        seen.append((label, context, length))
        return bytes(length)

    m = EpochKeys(Context(CipherSuite(1)))
    m.install_from_exporter(exp, 0, 0, [0, 1], 0.0)
    assert seen == [(EXPORTER_LABEL, b"", 48)] and EXPORTER_LABEL == b"SFrame 1.0 Base Key"


def test_epoch_change_grace_period_and_removal() -> None:
    a, b, c = members(3, grace=2.0)
    install_all({0: a, 1: b, 2: c}, 1, b"\x01" * 32, now=0.0)
    old_from_c = c.encrypt(b"c in epoch 1")
    old_from_a = a.encrypt(b"a in epoch 1")
    # c is removed; epoch 2 for a and b only
    install_all({0: a, 1: b}, 2, b"\x02" * 32, now=10.0)
    new_from_a = a.encrypt(b"a in epoch 2")
    assert b.decrypt(new_from_a) == b"a in epoch 2"
    # frames of the previous epoch still decrypt during the grace period: no dropout
    assert b.decrypt(old_from_c) == b"c in epoch 1"
    assert b.decrypt(old_from_a) == b"a in epoch 1"
    # c cannot decrypt the new epoch
    with pytest.raises(sframe.UnknownKeyError):
        c.decrypt(new_from_a)
    b.expire(12.0)
    late_c = c.encrypt(b"c late")
    with pytest.raises(sframe.UnknownKeyError):
        b.decrypt(late_c)  # the removed member's key is gone for good


def test_generation_counts_key_changes() -> None:
    (a,) = members(1)
    assert a.generation == 0
    install_all({0: a}, 0, b"\x09" * 32, now=0.0)
    install_all({0: a}, 1, b"\x0a" * 32, now=1.0)
    assert a.generation == 2
    a.expire(100.0)
    assert a.generation == 2  # expiry of old receive keys does not change the send key
    a.retire(101.0)
    a.clear()
    assert a.generation == 4 and a.send_kid is None and a.installed() == {}


def test_newcomer_cannot_decrypt_before_join() -> None:
    a, b = members(2)
    install_all({0: a}, 0, b"\x03" * 32, now=0.0)
    before = a.encrypt(b"before b joined")
    install_all({0: a, 1: b}, 1, b"\x04" * 32, now=1.0)
    with pytest.raises(sframe.UnknownKeyError):
        b.decrypt(before)
    assert b.decrypt(a.encrypt(b"after")) == b"after"


def test_wrong_secret_does_not_decrypt() -> None:
    a, b = members(2)
    a.install_from_exporter(make_exporter(b"\x05" * 32), 0, 0, [0, 1], 0.0)
    b.install_from_exporter(make_exporter(b"\x06" * 32), 0, 1, [0, 1], 0.0)
    with pytest.raises(sframe.AuthenticationError):
        b.decrypt(a.encrypt(b"x"))


def test_encrypt_before_epoch_and_bad_context() -> None:
    (a,) = members(1)
    with pytest.raises(LookupError):
        a.encrypt(b"x")
    with pytest.raises(TypeError):
        EpochKeys(object())
    assert "key" not in repr(a).lower() or "KeyRing" in repr(a)


def test_send_kid_is_thread_safe_across_epoch_changes() -> None:
    a, b = members(2, grace=1e9)
    install_all({0: a, 1: b}, 0, b"\x07" * 32, now=0.0)
    cts: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            while not stop.is_set():
                ct = a.encrypt(b"payload")
                with lock:
                    cts.append(ct)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for epoch in range(1, 40):  # epoch_bits=8: no low-bit collision within 40 epochs
        install_all({0: a, 1: b}, epoch, bytes([epoch]) * 32, now=float(epoch))
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert cts
    cts.sort(key=lambda ct: sframe.decode_header(ct)[:2])  # two threads interleave: order by (KID, CTR)
    for ct in cts:  # every frame decrypts: old epochs are within the (huge) grace period
        assert b.decrypt(ct) == b"payload"
