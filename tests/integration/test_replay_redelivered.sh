#!/usr/bin/env bash
# drover - a replayed task whose first replayed delivery dies before its
# Kafka commit still reports `skipped`.  The replayed delivery crashes
# after its PostgreSQL work (DROVER_CRASH_AT=after_pg_commit), so nothing
# of it commits to Kafka; its one-transaction run recorded its pending
# outcome but left the row's committed `done` (a `running` write never
# takes back the final status of the same delivery), and the next
# delivery must still know that the task's outcome had committed before
# the replay (task_runs.committed_status).  Before,
# it found the row `running`, took it for a crash redelivery of the first
# run, and reported `done` a second time (seen under valgrind in
# test_replay_worker, with a rebalance in place of the crash).
. "$(dirname "$0")/worker_lib.sh"
require_test_hooks

make_plans 1
$CHECK create "$B" "$TOPIC" 1
t0=$(($(date +%s%3N) - 1000))
submit_tasks 1 1
task=$(cat "$WORK/ids")
stop_workers() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p"
    wait "$p" || fail "worker exited $? on SIGTERM"
  done
  PIDS=()
}
status() { sql "SELECT status FROM drover.task_runs WHERE task_id = '$task'"; }

# 1. the task runs and commits
start_worker "$ID-a"
wait_events 1 90
wait_final 1 30
stop_workers
[ "$(status)" = done ] || fail "first run: task_runs says $(status)"

# 2. replay; the replayed delivery dies after its PostgreSQL work
"$DROVER_BIN" replay --brokers "$B" --topic "$TOPIC" --group "$GROUP" \
  --from "$t0" --execute --wait 30 >/dev/null || fail "replay --execute failed"
DROVER_CRASH_AT=after_pg_commit:1 start_worker "$ID-a"
rc=0
wait "$LAST_PID" || rc=$?
PIDS=()
[ "$rc" = 137 ] || fail "worker with DROVER_CRASH_AT=after_pg_commit exited $rc, not 137"
[ "$(status)" = done ] || fail "after the crash task_runs says $(status), not done"
[ "$(sql "SELECT pending_status FROM drover.task_runs WHERE task_id = '$task'")" = skipped ] ||
  fail "the crashed replay did not record its pending skipped"

# 3. the next delivery: skipped, one new event, no effect twice
start_worker "$ID-a"
wait_events 2 90
wait_final 1 30
stop_workers
got=$($CHECK events "$B" "$TOPIC.status" | grep -o '"status":"[a-z_]*"' | tr '\n' ' ')
[ "$got" = '"status":"done" "status":"skipped" ' ] ||
  fail "status events: $got (want done, then skipped)"
[ "$(status)" = skipped ] || fail "task_runs says $(status), not skipped"
[ "$(sql "SELECT count(*) FROM $EFFECTS")" = 1 ] ||
  fail "the plan's sql step ran $(sql "SELECT count(*) FROM $EFFECTS") times"
$CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/offsets"
awk '$3 > 0 && $2 != $3 { bad = 1 } END { exit bad }' "$WORK/offsets" ||
  fail "offsets not at the log end: $(tr '\n' ' ' <"$WORK/offsets")"
echo "ok"
