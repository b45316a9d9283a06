#!/usr/bin/env bash
# drover - tests/tsan.sh: ThreadSanitizer run of the threaded tests.
#
#   tests/tsan.sh [BUILD_DIR] [CTEST_REGEX]
#       defaults: build-tsan, "worker|kafka|consumer|catalog"
#   DROVER_TSAN_RDKAFKA=system tests/tsan.sh ...   # Debian's librdkafka
#
# By default links BUILD_DIR against librdkafka built with TSan from the
# Debian source of the installed version (scripts/rdkafka-tsan.sh; built
# on the first run, ~1 min, cached in .cache/rdkafka-tsan/), and checks
# with ldd that drover and every test binary load that library.  Built
# without C11 threads, it uses pthreads, which TSan intercepts.
#
# With DROVER_TSAN_RDKAFKA=system it links Debian's (uninstrumented)
# librdkafka and preloads tests/tsan/thrd_shim.c: that library uses C11
# threads, which glibc >= 2.34 runs past TSan's interceptors.  Its
# internal atomics stay invisible there (see tests/tsan/README.md).
#
# Then runs the matching ctest tests (unit, and integration ones when
# DROVER_TEST_BROKERS / DROVER_TEST_DATABASE_URL are set; shell tests run
# the TSan-built drover; chaos and valgrind labels excluded) with
# halt_on_error=0; any report fails the test (exit 66).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-tsan}
REGEX=${2:-worker|kafka|consumer|catalog}
MODE=${DROVER_TSAN_RDKAFKA:-tsan}

die() { echo "tsan.sh: $*" >&2; exit 1; }

# configure BUILD; reconfigure from scratch when its cached librdkafka is
# not the one wanted (pkg_check_modules caches its result).
configure() {
  local want=$1 have
  have=$(sed -n 's/^RDKAFKA_LIBDIR:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
  local fresh=()
  [ -z "$have" ] || [ "$have" = "$want" ] || fresh=(--fresh)
  cmake "${fresh[@]}" -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDROVER_SANITIZE=thread >/dev/null
  have=$(sed -n 's/^RDKAFKA_LIBDIR:INTERNAL=//p' "$BUILD/CMakeCache.txt")
  [ "$have" = "$want" ] || die "$BUILD links librdkafka from $have, not $want"
}

# check_ldd LIB: drover and every test binary load librdkafka from LIB.
check_ldd() {
  local lib=$1 f got n=0
  while IFS= read -r f; do
    got=$(env -u LD_LIBRARY_PATH ldd "$f" | awk '$1 == "librdkafka.so.1" {print $3}')
    [ -n "$got" ] || continue
    [ "$(readlink -f "$got")" = "$(readlink -f "$lib")" ] ||
      die "$f loads librdkafka from $got, not $lib"
    n=$((n + 1))
  done < <(find "$BUILD" -type f -executable \( -name drover -o -name 'test_*' \) \
    -not -path '*/CMakeFiles/*')
  [ "$n" -gt 0 ] || die "no binary in $BUILD loads librdkafka"
  echo "tsan.sh: $n binaries load $lib" >&2
}

if [ "$MODE" = system ]; then
  configure "$(pkg-config --variable=libdir rdkafka)"
  cmake --build "$BUILD" -j "${JOBS:-2}"
  check_ldd "$(pkg-config --variable=libdir rdkafka)/librdkafka.so.1"
  cc -std=c11 -O1 -shared -fPIC -o "$BUILD/thrd_shim.so" tests/tsan/thrd_shim.c -lpthread
  export LD_PRELOAD=$PWD/$BUILD/thrd_shim.so
else
  prefix=$(scripts/rdkafka-tsan.sh)
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  configure "$prefix/lib"
  cmake --build "$BUILD" -j "${JOBS:-2}"
  # binaries carry an RPATH to $prefix/lib; LD_LIBRARY_PATH also covers
  # anything a test starts that was linked elsewhere
  check_ldd "$prefix/lib/librdkafka.so.1"
  export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:suppressions=$PWD/tests/tsan/tsan.supp"
ctest --test-dir "$BUILD" -R "$REGEX" -LE 'chaos|valgrind' --output-on-failure --timeout 900
