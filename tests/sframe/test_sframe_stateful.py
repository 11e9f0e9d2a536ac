"""Stateful differential test: random sequences of key management, encryption and
decryption on the core and on the reference must give identical results step by step."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sframe_support import U64, examples

from orange_fast import sframe
from orange_fast.sframe import reference as ref

KIDS = st.sampled_from([0, 1, 7, 8, 300, 2**56, U64])
KEYS = st.sampled_from([b"key-A", b"key-B-longer-than-sixteen", b"\x00"])
STARTS = st.one_of(st.none(), st.integers(0, 50), st.integers(U64 - 3, U64))


def _run(fn):
    try:
        return ("ok", fn())
    except (sframe.SFrameError, ValueError, KeyError) as exc:
        return ("err", type(exc))


class SFrameMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.suite = None
        self.frames: list[tuple[bytes, bytes]] = []

    @precondition(lambda self: self.suite is None)
    @rule(suite=st.integers(1, 8), window=st.sampled_from([0, 1, 4, 64, 100]))
    def create(self, suite, window) -> None:
        self.suite = suite
        self.tx = (sframe.Context(suite), ref.Context(suite))
        self.rx = (sframe.Context(suite, replay_window=window), ref.Context(suite, replay_window=window))

    def _both(self, pair, call):
        got, want = _run(lambda: call(pair[0])), _run(lambda: call(pair[1]))
        assert got == want, f"core {got} != reference {want}"
        return got

    @precondition(lambda self: self.suite is not None)
    @rule(kid=KIDS, key=KEYS, start=STARTS)
    def add_send(self, kid, key, start) -> None:
        self._both(self.tx, lambda c: c.add_send_key(kid, key, start_counter=start))

    @precondition(lambda self: self.suite is not None)
    @rule(kid=KIDS, key=KEYS)
    def add_receive(self, kid, key) -> None:
        self._both(self.rx, lambda c: c.add_receive_key(kid, key))

    @precondition(lambda self: self.suite is not None)
    @rule(kid=KIDS, receiver=st.booleans())
    def remove(self, kid, receiver) -> None:
        self._both(self.rx if receiver else self.tx, lambda c: c.remove_key(kid))

    @precondition(lambda self: self.suite is not None)
    @rule(kid=KIDS, frame=st.binary(max_size=40), meta=st.sampled_from([b"", b"m"]))
    def encrypt(self, kid, frame, meta) -> None:
        status, value = self._both(self.tx, lambda c: c.encrypt(kid, frame, meta))
        if status == "ok":
            self.frames.append((value, meta))

    @precondition(lambda self: self.suite is not None)
    @rule(kid=KIDS, n=st.integers(0, 5))
    def encrypt_batch(self, kid, n) -> None:
        frames = [bytes([i]) * i for i in range(n)]
        status, value = self._both(self.tx, lambda c: c.encrypt_batch(kid, frames))
        if status == "ok":
            self.frames.extend((v, b"") for v in value)

    @precondition(lambda self: self.suite is not None and self.frames)
    @rule(data=st.data(), tamper=st.sampled_from([None, "flip", "meta", "cut"]))
    def decrypt(self, data, tamper) -> None:
        ct, meta = data.draw(st.sampled_from(self.frames))
        if tamper == "flip":
            ct = ct[:-1] + bytes([ct[-1] ^ 1])
        elif tamper == "meta":
            meta = meta + b"x"
        elif tamper == "cut":
            ct = ct[: data.draw(st.integers(0, len(ct) - 1))]
        self._both(self.rx, lambda c: c.decrypt_with_kid(ct, meta))

    @invariant()
    def same_keys(self) -> None:
        if self.suite is None:
            return
        core_tx, ref_tx = self.tx
        for kid in (0, 1, 7, 8, 300, 2**56, U64):
            assert core_tx.has_key(kid) == ref_tx.has_key(kid)
            assert self.rx[0].has_key(kid) == self.rx[1].has_key(kid)
            if kid in core_tx.send_kids():
                assert _run(lambda: core_tx.next_counter(kid)) == _run(lambda: ref_tx.next_counter(kid))


SFrameMachine.TestCase.settings = examples(40, stateful_step_count=30)
test_sframe_state_machine = SFrameMachine.TestCase
