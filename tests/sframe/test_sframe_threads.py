"""One Context used from several threads at once: no counter is ever reused, the replay
window is never corrupted, and key changes racing with batches do not crash."""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter

import numpy as np
import pytest

from orange_fast import sframe

BASE = b"thread-test-base-key"
KID = 0x42
THREADS = 4


@pytest.fixture(autouse=True)
def _frequent_thread_switches():
    """Switch threads every 10 µs instead of 5 ms so the workers really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_threads(target, n=THREADS):
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def wrapped(i):
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "worker thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("suite", [1, 4, 5])
def test_concurrent_encryption_never_reuses_a_counter(suite) -> None:
    tx = sframe.Context(suite)
    tx.add_send_key(KID, BASE, start_counter=1000)
    big = bytes(range(256)) * 160  # 40 KiB: crosses the 32 KiB no-GIL threshold
    produced: list[list[tuple[bytes, bytes]]] = [[] for _ in range(THREADS)]

    def work(i):
        rng = random.Random(i)
        out = produced[i]
        for step in range(60):
            choice = rng.randrange(5)
            if choice == 0:
                frame = bytes([i, step]) * 10
                out.append((tx.encrypt(KID, frame), frame))
            elif choice == 1:
                frame = big[: 32768 + step]
                out.append((tx.encrypt(KID, frame), frame))
            elif choice == 2:
                frames = [bytes([i, step, k]) for k in range(rng.randrange(1, 20))] + [big]
                out.extend(zip(tx.encrypt_batch(KID, frames), frames))
            elif choice == 3:
                frame = bytes([i]) * 50
                buf = bytearray(tx.max_ciphertext_size(len(frame)))
                n = tx.encrypt_into(KID, frame, buf)
                out.append((bytes(buf[:n]), frame))
            else:
                frames = [bytes([i, step]) * k for k in range(rng.randrange(1, 10))]
                data = np.frombuffer(b"".join(frames), np.uint8)
                offs = np.cumsum([0] + [len(f) for f in frames], dtype=np.int64)
                ct, cto = tx.encrypt_packed(KID, data, offs)
                out.extend((ct[cto[k] : cto[k + 1]].tobytes(), f) for k, f in enumerate(frames))

    run_threads(work)
    everything = [pair for part in produced for pair in part]
    counters = sorted(sframe.decode_header(ct)[1] for ct, _ in everything)
    assert counters == list(range(1000, 1000 + len(everything))), "counters repeated or skipped"
    assert tx.next_counter(KID) == 1000 + len(everything)
    rx = sframe.Context(suite, replay_window=0)
    rx.add_receive_key(KID, BASE)
    for ct, frame in everything:
        assert rx.decrypt(ct) == frame


@pytest.mark.parametrize("suite", [3, 4])
def test_concurrent_decryption_accepts_each_frame_once(suite) -> None:
    tx = sframe.Context(suite)
    tx.add_send_key(KID, BASE)
    frames = [bytes([k % 256]) * (40_000 if k % 25 == 0 else 1 + k % 300) for k in range(400)]
    cts = tx.encrypt_batch(KID, frames)
    rx = sframe.Context(suite, replay_window=512)
    rx.add_receive_key(KID, BASE)
    accepted: list[Counter] = [Counter() for _ in range(THREADS)]
    replays = [0] * THREADS

    def work(i):
        order = list(range(len(cts)))
        random.Random(i).shuffle(order)
        k = 0
        while k < len(order):
            if i % 2 and k % 7 == 0:  # odd threads mix in small batches
                chunk = order[k : k + 5]
                results = rx.decrypt_batch([cts[j] for j in chunk], on_error="none")
                for j, res in zip(chunk, results):
                    if res is None:
                        replays[i] += 1
                    else:
                        assert res == frames[j]
                        accepted[i][j] += 1
                k += 5
                continue
            j = order[k]
            try:
                assert rx.decrypt(cts[j]) == frames[j]
                accepted[i][j] += 1
            except sframe.ReplayError:
                replays[i] += 1
            k += 1

    run_threads(work)
    total = sum(accepted, Counter())
    assert set(total) == set(range(len(cts))), "a frame was never accepted"
    assert all(v == 1 for v in total.values()), "a frame was accepted twice"
    assert sum(replays) == THREADS * len(cts) - len(cts)
    for ct in cts[::37]:
        with pytest.raises(sframe.ReplayError):
            rx.decrypt(ct)


def test_key_changes_race_with_batches() -> None:
    suite = 1
    tx = sframe.Context(suite)
    rx = sframe.Context(suite, replay_window=0)
    kids = list(range(1, 9))
    for kid in kids:
        tx.add_send_key(kid, BASE)
        rx.add_receive_key(kid, BASE)
    stop = threading.Event()
    made: list[bytes] = []
    lock = threading.Lock()
    allowed = (sframe.UnknownKeyError,)

    def churn(i):
        rng = random.Random(i)
        if i == 0:  # the key manager
            for _ in range(300):
                kid = rng.choice(kids)
                try:
                    if rng.random() < 0.5:
                        tx.remove_key(kid)
                        tx.add_send_key(kid, BASE)
                    else:
                        rx.add_receive_key(kid, BASE)  # replace (fresh window)
                        if rng.random() < 0.3:
                            rx.remove_key(kid)
                            rx.add_receive_key(kid, BASE)
                except (sframe.UnknownKeyError, ValueError):
                    pass
            stop.set()
            return
        while not stop.is_set():
            batch_kids = [rng.choice(kids) for _ in range(rng.randrange(1, 12))]
            frames = [bytes(rng.randrange(0, 2000)) for _ in batch_kids]
            try:
                cts = tx.encrypt_batch(batch_kids, frames)
            except allowed:
                continue
            with lock:
                made.extend(cts)
            try:
                rx.decrypt_batch(cts, on_error="none")
                rx.decrypt(cts[0])
            except allowed:
                pass

    run_threads(churn)
    # no counter was reused for any KID, across remove/re-add
    seen = Counter(sframe.decode_header(ct)[:2] for ct in made)
    assert made and max(seen.values()) == 1
    for kid in kids:
        if not rx.has_key(kid):
            rx.add_receive_key(kid, BASE)
    assert all(r is not None for r in rx.decrypt_batch(made, on_error="none"))


# ----------------------------------------------------------------------------- stale key objects
# Python code can run inside a batch call between the KID lookup and the counter
# reservation (an ``__index__``, an ``__array__``, a GC finalizer -- or another thread
# at any of those points).  If it removes and re-adds the KID, no counter may repeat.


def _counters(cts) -> list[tuple[int, int]]:
    return [sframe.decode_header(c)[:2] for c in cts]


def _assert_no_reuse(batch_cts, stolen) -> None:
    pairs = _counters(batch_cts) + _counters(stolen)
    assert len(pairs) == len(set(pairs)), f"(KID, CTR) reused: batch {_counters(batch_cts)} other {_counters(stolen)}"


def test_stale_key_in_encrypt_batch_kid_list() -> None:
    tx = sframe.Context(4)
    tx.add_send_key(1, BASE)
    tx.add_send_key(2, BASE)
    stolen: list[bytes] = []

    class SneakyKid:
        def __index__(self):
            tx.remove_key(1)
            tx.add_send_key(1, BASE)
            stolen.append(tx.encrypt(1, b"X"))
            return 2

    try:
        cts = tx.encrypt_batch([1, SneakyKid()], [b"a", b"b"])
    except sframe.UnknownKeyError:
        cts = []
    _assert_no_reuse(cts, stolen)


def test_stale_key_in_encrypt_packed() -> None:
    tx = sframe.Context(4)
    tx.add_send_key(1, BASE)
    stolen: list[bytes] = []

    class SneakyOffsets:
        def __array__(self, dtype=None, copy=None):
            tx.remove_key(1)
            tx.add_send_key(1, BASE)
            stolen.append(tx.encrypt(1, b"X"))
            return np.array([0, 1, 2], dtype=np.int64)

    try:
        out, offs = tx.encrypt_packed(1, np.zeros(2, np.uint8), SneakyOffsets())
        cts = [out[offs[i] : offs[i + 1]].tobytes() for i in range(2)]
    except sframe.UnknownKeyError:
        cts = []
    _assert_no_reuse(cts, stolen)


def test_stale_key_via_gc_finalizer() -> None:
    """A finalizer run by a GC pass inside encrypt_batch re-adds the KID."""
    import gc

    found = []
    for countdown in range(1, 12):
        tx = sframe.Context(4)
        tx.add_send_key(1, BASE)
        stolen: list[bytes] = []
        state = {"n": countdown}

        class Finalized:
            def __init__(self):
                self.cycle = self

            def __del__(self):
                state["n"] -= 1
                if state["n"] > 0:
                    Finalized()
                elif state["n"] == 0:
                    tx.remove_key(1)
                    tx.add_send_key(1, BASE)
                    stolen.append(tx.encrypt(1, b"X"))

        old = gc.get_threshold()
        gc.collect()
        Finalized()
        gc.set_threshold(1)
        try:
            cts = tx.encrypt_batch(1, [b"p", b"q"])
        except sframe.UnknownKeyError:
            cts = []
        finally:
            gc.set_threshold(*old)
            gc.collect()
        pairs = _counters(cts) + _counters(stolen)
        if len(pairs) != len(set(pairs)):
            found.append((countdown, _counters(cts), _counters(stolen)))
    assert not found, f"(KID, CTR) reused: {found}"


@pytest.mark.parametrize("suite", [1, 4])
def test_key_removal_during_nogil_work(suite) -> None:
    """Keys removed and re-added while other threads run large (GIL-released) frames
    through them: only SFrameError subclasses, no crash, no counter reuse."""
    tx = sframe.Context(suite)
    rx = sframe.Context(suite, replay_window=0)
    for k in range(4):
        tx.add_send_key(k, BASE)
        rx.add_receive_key(k, BASE)
    big = bytes(40_000)
    cts = [tx.encrypt(k % 4, big) for k in range(24)]
    stop = threading.Event()
    made: list[bytes] = []
    decrypted = [0]

    def work(i):
        rng = random.Random(i)
        if i == 0:
            for step in range(20_000):
                k = rng.randrange(4)
                for ctx, add in ((rx, rx.add_receive_key), (tx, tx.add_send_key)):
                    try:
                        ctx.remove_key(k)
                    except sframe.UnknownKeyError:
                        pass
                    add(k, BASE)
                if step >= 400 and decrypted[0] >= 20 and len(made) >= 40:
                    break
            stop.set()
            return
        while not stop.is_set():
            try:
                if i % 2:
                    assert all(r in (None, big) for r in rx.decrypt_batch(cts, on_error="none"))
                    assert rx.decrypt(cts[rng.randrange(len(cts))]) == big
                    decrypted[0] += 1
                else:
                    made.extend(tx.encrypt_batch(rng.randrange(4), [big] * 3))
                    made.append(tx.encrypt(rng.randrange(4), big))
            except sframe.UnknownKeyError:
                pass

    run_threads(work, n=5)
    assert decrypted[0] >= 20 and len(made) >= 40
    pairs = Counter(sframe.decode_header(c)[:2] for c in made + cts)
    assert max(pairs.values()) == 1
