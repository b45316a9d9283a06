/*
 * tests/integration/test_dlq_redrive.c: 'drover dlq list' and
 * 'drover dlq redrive' against the real broker.
 *
 * Dead letters are written the way the worker writes them: in a Kafka
 * transaction, with headers from drv_dlq_headers_new().  Each test has
 * its own tasks topic (and so its own <topic>.dlq) and group.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

#define TMO 20000

/* ---------------------------------------------------------------- kafka */

typedef struct {
        const char *key;
        const char *cls;
        const char *dataset;
        int64_t retry_after_ms;
        int redrive_count;
        int32_t partition;
} dl_t;

static void fill_info(drv_dlq_info_t *in, const dl_t *d, int i) {
        memset(in, 0, sizeof(*in));
        snprintf(in->error_class, sizeof(in->error_class), "%s", d->cls);
        snprintf(in->error_message, sizeof(in->error_message),
                 "failure number %d", i);
        in->retryable = !strcmp(d->cls, "retries_exhausted");
        snprintf(in->dataset, sizeof(in->dataset), "%s", d->dataset);
        drv_uuid4(in->task_id);
        in->attempts = 3;
        in->first_failure_ms = drv_now_ms() - 60000;
        in->last_failure_ms = drv_now_ms();
        in->retry_after_ms = d->retry_after_ms;
        snprintf(in->original_topic, sizeof(in->original_topic), "tasks");
        in->original_partition = 0;
        in->original_offset = i;
        snprintf(in->worker, sizeof(in->worker), "test");
        snprintf(in->consumer_group, sizeof(in->consumer_group), "drover");
        in->redrive_count = d->redrive_count;
}

/* Write dead letters in one transaction; commit, or flush then abort. */
static void produce_dead_letters(const char *dlq_topic, const dl_t *dls,
                                 size_t n, int commit) {
        const char *kv[] = {"transactional.id", drv_test_unique("dlq-tx"),
                            "linger.ms", "0", NULL};
        rd_kafka_t *rkp = drv_test_kafka(RD_KAFKA_PRODUCER, kv);
        drv_dlq_info_t in;
        char value[64];
        size_t i;

        assert_null(rd_kafka_init_transactions(rkp, TMO));
        assert_null(rd_kafka_begin_transaction(rkp));
        for (i = 0; i < n; i++) {
                fill_info(&in, &dls[i], (int)i);
                snprintf(value, sizeof(value), "value-%zu", i);
                assert_int_equal(
                    rd_kafka_producev(
                        rkp, RD_KAFKA_V_TOPIC(dlq_topic),
                        RD_KAFKA_V_PARTITION(dls[i].partition),
                        RD_KAFKA_V_KEY(dls[i].key, strlen(dls[i].key)),
                        RD_KAFKA_V_VALUE(value, strlen(value)),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_HEADERS(drv_dlq_headers_new(&in)),
                        RD_KAFKA_V_END),
                    0);
        }
        if (commit)
                assert_null(rd_kafka_commit_transaction(rkp, TMO));
        else {
                /* on the broker first, or the abort proves nothing */
                assert_int_equal(rd_kafka_flush(rkp, TMO), 0);
                assert_null(rd_kafka_abort_transaction(rkp, TMO));
        }
        rd_kafka_destroy(rkp);
}

/* Committed records on topic (read_committed, all partitions to EOF);
 * of them, redrive markers into *markersp and markers whose value is null
 * (a tombstone, were the topic compacted) into *nullp. */
static int scan_committed(const char *topic, int partitions, int *markersp,
                          int *nullp) {
        const char *kv[] = {"group.id",
                            drv_test_unique("count"),
                            "isolation.level",
                            "read_committed",
                            "enable.partition.eof",
                            "true",
                            NULL};
        rd_kafka_t *rk = drv_test_kafka(RD_KAFKA_CONSUMER, kv);
        rd_kafka_topic_partition_list_t *l;
        int n = 0, eof = 0, p;
        int64_t deadline = drv_mono_ms() + TMO;

        l = rd_kafka_topic_partition_list_new(partitions);
        for (p = 0; p < partitions; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        while (eof < partitions && drv_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        eof++;
                else if (!m->err) {
                        rd_kafka_headers_t *h = NULL;
                        const void *v;
                        size_t vlen;
                        n++;
                        if (!rd_kafka_message_headers(m, &h) &&
                            !rd_kafka_header_get_last(h, DRV_DLQ_H_REDRIVEN_OF,
                                                      &v, &vlen)) {
                                (*markersp)++;
                                *nullp += !m->payload;
                        }
                }
                rd_kafka_message_destroy(m);
        }
        assert_int_equal(eof, partitions);
        rd_kafka_destroy(rk);
        return n;
}

static int count_committed(const char *topic, int partitions) {
        int markers = 0, nulls = 0;

        return scan_committed(topic, partitions, &markers, &nulls);
}

/* ------------------------------------------------------------ the CLI */


static int count_lines_with(const char *text, const char *needle) {
        const char *line = text;
        int n = 0;

        while (line && *line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                char buf[1024];
                snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
                if (strstr(buf, needle))
                        n++;
                line = nl ? nl + 1 : NULL;
        }
        return n;
}

/* A fresh tasks topic and its DLQ (3 partitions each), made current for
 * the drover child through DROVER_TOPIC / DROVER_GROUP. */
static const char *fresh_topics(char *dlq, size_t size) {
        static char topic[128];

        snprintf(topic, sizeof(topic), "%s", drv_test_unique("dlqt"));
        snprintf(dlq, size, "%s.dlq", topic);
        drv_test_create_topic(topic, 3);
        drv_test_create_topic(dlq, 3);
        setenv("DROVER_BROKERS", drv_test_brokers(), 1);
        setenv("DROVER_TOPIC", topic, 1);
        setenv("DROVER_GROUP", drv_test_unique("dlqg"), 1);
        return topic;
}

static const dl_t mixed[] = {
    {"customer", "decode", "customer", 0, 0, 0},
    {"orders", "version_conflict", "orders", 0, 0, 1},
    {"customer", "retries_exhausted", "customer", 1, 0, 2},
    {"orders", "retries_exhausted", "orders", 1, 0, 0},
    {"billing", "sql", "billing", 0, 0, 1},
};
#define MIXED_CNT (sizeof(mixed) / sizeof(mixed[0]))

/* Lines of `kcat -f '%k %s %h'` over topic (read_committed) holding
 * needle; -1 if kcat fails. */
static int kcat_count(const char *topic, const char *needle) {
        char cmd[512], line[4096];
        FILE *fp;
        int n = 0;

        snprintf(cmd, sizeof(cmd),
                 "kcat -C -b '%s' -t '%s' -e -q -X "
                 "isolation.level=read_committed -f '%%k %%s %%h\\n' 2>&1",
                 drv_test_brokers(), topic);
        fp = popen(cmd, "r");
        assert_non_null(fp);
        while (fgets(line, sizeof(line), fp))
                n += strstr(line, needle) != NULL;
        return pclose(fp) == 0 ? n : -1;
}

/* ---------------------------------------------------------------- tests */

static void test_list_shows_dead_letters_text_json_and_filters(void **s) {
        char dlq[160];
        json_t *arr, *row;
        json_error_t jerr;

        (void)s;
        fresh_topics(dlq, sizeof(dlq));
        produce_dead_letters(dlq, mixed, MIXED_CNT, 1);

        assert_int_equal(drv_test_cli("dlq list"), 0);
        assert_non_null(strstr(drv_test_out, "CLASS"));
        assert_int_equal(count_lines_with(drv_test_out, "pending"), 5);
        assert_int_equal(count_lines_with(drv_test_out, "retries_exhausted"),
                         2);
        assert_int_equal(count_lines_with(drv_test_out, "failure number 4"), 1);

        assert_int_equal(drv_test_cli("dlq list --class retries_exhausted"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "pending"), 2);
        assert_int_equal(count_lines_with(drv_test_out, "decode"), 0);
        assert_int_equal(drv_test_cli("dlq list --dataset orders"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "pending"), 2);
        assert_int_equal(count_lines_with(drv_test_out, "customer"), 0);
        assert_int_equal(drv_test_cli("dlq list --since -1h"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "pending"), 5);
        assert_int_equal(drv_test_cli("dlq list --since 2099-01-01T00:00:00Z"),
                         0);
        assert_int_equal(count_lines_with(drv_test_out, "pending"), 0);

        assert_int_equal(drv_test_cli("dlq list --json --dataset billing"), 0);
        arr = json_loads(drv_test_out, 0, &jerr);
        if (!arr)
                fail_msg("not json: %s: %s", jerr.text, drv_test_out);
        assert_int_equal(json_array_size(arr), 1);
        row = json_array_get(arr, 0);
        assert_string_equal(
            json_string_value(json_object_get(row, "error_class")), "sql");
        assert_string_equal(json_string_value(json_object_get(row, "key")),
                            "billing");
        assert_int_equal(json_integer_value(json_object_get(row, "attempts")),
                         3);
        assert_int_equal(json_integer_value(json_object_get(row, "partition")),
                         1);
        assert_string_equal(json_string_value(json_object_get(row, "status")),
                            "pending");
        json_decref(arr);

        assert_int_equal(drv_test_cli("dlq list --since yesterday-ish"), 2);
        assert_non_null(strstr(drv_test_err, "drover: invalid --since"));
}

/* read_committed: dead letters of an aborted worker transaction are not
 * dead letters. */
static void test_list_hides_aborted_dead_letters(void **s) {
        char dlq[160];

        (void)s;
        fresh_topics(dlq, sizeof(dlq));
        produce_dead_letters(dlq, mixed, 2, 0);
        produce_dead_letters(dlq, mixed + 4, 1, 1);
        assert_int_equal(drv_test_cli("dlq list"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "pending"), 1);
        assert_int_equal(count_lines_with(drv_test_out, "billing"), 1);
}

static void test_redrive_dry_run_changes_nothing(void **s) {
        char dlq[160];
        const char *topic;

        (void)s;
        topic = fresh_topics(dlq, sizeof(dlq));
        produce_dead_letters(dlq, mixed, MIXED_CNT, 1);
        assert_int_equal(drv_test_cli("dlq redrive"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "would-redrive"), 5);
        assert_non_null(strstr(drv_test_out, "dry run: would redrive 5"));
        assert_int_equal(count_committed(topic, 3), 0);
        assert_int_equal(count_committed(dlq, 3), MIXED_CNT);
        /* and a second dry run still sees everything */
        assert_int_equal(drv_test_cli("dlq redrive"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "would-redrive"), 5);
}

/* A filtered redrive moves exactly the selected records, once; the ones
 * it skipped are still there for a later redrive. */
static void test_redrive_moves_selected_exactly_once(void **s) {
        char dlq[160];
        const char *topic;

        (void)s;
        topic = fresh_topics(dlq, sizeof(dlq));
        produce_dead_letters(dlq, mixed, MIXED_CNT, 1);
        assert_int_equal(drv_test_cli("dlq redrive --execute --class "
                                      "retries_exhausted"),
                         0);
        assert_non_null(strstr(drv_test_out, "redrove 2 record(s)"));
        assert_int_equal(count_committed(topic, 3), 2);

        assert_int_equal(drv_test_cli("dlq redrive --execute --class "
                                      "retries_exhausted"),
                         0);
        assert_non_null(strstr(drv_test_out, "redrove 0 record(s)"));
        assert_int_equal(count_committed(topic, 3), 2);

        /* the skipped ones were not lost */
        assert_int_equal(drv_test_cli("dlq redrive --execute --dataset orders"),
                         0);
        assert_non_null(strstr(drv_test_out, "redrove 1 record(s)"));
        assert_int_equal(drv_test_cli("dlq redrive --execute --max 1"), 0);
        assert_non_null(strstr(drv_test_out, "redrove 1 record(s)"));
        assert_int_equal(drv_test_cli("dlq redrive --execute"), 0);
        assert_non_null(strstr(drv_test_out, "redrove 1 record(s)"));
        assert_int_equal(drv_test_cli("dlq redrive --execute"), 0);
        assert_non_null(strstr(drv_test_out, "redrove 0 record(s)"));
        assert_int_equal(count_committed(topic, 3), MIXED_CNT);

        /* each task came back once, attempts and redrive count in its
         * headers */
        assert_int_equal(kcat_count(topic, "drover.attempts=3,"
                                           "drover.redrive.count=1,"),
                         MIXED_CNT);

        /* list shows them all redriven */
        assert_int_equal(drv_test_cli("dlq list"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "redriven"), 5);

        /* one marker per redriven dead letter, each with an empty value,
         * not a null one (docs/decisions.md) */
        int markers = 0, nulls = 0;
        scan_committed(dlq, 3, &markers, &nulls);
        assert_int_equal(markers, MIXED_CNT);
        assert_int_equal(nulls, 0);
}

static void test_redrive_due_respects_retry_after(void **s) {
        const dl_t dls[] = {
            {"a", "retries_exhausted", "a", 1, 0, 0},
            {"b", "retries_exhausted", "b", drv_now_ms() + 3600000, 0, 0},
            {"c", "decode", "c", 0, 0, 1},
        };
        char dlq[160];
        const char *topic;

        (void)s;
        topic = fresh_topics(dlq, sizeof(dlq));
        produce_dead_letters(dlq, dls, 3, 1);
        assert_int_equal(drv_test_cli("dlq redrive --due --execute"), 0);
        assert_non_null(strstr(drv_test_out, "redrove 1 record(s)"));
        assert_int_equal(count_lines_with(drv_test_out, "redriven"), 1);
        assert_int_equal(count_committed(topic, 3), 1);
        assert_int_equal(drv_test_cli("dlq list --json --dataset a"), 0);
        assert_non_null(strstr(drv_test_out, "\"redriven\""));
        assert_int_equal(drv_test_cli("dlq list --json --dataset b"), 0);
        assert_non_null(strstr(drv_test_out, "\"pending\""));
}

static void test_redrive_parks_after_max_redrives(void **s) {
        const dl_t dls[] = {
            {"a", "retries_exhausted", "a", 1, 5, 0},
            {"b", "retries_exhausted", "b", 1, 2, 0},
        };
        char dlq[160];
        const char *topic;

        (void)s;
        topic = fresh_topics(dlq, sizeof(dlq));
        produce_dead_letters(dlq, dls, 2, 1);
        assert_int_equal(drv_test_cli("dlq redrive --execute"), 0);
        assert_non_null(strstr(drv_test_out, "redrove 1 record(s)"));
        assert_non_null(strstr(drv_test_out, "parked 1"));
        assert_int_equal(count_lines_with(drv_test_out, "parked "), 2);
        assert_int_equal(count_committed(topic, 3), 1);
        /* a lower limit parks the other one too */
        assert_int_equal(drv_test_cli("dlq list --max-redrives 2"), 0);
        assert_int_equal(count_lines_with(drv_test_out, "parked"), 1);
        /* the parked one stays, reported, never looped */
        assert_int_equal(drv_test_cli("dlq redrive --execute"), 0);
        assert_non_null(strstr(drv_test_out, "redrove 0 record(s)"));
        assert_non_null(strstr(drv_test_out, "parked 1"));
        assert_int_equal(count_committed(topic, 3), 1);
}

/* The redriven task carries attempts and the redrive count. */
static void test_kcat_reads_dead_letters_and_headers(void **s) {
        char dlq[160], cmd[512], line[4096];
        FILE *fp;
        int n = 0, found = 0;

        (void)s;
        fresh_topics(dlq, sizeof(dlq));
        produce_dead_letters(dlq, mixed, MIXED_CNT, 1);
        snprintf(
            cmd, sizeof(cmd),
            "kcat -C -b '%s' -t '%s' -e -q -X isolation.level=read_committed "
            "-f '%%k %%s %%h\\n' 2>&1",
            drv_test_brokers(), dlq);
        fp = popen(cmd, "r");
        assert_non_null(fp);
        while (fgets(line, sizeof(line), fp)) {
                n++;
                if (strstr(line, "drover.error.class=") &&
                    strstr(line, "drover.retry.after.ms=") &&
                    strstr(line, "drover.original.offset=") &&
                    strstr(line, "drover.redrive.count=0") &&
                    strstr(line, " value-"))
                        found++;
        }
        assert_int_equal(pclose(fp), 0);
        assert_int_equal(n, MIXED_CNT);
        assert_int_equal(found, MIXED_CNT);
}

static void test_usage_errors(void **s) {
        (void)s;
        assert_int_equal(drv_test_cli("dlq"), 2);
        assert_int_equal(drv_test_cli("dlq frobnicate"), 2);
        assert_non_null(strstr(drv_test_err, "drover: unknown dlq command"));
        assert_int_equal(drv_test_cli("dlq redrive --max zero"), 2);
        assert_int_equal(drv_test_cli("dlq list --execute"), 2);
        assert_int_equal(drv_test_cli("dlq --help"), 0);
        assert_non_null(strstr(drv_test_out, "usage: drover dlq"));
        setenv("DROVER_TOPIC", drv_test_unique("absent"), 1);
        assert_int_equal(drv_test_cli("dlq list"), 69);
        assert_non_null(strstr(drv_test_err, "does not exist"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                test_list_shows_dead_letters_text_json_and_filters),
            cmocka_unit_test(test_list_hides_aborted_dead_letters),
            cmocka_unit_test(test_redrive_dry_run_changes_nothing),
            cmocka_unit_test(test_redrive_moves_selected_exactly_once),
            cmocka_unit_test(test_redrive_due_respects_retry_after),
            cmocka_unit_test(test_redrive_parks_after_max_redrives),
            cmocka_unit_test(test_kcat_reads_dead_letters_and_headers),
            cmocka_unit_test(test_usage_errors),
        };

        drv_test_brokers(); /* skip (77) without a stack */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
