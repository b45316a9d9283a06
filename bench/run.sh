#!/usr/bin/env bash
# drover - bench/run.sh: the end-to-end benchmarks B1-B6, B8 and B9 in one run.
#
#   bench/run.sh [--quick] [--smoke] [--only B1,B4,...]
#
# Builds drover and bench_limit (RelWithDebInfo, in build-bench/), makes
# the Python peer's venv (.cache/bench-venv, bench/requirements.txt),
# starts its own Kafka and PostgreSQL (DROVER_STACK_DIR, default
# .stack/bench) unless DROVER_TEST_BROKERS and DROVER_TEST_DATABASE_URL
# are given, runs bench/harness.py and regenerates the report:
#   bench/results/<date>.json, bench/results/latest.json,
#   bench/REPORT.md, bench/b1.png, bench/b6.png
# --quick: small sizes, under 5 minutes.  --smoke: smaller still, one
# repetition, results in a temp dir (nothing under bench/ is touched);
# fails if any benchmark program fails.  No timing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=full SMOKE=0 ONLY=B1,B2,B3,B4,B5,B6,B8,B9
while [ $# -gt 0 ]; do
  case $1 in
  --quick) [ $SMOKE = 1 ] || MODE=quick ;;
  --smoke) SMOKE=1; MODE=smoke ;;
  --only) ONLY=$2; shift ;;
  -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run.sh: unknown option \"$1\"" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# --- the peer's venv ------------------------------------------------------
VENV=$ROOT/.cache/bench-venv
want=$(sha256sum bench/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$VENV/.req.sha" 2>/dev/null)" != "$want" ]; then
  say "creating the venv in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "cannot create a venv with python3"
  "$VENV/bin/pip" install -q -r bench/requirements.txt ||
    die "cannot install bench/requirements.txt"
  echo "$want" >"$VENV/.req.sha"
fi
PY=$VENV/bin/python

# --- build ----------------------------------------------------------------
BUILD=${DROVER_BENCH_BUILD:-$ROOT/build-bench}
say "building in $BUILD"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDROVER_WERROR=OFF -DBUILD_TESTING=OFF >/dev/null ||
  die "cmake configure failed"
TARGETS=$(for f in bench/bench_*.c; do basename "$f" .c; done)
# shellcheck disable=SC2086 # one word per target
cmake --build "$BUILD" -j 2 --target drover $TARGETS >"$BUILD/bench-build.log" 2>&1 ||
  die "build failed: $(grep -m3 -E 'error|undefined' "$BUILD/bench-build.log")"
DROVER=$BUILD/consumer/drover
LIMIT=$BUILD/bench/bench_limit
export DROVER_BUILD_DIR=$BUILD DROVER_BIN=$DROVER

# --- stack ----------------------------------------------------------------
STARTED=0
WORK=$(mktemp -d /tmp/drover-bench.XXXXXX)
cleanup() {
  if [ $STARTED = 1 ]; then
    scripts/kafka.sh stop >/dev/null 2>&1 || true
    scripts/pg.sh stop >/dev/null 2>&1 || true
  fi
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
if [ -n "${DROVER_TEST_BROKERS:-}" ] && [ -n "${DROVER_TEST_DATABASE_URL:-}" ]; then
  BROKERS=$DROVER_TEST_BROKERS DBURL=$DROVER_TEST_DATABASE_URL
  say "using the given stack at $BROKERS"
else
  export DROVER_STACK_DIR=${DROVER_BENCH_STACK_DIR:-$ROOT/.stack/bench}
  STARTED=1
  BROKERS=$(scripts/kafka.sh start) || die "kafka did not start"
  DBURL=$(scripts/pg.sh start) || die "postgresql did not start"
  say "started kafka at $BROKERS and postgresql"
fi

# --- run ------------------------------------------------------------------
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
if [ $SMOKE = 1 ]; then OUTDIR=$WORK/results; else OUTDIR=$ROOT/bench/results; fi
mkdir -p "$OUTDIR"
OUT=$OUTDIR/$STAMP.json
rc=0
"$PY" bench/harness.py --brokers "$BROKERS" --database-url "$DBURL" \
  --drover "$DROVER" --limit "$LIMIT" --workdir "$WORK" --out "$OUT" \
  --mode "$MODE" --only "$ONLY" || rc=$?
[ -f "$OUT" ] || die "no results written"
if [ $SMOKE = 1 ]; then
  "$PY" bench/report.py "$OUT" --outdir "$WORK" || rc=1
  [ -s "$WORK/REPORT.md" ] || rc=1
else
  cp "$OUT" "$OUTDIR/latest.json"
  "$PY" bench/report.py "$OUT" --outdir "$ROOT/bench" || rc=1
  say "results: $OUT, bench/REPORT.md"
fi
if [ $rc != 0 ]; then
  KEEP_WORK=1
  say "FAILED (exit $rc): logs kept in $WORK"
fi
exit $rc
