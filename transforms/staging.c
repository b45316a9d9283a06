/*
 * drover - transforms/staging.c: the staging gate (docs/plans.md,
 * "Staging").
 *
 * A plan with spec.requiresStaging runs in production only once the same
 * plan fingerprint has completed on the staging database: every one of
 * its steps done in that database's drover.step_ledger, by the rule the
 * version guard uses (drv_plan_done_steps).  The gate only reads;
 * `drover plan run --staging` is how a plan gets there.
 */
#include "transforms.h"

#include <stdio.h>

drv_err_t drv_plan_staging_check(PGconn *staging, const drv_plan_t *plan,
                                 char sqlstate[6], char *errstr,
                                 size_t errstr_size) {
        char head[320], why[400];
        int done = 0;
        drv_err_t err;

        if (sqlstate)
                sqlstate[0] = '\0';
        if (!plan->requires_staging)
                return DRV_OK;
        snprintf(head, sizeof(head),
                 "plan \"%.200s\" (fingerprint %.12s) requires a completed "
                 "staging run",
                 plan->ref, plan->fingerprint);
        if (!staging)
                return drv_err_set(errstr, errstr_size,
                                   DRV_ERR_STAGING_REQUIRED,
                                   "%s, and no staging database is "
                                   "configured (staging.database_url, "
                                   "DROVER_STAGING_DATABASE_URL)",
                                   head);
        err = drv_plan_done_steps(staging, plan, &done, sqlstate, why,
                                  sizeof(why));
        if (err)
                return drv_err_set(errstr, errstr_size, err,
                                   "staging database: %s", why);
        if (done >= (int)plan->steps_cnt)
                return DRV_OK;
        return drv_err_set(errstr, errstr_size, DRV_ERR_STAGING_REQUIRED,
                           "%s: %d of %zu steps done on the staging "
                           "database; run 'drover plan run --staging %.200s "
                           "--dataset %.100s' first",
                           head, done, plan->steps_cnt, plan->ref,
                           plan->dataset);
}
