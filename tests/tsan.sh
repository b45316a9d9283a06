#!/usr/bin/env bash
# drover - tests/tsan.sh: ThreadSanitizer run of the threaded tests.
#
#   tests/tsan.sh [BUILD_DIR] [CTEST_REGEX]
#       defaults: build-tsan, "worker|kafka|consumer|catalog"
#
# Builds BUILD_DIR with -DDROVER_SANITIZE=thread, and tests/tsan/
# thrd_shim.c as a preload: Debian's librdkafka uses C11 threads, which
# glibc >= 2.34 runs past TSan's interceptors (without the shim every
# process that creates a Kafka client crashes in TSan's allocator, and
# librdkafka's locks are invisible).  Then runs the matching ctest tests
# (unit, and integration ones when DROVER_TEST_BROKERS /
# DROVER_TEST_DATABASE_URL are set; shell tests run the TSan-built drover)
# with halt_on_error=0; any report fails the test (exit 66).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-tsan}
REGEX=${2:-worker|kafka|consumer|catalog}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDROVER_SANITIZE=thread >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}"
cc -std=c11 -O1 -shared -fPIC -o "$BUILD/thrd_shim.so" tests/tsan/thrd_shim.c -lpthread
export LD_PRELOAD=$PWD/$BUILD/thrd_shim.so
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:suppressions=$PWD/tests/tsan/tsan.supp"
ctest --test-dir "$BUILD" -R "$REGEX" --output-on-failure --timeout 900
