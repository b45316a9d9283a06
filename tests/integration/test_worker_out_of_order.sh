#!/usr/bin/env bash
# drover - ordering by dataset, offsets with gaps (issue 16, items 1, 2, 5).
# One partition holds, in this order: A to v2 (its step waits on a table
# the test keeps locked), A to v3, then B, C and D.  Checked on the real
# broker and database:
#   1. B, C and D finish and their status events commit while A waits; the
#      group's committed offset stays at A's (the lowest task not final).
#   2. A to v3 does not start before A to v2 is final (one dataset, in
#      offset order).
#   3. kill -9 of the worker after B, C and D committed, before the
#      committed offset moved: the next owner skips them (the commit
#      metadata), no second status event, no second effect.
#   4. a rebalance (SIGTERM of that owner, whose drain gives up on A) while
#      the partition holds that window: the third owner skips them too.
# Then the lock is released, A runs to v2 and then v3, everything exactly
# once, offsets at the log end.
. "$(dirname "$0")/worker_lib.sh"

A="${ID}_a"
GATE="${ID}_gate"
sql "CREATE TABLE IF NOT EXISTS $EFFECTS (dataset text NOT NULL, at timestamptz DEFAULT now())"
write_plan "$A" \
  "{op: sql, sql: \"SELECT count(*) FROM $GATE\"}" \
  "{op: sql, sql: \"INSERT INTO $EFFECTS VALUES ('$A-v2', clock_timestamp())\"}"
PLAN_TO=3 write_plan "$A" \
  "{op: sql, sql: \"INSERT INTO $EFFECTS VALUES ('$A-v3', clock_timestamp())\"}"
for x in b c d; do
  write_plan "${ID}_$x" \
    "{op: sql, sql: \"INSERT INTO $EFFECTS (dataset) VALUES ('${ID}_$x')\"}"
done

hold_gate "$GATE"

submit() { # ENTITY_NAME DATASET
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
    --entity "component:default/$1" --dataset "$2" >>"$WORK/ids" ||
    fail "submit $1"
}
$CHECK create "$B" "$TOPIC" 1
submit "${A//_/-}-v2" "$A"
submit "${A//_/-}-v3" "$A"
for x in b c d; do submit "${ID//_/-}-$x-v2" "${ID}_$x"; done

committed() { $CHECK offsets "$B" "$TOPIC" "$GROUP" | awk '$1 == 0 { print $2 }'; }
effects() { sql "SELECT string_agg(dataset, ',' ORDER BY dataset) FROM $EFFECTS"; }
WOPTS=(--set lock_timeout_ms=600000 --set statement_timeout_ms=600000
  --set concurrency=4 --set drain_timeout_ms=1000)

# 1 and 2
start_worker "$ID-w1" "${WOPTS[@]}"
W1=$LAST_PID
wait_events 3 60
$CHECK events "$B" "$TOPIC.status" >"$WORK/ev1"
grep -q "\"dataset\": *\"$A\"" "$WORK/ev1" && fail "A finished while its step was locked out"
[ "$(grep -c '"status": *"done"' "$WORK/ev1")" = 3 ] || fail "B, C, D not done: $(cat "$WORK/ev1")"
[ "$(committed)" = 0 ] || fail "committed offset $(committed), expected 0 (A is not final)"
[ "$(effects)" = "${ID}_b,${ID}_c,${ID}_d" ] || fail "effects while A waits: $(effects)"
log "B, C, D committed while A waits; committed offset 0"

# 3
kill -9 "$W1"
wait "$W1" 2>/dev/null || true
start_worker "$ID-w2" "${WOPTS[@]}"
W2=$LAST_PID
wait_log "$WORK/$ID-w2.log" "range(s) of final tasks above it" 1 60
for ((i = 0; i < 30; i++)); do
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%FROM $GATE%'
            AND state = 'active' AND application_name <> '$GATE'")" -ge 1 ] && break
  sleep 0.2
done

# 4
start_worker "$ID-w3" "${WOPTS[@]}"
wait_log "$WORK/$ID-w3.log" 'joining group' 1 30
sleep 2
kill -TERM "$W2"
wait "$W2" || fail "second worker exited $? on SIGTERM"
wait_log "$WORK/$ID-w3.log" "range(s) of final tasks above it" 1 60
[ "$(effects)" = "${ID}_b,${ID}_c,${ID}_d" ] || fail "effects after two handovers: $(effects)"

# release A
release_gate "$GATE"
wait_events 5 90
[ "$(effects)" = "$A-v2,$A-v3,${ID}_b,${ID}_c,${ID}_d" ] || fail "effects: $(effects)"
[ "$(sql "SELECT (SELECT at FROM $EFFECTS WHERE dataset = '$A-v2') <
                 (SELECT at FROM $EFFECTS WHERE dataset = '$A-v3')")" = t ] ||
  fail "A ran to v3 before v2"
check_events
[ "$(sql "SELECT count(*) FROM drover.task_runs WHERE dataset LIKE '${ID}\_%'
          AND status = 'done'")" = 5 ] || fail "not every task is done"
check_offsets
echo "ok"
