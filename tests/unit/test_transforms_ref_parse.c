/*
 * Entity refs follow Backstage's parseEntityRef: defaults, lower-case,
 * '/' before ':' means no kind, empty parts refused.
 */
#include "testutil.h"

#include <string.h>

static const struct {
        const char *in;
        const char *out; /* NULL: refused */
} cases[] = {
    {"customer-dataset-v2-migration",
     "component:default/customer-dataset-v2-migration"},
    {"component:default/customer-dataset-v2-migration",
     "component:default/customer-dataset-v2-migration"},
    {"Component:Default/Customer", "component:default/customer"},
    {"team-a/plan", "component:team-a/plan"},
    {"api:plan", "api:default/plan"},
    {"ns/na:me", NULL}, /* ':' after '/' is part of the name: invalid char */
    {"a.b_c-d", "component:default/a.b_c-d"},
    {"", NULL},
    {":name", NULL},
    {"kind:", NULL},
    {"kind:/name", NULL},
    {"kind:ns/", NULL},
    {"/name", NULL},
    {"component:default/na me", NULL},
    {"component:default/../../etc", NULL},
    {"component:default/a?b=c", NULL},
    {"ki-nd:default/name", NULL},
    {"component:default/a/b", NULL},
    /* Backstage's default validators (catalog-model makeValidator) */
    {"component:../..", NULL},
    {"component:default/..", NULL},
    {"component:default/.hidden", NULL},
    {"component:default/trailing-", NULL},
    {"component:default/a--b", NULL},
    {"component:default/a._b", NULL},
    {"component:default/a-b_c.d", "component:default/a-b_c.d"},
    {"component:-ns/name", NULL},
    {" component:default/name", NULL},
    {"component:default/name ", NULL},
    {"component:default/\"name\"", NULL},
    {"component:default/'name'", NULL},
    {"component:default/na%2fme", NULL},
    {"1component:default/name", NULL},
    {"Component2:default/name", "component2:default/name"},
    {"MigrationPlan:default/Name", "migrationplan:default/name"},
    {"component:default/"
     "a23456789012345678901234567890123456789012345678901234567890123",
     "component:default/"
     "a23456789012345678901234567890123456789012345678901234567890123"},
    {"component:default/"
     "a234567890123456789012345678901234567890123456789012345678901234",
     NULL},
    {"component:"
     "a234567890123456789012345678901234567890123456789012345678901234/n",
     NULL},
};

static void test_ref_parse_table(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                drv_entity_ref_t ref;
                char out[400], errstr[256] = "";
                drv_err_t err = drv_entity_ref_parse(cases[i].in, &ref, errstr,
                                                     sizeof(errstr));
                if (!cases[i].out) {
                        if (err != DRV_ERR_UNKNOWN_PLAN)
                                fail_msg("case %zu \"%s\" accepted", i,
                                         cases[i].in);
                        assert_non_null(strstr(errstr, "entity ref"));
                        continue;
                }
                if (err)
                        fail_msg("case %zu \"%s\" refused: %s", i, cases[i].in,
                                 errstr);
                drv_entity_ref_format(&ref, out, sizeof(out));
                assert_string_equal(out, cases[i].out);
        }
}

static void test_ref_too_long_is_refused(void **state) {
        char big[600];
        drv_entity_ref_t ref;

        (void)state;
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(drv_entity_ref_parse(big, &ref, NULL, 0),
                         DRV_ERR_UNKNOWN_PLAN);
}

/* The refusal names the part and the rule it breaks. */
static void test_ref_refusal_names_the_rule(void **state) {
        drv_entity_ref_t ref;
        char errstr[256];

        (void)state;
        assert_int_equal(drv_entity_ref_parse("component:../..", &ref, errstr,
                                              sizeof(errstr)),
                         DRV_ERR_UNKNOWN_PLAN);
        assert_string_equal(errstr,
                            "invalid entity ref \"component:../..\": the "
                            "namespace must start and end with a letter or "
                            "digit (want [kind:][namespace/]name)");
        assert_int_equal(
            drv_entity_ref_parse("k-1:x", &ref, errstr, sizeof(errstr)),
            DRV_ERR_UNKNOWN_PLAN);
        assert_non_null(strstr(errstr, "the kind must be letters and digits"));
        assert_int_equal(
            drv_entity_ref_parse("ns/a--b", &ref, errstr, sizeof(errstr)),
            DRV_ERR_UNKNOWN_PLAN);
        assert_non_null(
            strstr(errstr, "the name must not hold two separators in a row"));
}

/* drover's submission edges: UUID task ids, dataset names, entity refs. */
static void test_task_fields_check_table(void **state) {
        static const struct {
                const char *task_id, *ref, *dataset, *want; /* NULL: ok */
        } fcases[] = {
            {NULL, "component:default/plan", "customer", NULL},
            {NULL, "plan", NULL, NULL},
            {"0f0e0d0c-0b0a-4908-8706-050403020100", "plan", "c", NULL},
            {"0F0E0D0C-0B0A-1908-8706-050403020100", "plan", "c", NULL},
            {"t-1", "plan", "c", "invalid task id \"t-1\""},
            {"0f0e0d0c-0b0a-4908-8706-05040302010", "plan", "c",
             "invalid task id"},
            {"0f0e0d0c0b0a-4908-8706-050403020100x", "plan", "c",
             "invalid task id"},
            {"0f0e0d0c-0b0a-4908-8706-05040302010g", "plan", "c",
             "invalid task id"},
            {NULL, "component:../..", "c", "invalid entity ref"},
            {NULL, "", "c", "empty entity ref"},
            {NULL, "plan", "cust omer", "invalid dataset \"cust omer\""},
            {NULL, "plan", "a/b", "invalid dataset"},
            {NULL, "plan", "\"c\"", "invalid dataset"},
            {NULL, "plan", "", "invalid dataset"},
            {NULL, "plan", "inv.stock_2-b", NULL},
        };
        char errstr[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(fcases) / sizeof(fcases[0]); i++) {
                drv_err_t err;

                errstr[0] = '\0';
                err = drv_task_fields_check(fcases[i].task_id, fcases[i].ref,
                                            fcases[i].dataset, errstr,
                                            sizeof(errstr));
                if (!fcases[i].want && err)
                        fail_msg("case %zu refused: %s", i, errstr);
                if (fcases[i].want && (err != DRV_ERR_INVALID_PARAM ||
                                       !strstr(errstr, fcases[i].want)))
                        fail_msg("case %zu: want \"%s\", got \"%s\"", i,
                                 fcases[i].want, errstr);
        }
        assert_false(drv_uuid_valid(NULL));
        assert_false(drv_dataset_valid(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ref_parse_table),
            cmocka_unit_test(test_ref_too_long_is_refused),
            cmocka_unit_test(test_ref_refusal_names_the_rule),
            cmocka_unit_test(test_task_fields_check_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
