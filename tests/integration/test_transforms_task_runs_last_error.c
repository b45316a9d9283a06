/*
 * drover - tests/integration/test_transforms_task_runs_last_error.c: a
 * task_runs row that ends done or skipped has no last_error, whether the
 * final status comes from the worker's upsert or from the reconcile of a
 * committed pending status; a retrying or dead row keeps its error.  On
 * the real PostgreSQL (DROVER_TEST_DATABASE_URL).
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static PGconn *conn;

static const char *const failed =
    "{\"class\":\"db_unavailable\",\"message\":\"lost connection\"}";

static int group_setup(void **state) {
        char errstr[512];

        (void)state;
        assert_int_equal(drv_db_connect(drv_test_database_url(), &conn, errstr,
                                        sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_db_migrate(conn, errstr, sizeof(errstr)), DRV_OK);
        return 0;
}

static int group_teardown(void **state) {
        (void)state;
        PQfinish(conn);
        return 0;
}

/* Upsert task_id with status and last_error (NULL: keep the row's). */
static void upsert(const char *task_id, const char *status,
                   const char *last_error, int attempts) {
        drv_task_run_t run = {.task_id = task_id,
                              .dataset = "last_error_ds",
                              .status = status,
                              .attempts = attempts,
                              .last_error_json = last_error,
                              .partition = 0,
                              .offset = 7};
        char errstr[512];

        if (drv_task_run_upsert(conn, &run, errstr, sizeof(errstr)))
                fail_msg("upsert %s: %s", status, errstr);
}

/* "null", or the row's last_error class */
static const char *last_error(const char *task_id) {
        static char out[128];
        const char *params[1] = {task_id};
        PGresult *res =
            PQexecParams(conn,
                         "SELECT coalesce(last_error->>'class', 'null') FROM"
                         " drover.task_runs WHERE task_id = $1",
                         1, NULL, params, NULL, NULL, 0);

        assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(res), 1);
        snprintf(out, sizeof(out), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return out;
}

static void test_done_or_skipped_upsert_clears_last_error(void **state) {
        static const char *const final[] = {"done", "skipped"};
        int i;

        (void)state;
        for (i = 0; i < 2; i++) {
                const char *id = drv_test_unique("last-error-upsert");
                upsert(id, "running", NULL, 1);
                upsert(id, "retrying", failed, 1);
                assert_string_equal(last_error(id), "db_unavailable");
                upsert(id, "running", NULL, 2);
                assert_string_equal(last_error(id), "db_unavailable");
                upsert(id, final[i], NULL, 2);
                assert_string_equal(last_error(id), "null");
        }
        /* a dead row keeps the error that killed it */
        const char *id = drv_test_unique("last-error-dead");
        upsert(id, "retrying", failed, 1);
        upsert(id, "dead", NULL, 2);
        assert_string_equal(last_error(id), "db_unavailable");
}

/* One column of a task's row, as text ("" for NULL). */
static const char *column(const char *task_id, const char *col) {
        static char out[128];
        char sql[160];
        const char *params[1] = {task_id};
        PGresult *res;

        snprintf(sql, sizeof(sql),
                 "SELECT coalesce(%s::text, '') FROM drover.task_runs WHERE"
                 " task_id = $1",
                 col);
        res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(res), 1);
        snprintf(out, sizeof(out), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return out;
}

/* A late `running` write of a delivery whose final status the row has
 * (the revoked worker's executor, after the new owner finished it) keeps
 * the final status; a later delivery (another offset) is running. */
static void test_running_keeps_final_of_same_delivery(void **state) {
        const char *id = drv_test_unique("keep-final");
        drv_task_run_t run = {.task_id = id,
                              .dataset = "last_error_ds",
                              .status = "running",
                              .partition = 0,
                              .offset = 7,
                              .pending = "done",
                              .topic = "keep-final-topic"};
        char errstr[512];

        (void)state;
        upsert(id, "done", NULL, 1);
        if (drv_task_run_upsert(conn, &run, errstr, sizeof(errstr)))
                fail_msg("upsert: %s", errstr);
        assert_string_equal(column(id, "status"), "done");
        assert_string_not_equal(column(id, "completed_at"), "");
        assert_string_equal(column(id, "pending_status"), "done");
        run.offset = 8;
        if (drv_task_run_upsert(conn, &run, errstr, sizeof(errstr)))
                fail_msg("upsert: %s", errstr);
        assert_string_equal(column(id, "status"), "running");
        assert_string_equal(column(id, "completed_at"), "");
}

/* The finalizer's batch: one statement, the last row of a task wins. */
static void test_batch_upsert_takes_last_row_per_task(void **state) {
        const char *a = drv_test_unique("batch-a");
        const char *b = drv_test_unique("batch-b");
        drv_task_run_t runs[3] = {
            {.task_id = a, .status = "running", .partition = 0, .offset = 1},
            {.task_id = b, .status = "done", .partition = 0, .offset = 2},
            {.task_id = a,
             .status = "dead",
             .partition = 0,
             .offset = 1,
             .last_error_json = "{\"class\": \"sql\"}"},
        };
        char errstr[512];

        (void)state;
        if (drv_task_runs_upsert(conn, runs, 3, errstr, sizeof(errstr)))
                fail_msg("batch upsert: %s", errstr);
        assert_string_equal(column(a, "status"), "dead");
        assert_string_equal(column(a, "committed_status"), "dead");
        assert_string_equal(last_error(a), "sql");
        assert_string_equal(column(b, "status"), "done");
        assert_string_equal(column(b, "kafka_offset"), "2");
}

static void test_reconciled_done_clears_last_error(void **state) {
        const char *topic = drv_test_unique("last-error-topic");
        const char *id = drv_test_unique("last-error-reconcile");
        char errstr[512];
        long rows = 0;

        (void)state;
        upsert(id, "retrying", failed, 1);
        upsert(id, "running", NULL, 2);
        if (drv_task_run_set_pending(conn, id, "done", topic, 0, 7, &rows,
                                     errstr, sizeof(errstr)))
                fail_msg("set_pending: %s", errstr);
        assert_int_equal(rows, 1);
        if (drv_task_runs_reconcile(conn, topic, 0, 8, NULL, 0, &rows, errstr,
                                    sizeof(errstr)))
                fail_msg("reconcile: %s", errstr);
        assert_int_equal(rows, 1);
        assert_string_equal(last_error(id), "null");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_done_or_skipped_upsert_clears_last_error),
            cmocka_unit_test(test_reconciled_done_clears_last_error),
            cmocka_unit_test(test_running_keeps_final_of_same_delivery),
            cmocka_unit_test(test_batch_upsert_takes_last_row_per_task),
        };
        drv_test_database_url(); /* skip (77) without a database */
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
