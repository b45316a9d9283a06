/*
 * drover - tests/unit/test_transforms_sqlstate.c: SQLSTATE -> drv_err_t.
 *
 * The runner's one mapping from PostgreSQL failures to drover errors: a
 * lost connection is "db unavailable", lock_timeout is "locked", anything
 * else is "sql" with the SQLSTATE kept for dlq/ to classify.
 */
#include "testutil.h"

#include <string.h>

typedef struct case_s {
        const char *sqlstate;
        int conn_ok;
        drv_err_t want;
} case_t;

static const case_t cases[] = {
    {"08006", 1, DRV_ERR_DB_UNAVAILABLE}, /* connection_failure */
    {"08003", 1, DRV_ERR_DB_UNAVAILABLE}, /* connection_does_not_exist */
    {"08000", 1, DRV_ERR_DB_UNAVAILABLE}, /* connection_exception */
    /* protocol_violation on a live connection: the server refused our
     * own statement (bind mismatch), a permanent sql error */
    {"08P01", 1, DRV_ERR_SQL},
    {"08P01", 0, DRV_ERR_DB_UNAVAILABLE}, /* ... unless the link died */
    {"57P01", 1, DRV_ERR_DB_UNAVAILABLE}, /* admin_shutdown */
    {"57P02", 1, DRV_ERR_DB_UNAVAILABLE}, /* crash_shutdown */
    {"57P03", 1, DRV_ERR_DB_UNAVAILABLE}, /* cannot_connect_now */
    {"55P03", 1, DRV_ERR_LOCKED},         /* lock_not_available */
    {"40001", 1, DRV_ERR_SQL},            /* serialization: dlq retries */
    {"40P01", 1, DRV_ERR_SQL},            /* deadlock: dlq retries */
    {"23505", 1, DRV_ERR_SQL},            /* unique violation */
    {"42P01", 1, DRV_ERR_SQL},            /* undefined table */
    {"22P02", 1, DRV_ERR_SQL},            /* invalid text representation */
    {"57014", 1, DRV_ERR_SQL},            /* statement_timeout: sql */
    {"23505", 0, DRV_ERR_DB_UNAVAILABLE}, /* the connection died anyway */
    {NULL, 1, DRV_ERR_DB_UNAVAILABLE},    /* no SQLSTATE: no server reply */
    {"", 1, DRV_ERR_DB_UNAVAILABLE},
};

static void test_sqlstate_maps_to_error(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                drv_err_t got =
                    drv_db_sqlstate_err(cases[i].sqlstate, cases[i].conn_ok);
                if (got != cases[i].want)
                        fail_msg("sqlstate %s conn_ok %d: got %s want %s",
                                 cases[i].sqlstate ? cases[i].sqlstate : "NULL",
                                 cases[i].conn_ok, drv_err_name(got),
                                 drv_err_name(cases[i].want));
        }
}

static void test_db_error_without_connection_is_unavailable(void **state) {
        char sqlstate[6] = "xxxxx", errstr[256];
        drv_err_t err;

        (void)state;
        err = drv_db_error(NULL, NULL, sqlstate, errstr, sizeof(errstr));
        assert_int_equal(err, DRV_ERR_DB_UNAVAILABLE);
        assert_string_equal(sqlstate, "");
        assert_non_null(strstr(errstr, "postgresql"));
        assert_null(strchr(errstr, '\n'));
}

static void test_connect_failure_hides_password(void **state) {
        char errstr[512];
        PGconn *conn = (PGconn *)1;
        drv_err_t err;

        (void)state;
        /* port 1 on loopback: refused at once, nothing listens there */
        err = drv_db_connect("postgresql://u:s3cretpw@127.0.0.1:1/db", &conn,
                             errstr, sizeof(errstr));
        assert_int_equal(err, DRV_ERR_DB_UNAVAILABLE);
        assert_null(conn);
        assert_null(strstr(errstr, "s3cretpw"));
        assert_non_null(strstr(errstr, "cannot connect to postgresql"));
}

static void test_connect_without_url_is_config_error(void **state) {
        char errstr[256];
        PGconn *conn = NULL;

        (void)state;
        assert_int_equal(drv_db_connect(NULL, &conn, errstr, sizeof(errstr)),
                         DRV_ERR_CONFIG);
        assert_null(conn);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sqlstate_maps_to_error),
            cmocka_unit_test(test_db_error_without_connection_is_unavailable),
            cmocka_unit_test(test_connect_failure_hides_password),
            cmocka_unit_test(test_connect_without_url_is_config_error),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
