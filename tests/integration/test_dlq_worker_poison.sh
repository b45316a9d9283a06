#!/usr/bin/env bash
# drover - poison tasks through a real worker: each kind lands in the DLQ
# exactly once (read_committed) with its drover.error.class and every
# DESIGN section 7 header, and good tasks submitted between them complete.
. "$(dirname "$0")/worker_lib.sh"

NGOOD=4
make_plans $NGOOD
$CHECK create "$B" "$TOPIC" 3
ent() { echo "component:default/${1//_/-}"; }
plan() { # plan NAME DATASET FROM TO STEPS-YAML
  cat >"$CAT/$1.yaml" <<EOF
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${1//_/-}
spec:
  type: migration-plan
  lifecycle: test
  owner: tests
  dataset: $2
  schemaVersion: {from: $3, to: $4}
  steps:
$5
EOF
}
P="${ID}_p"
sql "CREATE TABLE ${P}_uniq (id int PRIMARY KEY); INSERT INTO ${P}_uniq VALUES (1)"
plan "${P}_invalid" "${P}_inv" 1 2 "    - {op: teleport_rows, table: ${P}_x}"
plan "${P}_inject" "${P}_inj" 1 2 "    - {op: add_column, table: '${P}_x; DROP TABLE ${P}_uniq', column: {name: c, type: int}}"
plan "${P}_div0" "${P}_div" 1 2 "    - {op: sql, sql: 'SELECT 1/0'}"
plan "${P}_dup" "${P}_dup" 1 2 "    - {op: sql, sql: 'INSERT INTO ${P}_uniq VALUES (1)'}"
plan "${P}_norel" "${P}_norel" 1 2 "    - {op: sql, sql: 'SELECT * FROM ${P}_no_such_table'}"
plan "${P}_vc" "${ID}_ds0" 5 6 "    - {op: sql, sql: 'SELECT 1'}"
plan "${P}_param" "${P}_param" 1 2 "    - {op: backfill, table: ${P}_uniq, set: {id: 'coalesce(\$param:wanted, id)'}}"

sub() { # sub ENTITY DATASET [args]: one task, its id in $WORK/ids
  local e=$1 d=$2
  shift 2
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" --entity "$e" \
    --dataset "$d" "$@" >>"$WORK/ids" || fail "submit $e failed"
}
raw() { # raw KEY FILE
  $CHECK produce "$B" "$TOPIC" "$1" "$2"
}
good=0
goodtask() { sub "$(ent "${ID}_ds$good-v2")" "${ID}_ds$good"; good=$((good + 1)); }

# raw bytes: a valid record captured from a scratch topic, cut short
"$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC-scratch" \
  --entity "$(ent x)" --dataset x >/dev/null || fail "scratch submit"
kcat -C -b "$B" -t "$TOPIC-scratch" -c 1 -e -q -f '%s' >"$WORK/valid.bin"
head -c $(($(stat -c %s "$WORK/valid.bin") / 2)) "$WORK/valid.bin" >"$WORK/trunc.bin"
printf 'this is not avro \001\002\003' >"$WORK/garbage.bin"
printf '\303\001\336\255\276\357\336\255\276\357\002\004xx' >"$WORK/unknownfp.bin"
: >"$WORK/empty.bin"

expect=() # "key-or-dataset class"
raw "${P}_garbage" "$WORK/garbage.bin"; expect+=("${P}_garbage decode")
goodtask
raw "${P}_trunc" "$WORK/trunc.bin"; expect+=("${P}_trunc decode")
raw "${P}_unknownfp" "$WORK/unknownfp.bin"; expect+=("${P}_unknownfp unknown_schema")
raw "${P}_empty" "$WORK/empty.bin"; expect+=("${P}_empty decode")
goodtask
sub "$(ent "${P}_nope")" "${P}_nope"; expect+=("${P}_nope unknown_plan")
# malformed refs from another producer (`drover submit` refuses them):
# dead letters naming the rule, never a catalog request
produce_task "not a ref!" "${P}_badref"; expect+=("${P}_badref unknown_plan")
produce_task "component:../.." "${P}_dotref"; expect+=("${P}_dotref unknown_plan")
sub "$(ent "${P}_invalid")" "${P}_inv"; expect+=("${P}_inv invalid_plan")
sub "$(ent "${P}_inject")" "${P}_inj"; expect+=("${P}_inj invalid_plan")
goodtask
sub "$(ent "${P}_div0")" "${P}_div"; expect+=("${P}_div sql")
sub "$(ent "${P}_dup")" "${P}_dup"; expect+=("${P}_dup sql")
sub "$(ent "${P}_norel")" "${P}_norel"; expect+=("${P}_norel sql")
sub "$(ent "${P}_param")" "${P}_param"; expect+=("${P}_param invalid_param")
goodtask
# runs after ds0's good task: ds0 is at version 2, this plan wants 5
sub "$(ent "${P}_vc")" "${ID}_ds0"; expect+=("${ID}_ds0 version_conflict")
printf '%s\n' "${expect[@]}" >"$WORK/expect"

start_worker "$ID-a"
n=$(($(wc -l <"$WORK/ids") + 4)) # + the four raw records' events
wait_events "$n" 75
$CHECK dlq "$B" "$TOPIC.dlq" >"$WORK/dlq"
$CHECK events "$B" "$TOPIC.status" >"$WORK/events"
/usr/bin/python3 - "$WORK/expect" "$WORK/dlq" "$WORK/events" "$NGOOD" <<'PY' || fail "dead letters"
import json, sys, collections
expect = [l.split() for l in open(sys.argv[1]) if l.strip()]
recs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
evs = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
need = ["drover.error.class", "drover.error.message", "drover.error.retryable",
        "drover.error.step", "drover.error.sqlstate", "drover.task.id",
        "drover.dataset", "drover.attempts", "drover.first.failure.ms",
        "drover.last.failure.ms", "drover.backoff.ms", "drover.retry.after.ms",
        "drover.original.topic", "drover.original.partition",
        "drover.original.offset", "drover.original.timestamp.ms",
        "drover.worker", "drover.consumer.group", "drover.redrive.count"]
bad = []
for r in recs:
    miss = [h for h in need if h not in r["headers"]]
    if miss:
        bad.append("record %s lacks %s" % (r["key"], miss))
got = collections.Counter((r["headers"].get("drover.dataset") or r["key"],
                           r["headers"].get("drover.error.class")) for r in recs)
for who, cls in expect:
    if got[(who, cls)] != 1:
        bad.append("%s: %d dead letter(s) of class %s; all: %s" % (
            who, got[(who, cls)], cls,
            [k for k in got if k[0] == who]))
if len(recs) != len(expect):
    bad.append("%d dead letters, expected %d" % (len(recs), len(expect)))
st = collections.Counter(e["status"] for e in evs)
if st["done"] != int(sys.argv[4]):
    bad.append("good tasks done: %d of %s" % (st["done"], sys.argv[4]))
print("# dead letters:", len(recs), "events:", dict(st), file=sys.stderr)
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
# the injected statement never ran
[ "$(sql "SELECT count(*) FROM ${P}_uniq")" = 1 ] || fail "uniq table changed"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
echo "ok"
