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
# DROVER_REQUIRE_STACK=1.  npm ci is cached by scripts/backstage-plugins.sh.
set -euo pipefail
ROOT=${DROVER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DROVER=${DROVER_BIN:-$ROOT/build/consumer/drover}

skip() {
  if [ "${DROVER_REQUIRE_STACK:-}" = 1 ]; then
    echo "not ok - $*" >&2
    exit 1
  fi
  echo "skip: $*" >&2
  exit 77
}
fail() {
  echo "not ok - $*" >&2
  [ -f "${work:-}/worker.err" ] && tail -20 "$work/worker.err" >&2
  exit 1
}

command -v node >/dev/null && command -v npm >/dev/null ||
  skip "node or npm is not installed (scripts/deps.sh installs them)"
[ -n "${DROVER_TEST_BROKERS:-}" ] && [ -n "${DROVER_TEST_DATABASE_URL:-}" ] ||
  skip "DROVER_TEST_BROKERS / DROVER_TEST_DATABASE_URL not set"
[ -x "$DROVER" ] || fail "drover binary not found at $DROVER"

ID=bp$$_$RANDOM
DS=${ID}_customer
TOKEN=bp-token-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "/tmp/drover-$ID.XXXXXX")
wpid=
cleanup() {
  if [ -n "$wpid" ]; then
    kill -9 "$wpid" 2>/dev/null
    wait "$wpid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$ROOT/scripts/backstage-plugins.sh" install || fail "npm ci of backstage/"
"$ROOT/scripts/backstage-plugins.sh" tsc || fail "tsc --noEmit"
echo "ok - tsc --noEmit over both plugins"

# The seed's plan under its own name, on a dataset of this run only, as
# JSON (YAML's subset): the worker reads it, the jest suite's mock catalog
# holds the same entity.  No drover.io/queue annotation: the worker's topic
# is this run's own, not the seed's "dataset-migrations" the request names.
psql "$DROVER_TEST_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c \
  "CREATE TABLE $DS AS SELECT g AS id, 'user' || g || '@example.org' AS email FROM generate_series(1, 2000) g; ALTER TABLE $DS ADD PRIMARY KEY (id)" ||
  fail "create table $DS"
mkdir -p "$work/catalog"
cat >"$work/catalog/plan.yaml" <<JSON
{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
 "metadata": {"name": "customer-dataset-v2-migration"},
 "spec": {"type": "migration-plan", "lifecycle": "test", "owner": "tests",
   "dataset": "$DS", "schemaVersion": {"from": 1, "to": 2},
   "steps": [
     {"op": "add_column", "table": "$DS", "column": {"name": "email_domain", "type": "text"}},
     {"op": "backfill", "table": "$DS", "set": {"email_domain": "split_part(email, '@', 2)"}, "batch_size": 500},
     {"op": "validate", "not_null": ["$DS.email_domain"]}]}}
JSON
"$DROVER" plan check "$work/catalog/plan.yaml" >/dev/null || fail "plan check"

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
A=http://127.0.0.1:$PORT
DROVER_BROKERS=$DROVER_TEST_BROKERS DATABASE_URL=$DROVER_TEST_DATABASE_URL \
  DROVER_TOPIC=drv-$ID DROVER_GROUP=drv-$ID DROVER_INSTANCE=$ID \
  DROVER_CATALOG_DIR=$work/catalog DROVER_HTTP_LISTEN=127.0.0.1:$PORT \
  DROVER_ADMIN_TOKEN=$TOKEN "$DROVER" worker --set topic_partitions=1 \
  >"$work/worker.out" 2>"$work/worker.err" &
wpid=$!
for _ in $(seq 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] && break
  kill -0 "$wpid" 2>/dev/null || fail "the worker exited"
  sleep 0.2
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A/readyz")" = 200 ] ||
  fail "worker never ready: $(curl -s "$A/readyz")"
echo "ok - drover worker ready at $A"

DROVER_PLUGIN_TEST_ADMIN_URL=$A DROVER_PLUGIN_TEST_ADMIN_TOKEN=$TOKEN \
  DROVER_PLUGIN_TEST_PLAN=$work/catalog/plan.yaml \
  "$ROOT/scripts/backstage-plugins.sh" test --ci --runInBand \
  --selectProjects drover-backend drover ||
  fail "jest suites of the backstage plugins"
# every test above ran against the worker: none was skipped
! grep -q '"token"\|'"$TOKEN" "$work/worker.err" || fail "the admin token reached the worker's log"
echo "ok - backend plugin against the real worker, frontend plugin rendered"

# The browser check (scripts/test.sh --full): the Migrations tab in
# headless Chromium shows the seed's task done; screenshot in
# tests/artifacts/backstage-migrations-tab.png.
if [ "${DROVER_BACKSTAGE_E2E:-}" = 1 ]; then
  CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
  [ -x "$CHROMIUM" ] || fail "no chromium for the browser check (apt-get install chromium)"
  CHROMIUM=$CHROMIUM DROVER_E2E_ARTIFACTS=$ROOT/tests/artifacts \
    DROVER_PLUGIN_TEST_ADMIN_URL=$A DROVER_PLUGIN_TEST_ADMIN_TOKEN=$TOKEN \
    DROVER_PLUGIN_TEST_PLAN=$work/catalog/plan.yaml \
    "$ROOT/scripts/backstage-plugins.sh" test --ci --runInBand \
    --selectProjects e2e || fail "browser check of the Migrations tab"
  echo "ok - Migrations tab in headless chromium: $ROOT/tests/artifacts/backstage-migrations-tab.png"
fi
