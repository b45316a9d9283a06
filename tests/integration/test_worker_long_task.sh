#!/usr/bin/env bash
# drover - a task longer than max.poll.interval.ms (6 s here; the task
# sleeps 8 s in PostgreSQL) completes without the worker losing its
# partitions: the poll thread keeps polling while the partition is paused.
# Its plan runs in one transaction, which writes the task's row only when
# it commits: while it sleeps the row must still show `running` (the
# finalizer writes it for a run longer than a second).
. "$(dirname "$0")/worker_lib.sh"

make_plans 2
ds="${ID}_ds0"
write_plan "$ds" \
  "{op: sql, sql: \"SELECT pg_sleep(8)\"}" \
  "{op: sql, sql: \"INSERT INTO $EFFECTS (dataset) VALUES ('$ds')\"}"
$CHECK create "$B" "$TOPIC" 2
start_worker "$ID-long" -X max.poll.interval.ms=6000
submit_tasks 2 2
for ((i = 0; i < 300; i++)); do
  st=$(sql "SELECT string_agg(status, ',' ORDER BY status) FROM
            drover.task_runs WHERE dataset = '$ds'")
  [[ ",$st," == *,running,* ]] && break
  sleep 0.1
done
[[ ",$st," == *,running,* ]] ||
  fail "no row of the sleeping task's dataset shows running during its run: \"$st\""
wait_events 4 90
grep -q 'maximum poll interval\|MAXPOLL' "$WORK/$ID-long.log" &&
  fail "max.poll.interval.ms exceeded"
grep -q '"revoked' "$WORK/$ID-long.log" && fail "partitions were revoked mid-task"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
check_exactly_once 2
echo "ok"
