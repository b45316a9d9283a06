#!/usr/bin/env bash
# drover - the staging gate, both ways, on the real broker and two real
# databases (production and a staging database created on the same server
# for this test, dropped at the end):
#   1. a worker configured with a staging database dead-letters a plan
#      with spec.requiresStaging: true that never ran there, once, class
#      staging_required (not retryable, the message names the fingerprint
#      and the command), without touching production or staging; a plan
#      without the flag completes beside it;
#   2. `drover plan run` refuses the plan in production the same way
#      (exit 65); `drover plan run --staging` completes it on the staging
#      database only; the same task submitted again (a new task id) is
#      then `done` in production, at the first attempt although the
#      worker's staging connection was terminated meanwhile (it
#      reconnects and asks again instead of retrying the task);
#   3. a worker without a staging database dead-letters a gated plan as
#      staging_required ("no staging database is configured"); a plan
#      without the flag still completes;
#   4. a staging database that cannot be reached is an outage, not a
#      verdict: the task is retried with backoff (class db_unavailable in
#      task_runs), never dead-lettered, and runs once the staging database
#      is there and has the plan done.
# No password of either database URL reaches the worker's logs.
. "$(dirname "$0")/worker_lib.sh"

STAGING="${ID}_staging" LATE="${ID}_late" READY="${ID}_ready"
for db in "$STAGING" "$LATE" "$READY"; do
  [[ "$db" =~ ^[a-z0-9_]+$ ]] || fail "database name $db"
done
# the test's databases go whatever happens; a worker still connected to
# one is killed first by cleanup
staging_cleanup() {
  cleanup
  sql "DROP DATABASE IF EXISTS $STAGING WITH (FORCE)" || true
  sql "DROP DATABASE IF EXISTS $LATE WITH (FORCE)" || true
  sql "DROP DATABASE IF EXISTS $READY WITH (FORCE)" || true
}
trap staging_cleanup EXIT
url_of() { # url_of DBNAME: $DB with another database name
  /usr/bin/python3 -c 'import sys, urllib.parse as u
p = u.urlparse(sys.argv[1]); print(p._replace(path="/" + sys.argv[2]).geturl())' "$DB" "$1"
}
sql "CREATE DATABASE $STAGING"
STAGING_URL=$(url_of "$STAGING")
LATE_URL=$(url_of "$LATE")
READY_URL=$(url_of "$READY")
PW=$(/usr/bin/python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).password or "")' "$DB")
ssql() { psql "$STAGING_URL" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }

$CHECK create "$B" "$TOPIC" 2
# plan DATASET [gated]: one create_table step; "gated" adds
# spec.requiresStaging: true
plan() {
  write_plan "$1" "{op: create_table, table: ${1}_t, columns: [{name: id, type: bigint, primary_key: true}]}"
  [ -z "${2:-}" ] || sed -i "/^  dataset: /a\\  requiresStaging: true" "$CAT/$1.yaml"
}
ref() { echo "component:default/${1//_/-}-v2"; }
submit() { # submit DATASET: its task id appended to $WORK/ids
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --entity "$(ref "$1")" \
    --dataset "$1" >>"$WORK/ids" || fail "submit $1 failed"
}
# worker NAME [STAGING_URL [ARGS...]]: a worker (not a static member, so
# that the next phase's worker gets the partitions at once), with a
# staging database when given; short backoff for phase 4
worker() {
  if [ -n "${2:-}" ]; then export DROVER_STAGING_DATABASE_URL=$2; fi
  start_worker "$1" --set static_membership=off --set backoff.initial_ms=200 \
    --set backoff.max_delay_ms=1000 --set backoff.max_attempts=1000 "${@:3}"
  unset DROVER_STAGING_DATABASE_URL
}
stop_worker() {
  kill -TERM "$LAST_PID"
  wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
  PIDS=()
}
# dead_letters WANT_COUNT: the DLQ into $WORK/dlq, checked for its count
dead_letters() {
  $CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
  [ "$(grep -c . "$WORK/dlq")" = "$1" ] ||
    fail "$(grep -c . "$WORK/dlq") dead letters, want $1: $(cat "$WORK/dlq")"
}
# check_letter DATASET TEXT...: DATASET has one dead letter (the dump is
# in partition order, not time order), staging_required, whose message
# holds every TEXT
check_letter() {
  /usr/bin/python3 - "$WORK/dlq" "$@" <<'PY' || fail "dead letter of $1"
import json, sys
ds, texts = sys.argv[2], sys.argv[3:]
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mine = [r for r in recs if r["headers"].get("drover.dataset") == ds]
if len(mine) != 1:
    sys.exit("%d dead letters of %s, want 1" % (len(mine), ds))
h = mine[0]["headers"]
bad = []
for k, v in {"drover.error.class": "staging_required", "drover.dataset": ds,
             "drover.error.retryable": "false"}.items():
    if h.get(k) != v:
        bad.append("%s = %r, want %r" % (k, h.get(k), v))
msg = h.get("drover.error.message", "")
bad += ["message %r lacks %r" % (msg, t) for t in texts if t not in msg]
print("# dead letter of %s: %s: %s" % (ds, h.get("drover.error.class"), msg),
      file=sys.stderr)
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
status_of() { # status_of TASK_ID: its task_runs status
  sql "SELECT status FROM drover.task_runs WHERE task_id = '$1'"
}
table_in() { # table_in URL TABLE: the table's name when it exists
  psql "$1" -X -q -t -A -v ON_ERROR_STOP=1 -c "SELECT to_regclass('$2')"
}

# ---- 1. not done on staging: staging_required, nothing touched -------
gated="${ID}_gated" plain="${ID}_plain"
plan "$gated" gated
plan "$plain"
fp=$("$DROVER_BIN" plan show "$CAT/$gated.yaml" --json |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["fingerprint"])')
"$DROVER_BIN" plan check "$CAT/$gated.yaml" | grep -q "requires staging" ||
  fail "plan check does not show the flag"
submit "$gated"
submit "$plain"
# one executor: the task of phase 2 finds phase 1's staging connection
worker "$ID-a" "$STAGING_URL" --concurrency 1
wait_events 2 180
dead_letters 1
check_letter "$gated" "(fingerprint ${fp:0:12})" \
  "drover plan run --staging $(ref "$gated") --dataset $gated" \
  "0 of 1 steps done on the staging database"
task1=$(sed -n 1p "$WORK/ids")
[ "$(status_of "$task1")" = dead ] || fail "task_runs of the refused task: $(status_of "$task1")"
[ "$(status_of "$(sed -n 2p "$WORK/ids")")" = done ] || fail "the plan without the flag"
[ -z "$(table_in "$DB" "${gated}_t")" ] || fail "the refused plan ran in production"
[ -z "$(table_in "$STAGING_URL" "${gated}_t")" ] || fail "the worker ran the plan on staging"
[ -n "$(table_in "$DB" "${plain}_t")" ] || fail "the plan without the flag did not run"
# drover status shows the class and the message
DATABASE_URL=$DB "$DROVER_BIN" status --json --dataset "$gated" >"$WORK/status.json" ||
  fail "drover status exited $?"
/usr/bin/python3 - "$WORK/status.json" <<'PY' || fail "drover status of the refused task"
import json, sys
rows = json.load(open(sys.argv[1]))
ok = len(rows) == 1 and rows[0]["status"] == "dead" and \
    rows[0]["error_class"] == "staging_required" and \
    "drover plan run --staging" in rows[0]["error"]
sys.exit(0 if ok else "status rows: %r" % rows)
PY
echo "ok 1 - not done on staging: staging_required, production untouched"

# ---- 2. plan run --staging, then the same task runs in production -----
# a production run by hand passes the same gate
set +e
DROVER_STAGING_DATABASE_URL=$STAGING_URL DATABASE_URL=$DB \
  "$DROVER_BIN" plan run "$(ref "$gated")" --dataset "$gated" --catalog "$CAT" \
  >/dev/null 2>"$WORK/prod.err"
rc=$?
set -e
[ "$rc" = 65 ] && grep -q "0 of 1 steps done on the staging database" "$WORK/prod.err" ||
  fail "plan run in production before staging: exit $rc: $(cat "$WORK/prod.err")"
[ -z "$(table_in "$DB" "${gated}_t")" ] || fail "plan run ran the plan in production"
# the staging URL (with its password) through the environment, not argv
DROVER_STAGING_DATABASE_URL=$STAGING_URL DATABASE_URL=$DB \
  "$DROVER_BIN" plan run "$(ref "$gated")" --dataset "$gated" --catalog "$CAT" \
  --staging >"$WORK/run.out" 2>"$WORK/run.err" ||
  fail "plan run --staging exited $?: $(cat "$WORK/run.err")"
grep -q "done on staging $gated" "$WORK/run.out" || fail "plan run output: $(cat "$WORK/run.out")"
[ -n "$(table_in "$STAGING_URL" "${gated}_t")" ] || fail "plan run --staging did not run on staging"
[ -z "$(table_in "$DB" "${gated}_t")" ] || fail "plan run --staging ran in production"
[ "$(ssql "SELECT count(*) FROM drover.step_ledger WHERE plan_fingerprint = '$fp' AND status = 'done'")" = 1 ] ||
  fail "staging ledger"
# --staging refuses to pick a database by guess, and says where it
# would run
"$DROVER_BIN" plan run --help | grep -q -- "--staging-url URL" || fail "plan run --help"
if env -u DROVER_STAGING_DATABASE_URL "$DROVER_BIN" plan run "$(ref "$gated")" \
  --dataset "$gated" --catalog "$CAT" --staging >/dev/null 2>"$WORK/none.err"; then
  fail "plan run --staging ran without a staging database"
fi
grep -q "no staging database (set --staging-url or DROVER_STAGING_DATABASE_URL)" \
  "$WORK/none.err" || fail "$(cat "$WORK/none.err")"
if DROVER_STAGING_DATABASE_URL=$DB DATABASE_URL=$DB "$DROVER_BIN" plan run \
  "$(ref "$gated")" --dataset "$gated" --catalog "$CAT" --staging \
  >/dev/null 2>"$WORK/same.err"; then
  fail "plan run --staging ran with the staging database = DATABASE_URL"
fi
grep -q "the staging database is DATABASE_URL" "$WORK/same.err" || fail "$(cat "$WORK/same.err")"
# a staging restart, as the worker's idle connection sees it
[ "$(ssql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name = 'drover'")" = 1 ] ||
  fail "the worker's staging connection"
submit "$gated"
wait_events 3 180
task3=$(sed -n 3p "$WORK/ids")
[ "$(status_of "$task3")" = done ] || fail "resubmitted task: $(status_of "$task3")"
[ -n "$(table_in "$DB" "${gated}_t")" ] || fail "the staged plan did not run in production"
! grep -q "task failed (db_unavailable" "$WORK/$ID-a.log" ||
  fail "the lost staging connection made the task retry: $(grep "task failed" "$WORK/$ID-a.log")"
dead_letters 1
stop_worker
echo "ok 2 - plan run --staging, then the resubmitted task is done in production"

# ---- 3. no staging database configured ---------------------------------
gated2="${ID}_gated2" plain2="${ID}_plain2"
plan "$gated2" gated
plan "$plain2"
submit "$gated2"
submit "$plain2"
worker "$ID-b"
wait_events 5 180
dead_letters 2
check_letter "$gated2" "no staging database is configured" \
  "DROVER_STAGING_DATABASE_URL"
[ "$(status_of "$(sed -n 5p "$WORK/ids")")" = done ] || fail "the plan without the flag, no staging"
[ -z "$(table_in "$DB" "${gated2}_t")" ] || fail "the refused plan ran in production"
stop_worker
echo "ok 3 - no staging database: staging_required, other plans unaffected"

# ---- 4. staging unreachable: retried, then done -------------------------
gated3="${ID}_gated3"
plan "$gated3" gated
submit "$gated3"
worker "$ID-c" "$LATE_URL" # a database that does not exist yet
task6=$(sed -n 6p "$WORK/ids")
for ((i = 0; i < 60; i++)); do
  row=$(sql "SELECT status, attempts, last_error->>'class' FROM drover.task_runs WHERE task_id = '$task6'")
  IFS='|' read -r st att cls <<<"$row"
  [ "$st" = retrying ] && [ "${att:-0}" -ge 3 ] && break
  sleep 0.5
done
[ "$st" = retrying ] && [ "${att:-0}" -ge 3 ] && [ "$cls" = db_unavailable ] ||
  fail "unreachable staging: task_runs $row"
dead_letters 2
# staging comes back with the plan done: run it under another name, then
# rename (a worker reaching the empty database first would rightly
# refuse the task)
sql "CREATE DATABASE $READY"
DROVER_STAGING_DATABASE_URL=$READY_URL DATABASE_URL=$DB \
  "$DROVER_BIN" plan run "$CAT/$gated3.yaml" --dataset "$gated3" --staging \
  >"$WORK/run3.out" 2>"$WORK/run3.err" || fail "plan run --staging (late) exited $?: $(cat "$WORK/run3.err")"
sql "ALTER DATABASE $READY RENAME TO $LATE"
wait_events 6 180
[ "$(status_of "$task6")" = done ] || fail "task after staging came back: $(status_of "$task6")"
[ -n "$(table_in "$DB" "${gated3}_t")" ] || fail "the plan did not run once staging was there"
dead_letters 2
stop_worker
echo "ok 4 - staging unreachable: retried as db_unavailable, never dead-lettered"

if grep -qF -- "$PW" "$WORK"/*.log "$WORK"/run*.err "$WORK/dlq"; then
  fail "a database password in the logs or dead letters"
fi
grep -q "cannot connect to postgresql" "$WORK/$ID-c.log" ||
  fail "the worker did not log the unreachable staging database"
echo "ok"
