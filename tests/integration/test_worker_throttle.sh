#!/usr/bin/env bash
# drover - throttling of batched steps (issue 19 item 4), on a database of
# its own (the drover schema there is this build's):
#   1. throttle.query: a backfill of 3000 rows in batches of 100 whose
#      plan has `throttle: {query: "SELECT paused FROM <flags>"}`.  paused
#      starts true: the task shows `throttled` with the reason (drover
#      status, its --json, GET /api/migrations) before any row; set false,
#      it runs until a trigger sets paused again at the 1000th row: it
#      shows `throttled` mid-run; set false, it finishes.  Every row was
#      updated exactly once (a trigger counts), and
#      drover_throttled_seconds_total{reason="query"} is above 0;
#   2. max_replica_lag_ms (the worker's) with no replica: never throttled;
#      a throttle query that fails fails the step, naming the throttle
#      query; a plan without batched steps (the one-transaction path)
#      never runs its throttle (its query would fail);
#   3. max_active_connections: 1 with three pg_sleep sessions of the
#      test: `throttled` naming the count and the limit, done once they
#      are gone.
# Waits poll for a state; nothing is asserted on timing.
. "$(dirname "$0")/worker_lib.sh"

PRIV="${ID}_db"
sql "CREATE DATABASE $PRIV"
DB=$(/usr/bin/python3 -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$DB" "$PRIV")
ADMIN_DB=$DROVER_TEST_DATABASE_URL
SLEEPERS=()
cleanup_throttle() {
  local p
  for p in "${SLEEPERS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  cleanup
  psql "$ADMIN_DB" -X -q -c "DROP DATABASE IF EXISTS $PRIV WITH (FORCE)" \
    >/dev/null 2>&1 || true
}
trap cleanup_throttle EXIT

FLAGS="${ID}_flags"
sql "CREATE TABLE $FLAGS (paused bool NOT NULL, tripped bool NOT NULL DEFAULT false);
     INSERT INTO $FLAGS (paused) VALUES (true)"

# a table of N rows whose trigger counts the updates of each row in n;
# with TRIP, the update of row 1000 sets $FLAGS.paused (once)
make_table() {
  local t=$1 n=$2
  sql "CREATE TABLE $t (id bigint PRIMARY KEY, v text, w text, n int NOT NULL DEFAULT 0);
       INSERT INTO $t (id, v) SELECT g, 'x' || g FROM generate_series(1, $n) g;
       CREATE FUNCTION ${t}_count() RETURNS trigger LANGUAGE plpgsql AS \$\$
       BEGIN
         NEW.n := OLD.n + 1;
         IF TG_ARGV[0] = 'trip' AND NEW.id = 1000 THEN
           UPDATE $FLAGS SET paused = true, tripped = true WHERE NOT tripped;
         END IF;
         RETURN NEW;
       END \$\$;
       CREATE TRIGGER ${t}_count BEFORE UPDATE ON $t FOR EACH ROW
         EXECUTE FUNCTION ${t}_count('${3:-none}')"
}

# plan DATASET THROTTLE STEP...: write_plan with a spec.throttle line
plan() {
  local ds=$1 thr=$2
  shift 2
  write_plan "$ds" "$@"
  [ -z "$thr" ] || sed -i "s|^  steps:|  throttle: $thr\n  steps:|" "$CAT/$ds.yaml"
}
backfill() { echo "{op: backfill, table: ${1}_t, set: {w: \"upper(v)\"}, batch_size: 100}"; }

# row DATASET: "status|error_class|error|rows" of the dataset's task
row() {
  "$DROVER_BIN" status --json --dataset "$1" --database "$DB" |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)
r=r[0] if r else {}
print("|".join(str(r.get(k, "")) for k in ("status", "error_class", "error", "rows")))'
}
# wait_row DATASET PATTERN: until row DATASET matches PATTERN (grep -E)
wait_row() {
  local i r=
  for ((i = 0; i < 600; i++)); do
    r=$(row "$1")
    echo "$r" | grep -Eq "$2" && { echo "$r"; return 0; }
    sleep 0.2
  done
  fail "$1: no row matching \"$2\" (last: $r)"
}

ds0="${ID}_ds0" ds1="${ID}_ds1" ds2="${ID}_ds2" ds3="${ID}_ds3" ds4="${ID}_ds4"
make_table "${ds0}_t" 3000 trip
plan "$ds0" "{query: \"SELECT paused FROM $FLAGS\"}" "$(backfill "$ds0")"
# every plan before the worker starts (a catalog miss rescans at most
# once a second)
make_table "${ds1}_t" 500
plan "$ds1" "" "$(backfill "$ds1")"
make_table "${ds2}_t" 500
plan "$ds2" "{query: \"SELECT paused FROM ${ID}_missing\"}" "$(backfill "$ds2")"
plan "$ds3" "{query: \"SELECT paused FROM ${ID}_missing\"}" \
  "{op: create_table, table: ${ds3}_t, columns: [{name: id, type: bigint, primary_key: true}]}"
make_table "${ds4}_t" 500
plan "$ds4" "{max_active_connections: 1}" "$(backfill "$ds4")"

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=thr-$RANDOM$RANDOM
$CHECK create "$B" "$TOPIC" 3
export DROVER_ADMIN_TOKEN=$TOKEN
start_worker "$ID-a" --set http.listen=127.0.0.1:$PORT \
  --set throttle.max_replica_lag_ms=1 --set backoff.max_attempts=1
submit_tasks 1 1

# 1. paused before the first batch
r=$(wait_row "$ds0" '^throttled\|')
log "paused: $r"
echo "$r" | grep -Fq "|throttled|throttle query returned true: SELECT paused FROM $FLAGS|0" ||
  fail "throttled row: $r"
"$DROVER_BIN" status --dataset "$ds0" --database "$DB" | grep -F "throttled" |
  grep -Fq "throttle query returned true" || fail "drover status shows no reason"
curl -sf -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/api/migrations?dataset=$ds0&status=throttled" |
  /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["migrations"]
assert len(r) == 1 and r[0]["status"] == "throttled", r
assert r[0]["throttle_reason"].startswith("throttle query returned true"), r' ||
  fail "GET /api/migrations shows no throttled row with its reason"
[ "$(sql "SELECT count(*) FROM ${ds0}_t WHERE n > 0")" = 0 ] ||
  fail "rows updated while throttled before the first batch"
sql "UPDATE $FLAGS SET paused = false"

# the trigger pauses again at row 1000 (the batches ran: the row went
# back to running first): throttled mid-run
for ((i = 0; i < 600; i++)); do
  [ "$(sql "SELECT tripped FROM $FLAGS")" = t ] && break
  sleep 0.2
done
[ "$(sql "SELECT tripped FROM $FLAGS")" = t ] || fail "row 1000 never updated"
r=$(wait_row "$ds0" '^throttled\|')
log "paused mid-run: $r"
done_rows=$(sql "SELECT count(*) FROM ${ds0}_t WHERE n > 0")
[ "$done_rows" -ge 1000 ] && [ "$done_rows" -lt 3000 ] ||
  fail "$done_rows rows done when throttled mid-run"
sql "UPDATE $FLAGS SET paused = false"
wait_row "$ds0" '^done\|' >/dev/null
[ "$(sql "SELECT count(*) FILTER (WHERE n = 1 AND w = upper(v)), count(*) FROM ${ds0}_t")" = "3000|3000" ] ||
  fail "not every row updated exactly once: $(sql "SELECT n, count(*) FROM ${ds0}_t GROUP BY n")"
[ "$(sql "SELECT count(*) FROM drover.task_runs WHERE throttle_reason IS NOT NULL")" = 0 ] ||
  fail "a finished task kept its throttle reason"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics"
awk '$1 == "drover_throttled_seconds_total{reason=\"query\"}" && $2 > 0 { ok = 1 }
     END { exit !ok }' "$WORK/metrics" ||
  fail "no throttled seconds counted: $(grep throttled "$WORK/metrics")"

# 2. the worker's max_replica_lag_ms without replicas; a failing throttle
#    query; a one-transaction plan with a throttle it never runs
: >"$WORK/ids"
"$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --count 1 \
  --entity "component:default/${ID//_/-}-ds1-v2" --dataset "$ds1" >>"$WORK/ids"
"$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --count 1 \
  --entity "component:default/${ID//_/-}-ds2-v2" --dataset "$ds2" >>"$WORK/ids"
"$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --count 1 \
  --entity "component:default/${ID//_/-}-ds3-v2" --dataset "$ds3" >>"$WORK/ids"
wait_row "$ds1" '^done\|' >/dev/null
[ "$(sql "SELECT count(*) FROM ${ds1}_t WHERE n = 1")" = 500 ] || fail "$ds1 rows"
r=$(wait_row "$ds2" '^dead\|')
log "failing throttle query: $r"
echo "$r" | grep -q "throttle query failed: relation \"${ID}_missing\" does not exist" ||
  fail "the failing throttle query is not named: $r"
wait_row "$ds3" '^done\|' >/dev/null
grep -F "\"dataset\":\"$ds1\"" "$WORK/$ID-a.log" | grep -q "throttled" &&
  fail "$ds1 throttled without a replica"

# 3. max_active_connections: 1, three sleeping sessions of ours
for i in 1 2 3; do
  psql "$DB" -X -q -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
  SLEEPERS+=($!)
done
for ((i = 0; i < 300; i++)); do
  [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
            AND state = 'active' AND query = 'SELECT pg_sleep(600)'")" = 3 ] && break
  sleep 0.2
done
"$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --count 1 \
  --entity "component:default/${ID//_/-}-ds4-v2" --dataset "$ds4" >>"$WORK/ids"
r=$(wait_row "$ds4" '^throttled\|throttled\|active connections [0-9]+ > max_active_connections 1\|0$')
log "busy database: $r"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE datname = current_database() AND query = 'SELECT pg_sleep(600)'" >/dev/null
wait_row "$ds4" '^done\|' >/dev/null
[ "$(sql "SELECT count(*) FROM ${ds4}_t WHERE n = 1")" = 500 ] || fail "$ds4 rows"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics"
grep -q '^drover_throttled_seconds_total{reason="max_active_connections"} ' "$WORK/metrics" ||
  fail "no throttled seconds for max_active_connections"

kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
echo "ok"
