#!/usr/bin/env bash
# drover - tests/integration/test_backstage_plugin.sh
#
# The Backstage plugins (backstage/plugins/): type-checked with tsc, then
# their jest suites.  The backend plugin's suite runs in a real Backstage
# test backend against a real drover worker started here (its admin HTTP
# server, on the stack's Kafka and PostgreSQL, a topic and dataset of its
# own): the seed's request answered 202 and the task reaching done, a dry
# run, 403 under a deny policy, 404 for an unknown entity, 400 for a
# non-plan.  The frontend plugin's suite renders the Migrations tab and the
# dataset card.
#
# Skips (77) without node/npm or the stack, fails instead under
# DROVER_REQUIRE_STACK=1; skips (77) on a sanitizer build of drover.  npm
# ci is cached by scripts/backstage-plugins.sh.
set -euo pipefail
ROOT=${DROVER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DROVER=${DROVER_BIN:-$ROOT/build/consumer/drover}

. "$ROOT/tests/integration/tap_lib.sh"
fail() {
  echo "not ok - $*" >&2
  [ -f "${work:-}/worker.err" ] && tail -20 "$work/worker.err" >&2
  exit 1
}

command -v node >/dev/null && command -v npm >/dev/null ||
  skip "node or npm is not installed (Node.js 20 with npm: README, Prerequisites)"
[ -n "${DROVER_TEST_BROKERS:-}" ] && [ -n "${DROVER_TEST_DATABASE_URL:-}" ] ||
  skip "DROVER_TEST_BROKERS / DROVER_TEST_DATABASE_URL not set"
[ -x "$DROVER" ] || fail "drover binary not found at $DROVER"
# The subject is the TypeScript plugins, the same on both of
# scripts/test.sh's builds: run once, on the plain one (CI's time budget).
if ldd "$DROVER" 2>/dev/null | grep -q libasan; then
  echo "skip: the plugins are checked against the plain build's worker"
  exit 77
fi

ID=bp$$_$RANDOM
DS=${ID}_customer
TOKEN=bp-token-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "/tmp/drover-$ID.XXXXXX")
WPIDS=()
cleanup() {
  local p
  for p in "${WPIDS[@]:-}"; do
    [ -n "$p" ] || continue
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null || true
  done
  psql "$DROVER_TEST_DATABASE_URL" -X -q -c \
    "DROP TABLE IF EXISTS $DS, ${DS}2" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$ROOT/scripts/backstage-plugins.sh" install || fail "npm ci of backstage/"
"$ROOT/scripts/backstage-plugins.sh" tsc || fail "tsc --noEmit"
echo "ok - tsc --noEmit over both plugins"

# plan DATASET DIR: a table DATASET and the seed's plan under its own name
# on it, in DIR/plan.yaml, as JSON (YAML's subset): the worker reads it,
# the jest suite's mock catalog holds the same entity.  No drover.io/queue
# annotation: the worker's topic is this run's own, not the seed's
# "dataset-migrations" the request names.
plan() {
  psql "$DROVER_TEST_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c \
    "CREATE TABLE $1 AS SELECT g AS id, 'user' || g || '@example.org' AS email FROM generate_series(1, 2000) g; ALTER TABLE $1 ADD PRIMARY KEY (id)" ||
    fail "create table $1"
  mkdir -p "$2"
  cat >"$2/plan.yaml" <<JSON
{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
 "metadata": {"name": "customer-dataset-v2-migration"},
 "spec": {"type": "migration-plan", "lifecycle": "test", "owner": "tests",
   "dataset": "$1", "schemaVersion": {"from": 1, "to": 2},
   "steps": [
     {"op": "add_column", "table": "$1", "column": {"name": "email_domain", "type": "text"}},
     {"op": "backfill", "table": "$1", "set": {"email_domain": "split_part(email, '@', 2)"}, "batch_size": 500},
     {"op": "validate", "not_null": ["$1.email_domain"]}]}}
JSON
  "$DROVER" plan check "$2/plan.yaml" >/dev/null || fail "plan check"
}

# worker NAME CATALOG: a worker on a topic of its own with its admin
# server; sets A to its URL once it is ready.
worker() {
  local port
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  A=http://127.0.0.1:$port
  DROVER_BROKERS=$DROVER_TEST_BROKERS DATABASE_URL=$DROVER_TEST_DATABASE_URL \
    DROVER_TOPIC=drv-$1 DROVER_GROUP=drv-$1 DROVER_INSTANCE=$1 \
    DROVER_CATALOG_DIR=$2 DROVER_HTTP_LISTEN=127.0.0.1:$port \
    DROVER_ADMIN_TOKEN=$TOKEN "$DROVER" worker --set topic_partitions=1 \
    >"$work/worker.out" 2>>"$work/worker.err" &
  WPIDS+=($!)
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] && break
    kill -0 "${WPIDS[-1]}" 2>/dev/null || fail "the worker exited"
    sleep 0.2
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] ||
    fail "worker never ready: $(curl -s "$A/readyz")"
  echo "ok - drover worker $1 ready at $A"
}

plan "$DS" "$work/catalog"
worker "$ID" "$work/catalog"

DROVER_PLUGIN_TEST_ADMIN_URL=$A DROVER_PLUGIN_TEST_ADMIN_TOKEN=$TOKEN \
  DROVER_PLUGIN_TEST_PLAN=$work/catalog/plan.yaml \
  "$ROOT/scripts/backstage-plugins.sh" test --ci --runInBand \
  --selectProjects drover-backend drover --json \
  --outputFile="$work/jest.json" || fail "jest suites of the backstage plugins"
# every test ran, the backend's against the worker: none was skipped
/usr/bin/python3 - "$work/jest.json" <<'PY' || fail "jest skipped tests"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["numPendingTests"] == 0 and r["numTodoTests"] == 0, r["numPendingTests"]
assert r["numPassedTests"] >= 18, r["numPassedTests"]
PY
! grep -q "$TOKEN" "$work/worker.err" || fail "the admin token reached the worker's log"
echo "ok - backend plugin against the real worker, frontend plugin rendered"

# scripts/test.sh --full: (1) the example wiring, a real Backstage backend
# (scripts/backstage.sh: catalog + drover's plugin, its own database and
# stack dir) serving this run's plan: the seed's curl with a static token
# answered 202 and the task done; (2) the browser check: the Migrations tab
# in headless Chromium shows the seed's task done; screenshot in
# tests/artifacts/backstage-migrations-tab.png.
if [ "${DROVER_BACKSTAGE_E2E:-}" = 1 ]; then
  A1=$A
  # (1) a second worker and dataset: the seed's plan not run yet
  plan "${DS}2" "$work/catalog2"
  worker "${ID}b" "$work/catalog2"
  BS=$work/backstage-stack
  BSDB=drover_bs_$ID
  stop_backstage() {
    DROVER_STACK_DIR=$BS "$ROOT/scripts/backstage.sh" stop >/dev/null 2>&1 || true
    psql "$DROVER_TEST_DATABASE_URL" -X -q -d postgres \
      -c "DROP DATABASE IF EXISTS $BSDB" >/dev/null 2>&1 || true
  }
  trap 'stop_backstage; cleanup' EXIT
  BURL=$(DROVER_STACK_DIR=$BS BACKSTAGE_DATABASE_URL=$DROVER_TEST_DATABASE_URL \
    BACKSTAGE_DB_NAME=$BSDB BACKSTAGE_CATALOG_DIR=$work/catalog2 \
    DROVER_ADMIN_URL=$A DROVER_ADMIN_TOKEN=$TOKEN \
    "$ROOT/scripts/backstage.sh" start | tail -n 1) || fail "scripts/backstage.sh start"
  BTOKEN=$(cat "$BS/backstage.token")
  seed='{"queue": "dataset-migrations", "payload": {"entity_ref": "component:default/customer-dataset-v2-migration"}}'
  # 503 while the catalog starts, 404 until it has ingested the plan
  # (nothing is submitted then)
  for _ in $(seq 300); do
    code=$(curl -s -o "$work/seed.json" -w '%{http_code}' \
      -H "Authorization: Bearer $BTOKEN" -H 'Content-Type: application/json' \
      -d "$seed" "$BURL/api/drover/tasks")
    [ "$code" = 404 ] || [ "$code" = 503 ] || break
    sleep 1
  done
  [ "$code" = 202 ] || fail "seed's curl against backstage: $code $(cat "$work/seed.json")"
  tid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["taskId"])' "$work/seed.json")
  done=0
  for _ in $(seq 300); do
    curl -s -H "Authorization: Bearer $BTOKEN" \
      "$BURL/api/drover/migrations?dataset=${DS}2" >"$work/m.json"
    if /usr/bin/python3 - "$work/m.json" "$tid" <<'PY'; then
import json, sys
rows = json.load(open(sys.argv[1]))["migrations"]
sys.exit(0 if any(r["task_id"] == sys.argv[2] and r["status"] == "done" for r in rows) else 1)
PY
      done=1
      break
    fi
    sleep 0.5
  done
  [ $done = 1 ] || fail "task $tid never done: $(cat "$work/m.json")"
  ! grep -q "$TOKEN" "$work/seed.json" "$work/m.json" || fail "the admin token reached a response"
  echo "ok - the seed's curl against a real Backstage backend: 202, task $tid done"
  stop_backstage

  CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
  [ -x "$CHROMIUM" ] || fail "no chromium for the browser check (apt-get install chromium)"
  CHROMIUM=$CHROMIUM DROVER_E2E_ARTIFACTS=$ROOT/tests/artifacts \
    DROVER_PLUGIN_TEST_ADMIN_URL=$A1 DROVER_PLUGIN_TEST_ADMIN_TOKEN=$TOKEN \
    DROVER_PLUGIN_TEST_PLAN=$work/catalog/plan.yaml \
    "$ROOT/scripts/backstage-plugins.sh" test --ci --runInBand \
    --selectProjects e2e || fail "browser check of the Migrations tab"
  echo "ok - Migrations tab in headless chromium: $ROOT/tests/artifacts/backstage-migrations-tab.png"
fi
