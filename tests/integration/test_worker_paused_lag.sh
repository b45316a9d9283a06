#!/usr/bin/env bash
# drover - drover_consumer_lag keeps moving for a paused partition:
# librdkafka stops refreshing the end offsets of paused partitions, so the
# worker queries their watermarks itself.  A slow task holds the only
# partition, enough tasks arrive behind it for the worker to pause it, and
# more records produced while it is paused must show in /metrics.
. "$(dirname "$0")/worker_lib.sh"

ds="${ID}_ds0"
write_plan "$ds" \
  "{op: sql, sql: \"SELECT pg_sleep(25)\"}"
$CHECK create "$B" "$TOPIC" 1
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sub() {
  "$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
    --entity "component:default/${ds//_/-}-v2" --dataset "$ds" --count "$1" \
    >>"$WORK/ids" 2>/dev/null || fail "submit failed"
}
metric() { # metric NAME-WITH-LABELS: its value, or empty
  curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
LAG="drover_consumer_lag{topic=\"$TOPIC\",partition=\"0\"}"

sub 1 # the slow task
start_worker "$ID-a" --set "http.listen=127.0.0.1:$PORT" \
  --set statement_timeout_ms=60000 -X statistics.interval.ms=1000
for ((i = 0; i < 200; i++)); do
  [ "$(sql "SELECT count(*) FROM drover.task_runs WHERE dataset = '$ds'
            AND status = 'running'")" = 1 ] && break
  sleep 0.1
done
[ "$i" -lt 200 ] || fail "the slow task never started"
# enough behind it for the worker to pause the partition (its backlog
# bound), then wait until it is paused
sub 300
for ((i = 0; i < 100; i++)); do
  [ "$(metric drover_paused_partitions)" = 1 ] && break
  sleep 0.1
done
[ "$i" -lt 100 ] || fail "partition never paused (paused=$(metric drover_paused_partitions))"
for ((i = 0; i < 50; i++)); do
  l1=$(metric "$LAG")
  [ -n "$l1" ] && [ "$l1" -ge 301 ] && break
  sleep 0.2
done
[ "${l1:-0}" -ge 301 ] || fail "lag before: '$l1', want >= 301"
log "paused with lag $l1"
# produced while paused: the lag must follow
sub 200
t0=$(date +%s%N)
for ((i = 0; i < 60; i++)); do
  l2=$(metric "$LAG")
  [ -n "$l2" ] && [ "$l2" -ge 501 ] && break
  sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$(metric drover_paused_partitions)" = 1 ] || fail "partition resumed too early: the test proves nothing"
[ "${l2:-0}" -ge 501 ] || fail "lag of the paused partition stuck at '$l2' (want >= 501) after ${ms} ms"
log "lag moved $l1 -> $l2 within ${ms} ms while paused"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
echo "ok"
