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

# url_mask: stdin to stdout, URLs' passwords shown as ***.
url_mask() { sed 's#://\([^:/@]*\):[^@]*@#://\1:***@#'; }

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

# Pid files hold "PID STARTTIME" (start time in clock ticks since boot,
# field 22 of /proc/PID/stat), so a stale file whose pid the kernel has
# since given to another process is never taken for ours, nor killed.
proc_start() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) } # after "pid (comm) ": field 3 on
  set -- $s
  echo "${20}"
}

# pid_write FILE PID
pid_write() {
  echo "$2 $(proc_start "$2")" >"$1"
}

# pid_read FILE: print the pid in FILE when that very process is alive.
# (A file with a bare pid, from before start times, is trusted as it was.)
pid_read() {
  local pid="" st=""
  [ -f "$1" ] || return 1
  read -r pid st <"$1" || [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ -z "$st" ] || [ "$(proc_start "$pid")" = "$st" ] || return 1
  echo "$pid"
}

# pid_alive FILE: the pid in FILE names our live process.
pid_alive() {
  pid_read "$1" >/dev/null
}

# stop_pid FILE [SECONDS]: TERM the process, KILL it after SECONDS, remove
# the file.  The process group goes too, so children do not linger.
stop_pid() {
  local f=$1 secs=${2:-20} pid i
  [ -f "$f" ] || return 0
  if pid=$(pid_read "$f"); then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 5; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}
