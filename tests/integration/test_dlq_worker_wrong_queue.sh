#!/usr/bin/env bash
# drover - a plan annotated drover.io/queue for another queue lands in the
# DLQ exactly once with class wrong_queue (not retryable) and none of its
# steps run; a plan annotated for this worker's queue (its tasks topic)
# and one without the annotation still complete on the same worker.
. "$(dirname "$0")/worker_lib.sh"

$CHECK create "$B" "$TOPIC" 2
plan() { # plan DATASET [QUEUE]: one create_table step, annotated for QUEUE
  write_plan "$1" "{op: create_table, table: ${1}_t, columns: [{name: id, type: bigint, primary_key: true}]}"
  [ -z "${2:-}" ] || sed -i "/^  name: /a\\  annotations: {drover.io/queue: $2}" "$CAT/$1.yaml"
}
other="${ID}_other" mine="${ID}_mine" none="${ID}_none"
plan "$other" "$TOPIC-elsewhere"
plan "$mine" "$TOPIC"
plan "$none"
for ds in "$other" "$mine" "$none"; do
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
    --entity "component:default/${ds//_/-}-v2" --dataset "$ds" >>"$WORK/ids" ||
    fail "submit failed"
done

start_worker "$ID-a"
wait_events 3 60
$CHECK events "$B" "$TOPIC.status" >"$WORK/events"
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
/usr/bin/python3 - "$WORK/dlq" "$WORK/events" "$other" "$mine" "$none" <<'PY' || fail "dead letters"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
evs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
other, mine, none = sys.argv[3:6]
bad = []
if len(recs) != 1:
    bad.append("%d dead letters, want 1" % len(recs))
for r in recs:
    h = r["headers"]
    want = {"drover.error.class": "wrong_queue", "drover.dataset": other,
            "drover.error.retryable": "false"}
    for k, v in want.items():
        if h.get(k) != v:
            bad.append("%s = %r, want %r" % (k, h.get(k), v))
    if "drover.io/queue" not in h.get("drover.error.message", ""):
        bad.append("message %r" % h.get("drover.error.message"))
st = {e["dataset"]: e["status"] for e in evs}
if st.get(other) != "dead" or st.get(mine) != "done" or st.get(none) != "done":
    bad.append("status events %s" % [(e["dataset"], e["status"]) for e in evs])
print("# dead letters:", [r["headers"].get("drover.error.class") for r in recs],
      "events:", st, file=sys.stderr)
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
[ -z "$(sql "SELECT to_regclass('${other}_t')")" ] || fail "the refused plan ran"
[ -n "$(sql "SELECT to_regclass('${mine}_t')")" ] || fail "the plan for this queue did not run"
[ "$(sql "SELECT status FROM drover.task_runs WHERE dataset = '$other'")" = dead ] ||
  fail "task_runs of the refused task"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
echo "ok"
