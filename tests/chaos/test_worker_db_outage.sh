#!/usr/bin/env bash
# drover - PostgreSQL goes away mid-run (scripts/pg.sh pause) and comes
# back: the worker pauses all partitions instead of dead-lettering, probes
# the database, resumes, and every task still completes exactly once.
# Chaos label: it stops the stack's PostgreSQL for a while.
. "$(dirname "$0")/../integration/worker_lib.sh"

[ -n "${DROVER_STACK_DIR:-}" ] || DROVER_STACK_DIR=$(cd "$HERE/../.." && pwd)/.stack
export DROVER_STACK_DIR
PG="$HERE/../../scripts/pg.sh"
NDS=8
make_plans $NDS
$CHECK create "$B" "$TOPIC" 4
start_worker "$ID-o"
submit_tasks $NDS 2
sleep 1
"$PG" pause
log "postgresql paused"
submit_tasks $NDS 2
sleep 6
"$PG" resume
log "postgresql resumed"
grep -q 'database unreachable: pausing all partitions' "$WORK/$ID-o.log" ||
  fail "the worker did not notice the outage"
n=$(wc -l <"$WORK/ids")
wait_events "$n" 120
grep -q '"status":"dead"' <($CHECK events "$B" "$TOPIC.status") &&
  fail "a task was dead-lettered during the outage"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
check_exactly_once $NDS 0
echo "ok"
