#!/usr/bin/env bash
# drover - crash points: for each, a worker _exit(137)s there, a new one
# with the same instance name takes over, and no step ran twice, no task
# was lost or reported twice.
. "$(dirname "$0")/worker_lib.sh"
require_test_hooks

NDS=6 PER=3
make_plans $NDS
$CHECK create "$B" "$TOPIC" 4
submit_tasks $NDS $PER
n=$((NDS * PER))
done_before=0
# the 3rd time for the per-task points; the 1st Kafka commit for the
# per-commit ones: a worker batches every outcome it has into one commit,
# so a round's few tasks may need only one or two commits
for at in between_steps:3 after_pg_commit:3 in_kafka_commit:1 \
  after_kafka_commit:1; do
  point=${at%%:*}
  DROVER_CRASH_AT="$at" start_worker "$ID-crash"
  pid=$LAST_PID
  rc=0
  for ((i = 0; i < 90; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  kill -0 "$pid" 2>/dev/null && fail "worker did not reach $point in 90s"
  wait "$pid" || rc=$?
  PIDS=()
  [ "$rc" = 137 ] || fail "worker with DROVER_CRASH_AT=$point exited $rc, not 137"
  grep -q "crash point $point reached" "$WORK/$ID-crash.log" ||
    fail "no crash at $point"
  log "crashed at $point"
  # more tasks for the next round, so every crash point has work to hit
  submit_tasks $NDS 1
done
n=$(wc -l <"$WORK/ids")
start_worker "$ID-crash"
# the committed status events are the authority; a crash right after a
# Kafka commit leaves a row 'running' with its pending status, which the
# next assignment of its partition settles (worker_reconcile.c)
wait_events "$n" 120
nonfinal=""
for ((i = 0; i < 30; i++)); do
  nonfinal=$(sql "SELECT task_id || ' ' || status || ' ' || coalesce(pending_status, '-')
       FROM drover.task_runs WHERE dataset LIKE '${ID}\_%'
       AND status NOT IN ('done','skipped','dry_run','dead')")
  [ -z "$nonfinal" ] && break
  sleep 1
done
[ -z "$nonfinal" ] || fail "task_runs rows not final: $nonfinal"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
# a redelivered task that finds its own work in the ledger reports done
check_exactly_once $NDS 1
echo "ok"
