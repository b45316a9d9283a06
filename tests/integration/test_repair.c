/*
 * drover - tests/integration/test_repair.c: 'drover repair' and
 * /api/repair against the real PostgreSQL (issue 19 item 2).
 *
 * Each test seeds a dataset whose plan failed part-way: version 1 in
 * drover.datasets, a done step, a running step with its checkpoint, the
 * superseded row of an earlier task and a failed one; another dataset
 * has a running row that no repair of the first may touch.  The CLI runs
 * as a user runs it ($DROVER_BIN, exit code, stdout and stderr); the
 * admin server runs in this process and is driven over HTTP.
 */
#include "admin.h"
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "repair-admin-token-for-tests"

static PGconn *conn;   /* the test's own queries */
static PGconn *runner; /* plays a runner holding a dataset's lock */
static char ds[128], other[128];

/*
 * ------------------------------------------------------------------------
 * Database helpers
 * ------------------------------------------------------------------------
 */
/* One value of `sql` with $1 = dataset, as a long. */
static long scalar(const char *sql, const char *dataset) {
        const char *v[1] = {dataset};
        PGresult *res = PQexecParams(conn, sql, 1, NULL, v, NULL, NULL, 0);
        long n;

        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
                fail_msg("%s: %s", sql, PQerrorMessage(conn));
        n = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        return n;
}

static long version_of(const char *dataset) {
        return scalar("SELECT version FROM drover.datasets WHERE dataset = $1",
                      dataset);
}

static long ledger_rows(const char *dataset) {
        return scalar("SELECT count(*) FROM drover.step_ledger WHERE dataset"
                      " = $1",
                      dataset);
}

static long audit_rows(const char *dataset) {
        return scalar("SELECT count(*) FROM drover.repair_audit WHERE dataset"
                      " = $1",
                      dataset);
}

/* The seeded state of `dataset` is untouched: version 1, four ledger
 * rows, no audit row. */
static void assert_unrepaired(const char *dataset) {
        assert_int_equal(version_of(dataset), 1);
        assert_int_equal(ledger_rows(dataset), 4);
        assert_int_equal(audit_rows(dataset), 0);
}

/* A dataset at version 1 whose plan failed part-way. */
static void seed_failed(const char *dataset) {
        static const char *ins =
            "INSERT INTO drover.step_ledger (task_id, step, op, fingerprint,"
            " plan_fingerprint, dataset, status, checkpoint, rows,"
            " finished_at) VALUES ($1 || '-t2', 0, 'add_column', 'f0', 'p',"
            " $1, 'done', NULL, 0, now()), ($1 || '-t2', 1, 'backfill', 'f1',"
            " 'p', $1, 'running', '{\"last\": \"4000\"}', 4000, NULL),"
            " ($1 || '-t1', 1, 'backfill', 'f1', 'p', $1, 'superseded',"
            " '{\"last\": \"1000\"}', 1000, NULL), ($1 || '-t3', 2,"
            " 'validate', 'f2', 'p', $1, 'failed', NULL, 0, NULL)";
        const char *v[1] = {dataset};

        drv_test_exec(
            conn,
            "INSERT INTO drover.datasets (dataset, version) VALUES ($1,"
            " 1)",
            1, v);
        drv_test_exec(conn, ins, 1, v);
}

/* The runner lock of run.c, held by another session. */
static void runner_lock(const char *dataset, int lock) {
        const char *v[1] = {dataset};
        char sql[128];
        PGresult *res;

        snprintf(sql, sizeof(sql), "SELECT %s(%d, hashtext($1))",
                 lock ? "pg_advisory_lock" : "pg_advisory_unlock", 0x64727673);
        res = PQexecParams(runner, sql, 1, NULL, v, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
        PQclear(res);
}

static int setup(void **state) {
        char errstr[512];

        (void)state;
        snprintf(ds, sizeof(ds), "%s", drv_test_unique("repair"));
        snprintf(other, sizeof(other), "%s", drv_test_unique("repair-other"));
        assert_int_equal(drv_db_connect(drv_test_database_url(), &conn, errstr,
                                        sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_db_connect(drv_test_database_url(), &runner,
                                        errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_db_migrate(conn, errstr, sizeof(errstr)), DRV_OK);
        seed_failed(ds);
        seed_failed(other);
        return 0;
}

static int teardown(void **state) {
        (void)state;
        PQfinish(runner);
        PQfinish(conn);
        return 0;
}

/* drover repair <args> --database URL; returns the exit code. */
static int repair_cli(const char *args) {
        return drv_test_cli("repair %s --database '%s'", args,
                            drv_test_database_url());
}

/*
 * ------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------
 */
static void test_dry_run_shows_rows_and_changes_nothing(void **state) {
        char args[256];

        (void)state;
        snprintf(args, sizeof(args), "--dataset %s --set-version 2", ds);
        assert_int_equal(repair_cli(args), 0);
        assert_non_null(strstr(drv_test_out, "version 1"));
        assert_non_null(strstr(drv_test_out, "running"));
        assert_non_null(strstr(drv_test_out, "superseded"));
        assert_non_null(strstr(drv_test_out, "failed"));
        assert_non_null(strstr(drv_test_out, "{\"last\":\"4000\"}"));
        assert_non_null(
            strstr(drv_test_out, "would set the version from 1 to 2"));
        /* the done row is not a repair's business */
        assert_null(strstr(drv_test_out, "add_column"));

        snprintf(args, sizeof(args), "--dataset %s --json", ds);
        assert_int_equal(repair_cli(args), 0);
        {
                json_t *j = json_loads(drv_test_out, 0, NULL);

                assert_non_null(j);
                assert_int_equal(json_array_size(json_object_get(j, "rows")),
                                 3);
                assert_int_equal(
                    json_integer_value(json_object_get(
                        json_object_get(j, "would"), "delete_rows")),
                    3);
                json_decref(j);
        }
        assert_unrepaired(ds);
}

static void
test_execute_without_reason_or_action_is_a_usage_error(void **state) {
        char args[256];

        (void)state;
        snprintf(args, sizeof(args), "--dataset %s --execute --clear-failed",
                 ds);
        assert_int_equal(repair_cli(args), DRV_EXIT_USAGE);
        assert_string_equal(drv_test_err, "drover: a repair needs a reason\n");
        snprintf(args, sizeof(args), "--dataset %s --execute --reason fixed",
                 ds);
        assert_int_equal(repair_cli(args), DRV_EXIT_USAGE);
        assert_non_null(strstr(drv_test_err, "needs an action"));
        assert_int_equal(repair_cli("--dataset 'a;b' --execute --clear-failed "
                                    "--reason x"),
                         DRV_EXIT_DATAERR);
        assert_non_null(strstr(drv_test_err, "invalid dataset \"a;b\""));
        assert_unrepaired(ds);
}

static void
test_execute_refused_while_a_runner_holds_the_dataset(void **state) {
        char args[256];

        (void)state;
        runner_lock(ds, 1);
        snprintf(args, sizeof(args),
                 "--dataset %s --execute --clear-failed --reason 'by hand'",
                 ds);
        assert_int_equal(repair_cli(args), DRV_EXIT_UNAVAILABLE);
        assert_non_null(strstr(drv_test_err, "is held by a runner"));
        runner_lock(ds, 0);
        assert_unrepaired(ds);
}

/* An audit row's before or after: the version and the unfinished rows. */
static void assert_state(const json_t *st, long version, size_t rows) {
        assert_int_equal(json_integer_value(json_object_get(st, "version")),
                         version);
        assert_int_equal(json_array_size(json_object_get(st, "rows")), rows);
}

static void
test_execute_clears_rows_sets_version_and_audits_once(void **state) {
        char args[256];
        json_t *hist, *row;

        (void)state;
        snprintf(args, sizeof(args),
                 "--dataset %s --execute --clear-failed --set-version 2 "
                 "--reason 'backfilled by hand, ticket 42'",
                 ds);
        assert_int_equal(repair_cli(args), 0);
        assert_non_null(strstr(drv_test_out, "repaired dataset"));
        assert_int_equal(version_of(ds), 2);
        /* only the done row stays; the other dataset is untouched */
        assert_int_equal(ledger_rows(ds), 1);
        assert_unrepaired(other);
        assert_int_equal(audit_rows(ds), 1);

        /* again: nothing to repair, exit 0, no second audit row */
        assert_int_equal(repair_cli(args), 0);
        assert_non_null(strstr(drv_test_out, "nothing to repair"));
        assert_int_equal(audit_rows(ds), 1);

        snprintf(args, sizeof(args), "--history --dataset %s --json", ds);
        assert_int_equal(repair_cli(args), 0);
        assert_non_null(hist = json_loads(drv_test_out, 0, NULL));
        assert_int_equal(json_array_size(hist), 1);
        row = json_array_get(hist, 0);
        assert_string_equal(json_string_value(json_object_get(row, "reason")),
                            "backfilled by hand, ticket 42");
        assert_memory_equal(json_string_value(json_object_get(row, "who")),
                            "cli:", 4);
        assert_state(json_object_get(row, "before"), 1, 3);
        assert_state(json_object_get(row, "after"), 2, 0);
        json_decref(hist);
}

/*
 * ------------------------------------------------------------------------
 * The admin API
 * ------------------------------------------------------------------------
 */
typedef drv_test_resp_t resp_t;

/* GET (body NULL) or POST `body` to base+path, with `token` (NULL: no
 * Authorization header). */
static resp_t http(const char *base, const char *path, const char *token,
                   const char *body) {
        char url[512], auth[256];

        snprintf(url, sizeof(url), "%s%s", base, path);
        snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
        return drv_test_http(body ? "POST" : "GET", url, token ? auth : NULL,
                             body, body ? strlen(body) : 0);
}

/* An admin server on a free port with `token` (NULL: none) and the test
 * database; its "http://127.0.0.1:PORT" into base[64]. */
static drv_admin_t *admin_start(const char *token, char *base) {
        drv_admin_conf_t ac = {.listen = "127.0.0.1:0", .token = token};
        char errstr[512];
        drv_admin_t *admin;

        ac.database_url = drv_test_database_url();
        if (!(admin = drv_admin_start(&ac, errstr, sizeof(errstr))))
                fail_msg("drv_admin_start: %s", errstr);
        snprintf(base, 64, "http://127.0.0.1:%d", drv_admin_port(admin));
        return admin;
}

/* Expect `status` and an error body containing `needle`. */
static void expect(resp_t r, long status, const char *needle) {
        if (r.status != status || !strstr(r.body, needle))
                fail_msg("want %ld with \"%s\", got %ld: %s", status, needle,
                         r.status, r.body);
        free(r.body);
}

static void test_api_repairs_with_token_and_refuses_without(void **state) {
        char base[64], path[256], body[512], hex[65], label[16];
        drv_admin_t *admin;
        json_t *j, *row;
        resp_t r;

        (void)state;
        admin = admin_start(TOKEN, base);

        /* the dry run: the rows, nothing changed */
        snprintf(path, sizeof(path), "/api/repair?dataset=%s", ds);
        r = http(base, path, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(j = json_loads(r.body, 0, NULL));
        assert_int_equal(json_array_size(json_object_get(j, "rows")), 3);
        assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
        json_decref(j);
        free(r.body);
        expect(http(base, "/api/repair?dataset=a%3Bb", NULL, NULL), 400,
               "invalid dataset");
        expect(http(base, "/api/repair", NULL, NULL), 400, "invalid dataset");

        snprintf(body, sizeof(body),
                 "{\"dataset\": \"%s\", \"reason\": \"api repair\","
                 " \"clear_failed\": true, \"set_version\": 3}",
                 ds);
        expect(http(base, "/api/repair", NULL, body), 401, "bearer token");
        expect(http(base, "/api/repair", "wrong-token", body), 401,
               "bearer token");
        snprintf(path, sizeof(path),
                 "{\"dataset\": \"%s\", \"clear_failed\": true}", ds);
        expect(http(base, "/api/repair", TOKEN, path), 400,
               "missing field \\\"reason\\\"");
        snprintf(path, sizeof(path),
                 "{\"dataset\": \"%s\", \"reason\": \"x\", \"clear\": true}",
                 ds);
        expect(http(base, "/api/repair", TOKEN, path), 400,
               "unknown field \\\"clear\\\"");
        snprintf(path, sizeof(path),
                 "{\"dataset\": \"%s\", \"reason\": \"x\", \"set_version\":"
                 " -1}",
                 ds);
        expect(http(base, "/api/repair", TOKEN, path), 400,
               "field \\\"set_version\\\" must be an integer");
        assert_int_equal(audit_rows(ds), 0);

        runner_lock(ds, 1);
        expect(http(base, "/api/repair", TOKEN, body), 409,
               "is held by a runner");
        runner_lock(ds, 0);
        assert_unrepaired(ds);

        r = http(base, "/api/repair", TOKEN, body);
        assert_int_equal(r.status, 200);
        free(r.body);
        assert_int_equal(version_of(ds), 3);
        assert_int_equal(ledger_rows(ds), 1);
        assert_unrepaired(other);

        /* the audit row names the token as POST /api/tasks does */
        snprintf(path, sizeof(path), "/api/repair/audit?dataset=%s", ds);
        r = http(base, path, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(j = json_loads(r.body, 0, NULL));
        assert_int_equal(json_array_size(json_object_get(j, "repairs")), 1);
        row = json_array_get(json_object_get(j, "repairs"), 0);
        drv_sha256_hex(TOKEN, strlen(TOKEN), hex);
        snprintf(label, sizeof(label), "token:%.8s", hex);
        assert_string_equal(json_string_value(json_object_get(row, "who")),
                            label);
        assert_string_equal(json_string_value(json_object_get(row, "reason")),
                            "api repair");
        json_decref(j);
        free(r.body);

        /* nothing left: 200, not repaired, no second row */
        r = http(base, "/api/repair", TOKEN, body);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"repaired\":false"));
        free(r.body);
        assert_int_equal(audit_rows(ds), 1);
        drv_admin_stop(admin);
}

static void test_api_refuses_repairs_without_a_configured_token(void **state) {
        char base[64], body[256];
        drv_admin_t *admin;

        (void)state;
        admin = admin_start(NULL, base);
        snprintf(body, sizeof(body),
                 "{\"dataset\": \"%s\", \"reason\": \"x\","
                 " \"clear_failed\": true}",
                 ds);
        expect(http(base, "/api/repair", TOKEN, body), 403,
               "repairs are disabled");
        drv_admin_stop(admin);
        assert_unrepaired(ds);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_dry_run_shows_rows_and_changes_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_execute_without_reason_or_action_is_a_usage_error, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_execute_refused_while_a_runner_holds_the_dataset, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_execute_clears_rows_sets_version_and_audits_once, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_api_repairs_with_token_and_refuses_without, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_api_refuses_repairs_without_a_configured_token, setup,
                teardown),
        };

        drv_test_database_url();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
