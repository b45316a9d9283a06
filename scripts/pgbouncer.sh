#!/usr/bin/env bash
# drover - scripts/pgbouncer.sh: a throwaway PgBouncer on 127.0.0.1 in
# transaction pooling mode, in front of a PostgreSQL (scripts/pg.sh's).
#
#   scripts/pgbouncer.sh start [--upstream URL] [--pool-size N]
#                              [--max-client-conn N]
#                              start; prints the client URL
#   scripts/pgbouncer.sh stop     stop it and remove its files
#   scripts/pgbouncer.sh status   running or not, and the URL
#
# The upstream is a postgresql:// URL with role and password, by default
# the one in $DROVER_STACK_DIR/pg.url.  Clients log in with that same role,
# password (scram-sha-256) and database; PgBouncer logs in upstream with
# them too.  At most --pool-size (default 10) server connections to the
# database, shared by up to --max-client-conn (default 100) clients: keep
# the pool under the upstream's max_connections.  Its config, userlist and
# log live in /tmp/drover-pgbouncer.* (PgBouncer refuses to run as root:
# as root it runs as the postgres user, like scripts/pg.sh's cluster),
# named in $DROVER_STACK_DIR/pgbouncer.dir; the client URL is written to
# $DROVER_STACK_DIR/pgbouncer.url.  The packaged pgbouncer service is not
# used.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PGBDIR=$(cat "$DROVER_STACK_DIR/pgbouncer.dir" 2>/dev/null || true)
URLFILE=$DROVER_STACK_DIR/pgbouncer.url
PIDFILE=$DROVER_STACK_DIR/pgbouncer.pid

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

# upstream_parts URL: host, port, role, password, database and the
# percent-encoded "role:password" of a postgresql:// URL, one a line.
upstream_parts() {
  /usr/bin/python3 - "$1" <<'PY'
import sys
from urllib.parse import quote, unquote, urlsplit
u = urlsplit(sys.argv[1])
if u.scheme not in ("postgresql", "postgres") or not u.hostname:
    sys.exit("not a postgresql:// URL with a host")
if not u.username or not u.password:
    sys.exit("the URL names no role and password")
role, pw = unquote(u.username), unquote(u.password)
db = unquote(u.path.lstrip("/")) or role
print(u.hostname, u.port or 5432, role, pw, db,
      quote(role, safe="") + ":" + quote(pw, safe=""), sep="\n")
PY
}

# try_query URL: SELECT 1 through URL, or print psql's first error line
# and fail.
try_query() {
  local out
  out=$(PGCONNECT_TIMEOUT=10 psql "$1" -X -q -t -A -c "SELECT 1" 2>&1 >/dev/null) && return 0
  out=${out%%$'\n'*}
  echo "${out#psql: error: }"
  return 1
}

cmd_start() {
  local upstream=$DROVER_STACK_DIR/pg.url url_given="" pool=10 maxc=100
  local bin parts host port role pw db userinfo lport url err
  while [ $# -gt 0 ]; do
    case $1 in
    --upstream) url_given=${2:-}; shift 2 || die "--upstream needs a URL" ;;
    --pool-size) pool=${2:-}; shift 2 || die "--pool-size needs a value" ;;
    --max-client-conn) maxc=${2:-}; shift 2 || die "--max-client-conn needs a value" ;;
    *) die "unknown option \"$1\"" ;;
    esac
  done
  [[ $pool =~ ^[1-9][0-9]*$ ]] || die "--pool-size must be a positive number, not \"$pool\""
  [[ $maxc =~ ^[1-9][0-9]*$ ]] || die "--max-client-conn must be a positive number, not \"$maxc\""
  bin=$(command -v pgbouncer || command -v /usr/sbin/pgbouncer) ||
    die "pgbouncer is not installed: run scripts/deps.sh"
  if pid_alive "$PIDFILE" && [ -f "$URLFILE" ]; then
    note "already running"
    cat "$URLFILE"
    return 0
  fi
  if [ -z "$url_given" ]; then
    [ -f "$upstream" ] ||
      die "no upstream: $upstream is missing (scripts/pg.sh start, or --upstream URL)"
    url_given=$(cat "$upstream")
  fi
  parts=$(upstream_parts "$url_given" 2>&1) ||
    die "bad upstream URL: ${parts##*$'\n'}"
  { IFS= read -r host; IFS= read -r port; IFS= read -r role
    IFS= read -r pw; IFS= read -r db; IFS= read -r userinfo; } <<<"$parts"
  # names go into pgbouncer.ini unquoted
  [[ $db =~ ^[A-Za-z0-9_]+$ ]] || die "upstream database \"$db\" is not a plain name"
  [[ $role =~ ^[A-Za-z0-9_]+$ ]] || die "upstream role \"$role\" is not a plain name"
  err=$(try_query "$url_given") ||
    die "upstream $host:$port: $err"

  cmd_stop >/dev/null 2>&1
  PGBDIR=$(mktemp -d /tmp/drover-pgbouncer.XXXXXX)
  chmod 755 "$PGBDIR"
  echo "$PGBDIR" >"$DROVER_STACK_DIR/pgbouncer.dir"
  lport=$(free_port)
  cat >"$PGBDIR/pgbouncer.ini" <<INI
[databases]
$db = host=$host port=$port dbname=$db

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $lport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGBDIR/userlist.txt
admin_users = $role
pool_mode = transaction
default_pool_size = $pool
max_db_connections = $pool
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $maxc
server_reset_query =
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
INI
  (
    umask 077
    printf '"%s" "%s"\n' "$role" "${pw//\"/\"\"}" >"$PGBDIR/userlist.txt"
  )
  local runas=()
  if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$PGBDIR"
    runas=(-u postgres)
  fi
  (exec setsid "$bin" "${runas[@]}" "$PGBDIR/pgbouncer.ini" \
    >>"$PGBDIR/pgbouncer.log" 2>&1) &
  pid_write "$PIDFILE" $!
  if ! wait_port "$lport" 15; then
    err=$(tail -n 3 "$PGBDIR/pgbouncer.log")
    cmd_stop >/dev/null 2>&1
    die "pgbouncer did not start: $err"
  fi
  url="postgresql://$userinfo@127.0.0.1:$lport/$db"
  if ! err=$(try_query "$url"); then
    cmd_stop >/dev/null 2>&1
    die "pgbouncer started, but a query through it failed: $err"
  fi
  echo "$url" >"$URLFILE"
  chmod 600 "$URLFILE"
  cat "$URLFILE"
}

cmd_stop() {
  stop_pid "$PIDFILE" 20
  [ -n "$PGBDIR" ] && rm -rf "$PGBDIR"
  rm -f "$URLFILE" "$DROVER_STACK_DIR/pgbouncer.dir"
  note "stopped"
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) cmd_stop ;;
status)
  if pid_alive "$PIDFILE" && [ -f "$URLFILE" ]; then
    echo "running: $(url_mask <"$URLFILE")"
  else
    echo stopped
    exit 1
  fi ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
