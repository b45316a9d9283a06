/*
 * tests/unit/test_dlq_classify.c: the classification table, row by row.
 */
#include "testutil.h"

#include <string.h>

typedef struct {
        drv_err_t err;
        const char *sqlstate;
        drv_route_t route;
        const char *name;
} row_t;

static const row_t rows[] = {
    {DRV_OK, NULL, DRV_ROUTE_OK, "ok"},
    /* transient module errors */
    {DRV_ERR_REGISTRY_UNAVAILABLE, NULL, DRV_ROUTE_RETRY,
     "registry_unavailable"},
    {DRV_ERR_CATALOG_UNAVAILABLE, NULL, DRV_ROUTE_RETRY, "catalog_unavailable"},
    {DRV_ERR_DB_UNAVAILABLE, NULL, DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_DB_UNAVAILABLE, "42P01", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_KAFKA_RETRIABLE, NULL, DRV_ROUTE_RETRY, "kafka_retriable"},
    {DRV_ERR_LOCKED, NULL, DRV_ROUTE_RETRY, "locked"},
    {DRV_ERR_TIMEOUT, NULL, DRV_ROUTE_RETRY, "timeout"},
    {DRV_ERR_IO, NULL, DRV_ROUTE_RETRY, "io"},
    /* permanent module errors */
    {DRV_ERR_DECODE, NULL, DRV_ROUTE_DEAD, "decode"},
    {DRV_ERR_UNKNOWN_SCHEMA, NULL, DRV_ROUTE_DEAD, "unknown_schema"},
    {DRV_ERR_UNKNOWN_PLAN, NULL, DRV_ROUTE_DEAD, "unknown_plan"},
    {DRV_ERR_INVALID_PLAN, NULL, DRV_ROUTE_DEAD, "invalid_plan"},
    {DRV_ERR_VERSION_CONFLICT, NULL, DRV_ROUTE_DEAD, "version_conflict"},
    {DRV_ERR_LEDGER_CONFLICT, NULL, DRV_ROUTE_DEAD, "ledger_conflict"},
    {DRV_ERR_SQL_REFUSED, NULL, DRV_ROUTE_DEAD, "sql_refused"},
    {DRV_ERR_INVALID_PARAM, NULL, DRV_ROUTE_DEAD, "invalid_param"},
    {DRV_ERR_WRONG_QUEUE, NULL, DRV_ROUTE_DEAD, "wrong_queue"},
    {DRV_ERR_STAGING_REQUIRED, NULL, DRV_ROUTE_DEAD, "staging_required"},
    /* fatal to the worker */
    {DRV_ERR_KAFKA_FATAL, NULL, DRV_ROUTE_FATAL, "kafka_fatal"},
    {DRV_ERR_INTERNAL, NULL, DRV_ROUTE_FATAL, "internal"},
    {DRV_ERR_NOMEM, NULL, DRV_ROUTE_FATAL, "nomem"},
    {DRV_ERR_USAGE, NULL, DRV_ROUTE_FATAL, "usage"},
    {DRV_ERR_CONFIG, NULL, DRV_ROUTE_FATAL, "config"},
    {(drv_err_t)0x7777, NULL, DRV_ROUTE_FATAL, "internal"},
    /* SQLSTATE: transient */
    {DRV_ERR_SQL, "40001", DRV_ROUTE_RETRY, "sql"},
    {DRV_ERR_SQL, "40P01", DRV_ROUTE_RETRY, "sql"},
    {DRV_ERR_SQL, "55P03", DRV_ROUTE_RETRY, "locked"},
    {DRV_ERR_SQL, "57014", DRV_ROUTE_RETRY, "timeout"},
    {DRV_ERR_SQL, "57P01", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_SQL, "57P02", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_SQL, "57P03", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_SQL, "57P04", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_SQL, "25P03", DRV_ROUTE_RETRY, "timeout"},
    {DRV_ERR_SQL, "08000", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_SQL, "08006", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_SQL, "08003", DRV_ROUTE_RETRY, "db_unavailable"},
    /* protocol_violation of our own statement: permanent */
    {DRV_ERR_SQL, "08P01", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_DB_UNAVAILABLE, "08P01", DRV_ROUTE_RETRY, "db_unavailable"},
    {DRV_ERR_SQL, "53000", DRV_ROUTE_RETRY, "sql"},
    {DRV_ERR_SQL, "53100", DRV_ROUTE_RETRY, "sql"},
    {DRV_ERR_SQL, "53200", DRV_ROUTE_RETRY, "sql"},
    {DRV_ERR_SQL, "53300", DRV_ROUTE_RETRY, "sql"},
    {DRV_ERR_SQL, "28P01", DRV_ROUTE_RETRY, "db_unavailable"},
    /* SQLSTATE: permanent */
    {DRV_ERR_SQL, "22001", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "22P02", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "23505", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "23502", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "42P01", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "42601", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "42501", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "0A000", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "54000", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "XX000", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "XX001", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "40002", DRV_ROUTE_DEAD, "sql"}, /* not 40001 */
    {DRV_ERR_SQL, "57000", DRV_ROUTE_DEAD, "sql"}, /* not 57014 */
    {DRV_ERR_SQL, "P0001", DRV_ROUTE_DEAD, "sql"}, /* raise_exception */
    /* SQLSTATE missing or malformed: permanent sql */
    {DRV_ERR_SQL, NULL, DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "4000", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "400011", DRV_ROUTE_DEAD, "sql"},
    {DRV_ERR_SQL, "08aaa", DRV_ROUTE_DEAD, "sql"},
    /* a SQLSTATE beside a non-SQL error does not change it */
    {DRV_ERR_DECODE, "40001", DRV_ROUTE_DEAD, "decode"},
    {DRV_ERR_LOCKED, "23505", DRV_ROUTE_RETRY, "locked"},
};

static void test_every_row_routes_and_names(void **state) {
        size_t i;
        char what[64];

        (void)state;
        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                drv_class_t cls =
                    drv_dlq_classify(rows[i].err, rows[i].sqlstate);
                snprintf(what, sizeof(what), "row %zu (%s %s)", i,
                         drv_err_name(rows[i].err),
                         rows[i].sqlstate ? rows[i].sqlstate : "-");
                if (cls.route != rows[i].route ||
                    strcmp(cls.name, rows[i].name) ||
                    cls.retryable != (rows[i].route == DRV_ROUTE_RETRY))
                        fail_msg("%s: got %s/%s/%d, want %s/%s", what,
                                 drv_route_name(cls.route), cls.name,
                                 cls.retryable, drv_route_name(rows[i].route),
                                 rows[i].name);
        }
}

/* Every declared error (other than DRV_OK) has its own row: a new code
 * added to schema.h without a decision here falls to "internal". */
static void test_every_error_code_has_a_row(void **state) {
        static const drv_err_t all[] = {
            DRV_ERR_REGISTRY_UNAVAILABLE,
            DRV_ERR_CATALOG_UNAVAILABLE,
            DRV_ERR_DB_UNAVAILABLE,
            DRV_ERR_KAFKA_RETRIABLE,
            DRV_ERR_LOCKED,
            DRV_ERR_TIMEOUT,
            DRV_ERR_DECODE,
            DRV_ERR_UNKNOWN_SCHEMA,
            DRV_ERR_UNKNOWN_PLAN,
            DRV_ERR_INVALID_PLAN,
            DRV_ERR_VERSION_CONFLICT,
            DRV_ERR_LEDGER_CONFLICT,
            DRV_ERR_SQL_REFUSED,
            DRV_ERR_INVALID_PARAM,
            DRV_ERR_SQL,
            DRV_ERR_WRONG_QUEUE,
            DRV_ERR_STAGING_REQUIRED,
            DRV_ERR_KAFKA_FATAL,
            DRV_ERR_NOMEM,
            DRV_ERR_USAGE,
            DRV_ERR_CONFIG,
            DRV_ERR_IO,
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                drv_class_t cls = drv_dlq_classify(all[i], NULL);
                assert_string_not_equal(cls.name, "internal");
                /* the family in schema.h agrees with the route, except
                 * IO (usage family, but retried while a task runs) */
                if (DRV_ERR_FAMILY(all[i]) == DRV_ERR_FAMILY_TRANSIENT)
                        assert_int_equal(cls.route, DRV_ROUTE_RETRY);
                if (DRV_ERR_FAMILY(all[i]) == DRV_ERR_FAMILY_PERMANENT)
                        assert_int_equal(cls.route, DRV_ROUTE_DEAD);
                if (DRV_ERR_FAMILY(all[i]) == DRV_ERR_FAMILY_FATAL)
                        assert_int_equal(cls.route, DRV_ROUTE_FATAL);
        }
}

static const struct {
        rd_kafka_resp_err_t err;
        drv_route_t route;
        const char *name;
} kafka_rows[] = {
    {RD_KAFKA_RESP_ERR_NO_ERROR, DRV_ROUTE_OK, "ok"},
    {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, DRV_ROUTE_DEAD,
     "kafka_msg_too_large"},
    {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, DRV_ROUTE_RETRY, "kafka_timeout"},
    {RD_KAFKA_RESP_ERR__TIMED_OUT, DRV_ROUTE_RETRY, "kafka_timeout"},
    {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, DRV_ROUTE_RETRY, "kafka_timeout"},
    {RD_KAFKA_RESP_ERR__TRANSPORT, DRV_ROUTE_RETRY, "kafka_unavailable"},
    {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, DRV_ROUTE_RETRY, "kafka_unavailable"},
    {RD_KAFKA_RESP_ERR__FENCED, DRV_ROUTE_FATAL, "kafka_fenced"},
    {RD_KAFKA_RESP_ERR_PRODUCER_FENCED, DRV_ROUTE_FATAL, "kafka_fenced"},
    {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, DRV_ROUTE_FATAL, "kafka_fenced"},
    {RD_KAFKA_RESP_ERR__FATAL, DRV_ROUTE_FATAL, "kafka_fatal"},
    {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, DRV_ROUTE_FATAL,
     "kafka_unauthorized"},
    {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, DRV_ROUTE_RETRY,
     "kafka_retriable"},
};

static void test_kafka_response_codes_row_by_row(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(kafka_rows) / sizeof(kafka_rows[0]); i++) {
                drv_class_t cls = drv_dlq_classify_kafka_err(kafka_rows[i].err);
                if (cls.route != kafka_rows[i].route ||
                    strcmp(cls.name, kafka_rows[i].name))
                        fail_msg("%s: got %s/%s, want %s/%s",
                                 rd_kafka_err2name(kafka_rows[i].err),
                                 drv_route_name(cls.route), cls.name,
                                 drv_route_name(kafka_rows[i].route),
                                 kafka_rows[i].name);
        }
}

/* The transaction error router: every combination of the three flags,
 * row by row.  A combination the table forgot, or a changed decision,
 * fails here (the worker's commit path and redrive act on these). */
static void test_txn_every_flag_combination_has_its_action(void **state) {
        static const struct {
                int fatal, abortable, retriable;
                drv_txn_action_t action;
        } want[] = {
            {0, 0, 0, DRV_TXN_FATAL}, {0, 0, 1, DRV_TXN_RETRY},
            {0, 1, 0, DRV_TXN_ABORT}, {0, 1, 1, DRV_TXN_ABORT},
            {1, 0, 0, DRV_TXN_FATAL}, {1, 0, 1, DRV_TXN_FATAL},
            {1, 1, 0, DRV_TXN_FATAL}, {1, 1, 1, DRV_TXN_FATAL},
        };
        size_t i;

        (void)state;
        assert_int_equal(sizeof(want) / sizeof(want[0]), 8);
        for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                drv_txn_action_t a = drv_dlq_txn_route_flags(
                    want[i].fatal, want[i].abortable, want[i].retriable);
                if (a != want[i].action)
                        fail_msg("fatal=%d abortable=%d retriable=%d: got "
                                 "%s, want %s",
                                 want[i].fatal, want[i].abortable,
                                 want[i].retriable, drv_dlq_txn_action_name(a),
                                 drv_dlq_txn_action_name(want[i].action));
        }
        /* flags are truth values, not only 0/1 */
        assert_int_equal(drv_dlq_txn_route_flags(0, 2, 0), DRV_TXN_ABORT);
}

/* Error objects from librdkafka's public constructor carry no flag
 * whatever their code: they take the "neither" row. */
static void test_txn_error_objects(void **state) {
        rd_kafka_error_t *error;

        (void)state;
        assert_int_equal(drv_dlq_txn_route(NULL), DRV_TXN_OK);
        error = rd_kafka_error_new(RD_KAFKA_RESP_ERR__STATE, "state");
        assert_int_equal(drv_dlq_txn_route(error), DRV_TXN_FATAL);
        rd_kafka_error_destroy(error);
        error = rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "timeout");
        assert_int_equal(drv_dlq_txn_route(error), DRV_TXN_FATAL);
        rd_kafka_error_destroy(error);
        assert_string_equal(drv_dlq_txn_action_name(DRV_TXN_ABORT), "abort");
        assert_string_equal(drv_dlq_txn_action_name((drv_txn_action_t)99),
                            "unknown");
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_every_row_routes_and_names),
            cmocka_unit_test(test_every_error_code_has_a_row),
            cmocka_unit_test(test_kafka_response_codes_row_by_row),
            cmocka_unit_test(test_txn_every_flag_combination_has_its_action),
            cmocka_unit_test(test_txn_error_objects),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
