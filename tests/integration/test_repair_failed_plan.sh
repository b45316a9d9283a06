#!/usr/bin/env bash
# drover - tests/integration/test_repair_failed_plan.sh
#
# 'drover repair' on datasets whose plan really failed part-way under
# 'drover plan run' (the runner the worker uses): a backfill in batches of
# 2 that divides by zero at id 6 leaves its ledger row `running` with the
# checkpoint of id 4.
#   1. the dry run shows that row and changes nothing;
#   2. --clear-failed: after the operator resets the column by hand, the
#      plan runs again from the first row (a control dataset without the
#      repair resumes at id 5 and leaves ids 1-4 unset);
#   3. --set-version: after the operator finishes the migration by hand,
#      the next plan (2 -> 3) runs; before the repair it was refused;
#   4. a runner really running (--batch-pause-ms) holds the dataset:
#      --execute is refused with exit 69 and changes nothing.
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
T=rpf$$
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for t in a c v r; do sql "DROP TABLE IF EXISTS ${T}$t" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
sql() { psql "$URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# table $1 with ids 1..$2 and an empty column x
seed() {
  sql "CREATE TABLE $1 (id bigint PRIMARY KEY, x bigint)"
  sql "INSERT INTO $1 (id) SELECT g FROM generate_series(1, $2) g"
}

# plan file $1 for dataset/table $2: $3 -> $4 with steps $5
plan() {
  cat >"$1" <<YAML
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: $2-v$4
spec:
  type: migration-plan
  lifecycle: production
  owner: team-test
  dataset: $2
  schemaVersion: {from: $3, to: $4}
  steps:
$5
YAML
}

BACKFILL='    - {op: backfill, table: TBL, set: {x: "100 / (id - 6)"}, batch_size: 2}'

# run plan $1 on dataset $2 (extra args after), output in $WORK/run.*
run_plan() {
  local planfile=$1 ds=$2
  shift 2
  "$BIN" plan run "$planfile" --dataset "$ds" --database "$URL" "$@" \
    >"$WORK/run.out" 2>"$WORK/run.err"
}

repair() {
  "$BIN" repair --database "$URL" "$@" >"$WORK/rep.out" 2>"$WORK/rep.err"
}

# a dataset $1 whose v1 -> v2 backfill failed at id 6
failed_dataset() {
  seed "$1" 10
  plan "$WORK/$1.yaml" "$1" 1 2 "${BACKFILL//TBL/$1}"
  if run_plan "$WORK/$1.yaml" "$1"; then fail "$1: the plan did not fail"; fi
  grep -q "division by zero" "$WORK/run.out" "$WORK/run.err" ||
    fail "$1: not the planned failure: $(cat "$WORK/run.out" "$WORK/run.err")"
}

ledger() {
  sql "SELECT status || ':' || coalesce(checkpoint->>'last', '-')
         FROM drover.step_ledger WHERE dataset = '$1' ORDER BY started_at"
}

# 1. the dry run
failed_dataset ${T}a
[ "$(ledger ${T}a)" = "running:4" ] || fail "ledger after the failure: $(ledger ${T}a)"
repair --dataset ${T}a || fail "dry run: $(cat "$WORK/rep.err")"
grep -q "version 1" "$WORK/rep.out" || fail "dry run: no version: $(cat "$WORK/rep.out")"
grep -q 'running .*{"last":4}' "$WORK/rep.out" ||
  fail "dry run: no running row: $(cat "$WORK/rep.out")"
grep -q "would delete 1 ledger row" "$WORK/rep.out" ||
  fail "dry run: no plan: $(cat "$WORK/rep.out")"
[ "$(ledger ${T}a)" = "running:4" ] || fail "the dry run changed the ledger"
echo "ok 1 - the dry run shows the failed plan's running row and changes nothing"

# 2. --clear-failed, against a control that resumes from the checkpoint
failed_dataset ${T}c
for ds in ${T}a ${T}c; do
  sql "DELETE FROM $ds WHERE id = 6; UPDATE $ds SET x = NULL"
done
rc=0
repair --dataset ${T}a --execute --reason "reset x by hand" || rc=$?
[ $rc -eq 2 ] || fail "--execute without an action: exit $rc, want 2"
repair --dataset ${T}a --execute --clear-failed --reason "reset x by hand" ||
  fail "clear: $(cat "$WORK/rep.err")"
grep -q "repaired dataset \"${T}a\": version 1, 1 unfinished row(s) -> version 1, 0 unfinished row(s)" \
  "$WORK/rep.out" || fail "clear output: $(cat "$WORK/rep.out")"
[ -z "$(ledger ${T}a)" ] || fail "ledger after the clear: $(ledger ${T}a)"
for ds in ${T}a ${T}c; do
  run_plan "$WORK/$ds.yaml" $ds || fail "$ds: rerun: $(cat "$WORK/run.err")"
done
n=$(sql "SELECT count(*) FROM ${T}c WHERE x IS NULL")
[ "$n" = 4 ] || fail "control: $n rows unset, want 4 (resumed from id 4)"
n=$(sql "SELECT count(*) FROM ${T}a WHERE x IS NULL")
[ "$n" = 0 ] || fail "after --clear-failed: $n rows unset, want 0"
n=$(sql "SELECT count(*) || ' ' || min(who) || ' ' || min(reason)
           FROM drover.repair_audit WHERE dataset = '${T}a'")
[ "$n" = "1 cli:$(id -un)@$(hostname) reset x by hand" ] || fail "audit: $n"
echo "ok 2 - --clear-failed: the plan runs again from the first row, audited"

# 3. --set-version after finishing the migration by hand
failed_dataset ${T}v
plan "$WORK/${T}v-3.yaml" ${T}v 2 3 \
  "    - {op: add_column, table: ${T}v, column: {name: y, type: int}}"
if run_plan "$WORK/${T}v-3.yaml" ${T}v; then fail "v3 ran on version 1"; fi
grep -q "is at version 1" "$WORK/run.out" "$WORK/run.err" ||
  fail "v3 refusal: $(cat "$WORK/run.out" "$WORK/run.err")"
sql "UPDATE ${T}v SET x = CASE WHEN id = 6 THEN 0 ELSE 100 / (id - 6) END"
repair --dataset ${T}v --execute --clear-failed --set-version 2 \
  --reason "finished the backfill by hand" || fail "set: $(cat "$WORK/rep.err")"
[ "$(sql "SELECT version FROM drover.datasets WHERE dataset = '${T}v'")" = 2 ] ||
  fail "version not set"
run_plan "$WORK/${T}v-3.yaml" ${T}v || fail "v3 after repair: $(cat "$WORK/run.err")"
[ "$(sql "SELECT version FROM drover.datasets WHERE dataset = '${T}v'")" = 3 ] ||
  fail "v3 did not move the version"
repair --history --dataset ${T}v || fail "history: $(cat "$WORK/rep.err")"
grep -q "version 1, 1 unfinished row(s) -> version 2, 0 unfinished row(s); reason: finished the backfill by hand" \
  "$WORK/rep.out" || fail "history: $(cat "$WORK/rep.out")"
"$BIN" status --dataset ${T}v --database "$URL" >"$WORK/status.out" ||
  fail "status failed"
grep -A1 '^last repairs' "$WORK/status.out" | grep -q "${T}v by cli:.*reason: finished the backfill by hand" ||
  fail "drover status shows no repair: $(cat "$WORK/status.out")"
echo "ok 3 - --set-version lets the next plan run; history and status show it"

# 4. a runner at work holds the dataset
seed ${T}r 40
plan "$WORK/${T}r.yaml" ${T}r 1 2 \
  "    - {op: backfill, table: ${T}r, set: {x: \"id\"}, batch_size: 1}"
"$BIN" plan run "$WORK/${T}r.yaml" --dataset ${T}r --database "$URL" \
  --batch-pause-ms 150 >"$WORK/r.out" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 200; i++)); do
  [ -n "$(ledger ${T}r)" ] && break
  sleep 0.05
done
[ -n "$(ledger ${T}r)" ] || fail "the runner did not start"
rc=0
repair --dataset ${T}r --execute --clear-failed --reason "too early" || rc=$?
[ $rc -eq 69 ] || fail "repair during a run: exit $rc, want 69: $(cat "$WORK/rep.err")"
grep -q "is held by a runner" "$WORK/rep.err" || fail "refusal: $(cat "$WORK/rep.err")"
[ "$(ledger ${T}r)" != "" ] || fail "the refused repair cleared the ledger"
wait "${PIDS[-1]}" || fail "the runner failed: $(cat "$WORK/r.out")"
[ "$(sql "SELECT count(*) FROM drover.repair_audit WHERE dataset = '${T}r'")" = 0 ] ||
  fail "a refused repair wrote an audit row"
echo "ok 4 - a runner at work holds the dataset: --execute exits 69"
