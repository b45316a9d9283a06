#!/usr/bin/env bash
# drover - scripts/registry.sh install|start|stop|status: a real
# Confluent-API schema registry for the Confluent-framing tests.
#
# Runs Apicurio Registry 2.6.13.Final (Quarkus 3.15.3, in-memory H2
# storage, no Kafka needed) from its released "-all" assembly on Maven
# Central (io.apicurio:apicurio-registry-app:2.6.13.Final:tar.gz:all: a
# Quarkus runner jar plus lib/), fetched once with mvn into ~/.m2 and
# unpacked under .cache/.  Listens on 127.0.0.1 on a free port; the
# Confluent API is at /apis/ccompat/v7, and that URL is what `start` prints
# and writes to $DROVER_STACK_DIR/registry.url.  Storage is in memory: a
# restart forgets every schema.  Needs java (17+) and maven.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK=${DROVER_STACK_DIR:-$ROOT/.stack}
VERSION=${APICURIO_VERSION:-2.6.13.Final}
GAV=io.apicurio:apicurio-registry-app:$VERSION:tar.gz:all
M2=${DROVER_M2_REPO:-$HOME/.m2/repository}
TARBALL=$M2/io/apicurio/apicurio-registry-app/$VERSION/apicurio-registry-app-$VERSION-all.tar.gz
APP=$ROOT/.cache/apicurio-registry-$VERSION
JAR=$APP/apicurio-registry-app-$VERSION-runner.jar
mkdir -p "$STACK"

install() {
  [ -f "$JAR" ] && return 0
  if [ ! -f "$TARBALL" ]; then
    if ! mvn -q -B -Dmaven.repo.local="$M2" dependency:get \
      -Dartifact="$GAV" -Dtransitive=false \
      >"$STACK/registry-install.log" 2>&1; then
      echo "registry.sh: cannot fetch $GAV with mvn (see $STACK/registry-install.log)" >&2
      exit 69
    fi
  fi
  rm -rf "$APP.tmp" && mkdir -p "$APP.tmp"
  tar xzf "$TARBALL" -C "$APP.tmp"
  [ -f "$APP.tmp/$(basename "$JAR")" ] || {
    echo "registry.sh: $TARBALL has no $(basename "$JAR")" >&2; exit 69; }
  rm -rf "$APP" && mv "$APP.tmp" "$APP"
}

running() {
  [ -f "$STACK/registry.pid" ] && [ -f "$STACK/registry.url" ] &&
    kill -0 "$(cat "$STACK/registry.pid")" 2>/dev/null &&
    curl -fsS "$(cat "$STACK/registry.url")/subjects" >/dev/null 2>&1
}

start() {
  local port url pid
  if running; then cat "$STACK/registry.url"; return 0; fi
  stop
  install
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  url=http://127.0.0.1:$port/apis/ccompat/v7
  # setsid: its own process group, so stop can end the JVM and only it
  (cd "$APP" && exec setsid java -Xmx384m -XX:+UseSerialGC \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -jar "$JAR") >"$STACK/registry.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$STACK/registry.pid"
  for _ in $(seq 1 120); do
    if curl -fsS "$url/subjects" >/dev/null 2>&1; then
      echo "$url" | tee "$STACK/registry.url"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  echo "registry.sh: apicurio registry did not answer on 127.0.0.1:$port (see $STACK/registry.log)" >&2
  stop
  exit 69
}

stop() {
  local pid
  if [ -f "$STACK/registry.pid" ]; then
    pid=$(cat "$STACK/registry.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$STACK/registry.pid" "$STACK/registry.url"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) running && cat "$STACK/registry.url" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
