#!/usr/bin/env bash
# drover - tests/chaos/run.sh: exactly-once under faults, with PostgreSQL
# effects (see tests/chaos/README.md).
#
#   tests/chaos/run.sh [--full] [--runs N] [--tasks N] [--seed S]
#                      [--build DIR] [--keep] [--self-test]
#
# Starts its own stack (3 KRaft brokers, PostgreSQL) in a fresh
# DROVER_STACK_DIR, runs the harness N times (default 1) with 3 workers,
# then stops the stack.  Small (default): 2,000 tasks; --full: 20,000.
# Each run prints one line "chaos: tasks=... faults=... lost=0
# duplicated=0 wrong=0 ..."; the exit status is non-zero if any run lost,
# duplicated or got anything wrong (or a fault could not be injected).
# Logs of failed runs are kept (their path is printed); --keep keeps all.
# --self-test: a 300-task run whose result is then broken on purpose
# (one effect duplicated, one task's row updates deleted, one task_runs
# row changed, one status event committed twice); passes only if the
# checker reports lost, duplicated and wrong.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FULL=0 RUNS=1 SELFTEST=0 TASKS="" SEED="" BUILD=${DROVER_BUILD_DIR:-$ROOT/build} KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
  --full) FULL=1; shift ;;
  --runs) RUNS=$2; shift 2 ;;
  --tasks) TASKS=$2; shift 2 ;;
  --seed) SEED=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  --keep) KEEP=1; shift ;;
  --self-test) SELFTEST=1; shift ;;
  -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run.sh: unknown option \"$1\"" >&2; exit 2 ;;
  esac
done
DROVER=${DROVER_BIN:-$BUILD/consumer/drover}
[ -x "$DROVER" ] || { echo "run.sh: no drover binary at $DROVER (build first, or set DROVER_BIN / --build)" >&2; exit 2; }
# the faults include crash points: compiled in only on request
"$DROVER" --version | grep -q "test hooks compiled in" ||
  { echo "run.sh: $DROVER was built without test hooks (configure with -DDROVER_TEST_HOOKS=ON)" >&2; exit 2; }
if [ $SELFTEST = 1 ]; then
  TASKS=${TASKS:-300} PRODUCE=20 CYCLES=1 TIMEOUT=300
elif [ $FULL = 1 ]; then
  TASKS=${TASKS:-20000} PRODUCE=240 CYCLES=6 TIMEOUT=3600 KILL="--kill-min 10 --kill-max 20"
else
  TASKS=${TASKS:-2000} PRODUCE=40 CYCLES=1 TIMEOUT=300
fi

# Our own stack, never the developer's or another test's.
export DROVER_STACK_DIR
DROVER_STACK_DIR=$(mktemp -d /tmp/drover-chaos-stack.XXXXXX)
LOGS=$(mktemp -d /tmp/drover-chaos-logs.XXXXXX)
export DROVER_CACHE_DIR=${DROVER_CACHE_DIR:-$ROOT/.cache}
cleanup() {
  trap '' INT TERM
  "$ROOT/scripts/kafka.sh" stop >/dev/null 2>&1 || true
  "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1 || true
  rm -rf "$DROVER_STACK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)
echo "chaos: starting 3 brokers and postgresql (stack $DROVER_STACK_DIR)" >&2
BROKERS=$("$ROOT/scripts/kafka.sh" start --nodes 3)
DBURL=$("$ROOT/scripts/pg.sh" start)
echo "chaos: stack up in $(( $(date +%s) - T0 ))s" >&2

failed=0
for ((r = 1; r <= RUNS; r++)); do
  dir=$LOGS/run$r
  mkdir -p "$dir"
  args=(--brokers "$BROKERS" --database-url "$DBURL" --drover "$DROVER"
        --workdir "$dir" --kafka-libs "$DROVER_CACHE_DIR/kafka-libs"
        --tasks "$TASKS" --produce-seconds "$PRODUCE" --cycles "$CYCLES"
        --timeout "$TIMEOUT" ${KILL:-})
  [ -n "$SEED" ] && args+=(--seed $((SEED + r - 1)))
  t=$(date +%s)
  if [ $SELFTEST = 1 ]; then
    /usr/bin/python3 "$HERE/harness.py" "${args[@]}" --tamper && ok=1 || ok=0
    if [ $ok = 1 ]; then
      echo "chaos: self-test FAILED: the checker passed a tampered result" >&2
      failed=$((failed + 1))
    elif /usr/bin/python3 - "$dir/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ok = r["lost"] >= 1 and r["duplicated"] >= 2 and r["wrong"] >= 1
print("chaos: self-test: checker reported lost=%d duplicated=%d wrong=%d"
      " for the tampered result: %s" % (r["lost"], r["duplicated"],
                                        r["wrong"], "ok" if ok else "MISSED"))
sys.exit(0 if ok else 1)
PY
    then
      [ $KEEP = 1 ] || rm -rf "$dir"
    else
      failed=$((failed + 1))
    fi
    continue
  fi
  if /usr/bin/python3 "$HERE/harness.py" "${args[@]}"; then
    echo "chaos: run $r/$RUNS passed in $(( $(date +%s) - t ))s" >&2
    [ $KEEP = 1 ] || rm -rf "$dir"
  else
    failed=$((failed + 1))
    echo "chaos: run $r/$RUNS FAILED in $(( $(date +%s) - t ))s; logs in $dir" >&2
  fi
done
echo "chaos: $RUNS run(s), $failed failed, $(( $(date +%s) - T0 ))s in all" >&2
[ "$(ls -A "$LOGS")" ] || rm -rf "$LOGS"
[ $failed = 0 ]
