#!/usr/bin/env bash
# drover - tests/integration/test_transforms_resume.sh
#
# kill -9 'drover plan run' in the middle of a 200k-row backfill, run it
# again, and prove every row was updated exactly once (a trigger counts
# updates per row) and the ledger shows one completed step.  Then the same
# with the resume done by another task id (it takes over the checkpoint),
# and two runners started at once on one dataset (one runs, one skips).
#
# Needs DROVER_TEST_DATABASE_URL (scripts/pg.sh) and DROVER_BIN.
set -euo pipefail

URL=${DROVER_TEST_DATABASE_URL:-}
if [ -z "$URL" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && { echo "no database" >&2; exit 1; }
  echo "DROVER_TEST_DATABASE_URL not set: skipping" >&2
  exit 77
fi
BIN=${DROVER_BIN:?DROVER_BIN not set}
ROWS=${DROVER_TEST_RESUME_ROWS:-200000}
T=rs$$
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
sql() { psql "$URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# table $1 with $ROWS rows and an update-counting trigger
seed() {
  sql "CREATE TABLE $1 (id bigint PRIMARY KEY, v bigint,
         updates int NOT NULL DEFAULT 0)"
  sql "INSERT INTO $1 (id) SELECT g FROM generate_series(1, $ROWS) g"
  sql "CREATE FUNCTION ${1}_cnt() RETURNS trigger LANGUAGE plpgsql AS
         'BEGIN NEW.updates := OLD.updates + 1; RETURN NEW; END'"
  sql "CREATE TRIGGER ${1}_trg BEFORE UPDATE ON $1 FOR EACH ROW
         EXECUTE FUNCTION ${1}_cnt()"
}

# plan file $1 for table/dataset $2
plan() {
  cat >"$1" <<YAML
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: $2-backfill
spec:
  type: migration-plan
  lifecycle: production
  owner: team-test
  dataset: $2
  schemaVersion: {from: 1, to: 2}
  steps:
    - {op: backfill, table: $2, set: {v: "id * 3"}, batch_size: 2000}
YAML
}

# rows checkpointed so far for dataset $1
ledger_rows() {
  sql "SELECT coalesce(sum(rows), 0) FROM drover.step_ledger
        WHERE dataset = '$1' AND status <> 'superseded'"
}

# start a run of plan $1 as task $2 in the background, kill -9 it once at
# least 10% and at most 90% of the rows are committed.
run_and_kill() {
  local planfile=$1 task=$2 ds=$3 pid rows i
  "$BIN" plan run "$planfile" --dataset "$ds" --task-id "$task" \
    --database "$URL" --batch-pause-ms 15 >"$WORK/killed.out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < 600; i++)); do
    rows=$(ledger_rows "$ds")
    [ "$rows" -ge $((ROWS / 10)) ] && break
    sleep 0.05
  done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null && fail "run exited by itself before the kill"
  rows=$(ledger_rows "$ds")
  [ "$rows" -gt 0 ] && [ "$rows" -lt "$ROWS" ] ||
    fail "kill landed outside the backfill: $rows of $ROWS rows"
  echo "killed at $rows / $ROWS rows"
}

check_exactly_once() {
  local ds=$1 n
  n=$(sql "SELECT count(*) FROM $ds WHERE updates = 1 AND v = id * 3")
  [ "$n" = "$ROWS" ] || {
    sql "SELECT updates, count(*) FROM $ds GROUP BY 1" >&2
    fail "$ds: $n of $ROWS rows updated exactly once"
  }
  n=$(sql "SELECT count(*) || ':' || sum(rows) FROM drover.step_ledger
            WHERE dataset = '$ds' AND status = 'done'")
  [ "$n" = "1:$ROWS" ] || fail "$ds: ledger done rows/count is $n"
  n=$(sql "SELECT version FROM drover.datasets WHERE dataset = '$ds'")
  [ "$n" = 2 ] || fail "$ds: dataset version is $n"
}

# 1. kill -9, resume with the same task id
seed ${T}a
plan "$WORK/a.yaml" ${T}a
run_and_kill "$WORK/a.yaml" "${T}-task-a" ${T}a
"$BIN" plan run "$WORK/a.yaml" --dataset ${T}a --task-id "${T}-task-a" \
  --database "$URL" >"$WORK/a.out" 2>"$WORK/a.err" ||
  fail "resume failed: $(cat "$WORK/a.err")"
grep -q "done ${T}a" "$WORK/a.out" || fail "resume output: $(cat "$WORK/a.out")"
grep -q "rows $ROWS/$ROWS" "$WORK/a.err" ||
  fail "no final progress line: $(cat "$WORK/a.err")"
check_exactly_once ${T}a
echo "ok 1 - resume after kill -9, same task: every row updated once"

# 2. kill -9, resume by another task id (takes over the checkpoint)
seed ${T}b
plan "$WORK/b.yaml" ${T}b
run_and_kill "$WORK/b.yaml" "${T}-task-b1" ${T}b
"$BIN" plan run "$WORK/b.yaml" --dataset ${T}b --task-id "${T}-task-b2" \
  --database "$URL" >"$WORK/b.out" 2>"$WORK/b.err" ||
  fail "resume by another task failed: $(cat "$WORK/b.err")"
check_exactly_once ${T}b
n=$(sql "SELECT status FROM drover.step_ledger WHERE task_id = '${T}-task-b1'")
[ "$n" = superseded ] || fail "the killed task's ledger row is $n"
echo "ok 2 - resume after kill -9 by another task: every row updated once"

# 3. two runners at once on one dataset: one runs, one skips
seed ${T}c
plan "$WORK/c.yaml" ${T}c
for i in 1 2; do
  "$BIN" plan run "$WORK/c.yaml" --dataset ${T}c --task-id "${T}-task-c$i" \
    --database "$URL" --batch-pause-ms 2 >"$WORK/c$i.out" 2>"$WORK/c$i.err" &
  PIDS+=($!)
done
wait "${PIDS[-1]}" || fail "runner 2: $(cat "$WORK/c2.err")"
wait "${PIDS[-2]}" || fail "runner 1: $(cat "$WORK/c1.err")"
outcomes=$(cat "$WORK/c1.out" "$WORK/c2.out" | awk '{print $2}' | sort | tr '\n' ' ')
[ "$outcomes" = "done skipped " ] || fail "two runners: outcomes '$outcomes'"
check_exactly_once ${T}c
echo "ok 3 - two runners: one done, one skipped, every row updated once"

# 4. the same plan again is a no-op; a dry run of it changes nothing
"$BIN" plan run "$WORK/a.yaml" --dataset ${T}a --database "$URL" \
  >"$WORK/d.out" 2>&1 || fail "re-run: $(cat "$WORK/d.out")"
grep -q "skipped ${T}a" "$WORK/d.out" || fail "re-run: $(cat "$WORK/d.out")"
check_exactly_once ${T}a
echo "ok 4 - re-running a finished plan is skipped"

for t in a b c; do sql "DROP TABLE ${T}$t; DROP FUNCTION ${T}${t}_cnt()"; done
