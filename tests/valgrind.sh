#!/usr/bin/env bash
# drover - tests/valgrind.sh: run the C tests of a ctest label under
# valgrind memcheck; fails on any memory error or definite leak.
#
#   tests/valgrind.sh [BUILD_DIR] [LABEL]     (defaults: build unit)
#
# Shell tests in the label are skipped (valgrind would trace bash).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LABEL=${2:-unit}
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed" >&2; exit 1; }
SUPP=$PWD/tests/valgrind.supp

ctest --test-dir "$BUILD" -L "$LABEL" --show-only=json-v1 >"$BUILD/valgrind-tests.json"
mapfile -t TESTS < <(/usr/bin/python3 - "$BUILD/valgrind-tests.json" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1]))["tests"]:
    cmd = t.get("command") or []
    if cmd and not cmd[0].endswith("bash"):
        env = [p["value"] for p in t.get("properties", [])
               if p["name"] == "ENVIRONMENT"]
        print("\t".join([t["name"], ";".join(env[0] if env else [])] + cmd))
PY
)
pass=0 fail=0
for line in "${TESTS[@]}"; do
  IFS=$'\t' read -r -a f <<<"$line"
  name=${f[0]}
  IFS=';' read -r -a envs <<<"${f[1]}"
  log=$BUILD/valgrind-$name.log
  if env "${envs[@]}" valgrind --quiet --error-exitcode=99 \
      --leak-check=full --errors-for-leak-kinds=definite \
      --show-leak-kinds=definite --suppressions="$SUPP" \
      --log-file="$log" "${f[@]:2}" >"$log.out" 2>&1; then
    pass=$((pass + 1))
    echo "valgrind: ok     $name"
  else
    rc=$?
    if [ $rc = 77 ]; then echo "valgrind: skip   $name"; continue; fi
    fail=$((fail + 1))
    echo "valgrind: FAILED $name (exit $rc; see $log)"
    tail -n 30 "$log" "$log.out" | sed 's/^/  /'
  fi
done
echo "valgrind: $pass passed, $fail failed"
[ $fail = 0 ]
