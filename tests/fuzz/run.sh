#!/usr/bin/env bash
# tests/fuzz/run.sh [--seconds N] [--long] [--hours H] [--only T[,T...]]:
# build every tests/fuzz/fuzz_*.c with clang -fsanitize=fuzzer,address,
# undefined and run each for N seconds (default 30) from a copy of its
# seed corpus.
#
# --long      a campaign: each target for DROVER_FUZZ_LONG_SECONDS
#             (default 7200 = 2 hours; --hours H sets it), with a corpus
#             kept in $build/corpus/<target>/ that grows from run to run
#             (seeded from tests/fuzz/corpus/), -timeout=10 per input
#             (a hang is a finding).  Interrupting keeps the corpus.
#             Run several targets at once with --only on separate shells.
# --only T    run just these targets (fuzz_ prefix optional).
#
# Prints executions per target at the end.  Exits non-zero if any target
# finds a crash, leak, hang or sanitizer report; the reproducer is left in
# build-fuzz/artifacts/ (replay it with: $build/tests/fuzz/<target> FILE,
# and turn it into a unit test replaying the input).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=30
long=0
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --long) long=1; seconds=${DROVER_FUZZ_LONG_SECONDS:-7200}; shift ;;
    --hours) long=1; seconds=$(( $2 * 3600 )); shift 2 ;;
    --only) only=",$2,"; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--long] [--hours H] [--only T,...]" >&2
       exit 2 ;;
  esac
done
build=${DROVER_FUZZ_BUILD:-$root/build-fuzz}
CC=clang cmake -S "$root" -B "$build" -G Ninja -DDROVER_FUZZ=ON \
  -DDROVER_SANITIZE=address,undefined -DBUILD_TESTING=ON \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link -g -O1" >/dev/null
targets=()
for src in "$here"/fuzz_*.c; do
  t=$(basename "$src" .c)
  if [ -n "$only" ] && [[ $only != *",$t,"* ]] && [[ $only != *",${t#fuzz_},"* ]]; then
    continue
  fi
  targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no target matches \"$only\"" >&2; exit 2; }
cmake --build "$build" -j 2 --target "${targets[@]}"
mkdir -p "$build/artifacts"
rc=0
summary=()
for t in "${targets[@]}"; do
  seeds="$here/corpus/${t#fuzz_}"
  extra=()
  if [ $long = 1 ]; then
    # a persistent corpus: hours of progress are not thrown away
    work=$build/corpus/$t
    mkdir -p "$work"
    [ -d "$seeds" ] && cp -rn "$seeds"/. "$work"/
    # libFuzzer's default RSS limit: with ASan's quarantine and allocator
    # caches a run of hours passes 512 MB without any leak (peak RSS is
    # printed below, so steady growth would still show)
    extra=(-timeout=10 -rss_limit_mb=2048)
  else
    work=$(mktemp -d)
    [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  fi
  echo "fuzz: $t for ${seconds}s"
  if ! "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=512 \
      -max_len=4096 -print_final_stats=1 "${extra[@]}" \
      -artifact_prefix="$build/artifacts/$t-" "$work" 2>"$build/$t.log"; then
    echo "fuzz: $t FAILED (see $build/$t.log and $build/artifacts/)" >&2
    tail -30 "$build/$t.log" >&2
    rc=1
    summary+=("$t: FAILED")
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/$t.log" || true
    execs=$(grep -h "stat::number_of_executed_units" "$build/$t.log" | awk '{s += $2} END {print s + 0}')
    summary+=("$t: $execs execs in ${seconds}s, corpus $(ls "$work" | wc -l) inputs, no crash")
  fi
  [ $long = 1 ] || rm -rf "$work"
done
printf 'fuzz: %s\n' "${summary[@]}"
exit $rc
