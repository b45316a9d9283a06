#!/usr/bin/env bash
# drover - tests/valgrind.sh: run the C tests of a ctest label under
# valgrind memcheck; fails on any memory error or definite leak.
#
#   tests/valgrind.sh [BUILD_DIR] [LABEL] [--shell]   (defaults: build unit)
#
# Exits 77 (skip) when every test skipped (no stack).
# Shell tests in the label are skipped (valgrind would trace bash), unless
# --shell: then each runs with DROVER_BIN pointing to a wrapper that runs
# every drover process it starts (workers, submit, ...) under memcheck;
# the test must pass and every process's log must be empty.
# VALGRIND_REGEX=RE limits the run to the tests whose name matches.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
LABEL=${2:-unit}
SHELL_TESTS=0
[ "${3:-}" = --shell ] && SHELL_TESTS=1
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind not installed" >&2; exit 1; }
SUPP=$PWD/tests/valgrind.supp

ctest --test-dir "$BUILD" -L "$LABEL" ${VALGRIND_REGEX:+-R "$VALGRIND_REGEX"} --show-only=json-v1 >"$BUILD/valgrind-tests.json"
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
pass=0 fail=0 skip=0
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
    if [ $rc = 77 ]; then echo "valgrind: skip   $name"; skip=$((skip + 1)); continue; fi
    fail=$((fail + 1))
    echo "valgrind: FAILED $name (exit $rc; see $log)"
    tail -n 30 "$log" "$log.out" | sed 's/^/  /'
  fi
done
if [ $SHELL_TESTS = 1 ]; then
  # drover processes started by shell tests, each under memcheck
  BUILD_ABS=$(cd "$BUILD" && pwd)
  VGDIR=$BUILD_ABS/valgrind-shell
  rm -rf "$VGDIR"
  mkdir -p "$VGDIR"
  cat >"$VGDIR/drover" <<WRAP
#!/usr/bin/env bash
exec valgrind --quiet --error-exitcode=99 --leak-check=full \\
  --errors-for-leak-kinds=definite --show-leak-kinds=definite \\
  --suppressions="$SUPP" --log-file="$VGDIR/drover-%p.log" \\
  "$BUILD_ABS/consumer/drover" "\$@"
WRAP
  chmod +x "$VGDIR/drover"
  mapfile -t SH < <(/usr/bin/python3 - "$BUILD/valgrind-tests.json" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1]))["tests"]:
    cmd = t.get("command") or []
    if cmd and cmd[0].endswith("bash"):
        env = [p["value"] for p in t.get("properties", [])
               if p["name"] == "ENVIRONMENT"]
        print("\t".join([t["name"], ";".join(env[0] if env else [])] + cmd))
PY
)
  for line in "${SH[@]}"; do
    IFS=$'\t' read -r -a f <<<"$line"
    name=${f[0]}
    IFS=';' read -r -a envs <<<"${f[1]}"
    rm -f "$VGDIR"/drover-*.log
    log=$BUILD/valgrind-$name.out
    if env "${envs[@]}" DROVER_BIN="$VGDIR/drover" "${f[@]:2}" >"$log" 2>&1; then
      rc=0
    else
      rc=$?
    fi
    if [ $rc = 77 ]; then echo "valgrind: skip   $name"; skip=$((skip + 1)); continue; fi
    bad=$(find "$VGDIR" -name 'drover-*.log' -size +0 | wc -l)
    n=$(find "$VGDIR" -name 'drover-*.log' | wc -l)
    if [ $rc = 0 ] && [ "$bad" = 0 ]; then
      pass=$((pass + 1))
      echo "valgrind: ok     $name ($n drover processes)"
    else
      fail=$((fail + 1))
      echo "valgrind: FAILED $name (exit $rc, $bad of $n drover processes reported; see $log)"
      tail -n 20 "$log" | sed 's/^/  /'
      find "$VGDIR" -name 'drover-*.log' -size +0 -exec head -n 30 {} \; | sed 's/^/  /'
      mkdir -p "$BUILD/valgrind-failed-$name"
      find "$VGDIR" -name 'drover-*.log' -size +0 -exec cp {} "$BUILD/valgrind-failed-$name/" \;
    fi
  done
fi
echo "valgrind: $pass passed, $fail failed, $skip skipped"
# nothing ran (no stack for the integration tests): a skip, not a pass
[ $fail = 0 ] && [ $pass = 0 ] && [ $skip -gt 0 ] && exit 77
[ $fail = 0 ]
