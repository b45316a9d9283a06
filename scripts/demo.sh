#!/usr/bin/env bash
# drover - scripts/demo.sh: the main job, end to end, on local defaults.
#
#   scripts/demo.sh            deps, build, Kafka + PostgreSQL, sample data
#                              and plans, 3 workers, tasks, a live table
#
# Starts a throwaway Kafka (KRaft) and PostgreSQL under $DROVER_STACK_DIR
# (default .stack/), loads a `customer` table (100k rows with e-mails), an
# `inventory` and an `orders` table, uses the sample catalog in
# tests/fixtures/catalog, starts three workers (the first serves the status
# page on http://127.0.0.1:9464/), submits one task per plan (plus a
# duplicate, a dry run and a broken plan that ends in the dead-letter
# topic), watches `drover status` until everything is final, prints the
# final table and stops everything it started.  Re-running it works.
#
# Environment: DEMO_SKIP_DEPS=1 skips scripts/deps.sh; DEMO_HTTP sets the
# first worker's admin address (default 127.0.0.1:9464); DEMO_ROWS the
# customer rows (default 100000); DEMO_BUILD_DIR the build dir (build/).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$DROVER_ROOT"

HTTP=${DEMO_HTTP:-127.0.0.1:9464}
ROWS=${DEMO_ROWS:-100000}
BUILD=${DEMO_BUILD_DIR:-$DROVER_ROOT/build}
DROVER=$BUILD/consumer/drover
CATALOG=$DROVER_ROOT/tests/fixtures/catalog
LOGS=$DROVER_STACK_DIR/demo
WORKER_PIDS=()
STARTED_KAFKA=0
STARTED_PG=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  local p
  for p in "${WORKER_PIDS[@]:-}"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${WORKER_PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  [ "$STARTED_KAFKA" = 1 ] && scripts/kafka.sh stop >/dev/null 2>&1 || true
  [ "$STARTED_PG" = 1 ] && scripts/pg.sh stop >/dev/null 2>&1 || true
  echo "demo: stopped what it started (logs in $LOGS)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${DEMO_SKIP_DEPS:-}" != 1 ]; then
  say "dependencies (scripts/deps.sh)"
  scripts/deps.sh
fi

say "build"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target drover

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
for i in 1 2 3; do
  listen=""
  [ "$i" = 1 ] && listen=$HTTP
  DROVER_INSTANCE="demo-$i" DROVER_HTTP_LISTEN="$listen" \
    "$DROVER" worker --set drain_timeout_ms=10000 2>"$LOGS/worker-$i.log" &
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
echo "status page: http://$HTTP/"

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
echo
echo "status page: http://$HTTP/  (while the workers run)"
echo "dead letters: 'drover dlq list' (topic dataset-migrations.dlq)"
