#!/usr/bin/env bash
# drover - tests/integration/test_worker_rollback.sh
#
# 'drover rollback' end to end through a real worker (issue 19 item 1):
#   1. two plans (1 -> 2 -> 3) with every reversible op but copy_rows
#      (test_rollback.c has it) run through the worker;
#   2. the dry run prints the steps newest first and changes nothing;
#   3. --execute submits a rollback task; a worker undoes the steps and
#      dies right after its PostgreSQL commit (DROVER_CRASH_AT), the next
#      one gets the task again and finds it done: the dataset is back at
#      version 1 with its schema and data as they were, each step undone
#      once, the ledger holding both directions, one status event per
#      task;
#   4. the forward plans run again through the worker afterwards;
#   5. a plan with drop_column: the CLI refuses (exit 65, one line naming
#      the dataset, the plan and step 1:drop_column) and submits nothing;
#      a rollback task from another producer (v1 Avro, params only) is a
#      dead letter invalid_plan at the worker, one whose version moved a
#      dead letter version_conflict, and nothing changed.
. "$(dirname "$0")/worker_lib.sh"
require_test_hooks

A="${ID}_a" # reversible
R="${ID}_r" # with drop_column
sql "CREATE TABLE ${A}_t (id bigint PRIMARY KEY, x int, name text)"
sql "INSERT INTO ${A}_t SELECT g, g, 'n' || g FROM generate_series(1, 300) g"
sql "CREATE TABLE ${R}_t (id bigint PRIMARY KEY, x int)"
sql "INSERT INTO ${R}_t SELECT g, g FROM generate_series(1, 10) g"

# columns, types, indexes and data of A's tables, one line
snapshot() {
  sql "SELECT concat_ws(' | ',
         (SELECT string_agg(attrelid::regclass || '.' || attname || ':' ||
                 format_type(atttypid, atttypmod), ', '
                 ORDER BY attrelid::regclass::text, attname)
            FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped AND
            attrelid::regclass::text LIKE '${A}%'),
         (SELECT string_agg(indexname, ', ' ORDER BY indexname)
            FROM pg_indexes WHERE tablename LIKE '${A}%'),
         (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM ${A}_t t))"
}

write_plan "$A" \
  "{op: add_column, table: ${A}_t, column: {name: dbl, type: bigint}}" \
  "{op: backfill, table: ${A}_t, set: {dbl: \"id * 2\"}, batch_size: 64, revert_set: {dbl: \"NULL\"}}" \
  "{op: rename_column, table: ${A}_t, from: name, to: label}" \
  "{op: create_index, table: ${A}_t, name: ${A}_dbl, columns: [dbl], concurrently: true}"
PLAN_TO=3 write_plan "$A" \
  "{op: create_table, table: ${A}_side, columns: [{name: id, type: bigint, primary_key: true}]}" \
  "{op: alter_type, table: ${A}_t, column: x, type: text, using: \"x::text\", revert_using: \"x::integer\"}" \
  "{op: sql, sql: \"INSERT INTO ${A}_side SELECT id FROM ${A}_t WHERE id <= 5\", revert: \"DELETE FROM ${A}_side\"}" \
  "{op: validate, not_null: [${A}_t.dbl]}"
write_plan "$R" \
  "{op: add_column, table: ${R}_t, column: {name: y, type: int}}" \
  "{op: drop_column, table: ${R}_t, column: x}"

sub() { # ENTITY DATASET: one task through drover submit
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --entity "$1" \
    --dataset "$2" >>"$WORK/ids" || fail "submit $1"
}
version() { sql "SELECT version FROM drover.datasets WHERE dataset = '$1'"; }
rollback() { # ARGS...: drover rollback, output in $WORK/rb.{out,err}
  DATABASE_URL="$DB" "$DROVER_BIN" rollback "$@" >"$WORK/rb.out" 2>"$WORK/rb.err"
}

# 1. forward
BEFORE=$(snapshot)
start_worker "$ID-w"
W1=$LAST_PID
sub "component:default/${A//_/-}-v2" "$A"
wait_final 1 60
AFTER2=$(snapshot)
sub "component:default/${A//_/-}-v3" "$A"
sub "component:default/${R//_/-}-v2" "$R"
wait_final 3 60
[ "$(version "$A")" = 3 ] || fail "A at version $(version "$A"), want 3"
[ "$(version "$R")" = 2 ] || fail "R at version $(version "$R"), want 2"
[ "$(sql "SELECT count(*) FROM ${A}_side")" = 5 ] || fail "sql step"
echo "ok 1 - two plans on A and one on R ran through the worker"

# 2. the dry run
rollback --dataset "$A" --to-version 1 || fail "dry run: $(cat "$WORK/rb.err")"
head -1 "$WORK/rb.out" | grep -q "dataset \"$A\": version 3 -> 1, 8 step(s) to undo, newest first" ||
  fail "dry run header: $(cat "$WORK/rb.out")"
got=$(awk 'NR > 1 { print $6 }' "$WORK/rb.out" | tr '\n' ' ')
[ "$got" = "3:validate 2:sql 1:alter_type 0:create_table 3:create_index 2:rename_column 1:backfill 0:add_column " ] ||
  fail "dry run order: $got"
grep -q 'step 1:backfill  undo {"op":"update","table":"'"${A}_t"'","set":{"dbl":"NULL"}}' "$WORK/rb.out" ||
  fail "dry run inverse: $(cat "$WORK/rb.out")"
rollback --dataset "$A" --to-version 1 --json || fail "dry run --json"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["version"] == 3 and len(d["steps"]) == 8 and "refusal" not in d, d' \
  "$WORK/rb.out" || fail "dry run json"
[ "$(version "$A")" = 3 ] || fail "the dry run moved the version"
echo "ok 2 - the dry run lists the 8 steps newest first with their inverses"

# 3. --execute through a worker that crashes after its commit
kill -TERM "$W1"
wait "$W1" || true
rollback --dataset "$A" --to-version 1 --execute --brokers "$B" --topic "$TOPIC" ||
  fail "execute: $(cat "$WORK/rb.err")"
DROVER_CRASH_AT=after_pg_commit:1 start_worker "$ID-c"
rc=0
for ((i = 0; i < 60; i++)); do
  kill -0 "$LAST_PID" 2>/dev/null || break
  sleep 1
done
wait "$LAST_PID" || rc=$?
[ "$rc" = 137 ] || fail "the crashing worker exited $rc, not 137"
[ "$(version "$A")" = 1 ] || fail "the crashed rollback did not commit its work"
start_worker "$ID-w2"
RBID=$(cat "$WORK/rb.out")
drv_uuid_ok=$(echo "$RBID" | grep -cE '^[0-9a-f-]{36}$' || true)
[ "$drv_uuid_ok" = 1 ] || fail "execute printed no task id: $RBID"
echo "$RBID" >>"$WORK/ids"
wait_final 4 60
[ "$(sql "SELECT status FROM drover.task_runs WHERE task_id = '$RBID'")" = done ] ||
  fail "rollback task: $(sql "SELECT status, last_error FROM drover.task_runs WHERE task_id = '$RBID'")"
[ "$(version "$A")" = 1 ] || fail "A at version $(version "$A") after the rollback"
[ "$(snapshot)" = "$BEFORE" ] || fail "schema/data after the rollback:
$(snapshot)
want
$BEFORE"
[ "$(sql "SELECT entity_ref FROM drover.task_runs WHERE task_id = '$RBID'")" = "rollback:default/${A//_/-}-v3" ] ||
  fail "rollback task entity ref"
[ "$(sql "SELECT count(*) FROM drover.step_ledger WHERE dataset = '$A' AND status = 'rolled_back'")" = 8 ] ||
  fail "forward rows not kept as rolled_back"
[ "$(sql "SELECT count(*) FROM drover.step_ledger WHERE task_id = '$RBID' AND status = 'done'")" = 8 ] ||
  fail "rollback rows"
"$DROVER_BIN" status --dataset "$A" --database "$DB" >"$WORK/status.out" || fail "status"
grep -q "rollback" "$WORK/status.out" || fail "drover status does not show the rollback: $(cat "$WORK/status.out")"
echo "ok 3 - --execute: a worker undid 8 steps and crashed after its commit; its redelivery is done; A is back at version 1 as it was"

# 4. forward again
sub "component:default/${A//_/-}-v2" "$A"
wait_final 5 60
[ "$(snapshot)" = "$AFTER2" ] || fail "plan v2 again: $(snapshot)"
sub "component:default/${A//_/-}-v3" "$A"
wait_final 6 60
[ "$(version "$A")" = 3 ] || fail "A at $(version "$A") after the plans again"
echo "ok 4 - the forward plans run again after the rollback"

# 5. refusals: the CLI, then the worker for tasks of another producer
rc=0
rollback --dataset "$R" --to-version 1 || rc=$?
[ $rc = 65 ] || fail "dry run over drop_column: exit $rc, want 65"
[ "$(wc -l <"$WORK/rb.err")" = 1 ] || fail "refusal not one line: $(cat "$WORK/rb.err")"
grep -q "cannot roll back dataset \"$R\" to version 1: step 1:drop_column of plan \"component:default/${R//_/-}-v2\"" \
  "$WORK/rb.err" || fail "refusal: $(cat "$WORK/rb.err")"
rc=0
rollback --dataset "$R" --to-version 1 --execute --brokers "$B" --topic "$TOPIC" || rc=$?
[ $rc = 65 ] && [ ! -s "$WORK/rb.out" ] || fail "execute over drop_column: exit $rc: $(cat "$WORK/rb.out")"
rc=0
rollback --dataset "bad;name" --to-version 1 --database "postgresql://127.0.0.1:1/none" || rc=$?
[ $rc = 65 ] && grep -q "invalid dataset" "$WORK/rb.err" || fail "bad dataset: exit $rc: $(cat "$WORK/rb.err")"
rc=0
rollback --dataset "$A" --to-version 3 || rc=$?
[ $rc = 65 ] && grep -q "nothing to roll back" "$WORK/rb.err" || fail "to the version: $rc"

# v1 tasks written without drover (params only, as a Java producer would)
produce_task "rollback:default/${R//_/-}" "$R" '{"drover.rollback_to": "1"}'
produce_task "rollback:default/${A//_/-}" "$A" \
  '{"drover.rollback_to": "1", "drover.rollback_from": "2"}'
wait_final 8 60
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
/usr/bin/python3 - "$WORK/dlq" "$R" "$A" <<'PY' || fail "dead letters: $(cat "$WORK/dlq")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
got = sorted((r["key"], r["headers"]["drover.error.class"]) for r in recs)
want = sorted([(sys.argv[2], "invalid_plan"), (sys.argv[3], "version_conflict")])
assert got == want, got
msg = [r["headers"]["drover.error.message"] for r in recs if r["key"] == sys.argv[2]][0]
assert "step 1:drop_column" in msg, msg
PY
[ "$(version "$R")" = 2 ] && [ "$(version "$A")" = 3 ] || fail "a refused rollback moved a version"
[ "$(sql "SELECT count(*) FROM drover.step_ledger WHERE dataset = '$R' AND status = 'rolled_back'")" = 0 ] ||
  fail "a refused rollback marked rows"
echo "ok 5 - refusals: the CLI exits 65 naming step 1:drop_column; the worker dead-letters invalid_plan and version_conflict"

check_events
check_offsets
echo "ok 6 - one status event per task, offsets at the log end"
