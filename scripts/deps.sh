#!/usr/bin/env bash
# drover - scripts/deps.sh: install everything a fresh Debian 12 machine
# needs to build, test and demo drover.  Idempotent: a second run only
# checks.  Needs root (or sudo) for apt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  librdkafka-dev libavro-dev libcurl4-openssl-dev libjansson-dev libpq-dev
  libyaml-dev libmicrohttpd-dev libcmocka-dev
  clang clang-format llvm libclang-rt-14-dev valgrind
  postgresql-15 postgresql-client-15
  pgbouncer # scripts/pgbouncer.sh runs its own; the packaged service is unused
  openjdk-17-jre-headless maven
  openjdk-17-jdk-headless # java File.java: test_partitioner_matches_java
  python3 python3-avro python3-confluent-kafka python3-psycopg2 python3-yaml
  kcat gnuplot-nox procps iproute2
  python3-venv linux-perf
  chromium fonts-liberation systemd
  libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  note "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

# Jars resolved through a pom.xml (scripts/NAME/pom.xml) into a
# git-ignored cache directory, again only when the pom changed.
resolve_jars() { # what pom dir
  local stamp=$3/.pom.sha want
  want=$(sha256sum "$2" | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || return 0
  note "resolving $1"
  rm -rf "$3"
  mvn -q -B -f "$2" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$3"
  echo "$want" >"$stamp"
}

# The Kafka broker (KRaft) and its tools; Apache Avro for Java (the
# interop test's other implementation).
KAFKA_LIBS=$DROVER_CACHE_DIR/kafka-libs
AVRO_LIBS=$DROVER_CACHE_DIR/avro-libs
resolve_jars "the Kafka broker jars" "$DROVER_ROOT/scripts/kafka/pom.xml" \
  "$KAFKA_LIBS"
resolve_jars "the Apache Avro for Java jars" \
  "$DROVER_ROOT/scripts/java-avro/pom.xml" "$AVRO_LIBS"
note "ok: packages installed, Kafka jars in $KAFKA_LIBS, Avro jars in $AVRO_LIBS"
