/*
 * drover - consumer/worker_int.h: the poll thread's state, shared by
 * worker.c (loop, dispatch, rebalance), worker_txn.c (transactional
 * commits) and worker_kafka.c (clients, topics).  Poll thread only.
 */
#ifndef DRV_WORKER_INT_H
#define DRV_WORKER_INT_H

#include "worker.h"

/* One partition of the tasks topic, as this worker sees it. */
typedef struct drv_part_s {
        int assigned;
        int paused;            /* paused by us (only resume what we paused) */
        int busy;              /* a job in flight or waiting to retry */
        int reconcile;         /* assigned: reconcile its task_runs rows */
        unsigned epoch;        /* bumped on assign/revoke/rewind */
        int64_t next_offset;   /* next offset expected from fetch; -1 */
        int64_t commit_offset; /* last completed + 1 awaiting commit; -1 */
        int64_t committed;     /* last offset we committed; -1 unknown */
        rd_kafka_message_t **backlog; /* fetched while busy, in order;
                                         paused above BACKLOG_HIGH */
        size_t bl_cnt, bl_cap;
        drv_job_t *retry;        /* waiting for its retry time / the database */
        int64_t lag_query_ms;    /* monotonic, last watermark query */
        int64_t stats_committed; /* committed per statistics; -1 */
        int64_t restart_due;     /* monotonic: read its committed offset
                                    and start it (worker_kafka.c); 0 */
        int restart_logged;
} drv_part_t;

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
        volatile int cancel;

        drv_part_t *parts;
        int parts_cnt;
        int assigned_cnt;
        int ever_assigned;  /* a rebalance callback assigned (maybe none) */
        int inflight;       /* jobs handed to executors */
        drv_job_t *pending; /* outcomes awaiting the next commit */
        drv_job_t *pending_tail;
        int64_t next_commit; /* monotonic */
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
void drv_worker_pause(drv_worker_t *w, int32_t partition);
void drv_worker_resume(drv_worker_t *w, int32_t partition);
/* Partition is free again: start its next backlog task or resume it. */
void drv_worker_settle(drv_worker_t *w, int32_t partition);
/* Forget partition state (revoke/rewind): drop backlog and retry job,
 * bump the epoch so outcomes still in flight are dropped. */
void drv_worker_part_reset(drv_worker_t *w, int32_t partition);

/* worker_txn.c */
/* Commit every pending outcome in one transaction.  Returns 0 (committed
 * or nothing to do), 1 (aborted: the affected partitions were rewound),
 * -1 (fatal: w->fatal set). */
int drv_worker_commit(drv_worker_t *w);
/* Rewind partitions to their committed offsets (after an abort). */
void drv_worker_rewind(drv_worker_t *w, const int32_t *parts, int cnt);

/* worker_reconcile.c */
/* Hand the committed offsets of newly assigned partitions to the
 * finalizer, which settles their rows with a pending status. */
void drv_worker_reconcile(drv_worker_t *w);

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

#endif
