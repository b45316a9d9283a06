#!/usr/bin/env bash
# drover - replay end to end through real workers: tasks run (most done, a
# few dead because a table they write is missing); `drover replay --execute`
# refuses while a worker is in the group; with the workers stopped the dry
# run prints the targets and changes nothing, --execute rewinds the group;
# after the cause is fixed and the workers restart, the completed tasks
# report skipped without touching PostgreSQL again, the dead ones run and
# succeed, and every task has exactly one new committed status event.
. "$(dirname "$0")/worker_lib.sh"

NGOOD=6 NBAD=2
# static members (opt-in), so that a clean stop leaves them in the group
# until their sessions end: what `replay --execute --wait` is for
export DROVER_STATIC_MEMBERSHIP=auto
LATE="${ID}_late" # missing during the first run
make_plans $NGOOD
for ((i = 0; i < NBAD; i++)); do
  ds="${ID}_bad$i"
  write_plan "$ds" \
    "{op: create_table, table: ${ds}_t, columns: [{name: id, type: bigint, primary_key: true}]}" \
    "{op: sql, sql: \"INSERT INTO $LATE (dataset) VALUES ('$ds')\"}"
done
$CHECK create "$B" "$TOPIC" 3
replay() { "$DROVER_BIN" replay --brokers "$B" --topic "$TOPIC" --group "$GROUP" "$@"; }

t0=$(($(date +%s%3N) - 1000))
submit_tasks $NGOOD 1
for ((i = 0; i < NBAD; i++)); do
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
    --entity "component:default/${ID//_/-}-bad$i-v2" --dataset "${ID}_bad$i" \
    >>"$WORK/bad_ids" || fail "submit failed"
done
cat "$WORK/bad_ids" >>"$WORK/ids"
N=$((NGOOD + NBAD))

# 1. the first run
start_worker "$ID-a"
start_worker "$ID-b"
wait_events $N 90
wait_final $N 30
$CHECK events "$B" "$TOPIC.status" >"$WORK/events1"
[ "$(grep -c '"status":"done"' "$WORK/events1")" = $NGOOD ] || fail "first run: $(cat "$WORK/events1")"
[ "$(grep -c '"status":"dead"' "$WORK/events1")" = $NBAD ] || fail "first run: no $NBAD dead"
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq1"
[ "$(grep -c '"drover.error.class": "sql"' "$WORK/dlq1")" = $NBAD ] || fail "dlq: $(cat "$WORK/dlq1")"
$CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/off1"
log "first run: $NGOOD done, $NBAD dead; offsets $(tr '\n' ' ' <"$WORK/off1")"

# 2. --execute refuses while workers are in the group
set +e
replay --from "$t0" --execute >"$WORK/refuse.out" 2>"$WORK/refuse.err"
rc=$?
set -e
[ "$rc" = 69 ] || fail "replay --execute with live workers exited $rc: $(cat "$WORK/refuse.err")"
grep -q "active member" "$WORK/refuse.err" || fail "refusal says: $(cat "$WORK/refuse.err")"
$CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/off2"
cmp -s "$WORK/off1" "$WORK/off2" || fail "refused replay moved offsets"

# 3. stop the workers; the dry run prints targets and changes nothing
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "worker exited $? on SIGTERM"; done
PIDS=()
# the stopped workers are static members: they stay
# until their 6 s sessions end, and the refusal says how to wait for that
set +e
replay --from "$t0" --execute >/dev/null 2>"$WORK/refuse2.err"
rc=$?
set -e
[ "$rc" = 69 ] || fail "replay --execute right after a clean stop exited $rc: $(cat "$WORK/refuse2.err")"
grep -q -- "--wait" "$WORK/refuse2.err" || fail "refusal says: $(cat "$WORK/refuse2.err")"
replay --from "$t0" >"$WORK/dry.out" || fail "dry run failed"
cat "$WORK/dry.out" >&2
grep -q "(dry run)" "$WORK/dry.out" || fail "dry run not labelled"
# every partition with records is selected with target 0 and N records
awk '$1 ~ /^[0-9]+$/ && $4 > 0 && ($3 != 0 || $6 != $4) { bad = 1 }
     END { exit bad }' "$WORK/dry.out" || fail "dry-run targets"
$CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/off3"
cmp -s "$WORK/off1" "$WORK/off3" || fail "dry run moved offsets"

# 4. --execute rewinds the group to the start
replay --from "$t0" --execute --wait 30 >"$WORK/exec.out" 2>"$WORK/exec.err" ||
  fail "replay --execute --wait 30 failed: $(cat "$WORK/exec.err")"
$CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/off4"
awk '$3 > 0 && $2 != 0 { bad = 1 } END { exit bad }' "$WORK/off4" ||
  fail "offsets after --execute: $(tr '\n' ' ' <"$WORK/off4")"

# 5. fix the cause, restart the workers
sql "CREATE TABLE $LATE (dataset text NOT NULL)"
start_worker "$ID-a"
start_worker "$ID-b"
wait_events $((2 * N)) 90
$CHECK events "$B" "$TOPIC.status" >"$WORK/events"
/usr/bin/python3 - "$WORK/ids" "$WORK/bad_ids" "$WORK/events" <<'PY' || fail "replayed status events"
import json, sys, collections
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
bad_ids = {l.strip() for l in open(sys.argv[2]) if l.strip()}
evs = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
per = collections.defaultdict(list)
for e in evs:  # one task's events share a status partition: in order
    per[e["task_id"]].append(e["status"])
problems = []
for i in ids:
    want = ["dead", "done"] if i in bad_ids else ["done", "skipped"]
    if per[i] != want:
        problems.append("%s: %s, want %s" % (i, per[i], want))
extra = set(per) - set(ids)
if extra:
    problems.append("unknown task ids %s" % list(extra)[:3])
print("# events:", len(evs), dict(collections.Counter(e["status"] for e in evs)),
      file=sys.stderr)
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
# no PostgreSQL effect twice, the fixed tasks' effect exactly once
bad=$(sql "SELECT count(*) FROM (SELECT dataset FROM $EFFECTS GROUP BY 1 HAVING count(*) <> 1) x")
[ "$bad" = 0 ] && [ "$(sql "SELECT count(*) FROM $EFFECTS")" = $NGOOD ] ||
  fail "effects: $(sql "SELECT dataset, count(*) FROM $EFFECTS GROUP BY 1")"
[ "$(sql "SELECT count(*) FROM $LATE")" = $NBAD ] &&
  [ "$(sql "SELECT count(DISTINCT dataset) FROM $LATE")" = $NBAD ] ||
  fail "fixed tasks' effects: $(sql "SELECT dataset, count(*) FROM $LATE GROUP BY 1")"
# no new dead letter, task_runs final, offsets at the end
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq2"
cmp -s "$WORK/dlq1" "$WORK/dlq2" || fail "the replay wrote dead letters"
[ "$(sql "SELECT count(*) FROM drover.task_runs WHERE dataset LIKE '${ID}\_%'
          AND status = CASE WHEN dataset LIKE '${ID}\_bad%' THEN 'done'
                            ELSE 'skipped' END")" = $N ] ||
  fail "task_runs: $(sql "SELECT dataset, status FROM drover.task_runs WHERE dataset LIKE '${ID}\_%'")"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "worker exited $? on SIGTERM"; done
PIDS=()
$CHECK offsets "$B" "$TOPIC" "$GROUP" >"$WORK/offsets"
awk '$3 > 0 && $2 != $3 { bad = 1 } END { exit bad }' "$WORK/offsets" ||
  fail "offsets not at the log end: $(tr '\n' ' ' <"$WORK/offsets")"
echo "ok"
