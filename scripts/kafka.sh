#!/usr/bin/env bash
# drover - scripts/kafka.sh: a throwaway Apache Kafka (KRaft) on 127.0.0.1.
#
#   scripts/kafka.sh start [--nodes 1|3]   start; prints the bootstrap
#   scripts/kafka.sh stop                   stop what start started
#   scripts/kafka.sh status                 running nodes and bootstrap
#   scripts/kafka.sh kill NODE | restart NODE [--hard]   (fault tests)
#
# Every node is broker+controller, on free ports, with its log dir under
# $DROVER_STACK_DIR/kafka/.  The bootstrap address is written to
# $DROVER_STACK_DIR/kafka.bootstrap for other scripts and tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KDIR=$DROVER_STACK_DIR/kafka
LIBS=$DROVER_CACHE_DIR/kafka-libs
BOOT=$DROVER_STACK_DIR/kafka.bootstrap

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

node_running() { pid_alive "$KDIR/node$1/pid"; }

start_node() {
  local i=$1 heap=$2 d=$KDIR/node$1
  # A fresh JVM on a busy 2-core machine: keep it small and quick to start.
  (
    cd "$d"
    exec setsid java -Xms128m -Xmx"$heap" -XX:+UseSerialGC \
      -XX:TieredStopAtLevel=1 -Xss512k \
      -Dlog4j2.configurationFile="$KDIR/log4j2.properties" \
      -Dkafka.logs.dir="$d" -cp "$LIBS/*" kafka.Kafka "$d/server.properties" \
      >"$d/stdout.log" 2>&1
  ) &
  pid_write "$d/pid" $!
}

write_log4j() {
  cat >"$KDIR/log4j2.properties" <<'L4J'
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
L4J
}

cmd_start() {
  local nodes=1 i voters="" boot="" heap rf
  while [ $# -gt 0 ]; do
    case $1 in
    --nodes) nodes=$2; shift 2 ;;
    *) die "unknown option \"$1\"" ;;
    esac
  done
  [ "$nodes" = 1 ] || [ "$nodes" = 3 ] || die "--nodes must be 1 or 3"
  [ -d "$LIBS" ] || die "kafka jars missing in $LIBS: run scripts/deps.sh"
  if [ -f "$BOOT" ] && node_running 1; then
    note "already running"
    cat "$BOOT"
    return 0
  fi
  cmd_stop >/dev/null 2>&1 || true
  rm -rf "$KDIR"
  mkdir -p "$KDIR"
  write_log4j
  heap=512m
  rf=1
  if [ "$nodes" = 3 ]; then heap=384m; rf=3; fi
  declare -a bport cport
  for ((i = 1; i <= nodes; i++)); do
    bport[$i]=$(free_port)
    cport[$i]=$(free_port)
    voters+="${voters:+,}$i@127.0.0.1:${cport[$i]}"
    boot+="${boot:+,}127.0.0.1:${bport[$i]}"
  done
  local cluster
  cluster=$(java -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
  for ((i = 1; i <= nodes; i++)); do
    local d=$KDIR/node$i
    mkdir -p "$d/data"
    cat >"$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${bport[$i]},CONTROLLER://127.0.0.1:${cport[$i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${bport[$i]}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$(( rf > 1 ? 2 : 1 ))
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$(( rf > 1 ? 2 : 1 ))
transaction.state.log.num.partitions=12
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.threads=1
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$(( rf > 1 ? 2 : 1 ))
PROPS
    echo "${bport[$i]}" >"$d/port"
    java -cp "$LIBS/*" kafka.tools.StorageTool format -t "$cluster" \
      -c "$d/server.properties" >"$d/format.log" 2>&1 ||
      die "formatting node $i failed: $(tail -n 3 "$d/format.log")"
  done
  for ((i = 1; i <= nodes; i++)); do start_node "$i" "$heap"; done
  echo "$nodes" >"$KDIR/nodes"
  echo "$heap" >"$KDIR/heap"
  for ((i = 1; i <= nodes; i++)); do
    wait_port "${bport[$i]}" 90 ||
      die "node $i did not listen on ${bport[$i]}: see $KDIR/node$i/server.log"
  done
  wait_ready "$boot" "$nodes" || die "cluster not ready: see $KDIR/node*/server.log"
  echo "$boot" >"$BOOT"
  echo "$boot"
}

# The brokers answer metadata requests and see each other.
wait_ready() {
  local boot=$1 nodes=$2 i n
  for ((i = 0; i < 120; i++)); do
    n=$(kcat -b "$boot" -L -m 5 2>/dev/null | grep -c '^  broker ' || true)
    [ "$n" -ge "$nodes" ] && return 0
    sleep 0.5
  done
  return 1
}

cmd_stop() {
  local d
  for d in "$KDIR"/node*; do
    [ -d "$d" ] || continue
    stop_pid "$d/pid" 30
  done
  rm -f "$BOOT"
  note "stopped"
}

cmd_status() {
  local d up=0
  for d in "$KDIR"/node*; do
    [ -d "$d" ] || continue
    if pid_alive "$d/pid"; then
      echo "$(basename "$d"): running (pid $(pid_read "$d/pid"), port $(cat "$d/port"))"
      up=1
    else
      echo "$(basename "$d"): stopped"
    fi
  done
  [ -f "$BOOT" ] && echo "bootstrap: $(cat "$BOOT")"
  [ $up = 1 ]
}

# Fault injection for chaos tests: kill -9 (kill) or restart a node.
cmd_kill() {
  local d=$KDIR/node$1
  local pid i
  [ -f "$d/pid" ] || die "node $1 is not running"
  pid=$(pid_read "$d/pid") || { rm -f "$d/pid"; return 0; } # already gone
  kill -KILL "$pid" 2>/dev/null || true
  # gone for real before anyone probes its port again
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$d/pid"
}

cmd_restart() {
  local i=$1 hard=${2:-} d=$KDIR/node$1
  if [ "$hard" = --hard ]; then cmd_kill "$i"; else stop_pid "$d/pid" 60; fi
  start_node "$i" "$(cat "$KDIR/heap")"
  wait_port "$(cat "$d/port")" 90 || die "node $i did not come back"
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) cmd_stop ;;
status) cmd_status ;;
kill) cmd_kill "${2:?node}" ;;
restart) cmd_restart "${2:?node}" "${3:-}" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 2 ;;
esac
