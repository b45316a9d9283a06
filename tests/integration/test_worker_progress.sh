#!/usr/bin/env bash
# drover - a running task shows its progress: `drover status --json` reports
# steps_total from the start of the run, and steps_done / rows move while a
# slow batched backfill runs (progress is written at most once a second),
# then the final row is complete.
. "$(dirname "$0")/worker_lib.sh"

ds="${ID}_ds0"
NROWS=20000
sql "CREATE TABLE ${ds}_t (id bigint PRIMARY KEY, v text);
     INSERT INTO ${ds}_t SELECT g, 'x' || g FROM generate_series(1, $NROWS) g"
write_plan "$ds" \
  "{op: add_column, table: ${ds}_t, column: {name: w, type: text}}" \
  "{op: backfill, table: ${ds}_t, set: {w: \"upper(v)\"}, batch_size: 1000}" \
  "{op: validate, not_null: [${ds}_t.w]}"
$CHECK create "$B" "$TOPIC" 1
submit_tasks 1 1
# 20 batches, 400 ms apart: about 8 s of backfill
start_worker "$ID-a" --set batch_pause_ms=400
status() {
  "$DROVER_BIN" status --json --dataset "$ds" --database "$DB" |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)
r=r[0] if r else {}
print(r.get("status","-"), r.get("steps_done",-1), r.get("steps_total",-1), r.get("rows",-1))'
}
: >"$WORK/samples"
for ((i = 0; i < 150; i++)); do
  s=$(status)
  echo "$s" >>"$WORK/samples"
  case $s in done*) break ;; esac
  sleep 0.2
done
sort -u "$WORK/samples" | head -40 >&2
# while running: steps_total 3 throughout, rows and steps_done moving
awk '$1 == "running" && $3 != 3 { bad = 1 } END { exit bad }' "$WORK/samples" ||
  fail "a running row without steps_total 3"
nrows=$(awk '$1 == "running" { print $4 }' "$WORK/samples" | sort -un | wc -l)
[ "$nrows" -ge 4 ] || fail "rows of the running task took only $nrows distinct values"
awk '$1 == "running" && $4 > 0 && $4 < '"$NROWS"' { mid = 1 } END { exit !mid }' \
  "$WORK/samples" || fail "no partial row count while running"
awk '$1 == "running" && $2 >= 1 && $2 < 3 { mid = 1 } END { exit !mid }' \
  "$WORK/samples" || fail "steps_done never between 1 and 2 while running"
# monotonic rows while running
awk '$1 == "running" { if ($4 < last) bad = 1; last = $4 } END { exit bad }' \
  "$WORK/samples" || fail "rows went backwards"
[ "$(tail -1 "$WORK/samples")" = "done 3 3 $NROWS" ] || fail "final row: $(tail -1 "$WORK/samples")"
kill -TERM "$LAST_PID"
wait "$LAST_PID" || fail "worker exited $? on SIGTERM"
PIDS=()
echo "ok"
