#!/usr/bin/env bash
# drover - KIP-447 fencing of a worker that lost its group session.
#
# Worker a has finished the PostgreSQL work of some tasks and begun the
# transaction of their outcomes when it freezes (DROVER_STOP_AT, just
# before it sends the offsets: where a broker outage stalled it in the
# chaos run).  Its session times out, worker b takes the partition and
# redoes those tasks (the ledger keeps the steps from running twice) and
# commits them.  When a resumes (SIGCONT) and sends its offsets, the group
# coordinator must refuse the offsets of a generation the group has left,
# so the transaction aborts: every task has exactly one committed status
# event.  Before the fix the worker sent the group metadata it took before
# joining (generation -1), which the coordinator accepts unchecked, and a
# committed a second event per task.
. "$(dirname "$0")/worker_lib.sh"
require_test_hooks

NDS=6
make_plans $NDS
$CHECK create "$B" "$TOPIC" 1

submit_ds() { # submit_ds I: one task for dataset I
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
    --entity "component:default/${ID//_/-}-ds$1-v2" --dataset "${ID}_ds$1" \
    >>"$WORK/ids" || fail "submit failed"
}

export DROVER_STOP_AT=before_send_offsets:2 # the commit after the warm-up
start_worker "$ID-a"
pid_a=$LAST_PID
unset DROVER_STOP_AT
wait_log "$WORK/$ID-a.log" '"assigned 1 partition' 1 60
start_worker "$ID-b"
pid_b=$LAST_PID
wait_log "$WORK/$ID-b.log" '"assigned 0 partition' 1 60
submit_ds 0 # a warm-up task: a's first commit goes through
wait_events 1 60
for ((i = 1; i < NDS; i++)); do submit_ds $i; done
wait_log "$WORK/$ID-a.log" '"stop point before_send_offsets' 1 30
frozen=$(grep -c '"task done' "$WORK/$ID-a.log")
log "worker a frozen in its transaction after $frozen task(s) done"
# a's 6 s session expires; b takes the partition and commits the tasks
wait_log "$WORK/$ID-b.log" '"assigned 1 partition' 1 60
wait_events $NDS 90
kill -CONT "$pid_a"
# a sends its offsets with its old generation: refused, aborted
sleep 10
for p in "$pid_a" "$pid_b"; do
  kill -TERM "$p"
  wait "$p" || fail "worker exited $? on SIGTERM"
done
PIDS=()
grep -h 'UNKNOWN_MEMBER\|ILLEGAL_GENERATION\|assignment lost\|abort' \
  "$WORK/$ID-a.log" | sed 's/^.*"msg":"\([^"]*\)".*$/\1/' | sort | uniq -c >&2 || true
check_exactly_once $NDS 0
echo "ok"
