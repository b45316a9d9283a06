#!/usr/bin/env bash
# drover - tests/integration/test_worker_lag_after_txn_marker.sh
#
# No phantom lag after a transactional producer.  Tasks arrive through a
# transactional producer (as `drover dlq redrive` and Java producers
# write them): every committed transaction ends with a commit marker,
# and an aborted one leaves records no read_committed consumer is handed
# plus its abort marker.  Once every task is final, the group's committed
# offsets must reach the log end as Kafka's own kafka-consumer-groups
# --describe sees it (CURRENT-OFFSET == LOG-END-OFFSET, LAG 0), and
# `drover lag` and the worker's drover_consumer_lag must say 0: KEDA
# computes lag from the committed offsets, and a lag of 1 kept a replica
# forever.
. "$(dirname "$0")/worker_lib.sh"
: "${DROVER_SOURCE_DIR:?}"
LIBS=$DROVER_SOURCE_DIR/.cache/kafka-libs
[ -d "$LIBS" ] || fail "no $LIBS (scripts/deps.sh fetches it)"
kt() { java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j2.level=error -cp "$LIBS/*" "$@" 2>/dev/null; }

NDS=4
make_plans $NDS
$CHECK create "$B" "$TOPIC" 2
$CHECK create "$B" "$TOPIC.stage" 2
# the tasks, as `drover submit` writes them, into a staging topic ...
TOPIC_REAL=$TOPIC
TOPIC=$TOPIC.stage
submit_tasks $NDS 1
TOPIC=$TOPIC_REAL
# ... copied into the tasks topic by a transactional producer, each to
# its partition: two committed transactions with an aborted one between
# (its records reach the log: flushed before the abort)
/usr/bin/python3 - "$B" "$TOPIC" <<'PY' || fail "transactional copy"
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
b, t = sys.argv[1:3]
c = Consumer({"bootstrap.servers": b, "group.id": t + "-copy",
              "enable.auto.commit": False})
ends = {p: c.get_watermark_offsets(TopicPartition(t + ".stage", p), 30)[1]
        for p in (0, 1)}
c.assign([TopicPartition(t + ".stage", p, 0) for p in ends])
recs = []
while len(recs) < sum(ends.values()):
    m = c.poll(5)
    if m is None:
        raise SystemExit("staging topic: only %d records" % len(recs))
    if not m.error():
        recs.append(m)
c.close()
p = Producer({"bootstrap.servers": b, "transactional.id": "drv-" + t,
              "linger.ms": 1})
p.init_transactions(30)
def txn(batch, commit=True):
    p.begin_transaction()
    for m in batch:
        p.produce(t, key=m.key(), value=m.value(), headers=m.headers(),
                  partition=m.partition())
    p.flush(30)
    (p.commit_transaction if commit else p.abort_transaction)(30)
half = len(recs) // 2
txn(recs[:half])
txn(recs[half:], commit=False)
txn(recs[half:])
PY

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_worker "$ID-a" --set "http.listen=127.0.0.1:$PORT" \
  -X statistics.interval.ms=500
wait_final $NDS 120
wait_events $NDS 60

# Kafka's own view of the group, until it shows the committed offsets
# at the log end (with the old code it never did: one short per marker)
describe() {
  kt org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
    --bootstrap-server "$B" --describe --group "$GROUP" >"$WORK/describe.txt" ||
    fail "ConsumerGroupCommand failed"
  # (a partition no key hashed to has no records and no committed offset)
  awk -v t="$TOPIC" '$2 == t { n++; if ($5 == 0 && $4 == "-") next
                               if ($4 != $5 || $6 != 0) bad = 1 }
       END { exit (bad || n != 2) }' "$WORK/describe.txt"
}
for ((i = 0; i < 30; i++)); do
  describe && break
  sleep 1
done
[ "$i" -lt 30 ] || fail "kafka-consumer-groups: committed offsets short of the log end:
$(cat "$WORK/describe.txt")"
log "kafka-consumer-groups: $(awk -v t="$TOPIC" '$2 == t { printf "p%s %s/%s lag %s; ", $3, $4, $5, $6 }' "$WORK/describe.txt")"
# the log end is past every task: markers (and the aborted batch) count
awk -v t="$TOPIC" -v n=$NDS '$2 == t { end += $5 } END { exit !(end > n) }' \
  "$WORK/describe.txt" || fail "no marker in the log: the test proves nothing"

"$DROVER_BIN" lag --brokers "$B" --topic "$TOPIC" --group "$GROUP" --json \
  >"$WORK/lag.json" 2>"$WORK/lag.err" || fail "drover lag: $(cat "$WORK/lag.err")"
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["total_lag"] == 0, d
assert all(r["lag"] == 0 and r["committed"] == r["log_end"]
           for r in d["partitions"]), d
' "$WORK/lag.json" || fail "drover lag: $(cat "$WORK/lag.json")"

metric() { # metric NAME-WITH-LABELS: its value, or empty
  curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
for part in 0 1; do
  LAG="drover_consumer_lag{topic=\"$TOPIC\",partition=\"$part\"}"
  for ((i = 0; i < 50; i++)); do
    [ "$(metric "$LAG")" = 0 ] && break
    sleep 0.2
  done
  [ "$(metric "$LAG")" = 0 ] || fail "$LAG is '$(metric "$LAG")', want 0"
done

kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $?"
PIDS=()
check_exactly_once $NDS
echo "ok: committed offsets at the log end past transaction markers"
