/*
 * drover - tests/integration/test_transforms_ops.c: the plan runner on a
 * real PostgreSQL (DROVER_TEST_DATABASE_URL, from scripts/pg.sh).
 *
 * Every op: apply, re-apply (no-op), dry-run (no change); invalid input
 * refused before any SQL; injection attempts refused or inert; version
 * guard; ledger conflict; two runners on one dataset.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PGconn *conn;
static char tbl[32]; /* per-test prefix: "t<pid>_<n>" */

/* A task id unique to this test run. */
static const char *tid(const char *suffix) {
        static char buf[4][96];
        static int n;
        char *out = buf[n++ % 4];

        snprintf(out, sizeof(buf[0]), "%s-%s", tbl, suffix);
        return out;
}

static void setup_names(void) {
        static int n;

        snprintf(tbl, sizeof(tbl), "t%d_%d", (int)getpid(), ++n);
}

/* Run SQL that must succeed; returns the first value (drv_test_value). */
#define q(...) drv_test_value(conn, __VA_ARGS__)

/* A plan from a steps JSON text (tables named with %1$s = tbl). */
static drv_plan_t *mkplan(const char *dataset, int from, int to,
                          const char *steps) {
        char text[8192], errstr[512];
        json_error_t jerr;
        drv_plan_t *plan = NULL;
        json_t *entity;
        drv_err_t err;

        snprintf(text, sizeof(text),
                 "{\"apiVersion\":\"backstage.io/v1alpha1\","
                 "\"kind\":\"Component\",\"metadata\":{\"name\":\"p-%s\"},"
                 "\"spec\":{\"type\":\"migration-plan\",\"owner\":\"t\","
                 "\"dataset\":\"%s\",\"schemaVersion\":{\"from\":%d,"
                 "\"to\":%d},\"steps\":%s}}",
                 dataset, dataset, from, to, steps);
        entity = json_loads(text, 0, &jerr);
        if (!entity)
                fail_msg("bad test json: %s: %s", jerr.text, text);
        err = drv_plan_from_json(entity, "test", &plan, errstr, sizeof(errstr));
        json_decref(entity);
        return err ? NULL : plan;
}

static long run_stmt_ms; /* the worker's statement_timeout_ms; 0: 60 s */
static drv_progress_cb_t *run_progress_cb; /* NULL: none */

static drv_err_t run(const drv_plan_t *plan, const char *task, int dry,
                     const drv_param_t *params, size_t nparams,
                     drv_run_result_t *res) {
        drv_run_opts_t o = {0};

        o.statement_timeout_ms = run_stmt_ms;
        o.progress = run_progress_cb;
        o.task_id = task;
        o.dry_run = dry;
        o.params = params;
        o.params_cnt = nparams;
        o.allow_sql = 1;
        o.wait_for_lock = 1;
        return drv_plan_run(conn, plan, &o, res);
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
        /* twice: the migration is idempotent */
        return drv_db_migrate(conn, errstr, sizeof(errstr)) ? -1 : 0;
}

static int group_teardown(void **state) {
        (void)state;
        PQfinish(conn);
        return 0;
}

/* A source table of n rows with a trigger counting updates per row. */
static void seed(int n) {
        q("CREATE TABLE %1$s_src (id bigint PRIMARY KEY, email text,"
          " name text, score int, updates int NOT NULL DEFAULT 0)",
          tbl);
        q("INSERT INTO %1$s_src (id, email, name, score) SELECT g,"
          " 'u' || g || '@d' || (g %% 7) || '.example', 'n' || g, g"
          " FROM generate_series(1, %2$d) g",
          tbl, n);
        q("CREATE FUNCTION %1$s_count() RETURNS trigger LANGUAGE plpgsql AS"
          " 'BEGIN NEW.updates := OLD.updates + 1; RETURN NEW; END'",
          tbl);
        q("CREATE TRIGGER %1$s_trg BEFORE UPDATE ON %1$s_src FOR EACH ROW"
          " EXECUTE FUNCTION %1$s_count()",
          tbl);
}

/* Every op in one plan.  %1$s is the table prefix. */
static const char *all_ops =
    "[{\"op\":\"create_table\",\"table\":\"%1$s_dst\",\"columns\":["
    "{\"name\":\"id\",\"type\":\"bigint\",\"primary_key\":true},"
    "{\"name\":\"domain\",\"type\":\"text\"},"
    "{\"name\":\"label\",\"type\":\"varchar(64)\",\"default\":\"'x'\"}]},"
    "{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":{\"name\":"
    "\"email_domain\",\"type\":\"text\"}},"
    "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"email_domain\":"
    "\"split_part(email, '@', 2) || $param:suffix\"},\"batch_size\":37},"
    "{\"op\":\"rename_column\",\"table\":\"%1$s_src\",\"from\":\"name\","
    "\"to\":\"full_name\"},"
    "{\"op\":\"alter_type\",\"table\":\"%1$s_src\",\"column\":\"score\","
    "\"type\":\"bigint\"},"
    "{\"op\":\"create_index\",\"table\":\"%1$s_src\",\"name\":\"%1$s_dom\","
    "\"columns\":[\"email_domain\"],\"concurrently\":true},"
    "{\"op\":\"copy_rows\",\"from\":\"%1$s_src\",\"to\":\"%1$s_dst\","
    "\"key\":\"id\",\"columns\":{\"id\":\"id\",\"domain\":\"email_domain\"},"
    "\"batch_size\":50},"
    "{\"op\":\"drop_column\",\"table\":\"%1$s_src\",\"column\":\"score\"},"
    "{\"op\":\"validate\",\"not_null\":[\"%1$s_src.email_domain\","
    "\"%1$s_dst.domain\"],\"row_count_equal\":[\"%1$s_src\",\"%1$s_dst\"],"
    "\"checksum_equal\":{\"tables\":[\"%1$s_src\",\"%1$s_dst\"],"
    "\"columns\":[\"id\"]}},"
    "{\"op\":\"sql\",\"sql\":\"UPDATE %1$s_dst SET label = $param:label\"}]";

static drv_plan_t *all_ops_plan(const char *dataset) {
        char steps[4096];

        snprintf(steps, sizeof(steps), all_ops, tbl);
        return mkplan(dataset, 1, 2, steps);
}

static const drv_param_t params[] = {{(char *)"suffix", (char *)".x"},
                                     {(char *)"label", (char *)"L"}};

/* A dry run recorded nothing: no dataset row, no ledger row. */
static void assert_nothing_recorded(const char *task) {
        assert_string_equal(q("SELECT count(*) FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "0");
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " task_id = '%s'",
                              task),
                            "0");
}

static void test_every_op_dry_run_changes_nothing(void **state) {
        drv_run_result_t res;
        drv_plan_t *plan;

        (void)state;
        setup_names();
        seed(500);
        assert_non_null(plan = all_ops_plan(tbl));
        assert_int_equal(run(plan, tid("dry-1"), 1, params, 2, &res), DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_DRY_RUN);
        assert_int_equal(res.steps_done, 10);
        /* 500 to backfill + 500 to copy; the sql step is not counted,
         * and the copy into the table step 0 creates and the backfill of
         * the column step 1 adds cannot be EXPLAINed */
        assert_int_equal(res.rows, 1000);
        assert_int_equal(res.dry_unchecked, 2);
        assert_string_equal(q("SELECT to_regclass('%s_dst') IS NULL", tbl),
                            "t");
        assert_string_equal(q("SELECT count(*) FROM information_schema.columns"
                              " WHERE table_name = '%s_src' AND column_name"
                              " = 'email_domain'",
                              tbl),
                            "0");
        assert_string_equal(q("SELECT sum(updates) FROM %s_src", tbl), "0");
        assert_nothing_recorded(tid("dry-1"));
        drv_plan_release(plan);
}

static void test_every_op_applies_then_reapply_is_noop(void **state) {
        drv_run_result_t res;
        drv_plan_t *plan;
        char task[80];

        (void)state;
        setup_names();
        seed(500);
        assert_non_null(plan = all_ops_plan(tbl));
        snprintf(task, sizeof(task), "%s-a", tbl);
        if (run(plan, task, 0, params, 2, &res))
                fail_msg("run failed: %s", res.errmsg);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        assert_int_equal(res.steps_done, 10);
        /* backfill: every row once, with the bound suffix */
        assert_string_equal(q("SELECT count(*) FROM %s_src WHERE updates = 1"
                              " AND email_domain = split_part(email, '@', 2)"
                              " || '.x'",
                              tbl),
                            "500");
        assert_string_equal(q("SELECT count(*) FROM %1$s_dst d JOIN %1$s_src s"
                              " USING (id) WHERE d.domain = s.email_domain"
                              " AND d.label = 'L'",
                              tbl),
                            "500");
        assert_string_equal(q("SELECT string_agg(column_name, ',' ORDER BY"
                              " column_name) FROM information_schema.columns"
                              " WHERE table_name = '%s_src'",
                              tbl),
                            "email,email_domain,full_name,id,updates");
        assert_string_equal(q("SELECT indisvalid FROM pg_index WHERE"
                              " indexrelid = '%s_dom'::regclass",
                              tbl),
                            "t");
        assert_string_equal(q("SELECT version FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "2");
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " task_id = '%s' AND status = 'done'",
                              task),
                            "10");
        /* same task again (a redelivery): no-op reported done, as that
         * task did the work; another task: a no-op reported skipped */
        assert_int_equal(run(plan, task, 0, params, 2, &res), DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        assert_int_equal(res.steps_done, 10);
        assert_int_equal(run(plan, tid("other-task"), 0, params, 2, &res),
                         DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_SKIPPED);
        assert_string_equal(q("SELECT max(updates) FROM %s_src", tbl), "1");
        assert_string_equal(q("SELECT count(*) FROM %s_dst", tbl), "500");
        drv_plan_release(plan);
}

static void test_invalid_step_refused_before_any_sql(void **state) {
        char steps[2048];
        drv_run_result_t res;
        drv_plan_t *plan;
        drv_err_t err;

        (void)state;
        setup_names();
        seed(10);
        /* step 0 is fine, step 1 needs a param the task does not have */
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"create_table\",\"table\":\"%1$s_new\","
                 "\"columns\":[{\"name\":\"id\",\"type\":\"int\"}]},"
                 "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":"
                 "{\"name\":\"$param:missing\"}}]",
                 tbl);
        assert_non_null(plan = mkplan(tbl, 1, 2, steps));
        err = run(plan, tid("inv-1"), 0, NULL, 0, &res);
        assert_int_equal(err, DRV_ERR_INVALID_PARAM);
        assert_int_equal(res.outcome, DRV_RUN_FAILED);
        assert_int_equal(res.failed_step, 1);
        assert_string_equal(q("SELECT to_regclass('%s_new') IS NULL", tbl),
                            "t");
        assert_string_equal(q("SELECT count(*) FROM drover.datasets WHERE"
                              " dataset = '%s'",
                              tbl),
                            "0");
        drv_plan_release(plan);

        /* raw sql without permission: refused, nothing ran */
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"create_table\",\"table\":\"%1$s_new\","
                 "\"columns\":[{\"name\":\"id\",\"type\":\"int\"}]},"
                 "{\"op\":\"sql\",\"sql\":\"DELETE FROM %1$s_src\"}]",
                 tbl);
        assert_non_null(plan = mkplan(tbl, 1, 2, steps));
        {
                drv_run_opts_t o = {0};

                o.task_id = tid("inv-2");
                o.wait_for_lock = 1;
                err = drv_plan_run(conn, plan, &o, &res);
        }
        assert_int_equal(err, DRV_ERR_SQL_REFUSED);
        assert_string_equal(q("SELECT to_regclass('%s_new') IS NULL", tbl),
                            "t");
        assert_string_equal(q("SELECT count(*) FROM %s_src", tbl), "10");
        drv_plan_release(plan);
}

/*
 * Injection: each case is a step (with %1$s = prefix) and maybe a param
 * value; the plan must be refused (at load or run) or run inertly, and
 * the victim table must survive with its rows.
 */
typedef struct inj_s {
        const char *what;
        const char *step;
        const char *param; /* value of $param:v, or NULL */
        int must_refuse;   /* 1: refused; 0: runs and is inert */
} inj_t;

static const inj_t inj_cases[] = {
    {"table name with a statement",
     "{\"op\":\"drop_column\",\"table\":\"%1$s_src; DROP TABLE %1$s_victim\","
     "\"column\":\"name\"}",
     NULL, 1},
    {"column name with a quote",
     "{\"op\":\"drop_column\",\"table\":\"%1$s_src\",\"column\":"
     "\"name\\\" CASCADE; DROP TABLE %1$s_victim; --\"}",
     NULL, 1},
    {"three-part name",
     "{\"op\":\"drop_column\",\"table\":\"public.%1$s_src.x\","
     "\"column\":\"name\"}",
     NULL, 1},
    {"type with a statement",
     "{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":{\"name\":"
     "\"c\",\"type\":\"text; DROP TABLE %1$s_victim\"}}",
     NULL, 1},
    {"stacked statement in an expression",
     "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
     "\"'a'); DROP TABLE %1$s_victim; SELECT ('\"}}",
     NULL, 1},
    {"comment in an expression",
     "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
     "\"'a' --\"}}",
     NULL, 1},
    {"dollar quoting hiding a parenthesis",
     "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
     "\"$a$($a$) WHERE false OR ($a$)$a$\"}}",
     NULL, 1},
    {"escape string",
     "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
     "\"E'\\\\'' OR true\"}}",
     NULL, 1},
    {"raw placeholder",
     "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
     "\"$1\"}}",
     NULL, 1},
    {"param with a statement is stored as text",
     "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
     "\"$param:v\"}}",
     "x'); DROP TABLE victim; --", 0},
    {"param closing a parenthesis is stored as text",
     "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":{\"name\":"
     "\"lower($param:v)\"},\"where\":\"id > 0\"}",
     "a') OR (1=1", 0},
};

/* A $param: inside a quoted literal is text (plan check and the runner
 * read expressions with one tokenizer): the runner used to bind it
 * anyway, PostgreSQL refused the bind (08P01) and the task was retried as
 * db_unavailable forever. */
static void test_quoted_param_is_literal_text(void **state) {
        char steps[512], ds[80];
        drv_run_result_t res;
        drv_param_t p = {(char *)"x", (char *)"value"};
        drv_plan_t *plan;

        (void)state;
        setup_names();
        seed(5);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"backfill\",\"table\":\"%s_src\",\"set\":"
                 "{\"name\":\"'$param:x'\"},\"where\":\"name <> "
                 "'$param:x' OR $param:x = 'value'\"}]",
                 tbl);
        snprintf(ds, sizeof(ds), "%s_qp", tbl);
        plan = mkplan(ds, 1, 2, steps);
        assert_non_null(plan);
        if (run(plan, tid("qp"), 0, &p, 1, &res))
                fail_msg("run failed: %s", res.errmsg);
        assert_string_equal(
            q("SELECT count(*) FROM %s_src WHERE name = '$param:x'", tbl), "5");
        drv_plan_release(plan);
}

static void test_injection_refused_or_inert(void **state) {
        char steps[2048], task[80], ds[80];
        drv_run_result_t res;
        drv_param_t p = {(char *)"v", NULL};
        drv_plan_t *plan;
        drv_err_t err;
        size_t i;

        (void)state;
        setup_names();
        seed(20);
        q("CREATE TABLE %1$s_victim (x int)", tbl);
        q("INSERT INTO %1$s_victim VALUES (1), (2)", tbl);
        for (i = 0; i < sizeof(inj_cases) / sizeof(inj_cases[0]); i++) {
                const inj_t *c = &inj_cases[i];

                snprintf(steps, sizeof(steps), "[%s]", c->step);
                {
                        char tmp[2048];

                        snprintf(tmp, sizeof(tmp), steps, tbl);
                        snprintf(steps, sizeof(steps), "%s", tmp);
                }
                snprintf(ds, sizeof(ds), "%s_inj%zu", tbl, i);
                snprintf(task, sizeof(task), "%s-%zu", tbl, i);
                p.value = (char *)c->param;
                plan = mkplan(ds, 1, 2, steps);
                err = plan ? run(plan, task, 0, &p, c->param ? 1 : 0, &res)
                           : DRV_ERR_INVALID_PLAN;
                if (c->must_refuse && !err)
                        fail_msg("case %zu (%s) was not refused", i, c->what);
                if (!c->must_refuse && err)
                        fail_msg("case %zu (%s) failed: %s", i, c->what,
                                 res.errmsg);
                if (!c->must_refuse)
                        assert_string_equal(
                            q("SELECT count(*) FROM %s_src WHERE name = "
                              "%s($q$%s$q$)",
                              tbl, i == 10 ? "lower" : "", c->param),
                            "20");
                assert_string_equal(q("SELECT count(*) FROM %s_victim", tbl),
                                    "2");
                drv_plan_release(plan);
        }
}

static void test_version_guard_and_ledger_conflict(void **state) {
        char steps[1024], ds[80];
        drv_run_result_t res;
        drv_plan_t *plan, *plan2;

        (void)state;
        setup_names();
        seed(5);
        snprintf(ds, sizeof(ds), "%s_v", tbl);
        /* a dataset at version 5 refuses a 1 -> 2 plan */
        q("INSERT INTO drover.datasets (dataset, version) VALUES ('%s', 5)",
          ds);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"a\",\"type\":\"int\"}}]",
                 tbl);
        assert_non_null(plan = mkplan(ds, 1, 2, steps));
        assert_int_equal(run(plan, tid("vg-1"), 0, NULL, 0, &res),
                         DRV_ERR_VERSION_CONFLICT);
        assert_string_equal(q("SELECT count(*) FROM information_schema.columns"
                              " WHERE table_name = '%s_src' AND column_name"
                              " = 'a'",
                              tbl),
                            "0");
        drv_plan_release(plan);

        /* a simple plan is one transaction: step 1 fails, step 0 is
         * rolled back with it and the ledger has nothing of the task */
        snprintf(ds, sizeof(ds), "%s_a", tbl);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"b\",\"type\":\"int\"}},"
                 "{\"op\":\"validate\",\"not_null\":[\"%1$s_src.b\"]}]",
                 tbl);
        assert_non_null(plan = mkplan(ds, 1, 2, steps));
        assert_int_equal(drv_plan_one_txn(plan, 0), 1);
        assert_int_equal(run(plan, tid("at-1"), 0, NULL, 0, &res), DRV_ERR_SQL);
        assert_string_equal(res.sqlstate, "23502");
        assert_int_equal(res.failed_step, 1);
        assert_string_equal(q("SELECT count(*) FROM information_schema.columns"
                              " WHERE table_name = '%s_src' AND column_name"
                              " = 'b'",
                              tbl),
                            "0");
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " task_id = '%s'",
                              tid("at-1")),
                            "0");
        drv_plan_release(plan);

        /* task T of a batched plan (its own transaction per step): step 0
         * done, step 1 fails; then a changed step 0 */
        snprintf(ds, sizeof(ds), "%s_l", tbl);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"b\",\"type\":\"int\"}},"
                 "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":"
                 "{\"b\":\"1 / (id - id)\"}}]",
                 tbl);
        assert_non_null(plan = mkplan(ds, 1, 2, steps));
        assert_int_equal(drv_plan_one_txn(plan, 0), 0);
        assert_int_equal(run(plan, tid("lc-1"), 0, NULL, 0, &res), DRV_ERR_SQL);
        assert_string_equal(res.sqlstate, "22012");
        assert_int_equal(res.failed_step, 1);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"b2\",\"type\":\"int\"}},"
                 "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":"
                 "{\"b\":\"1 / (id - id)\"}}]",
                 tbl);
        assert_non_null(plan2 = mkplan(ds, 1, 2, steps));
        assert_int_equal(run(plan2, tid("lc-1"), 0, NULL, 0, &res),
                         DRV_ERR_LEDGER_CONFLICT);
        assert_int_equal(res.failed_step, 0);
        drv_plan_release(plan);
        drv_plan_release(plan2);

        /* T1 (1 -> 2) and T2 (2 -> 3) done; then T1 is redelivered (its
         * worker died before the Kafka commit, after T2's database work):
         * done by the ledger, not a version conflict, and nothing reruns */
        snprintf(ds, sizeof(ds), "%s_r", tbl);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"r1\",\"type\":\"int\"}}]",
                 tbl);
        assert_non_null(plan = mkplan(ds, 1, 2, steps));
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"r2\",\"type\":\"int\"}}]",
                 tbl);
        assert_non_null(plan2 = mkplan(ds, 2, 3, steps));
        assert_int_equal(run(plan, tid("rd-1"), 0, NULL, 0, &res), DRV_OK);
        assert_int_equal(run(plan2, tid("rd-2"), 0, NULL, 0, &res), DRV_OK);
        assert_int_equal(run(plan, tid("rd-1"), 0, NULL, 0, &res), DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        /* another task with the 1 -> 2 plan now is a conflict */
        assert_int_equal(run(plan, tid("rd-3"), 0, NULL, 0, &res),
                         DRV_ERR_VERSION_CONFLICT);
        /* a repeat of the 2 -> 3 plan is a no-op (skipped); redelivered
         * after a 3 -> 4 task moved the dataset on, it is skipped again */
        assert_int_equal(run(plan2, tid("rd-4"), 0, NULL, 0, &res), DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_SKIPPED);
        q("UPDATE drover.datasets SET version = 4 WHERE dataset = '%s'", ds);
        assert_int_equal(run(plan2, tid("rd-4"), 0, NULL, 0, &res), DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_SKIPPED);
        assert_int_equal(run(plan2, tid("rd-5"), 0, NULL, 0, &res),
                         DRV_ERR_VERSION_CONFLICT);
        q("UPDATE drover.datasets SET version = 3 WHERE dataset = '%s'", ds);
        assert_string_equal(
            q("SELECT version FROM drover.datasets WHERE dataset = '%s'", ds),
            "3");
        drv_plan_release(plan);
        drv_plan_release(plan2);
}

/* The state of index %1$s_<suffix>: "t" valid and ready, "f" invalid,
 * "" none. */
static const char *index_valid(const char *suffix) {
        return q("SELECT bool_and(ix.indisvalid AND ix.indisready) FROM"
                 " pg_index ix JOIN pg_class c ON c.oid = ix.indexrelid"
                 " WHERE c.relname = '%s_%s'",
                 tbl, suffix);
}

/* A concurrent unique index step on %1$s_dup (k), dataset %1$s_<ds>. */
static drv_plan_t *unique_index_plan(const char *ds_suffix) {
        char steps[512], ds[80];

        snprintf(ds, sizeof(ds), "%s_%s", tbl, ds_suffix);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"create_index\",\"table\":\"%1$s_dup\","
                 "\"name\":\"%1$s_uk\",\"columns\":[\"k\"],"
                 "\"unique\":true,\"concurrently\":true}]",
                 tbl);
        return mkplan(ds, 1, 2, steps);
}

/* A failed CREATE UNIQUE INDEX CONCURRENTLY (duplicates) fails the step
 * with the unique violation and leaves no INVALID index; the ledger and
 * the dataset's version do not move. */
static void test_create_index_failed_build_leaves_nothing(void **state) {
        drv_run_result_t res;
        drv_plan_t *plan;

        (void)state;
        setup_names();
        q("CREATE TABLE %1$s_dup (id bigint PRIMARY KEY, k int)", tbl);
        q("INSERT INTO %1$s_dup VALUES (1, 1), (2, 1), (3, 2)", tbl);
        assert_non_null(plan = unique_index_plan("ci"));
        assert_int_equal(run(plan, tid("ci-1"), 0, NULL, 0, &res), DRV_ERR_SQL);
        assert_string_equal(res.sqlstate, "23505");
        assert_int_equal(res.failed_step, 0);
        assert_string_equal(index_valid("uk"), "");
        assert_string_equal(q("SELECT count(*) FROM drover.step_ledger WHERE"
                              " dataset = '%s_ci' AND status = 'done'",
                              tbl),
                            "0");
        assert_string_equal(q("SELECT count(*) FROM drover.datasets WHERE"
                              " dataset = '%s_ci' AND version = 2",
                              tbl),
                            "0");
        /* the same task again: the same failure, not "done" */
        assert_int_equal(run(plan, tid("ci-1"), 0, NULL, 0, &res), DRV_ERR_SQL);
        assert_string_equal(res.sqlstate, "23505");
        assert_string_equal(index_valid("uk"), "");
        drv_plan_release(plan);
}

/* An INVALID index left by an earlier failed build is rebuilt, not taken
 * for done by IF NOT EXISTS. */
static void test_create_index_rebuilds_invalid_index(void **state) {
        drv_run_result_t res;
        drv_plan_t *plan;
        PGresult *r;

        (void)state;
        setup_names();
        q("CREATE TABLE %1$s_dup (id bigint PRIMARY KEY, k int)", tbl);
        q("INSERT INTO %1$s_dup VALUES (1, 1), (2, 1), (3, 2)", tbl);
        r = PQexec(conn, q("SELECT format('CREATE UNIQUE INDEX CONCURRENTLY"
                           " %%I ON %%I (k)', '%1$s_uk', '%1$s_dup')",
                           tbl));
        assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
        PQclear(r);
        assert_string_equal(index_valid("uk"), "f");
        q("DELETE FROM %1$s_dup WHERE id = 2", tbl);
        assert_non_null(plan = unique_index_plan("cr"));
        assert_int_equal(run(plan, tid("cr-1"), 0, NULL, 0, &res), DRV_OK);
        assert_string_equal(index_valid("uk"), "t");
        assert_string_equal(
            q("SELECT version FROM drover.datasets WHERE dataset = '%s_cr'",
              tbl),
            "2");
        drv_plan_release(plan);
}

/* Two runners, same dataset, same plan, two task ids, at once. */
typedef struct runner_s {
        const drv_plan_t *plan;
        char task[80];
        drv_run_result_t res;
        drv_err_t err;
} runner_t;

static void *runner_main(void *arg) {
        runner_t *r = arg;
        char errstr[512];
        drv_run_opts_t o = {0};
        PGconn *c;

        if (drv_db_connect(drv_test_database_url(), &c, errstr,
                           sizeof(errstr))) {
                r->err = DRV_ERR_DB_UNAVAILABLE;
                return NULL;
        }
        o.task_id = r->task;
        o.wait_for_lock = 1;
        o.batch_pause_ms = 2; /* stretch the run so the two overlap */
        r->err = drv_plan_run(c, r->plan, &o, &r->res);
        PQfinish(c);
        return NULL;
}

static void test_two_runners_one_runs_other_skips(void **state) {
        char steps[1024];
        runner_t r[2];
        pthread_t th[2];
        drv_plan_t *plan;
        int i, done = 0, skipped = 0;

        (void)state;
        setup_names();
        seed(3000);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"n2\",\"type\":\"bigint\"}},"
                 "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":"
                 "{\"n2\":\"id * 2\"},\"batch_size\":100}]",
                 tbl);
        assert_non_null(plan = mkplan(tbl, 1, 2, steps));
        for (i = 0; i < 2; i++) {
                memset(&r[i], 0, sizeof(r[i]));
                r[i].plan = plan;
                snprintf(r[i].task, sizeof(r[i].task), "%s-r%d", tbl, i);
                pthread_create(&th[i], NULL, runner_main, &r[i]);
        }
        for (i = 0; i < 2; i++) {
                pthread_join(th[i], NULL);
                if (r[i].err)
                        fail_msg("runner %d: %s", i, r[i].res.errmsg);
                done += r[i].res.outcome == DRV_RUN_DONE;
                skipped += r[i].res.outcome == DRV_RUN_SKIPPED;
        }
        assert_int_equal(done, 1);
        assert_int_equal(skipped, 1);
        assert_string_equal(q("SELECT count(*) FROM %s_src WHERE n2 = id * 2"
                              " AND updates = 1",
                              tbl),
                            "3000");
        drv_plan_release(plan);
}

/* The one-transaction path's dataset lock is transaction-scoped and
 * conflicts with the batched path's session lock on the same key: a
 * tried run is refused while a session holds the dataset (nothing is
 * written), and its own lock is gone with its commit (a session can lock
 * the dataset right after). */
static void test_one_txn_lock_and_session_lock_exclude(void **state) {
        char steps[512], errstr[512], sql[160];
        drv_run_opts_t o = {0};
        drv_run_result_t res;
        drv_plan_t *plan;
        PGconn *other;
        PGresult *r;

        (void)state;
        setup_names();
        seed(5);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\",\"column\":"
                 "{\"name\":\"lk\",\"type\":\"int\"}}]",
                 tbl);
        assert_non_null(plan = mkplan(tbl, 1, 2, steps));
        assert_int_equal(drv_plan_one_txn(plan, 0), 1);
        assert_int_equal(drv_db_connect(drv_test_database_url(), &other, errstr,
                                        sizeof(errstr)),
                         DRV_OK);
        snprintf(sql, sizeof(sql),
                 "SELECT pg_advisory_lock(%d, hashtext('%s'))", 0x64727673,
                 tbl);
        PQclear(PQexec(other, sql));
        o.task_id = tid("lk-1");
        o.statement_timeout_ms = run_stmt_ms;
        o.wait_for_lock = 0;
        assert_int_equal(drv_plan_run(conn, plan, &o, &res), DRV_ERR_LOCKED);
        assert_string_equal(q("SELECT count(*) FROM information_schema.columns"
                              " WHERE table_name = '%s_src' AND column_name"
                              " = 'lk'",
                              tbl),
                            "0");
        PQclear(PQexec(other, "SELECT pg_advisory_unlock_all()"));
        assert_int_equal(drv_plan_run(conn, plan, &o, &res), DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        snprintf(sql, sizeof(sql),
                 "SELECT pg_try_advisory_lock(%d, hashtext('%s'))", 0x64727673,
                 tbl);
        r = PQexec(other, sql);
        assert_string_equal(PQgetvalue(r, 0, 0), "t");
        PQclear(r);
        PQfinish(other);
        drv_plan_release(plan);
}

/* A step's `timeout` is its statement_timeout; without one its op's
 * default applies (backfill: 10 min per batch), not the worker's. */
static void test_step_timeout(void **state) {
        char steps[512], ds[48];
        drv_run_result_t res;
        drv_plan_t *plan;

        (void)state;
        setup_names();
        snprintf(ds, sizeof(ds), "%s_to1", tbl);
        assert_non_null(plan = mkplan(ds, 1, 2,
                                      "[{\"op\":\"sql\",\"sql\":\"SELECT "
                                      "pg_sleep(2)\",\"timeout\":\"1s\"}]"));
        assert_int_equal(run(plan, tid("to-1"), 0, NULL, 0, &res), DRV_ERR_SQL);
        assert_string_equal(res.sqlstate, "57014"); /* query_canceled */
        assert_int_equal(res.failed_step, 0);
        drv_plan_release(plan);

        snprintf(ds, sizeof(ds), "%s_to5", tbl);
        assert_non_null(plan = mkplan(ds, 1, 2,
                                      "[{\"op\":\"sql\",\"sql\":\"SELECT "
                                      "pg_sleep(2)\",\"timeout\":\"5s\"}]"));
        assert_int_equal(run(plan, tid("to-5"), 0, NULL, 0, &res), DRV_OK);
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        drv_plan_release(plan);

        /* the worker's 1 s would cancel the 2 s batch: the op's default
         * (10 min) applies instead */
        q("CREATE TABLE %1$s_slow (id bigint PRIMARY KEY, v text)", tbl);
        q("INSERT INTO %1$s_slow VALUES (1, NULL)", tbl);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"backfill\",\"table\":\"%s_slow\",\"set\":"
                 "{\"v\":\"(SELECT 'x' FROM pg_sleep(2))\"}}]",
                 tbl);
        snprintf(ds, sizeof(ds), "%s_tod", tbl);
        assert_non_null(plan = mkplan(ds, 1, 2, steps));
        run_stmt_ms = 1000;
        assert_int_equal(run(plan, tid("to-d"), 0, NULL, 0, &res), DRV_OK);
        run_stmt_ms = 0;
        assert_int_equal(res.outcome, DRV_RUN_DONE);
        assert_string_equal(q("SELECT v FROM %s_slow", tbl), "x");
        drv_plan_release(plan);
}

/* What a concurrent writer saw while the dry run's transaction was open
 * (set by dry_writer, from the dry run's progress callback). */
static struct {
        int called;
        char exclusive[16]; /* AccessExclusiveLocks of the dry run */
        int wrote;          /* the writer's INSERT and UPDATE succeeded */
        char why[512];
} dw;

static void dry_writer(void *opaque, int step, const char *op, int64_t done,
                       int64_t total) {
        static const char *const writes[] = {
            "SET lock_timeout = '2s'",
            "INSERT INTO %1$s_src (id, email, name, score) VALUES (1000,"
            " 'w@d.example', 'w', 1)",
            "UPDATE %1$s_src SET name = 'w2' WHERE id = 1",
        };
        char sql[512], errstr[256];
        PGconn *w = NULL;
        PGresult *res;
        size_t i;

        (void)opaque, (void)op, (void)done, (void)total;
        if (step != 0 || dw.called++)
                return;
        if (drv_db_connect(drv_test_database_url(), &w, errstr,
                           sizeof(errstr))) {
                snprintf(dw.why, sizeof(dw.why), "%s", errstr);
                return;
        }
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM pg_locks WHERE pid = %d AND mode ="
                 " 'AccessExclusiveLock'",
                 PQbackendPID(conn));
        res = PQexec(w, sql);
        snprintf(dw.exclusive, sizeof(dw.exclusive), "%s",
                 PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0)
                                                        : "?");
        PQclear(res);
        dw.wrote = 1;
        for (i = 0; dw.wrote && i < sizeof(writes) / sizeof(writes[0]); i++) {
                snprintf(sql, sizeof(sql), writes[i], tbl);
                res = PQexec(w, sql);
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        dw.wrote = 0;
                        snprintf(dw.why, sizeof(dw.why), "%s: %s", sql,
                                 PQerrorMessage(w));
                }
                PQclear(res);
        }
        PQfinish(w);
}

/* A dry run of add_column + backfill holds no lock a writer waits for
 * (the writer has lock_timeout 2 s and must succeed while the dry run's
 * transaction is open), reports the rows the backfill would visit, and
 * changes nothing. */
static void test_dry_run_does_not_block_writers(void **state) {
        char steps[1024];
        drv_run_result_t res;
        drv_plan_t *plan;

        (void)state;
        setup_names();
        seed(20);
        snprintf(steps, sizeof(steps),
                 "[{\"op\":\"add_column\",\"table\":\"%1$s_src\","
                 "\"column\":{\"name\":\"dom\",\"type\":\"text\"}},"
                 "{\"op\":\"backfill\",\"table\":\"%1$s_src\",\"set\":"
                 "{\"name\":\"upper(name)\"},\"where\":\"id <= 10\"}]",
                 tbl);
        assert_non_null(plan = mkplan(tbl, 1, 2, steps));
        memset(&dw, 0, sizeof(dw));
        run_progress_cb = dry_writer;
        assert_int_equal(run(plan, tid("dw-1"), 1, NULL, 0, &res), DRV_OK);
        run_progress_cb = NULL;
        assert_int_equal(dw.called, 1);
        assert_string_equal(dw.exclusive, "0");
        if (!dw.wrote)
                fail_msg("writer blocked: %s", dw.why);
        assert_int_equal(res.outcome, DRV_RUN_DRY_RUN);
        assert_int_equal(res.steps_done, 2);
        assert_int_equal(res.rows, 10); /* the backfill's where */
        assert_int_equal(res.dry_unchecked, 0);
        /* nothing changed but the writer's rows */
        assert_string_equal(q("SELECT count(*) FROM information_schema.columns"
                              " WHERE table_name = '%s_src' AND column_name"
                              " = 'dom'",
                              tbl),
                            "0");
        assert_string_equal(q("SELECT count(*) FROM %s_src WHERE name <>"
                              " lower(name)",
                              tbl),
                            "0");
        assert_string_equal(q("SELECT sum(updates) FROM %s_src", tbl), "1");
        assert_nothing_recorded(tid("dw-1"));
        drv_plan_release(plan);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_every_op_dry_run_changes_nothing),
            cmocka_unit_test(test_every_op_applies_then_reapply_is_noop),
            cmocka_unit_test(test_invalid_step_refused_before_any_sql),
            cmocka_unit_test(test_injection_refused_or_inert),
            cmocka_unit_test(test_quoted_param_is_literal_text),
            cmocka_unit_test(test_version_guard_and_ledger_conflict),
            cmocka_unit_test(test_two_runners_one_runs_other_skips),
            cmocka_unit_test(test_one_txn_lock_and_session_lock_exclude),
            cmocka_unit_test(test_create_index_failed_build_leaves_nothing),
            cmocka_unit_test(test_create_index_rebuilds_invalid_index),
            cmocka_unit_test(test_step_timeout),
            cmocka_unit_test(test_dry_run_does_not_block_writers),
        };
        drv_test_database_url(); /* skip (77) without a database */
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
