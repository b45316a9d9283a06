/*
 * drover - transforms/task_runs.c: every statement on drover.task_runs.
 *
 * drover.task_runs holds one row per task: its status, progress, last
 * error and the Kafka delivery it came from (DESIGN.md section 8).  This
 * file owns its DML: the worker writes it (executors, finalizer,
 * reconciliation), `drover status` and GET /api/migrations read it, all
 * through the functions below (declared in transforms.h).  Its DDL stays
 * with the numbered migrations in db.c.
 *
 * Lifecycle of a row, as the worker drives it:
 *   1. running / retrying: drv_task_run_upsert, progress between the
 *      run's transactions with drv_task_run_progress;
 *   2. before the outcome's Kafka transaction: drv_task_run_set_pending
 *      records the would-be final status with the delivery's topic,
 *      partition and offset;
 *   3. after the commit: drv_task_run_upsert writes the final status (and
 *      committed_status);
 *   4. a worker killed between 2 and 3: on the partition's next
 *      assignment drv_task_runs_reconcile settles the rows below the
 *      group's committed offset (consumer/worker/worker_reconcile.c).
 */
#include "db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * ------------------------------------------------------------------------
 * Writes
 * ------------------------------------------------------------------------
 */
static const char *tr_upsert_sql =
    "INSERT INTO drover.task_runs AS r (task_id, entity_ref, dataset,"
    " status, attempts, steps_total, steps_done, rows_done, worker,"
    " last_error, kafka_partition, kafka_offset, started_at, completed_at,"
    " first_failure_at, committed_status)"
    " VALUES ($1, $2, $3, $4, $5::int, $6::int, $7::int, $8::bigint, $9,"
    " $10::jsonb, $11::int, $12::bigint,"
    " CASE WHEN $4 = 'running' THEN now() END,"
    " CASE WHEN $4 IN ('done','skipped','dry_run','dead') THEN now() END,"
    " CASE WHEN $4 IN ('retrying','dead') THEN now() END,"
    " CASE WHEN $4 IN ('done','skipped','dry_run','dead') THEN $4 END)"
    " ON CONFLICT (task_id) DO UPDATE SET"
    " entity_ref = coalesce(EXCLUDED.entity_ref, r.entity_ref),"
    " dataset = coalesce(EXCLUDED.dataset, r.dataset),"
    " status = EXCLUDED.status,"
    " attempts = greatest(r.attempts, EXCLUDED.attempts),"
    " steps_total = coalesce(EXCLUDED.steps_total, r.steps_total),"
    " steps_done = coalesce(EXCLUDED.steps_done, r.steps_done),"
    " rows_done = greatest(r.rows_done, EXCLUDED.rows_done),"
    " worker = coalesce(EXCLUDED.worker, r.worker),"
    /* a run that ends well has no error, whatever an earlier attempt
     * left */
    " last_error = CASE WHEN EXCLUDED.status IN ('done','skipped','dry_run')"
    " THEN NULL ELSE coalesce(EXCLUDED.last_error, r.last_error) END,"
    " kafka_partition = coalesce(EXCLUDED.kafka_partition,"
    " r.kafka_partition),"
    " kafka_offset = coalesce(EXCLUDED.kafka_offset, r.kafka_offset),"
    " started_at = coalesce(r.started_at, EXCLUDED.started_at),"
    " completed_at = EXCLUDED.completed_at,"
    " first_failure_at = coalesce(r.first_failure_at,"
    " EXCLUDED.first_failure_at),"
    " committed_status = coalesce(EXCLUDED.committed_status,"
    " r.committed_status),"
    " updated_at = now()";

drv_err_t drv_task_run_upsert(PGconn *conn, const drv_task_run_t *run,
                              char *errstr, size_t errstr_size) {
        char attempts[16], total[16], done[16], rows[24], part[16], off[24];
        const char *params[12];

        if (!run || !run->task_id || !run->status)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INTERNAL,
                                   "task run without task id or status");
        snprintf(attempts, sizeof(attempts), "%d", run->attempts);
        snprintf(total, sizeof(total), "%d", run->steps_total);
        snprintf(done, sizeof(done), "%d", run->steps_done);
        snprintf(rows, sizeof(rows), "%lld", (long long)run->rows_done);
        snprintf(part, sizeof(part), "%d", (int)run->partition);
        snprintf(off, sizeof(off), "%lld", (long long)run->offset);
        params[0] = run->task_id;
        params[1] = run->entity_ref;
        params[2] = run->dataset;
        params[3] = run->status;
        params[4] = attempts;
        params[5] = total;
        params[6] = done;
        params[7] = rows;
        params[8] = run->worker;
        params[9] = run->last_error_json;
        params[10] = run->partition >= 0 ? part : NULL;
        params[11] = run->offset >= 0 ? off : NULL;
        return drv_db_exec(conn, tr_upsert_sql, 12, params, NULL, NULL, errstr,
                           errstr_size);
}

drv_err_t drv_task_run_progress(PGconn *conn, const char *task_id,
                                int steps_done, int64_t rows_done, char *errstr,
                                size_t errstr_size) {
        char sdone[16], srows[24];
        const char *params[3] = {task_id, sdone, srows};

        snprintf(sdone, sizeof(sdone), "%d", steps_done);
        snprintf(srows, sizeof(srows), "%lld", (long long)rows_done);
        return drv_db_exec(conn,
                           "UPDATE drover.task_runs SET steps_done ="
                           " greatest(steps_done, $2::int), rows_done ="
                           " greatest(rows_done, $3::bigint), updated_at ="
                           " now() WHERE task_id = $1 AND status = 'running'",
                           3, params, NULL, NULL, errstr, errstr_size);
}

/* An UPDATE whose parameters are the `nlead` values of `lead`, then the
 * Kafka partition and offset; *rowsp (when not NULL) the rows it
 * changed. */
static drv_err_t tr_update_at(PGconn *conn, const char *sql,
                              const char *const *lead, int nlead,
                              int32_t partition, int64_t offset, long *rowsp,
                              char *errstr, size_t errstr_size) {
        char part[16], off[24];
        const char *params[8];
        PGresult *res;
        drv_err_t err;
        int i;

        for (i = 0; i < nlead; i++)
                params[i] = lead[i];
        snprintf(part, sizeof(part), "%d", (int)partition);
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        params[nlead] = part;
        params[nlead + 1] = off;
        err = drv_db_exec(conn, sql, nlead + 2, params, rowsp ? &res : NULL,
                          NULL, errstr, errstr_size);
        if (err || !rowsp)
                return err;
        *rowsp = strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        return DRV_OK;
}

drv_err_t drv_task_run_set_pending(PGconn *conn, const char *task_id,
                                   const char *pending, const char *topic,
                                   int32_t partition, int64_t offset,
                                   long *rowsp, char *errstr,
                                   size_t errstr_size) {
        const char *lead[3] = {task_id, pending, topic};

        return tr_update_at(conn,
                            "UPDATE drover.task_runs SET pending_status = $2,"
                            " kafka_topic = $3, kafka_partition = $4::int,"
                            " kafka_offset = $5::bigint, updated_at = now()"
                            " WHERE task_id = $1",
                            lead, 3, partition, offset, rowsp, errstr,
                            errstr_size);
}

drv_err_t drv_task_runs_reconcile(PGconn *conn, const char *topic,
                                  int32_t partition, int64_t committed,
                                  long *rowsp, char *errstr,
                                  size_t errstr_size) {
        const char *lead[1] = {topic};

        return tr_update_at(
            conn,
            "UPDATE drover.task_runs SET status = pending_status,"
            " committed_status = pending_status,"
            " steps_done = CASE WHEN pending_status IN ('done',"
            " 'skipped') THEN coalesce(steps_total, steps_done)"
            " ELSE steps_done END,"
            " last_error = CASE WHEN pending_status IN ('done', 'skipped',"
            " 'dry_run') THEN NULL ELSE last_error END,"
            " completed_at = now(), updated_at = now()"
            " WHERE kafka_topic = $1 AND kafka_partition = $2::int"
            " AND kafka_offset < $3::bigint AND pending_status IS"
            " NOT NULL AND status IN ('queued', 'running',"
            " 'retrying')",
            lead, 1, partition, committed, rowsp, errstr, errstr_size);
}

/*
 * ------------------------------------------------------------------------
 * Reads of one task (the worker)
 * ------------------------------------------------------------------------
 */
drv_err_t drv_task_run_attempts(PGconn *conn, const char *task_id,
                                int *attemptsp, int64_t *first_failure_msp,
                                char *errstr, size_t errstr_size) {
        const char *params[1] = {task_id};
        PGresult *res;
        drv_err_t err;

        *attemptsp = 0;
        if (first_failure_msp)
                *first_failure_msp = 0;
        err = drv_db_exec(conn,
                          "SELECT attempts, coalesce((extract(epoch FROM"
                          " first_failure_at) * 1000)::bigint, 0)"
                          " FROM drover.task_runs WHERE task_id = $1",
                          1, params, &res, NULL, errstr, errstr_size);
        if (err)
                return err;
        if (PQntuples(res) == 1) {
                *attemptsp = atoi(PQgetvalue(res, 0, 0));
                if (first_failure_msp)
                        *first_failure_msp =
                            strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        }
        PQclear(res);
        return DRV_OK;
}

drv_err_t drv_task_run_committed(PGconn *conn, const char *task_id, int *donep,
                                 char *errstr, size_t errstr_size) {
        const char *params[1] = {task_id};
        PGresult *res;
        drv_err_t err;

        *donep = 0;
        err = drv_db_exec(conn,
                          "SELECT 1 FROM drover.task_runs WHERE task_id = $1"
                          " AND (committed_status IN ('done', 'skipped') OR"
                          " status IN ('done', 'skipped'))",
                          1, params, &res, NULL, errstr, errstr_size);
        if (err)
                return err;
        *donep = PQntuples(res) == 1;
        PQclear(res);
        return DRV_OK;
}

drv_err_t drv_task_run_exists(PGconn *conn, const char *task_id, int *existsp,
                              char *errstr, size_t errstr_size) {
        const char *params[1] = {task_id};
        char sqlstate[6];
        PGresult *res;
        drv_err_t err;

        *existsp = 0;
        err = drv_db_exec(conn,
                          "SELECT 1 FROM drover.task_runs WHERE task_id = $1",
                          1, params, &res, sqlstate, errstr, errstr_size);
        if (err) {
                /* no drover schema yet: no task has been seen */
                if (!strcmp(sqlstate, "42P01") || !strcmp(sqlstate, "3F000"))
                        return DRV_OK;
                return err;
        }
        *existsp = PQntuples(res) > 0;
        PQclear(res);
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Listings (drover status, GET /api/migrations)
 * ------------------------------------------------------------------------
 */
/* drover status: the columns of the table (transforms.h). */
static const char tr_status_sql[] =
    "SELECT dataset, status,"
    " coalesce(to_char(started_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD HH24:MI:SS'), ''),"
    " coalesce(to_char(completed_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD HH24:MI:SS'), ''),"
    " coalesce(steps_done, 0), coalesce(steps_total, 0), rows_done,"
    " coalesce(last_error->>'class', ''),"
    " coalesce(last_error->>'message', ''), task_id, attempts,"
    " coalesce(worker, '')"
    " FROM drover.task_runs WHERE ($1::text IS NULL OR dataset = $1)"
    " ORDER BY coalesce(started_at, updated_at) DESC, task_id"
    " LIMIT CASE WHEN $2::int > 0 THEN $2::int END";

static const char tr_counts_sql[] =
    "SELECT count(*) FILTER (WHERE status IN"
    " ('queued', 'running', 'retrying')),"
    " count(*) FILTER (WHERE status IN"
    " ('done', 'skipped', 'dry_run', 'dead'))"
    " FROM drover.task_runs WHERE ($1::text IS NULL OR dataset = $1)";

/* GET /api/migrations: whole rows, unfinished first, as one JSON array. */
static const char tr_json_sql[] =
    "SELECT coalesce(json_agg(r), '[]'::json)::text FROM ("
    " SELECT * FROM drover.task_runs"
    " WHERE ($1::text IS NULL OR dataset = $1::text)"
    "   AND ($2::text IS NULL OR status = $2::text)"
    " ORDER BY (status IN ('running', 'retrying', 'queued')) DESC,"
    "          coalesce(completed_at, started_at) DESC NULLS FIRST, task_id"
    " LIMIT $3::int) r";

drv_err_t drv_task_runs_status(PGconn *conn, const char *dataset, long limit,
                               PGresult **resp, char *errstr,
                               size_t errstr_size) {
        char lim[32];
        const char *params[2] = {dataset, lim};

        snprintf(lim, sizeof(lim), "%ld", limit);
        return drv_db_exec(conn, tr_status_sql, 2, params, resp, NULL, errstr,
                           errstr_size);
}

drv_err_t drv_task_runs_counts(PGconn *conn, const char *dataset, long *activep,
                               long *finalp, char *errstr, size_t errstr_size) {
        const char *params[1] = {dataset};
        PGresult *res;
        drv_err_t err;

        *activep = *finalp = 0;
        err = drv_db_exec(conn, tr_counts_sql, 1, params, &res, NULL, errstr,
                          errstr_size);
        if (err)
                return err;
        *activep = atol(PQgetvalue(res, 0, 0));
        *finalp = atol(PQgetvalue(res, 0, 1));
        PQclear(res);
        return DRV_OK;
}

drv_err_t drv_task_runs_json(PGconn *conn, const char *dataset,
                             const char *status, int limit, char **jsonp,
                             char *errstr, size_t errstr_size) {
        char lim[16], sqlstate[6];
        const char *params[3] = {dataset, status, lim};
        PGresult *res;
        drv_err_t err;

        *jsonp = NULL;
        snprintf(lim, sizeof(lim), "%d", limit);
        err = drv_db_exec(conn, tr_json_sql, 3, params, &res, sqlstate, errstr,
                          errstr_size);
        if (err) {
                /* no drover schema yet: no task has run, nothing to show */
                if (!strcmp(sqlstate, "42P01") || !strcmp(sqlstate, "3F000"))
                        err = (*jsonp = strdup("[]")) ? DRV_OK : DRV_ERR_NOMEM;
                return err;
        }
        if (PQntuples(res) != 1)
                err = drv_db_error(conn, res, NULL, errstr, errstr_size);
        else if (!(*jsonp = strdup(PQgetvalue(res, 0, 0))))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                  "out of memory");
        PQclear(res);
        return err;
}
