#!/usr/bin/env bash
# drover - PostgreSQL goes away for 30 s under load (scripts/pg.sh pause)
# and comes back (issue 6): the worker pauses all partitions instead of
# dead-lettering, probes the database without a hot loop (its CPU stays
# under 5 % of one core during the outage), resumes, and every task still
# completes exactly once.  It stops the stack's PostgreSQL for a while, so
# it must not run beside other tests (scripts/test.sh runs the integration
# label serially).
. "$(dirname "$0")/worker_lib.sh"

[ -n "${DROVER_STACK_DIR:-}" ] || DROVER_STACK_DIR=$(cd "$HERE/../.." && pwd)/.stack
export DROVER_STACK_DIR
PG="$HERE/../../scripts/pg.sh"
OUTAGE_S=${OUTAGE_S:-30}
NDS=12
make_plans $NDS
$CHECK create "$B" "$TOPIC" 12
start_worker "$ID-o"
submit_tasks $NDS 2
sleep 1

# CPU ticks (user + system) of a process, from /proc/PID/stat
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

"$PG" pause
log "postgresql paused for ${OUTAGE_S}s"
trap '"$PG" resume >/dev/null 2>&1 || true; cleanup' EXIT
submit_tasks $NDS 2 # load arriving during the outage
sleep 3             # let the worker notice
t0=$(cpu_ticks "$LAST_PID")
sleep $((OUTAGE_S - 3))
t1=$(cpu_ticks "$LAST_PID")
"$PG" resume
log "postgresql resumed"
hz=$(getconf CLK_TCK)
pct=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s=$((OUTAGE_S - 3)) \
  'BEGIN { printf "%.1f", 100 * d / hz / s }')
log "worker cpu during the outage: ${pct}% of one core"
awk -v p="$pct" 'BEGIN { exit !(p < 5) }' ||
  fail "worker used ${pct}% cpu during the outage (hot loop?)"
grep -q 'database unreachable: pausing all partitions' "$WORK/$ID-o.log" ||
  fail "the worker did not notice the outage"
n=$(wc -l <"$WORK/ids")
wait_events "$n" 180
grep -q '"status":"dead"' <($CHECK events "$B" "$TOPIC.status") &&
  fail "a task was dead-lettered during the outage"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
check_exactly_once $NDS 0
echo "ok"
