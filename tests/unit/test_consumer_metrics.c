/*
 * drover - tests/unit/test_consumer_metrics.c: the Prometheus rendering
 * of consumer/admin/metrics.c.
 */
#include "admin.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 if `text` holds `line` as a whole line. */
static int has_line(const char *text, const char *line) {
        size_t n = strlen(line);
        const char *p = text;

        while ((p = strstr(p, line)) != NULL) {
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return 1;
                p += n;
        }
        return 0;
}

static char *render(void) {
        char *text = drv_metrics_render();
        assert_non_null(text);
        return text;
}

static void
test_empty_registry_has_help_and_type_for_every_metric(void **state) {
        static const char *names[] = {
            "drover_tasks_total counter",
            "drover_task_duration_seconds histogram",
            "drover_step_rows_total counter",
            "drover_dlq_total counter",
            "drover_txn_commits_total counter",
            "drover_txn_aborts_total counter",
            "drover_inflight_tasks gauge",
            "drover_consumer_lag gauge",
            "drover_paused_partitions gauge",
            "drover_throttled_seconds_total counter",
        };
        char line[128];
        char *text;
        size_t i;

        drv_metrics_reset();
        text = render();
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                snprintf(line, sizeof(line), "# TYPE %s", names[i]);
                assert_true(has_line(text, line));
                assert_non_null(strstr(text, "# HELP "));
        }
        assert_true(has_line(text, "drover_txn_commits_total 0"));
        assert_true(has_line(text, "drover_task_duration_seconds_count 0"));
        free(text);
}

static void test_counters_and_gauges_accumulate(void **state) {
        char *text;

        drv_metrics_reset();
        drv_metrics_task("done", 0.2);
        drv_metrics_task("done", 2.0);
        drv_metrics_task("dead", 0.001);
        drv_metrics_task("retry", 100.0); /* not a final outcome */
        drv_metrics_step_rows(1000);
        drv_metrics_step_rows(-5); /* ignored */
        drv_metrics_step_rows(234);
        drv_metrics_dlq("decode");
        drv_metrics_dlq("decode");
        drv_metrics_dlq("version_conflict");
        drv_metrics_txn_commit();
        drv_metrics_txn_commit();
        drv_metrics_txn_abort();
        drv_metrics_set_inflight(3);
        drv_metrics_set_paused(2);
        text = render();
        assert_true(has_line(text, "drover_tasks_total{outcome=\"done\"} 2"));
        assert_true(has_line(text, "drover_tasks_total{outcome=\"dead\"} 1"));
        assert_true(has_line(text, "drover_tasks_total{outcome=\"retry\"} 1"));
        assert_true(has_line(text, "drover_step_rows_total 1234"));
        assert_true(has_line(text, "drover_dlq_total{class=\"decode\"} 2"));
        assert_true(
            has_line(text, "drover_dlq_total{class=\"version_conflict\"} 1"));
        assert_true(has_line(text, "drover_txn_commits_total 2"));
        assert_true(has_line(text, "drover_txn_aborts_total 1"));
        assert_true(has_line(text, "drover_inflight_tasks 3"));
        assert_true(has_line(text, "drover_paused_partitions 2"));
        free(text);
}

static void test_histogram_buckets_are_cumulative(void **state) {
        char *text;

        drv_metrics_reset();
        drv_metrics_task("done", 0.2);   /* le 0.5 and up */
        drv_metrics_task("done", 2.0);   /* le 5 and up */
        drv_metrics_task("dead", 0.001); /* every bucket */
        drv_metrics_task("skipped", 7200);
        text = render();
        assert_true(has_line(
            text, "drover_task_duration_seconds_bucket{le=\"0.01\"} 1"));
        assert_true(has_line(
            text, "drover_task_duration_seconds_bucket{le=\"0.1\"} 1"));
        assert_true(has_line(
            text, "drover_task_duration_seconds_bucket{le=\"0.5\"} 2"));
        assert_true(
            has_line(text, "drover_task_duration_seconds_bucket{le=\"1\"} 2"));
        assert_true(
            has_line(text, "drover_task_duration_seconds_bucket{le=\"5\"} 3"));
        assert_true(has_line(
            text, "drover_task_duration_seconds_bucket{le=\"3600\"} 3"));
        assert_true(has_line(
            text, "drover_task_duration_seconds_bucket{le=\"+Inf\"} 4"));
        assert_true(has_line(text, "drover_task_duration_seconds_count 4"));
        assert_true(
            has_line(text, "drover_task_duration_seconds_sum 7202.201000"));
        free(text);
}

static void test_lag_series_set_update_and_remove(void **state) {
        char *text;

        drv_metrics_reset();
        drv_metrics_set_lag("dataset-migrations", 0, 5);
        drv_metrics_set_lag("dataset-migrations", 1, 7);
        drv_metrics_set_lag("dataset-migrations", 0, 9);
        text = render();
        assert_true(has_line(text, "drover_consumer_lag{topic=\"dataset-"
                                   "migrations\",partition=\"0\"} 9"));
        assert_true(has_line(text, "drover_consumer_lag{topic=\"dataset-"
                                   "migrations\",partition=\"1\"} 7"));
        free(text);
        drv_metrics_set_lag("dataset-migrations", 0, -1); /* revoked */
        text = render();
        assert_null(strstr(text, "partition=\"0\""));
        assert_non_null(strstr(text, "partition=\"1\""));
        free(text);
}

static void test_label_values_are_escaped(void **state) {
        char esc[64];
        char *text;

        assert_int_equal(
            drv_metrics_escape_label("a\"b\\c\nd", esc, sizeof(esc)), 10);
        assert_string_equal(esc, "a\\\"b\\\\c\\nd");
        drv_metrics_escape_label("0123456789", esc, 6); /* truncates */
        assert_string_equal(esc, "012");

        drv_metrics_reset();
        drv_metrics_dlq("evil\"} 1\nfake_metric 2");
        text = render();
        assert_true(has_line(
            text, "drover_dlq_total{class=\"evil\\\"} 1\\nfake_metric 2\"} 1"));
        assert_false(has_line(text, "fake_metric 2\"} 1"));
        free(text);
}

static void test_label_cardinality_is_bounded(void **state) {
        char label[32], *text;
        int i, lines = 0;
        const char *p;

        drv_metrics_reset();
        for (i = 0; i < 500; i++) {
                snprintf(label, sizeof(label), "class%d", i);
                drv_metrics_dlq(label);
        }
        text = render();
        for (p = text; (p = strstr(p, "drover_dlq_total{")); p++)
                lines++;
        assert_true(lines <= 64);
        assert_non_null(strstr(text, "drover_dlq_total{class=\"other\"}"));
        free(text);
}

static void *hammer(void *arg) {
        int i;

        for (i = 0; i < 20000; i++) {
                drv_metrics_task("done", 0.01);
                drv_metrics_txn_commit();
                drv_metrics_step_rows(1);
                drv_metrics_set_lag("t", i % 8, i);
        }
        return arg;
}

static void test_concurrent_updates_are_not_lost(void **state) {
        pthread_t th[4];
        char *text;
        int i;

        drv_metrics_reset();
        for (i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
        for (i = 0; i < 3; i++) { /* render while others write */
                text = render();
                free(text);
        }
        for (i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        text = render();
        assert_true(
            has_line(text, "drover_tasks_total{outcome=\"done\"} 80000"));
        assert_true(has_line(text, "drover_txn_commits_total 80000"));
        assert_true(has_line(text, "drover_step_rows_total 80000"));
        free(text);
}

static void test_throttled_seconds_add_up_by_check(void **state) {
        char *text;

        (void)state;
        drv_metrics_reset();
        drv_metrics_throttled("query", 1.0);
        drv_metrics_throttled("query", 0.25);
        drv_metrics_throttled("max_replica_lag_ms", 2.5);
        drv_metrics_throttled("max_active_connections", 0); /* no wait */
        text = render();
        assert_true(has_line(
            text, "drover_throttled_seconds_total{reason=\"query\"} 1.250"));
        assert_true(has_line(text, "drover_throttled_seconds_total{reason="
                                   "\"max_replica_lag_ms\"} 2.500"));
        assert_null(strstr(text, "max_active_connections"));
        free(text);
        drv_metrics_reset();
        text = render();
        assert_null(strstr(text, "drover_throttled_seconds_total{"));
        free(text);
}

static void test_readiness_round_trips(void **state) {
        int a = -1, d = -1;

        drv_admin_set_ready(1, 0);
        drv_admin_get_ready(&a, &d);
        assert_int_equal(a, 1);
        assert_int_equal(d, 0);
        drv_admin_set_ready(0, 5);
        drv_admin_get_ready(&a, &d);
        assert_int_equal(a, 0);
        assert_int_equal(d, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(
                test_empty_registry_has_help_and_type_for_every_metric),
            cmocka_unit_test(test_counters_and_gauges_accumulate),
            cmocka_unit_test(test_histogram_buckets_are_cumulative),
            cmocka_unit_test(test_lag_series_set_update_and_remove),
            cmocka_unit_test(test_label_values_are_escaped),
            cmocka_unit_test(test_label_cardinality_is_bounded),
            cmocka_unit_test(test_concurrent_updates_are_not_lost),
            cmocka_unit_test(test_throttled_seconds_add_up_by_check),
            cmocka_unit_test(test_readiness_round_trips),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
