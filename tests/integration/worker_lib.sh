# drover - tests/integration/worker_lib.sh: shared by test_worker_*.sh.
#
# Each test gets its own topic, group, catalog and tables (pid-suffixed),
# starts drover workers as background processes and checks, on the real
# broker and database:
#   - every task has exactly one committed status event (read_committed),
#   - every plan step ran once (an effects table the plan's `sql` step
#     inserts into, one row per execution),
#   - the group's committed offsets are at the log end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK="/usr/bin/python3 $HERE/worker_check.py"

if [ -z "${DROVER_TEST_BROKERS:-}" ] || [ -z "${DROVER_TEST_DATABASE_URL:-}" ]; then
  if [ "${DROVER_REQUIRE_STACK:-}" = 1 ]; then
    echo "DROVER_TEST_BROKERS / DROVER_TEST_DATABASE_URL not set" >&2
    exit 1
  fi
  echo "stack not set up: skipping" >&2
  exit 77
fi
: "${DROVER_BIN:?DROVER_BIN must name the drover binary}"

B=$DROVER_TEST_BROKERS
DB=$DROVER_TEST_DATABASE_URL
ID="wt$$_$RANDOM"
TOPIC="drv-$ID"
GROUP="drv-$ID"
WORK=$(mktemp -d "/tmp/drover-$ID.XXXXXX")
CAT=$WORK/catalog
EFFECTS="${ID}_effects"
PIDS=()
GATES=() # hold_gate's sessions, ended by cleanup
mkdir -p "$CAT"

fail() { echo "FAIL: $*" >&2; exit 1; }

# require_test_hooks: the test needs DROVER_CRASH_AT / DROVER_STOP_AT,
# compiled in only with -DDROVER_TEST_HOOKS=ON (scripts/test.sh sets it):
# skip without them, or fail under DROVER_REQUIRE_STACK=1.
require_test_hooks() {
  "$DROVER_BIN" --version | grep -q "test hooks compiled in" && return 0
  echo "drover was built without test hooks (cmake -DDROVER_TEST_HOOKS=ON)" >&2
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && exit 1
  exit 77
}
log() { echo "# $*" >&2; }

cleanup() {
  local p g
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  for g in "${GATES[@]:-}"; do
    [ -n "$g" ] && release_gate "$g" 2>/dev/null || true
  done
  if [ "${KEEP_WORK:-}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

sql() { psql "$DB" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }

# write_plan DATASET STEP...: a catalog entity migrating DATASET from
# version PLAN_TO-1 to PLAN_TO (PLAN_TO=2 unless set), named "<dataset with
# - for _>-v<PLAN_TO>", one step per argument (each a YAML flow mapping,
# e.g. '{op: sql, sql: "SELECT 1"}'), in $CAT/DATASET.yaml (-vN.yaml for
# PLAN_TO=N other than 2).
write_plan() {
  local ds=$1 to=${PLAN_TO:-2} file step
  shift
  file=$CAT/$ds.yaml
  [ "$to" = 2 ] || file=$CAT/$ds-v$to.yaml
  {
    cat <<EOF
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${ds//_/-}-v$to
spec:
  type: migration-plan
  lifecycle: test
  owner: tests
  dataset: $ds
  schemaVersion: {from: $((to - 1)), to: $to}
  steps:
EOF
    for step in "$@"; do printf '    - %s\n' "$step"; done
  } >"$file"
}

# make_plans N: datasets ${ID}_ds0..N-1, each a two-step plan: create a
# table, then insert one row into the effects table (counts executions).
make_plans() {
  local n=$1 i ds
  sql "CREATE TABLE IF NOT EXISTS $EFFECTS (dataset text NOT NULL, at timestamptz DEFAULT now())"
  for ((i = 0; i < n; i++)); do
    ds="${ID}_ds$i"
    write_plan "$ds" \
      "{op: create_table, table: ${ds}_t, columns: [{name: id, type: bigint, primary_key: true}]}" \
      "{op: sql, sql: \"INSERT INTO $EFFECTS (dataset) VALUES ('$ds')\"}"
  done
}

# start_worker NAME [--no-allow-sql] [extra args...]: a worker in the
# background, its pid appended to PIDS, its stderr in $WORK/NAME.log.
# Workers allow raw `sql` steps unless --no-allow-sql comes first.  Their
# DATABASE_URL is $WORKER_DB when set (e.g. a pooler in front of $DB),
# else $DB.
start_worker() {
  local name=$1 allow=--allow-sql
  shift
  if [ "${1:-}" = --no-allow-sql ]; then
    allow=
    shift
  fi
  # the database URL (with its password) goes through the environment,
  # never the command line, where ps would show it
  DROVER_INSTANCE="$name" DROVER_HTTP_LISTEN="" DATABASE_URL="${WORKER_DB:-$DB}" \
    "$DROVER_BIN" worker --brokers "$B" --topic "$TOPIC" --group "$GROUP" \
    --catalog "$CAT" ${allow:+"$allow"} \
    --set commit_interval_ms=50 -X session.timeout.ms=6000 \
    -X heartbeat.interval.ms=500 "$@" 2>>"$WORK/$name.log" &
  PIDS+=($!)
  LAST_PID=$!
}

# submit_tasks N_DATASETS PER_DATASET: task ids into $WORK/ids, of the
# plans to version PLAN_TO (2 unless set; see write_plan)
submit_tasks() {
  local n=$1 per=$2 i
  for ((i = 0; i < n; i++)); do
    "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
      --entity "component:default/${ID//_/-}-ds$i-v${PLAN_TO:-2}" --dataset "${ID}_ds$i" \
      --count "$per" >>"$WORK/ids" || fail "submit failed"
  done
}

# wait_log FILE PATTERN COUNT SECONDS: until FILE has COUNT lines
# matching PATTERN
wait_log() {
  local i n
  for ((i = 0; i < $4 * 5; i++)); do
    n=$(grep -c "$2" "$1" 2>/dev/null || true)
    [ "${n:-0}" -ge "$3" ] && return 0
    sleep 0.2
  done
  fail "no $3 x \"$2\" in $1 after $4 s"
}

# final_count: task_runs rows of our datasets with a final status
final_count() {
  sql "SELECT count(*) FROM drover.task_runs WHERE dataset LIKE '${ID}\_%'
       AND status IN ('done','skipped','dry_run','dead')"
}

# wait_final N TIMEOUT_S
wait_final() {
  local n=$1 t=$2 i c=0
  for ((i = 0; i < t; i++)); do
    c=$(final_count)
    [ "$c" -ge "$n" ] && return 0
    sleep 1
  done
  fail "only $c of $n tasks final after ${t}s"
}

# wait_events N TIMEOUT_S: until N committed status events exist
wait_events() {
  local n=$1 t=$2 i c=0
  for ((i = 0; i < t; i += 2)); do
    c=$($CHECK events "$B" "$TOPIC.status" | wc -l)
    [ "$c" -ge "$n" ] && return 0
    sleep 2
  done
  fail "only $c of $n status events after ${t}s"
}

# check_events: every id in $WORK/ids has exactly one committed status
# event, and no other task has one; the events in $WORK/events.
check_events() {
  $CHECK events "$B" "$TOPIC.status" >"$WORK/events"
  /usr/bin/python3 - "$WORK/ids" "$WORK/events" <<'PY' || fail "status events"
import json, sys, collections
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
evs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
cnt = collections.Counter(e.get("task_id") for e in evs)
dups = {k: v for k, v in cnt.items() if v > 1}
missing = [i for i in ids if cnt[i] == 0]
extra = [k for k in cnt if k not in set(ids)]
st = collections.Counter(e["status"] for e in evs)
print("# events:", len(evs), dict(st), file=sys.stderr)
if dups or missing or extra:
    print("duplicates:", list(dups.items())[:5], "missing:", missing[:5],
          "extra:", extra[:5], file=sys.stderr)
    sys.exit(1)
PY
}

# check_offsets: the group's committed offsets are at the log end.
check_offsets() {
  $CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/offsets"
  awk '$3 > 0 && $2 != $3 { bad = 1; print "partition " $1 ": committed " $2 ", end " $3 }
       END { exit bad }' "$WORK/offsets" >&2 || fail "offsets not at the log end"
}

# check_exactly_once N_DATASETS [CHECK_DONE]: the three guarantees, for every id in
# $WORK/ids.
check_exactly_once() {
  local ndatasets=$1 ntasks bad
  ntasks=$(wc -l <"$WORK/ids")
  check_events
  # every plan ran its sql step exactly once
  bad=$(sql "SELECT count(*) FROM (SELECT dataset FROM $EFFECTS
             GROUP BY dataset HAVING count(*) <> 1) x")
  [ "$bad" = 0 ] || fail "$bad dataset(s) ran a step more than once: $(sql "SELECT dataset, count(*) FROM $EFFECTS GROUP BY 1 HAVING count(*) > 1 LIMIT 5")"
  [ "$(sql "SELECT count(DISTINCT dataset) FROM $EFFECTS")" = "$ndatasets" ] ||
    fail "effects for $(sql "SELECT count(DISTINCT dataset) FROM $EFFECTS") of $ndatasets datasets"
  # one 'done' per dataset, unless a crash made the redelivery of a task
  # that had finished its PostgreSQL work report 'skipped' (check_done=0)
  if [ "${2:-1}" = 1 ]; then
    [ "$(sql "SELECT count(*) FROM drover.task_runs WHERE dataset LIKE '${ID}\_%'
              AND status = 'done'")" = "$ndatasets" ] || fail "done count"
  fi
  [ "$(sql "SELECT count(*) FROM drover.task_runs WHERE dataset LIKE '${ID}\_%'")" = "$ntasks" ] ||
    fail "task_runs rows"
  check_offsets
  log "exactly once: $ntasks tasks, $ndatasets datasets, offsets at the end"
}

# produce_task ENTITY DATASET [PARAMS_JSON]: one task written without
# drover (the Avro writer of tests/chaos, single-object encoding, schema
# v1) keyed by DATASET, with the params of PARAMS_JSON (default none), its
# id in $WORK/ids: how a producer that skips `drover submit`'s checks (e.g.
# of the entity ref), or another language's, reaches the worker.
produce_task() {
  local id params='{}'
  [ $# -lt 3 ] || params=$3
  id=$(/usr/bin/python3 - "$HERE/../.." "$1" "$2" "$WORK/task.bin" "$params" <<'PY'
import json, os, sys, time, uuid
root, ref, ds, out, params = sys.argv[1:6]
sys.path.insert(0, os.path.join(root, "tests", "chaos"))
import avro_task
w = avro_task.TaskWriter(os.path.join(root, "schema", "avro",
                                      "MigrationTask.v1.avsc"))
tid = str(uuid.uuid4())
open(out, "wb").write(w.encode(tid, ref, ds, int(time.time() * 1000),
                               "another-producer", json.loads(params)))
print(tid)
PY
  ) || fail "encode a task for $1"
  $CHECK produce "$B" "$TOPIC" "$2" "$WORK/task.bin"
  echo "$id" >>"$WORK/ids"
}

# hold_gate TABLE: a background session holds TABLE (created if missing)
# in ACCESS EXCLUSIVE mode, so a plan step that reads it waits, until
# release_gate TABLE.  Returns once the lock is granted.
hold_gate() {
  local i
  sql "CREATE TABLE IF NOT EXISTS $1 (id int)"
  # at most 3 minutes, and ended by cleanup: an open transaction left
  # behind would hold up every CREATE INDEX CONCURRENTLY of other tests
  psql "$DB" -X -q -v ON_ERROR_STOP=1 -c "SET application_name = '$1'" \
    -c "SET statement_timeout = '180s'" \
    -c "BEGIN" -c "LOCK TABLE $1 IN ACCESS EXCLUSIVE MODE" \
    -c "SELECT pg_sleep(180)" >/dev/null 2>&1 &
  PIDS+=($!)
  GATES+=("$1")
  for ((i = 0; i < 100; i++)); do
    [ "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = '$1' AND l.granted
              AND l.mode = 'AccessExclusiveLock'")" -ge 1 ] && return 0
    sleep 0.1
  done
  fail "could not lock $1"
}

release_gate() {
  sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = '$1'" >/dev/null
}
