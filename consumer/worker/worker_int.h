/*
 * drover - consumer/worker/worker_int.h: the worker's parts, private to
 * consumer/worker/ (and to white-box tests).
 *
 * Jobs, their queues and the executor pool are shared by every thread of
 * the worker; the poll thread's state (drv_part_t, struct drv_worker_s)
 * is shared by worker.c (loop, dispatch, rebalance), worker_txn.c
 * (transactional commits) and worker_kafka.c (clients, topics) and is
 * touched by the poll thread only.
 */
#ifndef DRV_WORKER_INT_H
#define DRV_WORKER_INT_H

#include "admin.h"
#include "partition.h"
#include "worker.h"

#include <pthread.h>

/*
 * ------------------------------------------------------------------------
 * Jobs: one task delivery, from dispatch to commit.
 * ------------------------------------------------------------------------
 */
typedef enum drv_outcome_e {
        DRV_OUT_NONE,
        DRV_OUT_DONE,
        DRV_OUT_SKIPPED,
        DRV_OUT_DRY_RUN,
        DRV_OUT_DEAD,
        DRV_OUT_RETRY,   /* transient: retry after backoff_ms */
        DRV_OUT_DB_DOWN, /* PostgreSQL unreachable: pause all, probe */
} drv_outcome_t;

/*
 * Threads.  A job has one owner at a time and changes hands only through
 * a drv_jobq_t (its mutex orders the writes before the hand-off with the
 * reads after it):
 *   poll thread   builds it (msg, partition, offset, epoch, started_ms,
 *                 and task when it decodes without I/O); it reads the
 *                 outcome fields only after the job came back on the
 *                 outcomes queue, and parks a retry in its partition's
 *                 window (partition.h);
 *   executor      writes everything else (task, attempts*, outcome, res,
 *                 backoff_ms, dlq, redrive_count, prior_done, steps_ran,
 *                 exec, progress_ms) while the job is on it;
 *   finalizer     owns the copy drv_pool_finalize makes (and `reconcile`).
 */
typedef struct drv_job_s {
        struct drv_job_s *next;
        rd_kafka_message_t *msg; /* owned; destroyed on the poll thread */
        int32_t partition;
        int64_t offset;
        unsigned epoch; /* partition epoch at dispatch; stale: dropped */
        int attempts_loaded;
        int attempts; /* failures so far */
        int64_t first_failure_ms;
        int64_t started_ms; /* monotonic, when fetched */
        drv_task_t *task;   /* decoded once (on the poll thread when that
                               needs no registry request); NULL if poison */
        drv_outcome_t outcome;
        drv_run_result_t res;
        int64_t backoff_ms;
        drv_dlq_info_t dlq; /* error details (dead letters and retries) */
        int redrive_count;  /* carried by a redriven task's headers */
        int prior_done;     /* task_runs said done/skipped before this delivery:
                               a replay, not a crash redelivery */
        int steps_ran;      /* a step ran in this attempt (progress seen) */
        void *exec;         /* the executor running the job (progress writes) */
        int64_t progress_ms; /* monotonic, last progress write */
        /* finalizer only: committed offsets of partitions to reconcile */
        rd_kafka_topic_partition_list_t *reconcile;
        int queued; /* finalizer only: show the task `queued` (a copy of
                       a fetched job: task id, ref, dataset, position) */
} drv_job_t;

/* Free a job, its task and its message.  NULL is a no-op. */
void drv_job_destroy(drv_job_t *job);

/* "done", "skipped", "dry_run", "dead", "retrying". */
const char *drv_outcome_status(drv_outcome_t out);

/* 1 when a failed run is an outage (DRV_OUT_DB_DOWN: pause, wait for the
 * database, never dead-letter): DRV_ERR_DB_UNAVAILABLE with the
 * executor's connection lost (`conn_ok` 0).  Anything else, including a
 * db_unavailable error on a connection that still answers, is routed by
 * its class, and a transient class counts attempts against the backoff
 * budget (max_attempts, max_elapsed_ms). */
int drv_job_db_down(drv_err_t err, int conn_ok);

/*
 * ------------------------------------------------------------------------
 * A FIFO of jobs under a mutex; pop can block.
 * ------------------------------------------------------------------------
 */
typedef struct drv_jobq_s {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        drv_job_t *head, *tail;
        int closed;
        /* called (outside the lock) after each push when set: wakes a
         * consumer that waits elsewhere than on `cond` */
        void (*wake)(void *opaque);
        void *wake_opaque;
} drv_jobq_t;

void drv_jobq_init(drv_jobq_t *q);
void drv_jobq_fini(drv_jobq_t *q);
void drv_jobq_push(drv_jobq_t *q, drv_job_t *job);
/* Append a list of jobs (linked by `next`, not empty) at once. */
void drv_jobq_push_list(drv_jobq_t *q, drv_job_t *jobs);
/* Next job; waits up to timeout_ms (<0: forever).  NULL on timeout or
 * when the queue is closed and empty. */
drv_job_t *drv_jobq_pop(drv_jobq_t *q, int timeout_ms);
/* Take the whole list (FIFO order); the caller owns it. */
drv_job_t *drv_jobq_take_all(drv_jobq_t *q);
/* Take the jobs of one partition (FIFO order); the caller owns them. */
drv_job_t *drv_jobq_take_partition(drv_jobq_t *q, int32_t partition);
/* Wake every waiter; pop returns NULL once empty. */
void drv_jobq_close(drv_jobq_t *q);

/*
 * ------------------------------------------------------------------------
 * The executor pool (worker_exec.c)
 * ------------------------------------------------------------------------
 */
typedef struct drv_pool_s drv_pool_t;

typedef struct drv_pool_conf_s {
        const drv_config_t *conf;
        drv_schema_store_t *store;
        drv_catalog_t *catalog;
        drv_jobq_t *jobs;     /* in: tasks to run */
        drv_jobq_t *outcomes; /* out: finished jobs */
        /* set by the poll thread at the drain deadline; read by the
         * executors between batches */
        atomic_int *cancel;
} drv_pool_conf_t;

/* Start conf->concurrency executors and one finalizer thread.  NULL and
 * errstr on failure (threads that started are stopped). */
drv_pool_t *drv_pool_start(const drv_pool_conf_t *pc, char *errstr,
                           size_t errstr_size);
/* Queue the final task_runs statuses of the committed jobs `jobs` (a
 * list linked by `next`) at once, so that the finalizer writes them in
 * one statement: copies that take over each job's task (set to NULL;
 * poison jobs, without one, have no row).  NULL pool: nothing. */
void drv_pool_finalize(drv_pool_t *pool, drv_job_t *jobs);
/* Queue `queued` rows for fetched tasks (a list of jobs linked by `next`,
 * `queued` set; the pool takes them).  NULL pool: freed. */
void drv_pool_queued(drv_pool_t *pool, drv_job_t *jobs);
/* Queue a reconciliation of task_runs for the partitions of `offsets`
 * (their committed offsets; entries < 0 are ignored).  Takes ownership
 * of offsets.  NULL pool: offsets freed. */
void drv_pool_reconcile(drv_pool_t *pool,
                        rd_kafka_topic_partition_list_t *offsets);
/* Close the queues and join the threads for up to wait_ms; threads still
 * running after that are left to die with the process (returns 1: the
 * pool, its queues and what the threads use must then not be freed).
 * Returns 0 when every thread was joined and the pool freed.  NULL: 0. */
int drv_pool_stop(drv_pool_t *pool, int wait_ms);

/* Test hooks: DROVER_CRASH_AT=<point>[:<nth>] -> _exit(137) at the nth
 * time `point` is reached; DROVER_STOP_AT=<point>[:<nth>] -> the process
 * stops itself there (SIGSTOP) until SIGCONT.  Points: after_pg_commit,
 * between_steps, before_send_offsets, in_kafka_commit, after_kafka_commit.
 * No-op without DROVER_TEST_HOOKS. */
void drv_crash_point(const char *point);

/*
 * ------------------------------------------------------------------------
 * The poll thread's state
 *
 * Everything below is read and written by the poll thread only, including
 * from librdkafka's callbacks, which run inside the poll calls that serve
 * them: error_cb (sets `fatal`), stats_cb (lag, stats_committed) and
 * drv_worker_rebalance_cb run inside rd_kafka_consumer_poll(rk) or
 * rd_kafka_poll(rkp), both called only by the loop in worker.c.  The
 * exception is the librdkafka log callback, which runs on librdkafka's
 * own threads and touches nothing here (drv_log is thread-safe).
 * ------------------------------------------------------------------------
 */
struct drv_worker_s {
        drv_config_t *conf;      /* not owned */
        rd_kafka_t *rk;          /* consumer */
        rd_kafka_queue_t *wakeq; /* rk's consumer queue: an outcome wakes
                                    the poll thread out of its poll */
        rd_kafka_t *rkp;         /* transactional producer */
        rd_kafka_consumer_group_metadata_t *cgmd;
        drv_schema_store_t *store;
        drv_catalog_t *catalog;
        drv_admin_t *admin;
        drv_pool_t *pool;
        drv_jobq_t jobs, outcomes;
        atomic_int cancel; /* see drv_pool_conf_t */

        drv_part_t *parts; /* written by partition.c only */
        int parts_cnt;
        int assigned_cnt;
        int ever_assigned; /* a rebalance callback assigned (maybe none) */
        int inflight;      /* jobs handed to executors: at most
                              conf->concurrency */
        uint64_t seq;      /* records fetched: their arrival order */
        drv_pt_limits_t window;
        drv_job_t *queued;  /* fetched tasks to show `queued` (finalizer) */
        drv_job_t *pending; /* outcomes awaiting the next commit */
        drv_job_t *pending_tail;
        int64_t next_commit;  /* monotonic */
        int64_t next_queued;  /* monotonic: next flush_queued */
        int64_t next_advance; /* monotonic: next look for positions past
                                 control records (worker_txn.c) */
        int db_down;
        int64_t next_db_probe;
        int stopping;
        int fatal; /* exit 70 */
        int64_t next_ready;
        int lag_cursor;          /* next partition to consider (worker_lag.c) */
        int64_t lag_next_ms;     /* monotonic, earliest next watermark query */
        int lag_interval_ms;     /* statistics.interval.ms (0: off) */
        int64_t no_offset_start; /* BEGINNING or END: a partition without
                                    a committed offset starts there */
};

/* worker.c */
drv_part_t *drv_worker_part(drv_worker_t *w, int32_t partition);
/* Is the partition ours (STARTING or ACTIVE)? */
int drv_worker_owned(const drv_part_t *p);
void drv_worker_pause(drv_worker_t *w, int32_t partition);
void drv_worker_resume(drv_worker_t *w, int32_t partition);
/* Pause or resume a partition's fetcher as its window, the database and
 * a stop want it. */
void drv_worker_sync_fetch(drv_worker_t *w, int32_t partition);
/* Take the partition's jobs no executor has started off the executor
 * queue (revoke, rewind: they would run behind its next owner). */
void drv_worker_unqueue(drv_worker_t *w, int32_t partition);
/* Hand ready records to free executors: the highest priority first, then
 * the oldest, across partitions. */
void drv_worker_schedule(drv_worker_t *w);

/* worker_txn.c */
/* Commit every pending outcome in one transaction.  Returns 0 (committed
 * or nothing to do), 1 (aborted: the affected partitions were rewound),
 * -1 (fatal: w->fatal set). */
int drv_worker_commit(drv_worker_t *w);
/* Rewind partitions to their committed offsets (after an abort). */
void drv_worker_rewind(drv_worker_t *w, const int32_t *parts, int cnt);
/* The position of a partition to commit past control records
 * (transaction markers, aborted batches) once every task before it is
 * final: -1 unless it is quiet (see docs/decisions.md, "Committing past
 * transaction markers"). */
int64_t drv_worker_marker_position(drv_worker_t *w, int32_t partition);
/* rd_kafka_position() of a partition: the offset after the last record
 * (control records included) handed to the poll thread; -1 unknown. */
int64_t drv_worker_position(drv_worker_t *w, int32_t partition);
/* Is a partition's position past its committed offset, at most once per
 * commit interval?  Then the next commit is due without an outcome. */
int drv_worker_advance_due(drv_worker_t *w, int64_t now);

/* worker_reconcile.c */
/* Start the STARTING partitions: read their committed offsets and
 * metadata (drv_pt_start), and hand them to the finalizer, which settles
 * the task_runs rows whose outcome had committed.  An unreadable offset
 * is read again a second later; until then the partition runs nothing. */
void drv_worker_start_tick(drv_worker_t *w);

/* worker_lag.c */
/* drover_consumer_lag for paused partitions, whose end offsets librdkafka
 * no longer refreshes: at most one watermark query per call, each paused
 * partition at most once per statistics interval. */
void drv_worker_lag_tick(drv_worker_t *w);
/* Lag of a partition from an end offset and what we know was committed
 * (ours, the statistics', else the log start as KEDA counts it). */
void drv_worker_lag_set(drv_worker_t *w, int32_t partition, int64_t end,
                        int64_t lo);

/* worker.c: has SIGTERM/SIGINT come (for waits outside the loop)? */
int drv_worker_signalled(void);

/* worker_kafka.c */
drv_err_t drv_worker_kafka_new(drv_worker_t *w, char *errstr,
                               size_t errstr_size);
void drv_worker_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts,
                             void *opaque);
/* librdkafka could not start a partition (auto.offset.reset=error;
 * err_offset: the offset it had, RD_KAFKA_OFFSET_INVALID when it had no
 * committed offset): out of range starts at the configured start; else
 * the partition waits for drv_worker_restart_tick(). */
void drv_worker_offset_reset(drv_worker_t *w, int32_t partition,
                             int64_t err_offset);
/* Start the waiting partitions at their committed offsets (else at the
 * configured start); unreadable ones wait a second more. */
void drv_worker_restart_tick(drv_worker_t *w);
/* A committed offset could not be read: one warning per wait (*logged). */
void drv_worker_log_unreadable(int32_t partition, rd_kafka_resp_err_t err,
                               int *logged);

#endif
