#!/usr/bin/env bash
# drover - a statement error on a live connection is never an outage.
# Task 0's step fails with 08P01 (protocol_violation, what PostgreSQL
# answers a bind that does not match our statement): a permanent `sql`
# dead letter on the first attempt.  Task 1's fails with 08006 although
# the connection stays up: db_unavailable, but the database answered, so
# it counts attempts and ends as retries_exhausted.  Both used to pause
# the partition as "database down" and re-run forever without counting.
. "$(dirname "$0")/worker_lib.sh"

write_plan "${ID}_ds0" \
  "{op: sql, sql: \"DO 'BEGIN RAISE EXCEPTION ''bind mismatch'' USING ERRCODE = ''08P01''; END'\"}"
write_plan "${ID}_ds1" \
  "{op: sql, sql: \"DO 'BEGIN RAISE EXCEPTION ''not a lost link'' USING ERRCODE = ''08006''; END'\"}"
$CHECK create "$B" "$TOPIC" 2
submit_tasks 2 1
start_worker "$ID-a" --set backoff.initial_ms=100 --set backoff.max_delay_ms=300 \
  --set backoff.max_attempts=3
wait_events 2 90
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
/usr/bin/python3 - "$WORK/dlq" <<'PY' || fail "dead letters: $(cat "$WORK/dlq")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(recs) == 2, "%d dead letters" % len(recs)
by = {r["headers"]["drover.error.sqlstate"]: r["headers"] for r in recs}
h = by["08P01"]
assert h["drover.error.class"] == "sql", h
assert h.get("drover.attempts", "0") in ("0", "1"), h
h = by["08006"]
assert h["drover.error.class"] == "retries_exhausted", h
assert h["drover.attempts"] == "3", h
PY
echo "ok"
