"""Coverage-guided fuzz target (atheris / libFuzzer) over ``decrypt`` and ``decode_header``.

Run by ``test_sframe_fuzz.py`` as a subprocess with a time bound, or by hand for a long run::

    PYTHONPATH=src python tests/sframe/sframe_fuzz_target.py -max_total_time=600 CORPUS_DIR

The first input byte picks the cipher suite; the rest is the ciphertext.  Every outcome
of the compiled core is compared with the pure-Python reference (same exception type or
same plaintext); any other exception, or a disagreement, is a finding.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from orange_fast import sframe
    from orange_fast.sframe import reference as ref

BASE = b"fuzz-base-key-16"
KIDS = (0, 7, 8, 0x123, 2**56 + 1, 2**64 - 1)
META = b"IETF SFrame WG"


def _contexts():
    out = {}
    for suite in sframe.CipherSuite:
        pair = (sframe.Context(suite, replay_window=0), ref.Context(suite, replay_window=0))
        for ctx in pair:
            for kid in KIDS:
                ctx.add_receive_key(kid, BASE)
        out[int(suite)] = pair
    return out


CONTEXTS = _contexts()


def seeds() -> list[bytes]:
    """Valid ciphertexts of every suite and KID (the corpus to start from)."""
    found = []
    for suite in sframe.CipherSuite:
        for kid in KIDS:
            tx = sframe.Context(suite)
            tx.add_send_key(kid, BASE, start_counter=kid // 3)
            for pt in (b"", b"draft-ietf-sframe-enc"):
                found.append(bytes([int(suite)]) + tx.encrypt(kid, pt, META))
    return found


def outcome(fn, *args):
    try:
        return fn(*args)
    except sframe.SFrameError as exc:
        return type(exc)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    core, oracle = CONTEXTS[data[0] % 8 + 1]
    ct = data[1:]
    got_hdr = outcome(sframe.decode_header, ct)
    want_hdr = outcome(ref.decode_header, ct)
    if got_hdr != want_hdr:
        raise AssertionError(f"decode_header: core {got_hdr!r} reference {want_hdr!r}")
    got = outcome(core.decrypt, ct, META)
    want = outcome(oracle.decrypt, ct, META)
    if got != want:
        raise AssertionError(f"decrypt: core {got!r} reference {want!r}")
    out = bytearray(len(ct))
    got_into = outcome(core.decrypt_into, ct, out, META)
    if isinstance(got, bytes):
        if got_into != len(got) or bytes(out[: len(got)]) != got:
            raise AssertionError("decrypt_into disagrees with decrypt")
    elif got_into != got or any(out):
        raise AssertionError("decrypt_into failed differently or wrote plaintext")


def _seed_empty_corpora(argv: list[str]) -> None:
    """Write the valid ciphertexts into every empty corpus directory given on the command line."""
    import os

    for arg in argv[1:]:
        if not arg.startswith("-") and os.path.isdir(arg) and not os.listdir(arg):
            for i, seed in enumerate(seeds()):
                with open(os.path.join(arg, f"seed{i}"), "wb") as fh:
                    fh.write(seed)


if __name__ == "__main__":
    _seed_empty_corpora(sys.argv)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
