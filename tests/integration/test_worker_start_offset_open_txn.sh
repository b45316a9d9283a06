#!/usr/bin/env bash
# drover - where a worker starts a partition while a transaction holding
# offsets for it is still open.
#
# A worker killed -9 inside its transaction leaves the offsets it sent
# pending until the transaction ends; meanwhile the group coordinator
# answers UNSTABLE_OFFSET_COMMIT to a consumer asking where to start.
# librdkafka asks again, but when the assignment changes in between it
# starts the partition at auto.offset.reset (2.0.2, still so upstream).
# With `earliest` the worker re-read tasks the group had committed and
# committed them a second time (the chaos test saw a redelivered task's
# task_runs row rewritten; a later rebalance happened to fence the
# duplicate).  Here: 8 tasks done and committed, a transaction holding
# offsets for the group opened, worker a started, worker b joins (a's
# assignment changes while it asks), the transaction is aborted.  No task
# may run again: still one status event each, no task line in the second
# round of logs.  STRATEGY=range runs the same with the eager protocol.
. "$(dirname "$0")/worker_lib.sh"

STRATEGY=${STRATEGY:-cooperative-sticky}
NDS=8
HOLD=25
make_plans $NDS
$CHECK create "$B" "$TOPIC" 4

stop_all() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" || fail "worker exited $? on SIGTERM"
  done
  PIDS=()
}

# round 1: every task done, offsets committed at the log end
start_worker "$ID-first" --set assignment_strategy="$STRATEGY"
submit_tasks $NDS 1
wait_events $NDS 90
stop_all
$CHECK offsets "$B" "$TOPIC" "$GROUP" | tee "$WORK/offsets1" >&2

# round 2: an open transaction holds the group's offsets
$CHECK open_txn "$B" "$TOPIC" "$GROUP" $HOLD >"$WORK/txn.out" 2>"$WORK/txn.err" &
txn_pid=$!
wait_log "$WORK/txn.out" '^open' 1 60
start_worker "$ID-a" --set assignment_strategy="$STRATEGY"
wait_log "$WORK/$ID-a.log" '"assigned 4 partition' 1 60
sleep 2 # a asks for its committed offsets, told UNSTABLE_OFFSET_COMMIT
start_worker "$ID-b" --set assignment_strategy="$STRATEGY"
wait_log "$WORK/$ID-b.log" '"assigned [1-9] partition' 1 60
wait "$txn_pid" || fail "open_txn failed: $(cat "$WORK/txn.err")"
log "transaction aborted; workers settle"
sleep 10
stop_all

if grep -h '"task \(done\|skipped\|failed\)' "$WORK/$ID-a.log" "$WORK/$ID-b.log" >&2; then
  fail "a task committed before was run again"
fi
grep -h 'partition [0-9]*: \|offset reset\|Failed to fetch' \
  "$WORK/$ID-a.log" "$WORK/$ID-b.log" | sed 's/^.*"msg":"\([^"]*\)".*$/\1/' >&2 || true
$CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/offsets2"
diff "$WORK/offsets1" "$WORK/offsets2" >&2 || fail "committed offsets moved"
check_exactly_once $NDS
echo "ok"
