#!/usr/bin/env bash
# drover - scripts/demo.sh: the main job, end to end, on local defaults.
#
#   scripts/demo.sh            deps, build, Kafka + PostgreSQL, sample data
#                              and plans, 3 workers, tasks, a live table;
#                              then stays up until Ctrl-C
#   scripts/demo.sh --once     the same, but stops everything as soon as
#                              the table is final (for scripts and CI)
#   scripts/demo.sh --help     this text
#
# Starts a throwaway Kafka (KRaft) and PostgreSQL under $DROVER_STACK_DIR
# (default .stack/), loads a `customer` table (100k rows with e-mails), an
# `inventory` and an `orders` table, uses the sample catalog in
# tests/fixtures/catalog, starts three workers (the first serves the status
# page on http://127.0.0.1:9464/, the others /metrics on free ports),
# submits one task per plan (plus a duplicate, a dry run and a broken plan
# that ends in the dead-letter topic) and watches `drover status` until
# everything is final.  Then, in a terminal, it keeps the workers, the page
# and the stack up, prints the URL and commands to try, and stops
# everything it started on Ctrl-C (or SIGTERM).  It stops at once instead
# with --once, when CI is set (CI=true), or when stdin is not a terminal,
# so a script or a pipe never waits forever.  A Kafka or PostgreSQL that
# was already running in $DROVER_STACK_DIR is used and left running.
# Re-running it works.
#
# Environment: DEMO_SKIP_DEPS=1 skips scripts/deps.sh; DEMO_DROVER names a
# built drover binary to use instead of building one; DEMO_HTTP sets the
# first worker's admin address (default 127.0.0.1:9464); DEMO_ROWS the
# customer rows (default 100000); DEMO_BUILD_DIR the build dir (build/).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ONCE=0
for a in "$@"; do
  case $a in
  --once) ONCE=1 ;;
  -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo.sh: unknown option \"$a\" (see --help)" >&2; exit 2 ;;
  esac
done
# Stay up only for someone at a terminal who can press Ctrl-C.
case ${CI:-} in "" | false | 0) ;; *) ONCE=1 ;; esac
[ -t 0 ] || ONCE=1

cd "$DROVER_ROOT"
HTTP=${DEMO_HTTP:-127.0.0.1:9464}
ROWS=${DEMO_ROWS:-100000}
BUILD=${DEMO_BUILD_DIR:-$DROVER_ROOT/build}
DROVER=${DEMO_DROVER:-$BUILD/consumer/drover}
CATALOG=$DROVER_ROOT/tests/fixtures/catalog
LOGS=$DROVER_STACK_DIR/demo
WORKER_PIDS=()
WORKER_HTTP=()
STARTED_KAFKA=0
STARTED_PG=0
STAYING=0
BROKERS=""
DATABASE_URL=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# TERM the workers (they drain: drain_timeout_ms=10000), KILL what is
# left after 30 s, and reap them.
stop_workers() {
  local i p
  for i in "${!WORKER_PIDS[@]}"; do
    p=${WORKER_PIDS[$i]}
    kill -0 "$p" 2>/dev/null || continue
    echo "demo: stopping worker demo-$((i + 1)) (pid $p)"
    kill -TERM "$p" 2>/dev/null || true
  done
  for ((i = 0; i < 150; i++)); do
    for p in "${WORKER_PIDS[@]}"; do
      kill -0 "$p" 2>/dev/null && break
      p=""
    done
    [ -z "$p" ] && break
    sleep 0.2
  done
  for p in "${WORKER_PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null && echo "demo: worker pid $p killed (drain timed out)"
    wait "$p" 2>/dev/null || true
  done
}

cleanup() {
  set +e      # stop all that can be stopped
  trap '' INT # a second Ctrl-C does not cut the stop short
  [ ${#WORKER_PIDS[@]} -gt 0 ] && stop_workers
  if [ "$STARTED_KAFKA" = 1 ]; then
    echo "demo: stopping kafka${BROKERS:+ at $BROKERS}"
    scripts/kafka.sh stop >/dev/null 2>&1 || true
  elif [ -n "$BROKERS" ]; then
    echo "demo: kafka at $BROKERS was running before the demo: left running"
  fi
  if [ "$STARTED_PG" = 1 ]; then
    echo "demo: stopping postgresql"
    scripts/pg.sh stop >/dev/null 2>&1 || true
  elif [ -n "${DATABASE_URL:-}" ]; then
    echo "demo: postgresql was running before the demo: left running"
  fi
  echo "demo: stopped what it started (logs in $LOGS)"
}
trap cleanup EXIT
# Ctrl-C is how the demo ends once it stays up: a clean exit then.
trap '[ "$STAYING" = 1 ] && exit 0; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ "${DEMO_SKIP_DEPS:-}" != 1 ]; then
  say "dependencies (scripts/deps.sh)"
  scripts/deps.sh
fi

if [ -n "${DEMO_DROVER:-}" ]; then
  [ -x "$DROVER" ] || die "DEMO_DROVER: \"$DROVER\" is not an executable"
else
  say "build"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j2 --target drover
fi

say "kafka and postgresql"
scripts/kafka.sh status >/dev/null 2>&1 || STARTED_KAFKA=1
BROKERS=$(scripts/kafka.sh start | tail -n 1)
scripts/pg.sh status >/dev/null 2>&1 || STARTED_PG=1
DATABASE_URL=$(scripts/pg.sh start | tail -n 1)
export DATABASE_URL DROVER_BROKERS=$BROKERS DROVER_CATALOG_DIR=$CATALOG
echo "kafka at $BROKERS, postgresql at $(echo "$DATABASE_URL" | sed 's|:[^:@/]*@|:***@|')"

say "sample datasets"
psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS inv CASCADE;
CREATE SCHEMA inv;
DROP TABLE IF EXISTS customer, inventory, orders, broken;
DROP SCHEMA IF EXISTS drover CASCADE;
CREATE TABLE customer (id bigint PRIMARY KEY, name text NOT NULL,
                       email text NOT NULL);
INSERT INTO customer
  SELECT g, 'customer ' || g,
         'user' || g || '@' || (ARRAY['example.com','mail.test',
                                      'corp.example','shop.test'])[g % 4 + 1]
  FROM generate_series(1, $ROWS) g;
CREATE TABLE inventory (id bigint PRIMARY KEY, sku text NOT NULL,
                        warehouse text, quantity integer NOT NULL,
                        unit_cost numeric(12,2), updated_at timestamptz);
INSERT INTO inventory
  SELECT g, 'sku-' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'wh' || g % 3 END,
         (g * 7) % 100 - 3, (g % 1000) / 10.0, now() - g * interval '1 min'
  FROM generate_series(1, 20000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, amount integer NOT NULL,
                     state text NOT NULL);
INSERT INTO orders
  SELECT g, g * 13 % 100000, (ARRAY['new','paid','shipped'])[g % 3 + 1]
  FROM generate_series(1, 30000) g;
ANALYZE;
SQL
echo "customer: $ROWS rows, inventory: 20000 rows, orders: 30000 rows"

say "3 workers (catalog $CATALOG)"
mkdir -p "$LOGS"
# The demo's own admin token (POST /api/tasks needs one): kept in a file,
# not printed.
(umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$LOGS/admin.token")
for i in 1 2 3; do
  # each worker its own admin port: the first on $HTTP, the others free
  listen=$HTTP
  [ "$i" = 1 ] || listen=127.0.0.1:$(free_port)
  WORKER_HTTP+=("$listen")
  # setsid: a Ctrl-C in the terminal reaches the demo, not the workers;
  # the demo stops them first, then the stack (setsid does not fork here,
  # so $! is the worker)
  DROVER_INSTANCE="demo-$i" DROVER_HTTP_LISTEN="$listen" \
    DROVER_ADMIN_TOKEN="$(cat "$LOGS/admin.token")" \
    setsid "$DROVER" worker --set drain_timeout_ms=10000 2>"$LOGS/worker-$i.log" &
  WORKER_PIDS+=($!)
  if [ "$i" = 1 ]; then
    # the first worker creates the topics (12 partitions for tasks)
    for ((t = 0; t < 150; t++)); do
      grep -q '"assigned' "$LOGS/worker-1.log" && break
      kill -0 "${WORKER_PIDS[0]}" 2>/dev/null ||
        { tail -n 5 "$LOGS/worker-1.log"; die "worker 1 did not start"; }
      sleep 0.2
    done
  fi
done
echo "workers demo-1..3 (pids ${WORKER_PIDS[*]}), status page: http://$HTTP/"

say "submit tasks"
submit() { "$DROVER" submit "$@" | sed 's/^/  task /'; }
submit --entity component:default/customer-dataset-v2-migration --dataset customer
submit --entity component:default/inventory-dataset-v3-migration \
  --dataset inventory --param default_warehouse=main
submit --entity component:default/orders-dataset-v5-migration --dataset orders \
  --dry-run --param currency=EUR
submit --entity component:default/orders-dataset-v5-migration --dataset orders \
  --param currency=EUR
submit --entity component:default/customer-dataset-v2-migration --dataset customer
submit --entity component:default/broken-dataset-migration --dataset broken
EXPECT=6

say "drover status --watch --until-done"
"$DROVER" status --watch --until-done --expect $EXPECT

say "final table"
"$DROVER" status

if [ "$ONCE" = 1 ]; then
  echo
  echo "demo: done; stopping (run scripts/demo.sh in a terminal, without"
  echo "--once or CI, to keep the workers and the status page up)"
  exit 0
fi

say "the demo stays up: try it"
D=$DROVER
cat <<EOF
  status page   http://$HTTP/
  metrics       curl -s http://$HTTP/metrics | grep ^drover_
                (demo-2: http://${WORKER_HTTP[1]}/metrics, demo-3: http://${WORKER_HTTP[2]}/metrics)
  the table     DATABASE_URL=\$(cat $DROVER_STACK_DIR/pg.url) $D status --watch
  dead letters  $D dlq list --brokers $BROKERS
  lag           $D lag --brokers $BROKERS
  submit        $D submit --brokers $BROKERS \\
                  --entity component:default/orders-dataset-v5-migration \\
                  --dataset orders --param currency=EUR
  over HTTP     curl -H "Authorization: Bearer \$(cat $LOGS/admin.token)" \\
                  -d '{"queue":"dataset-migrations","payload":{"entity_ref":"component:default/customer-dataset-v2-migration","dataset":"customer"}}' \\
                  http://$HTTP/api/tasks
  worker logs   $LOGS/worker-{1,2,3}.log
  psql          psql "\$(cat $DROVER_STACK_DIR/pg.url)"

Workers demo-1..3 (pids ${WORKER_PIDS[*]}) and the stack keep running.
Press Ctrl-C to stop everything the demo started.
EOF
STAYING=1
# Returns when a worker exits on its own (a trapped signal ends the
# script from the trap instead).
wait -n "${WORKER_PIDS[@]}" && rc=0 || rc=$?
STAYING=0
echo "demo: a worker exited (status $rc): stopping; see $LOGS/worker-*.log" >&2
exit 1
