/*
 * drover - tests/integration/test_rollback.c: drv_rollback_* on a real
 * PostgreSQL (DROVER_TEST_DATABASE_URL): every reversible op undone,
 * newest plan and step first, leaving the schema and data as they were;
 * the ledger keeps both directions; a redelivered rollback does nothing;
 * the forward plan runs again afterwards; an irreversible step, a step
 * without a recorded spec, a target inside a plan, a target not below the
 * version and a version moved since the task was made are refused before
 * anything changes.  POST /api/rollback: the dry run, a refusal, the
 * token, and a rollback task submitted.
 */
#include "admin.h"
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PGconn *conn;
static char tbl[32]; /* per-test prefix and dataset: "rb<pid>_<n>" */

static const char *tid(const char *suffix) {
        static char buf[4][96];
        static int n;
        char *out = buf[n++ % 4];

        snprintf(out, sizeof(buf[0]), "%s-%s", tbl, suffix);
        return out;
}

/* drv_test_value on the test's connection. */
#define q(...) drv_test_value(conn, __VA_ARGS__)

static drv_plan_t *mkplan(int from, int to, const char *steps_fmt) {
        char steps[6144], text[8192], errstr[512];
        drv_plan_t *plan = NULL;
        json_t *entity;

        snprintf(steps, sizeof(steps), steps_fmt, tbl);
        snprintf(text, sizeof(text),
                 "{\"apiVersion\":\"backstage.io/v1alpha1\","
                 "\"kind\":\"Component\",\"metadata\":{\"name\":\"p-%s-%d\"},"
                 "\"spec\":{\"type\":\"migration-plan\",\"owner\":\"t\","
                 "\"dataset\":\"%s\",\"schemaVersion\":{\"from\":%d,"
                 "\"to\":%d},\"steps\":%s}}",
                 tbl, to, tbl, from, to, steps);
        entity = json_loads(text, 0, NULL);
        if (!entity)
                fail_msg("bad test json: %s", text);
        if (drv_plan_from_json(entity, "test", &plan, errstr, sizeof(errstr)))
                fail_msg("plan refused: %s", errstr);
        json_decref(entity);
        return plan;
}

static void run_plan(const drv_plan_t *plan, const char *task) {
        drv_run_opts_t o = {0};
        drv_run_result_t res;

        o.task_id = task;
        o.allow_sql = 1;
        o.wait_for_lock = 1;
        if (drv_plan_run(conn, plan, &o, &res))
                fail_msg("plan run failed: %s", res.errmsg);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
}

static int rollback_dry; /* 1: the next rollback() is a dry run */

static drv_err_t rollback(const char *task, long to, long expect_from,
                          drv_run_result_t *res) {
        drv_run_opts_t o = {0};

        o.dry_run = rollback_dry;
        rollback_dry = 0;
        o.task_id = task;
        o.dataset = tbl;
        o.allow_sql = 1;
        o.wait_for_lock = 1;
        return drv_rollback_run(conn, &o, to, expect_from, res);
}

/* The tables' columns (name, type), indexes and data, as one text. */
static char *snapshot(void) {
        return strdup(
            q("SELECT concat_ws(' | ', (SELECT string_agg(table_name || '.' ||"
              " column_name || ':' || format_type(a.atttypid, a.atttypmod),"
              " ', ' ORDER BY table_name, column_name) FROM"
              " information_schema.columns c JOIN pg_attribute a ON"
              " a.attrelid = (c.table_name)::regclass AND a.attname ="
              " c.column_name WHERE table_schema = 'public' AND table_name LIKE"
              " '%1$s%%'), (SELECT string_agg(indexname, ', ' ORDER BY"
              " indexname) FROM pg_indexes WHERE tablename LIKE '%1$s%%'),"
              " (SELECT md5(string_agg(s::text, ',' ORDER BY id)) FROM"
              " %1$s_src s))",
              tbl));
}

/* The snapshot now equals `want` (the snapshot freed either way). */
static void assert_snapshot(const char *want) {
        char *now = snapshot();
        int same = !strcmp(now, want);

        if (!same)
                print_error("snapshot \"%s\" != \"%s\"\n", now, want);
        free(now);
        assert_true(same);
}

static int group_setup(void **state) {
        char errstr[512];

        (void)state;
        if (drv_db_connect(drv_test_database_url(), &conn, errstr,
                           sizeof(errstr)) ||
            drv_db_migrate(conn, errstr, sizeof(errstr))) {
                fprintf(stderr, "setup: %s\n", errstr);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        (void)state;
        PQfinish(conn);
        return 0;
}

static int setup(void **state) {
        static int n;

        (void)state;
        snprintf(tbl, sizeof(tbl), "rb%d_%d", (int)getpid(), ++n);
        q("CREATE TABLE %1$s_src (id bigint PRIMARY KEY, email text, name"
          " text, score int)",
          tbl);
        q("INSERT INTO %1$s_src SELECT g, 'u' || g || '@d' || (g %% 3) ||"
          " '.example', 'n' || g, g FROM generate_series(1, 120) g",
          tbl);
        return 0;
}

/* Plan 1 -> 2: every reversible op, batched steps included (so it runs
 * step by step); plan 2 -> 3: the one-transaction path. */
static const char *plan12 =
    "[{\"op\":\"create_table\",\"table\":\"%1$s_dst\",\"columns\":["
    "{\"name\":\"id\",\"type\":\"bigint\",\"primary_key\":true},"
    "{\"name\":\"domain\",\"type\":\"text\"}]},"
    "{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":{\"name\":"
    "\"domain\",\"type\":\"text\"}},"
    "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"domain\":"
    "\"split_part(email, '@', 2)\"},\"batch_size\":50,"
    "\"revert_set\":{\"domain\":\"NULL\"}},"
    "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
    "\"upper(name)\"},\"revert_set\":{\"name\":\"lower(name)\"},"
    "\"revert_where\":\"id > 0\"},"
    "{\"op\":\"copy_rows\",\"from\":\"%1$s_src\",\"to\":\"%1$s_dst\","
    "\"columns\":{\"id\":\"id\",\"domain\":\"domain\"},\"batch_size\":40,"
    "\"revert_where\":\"true\"},"
    "{\"op\":\"alter_type\",\"table\":\"%1$s_src\",\"column\":\"score\","
    "\"type\":\"text\",\"using\":\"score::text\","
    "\"revert_using\":\"score::integer\"},"
    "{\"op\":\"create_index\",\"table\":\"%1$s_src\",\"name\":\"%1$s_dom\","
    "\"columns\":[\"domain\"],\"concurrently\":true},"
    "{\"op\":\"validate\",\"row_count_equal\":[\"%1$s_src\",\"%1$s_dst\"]},"
    "{\"op\":\"sql\",\"sql\":\"CREATE TABLE %1$s_extra (x int)\","
    "\"revert\":\"DROP TABLE %1$s_extra\"}]";
static const char *plan23 =
    "[{\"op\":\"rename_column\",\"table\":\"%1$s_src\",\"from\":\"email\","
    "\"to\":\"mail\"},"
    "{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":{\"name\":"
    "\"flag\",\"type\":\"boolean\",\"default\":true}},"
    "{\"op\":\"create_index\",\"table\":\"%1$s_src\",\"name\":\"%1$s_flag\","
    "\"columns\":[\"flag\"]}]";

static void test_every_reversible_op_rolls_back(void **state) {
        drv_plan_t *p12 = mkplan(1, 2, plan12), *p23 = mkplan(2, 3, plan23);
        drv_rollback_t *rb = NULL;
        drv_run_result_t res;
        char errstr[512], *before, *after2;

        (void)state;
        before = snapshot();
        run_plan(p12, tid("fwd12"));
        after2 = snapshot();
        run_plan(p23, tid("fwd23"));
        assert_string_equal(q("SELECT version FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "3");
        /* the plan: newest plan first, last step first, nothing refused */
        if (drv_rollback_plan(conn, tbl, 1, &rb, errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
        assert_int_equal(rb->version, 3);
        assert_int_equal(rb->undo_cnt, 12);
        assert_string_equal(rb->steps[0].op, "create_index");
        assert_int_equal(rb->steps[0].to, 3);
        assert_string_equal(rb->steps[2].op, "rename_column");
        assert_string_equal(rb->steps[3].op, "sql");
        assert_string_equal(rb->steps[11].op, "create_table");
        assert_int_equal(drv_rollback_check(rb, errstr, sizeof(errstr)),
                         DRV_OK);
        drv_rollback_destroy(rb);

        /* a dry run task plans and changes nothing */
        rollback_dry = 1;
        if (rollback(tid("dry"), 1, 3, &res))
                fail_msg("dry run: %s", res.errmsg);
        assert_int_equal(res.outcome, DRV_RUN_DRY_RUN);
        assert_int_equal(res.steps_total, 12);
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " task_id = '%s'",
                              tid("dry")),
                            "0");
        assert_string_equal(q("SELECT version FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "3");
        /* to 2 first: plan 2 -> 3 only */
        if (rollback(tid("rb2"), 2, 3, &res))
                fail_msg("rollback to 2: %s", res.errmsg);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        assert_int_equal(res.steps_done, 3);
        assert_snapshot(after2);
        /* then to 1 */
        if (rollback(tid("rb1"), 1, -1, &res))
                fail_msg("rollback to 1: %s", res.errmsg);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        assert_int_equal(res.steps_done, 9);
        assert_snapshot(before);
        assert_string_equal(q("SELECT version FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "1");
        /* the ledger keeps both directions */
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " dataset = '%s' AND status = 'rolled_back'"
                              " AND spec IS NOT NULL",
                              tbl),
                            "12");
        assert_string_equal(q("SELECT string_agg(op, ',' ORDER BY step) FROM"
                              " drover.step_ledger WHERE task_id = '%s'",
                              tid("rb1")),
                            "sql,none,drop_index,alter_type,delete,update,"
                            "update,drop_column,drop_table");
        /* repair does not take rolled-back rows for unfinished ones */
        {
                drv_repair_t rp = {.dataset = tbl, .clear = 1};
                json_t *show = NULL;

                if (drv_repair_show(conn, &rp, &show, errstr, sizeof(errstr)))
                        fail_msg("%s", errstr);
                assert_int_equal(
                    json_integer_value(json_object_get(
                        json_object_get(show, "would"), "delete_rows")),
                    0);
                json_decref(show);
        }
        /* a redelivery of the rollback: done, nothing runs again */
        if (rollback(tid("rb1"), 1, 3, &res))
                fail_msg("redelivered rollback: %s", res.errmsg);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        assert_int_equal(res.steps_done, 9);
        assert_snapshot(before);
        /* the forward plan runs afresh, not skipped as done */
        run_plan(p12, tid("again12"));
        assert_snapshot(after2);
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " task_id = '%s' AND status = 'done'",
                              tid("again12")),
                            "9");
        free(before);
        free(after2);
        drv_plan_release(p12);
        drv_plan_release(p23);
}

/* Nothing changed: version `v`, no rollback row. */
static void assert_untouched(const char *task, const char *v) {
        assert_string_equal(q("SELECT version FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            v);
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " task_id = '%s'",
                              task),
                            "0");
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " dataset = '%s' AND status = 'rolled_back'",
                              tbl),
                            "0");
}

static void test_refusals_change_nothing(void **state) {
        drv_plan_t *p12 =
            mkplan(1, 2,
                   "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                   "{\"name\":\"c\",\"type\":\"int\"}},{\"op\":\"drop_column\","
                   "\"table\":\"%1$s_src\",\"column\":\"score\"}]");
        drv_plan_t *p24 =
            mkplan(2, 4,
                   "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                   "{\"name\":\"d\",\"type\":\"int\"}}]");
        drv_run_result_t res;
        drv_err_t err;

        (void)state;
        run_plan(p12, tid("f12"));
        run_plan(p24, tid("f24"));
        /* an irreversible step on the way, named with its plan */
        err = rollback(tid("r1"), 1, -1, &res);
        assert_int_equal(err, DRV_ERR_INVALID_PLAN);
        assert_int_equal(res.outcome, DRV_RUN_FAILED);
        if (!strstr(res.errmsg, "step 1:drop_column of plan "
                                "\"component:default/p-") ||
            !strstr(res.errmsg, "is irreversible"))
                fail_msg("%s", res.errmsg);
        assert_untouched(tid("r1"), "4");
        /* a target inside a plan (2 -> 4) */
        err = rollback(tid("r3"), 3, -1, &res);
        assert_int_equal(err, DRV_ERR_VERSION_CONFLICT);
        if (!strstr(res.errmsg, "is inside plan") ||
            !strstr(res.errmsg, "roll back to 2"))
                fail_msg("%s", res.errmsg);
        /* not below the version; unknown dataset's none */
        assert_int_equal(rollback(tid("r4"), 4, -1, &res),
                         DRV_ERR_VERSION_CONFLICT);
        assert_non_null(strstr(res.errmsg, "nothing to roll back"));
        /* the version moved since the task was made */
        assert_int_equal(rollback(tid("r2"), 2, 3, &res),
                         DRV_ERR_VERSION_CONFLICT);
        assert_non_null(strstr(res.errmsg, "was made at version 3"));
        assert_untouched(tid("r2"), "4");
        /* a step recorded before rollback support, below the target of
         * a good rollback it does not stop; on the way it refuses */
        q("UPDATE drover.step_ledger SET spec = NULL WHERE task_id = '%s'",
          tid("f12"));
        assert_int_equal(rollback(tid("r1b"), 1, -1, &res),
                         DRV_ERR_VERSION_CONFLICT);
        if (!strstr(res.errmsg, "has no recorded spec"))
                fail_msg("%s", res.errmsg);
        assert_untouched(tid("r1b"), "4");
        if (rollback(tid("r2b"), 2, 4, &res))
                fail_msg("rollback to 2: %s", res.errmsg);
        assert_string_equal(q("SELECT version FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "2");
        /* a plan part-way (its first step done, its backfill failed, the
         * version not moved): refused until it is run to the end */
        {
                drv_plan_t *p23 = mkplan(
                    2, 3,
                    "[{\"op\":\"add_column\",\"table\":\"%1$s_src\","
                    "\"column\":{\"name\":\"e\",\"type\":\"int\"}},"
                    "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":"
                    "{\"c\":\"1 / (id - 60)\"},\"batch_size\":10}]");
                drv_run_opts_t o = {0};

                o.task_id = tid("f23");
                o.allow_sql = 1;
                o.wait_for_lock = 1;
                assert_int_not_equal(drv_plan_run(conn, p23, &o, &res), DRV_OK);
                assert_int_equal(rollback(tid("r1c"), 1, -1, &res),
                                 DRV_ERR_VERSION_CONFLICT);
                if (!strstr(res.errmsg, "is part-way on dataset") ||
                    !strstr(res.errmsg, "run it to the end"))
                        fail_msg("%s", res.errmsg);
                drv_plan_release(p23);
        }
        drv_plan_release(p12);
        drv_plan_release(p24);
}

/*
 * ------------------------------------------------------------------------
 * POST /api/rollback
 * ------------------------------------------------------------------------
 */
#define TOKEN "rollback-admin-token-for-tests"

static drv_test_resp_t post(const char *base, const char *token,
                            const char *fmt, ...) {
        char url[128], auth[128], body[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(body, sizeof(body), fmt, ap);
        va_end(ap);
        snprintf(url, sizeof(url), "%s/api/rollback", base);
        snprintf(auth, sizeof(auth), "Bearer %s", token ? token : "");
        return drv_test_http("POST", url, token ? auth : NULL, body,
                             strlen(body));
}

static void expect(drv_test_resp_t r, long status, const char *needle) {
        if (r.status != status || !strstr(r.body, needle))
                fail_msg("want %ld with \"%s\", got %ld: %s", status, needle,
                         r.status, r.body);
        free(r.body);
}

static void test_api_rollback(void **state) {
        drv_plan_t *p12 =
            mkplan(1, 2,
                   "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                   "{\"name\":\"c\",\"type\":\"int\"}}]");
        drv_plan_t *p23 =
            mkplan(2, 3,
                   "[{\"op\":\"drop_column\",\"table\":\"%1$s_src\",\"column\":"
                   "\"c\"}]");
        drv_admin_conf_t ac = {.listen = "127.0.0.1:0", .token = TOKEN};
        char base[64], errstr[512], topic[128];
        drv_schema_conf_t sc = {0};
        drv_schema_store_t *store;
        drv_admin_t *admin;

        (void)state;
        run_plan(p12, tid("f12"));
        snprintf(topic, sizeof(topic), "%s", drv_test_unique("drv-rb"));
        if (!(store = drv_schema_store_new(&sc, errstr, sizeof(errstr))))
                fail_msg("%s", errstr);
        ac.database_url = drv_test_database_url();
        ac.brokers = drv_test_brokers();
        ac.topic = topic;
        ac.store = store;
        if (!(admin = drv_admin_start(&ac, errstr, sizeof(errstr))))
                fail_msg("drv_admin_start: %s", errstr);
        snprintf(base, sizeof(base), "http://127.0.0.1:%d",
                 drv_admin_port(admin));
        /* the token, the body */
        expect(post(base, NULL, "{\"dataset\":\"%s\",\"to_version\":1}", tbl),
               401, "bearer token");
        expect(post(base, TOKEN, "{\"dataset\":\"%s\",\"to\":1}", tbl), 400,
               "unknown field");
        expect(post(base, TOKEN,
                    "{\"dataset\":\"%s\",\"to_version\":1,\"execute\":1}", tbl),
               400, "must be a boolean");
        /* the dry run changes nothing */
        expect(post(base, TOKEN, "{\"dataset\":\"%s\",\"to_version\":1}", tbl),
               200, "\"inverse\":{\"op\":\"drop_column\"");
        assert_string_equal(q("SELECT version FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "2");
        /* execute: a task on the topic */
        expect(post(base, TOKEN,
                    "{\"dataset\":\"%s\",\"to_version\":1,\"execute\":"
                    "true}",
                    tbl),
               202, "\"task_id\"");
        /* a refusal names the step, and submits nothing */
        run_plan(p23, tid("f23"));
        expect(post(base, TOKEN,
                    "{\"dataset\":\"%s\",\"to_version\":1,\"execute\":"
                    "true}",
                    tbl),
               409, "step 0:drop_column of plan");
        drv_admin_stop(admin);
        drv_schema_store_destroy(store);
        drv_plan_release(p12);
        drv_plan_release(p23);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup(test_every_reversible_op_rolls_back, setup),
            cmocka_unit_test_setup(test_refusals_change_nothing, setup),
            cmocka_unit_test_setup(test_api_rollback, setup),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
