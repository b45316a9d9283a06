#!/usr/bin/env bash
# drover - bench/transforms.sh: backfill / copy_rows through drover vs one
# native UPDATE / INSERT ... SELECT on identical fresh tables.
#
#   bench/transforms.sh [--quick] [--rows N] [--batch B]
#
# Uses DATABASE_URL, else DROVER_TEST_DATABASE_URL, else starts nothing
# and fails.  Prints one JSON line (bench/run.sh collects it).  pgroll as
# the peer: the Go module proxy answers 403 for github.com/xataio/pgroll,
# so it cannot be installed here; the JSON says so.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${DROVER_BUILD_DIR:-$ROOT/build}
export DATABASE_URL=${DATABASE_URL:-${DROVER_TEST_DATABASE_URL:-}}
[ -n "$DATABASE_URL" ] || { echo "transforms.sh: set DATABASE_URL (scripts/pg.sh start)" >&2; exit 69; }
if [ ! -x "$BUILD/bench/bench_transforms" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja >/dev/null
  cmake --build "$BUILD" --target bench_transforms -j 2 >/dev/null
fi
exec "$BUILD/bench/bench_transforms" "$@"
