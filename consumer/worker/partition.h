/*
 * drover - consumer/worker/partition.h: one partition of the tasks topic as
 * this worker sees it: its state, the window of records fetched and not
 * yet committed, and the offset and metadata it commits.
 *
 * partition.c is the only writer of a drv_part_t (the poll thread its
 * only caller) and calls no client library, so every transition is
 * unit-tested from a table (tests/unit/test_consumer_worker_partition.c).
 * The worker applies what it decides: pausing the fetcher, handing jobs to
 * executors, sending offsets.
 *
 * A partition:                         assign
 *   UNASSIGNED --------------------------------------> STARTING
 *   STARTING   -- committed offset + metadata read --> ACTIVE
 *   ACTIVE     -- abort (rewind) ---------------------> STARTING
 *   any        -- revoke / lost ----------------------> UNASSIGNED
 * A record (one task delivery) in the window:
 *   WAITING -> RUNNING -> FINAL -> COMMITTED
 *                  \-> RETRY -> RUNNING ...
 *   a record the commit metadata says an earlier owner finished enters
 *   COMMITTED at once; RUNNING -> WAITING when a stop takes a job back
 *   from the executor queue before any executor started it.
 * A dataset (the record key) is in the state of its oldest record that is
 * not final: idle (none), waiting, running or retrying.  Only that record
 * may run: tasks of one dataset run one at a time, in offset order, and a
 * retrying or long task holds its dataset only.
 *
 * The committed offset is the lowest offset whose task is not final; the
 * offsets above it that are final travel in the offset commit's metadata
 * (docs/decisions.md, "Offset commit metadata"):
 *     "v1:" base36(C) "/" [gap "+" len *("," gap "+" len)]
 * Starting at C + 1, each run skips `gap` offsets and marks `len`
 * completed.  At most DRV_PT_META_BUDGET bytes: a record other than the
 * lowest unfinished one is dispatched only while every record in flight
 * could still complete within the budget.
 */
#ifndef DRV_PARTITION_H
#define DRV_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#define DRV_PT_META_BUDGET 1024 /* bytes of commit metadata, at most */
#define DRV_PT_META_RUN    28   /* the longest run: 2 x 13 digits + 2 */

typedef enum drv_pstate_e {
        DRV_PS_UNASSIGNED,
        DRV_PS_STARTING, /* ours; its committed offset and metadata not
                            read yet: records wait, nothing runs */
        DRV_PS_ACTIVE,
} drv_pstate_t;

typedef enum drv_estate_e {
        DRV_ES_WAITING,   /* fetched, not running */
        DRV_ES_RUNNING,   /* on an executor */
        DRV_ES_RETRY,     /* runs again at retry_due (0: database back) */
        DRV_ES_FINAL,     /* outcome waits for the next Kafka commit */
        DRV_ES_COMMITTED, /* outcome committed (ours or an earlier owner's) */
} drv_estate_t;

/* Offsets lo..hi (inclusive) are final. */
typedef struct drv_pt_range_s {
        int64_t lo, hi;
} drv_pt_range_t;

typedef struct drv_ent_s {
        int64_t offset;
        uint64_t key; /* drv_pt_key_hash of the record key */
        size_t bytes;
        int32_t priority;
        uint64_t seq; /* arrival order, across partitions */
        drv_estate_t state;
        void *job;         /* WAITING, RETRY: owned here; else NULL */
        int64_t retry_due; /* RETRY: monotonic ms; 0: database back */
} drv_ent_t;

typedef struct drv_part_s {
        int32_t pn;
        drv_pstate_t state;
        unsigned epoch;      /* bumped on assign/revoke/rewind: an outcome of
                                an older epoch is dropped */
        int paused;          /* its fetcher paused by us (resume only ours) */
        int dirty;           /* a record became final since the last commit */
        int64_t next_offset; /* next offset expected from fetch; -1 */
        int64_t committed;   /* our committed offset; -1 unknown */
        int64_t assign_pos;  /* rd_kafka_position() at assignment: maybe
                                an earlier assignment's (worker_txn.c) */
        /* the window, in offset order: win[head .. head + cnt) */
        drv_ent_t *win;
        size_t head, cnt, cap;
        size_t bytes;    /* of records not yet committed */
        size_t prio_cnt; /* records with a priority other than 0 */
        /* final offsets above what was fetched, from the metadata read at
         * start: carried into every commit until fetched */
        drv_pt_range_t *inherit;
        size_t inherit_cnt;
        void (*job_free)(void *job);
        /* fetch bookkeeping of worker_kafka.c and worker_lag.c (not part
         * of the state machine) */
        int64_t start_due; /* STARTING: monotonic, next read */
        int start_logged;
        int start_fails;     /* reads failed in a row */
        int64_t restart_due; /* monotonic: restart its fetcher; 0 */
        int restart_logged;
        int64_t lag_query_ms;    /* monotonic, last watermark query */
        int64_t stats_committed; /* committed per statistics; -1 */
} drv_part_t;

/* A record ready to run (drv_pt_ready). */
typedef struct drv_pt_cand_s {
        int32_t pn;
        int64_t offset;
        int32_t priority;
        uint64_t seq;
} drv_pt_cand_t;

/* Limits of a window: fetching pauses at either and resumes below half. */
typedef struct drv_pt_limits_s {
        size_t records;
        size_t bytes;
} drv_pt_limits_t;

/* A partition that was never assigned. */
void drv_pt_init(drv_part_t *p, int32_t pn, void (*job_free)(void *job));
/* Free what the window owns; the partition is UNASSIGNED. */
void drv_pt_fini(drv_part_t *p);
uint64_t drv_pt_key_hash(const void *key, size_t len);
const char *drv_pt_state_name(drv_pstate_t s);
const char *drv_pt_estate_name(drv_estate_t s);

/* Transitions.  Each returns 0, or -1 when the event is not allowed in
 * the current state (logged; nothing changes). */
int drv_pt_assign(drv_part_t *p, int64_t assign_pos);
/* Revoked or lost: the window's jobs are freed, RUNNING ones are the
 * executors' (their outcomes are dropped by the epoch). */
int drv_pt_revoke(drv_part_t *p);
/* An aborted commit: back to STARTING, fetching again from the committed
 * offset `seek` (-1: unknown). */
int drv_pt_rewind(drv_part_t *p, int64_t seek);
/* The committed offset (-1: none) and the final ranges its metadata
 * names were read: records below it are dropped, records in a range are
 * COMMITTED, the rest may run. */
int drv_pt_start(drv_part_t *p, int64_t committed, const drv_pt_range_t *r,
                 size_t rcnt);
/* A record was fetched.  Returns 0 (it is in the window and owns `job`),
 * 1 (dropped: already seen, below the committed offset, or final per the
 * metadata; `job` freed), -1 (not ours; `job` not taken) or -2 (out of
 * memory; `job` freed: the worker must stop, a record missing from the
 * window would read as an offset that delivered nothing). */
int drv_pt_fetched(drv_part_t *p, int64_t offset, uint64_t key, size_t bytes,
                   int32_t priority, uint64_t seq, void *job);
/* Hand a ready record's job over (WAITING/RETRY -> RUNNING). */
void *drv_pt_dispatch(drv_part_t *p, int64_t offset);
/* A job not started after all (RUNNING -> WAITING); the window owns it. */
int drv_pt_undispatch(drv_part_t *p, int64_t offset, void *job);
/* RUNNING -> FINAL (the caller keeps the job for the commit). */
int drv_pt_final(drv_part_t *p, int64_t offset);
/* RUNNING -> RETRY at `due` (0: when the database is back); owns job. */
int drv_pt_retry(drv_part_t *p, int64_t offset, int64_t due, void *job);
/* The database is back: retries waiting for it are due at `now`. */
void drv_pt_db_back(drv_part_t *p, int64_t now);
/* The commit of drv_pt_commit_point's offset succeeded: FINAL records
 * become COMMITTED, records below it leave the window. */
void drv_pt_committed(drv_part_t *p, int64_t offset);
/* The fetcher was paused (1) or resumed (0) by the worker. */
void drv_pt_set_paused(drv_part_t *p, int paused);
/* Where fetching restarts (a seek or restart of the fetcher). */
void drv_pt_seek(drv_part_t *p, int64_t offset);

/* Queries */
/* Ready records: the oldest unfinished record of each dataset when it is
 * WAITING or a RETRY due by `now`, within the metadata budget; at most
 * max, in offset order.  Nothing unless ACTIVE. */
size_t drv_pt_ready(const drv_part_t *p, int64_t now, drv_pt_cand_t *out,
                    size_t max);
/* Is the record at `offset` still waiting for its first run? */
int drv_pt_waiting(const drv_part_t *p, int64_t offset);
/* Any record that is not final (WAITING, RUNNING, RETRY)? */
int drv_pt_busy(const drv_part_t *p);
/* Should its fetcher run?  Hysteresis around the limits. */
int drv_pt_fetch_wanted(const drv_part_t *p, const drv_pt_limits_t *lim);
/* The offset to commit and its metadata: the lowest unfinished record,
 * else past every record (and past `quiet_pos` when it is >= 0: the
 * position after control records, see worker_txn.c).  Returns 1 when
 * there is something to commit (a record became final, or the offset
 * moves), else 0.  meta_size >= DRV_PT_META_BUDGET + 1. */
int drv_pt_commit_point(const drv_part_t *p, int64_t quiet_pos, int64_t *offp,
                        char *meta, size_t meta_size);
/* Encode/decode the metadata.  Decode: ranges above `committed` into a
 * malloc'ed array (*rp, *cntp; caller frees); anything it cannot parse
 * exactly, of another version or another base, means no range (0). */
size_t drv_pt_meta_encode(int64_t base, const drv_pt_range_t *r, size_t cnt,
                          char *out, size_t out_size);
int drv_pt_meta_decode(const char *meta, size_t len, int64_t committed,
                       drv_pt_range_t **rp, size_t *cntp);

#endif
