/*
 * tests/integration/JavaAvroInterop.java: task records written by Apache
 * Avro for Java with writer schemas that need schema resolution to be
 * read by drover's reader schema, and what Java's own resolving reader
 * makes of them.  Run by test_schema_interop as a single-file program
 * (java -cp '.cache/avro-libs/*' JavaAvroInterop.java ...).
 *
 * usage: JavaAvroInterop DIR REGISTRY_URL SCHEMA_DIR SUBJECT
 *
 * Writers (each MigrationTask v2 with one field changed):
 *   micros: requested_at {"type":"long","logicalType":"timestamp-micros"},
 *           written from an Instant through Java's micros conversion;
 *   bytes:  params {"type":"map","values":"bytes"};
 *   badutf8: the bytes writer, a param value that is not UTF-8.
 * For each: DIR/java-NAME-cf.bin (Confluent framing, the writer schema
 * registered under SUBJECT), DIR/java-NAME-so.bin (single-object
 * encoding, Java's fingerprint), DIR/java-NAME.avsc (the writer schema)
 * and DIR/java-NAME.json: the record as Java's GenericDatumReader reads
 * it with the writer schema and drover's reader schema, plus
 * "written_ms", the instant the writer meant, in epoch milliseconds.
 */
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;

public class JavaAvroInterop {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Instant AT = Instant.parse("2025-11-25T08:00:00.123456Z");
    static Path dir;
    static String registry, subject;
    static Schema reader;

    public static void main(String[] args) throws Exception {
        dir = Path.of(args[0]);
        registry = args[1];
        subject = args[3];
        String v2 = Files.readString(Path.of(args[2], "MigrationTask.v2.avsc"));
        reader = new Schema.Parser().parse(v2);

        Schema micros = new Schema.Parser().parse(
            v2.replace("\"timestamp-millis\"", "\"timestamp-micros\""));
        Schema bytes = new Schema.Parser().parse(v2.replace(
            "{\"type\": \"map\", \"values\": \"string\"}",
            "{\"type\": \"map\", \"values\": \"bytes\"}"));
        if (micros.equals(reader) || bytes.equals(reader))
            throw new IllegalStateException("writer schema edit missed");

        Map<String, byte[]> params = new LinkedHashMap<>();
        params.put("tenant", "acme".getBytes(StandardCharsets.UTF_8));
        params.put("region", "eu-west-1 \u00e9".getBytes(StandardCharsets.UTF_8));
        write("micros", micros, params);
        write("bytes", bytes, params);
        params.put("blob", new byte[] {(byte) 0xff, 0x41});
        write("badutf8", bytes, params);
    }

    static void write(String name, Schema writer, Map<String, byte[]> params)
        throws Exception {
        boolean bytesValues =
            writer.getField("params").schema().getValueType().getType()
            == Schema.Type.BYTES;
        GenericData data = new GenericData();
        data.addLogicalTypeConversion(new TimeConversions.TimestampMicrosConversion());
        data.addLogicalTypeConversion(new TimeConversions.TimestampMillisConversion());

        GenericRecord r = new GenericData.Record(writer);
        r.put("task_id", "6f1c2b1e-7d4a-4a53-9a55-2b8f3c1d0e9f");
        r.put("entity_ref", "component:default/customer-dataset-v2-migration");
        r.put("dataset", "customer");
        r.put("requested_at", AT); /* through the writer's conversion */
        r.put("requested_by", "alice@example.com");
        r.put("dry_run", true);
        Map<String, Object> p = new LinkedHashMap<>();
        for (Map.Entry<String, byte[]> e : params.entrySet())
            p.put(e.getKey(), bytesValues
                                  ? ByteBuffer.wrap(e.getValue())
                                  : new String(e.getValue(), StandardCharsets.UTF_8));
        r.put("params", p);
        r.put("priority", 7);
        r.put("replay_of", "11111111-2222-4333-8444-555555555555");

        ByteArrayOutputStream out = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
        new GenericDatumWriter<GenericRecord>(writer, data).write(r, enc);
        enc.flush();
        byte[] datum = out.toByteArray();

        int id = register(writer);
        ByteBuffer cf = ByteBuffer.allocate(5 + datum.length);
        cf.put((byte) 0).putInt(id).put(datum);
        Files.write(dir.resolve("java-" + name + "-cf.bin"), cf.array());
        long fp = SchemaNormalization.parsingFingerprint64(writer);
        ByteBuffer so = ByteBuffer.allocate(10 + datum.length);
        so.put((byte) 0xc3).put((byte) 0x01);
        so.order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(fp);
        so.put(datum);
        Files.write(dir.resolve("java-" + name + "-so.bin"), so.array());
        Files.writeString(dir.resolve("java-" + name + ".avsc"), writer.toString());

        /* Java's resolving reader, drover's reader schema, no conversions
         * (a GenericRecord reader's default) */
        GenericRecord got = new GenericDatumReader<GenericRecord>(writer, reader)
                                .read(null, DecoderFactory.get().binaryDecoder(datum, null));
        ObjectNode j = JSON.createObjectNode();
        for (String f : new String[] {"task_id", "entity_ref", "dataset", "requested_by",
                 "replay_of"})
            j.put(f, String.valueOf(got.get(f)));
        j.put("requested_at", (Long) got.get("requested_at"));
        j.put("written_ms", AT.toEpochMilli());
        j.put("dry_run", (Boolean) got.get("dry_run"));
        j.put("priority", (Integer) got.get("priority"));
        ObjectNode jp = j.putObject("params");
        for (Map.Entry<?, ?> e : ((Map<?, ?>) got.get("params")).entrySet())
            jp.put(e.getKey().toString(), e.getValue().toString());
        Files.writeString(dir.resolve("java-" + name + ".json"), JSON.writeValueAsString(j));
    }

    /* POST /subjects/{subject}/versions: the id the registry gives */
    static int register(Schema writer) throws Exception {
        String body = JSON.writeValueAsString(Map.of("schema", writer.toString()));
        HttpRequest req =
            HttpRequest.newBuilder(URI.create(registry + "/subjects/"
                                              + URLEncoder.encode(subject, StandardCharsets.UTF_8)
                                              + "/versions"))
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
        HttpResponse<String> res =
            HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
        if (res.statusCode() != 200)
            throw new IllegalStateException("register: " + res.statusCode() + " " + res.body());
        return JSON.readTree(res.body()).get("id").asInt();
    }
}
