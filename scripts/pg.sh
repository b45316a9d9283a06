#!/usr/bin/env bash
# drover - scripts/pg.sh: a throwaway PostgreSQL 15 cluster on 127.0.0.1.
#
#   scripts/pg.sh start [--max-connections N]
#                           initdb + start (max_connections 200 by default);
#                           prints the connection URL
#   scripts/pg.sh stop      stop it and remove its data
#   scripts/pg.sh status    running or not, and the URL
#   scripts/pg.sh restart   stop and start the same cluster (keeps data)
#   scripts/pg.sh kill      kill -9 the postmaster (fault tests)
#
# The cluster lives in /tmp/drover-pg.* (owned by the postgres user, since
# initdb refuses to run as root), named in $DROVER_STACK_DIR/pg.dir.  Role and database "drover" with a
# password; the URL is written to $DROVER_STACK_DIR/pg.url.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PGBIN=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null) ||
  die "PostgreSQL 15 is not installed: run scripts/deps.sh"
# The cluster's directory is under /tmp, not the stack dir: the postgres
# user must be able to reach it, and a clone under /root would not be.
PGDIR=$(cat "$DROVER_STACK_DIR/pg.dir" 2>/dev/null || true)
URLFILE=$DROVER_STACK_DIR/pg.url
PASSWORD=${DROVER_PG_PASSWORD:-drover-pw-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

# Run a PostgreSQL binary as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pgctl() { as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" "$@"; }

running() { [ -n "$PGDIR" ] && [ -d "$PGDIR/data" ] && pgctl status >/dev/null 2>&1; }

cmd_start() {
  local max_conn=200
  while [ $# -gt 0 ]; do
    case $1 in
    --max-connections) max_conn=${2:-}; shift 2 || die "--max-connections needs a value" ;;
    *) die "unknown option \"$1\"" ;;
    esac
  done
  [[ $max_conn =~ ^[1-9][0-9]*$ ]] || die "--max-connections must be a positive number, not \"$max_conn\""
  if running && [ -f "$URLFILE" ]; then
    note "already running"
    cat "$URLFILE"
    return 0
  fi
  [ -n "$PGDIR" ] && rm -rf "$PGDIR"
  PGDIR=$(mktemp -d /tmp/drover-pg.XXXXXX)
  chmod 755 "$PGDIR"
  echo "$PGDIR" >"$DROVER_STACK_DIR/pg.dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PGDIR"
  local port
  port=$(free_port)
  as_owner "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust \
    -E UTF8 --no-locale >"$PGDIR/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -n 3 "$PGDIR/initdb.log")"
  cat >>"$PGDIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PGDIR'
max_connections = $max_conn
shared_buffers = 256MB
fsync = on
synchronous_commit = on
max_wal_size = 2GB
log_min_messages = warning
CONF
  # Local socket: trust (for the scripts); TCP: passwords.
  cat >"$PGDIR/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
HBA
  echo "$port" >"$PGDIR/port"
  pgctl -l "$PGDIR/server.log" -w -t 60 start >/dev/null ||
    die "postgres did not start: $(tail -n 5 "$PGDIR/server.log")"
  as_owner "$PGBIN/psql" -qAt -h "$PGDIR" -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -c "CREATE ROLE drover LOGIN SUPERUSER PASSWORD '$PASSWORD'" \
    -c "CREATE DATABASE drover OWNER drover" >/dev/null ||
    die "could not create role/database"
  echo "postgresql://drover:$PASSWORD@127.0.0.1:$port/drover" >"$URLFILE"
  chmod 600 "$URLFILE"
  cat "$URLFILE"
}

cmd_stop() {
  if [ -n "$PGDIR" ] && [ -d "$PGDIR/data" ]; then
    pgctl -m fast -w -t 30 stop >/dev/null 2>&1 || pgctl -m immediate stop >/dev/null 2>&1 || true
  fi
  [ -n "$PGDIR" ] && rm -rf "$PGDIR"
  rm -f "$URLFILE" "$DROVER_STACK_DIR/pg.dir"
  note "stopped"
}

cmd_restart() {
  [ -d "$PGDIR/data" ] || die "no cluster: run start first"
  # A fast shutdown ends the sessions at once but still writes a shutdown
  # checkpoint, which on a loaded machine outlasted pg_ctl's 30 s wait (the
  # start then found the old postmaster and failed, leaving the database
  # down): wait longer, then fall back to an immediate shutdown (crash
  # recovery at start).
  pgctl -m fast -w -t 60 stop >/dev/null 2>&1 ||
    pgctl -m immediate -w -t 60 stop >/dev/null 2>&1 || true
  pgctl -l "$PGDIR/server.log" -w -t 60 start >/dev/null ||
    die "postgres did not restart: $(tail -n 5 "$PGDIR/server.log")"
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) cmd_stop ;;
status)
  if running; then echo "running: $(url_mask 2>/dev/null <"$URLFILE")"; else echo stopped; exit 1; fi ;;
restart) cmd_restart ;;
pause) pgctl -m fast -w -t 30 stop >/dev/null ;;  # stop, keep data
resume) pgctl -l "$PGDIR/server.log" -w -t 60 start >/dev/null ;;
kill) kill -KILL "$(head -n1 "$PGDIR/data/postmaster.pid")" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
