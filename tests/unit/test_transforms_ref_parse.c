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

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ref_parse_table),
            cmocka_unit_test(test_ref_too_long_is_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
