#!/usr/bin/env bash
# drover - configuration and connectivity errors: one clear "drover: ..."
# line naming the culprit, exit 65 (bad config) or 69 (unreachable), and
# no password on stderr.
. "$(dirname "$0")/worker_lib.sh"

# expect CODE REGEX -- args...: run 'drover worker args', check both
expect() {
  local code=$1 re=$2 rc=0
  shift 3
  DROVER_HTTP_LISTEN="" timeout 60 "$DROVER_BIN" worker "$@" \
    >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" = "$code" ] || { cat "$WORK/err" >&2; fail "exit $rc, want $code: $*"; }
  [ "$(grep -c '^drover: ' "$WORK/err")" = 1 ] || fail "not one error line: $*"
  grep '^drover: ' "$WORK/err" | grep -Eq "$re" ||
    fail "error line \"$(grep '^drover: ' "$WORK/err")\" does not match /$re/"
  grep -q 'drover-pw\|s3cret' "$WORK/err" && fail "a password leaked: $*"
  log "ok: exit $code: $(grep '^drover: ' "$WORK/err")"
}

printf 'topic: t\nconcurency: 3\n' >"$WORK/unknown.yaml"
expect 65 "unknown.yaml:2: unknown configuration key \"concurency\"" -- \
  --config "$WORK/unknown.yaml"
printf 'kafka:\n  max.poll.interval.ms: soon\n' >"$WORK/badkafka.yaml"
expect 65 "badkafka.yaml:2: kafka.max.poll.interval.ms" -- \
  --config "$WORK/badkafka.yaml"
expect 65 "flag --concurrency: invalid value \"-1\"" -- --concurrency -1
expect 65 "assignment_strategy" -- --set assignment_strategy=roundrobin
expect 65 "flag -X: kafka.partition.assignment.strategy is set by drover: use \"assignment_strategy\"" -- \
  -X partition.assignment.strategy=range
expect 2 "unknown option \"--bogus\"" -- --bogus x
expect 65 "cannot read config" -- --config "$WORK/missing.yaml"
bad_db="postgresql://drover:s3cret@127.0.0.1:1/drover"
expect 69 "127.0.0.1" -- --database "$bad_db" --brokers "$B" --catalog "$CAT"
DATABASE_URL="$DB" expect 69 "cannot reach kafka at 127.0.0.1:1" -- \
  --brokers 127.0.0.1:1 --catalog "$CAT" --topic "$TOPIC" --group "$GROUP"
echo "ok"
