#!/usr/bin/env bash
# drover - tasks waiting in Kafka are visible as `queued` (issue 19 item 6):
#   1. `drover submit` with a database writes the row before it produces:
#      `queued` as soon as submit returns, no worker running;
#   2. a task produced upstream (not by drover) shows `queued` once a
#      worker fetched it, while the worker's only executor is held by a
#      task whose step waits on a table the test keeps locked;
#   3. `drover status --watch --until-done` does not return while a task
#      is queued, and returns once every task is done;
#   4. a submit whose record is not delivered (no broker) leaves no row.
. "$(dirname "$0")/worker_lib.sh"

GATE="${ID}_gate"
sql "CREATE TABLE IF NOT EXISTS $EFFECTS (dataset text NOT NULL, at timestamptz DEFAULT now())"
write_plan "${ID}_g" "{op: sql, sql: \"SELECT count(*) FROM $GATE\"}"
for x in s u; do
  write_plan "${ID}_$x" "{op: sql, sql: \"INSERT INTO $EFFECTS (dataset) VALUES ('$x')\"}"
done
status_of() { sql "SELECT status FROM drover.task_runs WHERE task_id = '$1'"; }
$CHECK create "$B" "$TOPIC" 1

# 1
DATABASE_URL=$DB "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
  --entity "component:default/${ID//_/-}-g-v2" --dataset "${ID}_g" >"$WORK/g" ||
  fail "submit g"
G=$(cat "$WORK/g")
[ "$(status_of "$G")" = queued ] || fail "submitted task is \"$(status_of "$G")\", not queued"
DATABASE_URL=$DB "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
  --entity "component:default/${ID//_/-}-s-v2" --dataset "${ID}_s" >"$WORK/s" ||
  fail "submit s"
S=$(cat "$WORK/s")
cat "$WORK/g" "$WORK/s" >>"$WORK/ids"

# 2 and 3
hold_gate "$GATE"
start_worker "$ID-w" --set concurrency=1 --set lock_timeout_ms=600000 \
  --set statement_timeout_ms=600000
produce_task "component:default/${ID//_/-}-u-v2" "${ID}_u"
U=$(tail -n 1 "$WORK/ids")
for ((i = 0; i < 150; i++)); do
  [ "$(status_of "$U")" = queued ] && break
  sleep 0.2
done
[ "$(status_of "$U")" = queued ] || fail "upstream task is \"$(status_of "$U")\", not queued"
# a run in one transaction shows `running` once it takes over a second
for ((i = 0; i < 150; i++)); do
  [ "$(status_of "$G")" = running ] && break
  sleep 0.2
done
[ "$(status_of "$G")" = running ] || fail "gated task is \"$(status_of "$G")\", not running"
[ "$(status_of "$S")" = queued ] || fail "second task is \"$(status_of "$S")\", not queued"
DATABASE_URL=$DB timeout 120 "$DROVER_BIN" status --watch --until-done \
  --dataset "${ID}_s" >"$WORK/until" 2>&1 &
UNTIL=$!
PIDS+=($UNTIL)
sleep 2
kill -0 "$UNTIL" 2>/dev/null || fail "status --until-done returned while a task was queued: $(tail -n 3 "$WORK/until")"
release_gate "$GATE"
wait "$UNTIL" || fail "status --until-done exited $?"
wait_events 3 60
check_events
[ "$(sql "SELECT count(*) FROM drover.task_runs WHERE task_id IN ('$G', '$S', '$U')
          AND status = 'done'")" = 3 ] || fail "not every task done"

# 4
free_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if DATABASE_URL=$DB timeout 60 "$DROVER_BIN" submit --brokers "127.0.0.1:$free_port" \
  --topic "$TOPIC" --entity "component:default/${ID//_/-}-s-v2" --dataset "${ID}_s" \
  >"$WORK/x" 2>"$WORK/x.err"; then
  fail "submit to a closed port succeeded"
fi
[ "$(sql "SELECT count(*) FROM drover.task_runs WHERE dataset = '${ID}_s'")" = 1 ] ||
  fail "an undelivered submission left a row: $(sql "SELECT task_id, status FROM drover.task_runs WHERE dataset = '${ID}_s'")"
echo "ok"
