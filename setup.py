"""Build of the compiled SFrame core.

libcrypto is linked *statically* with hidden symbols from a modern OpenSSL (3.5+),
found in ``$ORANGE_FAST_OPENSSL_DIR`` or ``build/openssl`` (``scripts/fetch-openssl.sh``
puts Debian trixie's libcrypto.a there; real CI builds OpenSSL from source).  Without
one, the build falls back to the system's shared libcrypto and says so loudly: that
build works but is slow (see shared/specs/PERFORMANCE.md); ``orange_fast.openssl_static()``
and ``orange_fast.openssl_version()`` report what was linked.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
SFRAME = HERE / "src" / "orange_fast" / "sframe"


STATIC_LIB = "libcrypto.lib" if sys.platform == "win32" else "libcrypto.a"


def _openssl_dir() -> Path | None:
    env = os.environ.get("ORANGE_FAST_OPENSSL_DIR")
    candidates = [Path(env)] if env else [HERE / "build" / "openssl"]
    for cand in candidates:
        for libdir in ("lib", "lib64"):
            if (cand / libdir / STATIC_LIB).is_file() and (cand / "include" / "openssl" / "evp.h").is_file():
                return cand
    if env:
        sys.exit(f"ORANGE_FAST_OPENSSL_DIR={env} holds no lib/{STATIC_LIB} and include/openssl")
    return None


def _extension_kwargs() -> dict:
    ossl = _openssl_dir()
    kw: dict = {"include_dirs": [str(SFRAME)], "define_macros": [], "extra_compile_args": [],
                "extra_link_args": [], "extra_objects": [], "libraries": []}
    windows = sys.platform == "win32"
    if not windows:
        kw["extra_compile_args"] += ["-O3", "-fvisibility=hidden", "-Wno-deprecated-declarations"]
    if ossl is None:
        if os.environ.get("ORANGE_FAST_REQUIRE_STATIC_OPENSSL"):
            sys.exit("no static OpenSSL found: run scripts/fetch-openssl.sh or set ORANGE_FAST_OPENSSL_DIR")
        print("*** orange_fast: no static OpenSSL found; linking the system's shared libcrypto "
              "(slow on old OpenSSL; run scripts/fetch-openssl.sh)", file=sys.stderr)
        kw["libraries"] = ["libcrypto"] if windows else ["crypto"]
        return kw
    libdir = ossl / ("lib" if (ossl / "lib" / STATIC_LIB).is_file() else "lib64")
    kw["include_dirs"].insert(0, str(ossl / "include"))
    kw["define_macros"].append(("ORANGE_FAST_STATIC_OPENSSL", "1"))
    # libcrypto first; the compression libraries a distribution's libcrypto may use after it
    kw["extra_objects"] = [str(libdir / STATIC_LIB)] + [
        str(libdir / lib) for lib in ("libzstd.a", "libz.a") if (libdir / lib).is_file()
    ]
    if sys.platform.startswith("linux"):
        shim = SFRAME / "glibc_compat.c"
        kw["sources_extra"] = [str(shim.relative_to(HERE))]
        # keep libcrypto's symbols out of the dynamic symbol table: export only PyInit_*
        kw["extra_link_args"] += ["-Wl,--exclude-libs,ALL", "-Wl,--gc-sections", "-Wl,-Bsymbolic"]
        kw["libraries"] += ["pthread", "dl"]
    elif sys.platform == "darwin":
        kw["extra_link_args"] += ["-Wl,-dead_strip"]
    elif windows:
        kw["libraries"] += ["crypt32", "ws2_32", "advapi32", "user32"]
    return kw


def _extensions() -> list[Extension]:
    kw = _extension_kwargs()
    extra_sources = kw.pop("sources_extra", [])
    exts = []
    for name in ("_core", "_limit"):
        exts.append(
            Extension(
                f"orange_fast.sframe.{name}",
                sources=[f"src/orange_fast/sframe/{name}.pyx", *extra_sources],
                depends=[str(SFRAME / "sframe_c.h"), str(SFRAME / "sframe_c.pxd")],
                **kw,
            )
        )
    return exts


setup(
    ext_modules=cythonize(
        _extensions(),
        compiler_directives={"language_level": "3"},
        include_path=[str(HERE / "src")],
    ),
)
