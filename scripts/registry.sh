#!/usr/bin/env bash
# drover - scripts/registry.sh start|stop|status: a real Confluent-API
# schema registry for the Confluent-framing tests.
#
# Tries Karapace (pinned, in a venv under .cache/) against the Kafka of
# scripts/kafka.sh ($DROVER_STACK_DIR/kafka.bootstrap).  Prints the URL on
# start and writes it to $DROVER_STACK_DIR/registry.url.
#
# STATUS: on the machines this project runs on, Karapace is not on the
# reachable package index ("No matching distribution found for karapace")
# and Apicurio's Maven artifact (io.apicurio:apicurio-registry-app) is a
# plain Quarkus module jar without a Main-Class, not a runnable app.  So
# `start` fails with exit 69 and one line; tests then use the recorded-API
# stand-in tests/integration/schema_registry_stub.py (marked as such).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK=${DROVER_STACK_DIR:-$ROOT/.stack}
KARAPACE_VERSION=${KARAPACE_VERSION:-3.15.0}
VENV=$ROOT/.cache/karapace-$KARAPACE_VERSION
mkdir -p "$STACK"

start() {
  local boot port
  boot=$(cat "$STACK/kafka.bootstrap" 2>/dev/null) || {
    echo "registry.sh: no kafka (run scripts/kafka.sh start first)" >&2; exit 69; }
  if [ ! -x "$VENV/bin/karapace" ]; then
    /usr/bin/python3 -m venv "$VENV"
    if ! "$VENV/bin/pip" install -q "karapace==$KARAPACE_VERSION" >"$STACK/registry-install.log" 2>&1; then
      echo "registry.sh: cannot install karapace $KARAPACE_VERSION: $(tail -1 "$STACK/registry-install.log")" >&2
      exit 69
    fi
  fi
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  KARAPACE_BOOTSTRAP_URI=$boot KARAPACE_HOST=127.0.0.1 KARAPACE_PORT=$port \
    KARAPACE_TOPIC_NAME=_schemas_drover KARAPACE_REGISTRY=true \
    nohup "$VENV/bin/karapace" >"$STACK/registry.log" 2>&1 &
  echo $! >"$STACK/registry.pid"
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$port/subjects" >/dev/null 2>&1; then
      echo "http://127.0.0.1:$port" | tee "$STACK/registry.url"
      return 0
    fi
    sleep 1
  done
  echo "registry.sh: karapace did not answer on 127.0.0.1:$port (see $STACK/registry.log)" >&2
  stop; exit 69
}

stop() {
  if [ -f "$STACK/registry.pid" ]; then
    kill "$(cat "$STACK/registry.pid")" 2>/dev/null || true
    rm -f "$STACK/registry.pid" "$STACK/registry.url"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) [ -f "$STACK/registry.url" ] && cat "$STACK/registry.url" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
