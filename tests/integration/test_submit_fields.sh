#!/usr/bin/env bash
# drover - tests/integration/test_submit_fields.sh
#
# 'drover submit' checks what it is given before producing: an entity ref
# against Backstage's rules, the dataset name, a task id as a uuid; each
# refusal is exit 65 with one "drover:" line naming the rule.  A task id
# drover.task_runs already holds is refused (exit 65) instead of a second
# task overwriting its row; a new one is produced as given.
set -euo pipefail
: "${DROVER_BIN:?}"
if [ -z "${DROVER_TEST_BROKERS:-}" ] || [ -z "${DROVER_TEST_DATABASE_URL:-}" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && { echo "no stack" >&2; exit 1; }
  echo "stack not set: skipping"; exit 77
fi
B=$DROVER_TEST_BROKERS
DB=$DROVER_TEST_DATABASE_URL
T=drv-submit-fields-$$-$RANDOM
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$work/err" >&2 || true; exit 1; }
uuid() { /usr/bin/python3 -c 'import uuid; print(uuid.uuid4())'; }

# refused: exit 65, nothing on stdout, one line naming the rule
refused() { # want-substring args...
  local want=$1 rc
  shift
  set +e
  "$DROVER_BIN" submit --brokers "$B" --topic "$T" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  set -e
  [ "$rc" = 65 ] || fail "$*: exit $rc, want 65"
  [ ! -s "$work/out" ] || fail "$*: stdout $(cat "$work/out")"
  [ "$(wc -l <"$work/err")" = 1 ] || fail "$*: want one line"
  grep -qF "$want" "$work/err" || fail "$*: no \"$want\" in $(cat "$work/err")"
}
refused 'drover: invalid entity ref "component:../..": the namespace must start and end with a letter or digit' \
  --entity component:../.. --dataset customer
refused 'the name must be letters, digits' --entity 'component:default/a b' --dataset customer
refused 'invalid entity ref' --entity 'component:default/"x"' --dataset customer
refused 'invalid dataset "cust omer"' --entity component:default/plan --dataset 'cust omer'
refused 'invalid task id "t-1": want a uuid' --entity plan --dataset customer --task-id t-1

# a task id drover has seen
seen=$(uuid)
DATABASE_URL=$DB "$DROVER_BIN" status --limit 1 >/dev/null 2>&1 || true # schema
psql "$DB" -X -q -v ON_ERROR_STOP=1 -c \
  "INSERT INTO drover.task_runs (task_id, entity_ref, dataset, status) VALUES ('$seen', 'component:default/plan', 'customer', 'done')"
refused "drover: task \"$seen\" was already submitted" \
  --entity plan --dataset customer --task-id "$seen" --database "$DB"

# no database to check it against: a usage error
set +e
env -u DATABASE_URL "$DROVER_BIN" submit --brokers "$B" --topic "$T" \
  --entity plan --dataset customer --task-id "$(uuid)" >/dev/null 2>"$work/err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "--task-id without a database: exit $rc, want 2"

# a new one is produced as given
new=$(uuid)
DATABASE_URL=$DB "$DROVER_BIN" submit --brokers "$B" --topic "$T" \
  --entity component:default/plan --dataset customer --task-id "$new" \
  >"$work/out" 2>"$work/err" || fail "new task id: exit $?"
[ "$(cat "$work/out")" = "$new" ] || fail "printed $(cat "$work/out"), want $new"
psql "$DB" -X -q -c "DELETE FROM drover.task_runs WHERE task_id = '$seen'" >/dev/null
echo "ok: submit refuses bad fields and seen task ids with exit 65"
