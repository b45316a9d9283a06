#!/usr/bin/env bash
# drover - static group membership (group.instance.id = DROVER_INSTANCE).
#
# Two workers with explicit instances and a session timeout (120 s) far
# longer than the test waits.  Worker b is killed (-9) and restarted at
# once with its instance: it must take its own partitions back and finish
# the tasks submitted after the restart while the killed member's session
# is still alive, and worker a must never receive b's partitions.  Before
# static membership the restarted b joined as a new member and its old
# partitions waited for the dead member's session to expire (no task on
# them finished within the wait).
#
# Then a zombie: b, frozen (SIGSTOP), is replaced by a third process with
# the same instance; when b resumes, the coordinator fences it
# (FENCED_INSTANCE_ID, fatal) and it exits 70 instead of spinning.  Every
# task still has exactly one committed status event and ran its step once.
. "$(dirname "$0")/worker_lib.sh"

NDS=12
SESSION=(-X session.timeout.ms=120000 -X heartbeat.interval.ms=1000)
make_plans $NDS
$CHECK create "$B" "$TOPIC" 12

start_b() { # start_b LOG: worker b (instance $ID-b), its log in LOG
  DROVER_INSTANCE="$ID-b" DROVER_HTTP_LISTEN="" DATABASE_URL="$DB" \
    "$DROVER_BIN" worker --brokers "$B" --topic "$TOPIC" --group "$GROUP" \
    --catalog "$CAT" --allow-sql --set commit_interval_ms=50 \
    "${SESSION[@]}" 2>>"$WORK/$1" &
  PIDS+=($!)
  LAST_PID=$!
}

export DROVER_STATIC_MEMBERSHIP=auto # opt-in: on for an explicit instance
start_worker "$ID-a" "${SESSION[@]}"
pid_a=$LAST_PID
wait_log "$WORK/$ID-a.log" '"msg":"assigned 12 partition' 1 60
start_b b1.log
pid_b=$LAST_PID
wait_log "$WORK/b1.log" '"msg":"assigned [1-9]' 1 60
submit_tasks $NDS 1
wait_final $NDS 90
a_assigned=$(grep -c '"msg":"assigned [1-9]' "$WORK/$ID-a.log")
b_parts=$(grep -o '"msg":"assigned [0-9]* partition(s), [0-9]* in total' \
  "$WORK/b1.log" | tail -1 | sed 's/.*, \([0-9]*\) in total/\1/')
log "worker b holds $b_parts partition(s)"

# kill -9 and restart with the same instance at once
kill -9 "$pid_b"
wait "$pid_b" 2>/dev/null || true
start_b b2.log
pid_b=$LAST_PID
wait_log "$WORK/b2.log" '"msg":"assigned [1-9]' 1 60
submit_tasks $NDS 1
# well inside the dead member's 120 s session
wait_final $((2 * NDS)) 60
[ "$(grep -c '"msg":"assigned [1-9]' "$WORK/$ID-a.log")" = "$a_assigned" ] ||
  fail "worker a received partitions of the killed worker"
grep -q "\"msg\":\"assigned [0-9]* partition(s), $b_parts in total" \
  "$WORK/b2.log" || fail "restarted worker b did not get its $b_parts partition(s) back"
grep -q 'as a static member' "$WORK/b2.log" || fail "b is not a static member"
log "restarted worker b took its $b_parts partition(s) back"

# a zombie with the same instance is fenced and exits 70
kill -STOP "$pid_b"
zombie=$pid_b
start_b b3.log
pid_b=$LAST_PID
wait_log "$WORK/b3.log" '"msg":"assigned [1-9]' 1 60
kill -CONT "$zombie"
running() { # running PID: alive and not exited-but-unreaped
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $st != Z* ]]
}
for ((i = 0; i < 300; i++)); do
  running "$zombie" || break
  sleep 0.2
done
running "$zombie" && fail "the fenced worker is still running"
rc=0
wait "$zombie" || rc=$?
[ "$rc" = 70 ] || fail "the fenced worker exited $rc, not 70"
grep -q 'fenced by other consumer with same group.instance.id' "$WORK/b2.log" || fail "no fencing in the zombie's log"
submit_tasks $NDS 1
wait_final $((3 * NDS)) 60
for p in "$pid_a" "$pid_b"; do
  kill -TERM "$p"
  wait "$p" || fail "worker exited $? on SIGTERM"
done
PIDS=()
# the first run of the tasks is 'done', the others are new tasks of the
# same plans: skipped
check_exactly_once $NDS 0
echo "ok"
