/*
 * spec.requiresStaging: read as a boolean (absent is false; anything else
 * is refused: test_transforms_plan_validate); not part of the plan's
 * fingerprint; shown by drv_plan_to_json; and the staging gate refuses a
 * plan that requires staging when no staging database is configured,
 * while a plan without the flag passes without one.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define DOC                                               \
        "kind: Component\nmetadata:\n  name: p\n"         \
        "spec:\n  type: migration-plan\n  dataset: d\n%s" \
        "  schemaVersion: {from: 1, to: 2}\n  steps:\n"   \
        "    - {op: drop_column, table: t, column: a}\n"

/* The plan of DOC with `flag` (a spec line, or "") spliced in; fails the
 * test when it does not load. */
static drv_plan_t *load(const char *flag) {
        return drv_test_plan(DOC, flag);
}

static void test_flag_is_read_and_left_out_of_the_fingerprint(void **state) {
        drv_plan_t *none = load("");
        drv_plan_t *yes = load("  requiresStaging: true\n");
        drv_plan_t *no = load("  requiresStaging: false\n");
        drv_plan_t *other = load("  requiresStaging: true\n  tables: [t]\n");

        (void)state;
        assert_int_equal(none->requires_staging, 0);
        assert_int_equal(yes->requires_staging, 1);
        assert_int_equal(no->requires_staging, 0);
        /* the same steps, staged or not, are the same plan: the ledger
         * rows of one count for the other */
        assert_string_equal(yes->fingerprint, none->fingerprint);
        assert_string_equal(no->fingerprint, none->fingerprint);
        /* the rest of spec still counts */
        assert_string_not_equal(other->fingerprint, yes->fingerprint);
        drv_plan_release(none);
        drv_plan_release(yes);
        drv_plan_release(no);
        drv_plan_release(other);
}

static void test_plan_json_shows_the_flag(void **state) {
        drv_plan_t *yes = load("  requiresStaging: true\n");
        drv_plan_t *none = load("");
        json_t *a = drv_plan_to_json(yes), *b = drv_plan_to_json(none);

        (void)state;
        assert_non_null(a);
        assert_non_null(b);
        assert_true(json_is_true(json_object_get(a, "requires_staging")));
        assert_true(json_is_false(json_object_get(b, "requires_staging")));
        json_decref(a);
        json_decref(b);
        drv_plan_release(yes);
        drv_plan_release(none);
}

static void test_gate_without_a_staging_database(void **state) {
        drv_plan_t *yes = load("  requiresStaging: true\n");
        drv_plan_t *none = load("");
        char errstr[512] = "", sqlstate[6] = "x";
        char want[160];

        (void)state;
        assert_int_equal(drv_plan_staging_check(NULL, none, sqlstate, errstr,
                                                sizeof(errstr)),
                         DRV_OK);
        assert_int_equal(
            drv_plan_staging_check(NULL, yes, sqlstate, errstr, sizeof(errstr)),
            DRV_ERR_STAGING_REQUIRED);
        snprintf(want, sizeof(want),
                 "plan \"component:default/p\" (fingerprint %.12s) requires "
                 "a completed staging run, and no staging database is "
                 "configured",
                 yes->fingerprint);
        if (!strstr(errstr, want) ||
            !strstr(errstr, "DROVER_STAGING_DATABASE_URL"))
                fail_msg("message \"%s\"", errstr);
        assert_string_equal(
            drv_dlq_classify(DRV_ERR_STAGING_REQUIRED, NULL).name,
            "staging_required");
        assert_string_equal(drv_err_name(DRV_ERR_STAGING_REQUIRED),
                            "staging_required");
        drv_plan_release(yes);
        drv_plan_release(none);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_flag_is_read_and_left_out_of_the_fingerprint),
            cmocka_unit_test(test_plan_json_shows_the_flag),
            cmocka_unit_test(test_gate_without_a_staging_database),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
