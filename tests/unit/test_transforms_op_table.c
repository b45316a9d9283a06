/*
 * tests/unit/test_transforms_op_table.c: the op table (transforms/ops.c),
 * row by row.  Every drv_op_t has a complete row, and name lookup, apply
 * dispatch and the batched / autocommit predicates answer from it, so an
 * op added to the enum without its row fails here.
 */
#include "testutil.h"
#include "ops_int.h"

#include <string.h>

static void test_every_op_has_a_complete_row(void **state) {
        const drv_opdef_t *def;
        int op, n, k, required;

        (void)state;
        for (op = 0; op < DRV_OP__CNT; op++) {
                def = drv_op_def((drv_op_t)op);
                assert_non_null(def);
                if (!def->name || !*def->name)
                        fail_msg("op %d has no row (no name)", op);
                /* runs one way: a function, or batch by batch */
                if (!def->apply == !def->batched)
                        fail_msg("op %s: needs exactly one of .apply and "
                                 ".batched",
                                 def->name);
                if (!def->fields[0].name)
                        fail_msg("op %s has no fields", def->name);
                required = 0;
                for (n = 0; n < DRV_OP_FIELDS_MAX && def->fields[n].name; n++) {
                        required += def->fields[n].required;
                        assert_int_not_equal(strcmp(def->fields[n].name, "op"),
                                             0);
                        for (k = 0; k < n; k++)
                                if (!strcmp(def->fields[k].name,
                                            def->fields[n].name))
                                        fail_msg("op %s: field %s twice",
                                                 def->name,
                                                 def->fields[n].name);
                }
                /* room for the "description" every step may carry */
                assert_true(n < DRV_OP_FIELDS_MAX);
                /* one_of over required fields would never be checked */
                if (def->one_of && required)
                        fail_msg("op %s: one_of with required fields",
                                 def->name);
                /* what undoes it is decided, one way: an inverse
                 * builder or the reason there is none */
                if (!def->invert == !def->irreversible)
                        fail_msg("op %s: set exactly one of .invert and "
                                 ".irreversible",
                                 def->name);
        }
}

static void test_names_are_unique_and_round_trip(void **state) {
        int op;

        (void)state;
        for (op = 0; op < DRV_OP__CNT; op++) {
                const char *name = drv_op_name((drv_op_t)op);

                assert_non_null(name);
                assert_ptr_equal(name, drv_op_def((drv_op_t)op)->name);
                assert_int_equal(drv_op_from_name(name), op);
        }
        assert_string_equal(drv_op_name(DRV_OP_BACKFILL), "backfill");
        assert_int_equal(drv_op_from_name("copy_rows"), DRV_OP_COPY_ROWS);
        assert_int_equal(drv_op_from_name("truncate"), DRV_OP_NONE);
        assert_int_equal(drv_op_from_name("Backfill"), DRV_OP_NONE);
        assert_int_equal(drv_op_from_name(""), DRV_OP_NONE);
        assert_int_equal(drv_op_from_name(NULL), DRV_OP_NONE);
        assert_null(drv_op_name(DRV_OP_NONE));
        assert_null(drv_op_name(DRV_OP__CNT));
        assert_null(drv_op_def(DRV_OP_NONE));
        assert_null(drv_op_def(DRV_OP__CNT));
}

/* A step of `op` with {autocommit field: value}. */
static int needs_autocommit(drv_op_t op, const char *field, json_t *value,
                            int dry_run) {
        drv_step_t step = {0, op, json_object(), "", 0};
        int r;

        if (field)
                json_object_set_new(step.def, field, value);
        else
                json_decref(value);
        r = drv_op_needs_autocommit(&step, dry_run);
        json_decref(step.def);
        return r;
}

static void test_predicates_answer_from_the_table(void **state) {
        const drv_opdef_t *def;
        int op;

        (void)state;
        for (op = 0; op < DRV_OP__CNT; op++) {
                def = drv_op_def((drv_op_t)op);
                assert_ptr_equal(drv_op_fn((drv_op_t)op), def->apply);
                assert_int_equal(drv_op_is_batched((drv_op_t)op), def->batched);
                assert_int_equal(
                    needs_autocommit(op, def->autocommit, json_true(), 0),
                    def->autocommit != NULL);
                assert_int_equal(
                    needs_autocommit(op, def->autocommit, json_true(), 1), 0);
                assert_int_equal(
                    needs_autocommit(op, def->autocommit, json_false(), 0), 0);
                assert_int_equal(needs_autocommit(op, NULL, json_true(), 0), 0);
        }
        assert_null(drv_op_fn(DRV_OP_NONE));
        assert_int_equal(drv_op_is_batched(DRV_OP_NONE), 0);
        assert_int_equal(drv_op_is_batched(DRV_OP__CNT), 0);
}

/* The rows as they were before the table: the same predicates answer. */
static void test_rows_keep_the_old_answers(void **state) {
        int op;

        (void)state;
        for (op = 0; op < DRV_OP__CNT; op++)
                assert_int_equal(drv_op_is_batched((drv_op_t)op),
                                 op == DRV_OP_COPY_ROWS ||
                                     op == DRV_OP_BACKFILL);
        assert_string_equal(drv_op_def(DRV_OP_CREATE_INDEX)->autocommit,
                            "concurrently");
        for (op = 0; op < DRV_OP__CNT; op++)
                if (op != DRV_OP_CREATE_INDEX)
                        assert_null(drv_op_def((drv_op_t)op)->autocommit);
        for (op = 0; op < DRV_OP__CNT; op++)
                assert_int_equal(drv_op_def((drv_op_t)op)->invert == NULL,
                                 op == DRV_OP_DROP_COLUMN);
}

/* Validation reads the row: fields, required fields, one_of; the message
 * of a validate step without checks is the one before the table. */
static void test_validation_reads_the_row(void **state) {
        static const struct {
                const char *step;
                const char *msg; /* NULL: valid */
        } cases[] = {
            {"{op: validate}",
             "t.yaml:8: step 0 (validate) needs one of \"not_null\", "
             "\"row_count_equal\", \"checksum_equal\""},
            {"{op: validate, row_count_equal: [a, b]}", NULL},
            {"{op: backfill, table: t, set: {a: '1'}, key: k, where: 'a > 0',"
             " batch_size: 10, description: d}",
             NULL},
            {"{op: backfill, table: t}",
             "t.yaml:8: step 0 (backfill) needs \"set\""},
            {"{op: create_index, table: t, name: i, columns: [a],"
             " concurrently: yes}",
             "t.yaml:8: \"concurrently\" must be true or false"},
            {"{op: drop_table, table: t}",
             "t.yaml:8: step 0: unknown op \"drop_table\""},
            {"{op: alter_type, table: t, column: c, type: int, timeout: 90s}",
             NULL},
            {"{op: sql, sql: 'select 1', timeout: 2h}", NULL},
            {"{op: drop_column, table: t, column: c, timeout: 90}",
             "t.yaml:8: \"timeout\" must be a duration such as \"90s\", "
             "\"10m\" or \"1h\" (at most 24h)"},
            {"{op: drop_column, table: t, column: c, timeout: 25h}",
             "t.yaml:8: \"timeout\" must be a duration such as \"90s\", "
             "\"10m\" or \"1h\" (at most 24h)"},
        };
        char yaml[512], errstr[512];
        drv_plan_t **plans;
        size_t i, cnt;
        drv_err_t err;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                snprintf(yaml, sizeof(yaml),
                         "kind: Component\nmetadata: {name: p}\nspec:\n"
                         "  type: migration-plan\n  dataset: d\n"
                         "  schemaVersion: {from: 1, to: 2}\n  steps:\n"
                         "    - %s\n",
                         cases[i].step);
                errstr[0] = '\0';
                err = drv_plan_load_buf(yaml, strlen(yaml), "t.yaml", &plans,
                                        &cnt, errstr, sizeof(errstr));
                if (!cases[i].msg) {
                        if (err)
                                fail_msg("case %zu: %s", i, errstr);
                        drv_plan_array_free(plans, cnt);
                        continue;
                }
                assert_int_equal(err, DRV_ERR_INVALID_PLAN);
                if (strcmp(errstr, cases[i].msg))
                        fail_msg("case %zu: got \"%s\"", i, errstr);
        }
}

/* A step's `timeout` wins, then its op's default, then the worker's. */
static void test_step_timeout_defaults(void **state) {
        static const struct {
                drv_op_t op;
                long ms; /* 0: the worker's setting */
        } defaults[] = {
            {DRV_OP_CREATE_TABLE, 0},     {DRV_OP_ADD_COLUMN, 0},
            {DRV_OP_RENAME_COLUMN, 0},    {DRV_OP_DROP_COLUMN, 0},
            {DRV_OP_ALTER_TYPE, 1800000}, {DRV_OP_COPY_ROWS, 600000},
            {DRV_OP_BACKFILL, 600000},    {DRV_OP_CREATE_INDEX, 3600000},
            {DRV_OP_VALIDATE, 1800000},   {DRV_OP_SQL, 0},
        };
        static const struct {
                const char *text;
                long ms;
        } durations[] = {
            {"\"90s\"", 90000},  {"\"10m\"", 600000},
            {"\"1h\"", 3600000}, {"\"24h\"", 86400000},
            {"\"25h\"", -1},     {"\"0s\"", -1},
            {"\"090s\"", -1},    {"\"1.5h\"", -1},
            {"\"1 s\"", -1},     {"\"s\"", -1},
            {"\"1d\"", -1},      {"\"1\"", -1},
            {"90", -1},          {"\"99999999999s\"", -1},
        };
        drv_step_t step = {0};
        json_t *v;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
                step.op = defaults[i].op;
                step.def = json_pack("{s:s}", "op", drv_op_name(step.op));
                assert_int_equal(drv_op_def(step.op)->timeout_ms,
                                 defaults[i].ms);
                assert_int_equal(drv_step_timeout_ms(&step, 7000),
                                 defaults[i].ms ? defaults[i].ms : 7000);
                json_object_set_new(step.def, "timeout", json_string("5s"));
                assert_int_equal(drv_step_timeout_ms(&step, 7000), 5000);
                json_decref(step.def);
        }
        for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
                v = json_loads(durations[i].text, JSON_DECODE_ANY, NULL);
                assert_non_null(v);
                if (drv_duration_ms(v) != durations[i].ms)
                        fail_msg("%s: got %ld", durations[i].text,
                                 drv_duration_ms(v));
                json_decref(v);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_every_op_has_a_complete_row),
            cmocka_unit_test(test_names_are_unique_and_round_trip),
            cmocka_unit_test(test_predicates_answer_from_the_table),
            cmocka_unit_test(test_rows_keep_the_old_answers),
            cmocka_unit_test(test_validation_reads_the_row),
            cmocka_unit_test(test_step_timeout_defaults),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
