/*
 * drover - tests/unit/test_transforms_rollback_inverse.c: the inverse of
 * each op (transforms/rollback.c, the op table's `invert`) from the spec
 * a done step's ledger row recorded, without a database; and the plan
 * fields of the declared inverses, checked by plan validation.
 */
#include "testutil.h"

#include <string.h>

static const struct {
        const char *op;
        const char *spec; /* the recorded spec, JSON */
        const char *want; /* the inverse, JSON; NULL: refused */
        const char *msg;  /* refused: a piece of errstr */
} cases[] = {
    {"create_table",
     "{\"def\":{\"op\":\"create_table\",\"table\":\"s.t\",\"columns\":[]}}",
     "{\"op\":\"drop_table\",\"table\":\"s.t\"}", NULL},
    {"add_column",
     "{\"def\":{\"op\":\"add_column\",\"table\":\"t\",\"column\":{\"name\":"
     "\"c\",\"type\":\"int\"}}}",
     "{\"op\":\"drop_column\",\"table\":\"t\",\"column\":\"c\"}", NULL},
    {"rename_column",
     "{\"def\":{\"op\":\"rename_column\",\"table\":\"t\",\"from\":\"a\","
     "\"to\":\"b\"}}",
     "{\"op\":\"rename_column\",\"table\":\"t\",\"from\":\"b\",\"to\":\"a\"}",
     NULL},
    {"create_index",
     "{\"def\":{\"op\":\"create_index\",\"table\":\"t\",\"name\":\"i\","
     "\"columns\":[\"a\"],\"concurrently\":true}}",
     "{\"op\":\"drop_index\",\"table\":\"t\",\"name\":\"i\"}", NULL},
    /* alter_type: back to the recorded type, with revert_using */
    {"alter_type",
     "{\"old_type\":\"character varying(20)\",\"def\":{\"op\":\"alter_type\","
     "\"table\":\"t\",\"column\":\"c\",\"type\":\"bigint\",\"using\":\"c::"
     "bigint\",\"revert_using\":\"c::text\"}}",
     "{\"op\":\"alter_type\",\"table\":\"t\",\"column\":\"c\",\"type\":"
     "\"character varying(20)\",\"using\":\"c::text\"}",
     NULL},
    {"alter_type",
     "{\"old_type\":\"integer\",\"def\":{\"op\":\"alter_type\",\"table\":"
     "\"t\",\"column\":\"c\",\"type\":\"bigint\"}}",
     "{\"op\":\"alter_type\",\"table\":\"t\",\"column\":\"c\",\"type\":"
     "\"integer\"}",
     NULL},
    {"alter_type",
     "{\"def\":{\"op\":\"alter_type\",\"table\":\"t\",\"column\":\"c\","
     "\"type\":\"bigint\"}}",
     NULL, "type before it was not recorded"},
    {"alter_type",
     "{\"old_type\":\"\\\"Weird\\\"\",\"def\":{\"op\":\"alter_type\","
     "\"table\":\"t\",\"column\":\"c\",\"type\":\"bigint\"}}",
     NULL, "in a form drover can write"},
    {"sql", "{\"def\":{\"op\":\"sql\",\"sql\":\"x\",\"revert\":\"y\"}}",
     "{\"op\":\"sql\",\"sql\":\"y\"}", NULL},
    {"sql", "{\"def\":{\"op\":\"sql\",\"sql\":\"x\"}}", NULL,
     "sql step has no revert"},
    {"sql",
     "{\"def\":{\"op\":\"sql\",\"sql\":\"x\",\"revert\":\"DELETE FROM t "
     "WHERE k = $param:k\"}}",
     NULL, "uses task params"},
    /* the declared inverses of the batched ops */
    {"backfill",
     "{\"def\":{\"op\":\"backfill\",\"table\":\"t\",\"set\":{\"b\":\"a\"},"
     "\"revert_set\":{\"b\":\"NULL\"},\"revert_where\":\"b IS NOT NULL\"}}",
     "{\"op\":\"update\",\"table\":\"t\",\"set\":{\"b\":\"NULL\"},\"where\":"
     "\"b IS NOT NULL\"}",
     NULL},
    {"backfill",
     "{\"def\":{\"op\":\"backfill\",\"table\":\"t\",\"set\":{\"b\":\"a\"},"
     "\"revert_set\":{\"b\":\"NULL\"}}}",
     "{\"op\":\"update\",\"table\":\"t\",\"set\":{\"b\":\"NULL\"}}", NULL},
    {"backfill",
     "{\"def\":{\"op\":\"backfill\",\"table\":\"t\",\"set\":{\"b\":\"a\"}}}",
     NULL, "backfill declares no revert_set"},
    {"copy_rows",
     "{\"def\":{\"op\":\"copy_rows\",\"from\":\"a\",\"to\":\"b\",\"columns\":"
     "{\"x\":\"x\"},\"revert_where\":\"true\"}}",
     "{\"op\":\"delete\",\"table\":\"b\",\"where\":\"true\"}", NULL},
    {"copy_rows",
     "{\"def\":{\"op\":\"copy_rows\",\"from\":\"a\",\"to\":\"b\",\"columns\":"
     "{\"x\":\"x\"}}}",
     NULL, "copy_rows declares no revert_where"},
    /* nothing to undo, and what nothing undoes */
    {"validate", "{\"def\":{\"op\":\"validate\",\"not_null\":[\"t.c\"]}}",
     "{\"op\":\"none\"}", NULL},
    {"drop_column",
     "{\"def\":{\"op\":\"drop_column\",\"table\":\"t\",\"column\":\"c\"}}",
     NULL, "drop_column is irreversible (the column's data is gone)"},
    /* a ledger row from before rollback support, an unknown op */
    {"add_column", NULL, NULL, "no recorded spec"},
    {"frobnicate", "{\"def\":{}}", NULL, "unknown op \"frobnicate\""},
};

static void test_each_op_has_its_inverse(void **state) {
        char errstr[256];
        json_t *spec, *inv, *want;
        drv_err_t err;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                spec =
                    cases[i].spec ? json_loads(cases[i].spec, 0, NULL) : NULL;
                if (cases[i].spec && !spec)
                        fail_msg("case %zu: bad spec json", i);
                errstr[0] = '\0';
                err = drv_rollback_inverse(cases[i].op, spec, &inv, errstr,
                                           sizeof(errstr));
                if (cases[i].want) {
                        want = json_loads(cases[i].want, 0, NULL);
                        if (err || !json_equal(inv, want)) {
                                char *got = inv ? json_dumps(inv, 0) : NULL;
                                fail_msg("case %zu (%s): got %s (%s)", i,
                                         cases[i].op, got ? got : "error",
                                         errstr);
                        }
                        json_decref(want);
                } else {
                        assert_int_equal(err, DRV_ERR_INVALID_PLAN);
                        assert_null(inv);
                        if (!strstr(errstr, cases[i].msg))
                                fail_msg("case %zu (%s): \"%s\" lacks "
                                         "\"%s\"",
                                         i, cases[i].op, errstr, cases[i].msg);
                }
                json_decref(inv);
                json_decref(spec);
        }
}

/* The fields of the declared inverses are plan fields like any other:
 * plan check reads them from the op table and refuses a bad one. */
static const struct {
        const char *step; /* one step, JSON */
        const char *msg;  /* NULL: valid; else a piece of the error */
} fields[] = {
    {"{\"op\":\"backfill\",\"table\":\"t\",\"set\":{\"b\":\"a\"},"
     "\"revert_set\":{\"b\":\"NULL\"},\"revert_where\":\"b > 0\"}",
     NULL},
    {"{\"op\":\"backfill\",\"table\":\"t\",\"set\":{\"b\":\"a\"},"
     "\"revert_set\":{\"b\":\"$param:x\"}}",
     "task params are not allowed here"},
    {"{\"op\":\"backfill\",\"table\":\"t\",\"set\":{\"b\":\"a\"},"
     "\"revert_set\":{\"b c\":\"1\"}}",
     "invalid column"},
    {"{\"op\":\"backfill\",\"table\":\"t\",\"set\":{\"b\":\"a\"},"
     "\"revert_where\":\"$param:x = b\"}",
     "task params are not allowed here"},
    {"{\"op\":\"copy_rows\",\"from\":\"a\",\"to\":\"b\",\"columns\":{\"x\":"
     "\"x\"},\"revert_where\":\"x > 0\"}",
     NULL},
    {"{\"op\":\"copy_rows\",\"from\":\"a\",\"to\":\"b\",\"columns\":{\"x\":"
     "\"x\"},\"revert_where\":\"x; DROP TABLE b\"}",
     "invalid expression"},
    {"{\"op\":\"alter_type\",\"table\":\"t\",\"column\":\"c\",\"type\":"
     "\"bigint\",\"revert_using\":\"c::int\"}",
     NULL},
    {"{\"op\":\"alter_type\",\"table\":\"t\",\"column\":\"c\",\"type\":"
     "\"bigint\",\"revert_using\":\"$param:y\"}",
     "task params are not allowed here"},
    {"{\"op\":\"add_column\",\"table\":\"t\",\"column\":{\"name\":\"c\","
     "\"type\":\"int\"},\"revert_set\":{\"c\":\"1\"}}",
     "revert_set"},
};

static void test_declared_inverse_fields_are_validated(void **state) {
        char text[2048], errstr[512];
        drv_plan_t *plan;
        json_t *entity;
        drv_err_t err;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                snprintf(text, sizeof(text),
                         "{\"apiVersion\":\"backstage.io/v1alpha1\",\"kind\":"
                         "\"Component\",\"metadata\":{\"name\":\"p\"},"
                         "\"spec\":{\"type\":\"migration-plan\",\"owner\":"
                         "\"t\",\"dataset\":\"d\",\"schemaVersion\":{"
                         "\"from\":1,\"to\":2},\"steps\":[%s]}}",
                         fields[i].step);
                entity = json_loads(text, 0, NULL);
                assert_non_null(entity);
                plan = NULL;
                errstr[0] = '\0';
                err = drv_plan_from_json(entity, "test", &plan, errstr,
                                         sizeof(errstr));
                json_decref(entity);
                if (!fields[i].msg && err)
                        fail_msg("field case %zu: refused: %s", i, errstr);
                if (fields[i].msg && (!err || !strstr(errstr, fields[i].msg)))
                        fail_msg("field case %zu: \"%s\" lacks \"%s\"", i,
                                 errstr, fields[i].msg);
                drv_plan_release(plan);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_each_op_has_its_inverse),
            cmocka_unit_test(test_declared_inverse_fields_are_validated),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
