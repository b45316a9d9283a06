#!/usr/bin/env bash
# drover - tests/tsan.sh: ThreadSanitizer run of the threaded tests.
#
#   tests/tsan.sh [BUILD_DIR] [CTEST_REGEX]
#       defaults: build-tsan, "worker|kafka|consumer|catalog"
#   DROVER_TSAN_RDKAFKA=system tests/tsan.sh ...   # Debian's librdkafka
#
# By default links BUILD_DIR against librdkafka built with TSan from the
# Debian source of the installed version (scripts/rdkafka-tsan.sh; built
# on the first run, ~1.5 min, cached in .cache/rdkafka-tsan/), and checks
# with ldd that drover and every test binary load that library.  Built
# without C11 threads, it uses pthreads, which TSan intercepts.
#
# With DROVER_TSAN_RDKAFKA=system it links Debian's (uninstrumented)
# librdkafka and preloads tests/tsan/thrd_shim.c: that library uses C11
# threads, which glibc >= 2.34 runs past TSan's interceptors.  Its
# internal atomics stay invisible there, so that mode uses
# tests/tsan/tsan-system.supp (see tests/tsan/README.md).
#
# Then runs the matching ctest tests one by one (unit, and integration ones
# when DROVER_TEST_BROKERS / DROVER_TEST_DATABASE_URL are set; shell tests
# run the TSan-built drover; chaos and valgrind labels excluded) with
# halt_on_error=0 (a report makes the process exit 66).  Every process's
# reports go to BUILD_DIR/tsan-logs/<test>/tsan.<exe>.<pid>; one line per
# test "name passed|failed|skipped <reports>" (also in tsan-logs/summary).
# Exit status 0 only when no test failed and no process reported.
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
    -DDROVER_SANITIZE=thread -DDROVER_TEST_HOOKS=ON >/dev/null
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

# control PREFIX: tests/tsan/control.c (a deliberate race against
# librdkafka's broker thread) must be reported with librdkafka's own
# frames symbolized: TSan sees into the library the tests load, and a
# report is counted.
control() {
  local prefix=$1 dir=$BUILD/tsan-control
  rm -rf "$dir"
  mkdir -p "$dir"
  cc -std=c11 -g -O1 -fsanitize=thread -I"$prefix/include" tests/tsan/control.c \
    -o "$dir/control" -L"$prefix/lib" -Wl,-rpath,"$prefix/lib" -lrdkafka
  TSAN_OPTIONS="halt_on_error=0:exitcode=66:log_path=$PWD/$dir/tsan" \
    "$dir/control" >/dev/null && die "control: no TSan report (exit 0)"
  grep -q 'rdkafka_broker\.c:[0-9]' "$dir"/tsan.* 2>/dev/null ||
    die "control: no report with librdkafka frames in $dir"
  echo "tsan.sh: control race reported, librdkafka frames symbolized" >&2
}

# prepare: build BUILD against the chosen librdkafka and check it.
prepare() {
  local prefix
  if [ "$MODE" = system ]; then
    configure "$(pkg-config --variable=libdir rdkafka)"
    cmake --build "$BUILD" -j "${JOBS:-2}"
    check_ldd "$(pkg-config --variable=libdir rdkafka)/librdkafka.so.1"
    cc -std=c11 -O1 -shared -fPIC -o "$BUILD/thrd_shim.so" tests/tsan/thrd_shim.c -lpthread
    export LD_PRELOAD=$PWD/$BUILD/thrd_shim.so
    return
  fi
  prefix=$(scripts/rdkafka-tsan.sh)
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  configure "$prefix/lib"
  cmake --build "$BUILD" -j "${JOBS:-2}"
  # drover and the test binaries find it through their RUNPATH (checked
  # here).  No LD_LIBRARY_PATH: it would hand the TSan library to what the
  # tests start besides drover (python3's confluent_kafka, kcat), which
  # cannot load libtsan ("cannot allocate memory in static TLS block").
  check_ldd "$prefix/lib/librdkafka.so.1"
  control "$prefix"
}

# run_one NAME: ctest runs test NAME with every process's TSan reports in
# $LOGS/NAME/ (log_path: shell tests start drover processes whose exit
# code a test may not check); prints "NAME result reports".
run_one() {
  local name=$1 dir=$LOGS/$1 rc=0 n
  mkdir -p "$dir"
  TSAN_OPTIONS="$TSAN_BASE:log_path=$dir/tsan:log_exe_name=1" \
    ctest --test-dir "$BUILD" -R "^$name\$" --output-on-failure --timeout 900 \
    >"$dir/ctest.log" 2>&1 || rc=$?
  n=$(cat "$dir"/tsan.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)
  if grep -q 'Skipped\|Not Run' "$dir/ctest.log"; then
    echo "$name skipped $n"
  elif [ "$rc" -eq 0 ]; then
    echo "$name passed $n"
  else
    echo "$name failed $n"
  fi
}

# run_all: every matching test, one summary line each; fails when a test
# failed or any process reported.
run_all() {
  local t line bad=0 tests
  local supp=tests/tsan/tsan.supp
  [ "$MODE" != system ] || supp=tests/tsan/tsan-system.supp
  TSAN_BASE="halt_on_error=0:exitcode=66:second_deadlock_stack=1:suppressions=$PWD/$supp"
  LOGS=$PWD/$BUILD/tsan-logs
  rm -rf "$LOGS"
  mkdir -p "$LOGS"
  mapfile -t tests < <(ctest --test-dir "$BUILD" -N -R "$REGEX" -LE 'chaos|valgrind' |
    sed -n 's/^ *Test *#[0-9]*: //p')
  [ ${#tests[@]} -gt 0 ] || die "no test matches $REGEX"
  for t in "${tests[@]}"; do
    line=$(run_one "$t")
    echo "$line" | tee -a "$LOGS/summary"
    set -- $line
    [ "$2" != failed ] && [ "$3" -eq 0 ] || bad=$((bad + 1))
  done
  echo "tsan.sh: ${#tests[@]} tests, $bad failed or reported;" \
    "$(cat "$LOGS"/*/tsan.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true)" \
    "TSan reports (in $LOGS/<test>/tsan.<exe>.<pid>)" >&2
  [ "$bad" -eq 0 ]
}

# one line, so that editing this file during a run cannot change the run
main() { prepare; run_all; }; main; exit $?
