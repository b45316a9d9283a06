#!/usr/bin/env bash
# drover - behind PgBouncer in transaction pooling mode (issue 16 item 7):
# 3 workers x 8 executors share a pool of 10 server connections to a
# PostgreSQL with max_connections = 20, and run 300 tasks of plans without
# batched steps (50 datasets, each moved from version 1 to 7 by six plans,
# one task each, over 12 partitions).  A pooled server connection serves
# another client after every transaction, so a task that holds anything
# across transactions (a session advisory lock) leaks it into other
# clients' transactions: deadlocks, dead letters, tasks that never finish.
# Then 4 of the datasets get a batched plan (a backfill in 20 batches),
# which holds a session for its run: on its own direct connection
# (DROVER_SESSION_DATABASE_URL), never through the pooler.
# Checked: every task done within 240 s with exactly one committed status
# event, every step's effect exactly once, every dataset at version 7, no
# dead letter, no deadlock in the worker logs, no advisory lock left held
# on any server connection, and the offsets at the log end.  The cluster
# is new: the workers' own schema migration (drv_db_migrate) goes through
# PgBouncer too.
. "$(dirname "$0")/worker_lib.sh"

if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && fail "pgbouncer is not installed (scripts/deps.sh)"
  echo "pgbouncer is not installed: skipping" >&2
  exit 77
fi

SCRIPTS=$HERE/../../scripts
NDS=50 NV=6 # datasets, plans (versions 2..7) per dataset
NBATCHED=4  # datasets with a batched plan to version NV + 2
NTASKS=$((NDS * NV + NBATCHED))

# our own cluster and pooler, their state in $STACK
STACK=$WORK/stack
stack() { DROVER_STACK_DIR=$STACK "$SCRIPTS/$1" "${@:2}"; }

# report: what went wrong, in numbers (when the test fails)
report() {
  log "task_runs: $(sql "SELECT string_agg(status || '=' || n, ' ') FROM
    (SELECT status, count(*) n FROM drover.task_runs GROUP BY 1 ORDER BY 1) x")"
  log "status events: $($CHECK events "$B" "$TOPIC.status" |
    grep -o '"status":"[a-z_]*"' | sort | uniq -c | tr -s ' \n' ' ')"
  log "dead letters: $($CHECK dlq "$B" "$TOPIC.dlq" | wc -l)"
  log "deadlock errors in worker logs: $(cat "$WORK"/*.log | grep -c -E 'deadlock detected|40P01')"
  log "advisory locks held: $(sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")"
  log "\"you don't own a lock\" warnings: $(grep -c "you don't own a lock" "$(cat "$STACK/pg.dir")/server.log")"
}

teardown() {
  local rc=$?
  [ "$rc" = 0 ] || report || true
  stack pgbouncer.sh stop >/dev/null 2>&1 || true
  stack pg.sh stop >/dev/null 2>&1 || true
  cleanup
}
trap teardown EXIT
trap 'exit 143' TERM INT HUP # so that the EXIT trap runs

DB=$(stack pg.sh start --max-connections 20) || fail "could not start postgresql"
WORKER_DB=$(stack pgbouncer.sh start --pool-size 10 --max-client-conn 100) ||
  fail "could not start pgbouncer"

# plan to version v: a new column and a validation (create the table for
# v = 2), then one row (dataset, v) into the effects table
sql "CREATE TABLE $EFFECTS (dataset text NOT NULL, version int NOT NULL)"
for ((i = 0; i < NDS; i++)); do
  ds="${ID}_ds$i"
  PLAN_TO=2 write_plan "$ds" \
    "{op: create_table, table: ${ds}_t, columns: [{name: id, type: bigint, primary_key: true}]}" \
    "{op: sql, sql: \"INSERT INTO $EFFECTS VALUES ('$ds', 2)\"}"
  for ((v = 3; v <= NV + 1; v++)); do
    PLAN_TO=$v write_plan "$ds" \
      "{op: add_column, table: ${ds}_t, column: {name: c$v, type: bigint}}" \
      "{op: validate, not_null: [${ds}_t.id]}" \
      "{op: sql, sql: \"INSERT INTO $EFFECTS VALUES ('$ds', $v)\"}"
  done
done
VB=$((NV + 2))
for ((i = 0; i < NBATCHED; i++)); do
  ds="${ID}_ds$i"
  PLAN_TO=$VB write_plan "$ds" \
    "{op: sql, sql: \"INSERT INTO ${ds}_t (id) SELECT generate_series(1, 2000)\"}" \
    "{op: add_column, table: ${ds}_t, column: {name: cb, type: bigint}}" \
    "{op: backfill, table: ${ds}_t, set: {cb: \"id * 2\"}, batch_size: 100}" \
    "{op: sql, sql: \"INSERT INTO $EFFECTS VALUES ('$ds', $VB)\"}"
done
$CHECK create "$B" "$TOPIC" 12
export DROVER_SESSION_DATABASE_URL=$DB
for w in a b c; do start_worker "$ID-$w" --set concurrency=8; done
t0=$(date +%s)
# a dataset's tasks in version order: its plans only apply in that order
for ((v = 2; v <= NV + 1; v++)); do PLAN_TO=$v submit_tasks $NDS 1; done
PLAN_TO=$VB submit_tasks $NBATCHED 1
[ "$(wc -l <"$WORK/ids")" = $NTASKS ] || fail "submit printed $(wc -l <"$WORK/ids") ids"
wait_final $NTASKS 240
wait_events $NTASKS 60
log "$NTASKS tasks final in $(($(date +%s) - t0))s with 3 workers x 8 executors"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
for p in "${PIDS[@]}"; do wait "$p" || fail "worker exited $? on SIGTERM"; done
PIDS=()

check_events
n=$(grep -c '"status":"done"' "$WORK/events" || true)
[ "$n" = $NTASKS ] || fail "$n of $NTASKS status events say done"
n=$($CHECK dlq "$B" "$TOPIC.dlq" | wc -l)
[ "$n" = 0 ] || fail "$n dead letter(s)"
n=$(sql "SELECT count(*) FROM drover.task_runs WHERE status = 'done'")
[ "$n" = $NTASKS ] || fail "$n of $NTASKS task_runs done"
bad=$(sql "SELECT count(*) FROM (SELECT 1 FROM $EFFECTS GROUP BY dataset, version
           HAVING count(*) <> 1) x")
[ "$bad" = 0 ] || fail "$bad step(s) ran more than once"
n=$(sql "SELECT count(*) FROM $EFFECTS WHERE version BETWEEN 2 AND $VB")
[ "$n" = $NTASKS ] || fail "effects of $n of $NTASKS tasks"
n=$(sql "SELECT count(*) FROM drover.datasets WHERE dataset LIKE '${ID}\_%'
         AND version = $((NV + 1))")
[ "$n" = $((NDS - NBATCHED)) ] || fail "$n of $((NDS - NBATCHED)) datasets at version $((NV + 1))"
n=$(sql "SELECT count(*) FROM drover.datasets WHERE dataset LIKE '${ID}\_%'
         AND version = $VB")
[ "$n" = $NBATCHED ] || fail "$n of $NBATCHED datasets at version $VB"
for ((i = 0; i < NBATCHED; i++)); do
  n=$(sql "SELECT count(*) FROM ${ID}_ds${i}_t WHERE cb IS DISTINCT FROM id * 2")
  [ "$n" = 0 ] || fail "$n row(s) of ${ID}_ds${i}_t not backfilled"
done
n=$(sql "SELECT count(*) FROM information_schema.columns
         WHERE table_name LIKE '${ID}\_ds%\_t' AND column_name ~ '^c[0-9]+$'")
[ "$n" = $((NDS * (NV - 1))) ] || fail "$n of $((NDS * (NV - 1))) added columns"
n=$(cat "$WORK"/*.log | grep -c -E 'deadlock detected|40P01' || true)
[ "$n" = 0 ] || fail "$n deadlock error(s) in the worker logs"
# PgBouncer still holds its server connections: a lock taken outside a
# transaction would still be there
n=$(sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
[ "$n" = 0 ] || fail "$n advisory lock(s) still held on pooled server connections"
check_offsets
log "exactly once behind pgbouncer: $NTASKS tasks, $NDS datasets"
echo "ok"
