#!/usr/bin/env bash
# Build a static OpenSSL (3.5 LTS) from source for the wheels (cibuildwheel's before-all
# on real CI machines, which have network access; these development machines use
# scripts/fetch-openssl.sh instead).  Usage: build-openssl.sh DEST
#   DEST/lib/libcrypto.a and DEST/include/openssl/ are what setup.py links.
set -euo pipefail
DEST=${1:?usage: build-openssl.sh DEST}
VERSION=${OPENSSL_VERSION:-3.5.4}
SHA256=${OPENSSL_SHA256:-}
if [ -f "$DEST/lib/libcrypto.a" ]; then echo "build-openssl: $DEST already built"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
url="https://github.com/openssl/openssl/releases/download/openssl-$VERSION/openssl-$VERSION.tar.gz"
curl -fsSL -o openssl.tar.gz "$url"
if [ -n "$SHA256" ]; then echo "$SHA256  openssl.tar.gz" | sha256sum -c -; fi
tar xzf openssl.tar.gz
cd "openssl-$VERSION"
opts=(no-shared no-tests no-apps no-docs no-legacy no-comp no-zlib no-zstd no-engine no-module
      no-ssl3 no-dtls no-srp no-ui-console -fPIC --prefix="$DEST" --libdir=lib)
case "$(uname -s)" in
  Darwin)
    target=$([ "${ARCHFLAGS:-}" = "-arch arm64" ] || [ "$(uname -m)" = arm64 ] && echo darwin64-arm64-cc || echo darwin64-x86_64-cc)
    ./Configure "$target" "${opts[@]}" ;;
  MINGW*|MSYS*|CYGWIN*)
    perl Configure VC-WIN64A "${opts[@]}"
    nmake && nmake install_sw
    exit 0 ;;
  *)
    ./config "${opts[@]}" ;;
esac
make -j"$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" build_libs
make install_dev
echo "build-openssl: OpenSSL $VERSION installed into $DEST"
