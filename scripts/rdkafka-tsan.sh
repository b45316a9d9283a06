#!/usr/bin/env bash
# drover - scripts/rdkafka-tsan.sh: librdkafka built with ThreadSanitizer.
#
#   scripts/rdkafka-tsan.sh          # prints the prefix on stdout
#
# Fetches the Debian source of the librdkafka installed on this machine
# (librdkafka1's exact version, 2.0.2-1 on Debian 12) with a PRIVATE apt
# configuration: a temp dir holds its own deb-src entry, lists and cache;
# /etc/apt is only read.  The deb-src entry is derived at run time from the
# first "URIs:" and "Signed-By:" of /etc/apt/sources.list.d/debian.sources
# (suite bookworm, component main).  dpkg-source -x unpacks it and applies
# the Debian patches.  Then builds it with -fsanitize=thread -g -O1 into
# $DROVER_CACHE_DIR/rdkafka-tsan/<version>/prefix (default .cache/), with
# the features of Debian's build (ssl, sasl, zlib, zstd, external lz4; no
# curl, as Debian's library links none) from the system's -dev packages,
# nothing downloaded by mklove (--no-download, no --install-deps).  Only
# the C library (src/) is built: drover does not use the C++ one.
# C11 threads are disabled (--disable-c11threads): librdkafka then uses its
# tinycthread layer on public pthreads, which TSan intercepts.
#
# Idempotent: when the prefix already holds the library, only prints it.
# Needs root for apt (the source download writes no system file).
# CC (default cc) must be the compiler of the TSan build that links it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKG=librdkafka
VERSION=$(dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null) ||
  die "librdkafka1 is not installed (scripts/deps.sh installs it)"
BASE=$DROVER_CACHE_DIR/rdkafka-tsan/$VERSION
PREFIX=$BASE/prefix
CC=${CC:-cc}

if [ -f "$PREFIX/lib/librdkafka.so" ] && [ -f "$PREFIX/.tsan-built" ]; then
  echo "$PREFIX"
  exit 0
fi

# fetch_source DIR: the .dsc, .orig.tar.gz and .debian.tar.xz into DIR.
fetch_source() {
  local dir=$1 tmp uri signed opts
  local system=/etc/apt/sources.list.d/debian.sources
  [ -r "$system" ] || die "cannot read $system (needed for the deb-src uri)"
  uri=$(awk '/^URIs:/ {print $2; exit}' "$system")
  signed=$(awk '/^Signed-By:/ {print $2; exit}' "$system")
  [ -n "$uri" ] || die "no URIs: line in $system"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/cache/archives/partial"
  {
    echo "Types: deb-src"
    echo "URIs: $uri"
    echo "Suites: bookworm"
    echo "Components: main"
    [ -z "$signed" ] || echo "Signed-By: $signed"
  } >"$tmp/parts/src.sources"
  opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$tmp/parts/"
    -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache"
    -o APT::Sandbox::User=root -qq)
  note "fetching the source of $PKG $VERSION (private apt lists in $tmp)"
  apt-get "${opts[@]}" update || die "apt-get update (private deb-src list) failed"
  (cd "$dir" && apt-get "${opts[@]}" source --download-only "$PKG=$VERSION") ||
    die "apt-get source $PKG=$VERSION failed"
}

# unpack DIR: DIR/src with the Debian patches applied.
unpack() {
  local dir=$1 dsc
  dsc=$(ls "$dir"/${PKG}_*.dsc 2>/dev/null | head -1)
  [ -n "$dsc" ] || die "no .dsc in $dir"
  rm -rf "$dir/src"
  # The .dsc's own signature cannot be checked (no Debian maintainer
  # keyring here); apt already checked every file against the signed
  # Sources index.
  dpkg-source -x "$dsc" "$dir/src" >"$dir/unpack.log" 2>&1 ||
    die "dpkg-source -x $dsc failed, see $dir/unpack.log"
}

# build SRC: configure (as debian/rules, plus TSan), make -j2, install.
build() {
  local src=$1 flags="-fsanitize=thread -g -O1 -fno-omit-frame-pointer"
  cd "$src"
  note "configuring $PKG $VERSION with $CC $flags"
  CC=$CC CFLAGS="$flags" LDFLAGS="-fsanitize=thread" \
    nice -n 10 ./configure --prefix="$PREFIX" --no-download \
    --disable-c11threads --enable-ssl --enable-gssapi --enable-zlib \
    --enable-zstd --enable-lz4-ext --disable-curl \
    >"$BASE/configure.log" 2>&1 ||
    die "configure failed, see $BASE/configure.log"
  note "building (nice -n 10, -j2; log $BASE/build.log)"
  nice -n 10 make -j2 -C src >"$BASE/build.log" 2>&1 ||
    die "make failed, see $BASE/build.log"
  nice -n 10 make -C src install >>"$BASE/build.log" 2>&1 ||
    die "make install failed, see $BASE/build.log"
  # drover links the shared library; the static archives are 40 MB.
  rm -f "$PREFIX"/lib/librdkafka*.a "$PREFIX"/lib/pkgconfig/rdkafka-static.pc
  touch "$PREFIX/.tsan-built"
}

mkdir -p "$BASE"
ls "$BASE"/${PKG}_*.dsc >/dev/null 2>&1 || fetch_source "$BASE"
unpack "$BASE"
(build "$BASE/src")
[ -f "$PREFIX/lib/librdkafka.so" ] || die "no $PREFIX/lib/librdkafka.so after the build"
note "ok: TSan librdkafka in $PREFIX"
echo "$PREFIX"
