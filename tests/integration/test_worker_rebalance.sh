#!/usr/bin/env bash
# drover - a 4th worker joins mid-run and one leaves (SIGTERM) mid-run:
# every task still has exactly one committed status event, every plan step
# ran once, offsets reach the log end; the leaver exits 0 within its drain
# deadline.  STRATEGY=range runs the same with the eager protocol.
. "$(dirname "$0")/worker_lib.sh"

STRATEGY=${STRATEGY:-cooperative-sticky}
NDS=30
make_plans $NDS
$CHECK create "$B" "$TOPIC" 12
for w in a b c; do
  start_worker "$ID-$w" --set assignment_strategy="$STRATEGY" \
    --set drain_timeout_ms=10000
  eval "pid_$w=$LAST_PID"
done
submit_tasks $NDS 5
sleep 2
start_worker "$ID-d" --set assignment_strategy="$STRATEGY"
submit_tasks $NDS 3
sleep 1
t0=$(date +%s)
kill -TERM "$pid_b"
rc=0
wait "$pid_b" || rc=$?
t1=$(date +%s)
[ "$rc" = 0 ] || fail "worker b exited $rc on SIGTERM"
[ $((t1 - t0)) -le 20 ] || fail "worker b took $((t1 - t0))s to drain (deadline 10s)"
grep -q '"leaving the group"' "$WORK/$ID-b.log" || fail "worker b did not leave the group"
log "worker b left in $((t1 - t0))s"
submit_tasks $NDS 2
n=$(wc -l <"$WORK/ids")
wait_events "$n" 180
grep -h 'assigned\|revoked' "$WORK"/*.log | sed 's/^.*"msg":"\([^"]*\)".*$/\1/' | sort | uniq -c >&2
for p in "${PIDS[@]}"; do
  [ "$p" = "$pid_b" ] && continue
  kill -TERM "$p"
  wait "$p" || fail "worker exited $? on SIGTERM"
done
PIDS=()
# a task revoked mid-run may be redelivered and report 'skipped'
check_exactly_once $NDS 0
echo "ok"
