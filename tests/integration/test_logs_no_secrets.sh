#!/usr/bin/env bash
# drover - tests/integration/test_logs_no_secrets.sh
#
# A database password, the admin bearer token and the Backstage token never
# appear in anything drover writes (stderr logs, stdout, HTTP answers), at
# debug level, on success and on failure: the worker with its admin server
# (task submitted over HTTP, status page, metrics, readiness), submit,
# status, lag, and failing connections (wrong password, closed port,
# unreachable brokers).  Every stderr line must also be one JSON object or
# a one-line "drover: ..." error.
set -euo pipefail
: "${DROVER_BIN:?}" "${DROVER_SOURCE_DIR:?}"
if [ -z "${DROVER_TEST_BROKERS:-}" ] || [ -z "${DROVER_TEST_DATABASE_URL:-}" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && { echo "no stack" >&2; exit 1; }
  echo "stack not set: skipping"; exit 77
fi
B=$DROVER_TEST_BROKERS
URL=$DROVER_TEST_DATABASE_URL
# The stack's URL carries a password (postgresql://user:PASSWORD@host...).
PW=$(/usr/bin/python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).password or "")' "$URL")
[ -n "$PW" ] || { echo "DROVER_TEST_DATABASE_URL has no password: cannot test" >&2; exit 1; }
TOKEN=adm-$RANDOM$RANDOM-secret-token-$$
BTOKEN=bks-$RANDOM$RANDOM-backstage-token-$$
WRONG_PW=wrong-$RANDOM$RANDOM-password
BAD_URL=$(/usr/bin/python3 -c '
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(p._replace(netloc="%s:%s@%s:%d" % (p.username, sys.argv[2], p.hostname, p.port)).geturl())' "$URL" "$WRONG_PW")
CLOSED_URL="postgresql://drover:$WRONG_PW@127.0.0.1:1/drover"
# The same database as libpq keyword/value conninfo, quoted password.
KW_URL=$(/usr/bin/python3 -c '
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
pw = u.unquote(p.password).replace("\\", "\\\\").replace("\x27", "\\\x27")
print("host=%s port=%d user=%s password = \x27%s\x27 dbname=%s" % (p.hostname, p.port, p.username, pw, p.path.lstrip("/")))' "$URL")
# Wrong passwords in the forms libpq accepts; the last two make libpq
# echo part of the string in its error.
KW_BAD="host=127.0.0.1 port=1 user=drover password = $WRONG_PW dbname=drover"
KW_BAD_Q="host=127.0.0.1 port=1 password='a $WRONG_PW \\' b' sslpassword =$WRONG_PW"
URI_BAD_PCT="postgresql://drover:$WRONG_PW%zz@127.0.0.1:1/drover"
URI_BAD_Q="postgresql://127.0.0.1:1/drover?password=$WRONG_PW&password=$WRONG_PW=x"
T=secrets-$$-$RANDOM
G=secrets-g-$$-$RANDOM
work=$(mktemp -d)
wpid=
cleanup() {
  [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export DROVER_LOG_LEVEL=debug BACKSTAGE_TOKEN=$BTOKEN DROVER_ADMIN_TOKEN=$TOKEN
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() { # name, command...: stdout+stderr into $work/<name>.{out,err}
  local name=$1; shift
  set +e
  timeout 60 "$@" >"$work/$name.out" 2>"$work/$name.err"
  echo $? >"$work/$name.rc"
  set -e
}

# 1. The worker with its admin server, on the real stack.
PORT=$(free_port)
DROVER_BROKERS=$B DATABASE_URL=$URL DROVER_TOPIC=$T DROVER_GROUP=$G \
  DROVER_INSTANCE=secrets-$$ DROVER_CATALOG_DIR=$DROVER_SOURCE_DIR/tests/fixtures/catalog \
  DROVER_HTTP_LISTEN=127.0.0.1:$PORT \
  "$DROVER_BIN" worker >"$work/worker.out" 2>"$work/worker.err" &
wpid=$!
for _ in $(seq 150); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null ||
  { echo "worker admin server did not come up" >&2; cat "$work/worker.err" >&2; exit 1; }
code=$(curl -s -o "$work/http_submit.out" -w '%{http_code}' \
  -H "Authorization: Bearer $TOKEN" \
  -d "{\"queue\":\"$T\",\"payload\":{\"entity_ref\":\"component:default/customer-dataset-v2-migration\",\"dataset\":\"secrets_ds_$$\",\"dry_run\":true}}" \
  "http://127.0.0.1:$PORT/api/tasks")
[ "$code" = 202 ] || { echo "http submit: $code $(cat "$work/http_submit.out")" >&2; exit 1; }
curl -s -o "$work/http_bad.out" -H "Authorization: Bearer $TOKEN-wrong" \
  -d '{}' "http://127.0.0.1:$PORT/api/tasks"
for p in /metrics /readyz /api/migrations / /app.js; do
  curl -s "http://127.0.0.1:$PORT$p" >>"$work/http_get.out"
done
run submit env DROVER_BROKERS="$B" "$DROVER_BIN" submit --topic "$T" \
  --entity component:default/customer-dataset-v2-migration \
  --dataset "secrets_ds2_$$" --dry-run
run status env DATABASE_URL="$URL" "$DROVER_BIN" status --json
run lag "$DROVER_BIN" lag --brokers "$B" --topic "$T" --group "$G"
sleep 3 # let the worker process, log and commit
kill -TERM "$wpid"
set +e
wait "$wpid"
echo $? >"$work/worker.rc"
set -e
wpid=

# 2. Failing connections, with the secrets in play.
run status_wrongpw env DATABASE_URL="$BAD_URL" "$DROVER_BIN" status
run status_closed env DATABASE_URL="$CLOSED_URL" "$DROVER_BIN" status
run status_flag "$DROVER_BIN" status --database "$BAD_URL"
run status_kw env DATABASE_URL="$KW_URL" "$DROVER_BIN" status
for n in KW_BAD KW_BAD_Q URI_BAD_PCT URI_BAD_Q; do
  run "status_$n" env DATABASE_URL="${!n}" "$DROVER_BIN" status
  run "worker_$n" env DROVER_BROKERS="$B" DATABASE_URL="${!n}" \
    DROVER_CATALOG_DIR="$DROVER_SOURCE_DIR/tests/fixtures/catalog" \
    DROVER_HTTP_LISTEN= DROVER_TOPIC="$T" DROVER_GROUP="$G" "$DROVER_BIN" worker
done
run worker_wrongpw env DROVER_BROKERS="$B" DATABASE_URL="$BAD_URL" \
  DROVER_CATALOG_DIR="$DROVER_SOURCE_DIR/tests/fixtures/catalog" \
  DROVER_HTTP_LISTEN= DROVER_TOPIC="$T" DROVER_GROUP="$G" "$DROVER_BIN" worker
run worker_nokafka env DROVER_BROKERS=127.0.0.1:1 DATABASE_URL="$URL" \
  DROVER_CATALOG_DIR="$DROVER_SOURCE_DIR/tests/fixtures/catalog" \
  DROVER_HTTP_LISTEN= DROVER_TOPIC="$T" "$DROVER_BIN" worker \
  --set drain_timeout_ms=1000
run worker_flagpw env DROVER_BROKERS="$B" "$DROVER_BIN" worker \
  --database "$CLOSED_URL" --catalog "$DROVER_SOURCE_DIR/tests/fixtures/catalog" \
  --http-listen ""
run submit_nokafka env DROVER_BROKERS=127.0.0.1:1 "$DROVER_BIN" submit \
  --entity component:default/x --dataset d
run help_worker "$DROVER_BIN" worker --help
run help_status "$DROVER_BIN" status --help

# 3. Nothing anywhere holds a secret.
leaks=0
for f in "$work"/*.out "$work"/*.err; do
  for s in "$PW" "$WRONG_PW" "$TOKEN" "$BTOKEN"; do
    if grep -qF -- "$s" "$f"; then
      echo "LEAK: $(basename "$f") contains a secret:" >&2
      grep -nF -- "$s" "$f" | head -3 >&2
      leaks=1
    fi
  done
done
[ $leaks = 0 ] || exit 1

# The checks above must have had something to look at.
grep -q '"level"' "$work/worker.err" || { echo "worker logged nothing" >&2; exit 1; }
[ "$(cat "$work/worker.rc")" = 0 ] || { echo "worker exit $(cat "$work/worker.rc")" >&2; exit 1; }
[ "$(cat "$work/status_kw.rc")" = 0 ] ||
  { echo "status with a keyword/value DATABASE_URL failed: $(cat "$work/status_kw.err")" >&2; exit 1; }
for n in status_wrongpw status_closed worker_wrongpw worker_flagpw \
  status_KW_BAD status_KW_BAD_Q status_URI_BAD_PCT status_URI_BAD_Q worker_KW_BAD_Q; do
  [ "$(cat "$work/$n.rc")" != 0 ] || { echo "$n did not fail" >&2; exit 1; }
  [ -s "$work/$n.err" ] || { echo "$n said nothing" >&2; exit 1; }
done
grep -q 'password authentication failed\|authentication' "$work/status_wrongpw.err" ||
  { echo "wrong password not reported: $(cat "$work/status_wrongpw.err")" >&2; exit 1; }

# 4. stderr is JSON lines (logs) or one-line "drover: ..." errors.
/usr/bin/python3 - "$work" <<'PY'
import glob, json, sys
bad = []
for f in glob.glob(sys.argv[1] + "/*.err"):
    if f.endswith("help_worker.err") or f.endswith("help_status.err"):
        continue
    for n, line in enumerate(open(f, errors="replace"), 1):
        line = line.rstrip("\n")
        if not line or line.startswith("drover: "):
            continue
        try:
            o = json.loads(line)
            assert isinstance(o, dict) and {"ts", "level", "msg"} <= set(o)
        except Exception:
            bad.append(f"{f.rsplit('/', 1)[1]}:{n}: {line[:160]}")
if bad:
    print("stderr lines that are neither JSON logs nor drover: errors:",
          *bad[:20], sep="\n", file=sys.stderr)
    sys.exit(1)
PY
echo "ok: no secret in $(cat "$work"/*.err "$work"/*.out | wc -l) lines of output"
