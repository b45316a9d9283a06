#!/usr/bin/env bash
# drover - a worker started without allow_sql: a plan with a raw `sql` step
# lands in the DLQ exactly once with class sql_refused (not retryable, the
# step named, every DESIGN section 7 header) and its statement never runs;
# a plan without raw SQL on the same worker still completes.
. "$(dirname "$0")/worker_lib.sh"

sql "CREATE TABLE $EFFECTS (dataset text NOT NULL, at timestamptz DEFAULT now())"
$CHECK create "$B" "$TOPIC" 2
plan() { # plan DATASET STEPS-YAML
  cat >"$CAT/$1.yaml" <<EOF
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${1//_/-}-v2
spec:
  type: migration-plan
  lifecycle: test
  owner: tests
  dataset: $1
  schemaVersion: {from: 1, to: 2}
  steps:
$2
EOF
}
raw="${ID}_raw" good="${ID}_good"
plan "$raw" "    - {op: create_table, table: ${raw}_t, columns: [{name: id, type: bigint, primary_key: true}]}
    - {op: sql, sql: \"INSERT INTO $EFFECTS (dataset) VALUES ('$raw')\"}"
plan "$good" "    - {op: create_table, table: ${good}_t, columns: [{name: id, type: bigint, primary_key: true}]}"
for ds in "$raw" "$good"; do
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
    --entity "component:default/${ds//_/-}-v2" --dataset "$ds" >>"$WORK/ids" ||
    fail "submit failed"
done

start_worker "$ID-a" --no-allow-sql
wait_events 2 60
$CHECK events "$B" "$TOPIC.status" >"$WORK/events"
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
/usr/bin/python3 - "$WORK/dlq" "$WORK/events" "$raw" "$good" <<'PY' || fail "dead letters"
import json, sys, collections
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
evs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
raw, good = sys.argv[3], sys.argv[4]
need = ["drover.error.class", "drover.error.message", "drover.error.retryable",
        "drover.error.step", "drover.error.sqlstate", "drover.task.id",
        "drover.dataset", "drover.attempts", "drover.first.failure.ms",
        "drover.last.failure.ms", "drover.backoff.ms", "drover.retry.after.ms",
        "drover.original.topic", "drover.original.partition",
        "drover.original.offset", "drover.original.timestamp.ms",
        "drover.worker", "drover.consumer.group"]
bad = []
if len(recs) != 1:
    bad.append("%d dead letters, want 1" % len(recs))
for r in recs:
    h = r["headers"]
    miss = [k for k in need if k not in h]
    if miss:
        bad.append("missing headers %s" % miss)
    want = {"drover.error.class": "sql_refused", "drover.dataset": raw,
            "drover.error.retryable": "false", "drover.error.step": "1:sql"}
    for k, v in want.items():
        if h.get(k) != v:
            bad.append("%s = %r, want %r" % (k, h.get(k), v))
st = {e["dataset"]: e["status"] for e in evs}
if st.get(raw) != "dead" or st.get(good) != "done" or len(evs) != 2:
    bad.append("status events %s" % [(e["dataset"], e["status"]) for e in evs])
print("# dead letters:", [r["headers"].get("drover.error.class") for r in recs],
      "events:", st, file=sys.stderr)
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
[ "$(sql "SELECT count(*) FROM $EFFECTS")" = 0 ] || fail "the refused statement ran"
[ "$(sql "SELECT status FROM drover.task_runs WHERE dataset = '$raw'")" = dead ] ||
  fail "task_runs of the refused task"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
echo "ok"
