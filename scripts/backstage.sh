#!/usr/bin/env bash
# drover - scripts/backstage.sh: a real Backstage catalog backend on
# 127.0.0.1, serving tests/fixtures/catalog/*.yaml (integration tests).
#
#   scripts/backstage.sh start    install (cached), start; prints the URL
#   scripts/backstage.sh stop     stop what start started
#   scripts/backstage.sh status   running or not, and the URL
#
# Needs Node 20 + npm and the PostgreSQL of scripts/pg.sh (same
# DROVER_STACK_DIR): the backend gets its own database there.  npm ci runs
# into $DROVER_CACHE_DIR/backstage (git-ignored), again only when
# package-lock.json changed.  Writes $DROVER_STACK_DIR/backstage.url and
# backstage.token (a random static token, mode 600).
# BACKSTAGE_CATALOG_DIR overrides the directory of entities served,
# BACKSTAGE_DB_NAME the database (default drover_backstage).
# With DROVER_ADMIN_URL (a worker's admin server) and DROVER_ADMIN_TOKEN
# set, the backend also runs drover's backend plugin
# (backstage/plugins/drover-backend, bundled by scripts/backstage-plugins.sh):
# POST /api/drover/tasks and GET /api/drover/migrations next to that worker.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SRC=$DROVER_ROOT/tests/integration/backstage
INST=$DROVER_CACHE_DIR/backstage
BDIR=$DROVER_STACK_DIR/backstage
URLFILE=$DROVER_STACK_DIR/backstage.url
TOKFILE=$DROVER_STACK_DIR/backstage.token

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

install() {
  local want have
  command -v node >/dev/null || die "node is not installed: run scripts/deps.sh"
  want=$(sha256sum "$SRC/package-lock.json" | cut -d' ' -f1)
  have=$(cat "$INST/.lock-sha256" 2>/dev/null || true)
  if [ "$want" != "$have" ] || [ ! -d "$INST/node_modules" ]; then
    note "installing the backstage backend (npm ci, ~1 min)"
    mkdir -p "$INST"
    cp "$SRC/package.json" "$SRC/package-lock.json" "$INST/"
    (cd "$INST" && npm ci --ignore-scripts --no-audit --no-fund \
      >"$INST/npm.log" 2>&1) || die "npm ci failed: $(tail -n 5 "$INST/npm.log")"
    echo "$want" >"$INST/.lock-sha256"
  fi
  cp "$SRC/index.js" "$SRC/app-config.yaml" "$SRC/app-config.drover.yaml" "$INST/"
  rm -f "$INST/drover-backend.js"
  if [ -n "${DROVER_ADMIN_URL:-}" ]; then
    "$DROVER_ROOT/scripts/backstage-plugins.sh" bundle "$INST/drover-backend.js" ||
      die "could not bundle the drover backend plugin"
  fi
}

# Split the PostgreSQL URL of scripts/pg.sh into the BACKSTAGE_DB_* vars
# and create the backend's database (idempotent).
database() {
  local url
  url=${BACKSTAGE_DATABASE_URL:-$(cat "$DROVER_STACK_DIR/pg.url" 2>/dev/null || true)}
  [ -n "$url" ] || die "no postgresql: run scripts/pg.sh start first (same DROVER_STACK_DIR)"
  eval "$(/usr/bin/python3 - "$url" <<'PY'
import shlex, sys
from urllib.parse import urlsplit, unquote
u = urlsplit(sys.argv[1])
for k, v in (("HOST", u.hostname or "127.0.0.1"), ("PORT", u.port or 5432),
             ("USER", unquote(u.username or "")),
             ("PASSWORD", unquote(u.password or ""))):
    print("export BACKSTAGE_DB_%s=%s" % (k, shlex.quote(str(v))))
PY
)"
  export BACKSTAGE_DB_NAME=${BACKSTAGE_DB_NAME:-drover_backstage}
  PGPASSWORD=$BACKSTAGE_DB_PASSWORD psql -qAt -h "$BACKSTAGE_DB_HOST" \
    -p "$BACKSTAGE_DB_PORT" -U "$BACKSTAGE_DB_USER" -d postgres -c \
    "SELECT 1 FROM pg_database WHERE datname = '$BACKSTAGE_DB_NAME'" |
    grep -q 1 ||
    PGPASSWORD=$BACKSTAGE_DB_PASSWORD psql -qAt -h "$BACKSTAGE_DB_HOST" \
      -p "$BACKSTAGE_DB_PORT" -U "$BACKSTAGE_DB_USER" -d postgres \
      -c "CREATE DATABASE $BACKSTAGE_DB_NAME" >/dev/null ||
    die "could not create database $BACKSTAGE_DB_NAME"
}

cmd_start() {
  if pid_alive "$BDIR/pid" && [ -f "$URLFILE" ]; then
    note "already running"
    cat "$URLFILE"
    return 0
  fi
  install
  database
  mkdir -p "$BDIR"
  BACKSTAGE_PORT=$(free_port)
  BACKSTAGE_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  BACKSTAGE_CATALOG_DIR=${BACKSTAGE_CATALOG_DIR:-$DROVER_ROOT/tests/fixtures/catalog}
  export BACKSTAGE_PORT BACKSTAGE_TOKEN BACKSTAGE_CATALOG_DIR
  local extra=()
  if [ -n "${DROVER_ADMIN_URL:-}" ]; then
    export DROVER_ADMIN_URL DROVER_ADMIN_TOKEN=${DROVER_ADMIN_TOKEN:?DROVER_ADMIN_TOKEN must be set with DROVER_ADMIN_URL}
    export DROVER_BACKSTAGE_PLUGIN=$INST/drover-backend.js
    extra=(--config app-config.drover.yaml)
  fi
  (
    cd "$INST"
    exec setsid node index.js --config app-config.yaml "${extra[@]}" \
      >"$BDIR/backend.log" 2>&1
  ) &
  pid_write "$BDIR/pid" $!
  if ! wait_port "$BACKSTAGE_PORT" 180; then
    stop_pid "$BDIR/pid" 5
    die "backstage did not start: $(tail -n 5 "$BDIR/backend.log")"
  fi
  (umask 077 && echo "$BACKSTAGE_TOKEN" >"$TOKFILE")
  echo "http://127.0.0.1:$BACKSTAGE_PORT" >"$URLFILE"
  cat "$URLFILE"
}

cmd_stop() {
  stop_pid "$BDIR/pid" 20
  rm -f "$URLFILE" "$TOKFILE"
}

cmd_status() {
  if pid_alive "$BDIR/pid"; then
    echo "backstage running: $(cat "$URLFILE" 2>/dev/null)"
  else
    echo "backstage not running"
    return 1
  fi
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) usage; exit 2 ;;
esac
