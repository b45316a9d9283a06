#!/usr/bin/env bash
# drover - bench/decode.sh: decode v1 task records through drv_task_decode,
# beside raw avro-c generic reads (the limit) and python3-avro (the peer).
#
#   bench/decode.sh [--records N] [--repeats R] [--no-python]
#
# Builds an optimised, sanitizer-free bench_decode (build dir
# $DROVER_BENCH_BUILD, default build-bench-decode) and prints one JSON
# line (bench/run.sh collects it).  Goal: ratio_vs_raw >= 0.8.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${DROVER_BENCH_BUILD:-$ROOT/build-bench-decode}
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_TESTING=OFF -DDROVER_SANITIZE= >/dev/null
cmake --build "$BUILD" --target bench_decode -j 2 >/dev/null
DROVER_SOURCE_DIR=$ROOT exec "$BUILD/bench/bench_decode" "$@"
