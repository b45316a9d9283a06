/*
 * drover - tests/unit/test_transforms_repair_rules.c: the rules of a
 * repair (transforms/repair.c) without a database: what a request must
 * hold, and what it changes for a given state.
 */
#include "testutil.h"

#include <string.h>

static const struct {
        const char *dataset, *reason;
        int clear, set;
        long version;
        int execute;
        drv_err_t want;
        const char *msg; /* a piece of errstr */
} checks[] = {
    {"customer", NULL, 0, 0, 0, 0, DRV_OK, ""},
    {"customer", NULL, 0, 1, 7, 0, DRV_OK, ""},
    {"customer", "fixed by hand", 1, 0, 0, 1, DRV_OK, ""},
    {"customer", "fixed by hand", 0, 1, 0, 1, DRV_OK, ""},
    {"bad;name", "x", 1, 0, 0, 1, DRV_ERR_INVALID_PARAM, "invalid dataset"},
    {"", NULL, 0, 0, 0, 0, DRV_ERR_INVALID_PARAM, "invalid dataset"},
    {NULL, NULL, 0, 0, 0, 0, DRV_ERR_INVALID_PARAM, "invalid dataset"},
    {"customer", NULL, 0, 1, -1, 0, DRV_ERR_INVALID_PARAM, "invalid version"},
    {"customer", NULL, 0, 1, 2147483648L, 0, DRV_ERR_INVALID_PARAM,
     "invalid version"},
    {"customer", "x", 0, 0, 0, 1, DRV_ERR_USAGE, "needs an action"},
    {"customer", NULL, 1, 0, 0, 1, DRV_ERR_USAGE, "needs a reason"},
    {"customer", "", 1, 0, 0, 1, DRV_ERR_USAGE, "needs a reason"},
    {"customer", "   ", 1, 0, 0, 1, DRV_ERR_INVALID_PARAM, "invalid reason"},
    {"customer", "a\nb", 1, 0, 0, 1, DRV_ERR_INVALID_PARAM, "invalid reason"},
};

static void test_check_names_the_rule_broken(void **state) {
        char errstr[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
                drv_repair_t rp = {.dataset = checks[i].dataset,
                                   .reason = checks[i].reason,
                                   .clear = checks[i].clear,
                                   .set_version = checks[i].set,
                                   .version = checks[i].version};

                errstr[0] = '\0';
                if (drv_repair_check(&rp, checks[i].execute, errstr,
                                     sizeof(errstr)) != checks[i].want ||
                    !strstr(errstr, checks[i].msg))
                        fail_msg("case %zu: got \"%s\"", i, errstr);
        }
}

static void test_check_caps_the_reason(void **state) {
        char reason[DRV_REPAIR_REASON_MAX + 2], errstr[256];
        drv_repair_t rp = {.dataset = "customer", .clear = 1};

        (void)state;
        memset(reason, 'r', sizeof(reason) - 1);
        reason[sizeof(reason) - 1] = '\0';
        rp.reason = reason;
        assert_int_equal(drv_repair_check(&rp, 1, errstr, sizeof(errstr)),
                         DRV_ERR_INVALID_PARAM);
        reason[DRV_REPAIR_REASON_MAX] = '\0';
        assert_int_equal(drv_repair_check(&rp, 1, errstr, sizeof(errstr)),
                         DRV_OK);
}

static const struct {
        int clear, set;
        long version;   /* requested */
        int known;      /* the state */
        long cur, rows; /* the state */
        drv_err_t want;
        long delete_rows; /* plan */
        int set_version;  /* plan */
        long from, to;    /* plan */
        int nothing;      /* plan */
} decisions[] = {
    /* clear with rows: delete them; the version stays */
    {1, 0, 0, 1, 3, 2, DRV_OK, 2, 0, 3, 3, 0},
    /* clear without rows: nothing */
    {1, 0, 0, 1, 3, 0, DRV_OK, 0, 0, 3, 3, 1},
    /* set to another version: set it; the rows stay */
    {0, 1, 5, 1, 3, 2, DRV_OK, 0, 1, 3, 5, 0},
    /* set to the same version: nothing */
    {0, 1, 3, 1, 3, 2, DRV_OK, 0, 0, 3, 3, 1},
    /* both */
    {1, 1, 4, 1, 3, 2, DRV_OK, 2, 1, 3, 4, 0},
    /* version 0 is a version */
    {0, 1, 0, 1, 3, 0, DRV_OK, 0, 1, 3, 0, 0},
    /* a dry run without an action shows what clearing would do */
    {0, 0, 0, 1, 3, 4, DRV_OK, 4, 0, 3, 3, 0},
    /* an unknown dataset has no version to set */
    {0, 1, 2, 0, 0, 0, DRV_ERR_INVALID_PARAM, 0, 0, -1, -1, 0},
    /* ...but its rows (none, as a runner writes the version first) */
    {1, 0, 0, 0, 0, 0, DRV_OK, 0, 0, -1, -1, 1},
};

static void test_decide_follows_the_state(void **state) {
        drv_repair_plan_t plan;
        char errstr[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++) {
                drv_repair_t rp = {.dataset = "customer",
                                   .clear = decisions[i].clear,
                                   .set_version = decisions[i].set,
                                   .version = decisions[i].version};
                drv_err_t err = drv_repair_decide(
                    &rp, decisions[i].known, decisions[i].cur,
                    decisions[i].rows, &plan, errstr, sizeof(errstr));

                if (err != decisions[i].want)
                        fail_msg("case %zu: err %d (%s)", i, (int)err, errstr);
                if (err)
                        continue;
                if (plan.delete_rows != decisions[i].delete_rows ||
                    plan.set_version != decisions[i].set_version ||
                    plan.from_version != decisions[i].from ||
                    plan.to_version != decisions[i].to ||
                    plan.nothing != decisions[i].nothing)
                        fail_msg("case %zu: delete %ld set %d %ld->%ld "
                                 "nothing %d",
                                 i, plan.delete_rows, plan.set_version,
                                 plan.from_version, plan.to_version,
                                 plan.nothing);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_check_names_the_rule_broken),
            cmocka_unit_test(test_check_caps_the_reason),
            cmocka_unit_test(test_decide_follows_the_state),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
