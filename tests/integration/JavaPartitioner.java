/*
 * drover - tests/integration/JavaPartitioner.java: the partition Kafka's
 * Java producer picks for each key, from kafka-clients itself.
 *
 *   java -cp '.cache/kafka-libs/*' JavaPartitioner.java N < keys
 *
 * reads one key per line (UTF-8) and prints "<partition> <key>" per key,
 * for a topic of N partitions: BuiltInPartitioner.partitionForKey, which
 * the default partitioner uses for every record with a key
 * (toPositive(murmur2(key)) % N).
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class JavaPartitioner {
    public static void main(String[] args) throws Exception {
        int n = Integer.parseInt(args[0]);
        BufferedReader in = new BufferedReader(
            new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String key;

        while ((key = in.readLine()) != null) {
            byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
            System.out.println(
                BuiltInPartitioner.partitionForKey(bytes, n) + " " + key);
        }
    }
}
