/*
 * drover - transforms/repair.c: Flyway's repair for a dataset, and every
 * statement on drover.repair_audit (its DDL is migration 4 in db.c).
 *
 * A plan that failed part-way leaves unfinished rows in drover.step_ledger:
 * `running` (a batched step's checkpoint), `superseded` (a checkpoint
 * another task took over), or any other status but done, skipped and
 * rolled_back (a step `drover rollback` undid, rollback.c).  The
 * next task of the same plan resumes from them.  When an operator has
 * fixed the data by hand those checkpoints are wrong, and the version in
 * drover.datasets may need to say what the operator did.  A repair:
 *   1. opens a transaction and tries the dataset's runner lock, the
 *      transaction-scoped form of the runner's session lock (run.c), so it
 *      refuses while a runner holds the dataset and no runner starts
 *      before it commits;
 *   2. reads the state (the "before");
 *   3. decides (drv_repair_decide): nothing to do ends here, without an
 *      audit row;
 *   4. deletes the unfinished rows and/or sets the version;
 *   5. reads the state again (the "after") and writes the audit row with
 *      both, then commits.
 * Rows are deleted, not marked: the runner reads every row of a step
 * (run.c, run_ledger_read) and would resume from a marked row's
 * checkpoint, and the row's key (task_id, step) would keep the task from
 * starting the step afresh.  The audit row's "before" keeps every column
 * of each deleted row.
 */
#include "db_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ledger rows a repair clears: the one definition of "unfinished". */
#define REPAIR_UNFINISHED "l.status NOT IN ('done', 'skipped', 'rolled_back')"

/* The dataset's state as one jsonb: version and unfinished rows. */
static const char repair_state_sql[] =
    "SELECT jsonb_build_object('dataset', $1::text, 'known', d.dataset IS NOT"
    " NULL, 'version', d.version, 'updated_at', d.updated_at, 'rows',"
    " coalesce((SELECT jsonb_agg(to_jsonb(l) ORDER BY l.started_at,"
    " l.task_id, l.step) FROM drover.step_ledger l WHERE l.dataset = $1 AND"
    " " REPAIR_UNFINISHED "), '[]'::jsonb))::text"
    " FROM (SELECT 1) AS one LEFT JOIN drover.datasets d ON d.dataset = $1";

/*
 * ------------------------------------------------------------------------
 * Rules (pure)
 * ------------------------------------------------------------------------
 */
static int repair_reason_ok(const char *reason) {
        const unsigned char *p;
        int blank = 1;

        if (!reason || strlen(reason) > DRV_REPAIR_REASON_MAX)
                return 0;
        for (p = (const unsigned char *)reason; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        return 0;
                if (!isspace(*p))
                        blank = 0;
        }
        return !blank;
}

drv_err_t drv_repair_check(const drv_repair_t *rp, int execute, char *errstr,
                           size_t errstr_size) {
        drv_err_t err;

        if ((err = drv_dataset_check(rp->dataset, errstr, errstr_size)))
                return err;
        if (rp->set_version && (rp->version < 0 || rp->version > INT32_MAX))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "invalid version %ld (want 0 to %d)",
                                   rp->version, INT32_MAX);
        if (!execute)
                return DRV_OK;
        if (!rp->clear && !rp->set_version)
                return drv_err_set(errstr, errstr_size, DRV_ERR_USAGE,
                                   "a repair needs an action: clear the "
                                   "failed rows and/or set the version");
        if (!rp->reason || !*rp->reason)
                return drv_err_set(errstr, errstr_size, DRV_ERR_USAGE,
                                   "a repair needs a reason");
        if (!repair_reason_ok(rp->reason))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "invalid reason (want 1 to %d bytes of "
                                   "text, not blank, without control "
                                   "characters)",
                                   DRV_REPAIR_REASON_MAX);
        return DRV_OK;
}

drv_err_t drv_repair_decide(const drv_repair_t *rp, int known, long version,
                            long rows, drv_repair_plan_t *plan, char *errstr,
                            size_t errstr_size) {
        memset(plan, 0, sizeof(*plan));
        plan->from_version = plan->to_version = known ? version : -1;
        if (rp->set_version && !known)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "dataset \"%.64s\" has no version in "
                                   "drover.datasets (no plan has run on it): "
                                   "nothing to set",
                                   rp->dataset);
        /* the dry run without an action shows what clearing would do */
        if (rp->clear || !rp->set_version)
                plan->delete_rows = rows;
        if (rp->set_version && rp->version != version) {
                plan->set_version = 1;
                plan->to_version = rp->version;
        }
        plan->nothing = !plan->delete_rows && !plan->set_version;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Reading the state
 * ------------------------------------------------------------------------
 */

/* The state of rp->dataset: *textp its jsonb text (malloc'ed), *statep
 * the same parsed (caller decrefs).  On failure both NULL. */
static drv_err_t repair_state(PGconn *conn, const char *dataset, char **textp,
                              json_t **statep, char *errstr,
                              size_t errstr_size) {
        const char *params[1] = {dataset};
        PGresult *res;
        drv_err_t err;

        *textp = NULL;
        *statep = NULL;
        err = drv_db_exec(conn, repair_state_sql, 1, params, &res, NULL, errstr,
                          errstr_size);
        if (err)
                return err;
        *textp = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (*textp && (*statep = json_loads(*textp, 0, NULL)))
                return DRV_OK;
        free(*textp);
        *textp = NULL;
        return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                           "out of memory reading the state of dataset "
                           "\"%.64s\"",
                           dataset);
}

/* drv_repair_decide on a state read by repair_state. */
static drv_err_t repair_decide_state(const drv_repair_t *rp,
                                     const json_t *state,
                                     drv_repair_plan_t *plan, char *errstr,
                                     size_t errstr_size) {
        return drv_repair_decide(
            rp, json_is_true(json_object_get(state, "known")),
            (long)json_integer_value(json_object_get(state, "version")),
            (long)json_array_size(json_object_get(state, "rows")), plan, errstr,
            errstr_size);
}

static json_t *repair_plan_json(const drv_repair_plan_t *plan) {
        return json_pack("{sIsosb}", "delete_rows",
                         (json_int_t)plan->delete_rows, "set_version",
                         plan->set_version ? json_integer(plan->to_version)
                                           : json_null(),
                         "nothing", plan->nothing);
}

drv_err_t drv_repair_show(PGconn *conn, const drv_repair_t *rp, json_t **outp,
                          char *errstr, size_t errstr_size) {
        drv_repair_plan_t plan;
        long active, final;
        json_t *state;
        char *text;
        drv_err_t err;

        *outp = NULL;
        if ((err = drv_repair_check(rp, 0, errstr, errstr_size)) ||
            (err = repair_state(conn, rp->dataset, &text, &state, errstr,
                                errstr_size)))
                return err;
        free(text);
        if ((err = drv_task_runs_counts(conn, rp->dataset, &active, &final,
                                        errstr, errstr_size)) ||
            (err =
                 repair_decide_state(rp, state, &plan, errstr, errstr_size))) {
                json_decref(state);
                return err;
        }
        json_object_set_new(state, "active_tasks", json_integer(active));
        json_object_set_new(state, "would", repair_plan_json(&plan));
        *outp = state;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Executing
 * ------------------------------------------------------------------------
 */

/* Step 1: the runner lock for this transaction, or DRV_ERR_LOCKED. */
static drv_err_t repair_lock(PGconn *conn, const char *dataset, char *errstr,
                             size_t errstr_size) {
        const char *params[1] = {dataset};
        char sql[96];
        PGresult *res;
        drv_err_t err;
        int got;

        snprintf(sql, sizeof(sql),
                 "SELECT pg_try_advisory_xact_lock(%d, hashtext($1))",
                 DRV_RUN_LOCK_CLASS);
        if ((err = drv_db_exec(conn, sql, 1, params, &res, NULL, errstr,
                               errstr_size)))
                return err;
        got = !strcmp(PQgetvalue(res, 0, 0), "t");
        PQclear(res);
        if (got)
                return DRV_OK;
        return drv_err_set(errstr, errstr_size, DRV_ERR_LOCKED,
                           "dataset \"%.64s\" is held by a runner (a worker "
                           "or 'drover plan run' is migrating it): repair it "
                           "once the run has ended",
                           dataset);
}

/* Step 4: delete the rows and/or set the version, as `plan` says. */
static drv_err_t repair_apply(PGconn *conn, const drv_repair_t *rp,
                              const drv_repair_plan_t *plan, char *errstr,
                              size_t errstr_size) {
        char ver[24];
        const char *params[2] = {rp->dataset, ver};
        drv_err_t err;

        if (rp->clear && plan->delete_rows &&
            (err = drv_db_exec(conn,
                               "DELETE FROM drover.step_ledger l WHERE"
                               " l.dataset = $1 AND " REPAIR_UNFINISHED,
                               1, params, NULL, NULL, errstr, errstr_size)))
                return err;
        if (!plan->set_version)
                return DRV_OK;
        snprintf(ver, sizeof(ver), "%ld", plan->to_version);
        return drv_db_exec(conn,
                           "UPDATE drover.datasets SET version = $2::int,"
                           " updated_at = now() WHERE dataset = $1",
                           2, params, NULL, NULL, errstr, errstr_size);
}

/* Step 5: the audit row; its id and time into *outp. */
static drv_err_t repair_audit(PGconn *conn, const drv_repair_t *rp,
                              const char *before, const char *after,
                              json_t *out, char *errstr, size_t errstr_size) {
        const char *params[5] = {rp->dataset, rp->who ? rp->who : "unknown",
                                 rp->reason, before, after};
        PGresult *res;
        drv_err_t err;

        err = drv_db_exec(conn,
                          "INSERT INTO drover.repair_audit (dataset, who,"
                          " reason, before, after) VALUES ($1, $2, $3,"
                          " $4::jsonb, $5::jsonb) RETURNING id,"
                          " to_jsonb(at)::text",
                          5, params, &res, NULL, errstr, errstr_size);
        if (err)
                return err;
        json_object_set_new(
            out, "id", json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
        json_object_set_new(
            out, "at",
            json_loads(PQgetvalue(res, 0, 1), JSON_DECODE_ANY, NULL));
        PQclear(res);
        return DRV_OK;
}

/* Steps 2-5 inside the open, locked transaction; *outp on DRV_OK. */
static drv_err_t repair_txn(PGconn *conn, const drv_repair_t *rp, json_t **outp,
                            char *errstr, size_t errstr_size) {
        char *before = NULL, *after = NULL;
        json_t *bstate = NULL, *astate = NULL, *out;
        drv_repair_plan_t plan;
        drv_err_t err;

        if ((err = repair_state(conn, rp->dataset, &before, &bstate, errstr,
                                errstr_size)) ||
            (err = repair_decide_state(rp, bstate, &plan, errstr, errstr_size)))
                goto done;
        out = json_pack("{sbssssssso}", "repaired", !plan.nothing, "dataset",
                        rp->dataset, "who", rp->who ? rp->who : "unknown",
                        "reason", rp->reason, "before", json_incref(bstate));
        if (!out) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                  "out of memory");
                goto done;
        }
        if (plan.nothing) {
                *outp = out;
                goto done;
        }
        if ((err = repair_apply(conn, rp, &plan, errstr, errstr_size)) ||
            (err = repair_state(conn, rp->dataset, &after, &astate, errstr,
                                errstr_size)) ||
            (err = repair_audit(conn, rp, before, after, out, errstr,
                                errstr_size))) {
                json_decref(out);
                goto done;
        }
        json_object_set(out, "after", astate);
        *outp = out;
done:
        free(before);
        free(after);
        json_decref(bstate);
        json_decref(astate);
        return err;
}

drv_err_t drv_repair_execute(PGconn *conn, const drv_repair_t *rp,
                             json_t **outp, char *errstr, size_t errstr_size) {
        json_t *out = NULL;
        drv_err_t err;

        *outp = NULL;
        if ((err = drv_repair_check(rp, 1, errstr, errstr_size)) ||
            (err = drv_db_begin(conn, 5000, 60000, errstr, errstr_size)))
                return err;
        if ((err = repair_lock(conn, rp->dataset, errstr, errstr_size)) ||
            (err = repair_txn(conn, rp, &out, errstr, errstr_size))) {
                drv_db_rollback(conn);
                return err;
        }
        /* nothing to repair: nothing was written, nothing to keep */
        if (!json_is_true(json_object_get(out, "repaired")))
                drv_db_rollback(conn);
        else if ((err = drv_db_commit(conn, errstr, errstr_size))) {
                json_decref(out);
                return err;
        }
        *outp = out;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * History
 * ------------------------------------------------------------------------
 */
drv_err_t drv_repair_history(PGconn *conn, const char *dataset, int limit,
                             json_t **outp, char *errstr, size_t errstr_size) {
        char lim[16], sqlstate[6];
        const char *params[2] = {dataset, lim};
        PGresult *res;
        drv_err_t err;

        *outp = NULL;
        snprintf(lim, sizeof(lim), "%d", limit < 1 ? 1 : limit);
        err = drv_db_exec(conn,
                          "SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY"
                          " a.id DESC), '[]'::jsonb)::text FROM (SELECT *"
                          " FROM drover.repair_audit WHERE $1::text IS NULL"
                          " OR dataset = $1 ORDER BY id DESC LIMIT"
                          " least($2::int, 1000)) AS a",
                          2, params, &res, sqlstate, errstr, errstr_size);
        if (err) {
                /* no repair yet on a database of an older drover */
                if (!strcmp(sqlstate, "42P01") || !strcmp(sqlstate, "3F000"))
                        return (*outp = json_array()) ? DRV_OK : DRV_ERR_NOMEM;
                return err;
        }
        *outp = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        PQclear(res);
        if (!*outp)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory reading the repair audit");
        return DRV_OK;
}
