# drover - scripts/lib.sh: shared by the stack scripts.  Source it.
#
# DROVER_STACK_DIR (default <repo>/.stack) holds the state of the services
# the scripts start: pid files, logs, data dirs and the addresses other
# scripts and tests read (kafka.bootstrap, pg.url, ...).

DROVER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DROVER_STACK_DIR=${DROVER_STACK_DIR:-$DROVER_ROOT/.stack}
DROVER_CACHE_DIR=${DROVER_CACHE_DIR:-$DROVER_ROOT/.cache}
mkdir -p "$DROVER_STACK_DIR"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
note() { echo "$(basename "$0"): $*" >&2; }

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  /usr/bin/python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# wait_port PORT SECONDS: until something accepts on 127.0.0.1:PORT.
wait_port() {
  local port=$1 secs=$2 i
  for ((i = 0; i < secs * 5; i++)); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

# pid_alive FILE: the pid in FILE names a live process.
pid_alive() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pid FILE [SECONDS]: TERM the process, KILL it after SECONDS, remove
# the file.  The process group goes too, so children do not linger.
stop_pid() {
  local f=$1 secs=${2:-20} pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 5; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}
