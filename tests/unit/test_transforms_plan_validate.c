/*
 * Static validation: the fixtures load, and each kind of bad plan is
 * refused with "file:line: message" pointing at the offending line.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *fixture(const char *rel) {
        static char path[1024];
        const char *src = getenv("DROVER_SOURCE_DIR");

        snprintf(path, sizeof(path), "%s/tests/fixtures/%s",
                 src ? src : "../..", rel);
        return path;
}

#define HEAD                                                    \
        "kind: Component\nmetadata: {name: p}\nspec:\n  type: " \
        "migration-plan\n"                                      \
        "  dataset: d\n  schemaVersion: {from: 1, to: 2}\n  steps:\n"

/* Bad plans: the steps text goes after HEAD (7 lines), so the first step
 * is on line 8. */
static const struct {
        const char *yaml; /* full doc when it starts with "kind", else steps */
        int line;
        const char *msg;
} bad[] = {
    {"    - {op: truncate, table: t}\n", 8, "unknown op \"truncate\""},
    {"    - {table: t}\n", 8, "step 0 needs \"op\""},
    {"    - {op: add_column, table: t}\n", 8, "needs \"column\""},
    {"    - {op: add_column, tabel: t, column: {name: a, type: text}}\n", 8,
     "unknown field \"tabel\""},
    {"    - {op: add_column, table: t, column: {name: a, type: text}}\n"
     "    - {op: drop_column, table: \"t; drop\", column: a}\n",
     9, "invalid table \"t; drop\""},
    {"    - {op: drop_column, table: a.b.c, column: x}\n", 8, "invalid table"},
    {"    - {op: drop_column, table: t, column: s.x}\n", 8,
     "invalid identifier"},
    {"    - {op: add_column, table: t, column: {name: a, type: \"text; "
     "drop table t\"}}\n",
     8, "invalid type"},
    {"    - {op: alter_type, table: t, column: a, type: \"int -- x\"}\n", 8,
     "invalid type"},
    {"    - op: backfill\n      table: t\n      set:\n"
     "        a: \"1; delete from t\"\n",
     11, "';' outside quotes"},
    {"    - {op: backfill, table: t, set: {a: \"1 -- c\"}}\n", 8, "comments"},
    {"    - {op: backfill, table: t, set: {a: \"1 /* c */\"}}\n", 8,
     "comments"},
    {"    - {op: backfill, table: t, set: {a: \"$1\"}}\n", 8, "$param:NAME"},
    {"    - {op: backfill, table: t, set: {a: \"$$x\"}}\n", 8,
     "unterminated dollar quote"},
    {"    - {op: backfill, table: t, set: {a: \"E'\\\\''\"}}\n", 8,
     "escape strings"},
    {"    - {op: backfill, table: t, set: {a: \"'open\"}}\n", 8,
     "unterminated quote"},
    {"    - {op: backfill, table: t, set: {a: x}, batch_size: 0}\n", 8,
     "\"batch_size\" must be a positive integer"},
    {"    - {op: backfill, table: t, set: {a: x}, batch_size: -5}\n", 8,
     "positive integer"},
    {"    - {op: backfill, table: t, set: {}}\n", 8, "must map columns"},
    {"    - {op: copy_rows, from: a, to: b}\n", 8, "needs \"columns\""},
    {"    - {op: create_index, table: t, name: i, columns: [a, a]}\n", 8,
     "duplicate \"a\""},
    {"    - {op: create_index, table: t, name: i, columns: []}\n", 8,
     "non-empty list"},
    {"    - {op: create_index, table: t, name: i, columns: [a], unique: "
     "yes}\n",
     8, "true or false"},
    {"    - {op: validate}\n", 8, "needs one of"},
    {"    - {op: validate, row_count_equal: [a]}\n", 8, "two tables"},
    {"    - {op: validate, not_null: [nodot]}\n", 8, "invalid table.column"},
    {"    - op: create_table\n      table: t\n      columns:\n"
     "        - {name: a, type: int}\n        - {name: a, type: text}\n",
     12, "duplicate column \"a\""},
    {"    - {op: drop_column, table: t, column: a}\n"
     "    - {op: drop_column, table: t, column: a}\n",
     9, "step 1 repeats step 0"},
    {"kind: Component\nmetadata: {name: p}\nspec:\n  type: migration-plan\n"
     "  dataset: d\n  schemaVersion: {from: 2, to: 2}\n"
     "  steps: [{op: drop_column, table: t, column: a}]\n",
     6, "from (2) must be less than to (2)"},
    {"kind: Component\nmetadata: {name: p}\nspec:\n  type: migration-plan\n"
     "  dataset: \"a b\"\n  schemaVersion: {from: 1, to: 2}\n"
     "  steps: [{op: drop_column, table: t, column: a}]\n",
     5, "spec.dataset"},
    {"kind: Component\nmetadata: {name: p}\nspec:\n  type: migration-plan\n"
     "  dataset: d\n  schemaVersion: {from: 1, to: 2}\n  steps: []\n",
     7, "spec.steps"},
    {"kind: Component\nmetadata: {name: \"bad name\"}\nspec:\n"
     "  type: migration-plan\n  dataset: d\n"
     "  schemaVersion: {from: 1, to: 2}\n"
     "  steps: [{op: drop_column, table: t, column: a}]\n",
     2, "metadata.name"},
    {"    - {op: add_column, table: t, column: {name: a, type: text}}\n"
     "    - {op: add_column, table: t, column: {name: a, type: text}, "
     "table: u}\n",
     9, "duplicate key"},
    {"    - &s {op: drop_column, table: t, column: a}\n    - *s\n", 9,
     "aliases"},
/* spec.requiresStaging: true or false, nothing else */
#define STAGING(v)                                                \
        "kind: Component\nmetadata: {name: p}\nspec:\n  type: "   \
        "migration-plan\n  dataset: d\n  requiresStaging:" v "\n" \
        "  schemaVersion: {from: 1, to: 2}\n"                     \
        "  steps: [{op: drop_column, table: t, column: a}]\n"
#define STAGING_MSG "spec.requiresStaging must be true or false"
    {STAGING(" yes"), 6, STAGING_MSG}, /* YAML 1.2: a string */
    {STAGING(" \"true\""), 6, STAGING_MSG},
    {STAGING(" 1"), 6, STAGING_MSG},
    {STAGING(" [true]"), 6, STAGING_MSG},
    {STAGING(" {a: 1}"), 6, STAGING_MSG},
    /* null is a singleton without a line of its own: spec's */
    {STAGING(" null"), 4, STAGING_MSG},
    {STAGING(""), 4, STAGING_MSG},
/* spec.throttle: each field's rule, pointing at the field's line (an
 * invalid type at the throttle block's) */
#define THROTTLE(v)                                                   \
        "kind: Component\nmetadata: {name: p}\nspec:\n  type: "       \
        "migration-plan\n  dataset: d\n  schemaVersion: {from: 1, "   \
        "to: 2}\n  steps: [{op: drop_column, table: t, column: a}]\n" \
        "  throttle:\n" v
    {THROTTLE("    max_replica_lag_ms: 0\n"), 9,
     "spec.throttle.max_replica_lag_ms must be an integer from 1 to "
     "86400000"},
    {THROTTLE("    query: \"SELECT true\"\n    max_replica_lag_ms: "
              "86400001\n"),
     10, "spec.throttle.max_replica_lag_ms must be an integer"},
    {THROTTLE("    max_active_connections: many\n"), 9,
     "spec.throttle.max_active_connections must be an integer from 1 to "
     "100000"},
    {THROTTLE("    max_active_connections: -3\n"), 9,
     "spec.throttle.max_active_connections must be"},
    {THROTTLE("    query: \"UPDATE t SET a = 1\"\n"), 9,
     "spec.throttle.query: must be a single SELECT"},
    {THROTTLE("    query: \"SELECT 1; DROP TABLE t\"\n"), 9,
     "spec.throttle.query: "},
    {THROTTLE("    query: \"SELECT paused FROM t -- x\"\n"), 9,
     "spec.throttle.query: "},
    {THROTTLE("    query: \"SELECT $param:x\"\n"), 9,
     "spec.throttle.query: cannot use task params"},
    {THROTTLE("    query: 1\n"), 9, "spec.throttle.query must be a string"},
    {THROTTLE("    query: true\n"), 9, "spec.throttle.query must be a string"},
    {THROTTLE("    max_lag: 5\n"), 9,
     "spec.throttle: unknown field \"max_lag\""},
    {THROTTLE("    - 5\n"), 9, "spec.throttle must be a mapping"},
};

static void test_bad_plans_name_file_line_and_reason(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char yaml[2048], errstr[512] = "", expect[64];
                drv_plan_t **plans = NULL;
                size_t cnt = 0;
                drv_err_t err;

                if (!strncmp(bad[i].yaml, "kind", 4))
                        snprintf(yaml, sizeof(yaml), "%s", bad[i].yaml);
                else
                        snprintf(yaml, sizeof(yaml), HEAD "%s", bad[i].yaml);
                err = drv_plan_load_buf(yaml, strlen(yaml), "bad.yaml", &plans,
                                        &cnt, errstr, sizeof(errstr));
                if (err != DRV_ERR_INVALID_PLAN)
                        fail_msg("case %zu accepted (err %d)", i, err);
                snprintf(expect, sizeof(expect), "bad.yaml:%d: ", bad[i].line);
                if (strncmp(errstr, expect, strlen(expect)) ||
                    !strstr(errstr, bad[i].msg))
                        fail_msg("case %zu: got \"%s\", want \"%s...%s\"", i,
                                 errstr, expect, bad[i].msg);
                assert_null(plans);
        }
}

static void test_fixture_plans_load(void **state) {
        static const struct {
                const char *file, *ref, *dataset;
                int from, to;
                size_t steps;
        } ok[] = {
            {"catalog/customer-dataset-v2-migration.yaml",
             "component:default/customer-dataset-v2-migration", "customer", 1,
             2, 3},
            {"catalog/inventory-dataset-v3-migration.yaml",
             "component:default/inventory-dataset-v3-migration", "inventory", 2,
             3, 4},
            {"catalog/orders-dataset-v5-migration.yaml",
             "component:default/orders-dataset-v5-migration", "orders", 4, 5,
             6},
        };
        size_t i, cnt;
        char errstr[512];
        drv_plan_t **plans;

        (void)state;
        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                if (drv_plan_load_file(fixture(ok[i].file), &plans, &cnt,
                                       errstr, sizeof(errstr)))
                        fail_msg("%s: %s", ok[i].file, errstr);
                assert_int_equal(cnt, 1); /* the non-plan doc is skipped */
                assert_string_equal(plans[0]->ref, ok[i].ref);
                assert_string_equal(plans[0]->dataset, ok[i].dataset);
                assert_int_equal(plans[0]->from_version, ok[i].from);
                assert_int_equal(plans[0]->to_version, ok[i].to);
                assert_int_equal(plans[0]->steps_cnt, ok[i].steps);
                assert_int_equal(
                    drv_plan_validate(plans[0], 0, errstr, sizeof(errstr)),
                    DRV_OK);
                drv_plan_array_free(plans, cnt);
        }
}

static void test_seed_plan_steps_and_getters(void **state) {
        drv_plan_t **plans;
        size_t cnt;
        char errstr[512];
        const drv_step_t *st;

        (void)state;
        assert_int_equal(
            drv_plan_load_file(
                fixture("catalog/customer-dataset-v2-migration.yaml"), &plans,
                &cnt, errstr, sizeof(errstr)),
            DRV_OK);
        st = &plans[0]->steps[1];
        assert_int_equal(st->op, DRV_OP_BACKFILL);
        assert_int_equal(st->index, 1);
        assert_int_equal(st->line, 19);
        assert_string_equal(drv_step_str(st, "table", NULL), "customer");
        assert_string_equal(drv_step_key(st), "id");
        assert_int_equal(drv_step_batch_size(st), 5000);
        assert_string_equal(json_string_value(json_object_get(
                                drv_step_get(st, "set"), "email_domain")),
                            "split_part(email, '@', 2)");
        assert_int_equal(plans[0]->steps[0].op, DRV_OP_ADD_COLUMN);
        assert_int_equal(plans[0]->steps[2].op, DRV_OP_VALIDATE);
        assert_int_equal(plans[0]->line, 2);
        drv_plan_array_free(plans, cnt);
}

static void test_invalid_fixture_files(void **state) {
        static const struct {
                const char *file;
                const char *prefix;
        } cases[] = {
            {"catalog-invalid/from-not-less-than-to.yaml", ":9: "},
            {"catalog-invalid/semicolon-in-expression.yaml", ":15: "},
            {"catalog-invalid/bad-yaml.yaml", ":8: yaml:"},
            {"catalog/broken-dataset-migration.yaml", ":15: "},
        };
        size_t i, cnt;
        char errstr[512];
        drv_plan_t **plans;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const char *path = fixture(cases[i].file);
                assert_int_equal(drv_plan_load_file(path, &plans, &cnt, errstr,
                                                    sizeof(errstr)),
                                 DRV_ERR_INVALID_PLAN);
                if (strncmp(errstr, path, strlen(path)) ||
                    strncmp(errstr + strlen(path), cases[i].prefix,
                            strlen(cases[i].prefix)))
                        fail_msg("%s: got \"%s\"", cases[i].file, errstr);
        }
}

static void test_sql_steps_need_allow_sql(void **state) {
        const char *yaml = HEAD "    - {op: sql, sql: \"vacuum t\"}\n";
        char errstr[512];
        drv_plan_t **plans;
        size_t cnt;

        (void)state;
        assert_int_equal(drv_plan_load_buf(yaml, strlen(yaml), "s.yaml", &plans,
                                           &cnt, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_plan_validate(plans[0], 1, errstr, sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(drv_plan_validate(plans[0], 0, errstr, sizeof(errstr)),
                         DRV_ERR_INVALID_PLAN);
        assert_non_null(strstr(errstr, "s.yaml:8: step 0: sql steps"));
        drv_plan_array_free(plans, cnt);
}

static void test_identifiers_types_expressions(void **state) {
        (void)state;
        assert_true(drv_ident_valid("customer"));
        assert_true(drv_ident_valid("_a1"));
        assert_true(drv_ident_valid("inv.stock"));
        assert_false(drv_ident_valid("1a"));
        assert_false(drv_ident_valid("a.b.c"));
        assert_false(drv_ident_valid("a."));
        assert_false(drv_ident_valid("\"a\""));
        assert_false(drv_ident_valid("a-b"));
        assert_false(drv_ident_valid(""));
        assert_false(drv_ident_valid(NULL));
        assert_false(drv_ident_valid("a2345678901234567890123456789012345678901"
                                     "23456789012345678901234"));
        assert_true(drv_type_valid("numeric(10,2)"));
        assert_true(drv_type_valid("timestamp with time zone"));
        assert_true(drv_type_valid("text[]"));
        assert_true(drv_type_valid("varchar(32)"));
        assert_false(drv_type_valid("text; drop table x"));
        assert_false(drv_type_valid("text'"));
        assert_false(drv_type_valid("int)"));
        assert_false(drv_type_valid("int, text"));
        assert_false(drv_type_valid("(int)"));
        assert_false(drv_type_valid("text[x]"));
        assert_true(drv_expr_valid("split_part(email, '@', 2)", NULL, 0));
        assert_true(drv_expr_valid("'a;b' || \"we;ird\"", NULL, 0));
        assert_true(drv_expr_valid("'it''s'", NULL, 0));
        assert_true(drv_expr_valid("coalesce($param:x, 'y')", NULL, 0));
        assert_false(drv_expr_valid("1; select 2", NULL, 0));
        assert_false(drv_expr_valid("'it''s'; x", NULL, 0));
        assert_false(drv_expr_valid("$param:", NULL, 0));
        assert_false(drv_expr_valid("", NULL, 0));
}

static void test_expr_bind_rewrites_params_to_placeholders(void **state) {
        drv_param_t params[] = {{"region", "eu'; drop table x"},
                                {"tier", "gold"}};
        drv_bind_t bind = {.cnt = 2}; /* the caller's $1 and $2 */
        char errstr[256], *sql;

        (void)state;
        assert_int_equal(
            drv_expr_bind("coalesce($param:tier, $param:region) || "
                          "'$param:tier' || $param:tier",
                          params, 2, &bind, &sql, errstr, sizeof(errstr)),
            DRV_OK);
        assert_string_equal(sql, "coalesce($3, $4) || '$param:tier' || $3");
        assert_int_equal(bind.cnt, 4);
        assert_string_equal(bind.values[2], "gold");
        assert_string_equal(bind.values[3], "eu'; drop table x");
        free(sql);
        /* the same bind continues across expressions of one statement */
        assert_int_equal(drv_expr_bind("$param:region", params, 2, &bind, &sql,
                                       errstr, sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(sql, "$4");
        free(sql);
        assert_int_equal(drv_expr_bind("$param:missing", params, 2, &bind, &sql,
                                       errstr, sizeof(errstr)),
                         DRV_ERR_INVALID_PARAM);
        assert_null(sql);
        assert_non_null(strstr(errstr, "\"missing\""));
        assert_int_equal(drv_expr_bind("1; 2", params, 2, &bind, &sql, errstr,
                                       sizeof(errstr)),
                         DRV_ERR_INVALID_PLAN);
}

static void test_plan_from_api_json_and_refcount(void **state) {
        json_error_t jerr;
        json_t *entity = json_loads(
            "{\"apiVersion\":\"backstage.io/v1alpha1\",\"kind\":\"Component\","
            "\"metadata\":{\"name\":\"X\",\"namespace\":\"Team\",\"etag\":"
            "\"e1\"},\"spec\":{\"type\":\"migration-plan\",\"dataset\":\"x\","
            "\"schemaVersion\":{\"from\":0,\"to\":1},\"steps\":[{\"op\":"
            "\"drop_column\",\"table\":\"t\",\"column\":\"c\"}]}}",
            0, &jerr);
        drv_plan_t *plan;
        char errstr[256];

        (void)state;
        assert_non_null(entity);
        assert_int_equal(
            drv_plan_from_json(entity, "api", &plan, errstr, sizeof(errstr)),
            DRV_OK);
        json_decref(entity); /* the plan holds its own copy */
        assert_string_equal(plan->ref, "component:team/x");
        assert_string_equal(plan->etag, "e1");
        assert_int_equal(plan->steps[0].line, 0);
        assert_ptr_equal(drv_plan_retain(plan), plan);
        drv_plan_release(plan);
        assert_string_equal(drv_step_str(&plan->steps[0], "column", NULL), "c");
        drv_plan_release(plan);
        drv_plan_release(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_bad_plans_name_file_line_and_reason),
            cmocka_unit_test(test_fixture_plans_load),
            cmocka_unit_test(test_seed_plan_steps_and_getters),
            cmocka_unit_test(test_invalid_fixture_files),
            cmocka_unit_test(test_sql_steps_need_allow_sql),
            cmocka_unit_test(test_identifiers_types_expressions),
            cmocka_unit_test(test_expr_bind_rewrites_params_to_placeholders),
            cmocka_unit_test(test_plan_from_api_json_and_refcount),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
