#!/usr/bin/env bash
# drover - tests/integration/test_demo_stays_up.sh
#
# scripts/demo.sh as a newcomer runs it, in a terminal (a pseudo-terminal
# here): once the table is final it stays up, prints the status page URL
# and the commands to try; the page, /metrics and the three workers answer;
# Ctrl-C (^C written to the terminal) stops the workers, Kafka and
# PostgreSQL it started, and it exits 0.  And CI=true with stdin not a
# terminal still finishes by itself with status 0, stopping everything.
#
# The demo starts its own throwaway stack under a private DROVER_STACK_DIR
# (it drops and loads tables and topics of its own, so never the shared
# stack's): two stack starts, a few minutes on a busy machine.
set -euo pipefail
: "${DROVER_BIN:?}" "${DROVER_SOURCE_DIR:?}"
if [ -z "${DROVER_TEST_BROKERS:-}" ] || [ -z "${DROVER_TEST_DATABASE_URL:-}" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && { echo "no stack" >&2; exit 1; }
  echo "stack not set: skipping"; exit 77
fi
SRC=$DROVER_SOURCE_DIR
work=$(mktemp -d /tmp/drover-demo-test.XXXXXX)
export DROVER_STACK_DIR=$work/stack
export DROVER_CACHE_DIR=${DROVER_CACHE_DIR:-$SRC/.cache}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DEMO_HTTP=127.0.0.1:$port DEMO_ROWS=2000 DEMO_SKIP_DEPS=1
export DEMO_DROVER=$DROVER_BIN
unset CI
driver=
log() { echo "# $*" >&2; }

# Whatever happens, nothing of the demo's outlives the test: its workers
# (by the pids it printed) and the stack in its private stack dir.
cleanup() {
  local p
  set +e
  [ -n "$driver" ] && kill -KILL "$driver" 2>/dev/null
  for p in $(grep -ho 'pids [0-9 ]*' "$work"/*.out 2>/dev/null | tr -dc '0-9 \n'); do
    kill -KILL "$p" 2>/dev/null || true
  done
  "$SRC/scripts/kafka.sh" stop >/dev/null 2>&1 || true
  "$SRC/scripts/pg.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.out "$DROVER_STACK_DIR"/demo/worker-*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }
  done
  exit 1
}
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" || true; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# in_tty.py OUT STOPFILE SCRIPT: runs the demo on a pseudo-terminal, copies what it prints to
# OUT; once the file "$work/stop" exists, types ^C; exits with the demo's
# status.
cat >"$work/in_tty.py" <<'PY'
import os, pty, select, signal, sys
out, stopfile = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    # started with & from a script, we inherit SIGINT ignored, and a shell
    # cannot trap what it was started ignoring: a terminal gives SIG_DFL
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execvp("bash", ["bash", sys.argv[3]])
sent = False
with open(out, "ab", buffering=0) as f:
    while True:
        if not sent and os.path.exists(stopfile):
            os.write(fd, b"\x03")
            sent = True
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                break
            f.write(data)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st) & 0xff)
PY

# wait_for WHAT SECONDS CMD...: until CMD succeeds, or fail.
wait_for() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  fail "$what: not within ${secs}s"
}

# --- 1. In a terminal: stays up, answers, stops on Ctrl-C --------------
T0=$(date +%s)
log "demo in a pseudo-terminal (stack in $DROVER_STACK_DIR)"
/usr/bin/python3 "$work/in_tty.py" "$work/tty.out" "$work/stop" \
  "$SRC/scripts/demo.sh" &
driver=$!
up() {
  kill -0 "$driver" 2>/dev/null ||
    fail "the demo exited before it stayed up"
  grep -q 'Press Ctrl-C to stop' "$work/tty.out" 2>/dev/null
}
wait_for "the demo staying up" 600 up
log "up after $(( $(date +%s) - T0 ))s"
grep -q "status page   http://$DEMO_HTTP/" "$work/tty.out" || fail "no status page URL"
grep -q 'status --watch' "$work/tty.out" || fail "no 'drover status --watch' hint"
grep -q 'dlq list --brokers 127.0.0.1:' "$work/tty.out" || fail "no 'drover dlq list' hint"
grep -q "curl -s http://$DEMO_HTTP/metrics" "$work/tty.out" || fail "no /metrics hint"
grep -q 'drover-pw-' "$work/tty.out" && fail "the database password was printed"
read -r -a pids <<<"$(grep -o 'pids [0-9 ]*' "$work/tty.out" | tail -n1 | cut -c6-)"
[ ${#pids[@]} = 3 ] || fail "worker pids not printed"
# a few seconds later everything still runs: the demo did not stop
sleep 3
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "worker $p is gone"; done
kill -0 "$driver" 2>/dev/null || fail "the demo exited"
[ "$(http_code "http://$DEMO_HTTP/")" = 200 ] || fail "status page not 200"
[ "$(http_code "http://$DEMO_HTTP/metrics")" = 200 ] || fail "/metrics not 200"
curl -s "http://$DEMO_HTTP/metrics" | grep -q '^drover_tasks_total' ||
  fail "/metrics has no drover_tasks_total"
for u in $(grep -o 'demo-[23]: http://[0-9.:]*/metrics' "$work/tty.out" | cut -d' ' -f2); do
  [ "$(http_code "$u")" = 200 ] || fail "$u not 200"
done
kport=$(cut -d: -f2 "$DROVER_STACK_DIR/kafka.bootstrap")
kpid=$(cut -d' ' -f1 "$DROVER_STACK_DIR/kafka/node1/pid")
pgdir=$(cat "$DROVER_STACK_DIR/pg.dir")
pgport=$(cat "$pgdir/port")
pgpid=$(head -n1 "$pgdir/data/postmaster.pid")
for p in "$kport" "$pgport"; do listening "$p" || fail "port $p not listening"; done

log "Ctrl-C"
touch "$work/stop"
for ((i = 0; i < 240; i++)); do kill -0 "$driver" 2>/dev/null || break; sleep 0.5; done
kill -0 "$driver" 2>/dev/null && fail "the demo still runs 120s after Ctrl-C"
rc=0
wait "$driver" || rc=$?
driver=
[ $rc = 0 ] || fail "the demo exited $rc after Ctrl-C"
grep -q 'stopping worker demo-1' "$work/tty.out" || fail "did not say it stops the workers"
grep -q 'stopping kafka' "$work/tty.out" || fail "did not say it stops kafka"
grep -q 'stopping postgresql' "$work/tty.out" || fail "did not say it stops postgresql"
gone() {
  local p
  for p in "${pids[@]}" "$kpid" "$pgpid"; do kill -0 "$p" 2>/dev/null && return 1; done
  for p in "$port" "$kport" "$pgport"; do listening "$p" && return 1; done
  return 0
}
wait_for "workers, kafka, postgresql and their ports gone" 60 gone
[ -d "$pgdir" ] && fail "postgresql's directory $pgdir is left"
log "stopped; part 1 took $(( $(date +%s) - T0 ))s"

# --- 2. CI=true, stdin not a terminal: finishes by itself ---------------
T1=$(date +%s)
log "CI=true scripts/demo.sh </dev/null"
rc=0
CI=true timeout 600 "$SRC/scripts/demo.sh" </dev/null >"$work/ci.out" 2>&1 || rc=$?
[ $rc = 0 ] || fail "CI=true demo exited $rc"
grep -q 'Press Ctrl-C' "$work/ci.out" && fail "CI=true demo offered to stay up"
grep -q 'stopping kafka' "$work/ci.out" || fail "CI=true demo did not stop kafka"
[ -f "$DROVER_STACK_DIR/kafka.bootstrap" ] && fail "kafka.bootstrap left behind"
[ -f "$DROVER_STACK_DIR/pg.url" ] && fail "pg.url left behind"
log "part 2 took $(( $(date +%s) - T1 ))s"
echo "ok: demo stays up in a terminal, stops on Ctrl-C; CI=true exits 0"
