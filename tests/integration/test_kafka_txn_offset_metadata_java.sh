#!/usr/bin/env bash
# drover - tests/integration/test_kafka_txn_offset_metadata_java.sh
#
# Kafka's own client reads the offset metadata librdkafka 2.0.2 sent in
# transactions: test_kafka_txn_offset_metadata (C) commits, aborts, clears
# and size-tests metadata and records every read-back of
# rd_kafka_committed() ("group topic partition offset hex(metadata)");
# the Java AdminClient's listConsumerGroupOffsets() must then give, per
# partition, the same offset and OffsetAndMetadata.metadata() as the last
# read-back - the 4096-byte value included (docs/decisions.md, "Offset
# commit metadata").  The Java side runs as a single source file
# (java File.java): the JRE's jdk.compiler module compiles it, no javac.
set -euo pipefail
: "${DROVER_SOURCE_DIR:?}" "${DROVER_BUILD_DIR:?}"
if [ -z "${DROVER_TEST_BROKERS:-}" ]; then
  [ "${DROVER_REQUIRE_STACK:-}" = 1 ] && { echo "no stack" >&2; exit 1; }
  echo "DROVER_TEST_BROKERS not set: skipping"; exit 77
fi
LIBS=$DROVER_SOURCE_DIR/.cache/kafka-libs
command -v java >/dev/null || { echo "no java: skipping"; exit 77; }
[ -d "$LIBS" ] || { echo "no $LIBS (scripts/deps.sh fetches it): skipping"; exit 77; }
writer=$DROVER_BUILD_DIR/tests/test_kafka_txn_offset_metadata
[ -x "$writer" ] || { echo "FAIL: no $writer" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DROVER_TXN_METADATA_RECORD=$work/readbacks "$writer" >"$work/writer.log" 2>&1 ||
  fail "test_kafka_txn_offset_metadata: $(tail -n 20 "$work/writer.log")"
[ -s "$work/readbacks" ] || fail "the C test recorded no read-back"

cat >"$work/OffsetMetadataCheck.java" <<'JAVA'
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/* args: brokers readbacks-file.  Prints one line per mismatch and a
 * summary "compared N partitions, longest metadata M"; exits 1 on any
 * mismatch. */
public class OffsetMetadataCheck {
    public static void main(String[] args) throws Exception {
        Map<String, String[]> last = new LinkedHashMap<>();
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            String[] f = line.split(" ");
            last.put(f[0] + " " + f[1] + " " + f[2], f);
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        int bad = 0, longest = 0;
        try (Admin admin = Admin.create(props)) {
            for (String[] f : last.values()) {
                Map<TopicPartition, OffsetAndMetadata> offsets =
                    admin.listConsumerGroupOffsets(f[0])
                        .partitionsToOffsetAndMetadata().get();
                OffsetAndMetadata om =
                    offsets.get(new TopicPartition(f[1], Integer.parseInt(f[2])));
                String want = f[4].equals("-") ? ""
                    : new String(HexFormat.of().parseHex(f[4]), StandardCharsets.UTF_8);
                if (om == null || om.offset() != Long.parseLong(f[3])
                    || !want.equals(om.metadata())) {
                    System.out.printf("%s %s[%s]: librdkafka read offset %s metadata \"%.40s\", AdminClient %s%n",
                                      f[0], f[1], f[2], f[3], want, om);
                    bad++;
                } else {
                    longest = Math.max(longest, om.metadata().length());
                }
            }
        }
        System.out.printf("compared %d partitions, longest metadata %d%n",
                          last.size(), longest);
        System.exit(bad == 0 ? 0 : 1);
    }
}
JAVA

java -Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dlog4j2.level=error -cp "$LIBS/*" "$work/OffsetMetadataCheck.java" \
  "$DROVER_TEST_BROKERS" "$work/readbacks" >"$work/java.out" 2>"$work/java.err" ||
  fail "AdminClient disagrees: $(cat "$work/java.out") $(tail -n 5 "$work/java.err")"
# 7 partitions over the C test's four groups; the longest is the
# 4096-byte value (offset.metadata.max.bytes) the size test leaves
grep -qx "compared 7 partitions, longest metadata 4096" "$work/java.out" ||
  fail "unexpected summary: $(cat "$work/java.out")"
echo "ok: Kafka's AdminClient reads the metadata librdkafka committed in transactions"
