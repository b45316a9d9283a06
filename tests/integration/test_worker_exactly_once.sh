#!/usr/bin/env bash
# drover - 500 tasks over 12 partitions, 3 worker processes: every task has
# exactly one committed status event, every plan step ran once, and the
# group's committed offsets reach the log end.
. "$(dirname "$0")/worker_lib.sh"

NDS=50 PER=10
make_plans $NDS
$CHECK create "$B" "$TOPIC" 12
for w in a b c; do start_worker "$ID-$w"; done
t0=$(date +%s)
submit_tasks $NDS $PER
[ "$(wc -l <"$WORK/ids")" = $((NDS * PER)) ] || fail "submit printed $(wc -l <"$WORK/ids") ids"
wait_final $((NDS * PER)) 240
wait_events $((NDS * PER)) 60
t1=$(date +%s)
log "500 tasks final in $((t1 - t0))s with 3 workers"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "worker exited $? on SIGTERM"; done
PIDS=()
check_exactly_once $NDS
echo "ok"
