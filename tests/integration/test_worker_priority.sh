#!/usr/bin/env bash
# drover - v2's priority orders the dispatch (issue 16, item 1).  One
# partition, one executor: a task whose step waits on a table the test
# keeps locked holds the executor while three tasks of priority 0 and then
# one of priority 5 (other datasets) arrive; once the lock is released the
# priority-5 task runs first, the others in offset order.
. "$(dirname "$0")/worker_lib.sh"

GATE="${ID}_gate"
sql "CREATE TABLE IF NOT EXISTS $EFFECTS (dataset text NOT NULL, at timestamptz DEFAULT now())"
write_plan "${ID}_g" "{op: sql, sql: \"SELECT count(*) FROM $GATE\"}"
for x in l1 l2 l3 h; do
  write_plan "${ID}_$x" \
    "{op: sql, sql: \"INSERT INTO $EFFECTS VALUES ('$x', clock_timestamp())\"}"
done
hold_gate "$GATE"

submit() { # NAME PRIORITY
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --priority "$2" \
    --entity "component:default/${ID//_/-}-$1-v2" --dataset "${ID}_$1" \
    >>"$WORK/ids" || fail "submit $1"
}
$CHECK create "$B" "$TOPIC" 1
submit g 0
DROVER_LOG_LEVEL=debug start_worker "$ID-w" --set concurrency=1 --set lock_timeout_ms=600000 \
  --set statement_timeout_ms=600000
# the gated task holds the only executor before the others arrive
for ((i = 0; i < 150; i++)); do
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'
            AND query LIKE '%FROM $GATE%' AND application_name <> '$GATE'")" -ge 1 ] && break
  sleep 0.2
done
[ "$i" -lt 150 ] || fail "the gated task never started"
submit l1 0
submit l2 0
submit l3 0
submit h 5
# the worker has all four in its window while the executor is held
wait_log "$WORK/$ID-w.log" "partition 0 offset 4: fetched" 1 30
release_gate "$GATE"
wait_events 5 60
order=$(sql "SELECT string_agg(dataset, ',' ORDER BY at) FROM $EFFECTS")
[ "$order" = "h,l1,l2,l3" ] || fail "run order $order, expected h,l1,l2,l3"
check_events
check_offsets
echo "ok"
