/*
 * drover - tests/integration/test_partitioner_matches_java.c: every
 * drover producer that writes tasks puts a key on the partition Kafka's
 * Java producer computes for it.
 *
 * Upstream producers are usually Java (kafka-clients: murmur2); a task
 * keyed by dataset must land on the partition theirs do, or a dataset's
 * tasks are split over two partitions and lose their order.  The expected
 * partitions come from Java itself: JavaPartitioner.java runs
 * BuiltInPartitioner.partitionForKey from the kafka-clients jar in
 * .cache/kafka-libs.  The records are read back with kcat.  Producers
 * covered: 'drover submit', 'drover dlq redrive --execute', and the admin
 * server's producer behind POST /api/tasks.
 */
#include "admin_kafka.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARTITIONS 12
#define NKEYS      200
#define TMO        20000

static char keys[NKEYS][64];
static int want[NKEYS]; /* Java's partition for keys[i] */

/* Dataset-like names of every length from 1 to 40 bytes (murmur2 reads 4
 * bytes at a time, so each tail length is covered), "customer" first. */
static void make_keys(void) {
        static const char *const words[] = {"customer", "orders", "inventory",
                                            "billing",  "ledger", "events"};
        int i;

        snprintf(keys[0], sizeof(keys[0]), "customer");
        for (i = 1; i < NKEYS; i++) {
                int len = 1 + i % 40;
                snprintf(keys[i], sizeof(keys[i]), "%s_%d_%s", words[i % 6], i,
                         "abcdefghijklmnopqrstuvwxyz0123");
                keys[i][len] = '\0';
        }
}

/* want[] from kafka-clients, through a single-file Java program (the
 * group setup). */
static int java_partitions(void **state) {
        const char *src = getenv("DROVER_SOURCE_DIR");
        char path[] = "/tmp/drv-keys-XXXXXX", cmd[1536], line[256];
        FILE *fp;
        int fd, i, n = 0;

        assert_non_null(src);
        snprintf(cmd, sizeof(cmd), "%s/.cache/kafka-libs", src);
        if (access(cmd, R_OK))
                fail_msg("no %s (scripts/deps.sh fetches it)", cmd);
        assert_true((fd = mkstemp(path)) >= 0);
        assert_non_null(fp = fdopen(fd, "w"));
        for (i = 0; i < NKEYS; i++)
                fprintf(fp, "%s\n", keys[i]);
        fclose(fp);
        snprintf(cmd, sizeof(cmd),
                 "java -Xmx256m -XX:+UseSerialGC -cp '%s/.cache/kafka-libs/*' "
                 "'%s/tests/integration/JavaPartitioner.java' %d <'%s'",
                 src, src, PARTITIONS, path);
        assert_non_null(fp = popen(cmd, "r"));
        while (fgets(line, sizeof(line), fp) && n < NKEYS) {
                char *sp = strchr(line, ' ');

                line[strcspn(line, "\n")] = '\0';
                assert_non_null(sp);
                assert_string_equal(sp + 1, keys[n]);
                want[n++] = atoi(line);
        }
        assert_int_equal(pclose(fp), 0);
        unlink(path);
        assert_int_equal(n, NKEYS);
        (void)state;
        return 0;
}

/* Every committed record of topic (kcat: "<partition> <key>") is on
 * Java's partition for its key; returns how many there were. */
static int check_partitions(const char *topic) {
        char cmd[512], line[256];
        FILE *fp;
        int n = 0, wrong = 0, i;

        snprintf(cmd, sizeof(cmd),
                 "kcat -C -b '%s' -t '%s' -e -q -X "
                 "isolation.level=read_committed -f '%%p %%k\\n'",
                 drv_test_brokers(), topic);
        assert_non_null(fp = popen(cmd, "r"));
        while (fgets(line, sizeof(line), fp)) {
                char *sp = strchr(line, ' ');

                line[strcspn(line, "\n")] = '\0';
                assert_non_null(sp);
                for (i = 0; i < NKEYS && strcmp(keys[i], sp + 1); i++)
                        ;
                if (i == NKEYS)
                        fail_msg("unexpected key \"%s\"", sp + 1);
                if (atoi(line) != want[i] && wrong++ < 5)
                        print_error("key \"%s\": partition %d, java %d\n",
                                    keys[i], atoi(line), want[i]);
                n++;
        }
        assert_int_equal(pclose(fp), 0);
        assert_int_equal(wrong, 0);
        return n;
}

/* ---------------------------------------------------------------- tests */

static void test_submit_puts_each_dataset_where_java_does(void **s) {
        const char *topic = drv_test_unique("part-submit");
        int i;

        (void)s;
        drv_test_create_topic(topic, PARTITIONS);
        for (i = 0; i < NKEYS; i++)
                if (drv_test_cli("submit --entity component:default/x "
                                 "--dataset '%s' --topic '%s' --brokers '%s'",
                                 keys[i], topic, drv_test_brokers()))
                        fail_msg("submit %s: %s", keys[i], drv_test_err);
        assert_int_equal(check_partitions(topic), NKEYS);
}

/* The producer behind POST /api/tasks. */
static void test_admin_producer_puts_each_dataset_where_java_does(void **s) {
        const char *topic = drv_test_unique("part-admin");
        char errstr[512];
        drv_admin_kafka_t *ak;
        int i;

        (void)s;
        drv_test_create_topic(topic, PARTITIONS);
        ak = drv_admin_kafka_new(drv_test_brokers(), topic, errstr,
                                 sizeof(errstr));
        if (!ak)
                fail_msg("%s", errstr);
        for (i = 0; i < NKEYS; i++)
                if (drv_admin_kafka_produce(ak, keys[i], "task", 4, errstr,
                                            sizeof(errstr)))
                        fail_msg("%s", errstr);
        drv_admin_kafka_destroy(ak);
        assert_int_equal(check_partitions(topic), NKEYS);
}

/* A dead letter goes back to the tasks topic by its key, on Java's
 * partition, whatever partition of the DLQ it was on. */
static void test_redrive_puts_each_dataset_where_java_does(void **s) {
        const char *kv[] = {"linger.ms", "0", NULL};
        char topic[128], dlq[160];
        drv_dlq_info_t in;
        rd_kafka_t *rkp;
        int i;

        (void)s;
        snprintf(topic, sizeof(topic), "%s", drv_test_unique("part-redrive"));
        snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
        drv_test_create_topic(topic, PARTITIONS);
        drv_test_create_topic(dlq, 3);
        rkp = drv_test_kafka(RD_KAFKA_PRODUCER, kv);
        for (i = 0; i < NKEYS; i++) {
                memset(&in, 0, sizeof(in));
                snprintf(in.error_class, sizeof(in.error_class), "sql");
                snprintf(in.dataset, sizeof(in.dataset), "%s", keys[i]);
                drv_uuid4(in.task_id);
                in.attempts = 1;
                in.first_failure_ms = in.last_failure_ms = drv_now_ms();
                assert_int_equal(
                    rd_kafka_producev(
                        rkp, RD_KAFKA_V_TOPIC(dlq), RD_KAFKA_V_PARTITION(i % 3),
                        RD_KAFKA_V_KEY(keys[i], strlen(keys[i])),
                        RD_KAFKA_V_VALUE("task", 4),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_HEADERS(drv_dlq_headers_new(&in)),
                        RD_KAFKA_V_END),
                    0);
        }
        assert_int_equal(rd_kafka_flush(rkp, TMO), 0);
        rd_kafka_destroy(rkp);
        if (drv_test_cli("dlq redrive --execute --brokers '%s' --topic '%s' "
                         "--group '%s'",
                         drv_test_brokers(), topic,
                         drv_test_unique("part-redrive-g")))
                fail_msg("redrive: %s", drv_test_err);
        assert_int_equal(check_partitions(topic), NKEYS);
}

/* DROVER_KAFKA_PARTITIONER cannot put a command back on another
 * partitioner; the same value is accepted. */
static void test_partitioner_override_is_refused(void **s) {
        const char *topic = drv_test_unique("part-override");

        (void)s;
        drv_test_create_topic(topic, PARTITIONS);
        setenv("DROVER_KAFKA_PARTITIONER", "consistent_random", 1);
        assert_int_not_equal(drv_test_cli("submit --entity component:default/x "
                                          "--dataset customer --topic '%s' "
                                          "--brokers '%s'",
                                          topic, drv_test_brokers()),
                             0);
        assert_non_null(strstr(drv_test_err,
                               "drover: DROVER_KAFKA_PARTITIONER: "
                               "kafka.partitioner is set by drover"));
        setenv("DROVER_KAFKA_PARTITIONER", "murmur2_random", 1);
        assert_int_equal(drv_test_cli("submit --entity component:default/x "
                                      "--dataset customer --topic '%s' "
                                      "--brokers '%s'",
                                      topic, drv_test_brokers()),
                         0);
        unsetenv("DROVER_KAFKA_PARTITIONER");
        assert_int_equal(check_partitions(topic), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_submit_puts_each_dataset_where_java_does),
            cmocka_unit_test(
                test_admin_producer_puts_each_dataset_where_java_does),
            cmocka_unit_test(test_redrive_puts_each_dataset_where_java_does),
            cmocka_unit_test(test_partitioner_override_is_refused),
        };

        drv_test_brokers(); /* skip (77) without a stack */
        make_keys();
        return cmocka_run_group_tests(tests, java_partitions, NULL);
}
