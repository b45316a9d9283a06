/*
 * drover - consumer/worker/worker_exec.c: executor threads and the finalizer.
 *
 * Each executor owns one PGconn.  It decodes a task, resolves its plan,
 * runs it with drv_plan_run and fills the job's outcome; the poll thread
 * owns everything Kafka.  No Kafka transaction is open while this runs.
 */
#include "worker_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/*
 * ------------------------------------------------------------------------
 * Jobs and queues
 * ------------------------------------------------------------------------
 */
void drv_job_destroy(drv_job_t *job) {
        if (!job)
                return;
        drv_task_destroy(job->task);
        if (job->reconcile)
                rd_kafka_topic_partition_list_destroy(job->reconcile);
        if (job->msg)
                rd_kafka_message_destroy(job->msg);
        free(job);
}

const char *drv_outcome_status(drv_outcome_t out) {
        switch (out) {
        case DRV_OUT_DONE:
                return "done";
        case DRV_OUT_SKIPPED:
                return "skipped";
        case DRV_OUT_DRY_RUN:
                return "dry_run";
        case DRV_OUT_DEAD:
                return "dead";
        default:
                return "retrying";
        }
}

void drv_jobq_init(drv_jobq_t *q) {
        memset(q, 0, sizeof(*q));
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
}

void drv_jobq_fini(drv_jobq_t *q) {
        drv_job_t *j = drv_jobq_take_all(q), *next;

        for (; j; j = next) {
                next = j->next;
                drv_job_destroy(j);
        }
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->cond);
}

void drv_jobq_push_list(drv_jobq_t *q, drv_job_t *jobs) {
        drv_job_t *last = jobs;

        while (last->next)
                last = last->next;
        pthread_mutex_lock(&q->lock);
        if (q->tail)
                q->tail->next = jobs;
        else
                q->head = jobs;
        q->tail = last;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
        if (q->wake)
                q->wake(q->wake_opaque);
}

void drv_jobq_push(drv_jobq_t *q, drv_job_t *job) {
        job->next = NULL;
        drv_jobq_push_list(q, job);
}

drv_job_t *drv_jobq_pop(drv_jobq_t *q, int timeout_ms) {
        struct timespec ts;
        drv_job_t *job;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (timeout_ms > 0) {
                ts.tv_sec += timeout_ms / 1000;
                ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
        }
        pthread_mutex_lock(&q->lock);
        while (!q->head && !q->closed && timeout_ms != 0) {
                if (timeout_ms < 0)
                        pthread_cond_wait(&q->cond, &q->lock);
                else if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) ==
                         ETIMEDOUT)
                        break;
        }
        if ((job = q->head)) {
                q->head = job->next;
                if (!q->head)
                        q->tail = NULL;
                job->next = NULL;
        }
        pthread_mutex_unlock(&q->lock);
        return job;
}

drv_job_t *drv_jobq_take_all(drv_jobq_t *q) {
        drv_job_t *head;

        pthread_mutex_lock(&q->lock);
        head = q->head;
        q->head = q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        return head;
}

drv_job_t *drv_jobq_take_partition(drv_jobq_t *q, int32_t partition) {
        drv_job_t **pp, *j, *taken = NULL, **tail = &taken;

        pthread_mutex_lock(&q->lock);
        q->tail = NULL;
        for (pp = &q->head; (j = *pp);) {
                if (j->partition == partition) {
                        *pp = j->next;
                        j->next = NULL;
                        *tail = j;
                        tail = &j->next;
                } else {
                        q->tail = j;
                        pp = &j->next;
                }
        }
        pthread_mutex_unlock(&q->lock);
        return taken;
}

void drv_jobq_close(drv_jobq_t *q) {
        pthread_mutex_lock(&q->lock);
        q->closed = 1;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
}

/*
 * ------------------------------------------------------------------------
 * Crash points (test builds)
 * ------------------------------------------------------------------------
 */
#ifdef DROVER_TEST_HOOKS
/* Whether env (DROVER_CRASH_AT / DROVER_STOP_AT = "<point>[:<nth>]")
 * names point and this is its nth hit (counted in *hits). */
static int hook_due(const char *env, const char *point, int *hits) {
        size_t n = strlen(point);
        int nth = 1;

        if (!env || !*env || strncmp(env, point, n) ||
            (env[n] && env[n] != ':'))
                return 0;
        if (env[n] == ':')
                nth = atoi(env + n + 1);
        return __atomic_add_fetch(hits, 1, __ATOMIC_SEQ_CST) == nth;
}
#endif

void drv_crash_point(const char *point) {
#ifdef DROVER_TEST_HOOKS
        static int crash_hits, stop_hits;

        if (hook_due(getenv("DROVER_CRASH_AT"), point, &crash_hits)) {
                drv_log(DRV_LOG_WARN, "crash point %s reached: exiting 137",
                        point);
                _exit(137);
        }
        if (hook_due(getenv("DROVER_STOP_AT"), point, &stop_hits)) {
                drv_log(DRV_LOG_WARN, "stop point %s reached: SIGSTOP", point);
                raise(SIGSTOP); /* the whole process, until SIGCONT */
        }
#else
        (void)point;
#endif
}

/*
 * ------------------------------------------------------------------------
 * The pool
 * ------------------------------------------------------------------------
 */
/* A one-transaction run writes its task_runs row in its transaction, so
 * nothing shows it while it runs; one still running after this long gets
 * a `running` row from the finalizer (a lock wait, a long ALTER). */
#define RUNNING_AFTER_MS 1000

typedef struct drv_exec_s {
        drv_pool_t *pool;
        pthread_t thread;
        int started;
        PGconn *conn;
        PGconn *staging; /* staging.database_url, opened on first need */
        uint64_t rng;
        /* the running row of the one-transaction job this executor runs,
         * taken when it starts (its strings are the job's task's, valid
         * while `watching`), for the finalizer (fin_watch); set and
         * cleared by the executor under watch_lock */
        pthread_mutex_t watch_lock;
        int watching;
        drv_task_run_t watch_row;
        int64_t watch_since; /* monotonic */
        int watch_shown;     /* its running row was written */
} drv_exec_t;

struct drv_pool_s {
        drv_pool_conf_t pc;
        drv_exec_t *execs;
        int execs_cnt;
        drv_exec_t fin; /* the finalizer */
        drv_jobq_t finq;
        int running; /* threads not yet returned (atomic) */
};

/* Connect (or reconnect) the executor's PGconn.  DRV_OK or
 * DRV_ERR_DB_UNAVAILABLE. */
static drv_err_t exec_conn(drv_exec_t *ex, char *errstr, size_t errstr_size) {
        if (ex->conn && PQstatus(ex->conn) == CONNECTION_OK)
                return DRV_OK;
        if (ex->conn) {
                PQfinish(ex->conn);
                ex->conn = NULL;
        }
        return drv_db_connect(ex->pool->pc.conf->database_url, &ex->conn,
                              errstr, errstr_size);
}

/* Connect (or reconnect) the executor's staging connection, with the
 * worker's statement_timeout so that a hung staging server cannot hold
 * the executor.  *freshp = 1 when it was (re)opened now.  DRV_OK, or
 * DRV_ERR_DB_UNAVAILABLE (any other failure too: the connection is
 * useless) with errstr set and no connection kept. */
static drv_err_t exec_staging_conn(drv_exec_t *ex, int *freshp, char *errstr,
                                   size_t errstr_size) {
        const drv_config_t *conf = ex->pool->pc.conf;
        const char *params[1];
        char ms[24];

        *freshp = 0;
        if (ex->staging && PQstatus(ex->staging) == CONNECTION_OK)
                return DRV_OK;
        PQfinish(ex->staging);
        ex->staging = NULL;
        *freshp = 1;
        snprintf(ms, sizeof(ms), "%ld", conf->statement_timeout_ms);
        params[0] = ms;
        if (drv_db_connect(conf->staging_database_url, &ex->staging, errstr,
                           errstr_size))
                return DRV_ERR_DB_UNAVAILABLE;
        if (drv_db_exec(ex->staging,
                        "SELECT set_config('statement_timeout', $1, false)", 1,
                        params, NULL, NULL, errstr, errstr_size)) {
                PQfinish(ex->staging);
                ex->staging = NULL;
                return DRV_ERR_DB_UNAVAILABLE;
        }
        return DRV_OK;
}

/* The staging gate for `plan` (drv_plan_staging_check) on the
 * executor's staging connection, opened on first need.  A connection
 * lost since its last use (a staging restart: libpq reports it OK until
 * a query fails) is replaced and asked once more.  DRV_OK,
 * DRV_ERR_STAGING_REQUIRED, or DRV_ERR_DB_UNAVAILABLE when the staging
 * database cannot be reached: the task is retried with backoff, never
 * dead-lettered as staging_required for an outage. */
static drv_err_t exec_staging_check(drv_exec_t *ex, const drv_plan_t *plan,
                                    char sqlstate[6], char *errstr,
                                    size_t errstr_size) {
        const char *url = ex->pool->pc.conf->staging_database_url;
        char why[400];
        drv_err_t err;
        int tries, fresh;

        if (!url || !*url)
                return drv_plan_staging_check(NULL, plan, sqlstate, errstr,
                                              errstr_size);
        for (tries = 0;; tries++) {
                if ((err = exec_staging_conn(ex, &fresh, why, sizeof(why))))
                        return drv_err_set(errstr, errstr_size, err,
                                           "staging database: %s", why);
                err = drv_plan_staging_check(ex->staging, plan, sqlstate,
                                             errstr, errstr_size);
                if (fresh || tries > 0 || err != DRV_ERR_DB_UNAVAILABLE ||
                    PQstatus(ex->staging) == CONNECTION_OK)
                        return err;
        }
}

/* task_runs row of a job as it stands. */
static void job_run_row(const drv_job_t *job, const drv_config_t *conf,
                        const char *status, const char *last_error,
                        drv_task_run_t *run) {
        memset(run, 0, sizeof(*run));
        run->task_id = job->task->task_id;
        run->entity_ref = job->task->entity_ref;
        run->dataset = job->task->dataset;
        run->status = status;
        run->attempts = job->attempts;
        run->steps_total = job->res.steps_total;
        run->steps_done = job->res.steps_done;
        run->rows_done = job->res.rows;
        run->worker = conf->instance;
        run->last_error_json = last_error;
        run->partition = job->partition;
        run->offset = job->offset;
}

/* The job's error as the jsonb of task_runs.last_error (malloc'ed) or
 * NULL when it has none. */
static char *job_error_json(const drv_job_t *job) {
        json_t *o;
        char *s;

        if (!job->dlq.error_class[0])
                return NULL;
        o = json_pack("{s:s, s:s, s:s, s:s, s:i}", "class",
                      job->dlq.error_class, "message", job->dlq.error_message,
                      "step", job->dlq.step, "sqlstate", job->dlq.sqlstate,
                      "attempts", job->attempts);
        if (!o)
                return NULL;
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

/* Write the job's task_runs row.  0 on success (or nothing to write),
 * -1 when the write failed (logged). */
static int job_upsert(drv_exec_t *ex, drv_job_t *job, const char *status) {
        const drv_config_t *conf = ex->pool->pc.conf;
        drv_task_run_t run;
        char errstr[512], *last_error;
        int rc = 0;

        if (!job->task)
                return 0;
        if (!ex->conn)
                return -1;
        last_error = job_error_json(job);
        job_run_row(job, conf, status, last_error, &run);
        if (drv_task_run_upsert(ex->conn, &run, errstr, sizeof(errstr))) {
                drv_log(DRV_LOG_WARN, "could not record task status \"%s\": %s",
                        status, errstr);
                rc = -1;
        }
        free(last_error);
        return rc;
}

/* Fill the job's error details from an error and its class. */
static void job_set_error(drv_job_t *job, drv_err_t err, const char *class_name,
                          int retryable, const char *msg) {
        drv_dlq_info_t *d = &job->dlq;

        snprintf(d->error_class, sizeof(d->error_class), "%s", class_name);
        snprintf(d->error_message, sizeof(d->error_message), "%s", msg);
        d->retryable = retryable;
        if (job->res.failed_step >= 0 && job->res.failed_op[0])
                snprintf(d->step, sizeof(d->step), "%d:%s",
                         job->res.failed_step, job->res.failed_op);
        snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", job->res.sqlstate);
        (void)err;
}

int drv_job_db_down(drv_err_t err, int conn_ok) {
        return err == DRV_ERR_DB_UNAVAILABLE && !conn_ok;
}

/* Route a failed run: retry with backoff, give up (retries_exhausted),
 * wait for the database, or dead-letter at once. */
static void job_route_error(drv_exec_t *ex, drv_job_t *job, drv_err_t err,
                            const char *msg) {
        const drv_backoff_conf_t *bc = &ex->pool->pc.conf->backoff;
        drv_class_t cls = drv_dlq_classify(err, job->res.sqlstate);
        int64_t now = drv_now_ms();

        job_set_error(job, err, cls.name, cls.retryable, msg);
        if (drv_job_db_down(err,
                            ex->conn && PQstatus(ex->conn) == CONNECTION_OK)) {
                /* an outage: the worker pauses until the database answers
                 * and no task is dead-lettered for it; each loss still
                 * counts as an attempt of the task that saw it */
                job->attempts++;
                job->dlq.attempts = job->attempts;
                job->outcome = DRV_OUT_DB_DOWN;
                return;
        }
        if (cls.route != DRV_ROUTE_RETRY) {
                job->outcome = DRV_OUT_DEAD;
                return;
        }
        job->attempts++;
        if (!job->first_failure_ms)
                job->first_failure_ms = now;
        job->dlq.attempts = job->attempts;
        job->dlq.first_failure_ms = job->first_failure_ms;
        job->dlq.last_failure_ms = now;
        job->backoff_ms = drv_backoff_delay_ms(bc, job->attempts, &ex->rng);
        job->dlq.backoff_ms = job->backoff_ms;
        if (drv_backoff_exhausted(bc, job->attempts, job->first_failure_ms,
                                  now)) {
                snprintf(job->dlq.error_class, sizeof(job->dlq.error_class),
                         "retries_exhausted");
                job->dlq.retry_after_ms = drv_backoff_retry_after_ms(bc, now);
                job->outcome = DRV_OUT_DEAD;
                return;
        }
        job->outcome = DRV_OUT_RETRY;
        job_upsert(ex, job, "retrying");
}

/* Record progress of a running task in task_runs (autocommit, between
 * the run's transactions).  Batched ops report cumulative rows of the
 * step before res.rows counts them; plain ops after. */
static void job_progress_write(drv_exec_t *ex, drv_job_t *job, int step,
                               const char *op, int64_t rows_done) {
        int batched = drv_op_is_batched(drv_op_from_name(op));
        int64_t rows = job->res.rows + (batched ? rows_done : 0);
        char errstr[256];

        if (drv_task_run_progress(ex->conn, job->task->task_id,
                                  batched ? step : step + 1, rows, errstr,
                                  sizeof(errstr)))
                drv_log(DRV_LOG_WARN, "could not record task progress: %s",
                        errstr);
}

static void on_progress(void *opaque, int step, const char *op,
                        int64_t rows_done, int64_t rows_total) {
        drv_job_t *job = opaque;
        drv_exec_t *ex = job->exec;
        int64_t now = drv_mono_ms();

        (void)rows_total;
        job->steps_ran = 1;
        /* throttled: at most once a second per task; never in a dry run
         * (its steps share one transaction that is rolled back) */
        if (ex && ex->conn && !job->task->dry_run &&
            now - job->progress_ms >= 1000) {
                job->progress_ms = now;
                job_progress_write(ex, job, step, op, rows_done);
        }
        /* step 0 has completed once progress reports a later step */
        if (step >= 1)
                drv_crash_point("between_steps");
}

/* drv_throttle_cb_t: the seconds waited count in
 * drover_throttled_seconds_total; the row shows `throttled` and why while
 * the runner waits, `running` again after (written between the run's
 * transactions, as progress is). */
static void on_throttle(void *opaque, const char *kind, const char *reason,
                        const char *waited_kind, double waited_s) {
        drv_job_t *job = opaque;
        drv_exec_t *ex = job->exec;
        char errstr[256];

        if (waited_kind)
                drv_metrics_throttled(waited_kind, waited_s);
        if (ex && ex->conn &&
            drv_task_run_throttle(ex->conn, job->task->task_id,
                                  kind ? reason : NULL, errstr, sizeof(errstr)))
                drv_log(DRV_LOG_WARN, "could not record task throttle: %s",
                        errstr);
}

/* The outcome of a run that succeeded (res: DONE, SKIPPED or DRY_RUN).
 * A replayed task whose work was done and committed before: this
 * delivery changed nothing (a crash redelivery stays done). */
static drv_outcome_t job_outcome(const drv_job_t *job,
                                 const drv_run_result_t *res) {
        if (res->outcome == DRV_RUN_SKIPPED)
                return DRV_OUT_SKIPPED;
        if (res->outcome == DRV_RUN_DRY_RUN)
                return DRV_OUT_DRY_RUN;
        return job->prior_done && !job->steps_ran ? DRV_OUT_SKIPPED
                                                  : DRV_OUT_DONE;
}

/* drv_run_commit_cb_t: the pending status of a one-transaction run,
 * written in the run's transaction (its row, `running` until the Kafka
 * commit, with the would-be final status).  One statement instead of the
 * running row, the pending update and their commits. */
static drv_err_t job_commit(void *opaque, PGconn *conn,
                            const drv_run_result_t *res, char *errstr,
                            size_t errstr_size) {
        drv_job_t *job = opaque;
        drv_exec_t *ex = job->exec;
        const drv_config_t *conf = ex->pool->pc.conf;
        drv_task_run_t run;

        job_run_row(job, conf, "running", NULL, &run);
        run.steps_total = res->steps_total;
        run.steps_done = res->steps_done;
        run.rows_done = res->rows;
        run.pending = drv_outcome_status(job_outcome(job, res));
        run.topic = conf->topic;
        return drv_task_run_upsert(conn, &run, errstr, errstr_size);
}

/* Run a plan on the executor's connection, or, for a plan that holds a
 * session across its transactions (batched steps: the dataset's session
 * lock; CONCURRENTLY: its session timeouts) when database.session_url is
 * set, on a connection of its own to that URL for the run: through a
 * transaction pooler (PgBouncer in transaction mode) each transaction
 * may land on another server connection, and a session lock taken on one
 * and released on another leaks (test_worker_pgbouncer). */
static drv_err_t exec_plan_run(drv_exec_t *ex, const drv_plan_t *plan,
                               const drv_run_opts_t *opts,
                               drv_run_result_t *res) {
        const char *url = ex->pool->pc.conf->session_database_url;
        PGconn *session = NULL;
        drv_err_t err;

        if (drv_plan_one_txn(plan, opts->dry_run) || !url || !*url)
                return drv_plan_run(ex->conn, plan, opts, res);
        if ((err = drv_db_connect(url, &session, res->errmsg,
                                  sizeof(res->errmsg)))) {
                res->failed_step = -1;
                return err;
        }
        err = drv_plan_run(session, plan, opts, res);
        PQfinish(session);
        return err;
}

/* The run options of a job, from the worker's config. */
static void job_opts(drv_exec_t *ex, drv_job_t *job, drv_run_opts_t *opts) {
        const drv_pool_conf_t *pc = &ex->pool->pc;

        job->exec = ex;
        job->steps_ran = 0;
        job->progress_ms = drv_mono_ms();
        memset(opts, 0, sizeof(*opts));
        opts->task_id = job->task->task_id;
        opts->dataset = job->task->dataset;
        opts->dry_run = job->task->dry_run;
        opts->params = job->task->params;
        opts->params_cnt = job->task->params_cnt;
        opts->allow_sql = pc->conf->allow_sql;
        opts->worker = pc->conf->instance;
        opts->lock_timeout_ms = pc->conf->lock_timeout_ms;
        opts->statement_timeout_ms = pc->conf->statement_timeout_ms;
        opts->batch_pause_ms = pc->conf->batch_pause_ms;
        opts->wait_for_lock = 1;
        opts->cancel = pc->cancel;
        opts->progress = on_progress;
        opts->progress_opaque = job;
        opts->throttle = &pc->conf->throttle;
        opts->on_throttle = on_throttle;
        opts->throttle_opaque = job;
        opts->on_commit = job_commit;
        opts->commit_opaque = job;
}

/* A rollback task (params drover.rollback_to / drover.rollback_from,
 * docs/plans.md): no plan to resolve, the inverses of the ledger's steps
 * run by drv_rollback_run in one transaction with the pending status
 * (job_commit).  Refusals are dead letters: version_conflict (the
 * version moved, the target is not below it), invalid_plan (a step that
 * cannot be undone), invalid_param (a param that is not a version). */
static drv_err_t job_run_rollback(drv_exec_t *ex, drv_job_t *job, int kind,
                                  long to, long from, char *errstr,
                                  size_t errstr_size) {
        drv_run_opts_t opts;
        drv_err_t err;

        job_upsert(ex, job, "running");
        if (kind < 0)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "params \"%s\" and \"%s\" must be "
                                   "versions (0 to 2147483647)",
                                   DRV_ROLLBACK_TO_PARAM,
                                   DRV_ROLLBACK_FROM_PARAM);
        job_opts(ex, job, &opts);
        err = drv_rollback_run(ex->conn, &opts, to, from, &job->res);
        if (err)
                snprintf(errstr, errstr_size, "%s", job->res.errmsg);
        return err;
}

/* Resolve the plan and run it (a rollback task: job_run_rollback).
 * Returns the error (job->res filled). */
static drv_err_t job_run_plan(drv_exec_t *ex, drv_job_t *job, char *errstr,
                              size_t errstr_size) {
        const drv_pool_conf_t *pc = &ex->pool->pc;
        drv_plan_t *plan = NULL;
        drv_run_opts_t opts;
        drv_err_t err;
        long to, from;
        int kind;

        if ((kind = drv_rollback_task_versions(job->task, &to, &from)))
                return job_run_rollback(ex, job, kind, to, from, errstr,
                                        errstr_size);
        err = drv_catalog_resolve(pc->catalog, job->task->entity_ref, &plan,
                                  errstr, errstr_size);
        /* running, with the plan's step count when it is known; a run in
         * one transaction writes its row in that transaction (job_commit)
         * and shows no `running` row before (nothing of it is visible
         * before its commit anyway) */
        job->res.steps_total = plan ? (int)plan->steps_cnt : 0;
        if (err || !drv_plan_one_txn(plan, job->task->dry_run))
                job_upsert(ex, job, "running");
        /* a plan annotated for another queue is not this worker's to run */
        if (!err && (err = drv_plan_queue_check(plan, pc->conf->topic, errstr,
                                                errstr_size)))
                drv_plan_release(plan);
        /* a plan that must complete on staging first, before any SQL
         * touches production; a dry run changes nothing and may always
         * run (it is how a plan is tried before staging) */
        else if (!err && !job->task->dry_run &&
                 (err = exec_staging_check(ex, plan, job->res.sqlstate, errstr,
                                           errstr_size)))
                drv_plan_release(plan);
        if (err)
                return err;
        job_opts(ex, job, &opts);
        if (drv_plan_one_txn(plan, opts.dry_run)) {
                pthread_mutex_lock(&ex->watch_lock);
                ex->watching = 1;
                job_run_row(job, pc->conf, "running", NULL, &ex->watch_row);
                ex->watch_since = drv_mono_ms();
                ex->watch_shown = 0;
                pthread_mutex_unlock(&ex->watch_lock);
        }
        err = exec_plan_run(ex, plan, &opts, &job->res);
        pthread_mutex_lock(&ex->watch_lock);
        ex->watching = 0;
        pthread_mutex_unlock(&ex->watch_lock);
        if (err)
                snprintf(errstr, errstr_size, "%s", job->res.errmsg);
        drv_plan_release(plan);
        return err;
}

/* Decode (once), load attempts and prior status (once). */
static drv_err_t job_prepare(drv_exec_t *ex, drv_job_t *job, char *errstr,
                             size_t errstr_size) {
        const rd_kafka_message_t *m = job->msg;
        drv_err_t err;

        if (!job->attempts_loaded) {
                rd_kafka_headers_t *hdrs = NULL;
                int carried = 0;
                /* a redriven task carries its attempts and redrive count */
                if (!rd_kafka_message_headers(m, &hdrs))
                        drv_dlq_task_carried(hdrs, &carried,
                                             &job->redrive_count);
                if (carried > job->attempts)
                        job->attempts = carried;
        }
        if (!job->task) {
                err = drv_task_decode(ex->pool->pc.store, m->payload, m->len,
                                      &job->task, errstr, errstr_size);
                if (err)
                        return err;
        }
        if ((err = exec_conn(ex, errstr, errstr_size)))
                return err;
        if (!job->attempts_loaded) {
                /* prior_done: whether an outcome done/skipped of the task
                 * had committed before this delivery (a replay or a
                 * duplicate record, not a crash redelivery of a delivery
                 * that never committed) */
                int carried = job->attempts;
                err = drv_task_run_load(ex->conn, job->task->task_id,
                                        &job->attempts, &job->first_failure_ms,
                                        &job->prior_done, errstr, errstr_size);
                if (err)
                        return err;
                if (carried > job->attempts)
                        job->attempts = carried;
                job->attempts_loaded = 1;
        }
        return DRV_OK;
}

/* Record the would-be final status before the poll thread commits the
 * outcome (worker_reconcile.c).  When it cannot be recorded the outcome
 * is not committed either: the job waits for the database like any other
 * unreachable-database failure, and its redelivery is idempotent. */
static void job_pending(drv_exec_t *ex, drv_job_t *job) {
        const drv_config_t *conf = ex->pool->pc.conf;
        const char *st = drv_outcome_status(job->outcome);
        char errstr[512];
        long rows = 0;
        drv_err_t err;

        if (!job->task || job->outcome == DRV_OUT_RETRY ||
            job->outcome == DRV_OUT_DB_DOWN)
                return;
        if (!ex->conn)
                err = DRV_ERR_DB_UNAVAILABLE;
        else if (!(err = drv_task_run_set_pending(
                       ex->conn, job->task->task_id, st, conf->topic,
                       job->partition, job->offset, &rows, errstr,
                       sizeof(errstr))) &&
                 rows == 0 && !job_upsert(ex, job, "running"))
                err = drv_task_run_set_pending(
                    ex->conn, job->task->task_id, st, conf->topic,
                    job->partition, job->offset, NULL, errstr, sizeof(errstr));
        if (!err)
                return;
        drv_log(DRV_LOG_WARN, "cannot record pending status \"%s\": %s", st,
                err == DRV_ERR_DB_UNAVAILABLE && !ex->conn ? "no connection"
                                                           : errstr);
        job->outcome = DRV_OUT_DB_DOWN;
}

static void exec_job(drv_exec_t *ex, drv_job_t *job) {
        char errstr[512] = "";
        drv_log_ctx_t ctx = {NULL, NULL, -1, job->partition, job->offset};
        drv_err_t err;

        memset(&job->res, 0, sizeof(job->res));
        job->res.failed_step = -1;
        memset(&job->dlq, 0, sizeof(job->dlq));
        drv_log_set_ctx(&ctx);
        err = job_prepare(ex, job, errstr, sizeof(errstr));
        if (err && !job->task) {
                job_route_error(ex, job, err, errstr);
                drv_log(DRV_LOG_WARN, "undecodable task: %s", errstr);
                goto out;
        }
        ctx.task_id = job->task->task_id;
        ctx.dataset = job->task->dataset;
        drv_log_set_ctx(&ctx);
        if (!err) {
                err = job_run_plan(ex, job, errstr, sizeof(errstr));
                drv_log_set_ctx(&ctx); /* the runner sets its own */
        }
        if (err) {
                job_route_error(ex, job, err, errstr);
                drv_log(DRV_LOG_WARN, "task failed (%s, %s): %s",
                        job->dlq.error_class, drv_outcome_status(job->outcome),
                        errstr);
                job_pending(ex, job);
                goto out;
        }
        job->outcome = job_outcome(job, &job->res);
        drv_log(DRV_LOG_INFO, "task %s: %d/%d steps, %lld rows",
                drv_outcome_status(job->outcome), job->res.steps_done,
                job->res.steps_total, (long long)job->res.rows);
        if (!job->res.one_txn) /* else written with the run (job_commit) */
                job_pending(ex, job);
        drv_crash_point("after_pg_commit");
out:
        drv_log_set_ctx(NULL);
}

static void *exec_main(void *arg) {
        drv_exec_t *ex = arg;
        drv_pool_t *pool = ex->pool;
        drv_job_t *job;

        while ((job = drv_jobq_pop(pool->pc.jobs, -1))) {
                exec_job(ex, job);
                drv_jobq_push(pool->pc.outcomes, job);
        }
        PQfinish(ex->conn);
        ex->conn = NULL;
        PQfinish(ex->staging);
        ex->staging = NULL;
        __atomic_sub_fetch(&pool->running, 1, __ATOMIC_SEQ_CST);
        return NULL;
}

/* The finalizer writes final statuses after the Kafka commit.  A failed
 * write is retried on a fresh connection for up to FIN_RETRIES * 500 ms
 * (a PostgreSQL restart: libpq reports the old connection OK until a
 * query fails on it), then the row is left as it was (the committed
 * status event stays the authority). */
#define FIN_RETRIES 60

/* Settle the rows of partitions whose outcome committed (see
 * worker_reconcile.c); one try: a failure is logged. */
static void fin_reconcile(drv_exec_t *ex,
                          const rd_kafka_topic_partition_list_t *offs) {
        const char *topic = ex->pool->pc.conf->topic;
        char errstr[512];
        long rows, total = 0;
        int i;

        if (exec_conn(ex, errstr, sizeof(errstr))) {
                drv_log(DRV_LOG_WARN, "cannot reconcile task_runs: %s", errstr);
                return;
        }
        for (i = 0; i < offs->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &offs->elems[i];
                drv_pt_range_t *r = NULL;
                int64_t *bounds;
                size_t rcnt = 0, k;
                drv_err_t err;
                if (tp->offset < 0)
                        continue;
                /* the final offsets above it, per the commit metadata */
                drv_pt_meta_decode(tp->metadata, tp->metadata_size, tp->offset,
                                   &r, &rcnt);
                bounds = malloc((rcnt ? rcnt : 1) * 2 * sizeof(*bounds));
                for (k = 0; bounds && k < rcnt; k++) {
                        bounds[2 * k] = r[k].lo;
                        bounds[2 * k + 1] = r[k].hi;
                }
                rows = 0;
                err = bounds ? drv_task_runs_reconcile(
                                   ex->conn, topic, tp->partition, tp->offset,
                                   bounds, rcnt, &rows, errstr, sizeof(errstr))
                             : drv_err_set(errstr, sizeof(errstr),
                                           DRV_ERR_NOMEM, "out of memory");
                free(bounds);
                free(r);
                if (err) {
                        drv_log(DRV_LOG_WARN, "cannot reconcile task_runs: %s",
                                errstr);
                        return;
                }
                total += rows;
        }
        if (total > 0)
                drv_log(DRV_LOG_INFO,
                        "reconciled %ld task_runs row(s) whose outcome had "
                        "committed",
                        total);
}

/* `queued` rows written in one statement: at most this many. */
#define FIN_QUEUE_BATCH 512

/* Show fetched tasks `queued` (jobs[0..n), freed): one statement, one
 * try; a failure is logged (the row appears when the task runs). */
static void fin_queue(drv_exec_t *ex, drv_job_t **jobs, size_t n) {
        const char *topic = ex->pool->pc.conf->topic;
        drv_task_run_t runs[FIN_QUEUE_BATCH];
        char errstr[512];
        size_t i;

        for (i = 0; i < n; i++) {
                memset(&runs[i], 0, sizeof(runs[i]));
                runs[i].task_id = jobs[i]->task->task_id;
                runs[i].entity_ref = jobs[i]->task->entity_ref;
                runs[i].dataset = jobs[i]->task->dataset;
                runs[i].status = "queued";
                runs[i].partition = jobs[i]->partition;
                runs[i].offset = jobs[i]->offset;
                runs[i].topic = topic;
        }
        if (!exec_conn(ex, errstr, sizeof(errstr)) &&
            drv_task_runs_queue(ex->conn, runs, n, errstr, sizeof(errstr)))
                drv_log(DRV_LOG_WARN, "cannot show %zu task(s) queued: %s", n,
                        errstr);
        for (i = 0; i < n; i++)
                drv_job_destroy(jobs[i]);
}

/* Final statuses written in one statement: at most this many rows. */
#define FIN_BATCH 512

/* Write the final statuses of jobs[0..n) in one statement, retried as
 * above; the jobs are freed. */
static void fin_write(drv_exec_t *ex, drv_job_t **jobs, size_t n) {
        const drv_config_t *conf = ex->pool->pc.conf;
        drv_task_run_t runs[FIN_BATCH];
        char *errors[FIN_BATCH];
        char errstr[512];
        size_t i;
        int tries;

        for (i = 0; i < n; i++) {
                errors[i] = job_error_json(jobs[i]);
                job_run_row(jobs[i], conf, drv_outcome_status(jobs[i]->outcome),
                            errors[i], &runs[i]);
        }
        for (tries = 0; tries < FIN_RETRIES; tries++) {
                if (!exec_conn(ex, errstr, sizeof(errstr)) &&
                    !drv_task_runs_upsert(ex->conn, runs, n, errstr,
                                          sizeof(errstr)))
                        break;
                drv_log(DRV_LOG_WARN,
                        "could not record %zu final task status(es): %s", n,
                        errstr);
                sleep_ms(500);
        }
        for (i = 0; i < n; i++) {
                free(errors[i]);
                drv_job_destroy(jobs[i]);
        }
}

/* The running rows of one-transaction jobs that run longer than
 * RUNNING_AFTER_MS (drv_exec_t.watch_row).  The row is written after the
 * executor may have committed its pending status: the upsert keeps
 * pending_status, and the final status comes later from this thread. */
static void fin_watch(drv_exec_t *fin) {
        drv_pool_t *pool = fin->pool;
        int64_t now = drv_mono_ms();
        char errstr[512];
        int i;

        for (i = 0; i < pool->pc.conf->concurrency; i++) {
                drv_exec_t *ex = &pool->execs[i];
                drv_task_run_t run;
                char *id = NULL, *ref = NULL, *ds = NULL;
                int due;

                pthread_mutex_lock(&ex->watch_lock);
                due = ex->watching && !ex->watch_shown &&
                      now - ex->watch_since >= RUNNING_AFTER_MS;
                if (due) {
                        /* the strings are the job's: copy them before
                         * letting the executor go on */
                        run = ex->watch_row;
                        id = strdup(run.task_id);
                        ref = run.entity_ref ? strdup(run.entity_ref) : NULL;
                        ds = run.dataset ? strdup(run.dataset) : NULL;
                        ex->watch_shown = 1;
                }
                pthread_mutex_unlock(&ex->watch_lock);
                if (due && id) {
                        run.task_id = id;
                        run.entity_ref = ref;
                        run.dataset = ds;
                        if (exec_conn(fin, errstr, sizeof(errstr)) ||
                            drv_task_run_upsert(fin->conn, &run, errstr,
                                                sizeof(errstr)))
                                drv_log(DRV_LOG_WARN,
                                        "could not record task status "
                                        "\"running\": %s",
                                        errstr);
                }
                free(id);
                free(ref);
                free(ds);
        }
}

/* How often the finalizer looks for long one-transaction jobs. */
#define FIN_WATCH_MS 250

static int fin_closed(drv_jobq_t *q) {
        int closed;

        pthread_mutex_lock(&q->lock);
        closed = q->closed && !q->head;
        pthread_mutex_unlock(&q->lock);
        return closed;
}

static void *fin_main(void *arg) {
        drv_exec_t *ex = arg;
        drv_pool_t *pool = ex->pool;
        drv_job_t *job, *batch[FIN_BATCH], *qbatch[FIN_QUEUE_BATCH];
        size_t n, nq;

        /* everything queued at once (the outcomes of one Kafka commit,
         * and whatever came meanwhile) in order: reconciliations where
         * they come, final statuses in one statement each run of them */
        for (;;) {
                job = drv_jobq_pop(&pool->finq, FIN_WATCH_MS);
                fin_watch(ex);
                if (!job) {
                        if (fin_closed(&pool->finq))
                                break;
                        continue;
                }
                n = nq = 0;
                do {
                        /* never changes a row that exists: in any order
                         * with the final statuses */
                        if (job->queued) {
                                qbatch[nq++] = job;
                                if (nq == FIN_QUEUE_BATCH) {
                                        fin_queue(ex, qbatch, nq);
                                        nq = 0;
                                }
                                continue;
                        }
                        if (job->reconcile) {
                                if (n)
                                        fin_write(ex, batch, n);
                                n = 0;
                                fin_reconcile(ex, job->reconcile);
                                drv_job_destroy(job);
                                continue;
                        }
                        batch[n++] = job;
                        if (n == FIN_BATCH) {
                                fin_write(ex, batch, n);
                                n = 0;
                        }
                } while ((job = drv_jobq_pop(&pool->finq, 0)));
                if (n)
                        fin_write(ex, batch, n);
                if (nq)
                        fin_queue(ex, qbatch, nq);
        }
        PQfinish(ex->conn);
        ex->conn = NULL;
        __atomic_sub_fetch(&pool->running, 1, __ATOMIC_SEQ_CST);
        return NULL;
}

void drv_pool_finalize(drv_pool_t *pool, drv_job_t *jobs) {
        drv_job_t *j, *copy, *head = NULL, **tail = &head;

        if (!pool)
                return; /* no pool (tests) */
        for (j = jobs; j; j = j->next) {
                if (!j->task || !(copy = calloc(1, sizeof(*copy))))
                        continue; /* poison: no task_runs row */
                *copy = *j;
                copy->msg = NULL;
                copy->next = NULL;
                /* the copy takes the task; the caller's job must not free
                 * it */
                j->task = NULL;
                *tail = copy;
                tail = &copy->next;
        }
        if (head)
                drv_jobq_push_list(&pool->finq, head);
}

void drv_pool_queued(drv_pool_t *pool, drv_job_t *jobs) {
        drv_job_t *j, *next;

        if (pool) {
                drv_jobq_push_list(&pool->finq, jobs);
                return;
        }
        for (j = jobs; j; j = next) {
                next = j->next;
                drv_job_destroy(j);
        }
}

void drv_pool_reconcile(drv_pool_t *pool,
                        rd_kafka_topic_partition_list_t *offsets) {
        drv_job_t *job;

        if (!pool || !(job = calloc(1, sizeof(*job)))) {
                rd_kafka_topic_partition_list_destroy(offsets);
                return;
        }
        job->reconcile = offsets;
        drv_jobq_push(&pool->finq, job);
}

drv_pool_t *drv_pool_start(const drv_pool_conf_t *pc, char *errstr,
                           size_t errstr_size) {
        drv_pool_t *pool = calloc(1, sizeof(*pool));
        int i, n = pc->conf->concurrency;

        if (!pool || !(pool->execs = calloc((size_t)n, sizeof(drv_exec_t)))) {
                free(pool);
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                return NULL;
        }
        pool->pc = *pc;
        for (i = 0; i < n; i++)
                pthread_mutex_init(&pool->execs[i].watch_lock, NULL);
        drv_jobq_init(&pool->finq);
        pool->fin.pool = pool;
        pool->running = 1;
        if (pthread_create(&pool->fin.thread, NULL, fin_main, &pool->fin))
                goto fail;
        pool->fin.started = 1;
        for (i = 0; i < n; i++) {
                drv_exec_t *ex = &pool->execs[i];
                ex->pool = pool;
                ex->rng = (uint64_t)drv_now_ms() * 2654435761u + (uint64_t)i +
                          (uint64_t)getpid();
                __atomic_add_fetch(&pool->running, 1, __ATOMIC_SEQ_CST);
                if (pthread_create(&ex->thread, NULL, exec_main, ex)) {
                        __atomic_sub_fetch(&pool->running, 1, __ATOMIC_SEQ_CST);
                        goto fail;
                }
                ex->started = 1;
                pool->execs_cnt++;
        }
        return pool;
fail:
        drv_err_set(errstr, errstr_size, DRV_ERR_INTERNAL,
                    "cannot start executor threads: %s", strerror(errno));
        (void)drv_pool_stop(pool, 5000);
        return NULL;
}

int drv_pool_stop(drv_pool_t *pool, int wait_ms) {
        int64_t deadline;
        int i;

        if (!pool)
                return 0;
        drv_jobq_close(pool->pc.jobs);
        drv_jobq_close(&pool->finq);
        deadline = drv_mono_ms() + wait_ms;
        while (__atomic_load_n(&pool->running, __ATOMIC_SEQ_CST) > 0 &&
               drv_mono_ms() < deadline)
                sleep_ms(20);
        if (__atomic_load_n(&pool->running, __ATOMIC_SEQ_CST) > 0) {
                /* A statement still running past the deadline: leave its
                 * thread to die with the process rather than hang. */
                drv_log(DRV_LOG_WARN, "%d executor(s) still busy at exit",
                        pool->running);
                return 1;
        }
        for (i = 0; i < pool->execs_cnt; i++)
                pthread_join(pool->execs[i].thread, NULL);
        if (pool->fin.started)
                pthread_join(pool->fin.thread, NULL);
        drv_jobq_fini(&pool->finq);
        for (i = 0; i < pool->pc.conf->concurrency; i++)
                pthread_mutex_destroy(&pool->execs[i].watch_lock);
        free(pool->execs);
        free(pool);
        return 0;
}
