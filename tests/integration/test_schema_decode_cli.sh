#!/usr/bin/env bash
# 'drover decode': exit code, stdout and stderr together, for good and bad
# records (needs no Kafka or PostgreSQL).
set -u
BIN=${DROVER_BIN:?set by ctest}
SRC=${DROVER_SOURCE_DIR:?set by ctest}
SEEDS=$SRC/tests/fuzz/corpus/task_decode
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0; n=0
matches() { # pattern file; EMPTY: the file must be empty
  if [ "$1" = EMPTY ]; then [ ! -s "$2" ]; else grep -qE -- "$1" "$2"; fi
}
check() { # name want_rc stdout_pattern stderr_pattern -- cmd...
  local name=$1 want=$2 out_pat=$3 err_pat=$4; shift 5
  n=$((n + 1))
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" != "$want" ] || ! matches "$out_pat" "$tmp/out" ||
     ! matches "$err_pat" "$tmp/err" ||
     [ "$(wc -l <"$tmp/err")" -gt 1 ]; then
    echo "not ok $n - $name (rc=$rc want $want)"; cat "$tmp/out" "$tmp/err"; fail=$((fail + 1))
  else
    echo "ok $n - $name"
  fi
}
check "v1 record prints json" 0 '"dataset":"customer".*"priority":0.*"writer_version":1' EMPTY -- \
  sh -c "'$BIN' decode < '$SEEDS/v1-single-object'"
check "v2 record prints json" 0 '"priority":3.*"replay_of":"11111111' EMPTY -- \
  sh -c "'$BIN' decode < '$SEEDS/v2-single-object'"
check "v2 record under a v1 reader" 0 '"priority":0,"replay_of":null,"writer_version":2' EMPTY -- \
  sh -c "'$BIN' decode --reader-version 1 < '$SEEDS/v2-single-object'"
check "empty input is exit 65" 65 EMPTY '^drover: task record is empty$' -- \
  sh -c "'$BIN' decode < /dev/null"
check "json is not a task" 65 EMPTY '^drover: task record has an unknown wire format' -- \
  sh -c "echo '{\"a\":1}' | '$BIN' decode"
head -c 30 "$SEEDS/v1-single-object" >"$tmp/trunc"
check "truncated record" 65 EMPTY '^drover: cannot decode task record: truncated' -- \
  sh -c "'$BIN' decode < '$tmp/trunc'"
check "confluent without registry" 65 EMPTY 'no schema registry is configured' -- \
  sh -c "SCHEMA_REGISTRY_URL= '$BIN' decode < '$SEEDS/confluent'"
check "unreachable registry is exit 69" 69 EMPTY 'cannot reach schema registry at http://user:\*\*\*@127.0.0.1:9' -- \
  sh -c "'$BIN' decode --registry http://user:pw@127.0.0.1:9 < '$SEEDS/confluent'"
check "password is replaced by ***" 69 EMPTY 'http://user:\*\*\*@127' -- \
  sh -c "'$BIN' decode --registry http://user:Zq9secret@127.0.0.1:9 < '$SEEDS/confluent'"
if grep -q Zq9secret "$tmp/err"; then echo "not ok - password leaked"; fail=$((fail + 1)); fi
check "help" 0 'usage: drover decode' EMPTY -- "$BIN" decode --help
check "bad option is usage" 2 EMPTY '^drover: unknown or incomplete option' -- "$BIN" decode --nope
echo "$((n - fail)) passed, $fail failed"
exit $fail
