#!/usr/bin/env bash
# drover - a task that always times out (57014, transient) with a small
# backoff budget ends in the DLQ as retries_exhausted with
# drover.retry.after.ms; 'drover dlq redrive --due --execute' after that
# time brings it back and, the cause removed, it succeeds once.
. "$(dirname "$0")/worker_lib.sh"

ds="${ID}_ds0"
sql "CREATE TABLE IF NOT EXISTS $EFFECTS (dataset text NOT NULL, at timestamptz DEFAULT now())"
write_plan "$ds" \
  "{op: sql, sql: \"INSERT INTO $EFFECTS (dataset) SELECT '$ds' FROM pg_sleep(1.5)\"}"
$CHECK create "$B" "$TOPIC" 2
submit_tasks 1 1
# the cause: statement_timeout 300 ms < the step's 1.5 s
start_worker "$ID-a" --set statement_timeout_ms=300 --set backoff.initial_ms=100 \
  --set backoff.max_delay_ms=500 --set backoff.max_attempts=3
wait_events 1 60
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
/usr/bin/python3 - "$WORK/dlq" <<'PY' || fail "dead letter"
import json, sys, time
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(recs) == 1, "%d dead letters" % len(recs)
h = recs[0]["headers"]
assert h["drover.error.class"] == "retries_exhausted", h["drover.error.class"]
assert h["drover.attempts"] == "3", h["drover.attempts"]
assert h["drover.error.sqlstate"] == "57014", h["drover.error.sqlstate"]
ra = int(h["drover.retry.after.ms"])
assert ra > int(h["drover.last.failure.ms"]), h
print("# retries_exhausted after", h["drover.attempts"], "attempts, retry after",
      ra, file=sys.stderr)
PY
[ "$(sql "SELECT count(*) FROM $EFFECTS")" = 0 ] || fail "a timed-out step left effects"
sleep 1 # past drover.retry.after.ms (now + max_delay 500 ms)
"$DROVER_BIN" dlq redrive --due --execute --brokers "$B" --topic "$TOPIC" \
  --group "$GROUP" >"$WORK/redrive" 2>&1 || fail "redrive: $(cat "$WORK/redrive")"
# cause removed: the default statement timeout
start_worker "$ID-b"
wait_events 2 60
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
$CHECK events "$B" "$TOPIC.status" >"$WORK/events"
grep -q '"status":"dead"' "$WORK/events" || fail "no dead event"
grep -q '"status":"done"' "$WORK/events" || fail "redriven task not done: $(cat "$WORK/events")"
[ "$(wc -l <"$WORK/events")" = 2 ] || fail "events: $(cat "$WORK/events")"
[ "$(sql "SELECT count(*) FROM $EFFECTS")" = 1 ] || fail "step effects not exactly once"
[ "$(sql "SELECT status FROM drover.task_runs WHERE dataset = '$ds'")" = done ] ||
  fail "task_runs not done"
echo "ok"
