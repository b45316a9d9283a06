#!/usr/bin/env bash
# drover - Confluent framing end to end against a REAL schema registry
# (DROVER_TEST_REGISTRY_URL: the Confluent API of the Apicurio Registry
# scripts/registry.sh runs), a real broker and a real database:
#   - `drover submit` registers the task schema under <topic>-value and
#     frames each record 00 + the id the registry gave;
#   - python3-avro writes a v1 task whose schema it registered through the
#     registry's own REST API;
#   - a record names an id the registry does not have.
# A worker given the registry runs the first two kinds and dead-letters the
# third as unknown_schema (the registry's 404 in the message).
# Skipped (77) when no real registry is running, unless
# DROVER_REQUIRE_STACK=1 (scripts/test.sh), when that fails.
. "$(dirname "$0")/worker_lib.sh"

R=${DROVER_TEST_REGISTRY_URL:-}
if [ -z "$R" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] &&
    fail "no real schema registry (DROVER_TEST_REGISTRY_URL unset)"
  echo "no real schema registry (DROVER_TEST_REGISTRY_URL unset): skipping" >&2
  exit 77
fi
SUBJECT="$TOPIC-value"
make_plans 3
$CHECK create "$B" "$TOPIC" 2

for i in 0 1; do
  SCHEMA_REGISTRY_URL=$R "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
    --entity "component:default/${ID//_/-}-ds$i-v2" --dataset "${ID}_ds$i" \
    >>"$WORK/ids" || fail "submit through the registry failed"
done

# the framing names the id the registry holds for <topic>-value
id=$(curl -fsS "$R/subjects/$SUBJECT/versions/latest" |
  /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
  fail "registry has no subject $SUBJECT"
kcat -C -b "$B" -t "$TOPIC" -c 1 -e -q -f '%s' >"$WORK/first.bin"
head=$(head -c 5 "$WORK/first.bin" | od -An -tx1 | tr -d ' \n')
[ "$head" = "$(printf '00%08x' "$id")" ] ||
  fail "record starts $head, want 00 + registry id $id"
log "submit framed with registry id $id (subject $SUBJECT)"

# python3-avro: a v1 writer, registered through the registry's API
/usr/bin/python3 - "$R" "$SUBJECT" "$DROVER_SOURCE_DIR/schema/avro" \
  "$ID" "$WORK" <<'PY' || fail "python3-avro record"
import io, json, struct, sys, urllib.parse, urllib.request, uuid
from datetime import datetime, timezone
import avro.io, avro.schema
reg, subject, schemas, tid, work = sys.argv[1:6]
text = open(schemas + "/MigrationTask.v1.avsc").read()
req = urllib.request.Request(
    "%s/subjects/%s/versions" % (reg, urllib.parse.quote(subject, safe="")),
    data=json.dumps({"schema": text}).encode(),
    headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
sid = json.load(urllib.request.urlopen(req))["id"]
task = {"task_id": str(uuid.uuid4()),
        "entity_ref": "component:default/%s-ds2-v2" % tid.replace("_", "-"),
        "dataset": tid + "_ds2", "requested_at": datetime.now(timezone.utc),
        "requested_by": "python3-avro", "dry_run": False, "params": {}}
buf = io.BytesIO()
avro.io.DatumWriter(avro.schema.parse(text)).write(task, avro.io.BinaryEncoder(buf))
open(work + "/py.bin", "wb").write(b"\0" + struct.pack(">i", sid) + buf.getvalue())
open(work + "/ids", "a").write(task["task_id"] + "\n")
print("# python3-avro v1 record, registry id %d" % sid, file=sys.stderr)
PY
$CHECK produce "$B" "$TOPIC" "${ID}_ds2" "$WORK/py.bin"
# id 2000000000: no registry of a test run has it
printf '\000\167\065\224\000\002x' >"$WORK/unknown.bin"
$CHECK produce "$B" "$TOPIC" "${ID}_unknownid" "$WORK/unknown.bin"

export SCHEMA_REGISTRY_URL=$R
start_worker "$ID-a"
wait_events 4 90
$CHECK events "$B" "$TOPIC.status" >"$WORK/events"
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
/usr/bin/python3 - "$WORK/ids" "$WORK/events" "$WORK/dlq" "$ID" <<'PY' || fail "outcomes"
import json, sys, collections
ids = [l.strip() for l in open(sys.argv[1]) if l.strip()]
evs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
dlq = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
bad = []
st = {e.get("task_id"): e["status"] for e in evs if e.get("task_id")}
for i in ids:
    if st.get(i) != "done":
        bad.append("task %s: %s, want done" % (i, st.get(i)))
if len(dlq) != 1:
    bad.append("%d dead letters, want 1" % len(dlq))
else:
    h = dlq[0]["headers"]
    if dlq[0]["key"] != sys.argv[4] + "_unknownid":
        bad.append("dead letter key %s" % dlq[0]["key"])
    if h.get("drover.error.class") != "unknown_schema":
        bad.append("dead letter class %s" % h.get("drover.error.class"))
    if "404" not in (h.get("drover.error.message") or ""):
        bad.append("dead letter message %r lacks 404" % h.get("drover.error.message"))
print("# events:", dict(collections.Counter(e["status"] for e in evs)),
      "dead letters:", len(dlq), file=sys.stderr)
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
[ "$(sql "SELECT count(*) FROM $EFFECTS")" = 3 ] || fail "plan steps did not run once each"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
echo "ok"
