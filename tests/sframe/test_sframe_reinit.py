"""A second ``Context.__init__`` is refused (issue 9, finding 2).

Before the fix, re-running ``__init__`` rebound the key dicts while the Context kept
borrowed pointers to the old keys (an encrypt then read freed memory: a segfault) and
forgot the retired send counters (the same KID then restarted at counter 0, so the
keystream repeated).  The set-up now happens in ``__cinit__``, which runs once per
object, and a second ``__init__`` raises ``TypeError`` and changes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from orange_fast import sframe

BASE = b"reinit-test-base-key"

# Runs in a child interpreter so that a memory error fails this test instead of
# killing pytest.  It prints one line per step it survived.
_CHILD = textwrap.dedent(
    """
    import gc
    from orange_fast import sframe
    ctx = sframe.Context(sframe.CipherSuite.AES_128_GCM_SHA256_128)
    ctx.add_send_key(7, b"reinit-test-base-key")
    ctx.encrypt(7, b"frame")          # caches a borrowed pointer to KID 7's key
    ctx.add_receive_key(9, b"reinit-test-base-key")
    try:
        ctx.__init__(sframe.CipherSuite.AES_128_GCM_SHA256_128)
    except TypeError:
        print("refused")
    gc.collect()
    for _ in range(1000):             # would reuse the freed key before the fix
        ct = ctx.encrypt(7, b"frame")
    print("encrypted", sframe.decode_header(ct)[1])
    """
)


def test_reinit_then_encrypt_does_not_crash() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"child died with {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.split("\n")[:2] == ["refused", "encrypted 1000"]


def test_reinit_refused_and_counters_never_restart() -> None:
    ctx = sframe.Context(sframe.CipherSuite.AES_128_GCM_SHA256_128, replay_window=64)
    ctx.add_send_key(7, BASE)
    first = [ctx.encrypt(7, b"frame") for _ in range(3)]
    ctx.remove_key(7)  # the retired counter (3) must survive any re-init attempt
    for args, kwargs in [
        ((sframe.CipherSuite.AES_128_GCM_SHA256_128,), {}),
        ((sframe.CipherSuite.AES_256_GCM_SHA512_128,), {"replay_window": 0}),
    ]:
        with pytest.raises(TypeError, match="only once"):
            ctx.__init__(*args, **kwargs)
    assert ctx.suite == sframe.CipherSuite.AES_128_GCM_SHA256_128
    assert ctx.replay_window == 64
    ctx.add_send_key(7, BASE)
    assert ctx.next_counter(7) == 3
    again = ctx.encrypt(7, b"frame")
    assert sframe.decode_header(again)[1] == 3
    assert again not in first


def test_reinit_keeps_keys() -> None:
    ctx = sframe.Context(sframe.CipherSuite.AES_128_CTR_HMAC_SHA256_80)
    ctx.add_send_key(1, BASE)
    ctx.add_receive_key(2, BASE)
    with pytest.raises(TypeError):
        ctx.__init__(sframe.CipherSuite.AES_128_CTR_HMAC_SHA256_80)
    assert ctx.send_kids() == [1] and ctx.receive_kids() == [2]
    peer = sframe.Context(sframe.CipherSuite.AES_128_CTR_HMAC_SHA256_80)
    peer.add_receive_key(1, BASE)
    assert peer.decrypt(ctx.encrypt(1, b"still works")) == b"still works"


def test_new_without_init_is_usable_and_init_runs_once() -> None:
    """``__new__`` alone gives a set-up Context (no dict left as None); one ``__init__`` is fine."""
    ctx = sframe.Context.__new__(sframe.Context, sframe.CipherSuite.AES_256_GCM_SHA512_128)
    ctx.add_send_key(4, BASE)
    assert ctx.next_counter(4) == 0
    ctx.__init__(sframe.CipherSuite.AES_256_GCM_SHA512_128)
    with pytest.raises(TypeError):
        ctx.__init__(sframe.CipherSuite.AES_256_GCM_SHA512_128)
    assert ctx.send_kids() == [4]


def test_new_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="unknown SFrame cipher suite"):
        sframe.Context.__new__(sframe.Context, 99)
    with pytest.raises(TypeError):
        sframe.Context.__new__(sframe.Context)
