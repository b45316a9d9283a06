#!/usr/bin/env bash
# drover - tests/integration/test_submit_unreachable_broker.sh
#
# 'drover submit' against a closed port exits 69 (service unavailable, as
# the README documents), once message.timeout.ms has run out, with one
# "drover: cannot reach kafka at ..." line; every other stderr line is a
# JSON log line (librdkafka's connection errors), and stdout is empty (no
# task id for a task that was not delivered).
set -euo pipefail
: "${DROVER_BIN:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$work/err" >&2 || true; exit 1; }

# a port nothing listens on: bound by the kernel's choice, then released
port=$(/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

set +e
"$DROVER_BIN" submit --brokers "127.0.0.1:$port" --topic "unreachable-$$" \
  --entity component:default/customer-dataset-v2-migration \
  --dataset customer >"$work/out" 2>"$work/err"
rc=$?
set -e
[ "$rc" = 69 ] || fail "exit $rc, want 69"
[ ! -s "$work/out" ] || fail "stdout: $(cat "$work/out")"
grep -v '^{' "$work/err" >"$work/lines" || true
[ "$(wc -l <"$work/lines")" = 1 ] || fail "want one drover: line"
grep -qx "drover: cannot reach kafka at 127.0.0.1:$port: Local: Message timed out (1 of 1 task(s) not delivered)" \
  "$work/lines" || fail "message: $(cat "$work/lines")"
/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        json.loads(line)
' "$work/err" || fail "a log line is not JSON"
echo "ok: submit to an unreachable broker exits 69 with one error line"
