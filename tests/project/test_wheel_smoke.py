"""Import smoke test of an installed orange_fast, run under every supported CPython.

``wheels/matrix.sh --test`` runs this file and ``tests/sframe`` in a venv per Python
version with that version's wheel installed (and sets ``ORANGE_FAST_EXPECT_INSTALLED=1``,
so the package must come from site-packages, not from a source tree).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import orange_fast
from orange_fast import sframe

RUNTIME = [
    "orange_fast.sframe",
    "orange_fast.sframe.reference",
    "orange_fast.mls",
    "orange_fast.session.client",
    "orange_fast.delivery.server",
    "orange_fast.rtc",
    "orange_fast.cli",
]


@pytest.mark.parametrize("name", RUNTIME)
def test_runtime_modules_import(name: str) -> None:
    assert importlib.import_module(name).__name__ == name


def test_compiled_core_matches_this_interpreter() -> None:
    from orange_fast.sframe import _core, _limit

    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for module in (_core, _limit):
        assert Path(module.__file__).name.endswith(suffix), module.__file__
    assert sframe.openssl_static(), "the core must link OpenSSL statically"
    major, minor = (int(x) for x in sframe.openssl_version().split()[1].split(".")[:2])
    assert (major, minor) >= (3, 5), sframe.openssl_version()


def test_round_trip_every_suite() -> None:
    for suite in sframe.CipherSuite:
        tx, rx = sframe.Context(suite), sframe.Context(suite)
        tx.add_send_key(3, b"smoke-test-base-key")
        rx.add_receive_key(3, b"smoke-test-base-key")
        assert rx.decrypt(tx.encrypt(3, b"frame", b"meta"), b"meta") == b"frame"


@pytest.mark.skipif(os.environ.get("ORANGE_FAST_EXPECT_INSTALLED") != "1", reason="only for an installed wheel")
def test_installed_from_the_wheel() -> None:
    site = {Path(p).resolve() for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}
    assert Path(orange_fast.__file__).resolve().parents[1] in site, orange_fast.__file__
    script = Path(sys.executable).with_name("orange-fast")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == f"orange-fast {orange_fast.__version__}"
