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
 *      run's transactions with drv_task_run_progress (a task on the
 *      one-transaction path gets no `running` row: its first write is 2);
 *   2. before the outcome's Kafka transaction: the would-be final status
 *      with the delivery's topic, partition and offset, in the run's own
 *      transaction (drv_task_run_upsert with `pending`) or after it
 *      (drv_task_run_set_pending);
 *   3. after the commit: drv_task_runs_upsert writes the final statuses
 *      (and committed_status) of the whole Kafka transaction at once;
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
/* One upsert for one row (VALUES) or many (a JSON array of objects):
 * the source's columns are named v.* in both. */
#define TR_UPSERT_HEAD                                                         \
        "INSERT INTO drover.task_runs AS r (task_id, entity_ref, dataset,"     \
        " status, attempts, steps_total, steps_done, rows_done, worker,"       \
        " last_error, kafka_partition, kafka_offset, pending_status,"          \
        " kafka_topic, started_at, completed_at, first_failure_at,"            \
        " committed_status)"                                                   \
        " SELECT v.task_id, v.entity_ref, v.dataset, v.status, v.attempts,"    \
        " v.steps_total, v.steps_done, v.rows_done, v.worker, v.last_error,"   \
        " v.kafka_partition, v.kafka_offset, v.pending_status, v.kafka_topic," \
        " CASE WHEN v.status = 'running' THEN now() END,"                      \
        " CASE WHEN v.status IN ('done','skipped','dry_run','dead')"           \
        " THEN now() END,"                                                     \
        " CASE WHEN v.status IN ('retrying','dead') THEN now() END,"           \
        " CASE WHEN v.status IN ('done','skipped','dry_run','dead')"           \
        " THEN v.status END FROM "
#define TR_UPSERT_COLS                                                      \
        "task_id text, entity_ref text, dataset text, status text,"         \
        " attempts int, steps_total int, steps_done int, rows_done bigint," \
        " worker text, last_error jsonb, kafka_partition int,"              \
        " kafka_offset bigint, pending_status text, kafka_topic text"
/* A `running` write for the very delivery whose final status the row
 * already has does not take it back: an executor of a worker that lost
 * the partition can finish its run (and write running) after the new
 * owner ran the same delivery and wrote its final status; its own outcome
 * is dropped, so nothing would settle the row again (tests/chaos/README.md,
 * finding 16).  A new delivery (a redrive) has another offset. */
#define TR_KEEP_FINAL                                                        \
        "(r.status IN ('done','skipped','dry_run','dead') AND"               \
        " EXCLUDED.status = 'running' AND r.kafka_partition IS NOT DISTINCT" \
        " FROM EXCLUDED.kafka_partition AND r.kafka_offset IS NOT DISTINCT"  \
        " FROM EXCLUDED.kafka_offset)"
#define TR_UPSERT_TAIL                                                         \
        " ON CONFLICT (task_id) DO UPDATE SET"                                 \
        " entity_ref = coalesce(EXCLUDED.entity_ref, r.entity_ref),"           \
        " dataset = coalesce(EXCLUDED.dataset, r.dataset),"                    \
        " status = CASE WHEN " TR_KEEP_FINAL " THEN r.status ELSE"             \
        " EXCLUDED.status END,"                                                \
        " attempts = greatest(r.attempts, EXCLUDED.attempts),"                 \
        " steps_total = coalesce(EXCLUDED.steps_total, r.steps_total),"        \
        " steps_done = coalesce(EXCLUDED.steps_done, r.steps_done),"           \
        " rows_done = greatest(r.rows_done, EXCLUDED.rows_done),"              \
        " worker = coalesce(EXCLUDED.worker, r.worker)," /* a run that ends    \
                                                          * well has no error, \
                                                          * whatever an        \
                                                          * earlier attempt    \
                                                          * left */            \
        " last_error = CASE WHEN EXCLUDED.status IN"                           \
        " ('done','skipped','dry_run') THEN NULL ELSE"                         \
        " coalesce(EXCLUDED.last_error, r.last_error) END,"                    \
        " kafka_partition = coalesce(EXCLUDED.kafka_partition,"                \
        " r.kafka_partition),"                                                 \
        " kafka_offset = coalesce(EXCLUDED.kafka_offset, r.kafka_offset),"     \
        " pending_status = coalesce(EXCLUDED.pending_status,"                  \
        " r.pending_status),"                                                  \
        " kafka_topic = coalesce(EXCLUDED.kafka_topic, r.kafka_topic),"        \
        " started_at = coalesce(r.started_at, EXCLUDED.started_at),"           \
        " completed_at = CASE WHEN " TR_KEEP_FINAL " THEN r.completed_at"      \
        " ELSE EXCLUDED.completed_at END,"                                     \
        " first_failure_at = coalesce(r.first_failure_at,"                     \
        " EXCLUDED.first_failure_at),"                                         \
        " committed_status = coalesce(EXCLUDED.committed_status,"              \
        " r.committed_status),"                                                \
        " throttle_reason = NULL, updated_at = now()"

static const char tr_upsert_sql[] = TR_UPSERT_HEAD
    "(VALUES ($1, $2, $3, $4, $5::int, $6::int, $7::int, $8::bigint, $9,"
    " $10::jsonb, $11::int, $12::bigint, $13, $14)) AS v(task_id,"
    " entity_ref, dataset, status, attempts, steps_total, steps_done,"
    " rows_done, worker, last_error, kafka_partition, kafka_offset,"
    " pending_status, kafka_topic)" TR_UPSERT_TAIL;

static const char tr_upsert_many_sql[] = TR_UPSERT_HEAD
    "jsonb_to_recordset($1::jsonb) AS v(" TR_UPSERT_COLS ")" TR_UPSERT_TAIL;

drv_err_t drv_task_run_upsert(PGconn *conn, const drv_task_run_t *run,
                              char *errstr, size_t errstr_size) {
        char attempts[16], total[16], done[16], rows[24], part[16], off[24];
        const char *params[14];

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
        params[12] = run->pending;
        params[13] = run->topic;
        return drv_db_exec(conn, tr_upsert_sql, 14, params, NULL, NULL, errstr,
                           errstr_size);
}

/* A string member, or JSON null for NULL. */
static int tr_json_str(json_t *o, const char *key, const char *v) {
        return json_object_set_new(o, key, v ? json_string(v) : json_null());
}

/* One row as the JSON object tr_upsert_many_sql reads; NULL when out of
 * memory. */
static json_t *tr_run_json(const drv_task_run_t *run) {
        json_t *o = json_object(), *err = NULL;

        if (!o)
                return NULL;
        if (run->last_error_json &&
            !(err = json_loads(run->last_error_json, 0, NULL)))
                err = json_string(run->last_error_json);
        if (tr_json_str(o, "task_id", run->task_id) ||
            tr_json_str(o, "entity_ref", run->entity_ref) ||
            tr_json_str(o, "dataset", run->dataset) ||
            tr_json_str(o, "status", run->status) ||
            json_object_set_new(o, "attempts", json_integer(run->attempts)) ||
            json_object_set_new(o, "steps_total",
                                json_integer(run->steps_total)) ||
            json_object_set_new(o, "steps_done",
                                json_integer(run->steps_done)) ||
            json_object_set_new(o, "rows_done", json_integer(run->rows_done)) ||
            tr_json_str(o, "worker", run->worker) ||
            json_object_set_new(o, "last_error", err ? err : json_null()) ||
            json_object_set_new(o, "kafka_partition",
                                run->partition >= 0
                                    ? json_integer(run->partition)
                                    : json_null()) ||
            json_object_set_new(o, "kafka_offset",
                                run->offset >= 0 ? json_integer(run->offset)
                                                 : json_null()) ||
            tr_json_str(o, "pending_status", run->pending) ||
            tr_json_str(o, "kafka_topic", run->topic)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* The rows as the JSON array tr_upsert_many_sql reads, one per task (the
 * last one: ON CONFLICT cannot change a row twice in one statement, and
 * upserts one after another would leave the last); *textp malloc'ed. */
static drv_err_t tr_runs_json(const drv_task_run_t *runs, size_t cnt,
                              char **textp, char *errstr, size_t errstr_size) {
        json_t *arr = json_array();
        size_t i, j;

        *textp = NULL;
        for (i = 0; arr && i < cnt; i++) {
                json_t *o;

                if (!runs[i].task_id || !runs[i].status) {
                        json_decref(arr);
                        return drv_err_set(errstr, errstr_size,
                                           DRV_ERR_INTERNAL,
                                           "task run without task id or "
                                           "status");
                }
                for (j = i + 1; j < cnt; j++)
                        if (!strcmp(runs[i].task_id, runs[j].task_id))
                                break;
                if (j < cnt)
                        continue;
                if (!(o = tr_run_json(&runs[i])) ||
                    json_array_append_new(arr, o))
                        break;
        }
        if (!arr || i < cnt || !(*textp = json_dumps(arr, JSON_COMPACT))) {
                json_decref(arr);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        json_decref(arr);
        return DRV_OK;
}

/* Run `sql` with the JSON array of `runs` as $1. */
static drv_err_t tr_exec_runs(PGconn *conn, const char *sql,
                              const drv_task_run_t *runs, size_t cnt,
                              char *errstr, size_t errstr_size) {
        const char *params[1];
        char *text;
        drv_err_t err;

        if ((err = tr_runs_json(runs, cnt, &text, errstr, errstr_size)))
                return err;
        params[0] = text;
        err =
            drv_db_exec(conn, sql, 1, params, NULL, NULL, errstr, errstr_size);
        free(text);
        return err;
}

drv_err_t drv_task_runs_upsert(PGconn *conn, const drv_task_run_t *runs,
                               size_t cnt, char *errstr, size_t errstr_size) {
        return tr_exec_runs(conn, tr_upsert_many_sql, runs, cnt, errstr,
                            errstr_size);
}

/* `queued` only where the task has no row yet: it never takes anything
 * back (a running, final or replayed task keeps its row). */
static const char tr_queue_sql[] =
    "INSERT INTO drover.task_runs (task_id, entity_ref, dataset, status,"
    " kafka_partition, kafka_offset, kafka_topic) SELECT v.task_id,"
    " v.entity_ref, v.dataset, 'queued', v.kafka_partition, v.kafka_offset,"
    " v.kafka_topic FROM jsonb_to_recordset($1::jsonb) AS v(" TR_UPSERT_COLS
    ") ON CONFLICT (task_id) DO NOTHING";

drv_err_t drv_task_runs_queue(PGconn *conn, const drv_task_run_t *runs,
                              size_t cnt, char *errstr, size_t errstr_size) {
        return tr_exec_runs(conn, tr_queue_sql, runs, cnt, errstr, errstr_size);
}

drv_err_t drv_task_run_unqueue(PGconn *conn, const char *task_id, char *errstr,
                               size_t errstr_size) {
        const char *params[1] = {task_id};

        return drv_db_exec(conn,
                           "DELETE FROM drover.task_runs WHERE task_id = $1"
                           " AND status = 'queued'",
                           1, params, NULL, NULL, errstr, errstr_size);
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

drv_err_t drv_task_run_throttle(PGconn *conn, const char *task_id,
                                const char *reason, char *errstr,
                                size_t errstr_size) {
        const char *params[2] = {task_id, reason};

        return drv_db_exec(conn,
                           "UPDATE drover.task_runs SET status = CASE WHEN"
                           " $2::text IS NULL THEN 'running' ELSE"
                           " 'throttled' END, throttle_reason = $2,"
                           " updated_at = now() WHERE task_id = $1 AND"
                           " status IN ('running', 'throttled')",
                           2, params, NULL, NULL, errstr, errstr_size);
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

/* "{b[0],b[2],...}" (half 0) or "{b[1],b[3],...}" (half 1), malloc'ed */
static char *bounds_array(const int64_t *b, size_t n, int half) {
        char *s = malloc(n * 22 + 3);
        size_t len = 0, i;

        if (!s)
                return NULL;
        s[len++] = '{';
        for (i = 0; i < n; i++)
                len += (size_t)sprintf(s + len, "%s%lld", i ? "," : "",
                                       (long long)b[2 * i + (size_t)half]);
        s[len++] = '}';
        s[len] = '\0';
        return s;
}

drv_err_t drv_task_runs_reconcile(PGconn *conn, const char *topic,
                                  int32_t partition, int64_t committed,
                                  const int64_t *bounds, size_t nranges,
                                  long *rowsp, char *errstr,
                                  size_t errstr_size) {
        char *lo = bounds_array(bounds, nranges, 0);
        char *hi = bounds_array(bounds, nranges, 1);
        const char *lead[3] = {topic, lo, hi};
        drv_err_t err;

        if (!lo || !hi) {
                free(lo);
                free(hi);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        err = tr_update_at(
            conn,
            "UPDATE drover.task_runs SET status = pending_status,"
            " committed_status = pending_status,"
            " steps_done = CASE WHEN pending_status IN ('done',"
            " 'skipped') THEN coalesce(steps_total, steps_done)"
            " ELSE steps_done END,"
            " last_error = CASE WHEN pending_status IN ('done', 'skipped',"
            " 'dry_run') THEN NULL ELSE last_error END,"
            " completed_at = now(), updated_at = now()"
            " WHERE kafka_topic = $1 AND kafka_partition = $4::int"
            " AND (kafka_offset < $5::bigint OR EXISTS (SELECT 1 FROM"
            " unnest($2::bigint[], $3::bigint[]) AS f(lo, hi)"
            " WHERE kafka_offset BETWEEN f.lo AND f.hi))"
            " AND pending_status IS NOT NULL AND status IN ('queued',"
            " 'running', 'retrying')",
            lead, 3, partition, committed, rowsp, errstr, errstr_size);
        free(lo);
        free(hi);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * Reads of one task (the worker)
 * ------------------------------------------------------------------------
 */
drv_err_t drv_task_run_load(PGconn *conn, const char *task_id, int *attemptsp,
                            int64_t *first_failure_msp, int *prior_donep,
                            char *errstr, size_t errstr_size) {
        const char *params[1] = {task_id};
        PGresult *res;
        drv_err_t err;

        *attemptsp = 0;
        *first_failure_msp = 0;
        *prior_donep = 0;
        err = drv_db_exec(conn,
                          "SELECT attempts, coalesce((extract(epoch FROM"
                          " first_failure_at) * 1000)::bigint, 0),"
                          " committed_status IN ('done', 'skipped') OR"
                          " status IN ('done', 'skipped')"
                          " FROM drover.task_runs WHERE task_id = $1",
                          1, params, &res, NULL, errstr, errstr_size);
        if (err)
                return err;
        if (PQntuples(res) == 1) {
                *attemptsp = atoi(PQgetvalue(res, 0, 0));
                *first_failure_msp = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
                *prior_donep = !strcmp(PQgetvalue(res, 0, 2), "t");
        }
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
/* A row's kind: "rollback" for a rollback task (its entity ref's kind,
 * DRV_ROLLBACK_KIND, as drover writes it), else "migrate". */
#define TR_KIND_SQL                                                \
        "CASE WHEN entity_ref LIKE '" DRV_ROLLBACK_KIND ":%' THEN" \
        " 'rollback' ELSE 'migrate' END"

/* drover status: the columns of the table (transforms.h). */
static const char tr_status_sql[] =
    "SELECT dataset, status,"
    " coalesce(to_char(started_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD HH24:MI:SS'), ''),"
    " coalesce(to_char(completed_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD HH24:MI:SS'), ''),"
    " coalesce(steps_done, 0), coalesce(steps_total, 0), rows_done,"
    " CASE WHEN status = 'throttled' THEN 'throttled' ELSE"
    "  coalesce(last_error->>'class', '') END,"
    " CASE WHEN status = 'throttled' THEN coalesce(throttle_reason, '')"
    "  ELSE coalesce(last_error->>'message', '') END, task_id, attempts,"
    " coalesce(worker, ''), " TR_KIND_SQL
    " FROM drover.task_runs WHERE ($1::text IS NULL OR dataset = $1)"
    " ORDER BY coalesce(started_at, updated_at) DESC, task_id"
    " LIMIT CASE WHEN $2::int > 0 THEN $2::int END";

static const char tr_counts_sql[] =
    "SELECT count(*) FILTER (WHERE status IN"
    " ('queued', 'running', 'throttled', 'retrying')),"
    " count(*) FILTER (WHERE status IN"
    " ('done', 'skipped', 'dry_run', 'dead'))"
    " FROM drover.task_runs WHERE ($1::text IS NULL OR dataset = $1)";

/* GET /api/migrations: whole rows, unfinished first, as one JSON array. */
static const char tr_json_sql[] =
    "SELECT coalesce(json_agg(r), '[]'::json)::text FROM ("
    " SELECT *, " TR_KIND_SQL " AS kind FROM drover.task_runs"
    " WHERE ($1::text IS NULL OR dataset = $1::text)"
    "   AND ($2::text IS NULL OR status = $2::text)"
    " ORDER BY (status IN ('running', 'throttled', 'retrying', 'queued'))"
    "          DESC,"
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
