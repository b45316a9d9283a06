#!/usr/bin/env bash
# tests/fuzz/run.sh [--seconds N] [--long]: build every tests/fuzz/fuzz_*.c
# with clang -fsanitize=fuzzer,address,undefined and run each for N
# seconds (default 30; --long: 600) from a copy of its seed corpus.
# Exits non-zero if any target finds a crash, leak or sanitizer report;
# the reproducer is left in build-fuzz/artifacts/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=30
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --long) seconds=600; shift ;;
    *) echo "usage: $0 [--seconds N] [--long]" >&2; exit 2 ;;
  esac
done
build=${DROVER_FUZZ_BUILD:-$root/build-fuzz}
CC=clang cmake -S "$root" -B "$build" -G Ninja -DDROVER_FUZZ=ON \
  -DDROVER_SANITIZE=address,undefined -DBUILD_TESTING=ON \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link -g -O1" >/dev/null
targets=()
for src in "$here"/fuzz_*.c; do
  targets+=("$(basename "$src" .c)")
done
cmake --build "$build" -j 2 --target "${targets[@]}"
mkdir -p "$build/artifacts"
rc=0
for t in "${targets[@]}"; do
  seeds="$here/corpus/${t#fuzz_}"
  work=$(mktemp -d)
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  echo "fuzz: $t for ${seconds}s"
  if ! "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=512 \
      -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$t-" "$work" 2>"$build/$t.log"; then
    echo "fuzz: $t FAILED (see $build/$t.log and $build/artifacts/)" >&2
    tail -30 "$build/$t.log" >&2
    rc=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/$t.log" || true
  fi
  rm -rf "$work"
done
exit $rc
