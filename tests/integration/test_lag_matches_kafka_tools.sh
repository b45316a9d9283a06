#!/usr/bin/env bash
# drover - tests/integration/test_lag_matches_kafka_tools.sh
#
# 'drover lag' against Kafka's own tools on the same group: per partition
# CURRENT-OFFSET / LOG-END-OFFSET / LAG equal ConsumerGroupCommand
# --describe where the group committed; a partition without a commit lags
# by end - start (checked after deleting records, so start > 0), where
# GetOffsetShell gives start and end; totals and suggested replicas follow
# ceil(total / threshold) capped at the partition count (lagging
# partitions with --only-lagging); an open transaction is not counted
# (log end is the last stable offset).
set -euo pipefail
: "${DROVER_BIN:?}" "${DROVER_SOURCE_DIR:?}"
if [ -z "${DROVER_TEST_BROKERS:-}" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && { echo "no stack" >&2; exit 1; }
  echo "DROVER_TEST_BROKERS not set: skipping"; exit 77
fi
B=$DROVER_TEST_BROKERS
LIBS=$DROVER_SOURCE_DIR/.cache/kafka-libs
[ -d "$LIBS" ] || { echo "no $LIBS (scripts/deps.sh fetches it)" >&2; exit 1; }
T=lagtest-$$-$RANDOM
G=laggroup-$$-$RANDOM
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kt() { java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j2.level=error -cp "$LIBS/*" "$@" 2>/dev/null; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# 4 partitions: p0 30 records (commit 10), p1 12 (commit 12: no lag),
# p2 25 (no commit; first 15 deleted: lag 10), p3 empty.
/usr/bin/python3 - "$B" "$T" "$G" <<'PY'
import sys
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
b, t, g = sys.argv[1:4]
a = AdminClient({"bootstrap.servers": b})
for f in a.create_topics([NewTopic(t, 4, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": b, "linger.ms": 1})
for part, n in ((0, 30), (1, 12), (2, 25)):
    for i in range(n):
        p.produce(t, value=b"x%d" % i, key=b"k", partition=part)
assert p.flush(30) == 0
c = Consumer({"bootstrap.servers": b, "group.id": g,
              "enable.auto.commit": False})
c.commit(offsets=[TopicPartition(t, 0, 10), TopicPartition(t, 1, 12)],
         asynchronous=False)
c.close()
PY
cat >"$work/del.json" <<EOF
{"version":1,"partitions":[{"topic":"$T","partition":2,"offset":15}]}
EOF
kt org.apache.kafka.tools.DeleteRecordsCommand --bootstrap-server "$B" \
  --offset-json-file "$work/del.json" >/dev/null

"$DROVER_BIN" lag --brokers "$B" --topic "$T" --group "$G" --json \
  --lag-threshold 7 >"$work/lag.json" 2>"$work/lag.err" ||
  fail "drover lag exited $?: $(cat "$work/lag.err")"
kt org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
  --bootstrap-server "$B" --describe --group "$G" >"$work/describe.txt" ||
  fail "ConsumerGroupCommand failed"
kt org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$B" \
  --topic "$T" --time -1 >"$work/end.txt"
kt org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$B" \
  --topic "$T" --time -2 >"$work/start.txt"

/usr/bin/python3 - "$work" "$T" <<'PY' || exit 1
import json, sys, math
work, topic = sys.argv[1:3]
lag = json.load(open(f"{work}/lag.json"))
rows = {r["partition"]: r for r in lag["partitions"]}
def shell(name):
    out = {}
    for line in open(f"{work}/{name}"):
        t, p, o = line.strip().rsplit(":", 2)
        out[int(p)] = int(o)
    return out
end, start = shell("end.txt"), shell("start.txt")
desc = {}
for line in open(f"{work}/describe.txt"):
    f = line.split()
    if len(f) >= 6 and f[1] == topic:
        desc[int(f[2])] = f
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
check(sorted(rows) == [0, 1, 2, 3], f"partitions {sorted(rows)}")
check(sorted(desc) == [0, 1], f"describe rows {sorted(desc)}")
for p, f in desc.items():   # GROUP TOPIC PARTITION CURRENT LOG-END LAG ...
    r = rows[p]
    check(str(r["committed"]) == f[3], f"p{p} current {r['committed']} vs {f[3]}")
    check(str(r["log_end"]) == f[4], f"p{p} log end {r['log_end']} vs {f[4]}")
    check(str(r["lag"]) == f[5], f"p{p} lag {r['lag']} vs {f[5]}")
for p, r in rows.items():
    check(r["log_end"] == end[p], f"p{p} end {r['log_end']} vs shell {end[p]}")
    check(r["log_start"] == start[p], f"p{p} start {r['log_start']} vs {start[p]}")
check(rows[2]["committed"] is None and start[2] == 15 and
      rows[2]["lag"] == end[2] - start[2] == 10, f"p2 {rows[2]}")
check(rows[3]["lag"] == 0, f"p3 {rows[3]}")
check(lag["total_lag"] == 20 + 0 + 10 + 0, f"total {lag['total_lag']}")
check(lag["lagging_partitions"] == 2, f"lagging {lag['lagging_partitions']}")
check(lag["suggested_replicas"] == min(4, math.ceil(30 / 7)),
      f"replicas {lag['suggested_replicas']}")
if errors:
    print("\n".join(errors), file=sys.stderr)
    print(open(f"{work}/describe.txt").read(), file=sys.stderr)
    sys.exit(1)
PY

# --only-lagging caps at the lagging partitions and hides the others.
"$DROVER_BIN" lag --brokers "$B" --topic "$T" --group "$G" --json \
  --only-lagging --lag-threshold 1 >"$work/only.json"
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert [r["partition"] for r in d["partitions"]] == [0, 2], d
assert d["suggested_replicas"] == 2, d
' "$work/only.json" || fail "--only-lagging"

# The table form names the same numbers.
"$DROVER_BIN" lag --brokers "$B" --topic "$T" --group "$G" \
  --lag-threshold 100 >"$work/table.txt"
grep -q "total lag 30 over 2 of 4 partitions" "$work/table.txt" ||
  fail "table: $(cat "$work/table.txt")"
grep -q "suggested replicas: 1 (lag threshold 100)" "$work/table.txt" ||
  fail "table replicas"

# An open transaction's records are not lag: log end is the LSO.
/usr/bin/python3 - "$B" "$T" "$work/open" <<'PY' &
import sys, time
from confluent_kafka import Producer
b, t, flag = sys.argv[1:4]
p = Producer({"bootstrap.servers": b, "transactional.id": "lagtxn-" + t})
p.init_transactions(30)
p.begin_transaction()
for i in range(5):
    p.produce(t, value=b"open", partition=1)
p.flush(30)
open(flag, "w").write("1")
time.sleep(8)
p.abort_transaction(30)
PY
txn=$!
for _ in $(seq 100); do [ -f "$work/open" ] && break; sleep 0.2; done
[ -f "$work/open" ] || fail "transactional producer did not start"
"$DROVER_BIN" lag --brokers "$B" --topic "$T" --group "$G" --json \
  >"$work/open.json"
wait $txn
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
p1 = [r for r in d["partitions"] if r["partition"] == 1][0]
assert p1["log_end"] == 12 and p1["lag"] == 0, p1
' "$work/open.json" || fail "open transaction counted as lag"

# Usage and unreachable-cluster errors: one line, exit 2 / 69.
set +e
"$DROVER_BIN" lag --lag-threshold 0 2>"$work/e1"; rc1=$?
"$DROVER_BIN" lag --brokers 127.0.0.1:1 --topic "$T" 2>"$work/e2"; rc2=$?
set -e
[ $rc1 = 2 ] && grep -q '^drover: --lag-threshold must be' "$work/e1" ||
  fail "threshold 0: rc $rc1"
[ $rc2 = 69 ] && grep -q '^drover: cannot read topic' "$work/e2" ||
  fail "unreachable: rc $rc2"
echo "ok: drover lag matches kafka-consumer-groups and GetOffsetShell"
