#!/usr/bin/env bash
# Fetch a modern OpenSSL (3.5+) static libcrypto for the build, without touching the system's packages.
#
# Debian trixie's binary libssl-dev (3.5.x) is downloaded with apt into a private apt state directory
# and unpacked into $DEST (default: build/openssl).  Nothing is installed system-wide.  setup.py links
# $DEST/lib/libcrypto.a statically when it finds it (or when ORANGE_FAST_OPENSSL_DIR points at it).
# In real CI (cibuildwheel) OpenSSL is built from source instead: see pyproject.toml.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$here/build/openssl}
SUITE=${ORANGE_FAST_OPENSSL_SUITE:-trixie}
if [ -f "$DEST/lib/libcrypto.a" ] && [ -f "$DEST/include/openssl/evp.h" ]; then
  echo "fetch-openssl: $DEST already holds libcrypto.a"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb http://deb.debian.org/debian $SUITE main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=/dev/null"
          -o "Dir::State::lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
          -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
apt-get "${apt_opts[@]}" -qq update
# Debian builds libcrypto with zlib and zstd support: their static libraries come too,
# so the extension needs neither at run time.
(cd "$work" && apt-get "${apt_opts[@]}" -qq download libssl-dev zlib1g-dev libzstd-dev)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
deb=$(ls "$work"/libssl-dev_*.deb)
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$DEST/lib" "$DEST/include"
cp "$work/x/usr/lib/$arch/libcrypto.a" "$work/x/usr/lib/$arch/libz.a" "$work/x/usr/lib/$arch/libzstd.a" "$DEST/lib/"
cp -r "$work/x/usr/include/openssl" "$DEST/include/"
# configuration.h / opensslconf.h live in the multiarch include directory
cp "$work/x/usr/include/$arch/openssl/"*.h "$DEST/include/openssl/"
basename "$deb" > "$DEST/SOURCE"
echo "fetch-openssl: $(cat "$DEST/SOURCE") unpacked into $DEST"
