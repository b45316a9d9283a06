#!/usr/bin/env bash
# drover - a task longer than max.poll.interval.ms (6 s here; the task
# sleeps 8 s in PostgreSQL) completes without the worker losing its
# partitions: the poll thread keeps polling while the partition is paused.
. "$(dirname "$0")/worker_lib.sh"

make_plans 2
ds="${ID}_ds0"
write_plan "$ds" \
  "{op: sql, sql: \"SELECT pg_sleep(8)\"}" \
  "{op: sql, sql: \"INSERT INTO $EFFECTS (dataset) VALUES ('$ds')\"}"
$CHECK create "$B" "$TOPIC" 2
start_worker "$ID-long" -X max.poll.interval.ms=6000
submit_tasks 2 2
wait_events 4 90
grep -q 'maximum poll interval\|MAXPOLL' "$WORK/$ID-long.log" &&
  fail "max.poll.interval.ms exceeded"
grep -q '"revoked' "$WORK/$ID-long.log" && fail "partitions were revoked mid-task"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
check_exactly_once 2
echo "ok"
