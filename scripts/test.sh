#!/usr/bin/env bash
# drover - scripts/test.sh: everything from a fresh Debian 12 box.
#
#   scripts/test.sh [--quick] [--full] [--no-asan] [--keep-stack]
#
# Installs dependencies, builds (plain with -Werror, and with
# ASan+UBSan), starts the real stack (Kafka, PostgreSQL, and the Backstage
# backend and schema registry where their scripts exist), runs ctest
# (unit + integration) on both builds, the short fuzz runs, the chaos
# smoke run, the unit tests under valgrind and the benchmark smoke run,
# then stops everything it started.  Exits non-zero on any failure.
# --full adds what does not fit CI's time: the Backstage plugins' browser
# check (the Migrations tab in headless Chromium, screenshot in
# tests/artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0 FULL=0 ASAN=1 KEEP=0
for a in "$@"; do
  case $a in
  --quick) QUICK=1 ;;
  --full) FULL=1 ;;
  --no-asan) ASAN=0 ;;
  --keep-stack) KEEP=1 ;;
  -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "test.sh: unknown option \"$a\"" >&2; exit 2 ;;
  esac
done

export DROVER_STACK_DIR=${DROVER_STACK_DIR:-$ROOT/.stack/test}
JOBS=${JOBS:-2}
failures=()
passed=0
T0=$(date +%s)
stage() { echo; echo "=== $* ($(( $(date +%s) - T0 ))s)"; }

# run NAME CMD...: run a stage, record pass/fail, keep going.
run() {
  local name=$1
  shift
  stage "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "test.sh: FAILED: $name" >&2
    failures+=("$name")
  fi
}

cleanup() {
  [ $KEEP = 1 ] && return 0
  stage "stopping the stack"
  [ -x scripts/registry.sh ] && scripts/registry.sh stop >/dev/null 2>&1 || true
  [ -x scripts/backstage.sh ] && scripts/backstage.sh stop >/dev/null 2>&1 || true
  scripts/kafka.sh stop >/dev/null 2>&1 || true
  scripts/pg.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

stage "dependencies"
scripts/deps.sh

build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDROVER_WERROR=ON -DDROVER_TEST_HOOKS=ON "$@" >/dev/null &&
    cmake --build "$dir" -j "$JOBS"
}
stage "build (plain, -Werror)"
build build
if [ $ASAN = 1 ]; then
  stage "build (ASan+UBSan)"
  build build-asan -DDROVER_SANITIZE=address,undefined
fi

stage "starting the stack"
DROVER_TEST_BROKERS=$(scripts/kafka.sh start)
DROVER_TEST_DATABASE_URL=$(scripts/pg.sh start)
export DROVER_TEST_BROKERS DROVER_TEST_DATABASE_URL DROVER_REQUIRE_STACK=1
if [ -x scripts/backstage.sh ]; then
  scripts/backstage.sh start
  export DROVER_TEST_BACKSTAGE_URL=$(cat "$DROVER_STACK_DIR/backstage.url")
  export DROVER_TEST_BACKSTAGE_TOKEN=$(cat "$DROVER_STACK_DIR/backstage.token")
fi
# A real schema registry (Apicurio, Confluent API, from Maven Central).
# Without it the registry tests fall back to the recorded-API stand-in
# and say so, and the end-to-end registry test fails (DROVER_REQUIRE_STACK).
if scripts/registry.sh start >/dev/null; then
  export DROVER_TEST_REGISTRY_URL=$(cat "$DROVER_STACK_DIR/registry.url")
else
  echo "test.sh: the schema registry did not start" >&2
fi
echo "kafka at $DROVER_TEST_BROKERS"

ctest_label() {
  local dir=$1 label=$2
  shift 2
  ctest --test-dir "$dir" -L "$label" --output-on-failure \
    --no-tests=error "$@"
}

run "unit tests" ctest_label build unit -j "$JOBS"
run "integration tests" ctest_label build integration
if [ $FULL = 1 ]; then
  run "backstage plugins: the tab in headless chromium" env \
    DROVER_BACKSTAGE_E2E=1 DROVER_BIN="$ROOT/build/consumer/drover" \
    DROVER_SOURCE_DIR="$ROOT" bash tests/integration/test_backstage_plugin.sh
fi
if [ $ASAN = 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp
  run "unit tests (ASan+UBSan)" ctest_label build-asan unit -j "$JOBS"
  # two at a time: the tests mostly wait on Kafka and PostgreSQL, and
  # the one that pauses the shared PostgreSQL runs alone (RUN_SERIAL)
  [ $QUICK = 1 ] || run "integration tests (ASan+UBSan)" ctest_label build-asan integration -j "$JOBS"
  unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
fi
if [ -x tests/valgrind.sh ]; then
  run "unit tests (valgrind memcheck)" tests/valgrind.sh build unit
fi
if [ $QUICK = 0 ] && [ -x tests/chaos/run.sh ]; then
  run "chaos (small)" tests/chaos/run.sh
fi
if [ $QUICK = 0 ] && [ -x tests/fuzz/run.sh ]; then
  run "fuzz (short)" tests/fuzz/run.sh --seconds 30
fi
if [ $QUICK = 0 ] && [ -x bench/run.sh ]; then
  run "benchmarks (smoke, --quick)" bench/run.sh --quick --smoke
fi

stage "summary"
echo "test.sh: stages: $passed passed, ${#failures[@]} failed"
if [ ${#failures[@]} -gt 0 ]; then
  printf 'test.sh: failed stage: %s\n' "${failures[@]}"
  exit 1
fi
echo "$passed passed, 0 failed"
