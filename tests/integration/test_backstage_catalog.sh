#!/usr/bin/env bash
# drover resolves plans through a real Backstage backend's catalog API:
# the fixtures ingested by Backstage come back with the same step
# fingerprints as from the local YAML files; a missing entity is a 404
# (exit 65, unknown plan), a request without the token is a 401 (exit 69,
# catalog unavailable), an invalid plan is refused (exit 65).
#
# Uses DROVER_TEST_BACKSTAGE_URL/TOKEN when scripts/test.sh started the
# backend; otherwise starts its own with scripts/backstage.sh on the
# PostgreSQL of DROVER_TEST_DATABASE_URL, and stops it at the end.
set -euo pipefail
ROOT=${DROVER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
DROVER=${DROVER_BIN:-$ROOT/build/consumer/drover}
FIX=$ROOT/tests/fixtures/catalog
OWN=""

. "$ROOT/tests/integration/tap_lib.sh"
fail() { echo "not ok - $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

cleanup() {
  if [ -n "$OWN" ]; then
    DROVER_STACK_DIR=$OWN "$ROOT/scripts/backstage.sh" stop || true
    rm -rf "$OWN"
  fi
}
trap cleanup EXIT

[ -x "$DROVER" ] || fail "drover binary not found at $DROVER"
URL=${DROVER_TEST_BACKSTAGE_URL:-}
TOKEN=${DROVER_TEST_BACKSTAGE_TOKEN:-}
if [ -z "$URL" ]; then
  [ -n "${DROVER_TEST_DATABASE_URL:-}" ] ||
    skip "neither DROVER_TEST_BACKSTAGE_URL nor DROVER_TEST_DATABASE_URL set"
  OWN=$(mktemp -d /tmp/drv-backstage-test.XXXXXX)
  URL=$(DROVER_STACK_DIR=$OWN BACKSTAGE_DATABASE_URL=$DROVER_TEST_DATABASE_URL \
    "$ROOT/scripts/backstage.sh" start | tail -n 1)
  TOKEN=$(cat "$OWN/backstage.token")
fi
export BACKSTAGE_TOKEN=$TOKEN
unset BACKSTAGE_URL DROVER_CATALOG_DIR
OUT=$(mktemp)
ERR=$(mktemp)
trap 'rm -f "$OUT" "$ERR"; cleanup' EXIT

# 1. Wait until the catalog has ingested the fixtures (it processes
#    locations in the background after start).
deadline=$((SECONDS + 180))
until "$DROVER" plan show orders-dataset-v5-migration --backstage "$URL" \
  >"$OUT" 2>"$ERR"; do
  [ $SECONDS -lt $deadline ] ||
    fail "backstage did not serve the fixtures within 180 s: $(cat "$ERR")"
  sleep 2
done
ok "catalog ingested the fixtures"

# 2. Each plan from Backstage equals the plan from its file: same ref,
#    dataset, versions and step fingerprints (JSON vs YAML, same canon).
for plan in customer-dataset-v2-migration inventory-dataset-v3-migration \
  orders-dataset-v5-migration; do
  "$DROVER" plan show "component:default/$plan" --backstage "$URL" --json \
    >"$OUT" 2>"$ERR" || fail "$plan from backstage: $(cat "$ERR")"
  "$DROVER" plan show "$FIX/$plan.yaml" --json >"$OUT.local" 2>"$ERR" ||
    fail "$plan from file: $(cat "$ERR")"
  /usr/bin/python3 - "$OUT" "$OUT.local" <<'PY' || fail "$plan differs"
import json, sys
remote, local = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("ref", "dataset", "from", "to", "fingerprint"):
    assert remote[k] == local[k], (k, remote[k], local[k])
assert [s["fingerprint"] for s in remote["steps"]] == \
       [s["fingerprint"] for s in local["steps"]]
assert remote["etag"], "no etag from backstage"
assert remote["source"].startswith("backstage entity "), remote["source"]
PY
  ok "$plan: same plan and fingerprints as the file"
done
rm -f "$OUT.local"

# 3. The text form names dataset, versions and steps.
"$DROVER" plan show Customer-Dataset-V2-Migration --backstage "$URL" >"$OUT"
grep -q "^dataset      customer$" "$OUT" || fail "show: no dataset line"
grep -q "^version      1 -> 2$" "$OUT" || fail "show: no version line"
grep -Eq "^   1  backfill +[0-9a-f]{64}  " "$OUT" || fail "show: no step line"
ok "plan show prints dataset, versions and fingerprinted steps"

# 4. Missing entity: 404 -> unknown plan, exit 65.
rc=0
"$DROVER" plan show no-such-migration --backstage "$URL" >"$OUT" 2>"$ERR" || rc=$?
[ $rc -eq 65 ] || fail "missing entity: exit $rc, want 65"
grep -q "no entity component:default/no-such-migration.*(http 404)" "$ERR" ||
  fail "missing entity: $(cat "$ERR")"
ok "missing entity: 404, exit 65"

# 5. No token: 401 -> catalog unavailable (transient), exit 69; the token
#    never appears in output.
rc=0
BACKSTAGE_TOKEN= "$DROVER" plan show customer-dataset-v2-migration \
  --backstage "$URL" >"$OUT" 2>"$ERR" || rc=$?
[ $rc -eq 69 ] || fail "no token: exit $rc, want 69"
grep -q "refused the request: http 401" "$ERR" || fail "no token: $(cat "$ERR")"
rc=0
BACKSTAGE_TOKEN=wrong-token-123 "$DROVER" plan show \
  customer-dataset-v2-migration --backstage "$URL" >"$OUT" 2>"$ERR" || rc=$?
[ $rc -eq 69 ] || fail "bad token: exit $rc, want 69"
! grep -q "wrong-token-123\|$TOKEN" "$ERR" "$OUT" || fail "token printed"
ok "no or wrong token: 401, exit 69, token not printed"

# 6. An entity Backstage accepts but drover refuses: invalid plan, exit 65.
rc=0
"$DROVER" plan show broken-dataset-migration --backstage "$URL" \
  >"$OUT" 2>"$ERR" || rc=$?
[ $rc -eq 65 ] || fail "invalid plan: exit $rc, want 65"
grep -q "unknown op \"truncate_everything\"" "$ERR" || fail "invalid: $(cat "$ERR")"
ok "invalid plan from backstage: exit 65 with the reason"
echo "8 passed, 0 failed"
