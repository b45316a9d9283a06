#!/usr/bin/env bash
# 'drover plan check' and 'drover plan show' as a user runs them: exit
# codes, stdout and stderr together (needs no stack).
set -uo pipefail
ROOT=${DROVER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DROVER=${DROVER_BIN:-$ROOT/build/consumer/drover}
FIX=$ROOT/tests/fixtures
OUT=$(mktemp) ERR=$(mktemp)
trap 'rm -f "$OUT" "$ERR"' EXIT
n=0
fail() { echo "not ok - $*" >&2; echo "stdout: $(cat "$OUT")" >&2; echo "stderr: $(cat "$ERR")" >&2; exit 1; }
ok() { n=$((n + 1)); echo "ok - $*"; }

# run EXPECTED_RC ARGS...: run drover, check the exit code.
run() {
  local want=$1 rc=0
  shift
  "$DROVER" "$@" >"$OUT" 2>"$ERR" || rc=$?
  [ "$rc" -eq "$want" ] || fail "drover $*: exit $rc, want $want"
}

run 0 plan check "$FIX"/catalog/customer-dataset-v2-migration.yaml \
  "$FIX"/catalog/inventory-dataset-v3-migration.yaml \
  "$FIX"/catalog/orders-dataset-v5-migration.yaml
[ "$(grep -c ': ok: component:default/' "$OUT")" -eq 3 ] || fail "3 ok lines"
[ ! -s "$ERR" ] || fail "check printed on stderr"
ok "plan check: valid plans exit 0, one ok line each"

while IFS='|' read -r file want; do
  run 65 plan check "$FIX/$file"
  grep -qxF "$FIX/$file$want" "$ERR" || fail "$file: want \"$want\""
  [ "$(wc -l <"$ERR")" -eq 1 ] || fail "$file: more than one line"
done <<'CASES'
catalog/broken-dataset-migration.yaml|:15: step 1: unknown op "truncate_everything"
catalog-invalid/from-not-less-than-to.yaml|:9: spec.schemaVersion: from (3) must be less than to (3)
catalog-invalid/semicolon-in-expression.yaml|:15: "tier": invalid expression: ';' outside quotes
catalog-invalid/bad-yaml.yaml|:8: yaml: did not find expected ',' or '}' while parsing a flow mapping
catalog-invalid/wrong-type.yaml|: no migration plan in file (kind Component with spec.type migration-plan)
CASES
ok "plan check: invalid plans exit 65 with one file:line: message line"

# A plan that reaches outside its dataset: the version guard of every
# dataset is drover's, not the plan's.
TMPD=$(mktemp -d)
trap 'rm -f "$OUT" "$ERR"; rm -rf "$TMPD"' EXIT
cat >"$TMPD/outside.yaml" <<'YAML'
kind: Component
metadata: {name: outside}
spec:
  type: migration-plan
  dataset: customer
  schemaVersion: {from: 1, to: 2}
  steps:
    - {op: add_column, table: customer, column: {name: a, type: int}}
    - {op: backfill, table: drover.datasets, set: {version: "99"}}
YAML
run 65 plan check "$TMPD/outside.yaml"
grep -qxF "$TMPD/outside.yaml:9: step 1 (backfill): table \"drover.datasets\" is in schema \"drover\", which plans may not touch" "$ERR" ||
  fail "outside.yaml: want the step and the table"
[ "$(wc -l <"$ERR")" -eq 1 ] || fail "outside.yaml: more than one line"
ok "plan check: a table in drover's schema exits 65 naming step and table"

# The queue annotation: shown, and refused for another queue with --queue.
C2=$FIX/catalog/customer-dataset-v2-migration.yaml
run 0 plan check "$C2"
grep -q ', queue dataset-migrations)$' "$OUT" || fail "queue not shown"
run 0 plan check --queue dataset-migrations "$C2"
run 65 plan check --topic other-queue "$C2"
grep -qxF "$C2:2: plan \"component:default/customer-dataset-v2-migration\" is for queue \"dataset-migrations\" (annotation drover.io/queue), not \"other-queue\"" "$ERR" ||
  fail "queue mismatch message"
ok "plan check: shows the queue annotation, --queue refuses another queue"

run 65 plan check "$FIX/catalog/customer-dataset-v2-migration.yaml" \
  "$FIX/catalog-invalid/bad-yaml.yaml"
grep -q ': ok: ' "$OUT" || fail "valid file not reported"
ok "plan check: a bad file among good ones still exits 65"

run 2 plan check
run 2 plan check --bogus x.yaml
run 2 plan frobnicate
ok "plan: usage errors exit 2"

run 0 plan show customer-dataset-v2-migration --catalog "$FIX/catalog"
grep -q '^plan         component:default/customer-dataset-v2-migration$' "$OUT" &&
  grep -q '^dataset      customer$' "$OUT" &&
  grep -q '^version      1 -> 2$' "$OUT" &&
  grep -Eq '^fingerprint  [0-9a-f]{64}$' "$OUT" &&
  grep -Eq '^ +0  add_column +[0-9a-f]{64}  [{]' "$OUT" ||
  fail "plan show text"
ok "plan show: dataset, versions, fingerprinted steps"

run 0 plan show component:default/orders-dataset-v5-migration --json \
  --catalog "$FIX/catalog"
/usr/bin/python3 - "$OUT" <<'PY' || fail "plan show --json"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["dataset"] == "orders" and p["from"] == 4 and p["to"] == 5
assert [s["op"] for s in p["steps"]] == ["alter_type", "rename_column",
    "add_column", "backfill", "create_index", "validate"]
assert all(len(s["fingerprint"]) == 64 for s in p["steps"])
assert p["steps"][3]["def"]["set"]["currency"] == "coalesce($param:currency, 'EUR')"
PY
ok "plan show --json"

run 65 plan show no-such-plan --catalog "$FIX/catalog"
grep -q 'no migration plan component:default/no-such-plan' "$ERR" || fail "unknown"
run 65 plan show broken-dataset-migration --catalog "$FIX/catalog"
grep -q 'broken-dataset-migration.yaml:15: ' "$ERR" || fail "invalid"
run 2 plan show customer-dataset-v2-migration
ok "plan show: unknown 65, invalid 65, no catalog 2"

# spec.throttle: a query that is not a single SELECT is refused with its
# line and path; a valid block is shown as written
throttled() {
  cat >"$TMPD/throttle.yaml" <<YAML
kind: Component
metadata: {name: throttled}
spec:
  type: migration-plan
  dataset: customer
  schemaVersion: {from: 1, to: 2}
  throttle:
    max_replica_lag_ms: 2000
    query: "$1"
  steps:
    - {op: backfill, table: customer, set: {tier: "'gold'"}, batch_size: 100}
YAML
}
throttled "UPDATE flags SET paused = false"
run 65 plan check "$TMPD/throttle.yaml"
grep -qxF "$TMPD/throttle.yaml:9: spec.throttle.query: must be a single SELECT" "$ERR" ||
  fail "throttle.yaml: want the line and spec.throttle.query"
throttled "SELECT paused FROM flags"
run 0 plan show "$TMPD/throttle.yaml"
grep -qxF 'throttle     {"max_replica_lag_ms":2000,"query":"SELECT paused FROM flags"}' "$OUT" ||
  fail "plan show: no throttle line"
run 0 plan show "$TMPD/throttle.yaml" --json
grep -qF '"throttle": {' "$OUT" || grep -qF '"throttle":{' "$OUT" || fail "plan show --json: no throttle"
ok "plan check / show: spec.throttle"
echo "$n passed, 0 failed"
