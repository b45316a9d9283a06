#!/usr/bin/env bash
# drover - tests/integration/test_cli_output_escaped.sh: untrusted text
# (a task's entity_ref, a plan's SQL echoed in a PostgreSQL error) carrying
# ESC sequences, CR and LF reaches `drover status` and `drover dlq list`
# through a real worker; their human-readable output shows it escaped
# (\x1b, \x0d, \x0a): no raw control character, no forged row.  --json
# keeps the exact text (jansson escapes it).
. "$(dirname "$0")/worker_lib.sh"

$CHECK create "$B" "$TOPIC" 1
E=$'\x1b[2J\x1b[H\rFORGED\nROW'
# a plan whose step fails with an error naming a relation with E in it
# (YAML double-quoted escapes: \e is ESC)
DS_SQL="${ID}_esc_sql"
write_plan "$DS_SQL" \
  '{op: sql, sql: "SELECT * FROM \"x\e[2J\e[H\rFORGED\nROWy\""}'
DS_REF="${ID}_esc_ref"
"$DROVER_BIN" submit --brokers "$B" --topic "$TOPIC" \
  --entity "component:default/${DS_SQL//_/-}-v2" --dataset "$DS_SQL" >>"$WORK/ids" ||
  fail "submit sql task"
# (`drover submit` refuses such a ref: another producer sends it)
produce_task "component:default/nope${E}" "$DS_REF"

start_worker "$ID-a"
wait_final 2 90
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()

check_human() { # NAME LINES: $WORK/NAME.out has LINES lines
  local f="$WORK/$1.out"
  if grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$f"; then
    cat -A "$f" >&2
    fail "$1: raw control characters in the output"
  fi
  [ "$(wc -l <"$f")" = "$2" ] ||
    { cat -A "$f" >&2; fail "$1: $(wc -l <"$f") lines, expected $2"; }
  grep -qF '\x1b[2J\x1b[H\x0dFORGED' "$f" ||
    { cat -A "$f" >&2; fail "$1: the escaped text is not shown"; }
}
for ds in "$DS_SQL" "$DS_REF"; do
  DATABASE_URL="$DB" "$DROVER_BIN" status --dataset "$ds" >"$WORK/status_$ds.out" ||
    fail "status --dataset $ds"
  check_human "status_$ds" 3 # header, one row, counts
  DATABASE_URL="$DB" "$DROVER_BIN" status --json --dataset "$ds" >"$WORK/status_$ds.json" ||
    fail "status --json"
  /usr/bin/python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert len(rows) == 1 and "\x1b[2J\x1b[H\rFORGED" in rows[0]["error"], rows' \
    "$WORK/status_$ds.json" || fail "status --json lost the exact text"
done
"$DROVER_BIN" dlq list --brokers "$B" --topic "$TOPIC" >"$WORK/dlq.out" ||
  fail "dlq list"
check_human dlq 3 # header, two rows
echo "ok"
