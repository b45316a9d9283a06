/*
 * The queue annotation: a plan annotated drover.io/queue runs only on the
 * workers of that queue (their tasks topic); without the annotation it
 * runs on any; a malformed annotation is an invalid plan.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define DOC                                             \
        "kind: Component\nmetadata:\n  name: p\n%s"     \
        "spec:\n  type: migration-plan\n  dataset: d\n" \
        "  schemaVersion: {from: 1, to: 2}\n  steps:\n" \
        "    - {op: drop_column, table: t, column: a}\n"

static const struct {
        const char *annotations; /* metadata lines, or "" */
        const char *queue;       /* the worker's tasks topic */
        drv_err_t err;
        const char *msg;
} cases[] = {
    {"", "dataset-migrations", DRV_OK, NULL},
    {"", NULL, DRV_OK, NULL},
    {"  annotations: {drover.io/queue: dataset-migrations}\n",
     "dataset-migrations", DRV_OK, NULL},
    {"  annotations: {other.io/x: y}\n", "q", DRV_OK, NULL},
    {"  annotations: {drover.io/queue: other}\n", "dataset-migrations",
     DRV_ERR_WRONG_QUEUE,
     "plan \"component:default/p\" is for queue \"other\" (annotation "
     "drover.io/queue), not \"dataset-migrations\""},
    {"  annotations: {drover.io/queue: Dataset-Migrations}\n",
     "dataset-migrations", DRV_ERR_WRONG_QUEUE, "\"Dataset-Migrations\""},
    {"  annotations: {drover.io/queue: other}\n", NULL, DRV_ERR_WRONG_QUEUE,
     "not \"\""},
};

static void test_queue_check(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char yaml[1024], errstr[512] = "";
                drv_plan_t **plans = NULL;
                size_t cnt = 0;
                drv_err_t err;

                snprintf(yaml, sizeof(yaml), DOC, cases[i].annotations);
                if (drv_plan_load_buf(yaml, strlen(yaml), "q.yaml", &plans,
                                      &cnt, errstr, sizeof(errstr)))
                        fail_msg("case %zu: %s", i, errstr);
                err = drv_plan_queue_check(plans[0], cases[i].queue, errstr,
                                           sizeof(errstr));
                if (err != cases[i].err ||
                    (cases[i].msg && !strstr(errstr, cases[i].msg)))
                        fail_msg("case %zu: err %d \"%s\", want %d \"%s\"", i,
                                 err, errstr, cases[i].err,
                                 cases[i].msg ? cases[i].msg : "");
                drv_plan_array_free(plans, cnt);
        }
}

static void test_malformed_annotation_is_invalid(void **state) {
        static const char *bad[] = {
            "  annotations: {drover.io/queue: 7}\n",
            "  annotations: {drover.io/queue: \"\"}\n",
            "  annotations: {drover.io/queue: [a]}\n",
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char yaml[1024], errstr[512] = "";
                drv_plan_t **plans = NULL;
                size_t cnt = 0;

                snprintf(yaml, sizeof(yaml), DOC, bad[i]);
                assert_int_equal(drv_plan_load_buf(yaml, strlen(yaml), "q.yaml",
                                                   &plans, &cnt, errstr,
                                                   sizeof(errstr)),
                                 DRV_ERR_INVALID_PLAN);
                assert_non_null(strstr(
                    errstr, "q.yaml:4: annotation drover.io/queue must be"));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_queue_check),
            cmocka_unit_test(test_malformed_annotation_is_invalid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
