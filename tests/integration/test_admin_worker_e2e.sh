#!/usr/bin/env bash
# drover - tests/integration/test_admin_worker_e2e.sh
#
# The admin server inside a real worker: /readyz turns 200 once the worker
# holds partitions; tasks submitted with POST /api/tasks run; their rows
# reach GET /api/migrations with their final status and progress; /metrics
# counts them (tasks by outcome, dead letters by class, commits, rows,
# per-partition lag); `drover lag` then shows the group caught up.  An
# entity the catalog lacks is refused with 404 at the API.
set -euo pipefail
: "${DROVER_BIN:?}" "${DROVER_SOURCE_DIR:?}"
if [ -z "${DROVER_TEST_BROKERS:-}" ] || [ -z "${DROVER_TEST_DATABASE_URL:-}" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && { echo "no stack" >&2; exit 1; }
  echo "stack not set: skipping"; exit 77
fi
B=$DROVER_TEST_BROKERS
DB=$DROVER_TEST_DATABASE_URL
ID=ae$$_$RANDOM
T=drv-$ID
G=drv-$ID
DS=${ID}_ds
TOKEN=e2e-token-$RANDOM$RANDOM
work=$(mktemp -d)
wpid=
cleanup() {
  [ -n "$wpid" ] && kill -9 "$wpid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$work/worker.err" ] && tail -20 "$work/worker.err" >&2
  exit 1
}
mkdir -p "$work/catalog"
psql "$DB" -X -q -v ON_ERROR_STOP=1 -c \
  "CREATE TABLE ${DS} AS SELECT g AS id, 'user' || g || '@example.org' AS email FROM generate_series(1, 3000) g; ALTER TABLE ${DS} ADD PRIMARY KEY (id)"
cat >"$work/catalog/plan.yaml" <<EOF
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${DS//_/-}-v2
spec:
  type: migration-plan
  lifecycle: test
  owner: tests
  dataset: $DS
  schemaVersion: {from: 1, to: 2}
  steps:
    - {op: add_column, table: $DS, column: {name: email_domain, type: text}}
    - {op: backfill, table: $DS, set: {email_domain: "split_part(email, '@', 2)"}, batch_size: 1000}
    - {op: validate, not_null: [$DS.email_domain]}
EOF
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
A=http://127.0.0.1:$PORT
DROVER_BROKERS=$B DATABASE_URL=$DB DROVER_TOPIC=$T DROVER_GROUP=$G \
  DROVER_INSTANCE=$ID DROVER_CATALOG_DIR=$work/catalog \
  DROVER_HTTP_LISTEN=127.0.0.1:$PORT DROVER_ADMIN_TOKEN=$TOKEN \
  "$DROVER_BIN" worker --set topic_partitions=3 >"$work/worker.out" \
  2>"$work/worker.err" &
wpid=$!

# ready: member of the group with an assignment, database reachable
for _ in $(seq 150); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] && break
  sleep 0.2
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] ||
  fail "readyz never 200: $(curl -s "$A/readyz")"

submit() { # entity_ref dataset -> task id on stdout
  local out code
  out=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -d "{\"queue\":\"$T\",\"payload\":{\"entity_ref\":\"$1\",\"dataset\":\"$2\"}}" \
    "$A/api/tasks")
  code=${out##*$'\n'}
  [ "$code" = 202 ] || fail "submit $1: $out"
  /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["task_id"])' "${out%$'\n'*}"
}
good=$(submit "component:default/${DS//_/-}-v2" "$DS")
# the API refuses an entity the catalog does not have (404); one produced
# by another client reaches the worker and dead-letters
nope="{\"queue\":\"$T\",\"payload\":{\"entity_ref\":\"component:default/no-such-plan-${ID//_/-}\",\"dataset\":\"${DS}_x\"}}"
code=$(curl -s -o "$work/404.json" -w '%{http_code}' \
  -H "Authorization: Bearer $TOKEN" -d "$nope" "$A/api/tasks")
[ "$code" = 404 ] || fail "unknown entity: $code $(cat "$work/404.json")"
dead=$("$DROVER_BIN" submit --brokers "$B" --topic "$T" \
  --entity "component:default/no-such-plan-${ID//_/-}" --dataset "${DS}_x") ||
  fail "drover submit"

# both reach a final status in the table the API serves
for _ in $(seq 300); do
  curl -s "$A/api/migrations?dataset=$DS" >"$work/m1.json"
  curl -s "$A/api/migrations?dataset=${DS}_x" >"$work/m2.json"
  grep -q '"status":"done"' "$work/m1.json" &&
    grep -q '"status":"dead"' "$work/m2.json" && break
  sleep 0.2
done
/usr/bin/python3 - "$work" "$good" "$dead" <<'PY' || fail "api/migrations"
import json, sys
w, good, dead = sys.argv[1:4]
m1 = json.load(open(f"{w}/m1.json"))["migrations"]
m2 = json.load(open(f"{w}/m2.json"))["migrations"]
assert len(m1) == 1 and m1[0]["task_id"] == good, m1
r = m1[0]
assert r["status"] == "done", r
assert r["steps_total"] == 3 and r["steps_done"] == 3, r
assert r["rows_done"] >= 3000, r
assert len(m2) == 1 and m2[0]["task_id"] == dead and m2[0]["status"] == "dead", m2
PY

# metrics count what happened (lag comes from statistics, every 5 s)
for _ in $(seq 100); do
  curl -s "$A/metrics" >"$work/metrics.txt"
  grep -q "^drover_consumer_lag{topic=\"$T\",partition=\"[0-2]\"} 0$" \
    "$work/metrics.txt" && grep -q '^drover_tasks_total{outcome="dead"} 1$' \
    "$work/metrics.txt" && break
  sleep 0.2
done
m() { grep -q "$1" "$work/metrics.txt" || fail "metrics: no line matching $1"; }
m '^drover_tasks_total{outcome="done"} 1$'
m '^drover_tasks_total{outcome="dead"} 1$'
m '^drover_dlq_total{class="unknown_plan"} 1$'
m '^drover_txn_commits_total [1-9][0-9]*$'
m '^drover_task_duration_seconds_count 2$'
m '^drover_step_rows_total [1-9][0-9]*$'
m "^drover_consumer_lag{topic=\"$T\",partition=\"[0-2]\"} 0$"
m '^drover_inflight_tasks 0$'

# drover lag agrees: the group is caught up
"$DROVER_BIN" lag --brokers "$B" --topic "$T" --group "$G" --json >"$work/lag.json" ||
  fail "drover lag"
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["total_lag"] == 0 and d["suggested_replicas"] == 0, d
assert sum(1 for p in d["partitions"] if p["committed"] is not None) >= 1, d
' "$work/lag.json" || fail "lag after processing: $(cat "$work/lag.json")"

kill -TERM "$wpid"
wait "$wpid" || fail "worker exit $?"
wpid=
psql "$DB" -X -q -c "DROP TABLE IF EXISTS ${DS}" >/dev/null
echo "ok: admin server in a worker: readyz, submit, migrations, metrics, lag"
