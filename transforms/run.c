/*
 * drover - transforms/run.c: running a plan (DESIGN.md section 6).
 *
 *   1. static checks: the plan validates and every step builds its SQL
 *      (identifiers, types, expressions, params) before any SQL is sent;
 *   2. the dataset's advisory lock (session level, two-int form:
 *      DRV_RUN_LOCK_CLASS, hashtext(dataset)), waited for or tried;
 *   3. the version guard on drover.datasets: the version must equal the
 *      plan's `from` (an unseen dataset is adopted at `from`); at `to` with
 *      every step of this plan done in the ledger the task is skipped;
 *      anything else is a version conflict;
 *   4. the steps: a step done in the ledger (this task, or another task
 *      running the same plan, same step fingerprint) is skipped; the same
 *      index with another fingerprint for this task is a ledger conflict.
 *      Each other step runs in its own transaction together with its
 *      ledger row; batched steps commit batch + checkpoint per transaction
 *      and resume from the checkpoint.  The last step's transaction also
 *      moves drover.datasets to `to`;
 *   5. dry run: steps 1-3 unchanged (nothing written), then every step
 *      checked in one READ ONLY transaction with short timeouts: row
 *      counts and EXPLAIN for batched steps, catalog checks for DDL (see
 *      section 5).
 *
 * A plan without batched or non-transactional steps takes the
 * one-transaction path (drv_plan_one_txn) instead: the same lock as a
 * transaction-scoped advisory lock, the same guard, every step with its
 * ledger row, the version move and the caller's on_commit writes in ONE
 * transaction, so a task costs one commit and leaves no session state
 * (docs/decisions.md, "One transaction per simple task").
 */
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct run_s {
        PGconn *conn;
        const drv_plan_t *plan;
        const drv_run_opts_t *opts;
        drv_run_result_t *res;
        long lock_ms, stmt_ms;
        int one_txn;      /* every step in the caller's open transaction */
        long txn_stmt_ms; /* one_txn: the statement_timeout in force */
        int version_set;  /* datasets.version moved to `to` */
        drv_throttle_t throttle; /* the worker's, overridden by the plan's */
        char from_str[16], to_str[16];
        char errstr[512];
} run_t;

/* Ledger state of one step, as far as this task is concerned. */
typedef struct ledger_s {
        int done;            /* skip the step */
        int have_row;        /* this task has a (running) row */
        char last[256];      /* checkpoint, "" for none */
        int64_t rows;        /* rows already done */
        char adopt_from[64]; /* running row of another task to take over */
} ledger_t;

static drv_err_t run_fail(run_t *run, const drv_step_t *step, drv_err_t err,
                          const char *sqlstate) {
        drv_run_result_t *res = run->res;

        res->outcome = DRV_RUN_FAILED;
        res->err = err;
        if (step) {
                res->failed_step = step->index;
                snprintf(res->failed_op, sizeof(res->failed_op), "%s",
                         drv_op_name(step->op) ? drv_op_name(step->op) : "?");
        }
        if (sqlstate && sqlstate != res->sqlstate)
                snprintf(res->sqlstate, sizeof(res->sqlstate), "%s", sqlstate);
        if (step)
                snprintf(res->errmsg, sizeof(res->errmsg),
                         "step %d (%s): %.400s", step->index, res->failed_op,
                         run->errstr);
        else
                snprintf(res->errmsg, sizeof(res->errmsg), "%.500s",
                         run->errstr);
        return err;
}

static void run_progress(run_t *run, const drv_step_t *step, int64_t done,
                         int64_t total) {
        if (run->opts->progress)
                run->opts->progress(run->opts->progress_opaque, step->index,
                                    drv_op_name(step->op), done, total);
}

/*
 * ------------------------------------------------------------------------
 * 1. Static checks
 * ------------------------------------------------------------------------
 */
static drv_err_t run_check_step(run_t *run, const drv_step_t *step) {
        drv_op_ctx_t ctx = {run->conn,          step, run->opts, run->plan, 1,
                            run->opts->dry_run, 0,    "",        ""};
        drv_op_fn_t *fn;
        drv_batch_t b;
        drv_err_t err;

        if (drv_op_is_batched(step->op)) {
                err = drv_op_batch_build(&ctx, &b, run->errstr,
                                         sizeof(run->errstr));
                if (!err)
                        drv_op_batch_free(&b);
                return err;
        }
        if (!(fn = drv_op_fn(step->op)))
                return drv_err_set(run->errstr, sizeof(run->errstr),
                                   DRV_ERR_INVALID_PLAN, "unknown op");
        return fn(&ctx, run->errstr, sizeof(run->errstr));
}

static drv_err_t run_check(run_t *run) {
        const drv_run_opts_t *opts = run->opts;
        drv_err_t err;
        size_t i;

        if (!opts->task_id || !*opts->task_id)
                return drv_err_set(run->errstr, sizeof(run->errstr),
                                   DRV_ERR_INVALID_PARAM, "task id required");
        if (!run->plan->dataset ||
            (opts->dataset && strcmp(opts->dataset, run->plan->dataset)))
                return drv_err_set(
                    run->errstr, sizeof(run->errstr), DRV_ERR_INVALID_PARAM,
                    "task dataset \"%.64s\" does not match the "
                    "plan's dataset \"%.64s\"",
                    opts->dataset ? opts->dataset : "",
                    run->plan->dataset ? run->plan->dataset : "");
        for (i = 0; !opts->allow_sql && i < run->plan->steps_cnt; i++)
                if (run->plan->steps[i].op == DRV_OP_SQL) {
                        drv_err_set(run->errstr, sizeof(run->errstr),
                                    DRV_ERR_SQL_REFUSED,
                                    "raw sql is not allowed (enable it in "
                                    "the worker's config)");
                        return run_fail(run, &run->plan->steps[i],
                                        DRV_ERR_SQL_REFUSED, NULL);
                }
        err = drv_plan_validate(run->plan, opts->allow_sql, run->errstr,
                                sizeof(run->errstr));
        if (err)
                return err;
        for (i = 0; i < run->plan->steps_cnt; i++) {
                err = run_check_step(run, &run->plan->steps[i]);
                if (err)
                        return run_fail(run, &run->plan->steps[i], err, NULL);
        }
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * 2-3. Dataset lock and version guard
 * ------------------------------------------------------------------------
 */
/* A tried dataset lock (first column of `res`, boolean) that was not
 * granted is DRV_ERR_LOCKED; a waited-for one always is. */
static drv_err_t lock_granted(const char *dataset, int wait,
                              const PGresult *res, char *errstr,
                              size_t errstr_size) {
        if (wait || !strcmp(PQgetvalue(res, 0, 0), "t"))
                return DRV_OK;
        return drv_err_set(errstr, errstr_size, DRV_ERR_LOCKED,
                           "dataset \"%.64s\" is being migrated by another "
                           "runner",
                           dataset);
}

static drv_err_t run_lock_granted(run_t *run, const PGresult *res) {
        return lock_granted(run->plan->dataset, run->opts->wait_for_lock, res,
                            run->errstr, sizeof(run->errstr));
}

static drv_err_t run_lock(run_t *run, int lock) {
        const char *params[1] = {run->plan->dataset};
        char sql[160], state[6];
        PGresult *res;
        drv_err_t err;

        snprintf(sql, sizeof(sql), "SELECT %s(%d, hashtext($1))",
                 !lock                      ? "pg_advisory_unlock"
                 : run->opts->wait_for_lock ? "pg_advisory_lock"
                                            : "pg_try_advisory_lock",
                 DRV_RUN_LOCK_CLASS);
        err = drv_db_exec(run->conn, sql, 1, params, &res, state, run->errstr,
                          sizeof(run->errstr));
        if (err) {
                snprintf(run->res->sqlstate, 6, "%s", state);
                return err;
        }
        if (lock)
                err = run_lock_granted(run, res);
        PQclear(res);
        return err;
}

/* The dataset's version ($1) and the steps of the plan ($2, its
 * fingerprint) done in the ledger by any task: the one rule of "the plan
 * is done" that the version guard (run_guard_read) and the staging gate
 * (drv_plan_done_steps) share. */
#define RUN_DONE_SQL                                                       \
        "SELECT (SELECT version FROM drover.datasets WHERE dataset = $1)," \
        " (SELECT count(DISTINCT step) FROM drover.step_ledger WHERE"      \
        " plan_fingerprint = $2 AND status = 'done')"

#define RUN_GUARD_READ                                                     \
        RUN_DONE_SQL                                                       \
        ", (SELECT count(DISTINCT step) FROM drover.step_ledger"           \
        " WHERE plan_fingerprint = $2 AND status = 'done' AND task_id = "  \
        "$3),"                                                             \
        " (SELECT coalesce(sum(rows), 0) FROM drover.step_ledger WHERE"    \
        " plan_fingerprint = $2 AND status = 'done' AND task_id = $3),"    \
        " (SELECT count(*) FROM drover.step_ledger WHERE task_id = $3 AND" \
        " step = -1 AND plan_fingerprint = $2 AND status = 'skipped')"

/* The dataset's version (*foundp: known before this run), the plan's
 * steps done in the ledger by any task (*donep) and by this task
 * (*minep, with its rows), and whether this task was found a no-op
 * before (*skippedp: its `skipped` marker, step -1).  Unless it is a dry
 * run, an unseen dataset is adopted at the plan's `from` in the same
 * statement (the read does not see that row: *foundp stays 0). */
static drv_err_t run_guard_read(run_t *run, int *foundp, int *versionp,
                                int *donep, int *minep, int64_t *rowsp,
                                int *skippedp) {
        const char *params[4] = {run->plan->dataset, run->plan->fingerprint,
                                 run->opts->task_id, run->from_str};
        PGresult *res;
        drv_err_t err;

        err = drv_db_exec(
            run->conn,
            run->opts->dry_run
                ? RUN_GUARD_READ
                : "WITH adopt AS (INSERT INTO drover.datasets"
                  " (dataset, version, task_id,"
                  " plan_fingerprint) VALUES ($1, $4::int, $3,"
                  " $2) ON CONFLICT (dataset) DO NOTHING) " RUN_GUARD_READ,
            run->opts->dry_run ? 3 : 4, params, &res, run->res->sqlstate,
            run->errstr, sizeof(run->errstr));
        if (err)
                return err;
        *skippedp = atoi(PQgetvalue(res, 0, 4)) > 0;
        *foundp = !PQgetisnull(res, 0, 0);
        *versionp = *foundp ? atoi(PQgetvalue(res, 0, 0)) : 0;
        *donep = atoi(PQgetvalue(res, 0, 1));
        *minep = atoi(PQgetvalue(res, 0, 2));
        *rowsp = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        PQclear(res);
        return DRV_OK;
}

drv_err_t drv_plan_done_steps(PGconn *conn, const drv_plan_t *plan, int *donep,
                              char sqlstate[6], char *errstr,
                              size_t errstr_size) {
        const char *params[2] = {plan->dataset, plan->fingerprint};
        char state[6] = "";
        PGresult *res;
        drv_err_t err;

        *donep = 0;
        err = drv_db_exec(conn, RUN_DONE_SQL, 2, params, &res, state, errstr,
                          errstr_size);
        if (sqlstate)
                snprintf(sqlstate, 6, "%s", state);
        /* no schema drover, or no ledger yet: nothing ran there */
        if (err == DRV_ERR_SQL &&
            (!strcmp(state, "3F000") || !strcmp(state, "42P01"))) {
                if (sqlstate)
                        sqlstate[0] = '\0';
                return DRV_OK;
        }
        if (err)
                return err;
        *donep = atoi(PQgetvalue(res, 0, 1));
        PQclear(res);
        return DRV_OK;
}

/* DRV_OK to run, DRV_OK with *skipp for a no-op (2: the ledger shows
 * this very task did the plan, e.g. a redelivery after a crash), or a
 * version conflict. */
/* Record that this task was a no-op (step -1, `skipped`), so that its
 * redelivery is a no-op again even once later tasks moved the dataset on.
 * Written before the outcome can reach Kafka. */
static drv_err_t run_mark_skipped(run_t *run) {
        const char *params[3] = {run->opts->task_id, run->plan->fingerprint,
                                 run->plan->dataset};

        if (run->opts->dry_run)
                return DRV_OK;
        return drv_db_exec(run->conn,
                           "INSERT INTO drover.step_ledger (task_id, step, op,"
                           " fingerprint, plan_fingerprint, dataset, status,"
                           " finished_at) VALUES ($1, -1, 'skip', $2, $2, $3,"
                           " 'skipped', now()) ON CONFLICT DO NOTHING",
                           3, params, NULL, run->res->sqlstate, run->errstr,
                           sizeof(run->errstr));
}

static drv_err_t run_guard(run_t *run, int *skipp) {
        const drv_plan_t *plan = run->plan;
        int found, version, done, mine, skipped;
        int64_t rows;
        drv_err_t err;

        *skipp = 0;
        if ((err = run_guard_read(run, &found, &version, &done, &mine, &rows,
                                  &skipped)))
                return err;
        /* this very task did the whole plan: a redelivery after a crash
         * before the Kafka commit.  The dataset may have moved on since
         * (the partition's next task runs once this one's database work is
         * done), so this comes before the version check: a redelivered
         * 2 -> 3 task on a dataset now at 4 is done, not a conflict */
        if (found && mine >= (int)plan->steps_cnt) {
                *skipp = 2;
                run->res->rows = rows;
                return DRV_OK;
        }
        if (found && skipped) { /* the same, for a task that was a no-op */
                *skipp = 1;
                return DRV_OK;
        }
        if (!found || version == plan->from_version)
                return DRV_OK;
        if (version == plan->to_version && done >= (int)plan->steps_cnt) {
                *skipp = 1;
                return run_mark_skipped(run);
        }
        return drv_err_set(
            run->errstr, sizeof(run->errstr), DRV_ERR_VERSION_CONFLICT,
            "dataset \"%.64s\" is at version %d, plan \"%.200s\" "
            "migrates %d to %d",
            plan->dataset, version, plan->ref, plan->from_version,
            plan->to_version);
}

/*
 * ------------------------------------------------------------------------
 * 4. Ledger
 * ------------------------------------------------------------------------
 */
static drv_err_t run_ledger_read(run_t *run, const drv_step_t *step,
                                 ledger_t *lg) {
        char idx[16];
        const char *params[4] = {run->opts->task_id, idx,
                                 run->plan->fingerprint, step->fingerprint};
        PGresult *res;
        drv_err_t err;
        int i;

        memset(lg, 0, sizeof(*lg));
        snprintf(idx, sizeof(idx), "%d", step->index);
        err = drv_db_exec(run->conn,
                          "SELECT task_id = $1, fingerprint, status,"
                          " coalesce(checkpoint->>'last', ''), rows, task_id"
                          " FROM drover.step_ledger WHERE step = $2::int AND"
                          " (task_id = $1 OR (plan_fingerprint = $3 AND"
                          " fingerprint = $4)) AND status <> 'rolled_back'"
                          " ORDER BY task_id = $1 DESC,"
                          " status = 'done' DESC, rows DESC",
                          4, params, &res, run->res->sqlstate, run->errstr,
                          sizeof(run->errstr));
        if (err)
                return err;
        for (i = 0; i < PQntuples(res); i++) {
                int mine = !strcmp(PQgetvalue(res, i, 0), "t");
                int done = !strcmp(PQgetvalue(res, i, 2), "done");

                if (mine && strcmp(PQgetvalue(res, i, 1), step->fingerprint)) {
                        err = drv_err_set(
                            run->errstr, sizeof(run->errstr),
                            DRV_ERR_LEDGER_CONFLICT,
                            "ledger has step %d of task \"%.64s\" with another "
                            "definition (fingerprint %.12s, plan has %.12s)",
                            step->index, run->opts->task_id,
                            PQgetvalue(res, i, 1), step->fingerprint);
                        break;
                }
                if (done) {
                        lg->done = 1;
                        break;
                }
                if (mine)
                        lg->have_row = 1;
                else if (lg->have_row || lg->adopt_from[0])
                        continue;
                else
                        snprintf(lg->adopt_from, sizeof(lg->adopt_from), "%s",
                                 PQgetvalue(res, i, 5));
                snprintf(lg->last, sizeof(lg->last), "%s",
                         PQgetvalue(res, i, 3));
                lg->rows = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        }
        PQclear(res);
        return err;
}

/* What a rollback of `step` needs (rollback.c, drv_rollback_inverse),
 * recorded in the step's done ledger row as spec: the plan's ref and
 * versions, the step as written, and what the op found before it ran
 * (`old_type`: alter_type's column type; NULL or "": none).  A new
 * string (caller frees) or NULL on out of memory. */
static char *run_step_spec(const run_t *run, const drv_step_t *step,
                           const char *old_type) {
        json_t *o = json_pack("{s:i, s:s, s:i, s:i, s:O}", "v", 1, "plan",
                              run->plan->ref, "from", run->plan->from_version,
                              "to", run->plan->to_version, "def", step->def);
        char *s;

        if (!o)
                return NULL;
        if (old_type && *old_type)
                json_object_set_new(o, "old_type", json_string(old_type));
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

/* Insert or complete this task's ledger row for `step` (inside the
 * step's transaction), with the spec a rollback needs ($9); on the last
 * step done, the same statement moves the dataset's version to `to`. */
#define RUN_LEDGER_UPSERT                                                      \
        "INSERT INTO drover.step_ledger AS l (task_id, step, op, fingerprint," \
        " plan_fingerprint, dataset, status, rows, finished_at, spec) VALUES"  \
        " ($1, $2::int, $3, $4, $5, $6, $7, $8::bigint, CASE WHEN $7 ="        \
        " 'done' THEN now() END, $9::jsonb) ON CONFLICT (task_id, step) DO"    \
        " UPDATE SET status = $7, rows = $8::bigint, finished_at ="            \
        " EXCLUDED.finished_at, spec = EXCLUDED.spec"

static drv_err_t run_ledger_write(run_t *run, const drv_step_t *step,
                                  const char *status, int64_t rows,
                                  const char *old_type) {
        char idx[16], nrows[24], *spec = run_step_spec(run, step, old_type);
        const char *params[11] = {run->opts->task_id,
                                  idx,
                                  drv_op_name(step->op),
                                  step->fingerprint,
                                  run->plan->fingerprint,
                                  run->plan->dataset,
                                  status,
                                  nrows,
                                  spec,
                                  run->to_str,
                                  run->from_str};
        int last = !strcmp(status, "done") &&
                   (size_t)step->index + 1 == run->plan->steps_cnt;
        drv_err_t err;

        if (!spec)
                return drv_err_set(
                    run->errstr, sizeof(run->errstr), DRV_ERR_NOMEM,
                    "out of memory recording step %d", step->index);
        snprintf(idx, sizeof(idx), "%d", step->index);
        snprintf(nrows, sizeof(nrows), "%lld", (long long)rows);
        err = drv_db_exec(run->conn,
                          last ? "WITH step AS (" RUN_LEDGER_UPSERT ")"
                                 " UPDATE drover.datasets SET version ="
                                 " $10::int, updated_at = now(), task_id = $1"
                                 " WHERE dataset = $6 AND version = $11::int"
                               : RUN_LEDGER_UPSERT,
                          last ? 11 : 9, params, NULL, run->res->sqlstate,
                          run->errstr, sizeof(run->errstr));
        free(spec);
        if (!err && last)
                run->version_set = 1;
        return err;
}

/*
 * ------------------------------------------------------------------------
 * 4. Steps
 * ------------------------------------------------------------------------
 */

/* An op that runs outside a transaction (no SET LOCAL): the step's
 * statement_timeout is set for the session around it and reset after,
 * whatever the op's outcome. */
static drv_err_t run_autocommit_op(run_t *run, drv_op_ctx_t *ctx,
                                   long step_ms) {
        char sql[96], ignore[256];
        drv_err_t err;

        snprintf(sql, sizeof(sql),
                 "SELECT set_config('statement_timeout', '%ld', false)",
                 step_ms);
        if ((err =
                 drv_db_cmd(run->conn, sql, run->errstr, sizeof(run->errstr))))
                return err;
        err = drv_op_fn(ctx->step->op)(ctx, run->errstr, sizeof(run->errstr));
        (void)drv_db_cmd(run->conn, "RESET statement_timeout", ignore,
                         sizeof(ignore));
        return err;
}

/* one_txn: the step's statement_timeout for the rest of the open
 * transaction, when it differs from the one in force. */
static drv_err_t run_txn_timeout(run_t *run, long step_ms) {
        char sql[96];
        drv_err_t err;

        if (step_ms == run->txn_stmt_ms)
                return DRV_OK;
        snprintf(sql, sizeof(sql),
                 "SELECT set_config('statement_timeout', '%ld', true)",
                 step_ms);
        if (!(err =
                  drv_db_cmd(run->conn, sql, run->errstr, sizeof(run->errstr))))
                run->txn_stmt_ms = step_ms;
        return err;
}

/* A non-batched step: op + ledger row in one transaction (one_txn: in
 * the run's open transaction).  An op that cannot run in a transaction
 * (CREATE INDEX CONCURRENTLY, idempotent: it rebuilds an invalid index
 * and checks validity, see ops.c; never on the one_txn path) runs first
 * on its own, then the ledger txn. */
static drv_err_t run_plain_step(run_t *run, const drv_step_t *step,
                                const ledger_t *lg) {
        drv_op_ctx_t ctx = {run->conn, step, run->opts, run->plan, 0,
                            0,         0,    "",        ""};
        int autocommit = drv_op_needs_autocommit(step, 0);
        long step_ms = drv_step_timeout_ms(step, run->stmt_ms);
        drv_err_t err;

        if (autocommit && (err = run_autocommit_op(run, &ctx, step_ms)))
                return run_fail(run, step, err, ctx.sqlstate);
        err = run->one_txn ? run_txn_timeout(run, step_ms)
                           : drv_db_begin(run->conn, run->lock_ms, step_ms,
                                          run->errstr, sizeof(run->errstr));
        if (err)
                return run_fail(run, step, err, run->res->sqlstate);
        if (!autocommit && (err = drv_op_fn(step->op)(&ctx, run->errstr,
                                                      sizeof(run->errstr)))) {
                drv_db_rollback(run->conn);
                return run_fail(run, step, err, ctx.sqlstate);
        }
        if ((err =
                 run_ledger_write(run, step, "done", ctx.rows, ctx.old_type)) ||
            (!run->one_txn && (err = drv_db_commit(run->conn, run->errstr,
                                                   sizeof(run->errstr))))) {
                drv_db_rollback(run->conn);
                return run_fail(run, step, err, run->res->sqlstate);
        }
        run->res->rows += ctx.rows;
        run_progress(run, step, ctx.rows, ctx.rows);
        return DRV_OK;
}

/* Create this task's running ledger row, taking over the checkpoint of
 * another task's unfinished run of the same plan step, if any. */
static drv_err_t run_ledger_start(run_t *run, const drv_step_t *step,
                                  ledger_t *lg) {
        char idx[16], nrows[24];
        const char *params[8] = {run->opts->task_id,
                                 idx,
                                 drv_op_name(step->op),
                                 step->fingerprint,
                                 run->plan->fingerprint,
                                 run->plan->dataset,
                                 lg->last[0] ? lg->last : NULL,
                                 nrows};
        drv_err_t err;

        if (lg->have_row)
                return DRV_OK;
        snprintf(idx, sizeof(idx), "%d", step->index);
        snprintf(nrows, sizeof(nrows), "%lld", (long long)lg->rows);
        if ((err = drv_db_begin(run->conn, run->lock_ms, run->stmt_ms,
                                run->errstr, sizeof(run->errstr))))
                return err;
        err = drv_db_exec(run->conn,
                          "INSERT INTO drover.step_ledger (task_id, step, op,"
                          " fingerprint, plan_fingerprint, dataset, status,"
                          " checkpoint, rows) VALUES ($1, $2::int, $3, $4, $5,"
                          " $6, 'running', CASE WHEN $7::text IS NOT NULL"
                          " THEN jsonb_build_object('last', $7::text) END,"
                          " $8::bigint) ON CONFLICT DO NOTHING",
                          8, params, NULL, run->res->sqlstate, run->errstr,
                          sizeof(run->errstr));
        if (!err && lg->adopt_from[0]) {
                const char *sp[2] = {lg->adopt_from, idx};

                err = drv_db_exec(run->conn,
                                  "UPDATE drover.step_ledger SET status ="
                                  " 'superseded' WHERE task_id = $1 AND"
                                  " step = $2::int AND status = 'running'",
                                  2, sp, NULL, run->res->sqlstate, run->errstr,
                                  sizeof(run->errstr));
        }
        if (!err)
                err =
                    drv_db_commit(run->conn, run->errstr, sizeof(run->errstr));
        drv_db_rollback(run->conn);
        lg->have_row = !err;
        return err;
}

static void run_sleep_ms(long ms) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (ms > 0 && nanosleep(&ts, &ts) != 0)
                ;
}

/* Total rows for progress (best effort: 0 when the count fails). */
static int64_t run_count(run_t *run, drv_batch_t *b) {
        PGresult *res;
        int64_t n = 0;
        char ignore[256];

        if (drv_db_exec(run->conn, b->count.buf, b->count.nparams,
                        b->count.params, &res, NULL, ignore, sizeof(ignore)))
                return 0;
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        return n;
}

/* One batch transaction.  *morep = 0 when no rows were left. */
static drv_err_t run_one_batch(run_t *run, drv_batch_t *b, ledger_t *lg,
                               long step_ms, int *morep) {
        drv_sql_t *sql = lg->last[0] ? &b->next : &b->first;
        PGresult *res;
        drv_err_t err;

        *morep = 0;
        if (lg->last[0])
                b->next.params[0] = lg->last;
        if ((err = drv_db_begin(run->conn, run->lock_ms, step_ms, run->errstr,
                                sizeof(run->errstr))))
                return err;
        /* A batch and its checkpoint commit together, so a batch lost in
         * a server crash is lost with its checkpoint and redone: no need
         * to wait for the WAL flush of each one.  The step's final
         * transaction (ledger done, dataset version) stays synchronous. */
        err = drv_db_cmd(run->conn,
                         "SELECT set_config('synchronous_commit', 'off', true)",
                         run->errstr, sizeof(run->errstr));
        if (!err)
                err = drv_db_exec(run->conn, sql->buf, sql->nparams,
                                  sql->params, &res, run->res->sqlstate,
                                  run->errstr, sizeof(run->errstr));
        if (err) {
                drv_db_rollback(run->conn);
                return err;
        }
        if (PQntuples(res) == 1) {
                *morep = 1;
                snprintf(lg->last, sizeof(lg->last), "%s",
                         PQgetvalue(res, 0, 0));
                lg->rows += strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        }
        PQclear(res);
        return drv_db_commit(run->conn, run->errstr, sizeof(run->errstr));
}

#ifdef DROVER_TEST_HOOKS
/* DROVER_CRASH_AFTER_BATCHES=N: _exit(137) after N committed batches
 * (tests of resume without racing a kill). */
static void run_crash_point(int batches) {
        const char *env = getenv("DROVER_CRASH_AFTER_BATCHES");

        if (env && atoi(env) > 0 && batches >= atoi(env))
                _Exit(137);
}
#else
#define run_crash_point(n) ((void)(n))
#endif

/* 1 when the caller asked the run to stop. */
static int run_cancelled(const run_t *run) {
        return run->opts->cancel && atomic_load(run->opts->cancel);
}

static drv_err_t run_cancel_err(run_t *run, const ledger_t *lg) {
        return drv_err_set(run->errstr, sizeof(run->errstr), DRV_ERR_TIMEOUT,
                           "cancelled after %lld rows (resumes from the "
                           "checkpoint)",
                           (long long)lg->rows);
}

static void run_throttle_cb(run_t *run, const drv_throttle_state_t *st,
                            const char *waited_kind, double waited_s) {
        if (run->opts->on_throttle)
                run->opts->on_throttle(
                    run->opts->throttle_opaque, st ? st->kind : NULL,
                    st ? st->reason : NULL, waited_kind, waited_s);
}

/* Sleep up to `ms`, waking every 100 ms to look at the cancel flag. */
static void run_throttle_sleep(const run_t *run, long ms) {
        for (; ms > 0 && !run_cancelled(run); ms -= 100)
                run_sleep_ms(ms < 100 ? ms : 100);
}

/* Before a batch, with no transaction open: while a throttle check says
 * so, report it (on_throttle) and wait, polling every
 * DRV_THROTTLE_POLL_MS; the cancel flag ends the wait.  A failed check
 * fails the step (its error names the throttle query).  Nothing is
 * held between the polls: each check's transaction is closed. */
static drv_err_t run_throttle(run_t *run, const ledger_t *lg) {
        drv_throttle_state_t st;
        char kind[32] = "";
        int64_t since = 0, t0 = 0;
        double waited = 0;
        drv_err_t err;

        if (!drv_throttle_is_set(&run->throttle))
                return DRV_OK;
        for (;;) {
                err = drv_throttle_check(run->conn, &run->throttle, &st,
                                         run->res->sqlstate, run->errstr,
                                         sizeof(run->errstr));
                if (err || !st.throttled || run_cancelled(run))
                        break;
                if (!kind[0]) {
                        since = drv_mono_ms();
                        drv_log(DRV_LOG_INFO, "throttled: %s", st.reason);
                }
                run_throttle_cb(run, &st, kind[0] ? kind : NULL, waited);
                snprintf(kind, sizeof(kind), "%s", st.kind);
                t0 = drv_mono_ms();
                run_throttle_sleep(run, DRV_THROTTLE_POLL_MS);
                waited = (double)(drv_mono_ms() - t0) / 1000.0;
        }
        if (kind[0]) {
                run_throttle_cb(run, NULL, kind, waited);
                drv_log(DRV_LOG_INFO, "throttle cleared after %.1f s",
                        (double)(drv_mono_ms() - since) / 1000.0);
        }
        if (err)
                return err;
        return run_cancelled(run) ? run_cancel_err(run, lg) : DRV_OK;
}

static drv_err_t run_batched_step(run_t *run, const drv_step_t *step,
                                  ledger_t *lg) {
        drv_op_ctx_t ctx = {run->conn, step, run->opts, run->plan, 0,
                            0,         0,    "",        ""};
        int64_t total, start_rows;
        drv_batch_t b;
        drv_err_t err;
        int more = 1, batches = 0;

        if ((err = drv_op_batch_build(&ctx, &b, run->errstr,
                                      sizeof(run->errstr))))
                return run_fail(run, step, err, NULL);
        if ((err = run_ledger_start(run, step, lg)))
                goto fail;
        total = run_count(run, &b);
        start_rows = lg->rows;
        while (more) {
                if (run_cancelled(run)) {
                        err = run_cancel_err(run, lg);
                        goto fail;
                }
                if ((err = run_throttle(run, lg)) ||
                    (err = run_one_batch(
                         run, &b, lg, drv_step_timeout_ms(step, run->stmt_ms),
                         &more)))
                        goto fail;
                if (!more)
                        break;
                run_progress(run, step, lg->rows,
                             total > lg->rows ? total : lg->rows);
                run_crash_point(++batches);
                if (run->opts->batch_pause_ms > 0)
                        run_sleep_ms(run->opts->batch_pause_ms);
        }
        if ((err = drv_db_begin(run->conn, run->lock_ms, run->stmt_ms,
                                run->errstr, sizeof(run->errstr))) ||
            (err = run_ledger_write(run, step, "done", lg->rows, NULL)) ||
            (err = drv_db_commit(run->conn, run->errstr, sizeof(run->errstr))))
                goto fail;
        /* progress first: its listener adds this step's rows to the rows
         * of the steps before (res->rows), so counting them in res->rows
         * first reported them twice (40,000 rows for 20,000) */
        run_progress(run, step, lg->rows, lg->rows);
        run->res->rows += lg->rows - start_rows;
        drv_op_batch_free(&b);
        return DRV_OK;
fail:
        drv_db_rollback(run->conn);
        drv_op_batch_free(&b);
        return run_fail(run, step, err, run->res->sqlstate);
}

static drv_err_t run_steps(run_t *run) {
        const drv_plan_t *plan = run->plan;
        const char *vparams[3] = {plan->dataset, run->to_str, run->from_str};
        drv_err_t err;
        ledger_t lg;
        size_t i;

        for (i = 0; i < plan->steps_cnt; i++) {
                const drv_step_t *step = &plan->steps[i];

                if ((err = run_ledger_read(run, step, &lg)))
                        return run_fail(run, step, err, run->res->sqlstate);
                if (!lg.done) {
                        drv_log_ctx_t lc = {run->opts->task_id, plan->dataset,
                                            step->index, -1, -1};

                        drv_log_set_ctx(&lc);
                        err = drv_op_is_batched(step->op)
                                  ? run_batched_step(run, step, &lg)
                                  : run_plain_step(run, step, &lg);
                        drv_log_set_ctx(NULL);
                        if (err)
                                return err;
                }
                run->res->steps_done++;
        }
        /* Every step was already done (by another task): make sure the
         * version moved, as the last step's transaction would have. */
        if (!run->version_set &&
            (err = drv_db_exec(run->conn,
                               "UPDATE drover.datasets SET version = $2::int,"
                               " updated_at = now() WHERE dataset = $1 AND"
                               " version = $3::int",
                               3, vparams, NULL, run->res->sqlstate,
                               run->errstr, sizeof(run->errstr))))
                return run_fail(run, NULL, err, run->res->sqlstate);
        run->res->outcome = DRV_RUN_DONE;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * 5. Dry run: one READ ONLY transaction with short timeouts, rolled back.
 *    Nothing is written and no lock stronger than a reader's (ACCESS
 *    SHARE, ROW EXCLUSIVE while planning an EXPLAIN) is taken, so a dry
 *    run on a live table never blocks its writers.  Per step:
 *    - batched (copy_rows, backfill): count(*) of the rows the step would
 *      visit (its where) and EXPLAIN (no ANALYZE) of its UPDATE / INSERT;
 *    - other ops: the tables they name exist (or an earlier step of the
 *      plan creates them); their DDL is not executed nor EXPLAINed;
 *    - sql: nothing beyond the static checks.
 *    A count or EXPLAIN that fails on a table or column missing because
 *    an earlier step of the plan would create it counts as unchecked
 *    (res->dry_unchecked), not as a failure.
 * ------------------------------------------------------------------------
 */
#define DRV_DRY_LOCK_MS 1000
#define DRV_DRY_STMT_MS 30000

/* 1 when a step before `step` changes the schema (not batched, not
 * validate). */
static int run_dry_after_ddl(const run_t *run, const drv_step_t *step) {
        int i;

        for (i = 0; i < step->index; i++)
                if (!drv_op_is_batched(run->plan->steps[i].op) &&
                    run->plan->steps[i].op != DRV_OP_VALIDATE)
                        return 1;
        return 0;
}

/* Run a read in a savepoint.  1: it failed on an object an earlier step
 * would create (the step is unchecked); 0 and *resp on success. */
static drv_err_t run_dry_try(run_t *run, const drv_step_t *step,
                             const char *prefix, const drv_sql_t *sql,
                             PGresult **resp, int *uncheckedp) {
        char text[16384], state[6] = "";
        drv_err_t err;

        snprintf(text, sizeof(text), "%s%s", prefix, sql->buf);
        if ((err = drv_db_cmd(run->conn, "SAVEPOINT drv_dry", run->errstr,
                              sizeof(run->errstr))))
                return err;
        err = drv_db_exec(run->conn, text, sql->nparams, sql->params, resp,
                          state, run->errstr, sizeof(run->errstr));
        if (err) {
                (void)drv_db_cmd(run->conn, "ROLLBACK TO SAVEPOINT drv_dry",
                                 text, sizeof(text));
                if ((!strcmp(state, "42P01") || !strcmp(state, "42703")) &&
                    run_dry_after_ddl(run, step)) {
                        *uncheckedp = 1;
                        return DRV_OK;
                }
                snprintf(run->res->sqlstate, 6, "%s", state);
        }
        return err;
}

/* The tables a non-batched step names exist, or an earlier create_table
 * of the plan creates them. */
static drv_err_t run_dry_tables(run_t *run, const drv_step_t *step) {
        const drv_opdef_t *def = drv_op_def(step->op);
        drv_sql_t q;
        PGresult *res;
        drv_err_t err = DRV_OK;
        const char *t;
        int n, i, made;

        for (n = 0; !err && n < DRV_OP_FIELDS_MAX && def->fields[n].name; n++) {
                if (def->fields[n].kind != DRV_F_TABLE ||
                    !(t = json_string_value(
                          json_object_get(step->def, def->fields[n].name))))
                        continue;
                for (made = step->op == DRV_OP_CREATE_TABLE, i = 0;
                     !made && i < step->index; i++)
                        made = run->plan->steps[i].op == DRV_OP_CREATE_TABLE &&
                               !strcmp(t, drv_step_str(&run->plan->steps[i],
                                                       "table", ""));
                if (made)
                        continue;
                drv_sql_init(&q);
                err = drv_sql_ident(&q, run->conn, t, "table", run->errstr,
                                    sizeof(run->errstr));
                q.params[0] = q.buf;
                if (!err)
                        err = drv_db_exec(run->conn,
                                          "SELECT to_regclass($1) IS NOT NULL",
                                          1, q.params, &res, run->res->sqlstate,
                                          run->errstr, sizeof(run->errstr));
                if (!err) {
                        if (strcmp(PQgetvalue(res, 0, 0), "t")) {
                                snprintf(run->res->sqlstate, 6, "42P01");
                                err = drv_err_set(run->errstr,
                                                  sizeof(run->errstr),
                                                  DRV_ERR_SQL,
                                                  "relation \"%.128s\" does "
                                                  "not exist",
                                                  t);
                        }
                        PQclear(res);
                }
                drv_sql_free(&q);
        }
        return err;
}

static drv_err_t run_dry_step(run_t *run, const drv_step_t *step,
                              const ledger_t *lg) {
        drv_op_ctx_t ctx = {run->conn, step, run->opts, run->plan, 1,
                            1,         0,    "",        ""};
        int unchecked = 0;
        drv_sql_t *sql;
        drv_batch_t b;
        PGresult *res;
        drv_err_t err;

        if (!drv_op_is_batched(step->op)) {
                if ((err = run_dry_tables(run, step)))
                        return run_fail(run, step, err, run->res->sqlstate);
        } else {
                if ((err = drv_op_batch_build(&ctx, &b, run->errstr,
                                              sizeof(run->errstr))))
                        return run_fail(run, step, err, NULL);
                sql = lg->last[0] ? &b.dry_next : &b.dry;
                if (lg->last[0])
                        b.dry_next.params[0] = lg->last;
                err = run_dry_try(run, step, "", &b.count, &res, &unchecked);
                if (!err && !unchecked) {
                        ctx.rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                        PQclear(res);
                        err = run_dry_try(run, step, "EXPLAIN ", sql, &res,
                                          &unchecked);
                        if (!err && !unchecked)
                                PQclear(res);
                }
                drv_op_batch_free(&b);
                if (err)
                        return run_fail(run, step, err, run->res->sqlstate);
                run->res->dry_unchecked += unchecked;
        }
        run->res->rows += ctx.rows;
        run_progress(run, step, ctx.rows, ctx.rows);
        return DRV_OK;
}

static drv_err_t run_dry(run_t *run) {
        drv_err_t err = DRV_OK;
        ledger_t lg;
        size_t i;

        if ((err =
                 drv_db_begin(run->conn, DRV_DRY_LOCK_MS,
                              run->stmt_ms < DRV_DRY_STMT_MS ? run->stmt_ms
                                                             : DRV_DRY_STMT_MS,
                              run->errstr, sizeof(run->errstr))) ||
            (err = drv_db_cmd(run->conn, "SET TRANSACTION READ ONLY",
                              run->errstr, sizeof(run->errstr)))) {
                drv_db_rollback(run->conn);
                return run_fail(run, NULL, err, run->res->sqlstate);
        }
        for (i = 0; i < run->plan->steps_cnt && !err; i++) {
                const drv_step_t *step = &run->plan->steps[i];

                if ((err = run_ledger_read(run, step, &lg)))
                        err = run_fail(run, step, err, run->res->sqlstate);
                else if (!lg.done)
                        err = run_dry_step(run, step, &lg);
                if (!err)
                        run->res->steps_done++;
        }
        drv_db_rollback(run->conn);
        if (!err)
                run->res->outcome = DRV_RUN_DRY_RUN;
        return err;
}

/*
 * ------------------------------------------------------------------------
 * Entry point
 * ------------------------------------------------------------------------
 */
static drv_err_t run_locked(run_t *run) {
        int skip = 0;
        drv_err_t err;

        if ((err = run_guard(run, &skip)))
                return run_fail(run, NULL, err, run->res->sqlstate);
        if (skip) {
                /* the same task found its own work done: it did it */
                run->res->outcome = skip == 2 && !run->opts->dry_run
                                        ? DRV_RUN_DONE
                                        : DRV_RUN_SKIPPED;
                run->res->steps_done = (int)run->plan->steps_cnt;
                return DRV_OK;
        }
        return run->opts->dry_run ? run_dry(run) : run_steps(run);
}

/*
 * ------------------------------------------------------------------------
 * The one-transaction path
 * ------------------------------------------------------------------------
 */
int drv_plan_one_txn(const drv_plan_t *plan, int dry_run) {
        size_t i;

        if (!plan || dry_run)
                return 0;
        for (i = 0; i < plan->steps_cnt; i++)
                if (drv_op_is_batched(plan->steps[i].op) ||
                    drv_op_needs_autocommit(&plan->steps[i], 0))
                        return 0;
        return 1;
}

/* BEGIN (no lock_timeout yet: the dataset lock is waited for as the
 * session lock is), then the dataset's lock for the transaction
 * (drv_dataset_txn_lock).  A transaction-scoped advisory lock conflicts
 * with the session-level one of the same key, so both paths exclude
 * each other. */
static drv_err_t run_txn_begin(run_t *run) {
        drv_err_t err;

        if ((err = drv_db_begin(run->conn, 0, run->stmt_ms, run->errstr,
                                sizeof(run->errstr))))
                return err;
        run->txn_stmt_ms = run->stmt_ms;
        return drv_dataset_txn_lock(
            run->conn, run->plan->dataset, run->opts->wait_for_lock,
            run->lock_ms, run->res->sqlstate, run->errstr, sizeof(run->errstr));
}

drv_err_t drv_dataset_txn_lock(PGconn *conn, const char *dataset, int wait,
                               long lock_ms, char sqlstate[6], char *errstr,
                               size_t errstr_size) {
        char sql[160], ms[24];
        const char *params[2] = {dataset, ms};
        PGresult *res;
        drv_err_t err;

        snprintf(ms, sizeof(ms), "%ld", lock_ms);
        snprintf(sql, sizeof(sql),
                 "SELECT %s(%d, hashtext($1)), set_config("
                 "'lock_timeout', $2, true)",
                 wait ? "pg_advisory_xact_lock" : "pg_try_advisory_xact_lock",
                 DRV_RUN_LOCK_CLASS);
        err = drv_db_exec(conn, sql, 2, params, &res, sqlstate, errstr,
                          errstr_size);
        if (err)
                return err;
        err = lock_granted(dataset, wait, res, errstr, errstr_size);
        PQclear(res);
        return err;
}

static drv_err_t run_one_txn(run_t *run) {
        const drv_run_opts_t *opts = run->opts;
        drv_err_t err;

        run->one_txn = run->res->one_txn = 1;
        if ((err = run_txn_begin(run)))
                err = run_fail(run, NULL, err, run->res->sqlstate);
        else if (!(err = run_locked(run)) && opts->on_commit &&
                 (err =
                      opts->on_commit(opts->commit_opaque, run->conn, run->res,
                                      run->errstr, sizeof(run->errstr))))
                err = run_fail(run, NULL, err, NULL);
        else if (!err && (err = drv_db_commit(run->conn, run->errstr,
                                              sizeof(run->errstr))))
                err = run_fail(run, NULL, err, NULL);
        if (PQstatus(run->conn) == CONNECTION_OK)
                drv_db_rollback(run->conn);
        return err;
}

drv_err_t drv_plan_run(PGconn *conn, const drv_plan_t *plan,
                       const drv_run_opts_t *opts, drv_run_result_t *res) {
        run_t run = {.conn = conn, .plan = plan, .opts = opts, .res = res};
        drv_err_t err;

        memset(res, 0, sizeof(*res));
        res->failed_step = -1;
        res->steps_total = plan ? (int)plan->steps_cnt : 0;
        if (!conn || !plan || !opts)
                return res->err = DRV_ERR_INTERNAL;
        run.lock_ms = opts->lock_timeout_ms > 0 ? opts->lock_timeout_ms : 5000;
        run.stmt_ms =
            opts->statement_timeout_ms > 0 ? opts->statement_timeout_ms : 60000;
        snprintf(run.from_str, sizeof(run.from_str), "%d", plan->from_version);
        snprintf(run.to_str, sizeof(run.to_str), "%d", plan->to_version);
        drv_throttle_merge(opts->throttle, &plan->throttle, &run.throttle);
        if ((err = run_check(&run)))
                return res->outcome == DRV_RUN_FAILED
                           ? err
                           : run_fail(&run, NULL, err, NULL);
        if (drv_plan_one_txn(plan, opts->dry_run)) {
                err = run_one_txn(&run);
                res->err = err;
                return err;
        }
        if ((err = run_lock(&run, 1)))
                return run_fail(&run, NULL, err, res->sqlstate);
        err = run_locked(&run);
        /* Unlocking fails only with the connection; the lock dies with
         * the session then. */
        if (PQstatus(conn) == CONNECTION_OK) {
                drv_db_rollback(conn);
                run_lock(&run, 0);
        }
        res->err = err;
        return err;
}
