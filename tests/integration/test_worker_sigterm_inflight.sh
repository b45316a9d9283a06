#!/usr/bin/env bash
# drover - SIGTERM while a slow task (pg_sleep 3 s) runs, drain_timeout_ms
# 10000: the worker exits 0 within the deadline and the task is committed
# exactly once (by it, or by the next worker after redelivery).
. "$(dirname "$0")/worker_lib.sh"

ds="${ID}_ds0"
sql "CREATE TABLE IF NOT EXISTS $EFFECTS (dataset text NOT NULL, at timestamptz DEFAULT now())"
write_plan "$ds" \
  "{op: sql, sql: \"INSERT INTO $EFFECTS (dataset) SELECT '$ds' FROM pg_sleep(3)\"}"
$CHECK create "$B" "$TOPIC" 2
submit_tasks 1 1
start_worker "$ID-a" --set drain_timeout_ms=10000
pid=$LAST_PID
for ((i = 0; i < 300; i++)); do
  [ "$(sql "SELECT count(*) FROM drover.task_runs WHERE dataset = '$ds'
            AND status = 'running'")" = 1 ] && break
  kill -0 "$pid" 2>/dev/null || fail "worker died before the task ran"
  sleep 0.1
done
[ "$i" -lt 300 ] || fail "task never started running"
t0=$(date +%s%N)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
PIDS=()
log "worker exited $rc ${ms} ms after SIGTERM"
[ "$rc" = 0 ] || fail "worker exited $rc on SIGTERM"
[ "$ms" -lt 10000 ] || fail "drain took ${ms} ms (deadline 10000)"
# whatever it did not commit, the next worker does
start_worker "$ID-b"
wait_events 1 60
sleep 2 # a duplicate would show up now
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "second worker exited $? on SIGTERM"
PIDS=()
check_exactly_once 1 1
grep -q "leaving the group" "$WORK/$ID-a.log" || fail "first worker did not leave the group"
echo "ok"
