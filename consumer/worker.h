/*
 * drover - consumer/worker.h: the worker's parts (private to consumer/).
 *
 * One poll thread owns the consumer, the one transactional producer and
 * every transactional call (worker.c, worker_txn.c, worker_kafka.c).  N
 * executor threads each own one PGconn and run plans (worker_exec.c); a
 * finalizer thread writes the final task_runs status after the Kafka
 * commit.  They talk through one queue each way (drv_jobq_t).
 */
#ifndef DRV_WORKER_H
#define DRV_WORKER_H

#include "admin.h"
#include "config.h"

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

typedef struct drv_job_s {
        struct drv_job_s *next;
        rd_kafka_message_t *msg; /* owned; destroyed on the poll thread */
        int32_t partition;
        int64_t offset;
        unsigned epoch; /* partition epoch at dispatch; stale: dropped */
        int attempts_loaded;
        int attempts; /* failures so far */
        int64_t first_failure_ms;
        int64_t started_ms; /* monotonic, first dispatch */
        int64_t retry_due;  /* monotonic; 0: when the database is back */
        drv_task_t *task;   /* decoded once; NULL if poison */
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
} drv_job_t;

/* Free a job, its task and its message.  NULL is a no-op. */
void drv_job_destroy(drv_job_t *job);

/* "done", "skipped", "dry_run", "dead", "retrying". */
const char *drv_outcome_status(drv_outcome_t out);

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
        volatile int *cancel; /* set at the drain deadline */
} drv_pool_conf_t;

/* Start conf->concurrency executors and one finalizer thread.  NULL and
 * errstr on failure (threads that started are stopped). */
drv_pool_t *drv_pool_start(const drv_pool_conf_t *pc, char *errstr,
                           size_t errstr_size);
/* Queue the final task_runs status of a committed job: a copy that takes
 * over job->task (set to NULL). */
void drv_pool_finalize(drv_pool_t *pool, drv_job_t *job);
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
 * The worker (worker.c)
 * ------------------------------------------------------------------------
 */
typedef struct drv_worker_s drv_worker_t;

/* Build everything the worker needs: schema store, catalog, database
 * (migrated), topics, producer (transactions initialised), consumer,
 * executors, admin server.  NULL and errstr on failure; *errp set to the
 * error (drv_err_exit_code gives the exit status). */
drv_worker_t *drv_worker_new(drv_config_t *conf, drv_err_t *errp, char *errstr,
                             size_t errstr_size);
/* Run until a signal (SIGTERM/SIGINT) or a fatal error.  Returns the exit
 * code.  Takes no ownership. */
int drv_worker_run(drv_worker_t *w);
/* Free.  NULL is a no-op. */
void drv_worker_destroy(drv_worker_t *w);

#endif /* DRV_WORKER_H */
