/*
 * tests/unit/test_dlq_headers.c: dead-letter headers, build -> parse.
 */
#include "testutil.h"

#include <string.h>

static void fill(drv_dlq_info_t *info) {
        memset(info, 0, sizeof(*info));
        strcpy(info->error_class, "sql");
        strcpy(info->error_message, "duplicate key value \"x\"; ünïcode");
        info->retryable = 1;
        strcpy(info->step, "2:backfill");
        strcpy(info->sqlstate, "23505");
        strcpy(info->task_id, "0b6f1c1e-3c2a-4e8e-9d1e-5a7f8f6e2b11");
        strcpy(info->dataset, "customer");
        info->attempts = 7;
        info->first_failure_ms = 1764057600000;
        info->last_failure_ms = 1764057612345;
        info->backoff_ms = 4321;
        info->retry_after_ms = 1764057672345;
        strcpy(info->original_topic, "dataset-migrations");
        info->original_partition = 11;
        info->original_offset = 9876543210LL;
        info->original_timestamp_ms = 1764057599999;
        strcpy(info->worker, "drover-0");
        strcpy(info->consumer_group, "drover");
        info->redrive_count = 3;
}

static const char *get(const rd_kafka_headers_t *h, const char *name) {
        static char buf[600];
        const void *v;
        size_t len;

        if (rd_kafka_header_get_last(h, name, &v, &len))
                return NULL;
        snprintf(buf, sizeof(buf), "%.*s", (int)len, (const char *)v);
        return buf;
}

static void test_round_trip_every_header(void **state) {
        drv_dlq_info_t in, out;
        rd_kafka_headers_t *h;
        char errstr[256];

        (void)state;
        fill(&in);
        h = drv_dlq_headers_new(&in);
        assert_non_null(h);
        assert_int_equal(drv_dlq_headers_parse(h, &out, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(out.error_class, in.error_class);
        assert_string_equal(out.error_message, in.error_message);
        assert_int_equal(out.retryable, 1);
        assert_string_equal(out.step, in.step);
        assert_string_equal(out.sqlstate, in.sqlstate);
        assert_string_equal(out.task_id, in.task_id);
        assert_string_equal(out.dataset, in.dataset);
        assert_int_equal(out.attempts, in.attempts);
        assert_int_equal(out.first_failure_ms, in.first_failure_ms);
        assert_int_equal(out.last_failure_ms, in.last_failure_ms);
        assert_int_equal(out.backoff_ms, in.backoff_ms);
        assert_int_equal(out.retry_after_ms, in.retry_after_ms);
        assert_string_equal(out.original_topic, in.original_topic);
        assert_int_equal(out.original_partition, in.original_partition);
        assert_int_equal(out.original_offset, in.original_offset);
        assert_int_equal(out.original_timestamp_ms, in.original_timestamp_ms);
        assert_string_equal(out.worker, in.worker);
        assert_string_equal(out.consumer_group, in.consumer_group);
        assert_int_equal(out.redrive_count, in.redrive_count);
        assert_memory_equal(&in, &out, sizeof(in));
        rd_kafka_headers_destroy(h);
}

/* The header names and texts are the contract of DESIGN.md section 7. */
static void test_names_and_text_values(void **state) {
        static const char *design[] = {
            "drover.error.class",      "drover.error.message",
            "drover.error.retryable",  "drover.error.step",
            "drover.error.sqlstate",   "drover.task.id",
            "drover.dataset",          "drover.attempts",
            "drover.first.failure.ms", "drover.last.failure.ms",
            "drover.backoff.ms",       "drover.retry.after.ms",
            "drover.original.topic",   "drover.original.partition",
            "drover.original.offset",  "drover.original.timestamp.ms",
            "drover.worker",           "drover.consumer.group",
            "drover.redrive.count",
        };
        drv_dlq_info_t in;
        rd_kafka_headers_t *h;
        size_t i;

        (void)state;
        fill(&in);
        in.retryable = 0;
        h = drv_dlq_headers_new(&in);
        assert_int_equal(rd_kafka_header_cnt(h),
                         sizeof(design) / sizeof(design[0]));
        for (i = 0; i < sizeof(design) / sizeof(design[0]); i++) {
                assert_string_equal(drv_dlq_header_name(i), design[i]);
                assert_non_null(get(h, design[i]));
        }
        assert_null(drv_dlq_header_name(i));
        assert_string_equal(get(h, "drover.error.retryable"), "false");
        assert_string_equal(get(h, "drover.original.offset"), "9876543210");
        assert_string_equal(get(h, "drover.attempts"), "7");
        assert_string_equal(get(h, "drover.error.step"), "2:backfill");
        rd_kafka_headers_destroy(h);
        assert_null(drv_dlq_headers_new(NULL));
}

static drv_err_t parse_with(const char *name, const char *value,
                            drv_dlq_info_t *out, char *errstr, size_t size) {
        drv_dlq_info_t in;
        rd_kafka_headers_t *h;
        drv_err_t err;

        fill(&in);
        h = drv_dlq_headers_new(&in);
        /* a later duplicate wins, as a reader would take it */
        rd_kafka_header_add(h, name, -1, value, value ? -1 : 0);
        err = drv_dlq_headers_parse(h, out, errstr, size);
        rd_kafka_headers_destroy(h);
        return err;
}

static void test_malformed_numeric_header_is_an_error(void **state) {
        static const struct {
                const char *name, *value;
        } bad[] = {
            {"drover.attempts", "seven"},
            {"drover.attempts", ""},
            {"drover.attempts", "-1"},
            {"drover.attempts", "7 "},
            {"drover.attempts", "99999999999"},
            {"drover.original.partition", "2147483648"},
            {"drover.original.offset", "12x"},
            {"drover.original.offset", "99999999999999999999"},
            {"drover.retry.after.ms", "+5"},
            {"drover.redrive.count", "0x10"},
            {"drover.error.retryable", "yes"},
            {"drover.error.retryable", "TRUE"},
        };
        drv_dlq_info_t out;
        char errstr[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errstr[0] = '\0';
                if (parse_with(bad[i].name, bad[i].value, &out, errstr,
                               sizeof(errstr)) != DRV_ERR_DECODE)
                        fail_msg("%s=\"%s\" was accepted", bad[i].name,
                                 bad[i].value);
                assert_non_null(strstr(errstr, bad[i].name));
        }
}

static void test_missing_null_and_long_values(void **state) {
        drv_dlq_info_t out;
        rd_kafka_headers_t *h;
        char errstr[256], longv[2000];

        (void)state;
        assert_int_equal(
            drv_dlq_headers_parse(NULL, &out, errstr, sizeof(errstr)), DRV_OK);
        assert_int_equal(out.attempts, 0);
        h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, "drover.attempts", -1, NULL, 0); /* null */
        rd_kafka_header_add(h, "other", -1, "x", 1);
        assert_int_equal(drv_dlq_headers_parse(h, &out, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(out.attempts, 0);
        rd_kafka_headers_destroy(h);
        memset(longv, 'a', sizeof(longv) - 1);
        longv[sizeof(longv) - 1] = '\0';
        assert_int_equal(parse_with("drover.error.sqlstate", longv, &out,
                                    errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(strlen(out.sqlstate), sizeof(out.sqlstate) - 1);
        assert_int_equal(parse_with("drover.error.message", longv, &out, errstr,
                                    sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(strlen(out.error_message),
                         sizeof(out.error_message) - 1);
        assert_int_equal(parse_with("drover.original.offset", "-1", &out,
                                    errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(out.original_offset, -1);
}

static void test_task_carried_counts(void **state) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        int attempts = -1, count = -1;

        (void)state;
        drv_dlq_task_carried(NULL, &attempts, &count);
        assert_int_equal(attempts, 0);
        assert_int_equal(count, 0);
        rd_kafka_header_add(h, "drover.attempts", -1, "4", -1);
        rd_kafka_header_add(h, "drover.redrive.count", -1, "2", -1);
        drv_dlq_task_carried(h, &attempts, &count);
        assert_int_equal(attempts, 4);
        assert_int_equal(count, 2);
        rd_kafka_header_add(h, "drover.redrive.count", -1, "x", -1);
        drv_dlq_task_carried(h, NULL, &count);
        assert_int_equal(count, 0);
        rd_kafka_headers_destroy(h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip_every_header),
            cmocka_unit_test(test_names_and_text_values),
            cmocka_unit_test(test_malformed_numeric_header_is_an_error),
            cmocka_unit_test(test_missing_null_and_long_values),
            cmocka_unit_test(test_task_carried_counts),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
