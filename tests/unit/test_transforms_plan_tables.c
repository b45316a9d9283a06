/*
 * The tables a plan may touch: drover's own schema, the catalogs and
 * information_schema are refused, an unqualified pg_* name too, and with
 * spec.tables every table a step names must be listed (sql steps are
 * then refused).  Each case is a whole plan: HEAD, optional spec.tables,
 * then steps.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD                                                    \
        "kind: Component\nmetadata: {name: p}\nspec:\n  type: " \
        "migration-plan\n"                                      \
        "  dataset: d\n  schemaVersion: {from: 1, to: 2}\n"

static const struct {
        const char *tables; /* spec.tables line, or NULL */
        const char *steps;
        const char *msg; /* NULL: accepted */
} cases[] = {
    /* the example: the version guard of every dataset */
    {NULL,
     "    - {op: backfill, table: drover.datasets, set: {version: \"9\"}}\n",
     "step 0 (backfill): table \"drover.datasets\" is in schema \"drover\", "
     "which plans may not touch"},
    {NULL, "    - {op: drop_column, table: DROVER.step_ledger, column: a}\n",
     "table \"DROVER.step_ledger\" is in schema \"DROVER\""},
    {NULL,
     "    - {op: add_column, table: pg_catalog.pg_class, column: {name: "
     "a, type: int}}\n",
     "schema \"pg_catalog\""},
    {NULL, "    - {op: drop_column, table: pg_toast.pg_toast_1, column: a}\n",
     "schema \"pg_toast\""},
    {NULL, "    - {op: drop_column, table: pg_temp_3.t, column: a}\n",
     "schema \"pg_temp_3\""},
    {NULL,
     "    - {op: create_index, table: information_schema.tables, name: i, "
     "columns: [a]}\n",
     "schema \"information_schema\""},
    {NULL, "    - {op: drop_column, table: pg_class, column: a}\n",
     "step 0 (drop_column): table \"pg_class\" may resolve to pg_catalog"},
    {NULL, "    - {op: copy_rows, from: t, to: drover.t, columns: {a: a}}\n",
     "step 0 (copy_rows): table \"drover.t\""},
    {NULL, "    - {op: validate, not_null: [t.a, drover.datasets.version]}\n",
     "step 0 (validate): table \"drover.datasets\""},
    {NULL, "    - {op: validate, row_count_equal: [t, pg_catalog.pg_class]}\n",
     "table \"pg_catalog.pg_class\""},
    {NULL,
     "    - {op: validate, checksum_equal: {tables: [t, drover.x], columns: "
     "[a]}}\n",
     "table \"drover.x\""},
    {NULL,
     "    - {op: drop_column, table: t, column: a}\n"
     "    - {op: rename_column, table: Drover.t, from: a, to: b}\n",
     "step 1 (rename_column): table \"Drover.t\""},
    /* lookalikes are the plan's own tables */
    {NULL,
     "    - {op: drop_column, table: drover_x.t, column: a}\n"
     "    - {op: drop_column, table: public.pg_x, column: a}\n"
     "    - {op: drop_column, table: drovert, column: a}\n"
     "    - {op: validate, not_null: [public.t.a, t.a]}\n",
     NULL},
    /* spec.tables */
    {"  tables: [customer, public.orders]\n",
     "    - {op: drop_column, table: customer, column: a}\n"
     "    - {op: copy_rows, from: customer, to: public.orders, columns: {a: "
     "a}}\n"
     "    - {op: validate, row_count_equal: [customer, public.orders]}\n",
     NULL},
    {"  tables: [customer]\n",
     "    - {op: drop_column, table: customer, column: a}\n"
     "    - {op: drop_column, table: orders, column: a}\n",
     "step 1 (drop_column): table \"orders\" is not in spec.tables"},
    /* written the same way: public.customer is not customer */
    {"  tables: [customer]\n",
     "    - {op: drop_column, table: public.customer, column: a}\n",
     "table \"public.customer\" is not in spec.tables"},
    {"  tables: [customer]\n",
     "    - {op: drop_column, table: Customer, column: a}\n",
     "table \"Customer\" is not in spec.tables"},
    {"  tables: [customer]\n",
     "    - {op: validate, not_null: [customer.a, other.b]}\n",
     "step 0 (validate): table \"other\" is not in spec.tables"},
    {"  tables: [customer]\n", "    - {op: sql, sql: \"vacuum customer\"}\n",
     "step 0 (sql): sql steps are not allowed in a plan with spec.tables"},
    {"  tables: [customer, drover.datasets]\n",
     "    - {op: drop_column, table: customer, column: a}\n",
     "spec.tables: table \"drover.datasets\" is in schema \"drover\""},
    {"  tables: []\n", "    - {op: drop_column, table: customer, column: a}\n",
     "\"spec.tables\" must be a non-empty list"},
    {"  tables: [\"a;b\"]\n",
     "    - {op: drop_column, table: customer, column: a}\n",
     "\"spec.tables\": invalid table \"a;b\""},
    {"  tables: [a, a]\n", "    - {op: drop_column, table: a, column: b}\n",
     "\"spec.tables\": duplicate \"a\""},
};

static void test_plan_tables(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char yaml[2048], errstr[512] = "";
                drv_plan_t **plans = NULL;
                size_t cnt = 0;
                drv_err_t err;

                snprintf(yaml, sizeof(yaml), HEAD "%s  steps:\n%s",
                         cases[i].tables ? cases[i].tables : "",
                         cases[i].steps);
                err = drv_plan_load_buf(yaml, strlen(yaml), "t.yaml", &plans,
                                        &cnt, errstr, sizeof(errstr));
                if (!cases[i].msg) {
                        if (err != DRV_OK)
                                fail_msg("case %zu refused: %s", i, errstr);
                        /* the worker validates again before it runs */
                        assert_int_equal(drv_plan_validate(plans[0], 1, errstr,
                                                           sizeof(errstr)),
                                         DRV_OK);
                        drv_plan_array_free(plans, cnt);
                        continue;
                }
                if (err != DRV_ERR_INVALID_PLAN)
                        fail_msg("case %zu accepted (err %d)", i, err);
                if (strncmp(errstr, "t.yaml:", 7) ||
                    !strstr(errstr, cases[i].msg) || strchr(errstr, '\n'))
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, errstr,
                                 cases[i].msg);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_plan_tables),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
