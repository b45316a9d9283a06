/*
 * drover - tests/unit/test_consumer_worker_db_down.c: which failed runs
 * pause the worker as an outage (never dead-lettered, waiting for the
 * database) and which go through the backoff budget.  A db_unavailable
 * error on a connection that still answers is not an outage: it used to
 * pause the partition and re-run the task forever without counting.
 */
#include "testutil.h"
#include "worker_int.h"

static void test_only_lost_connection_is_an_outage(void **state) {
        static const struct {
                drv_err_t err;
                int conn_ok, want;
        } cases[] = {
            {DRV_ERR_DB_UNAVAILABLE, 0, 1}, /* lost: pause, wait */
            {DRV_ERR_DB_UNAVAILABLE, 1, 0}, /* it answered: budget */
            {DRV_ERR_SQL, 0, 0},
            {DRV_ERR_LOCKED, 1, 0},
            {DRV_ERR_TIMEOUT, 0, 0},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (drv_job_db_down(cases[i].err, cases[i].conn_ok) !=
                    cases[i].want)
                        fail_msg("case %zu: want %d", i, cases[i].want);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_only_lost_connection_is_an_outage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
