/*
 * drover - dlq/: error classes, backoff, dead-letter records, redrive and
 * replay.
 *
 * Classification happens here, once: every failure another module reports
 * (a drv_err_t, plus a SQLSTATE for SQL errors, or a librdkafka response
 * code) is mapped by one table to a route (retry / dead letter / fatal)
 * and to the `drover.error.class` name written in dead-letter headers;
 * every error of the Kafka transactional API, by one table to an action
 * (retry the call / abort and rewind / fatal).
 * DESIGN.md sections 6, 7 and 9.
 */
#ifndef DRV_DLQ_H
#define DRV_DLQ_H

#include "transforms.h"

#include <librdkafka/rdkafka.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ------------------------------------------------------------------------
 * Classification
 * ------------------------------------------------------------------------
 */
typedef enum drv_route_e {
        DRV_ROUTE_OK,    /* not an error */
        DRV_ROUTE_RETRY, /* transient: back off, then retry */
        DRV_ROUTE_DEAD,  /* permanent: dead letter at once */
        DRV_ROUTE_FATAL, /* the worker's own state: recreate or exit 70 */
} drv_route_t;

typedef struct drv_class_s {
        drv_route_t route;
        const char *name; /* drover.error.class, e.g. "decode", "sql" */
        int retryable;    /* drover.error.retryable */
} drv_class_t;

/* Classify an error.  sqlstate may be NULL or "" (only used for
 * DRV_ERR_SQL and DRV_ERR_DB_UNAVAILABLE). */
drv_class_t drv_dlq_classify(drv_err_t err, const char *sqlstate);

/* Classify a librdkafka response code (a delivery report's error, or a
 * call's): per-record ones (MSG_SIZE_TOO_LARGE -> DEAD
 * "kafka_msg_too_large"), fencing / authorization -> FATAL, timeouts and
 * transport -> RETRY; unknown codes -> RETRY "kafka_retriable", so the
 * backoff budget decides. */
drv_class_t drv_dlq_classify_kafka_err(rd_kafka_resp_err_t err);

/* Static name of a route: "ok", "retry", "dead", "fatal". */
const char *drv_route_name(drv_route_t route);

/*
 * ------------------------------------------------------------------------
 * Kafka transaction errors (dlq/classify.c, txn_table)
 *
 * One router for every error object the transactional API returns
 * (rd_kafka_begin_transaction, send_offsets_to_transaction,
 * commit_transaction, abort_transaction): the worker's commit path
 * (consumer/worker/worker_txn.c) and redrive (dlq/redrive.c) both act on its
 * answer.  Decided by the error's flags, fatal first, then
 * txn_requires_abort, then retriable; an error with none of them is
 * FATAL, as librdkafka 2.0.2 documents (rdkafka.h, "Handling of other
 * errors"): see the table for why.
 * ------------------------------------------------------------------------
 */
typedef enum drv_txn_action_e {
        DRV_TXN_OK,    /* not an error */
        DRV_TXN_RETRY, /* call again with identical arguments (the caller
                        * bounds how often) */
        DRV_TXN_ABORT, /* abort the transaction, rewind the inputs to the
                        * committed offsets, begin again */
        DRV_TXN_FATAL, /* the producer is unusable: the process exits 70 */
} drv_txn_action_t;

/* The action for an error a transactional call returned; NULL -> OK.
 * Does not take ownership of error. */
drv_txn_action_t drv_dlq_txn_route(const rd_kafka_error_t *error);

/* The same by the error's three flags (each 0 or non-zero): what
 * drv_dlq_txn_route() looks up. */
drv_txn_action_t drv_dlq_txn_route_flags(int fatal, int txn_requires_abort,
                                         int retriable);

/* Static name of an action: "ok", "retry", "abort", "fatal". */
const char *drv_dlq_txn_action_name(drv_txn_action_t action);

/*
 * ------------------------------------------------------------------------
 * Backoff: exponential with full jitter.
 * ------------------------------------------------------------------------
 */
typedef struct drv_backoff_conf_s {
        int64_t initial_ms;     /* default 500 */
        double multiplier;      /* default 2.0 */
        int64_t max_delay_ms;   /* default 60000 */
        int max_attempts;       /* default 8 */
        int64_t max_elapsed_ms; /* default 600000 */
} drv_backoff_conf_t;

/* Fill a conf with the defaults above. */
void drv_backoff_conf_defaults(drv_backoff_conf_t *conf);

/* Upper bound of the jittered delay of retry number `attempt`:
 * min(max_delay, initial * multiplier^(attempt-1)); conf NULL: defaults. */
int64_t drv_backoff_cap_ms(const drv_backoff_conf_t *conf, int attempt);

/* Delay before retry number `attempt` (1 = first retry): uniform random in
 * [0, min(max_delay, initial * multiplier^(attempt-1))].  `rng` is the
 * caller's state (seed it non-zero; NULL: a fixed local seed).  conf
 * NULL: defaults. */
int64_t drv_backoff_delay_ms(const drv_backoff_conf_t *conf, int attempt,
                             uint64_t *rng);

/* 1 if no further retry is allowed after `attempts` failures, the first at
 * first_failure_ms, now being now_ms: attempts >= max_attempts or
 * now - first >= max_elapsed (a limit <= 0 is off).  conf NULL: defaults. */
int drv_backoff_exhausted(const drv_backoff_conf_t *conf, int attempts,
                          int64_t first_failure_ms, int64_t now_ms);

/* drover.retry.after.ms for a `retries_exhausted` dead letter written at
 * now_ms: now + max_delay, the earliest a redrive should try again. */
int64_t drv_backoff_retry_after_ms(const drv_backoff_conf_t *conf,
                                   int64_t now_ms);

/*
 * ------------------------------------------------------------------------
 * Dead-letter records (DESIGN.md section 7)
 * ------------------------------------------------------------------------
 */
#define DRV_DLQ_H_ERROR_CLASS           "drover.error.class"
#define DRV_DLQ_H_ERROR_MESSAGE         "drover.error.message"
#define DRV_DLQ_H_ERROR_RETRYABLE       "drover.error.retryable"
#define DRV_DLQ_H_ERROR_STEP            "drover.error.step"
#define DRV_DLQ_H_ERROR_SQLSTATE        "drover.error.sqlstate"
#define DRV_DLQ_H_TASK_ID               "drover.task.id"
#define DRV_DLQ_H_DATASET               "drover.dataset"
#define DRV_DLQ_H_ATTEMPTS              "drover.attempts"
#define DRV_DLQ_H_FIRST_FAILURE_MS      "drover.first.failure.ms"
#define DRV_DLQ_H_LAST_FAILURE_MS       "drover.last.failure.ms"
#define DRV_DLQ_H_BACKOFF_MS            "drover.backoff.ms"
#define DRV_DLQ_H_RETRY_AFTER_MS        "drover.retry.after.ms"
#define DRV_DLQ_H_ORIGINAL_TOPIC        "drover.original.topic"
#define DRV_DLQ_H_ORIGINAL_PARTITION    "drover.original.partition"
#define DRV_DLQ_H_ORIGINAL_OFFSET       "drover.original.offset"
#define DRV_DLQ_H_ORIGINAL_TIMESTAMP_MS "drover.original.timestamp.ms"
#define DRV_DLQ_H_WORKER                "drover.worker"
#define DRV_DLQ_H_CONSUMER_GROUP        "drover.consumer.group"
#define DRV_DLQ_H_REDRIVE_COUNT         "drover.redrive.count"
/* On a redrive marker (a DLQ record with an empty, non-null value written
 * in the transaction that redrove "<partition>:<offset>" of the DLQ
 * topic).  Readers know a marker by this header alone, so the null-valued
 * markers of earlier versions still count. */
#define DRV_DLQ_H_REDRIVEN_OF "drover.redriven.of"

/* The class name of a dead letter whose retry budget is spent. */
#define DRV_DLQ_CLASS_RETRIES_EXHAUSTED "retries_exhausted"

typedef struct drv_dlq_info_s {
        char error_class[48];
        char error_message[512];
        int retryable;
        char step[48]; /* "index:op" or "" */
        char sqlstate[6];
        char task_id[64];
        char dataset[128];
        int attempts;
        int64_t first_failure_ms;
        int64_t last_failure_ms;
        int64_t backoff_ms;
        int64_t retry_after_ms; /* 0: none */
        char original_topic[256];
        int32_t original_partition;
        int64_t original_offset;
        int64_t original_timestamp_ms;
        char worker[128];
        char consumer_group[256];
        int redrive_count; /* drover.redrive.count */
} drv_dlq_info_t;

/* A new header list with every drover.* header of `info`.  The caller
 * owns the result (rd_kafka_headers_destroy, or pass it to
 * rd_kafka_producev(RD_KAFKA_V_HEADERS()), which takes it only when it
 * succeeds).  NULL if info is NULL or on out of memory. */
rd_kafka_headers_t *drv_dlq_headers_new(const drv_dlq_info_t *info);

/* Parse drover.* headers back into `info` (zeroed first; missing headers
 * and null values left zero; over-long strings truncated; the last of
 * duplicate headers wins).  hdrs may be NULL (nothing found).  Returns
 * DRV_OK, or DRV_ERR_DECODE naming the header if a numeric or boolean
 * header is malformed (info then partly filled). */
drv_err_t drv_dlq_headers_parse(const rd_kafka_headers_t *hdrs,
                                drv_dlq_info_t *info, char *errstr,
                                size_t errstr_size);

/* For the worker, on a task read from the tasks topic: the attempts and
 * redrive count a redriven task carries in its headers (drover.attempts,
 * drover.redrive.count, written by 'drover dlq redrive').  Copy the
 * redrive count into the dead letter's info when the task fails again,
 * or parking after --max-redrives cannot work.  hdrs may be NULL; absent
 * or malformed headers give 0.  Either out pointer may be NULL. */
void drv_dlq_task_carried(const rd_kafka_headers_t *hdrs, int *attemptsp,
                          int *redrive_countp);

/* Name of the i-th header drv_dlq_headers_new() writes (in order), or
 * NULL when i is past the last one. */
const char *drv_dlq_header_name(size_t i);

/*
 * ------------------------------------------------------------------------
 * Reading the DLQ topic, and redrive (dlq/redrive.c)
 *
 * Redrive is exactly once per dead letter: in one Kafka transaction it
 * produces the task back to the tasks topic, a *marker* record to the DLQ
 * topic (empty value, header drover.redriven.of = "<partition>:<offset>"
 * of the dead letter) and the redrive group's offsets.  A later scan
 * that sees the marker knows the dead letter is done.  The group's
 * committed offset of a partition is the first dead letter not yet
 * redriven (unselected, parked or unreadable), so a filtered redrive
 * never commits past a record it skipped: that record is read again by
 * the next redrive, and the markers keep the ones after it from moving
 * twice.
 * ------------------------------------------------------------------------
 */
typedef enum drv_dlq_state_e {
        DRV_DLQ_PENDING,    /* a dead letter nothing decided about yet */
        DRV_DLQ_MARKER,     /* a redrive marker, not a dead letter */
        DRV_DLQ_REDRIVEN,   /* a marker for it was seen / written */
        DRV_DLQ_UNREADABLE, /* malformed drover.* headers */
        DRV_DLQ_UNSELECTED, /* filtered out (left for later) */
        DRV_DLQ_PARKED,     /* redriven max_redrives times already */
        DRV_DLQ_SELECTED,   /* to redrive in this run */
} drv_dlq_state_t;

typedef struct drv_dlq_rec_s {
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms; /* the DLQ record's own timestamp */
        void *key;            /* NULL: null key */
        size_t key_len;
        void *value; /* NULL: null value */
        size_t value_len;
        drv_dlq_info_t info;
        drv_dlq_state_t state;
        char parse_error[128];    /* DRV_DLQ_UNREADABLE: why */
        int32_t marker_partition; /* DRV_DLQ_MARKER: what it marks */
        int64_t marker_offset;
} drv_dlq_rec_t;

typedef struct drv_dlq_scan_s {
        drv_dlq_rec_t *recs; /* by partition, then offset */
        size_t cnt;
        int32_t partition_cnt;
        int64_t *start; /* per partition: where the scan began */
        int64_t *end;   /* per partition: the position it stopped at */
} drv_dlq_scan_t;

/* Read every partition of `topic` with consumer rk (read_committed,
 * enable.partition.eof=true, created by the caller; assigned here) from
 * the beginning, or from rk's group's committed offsets when
 * from_committed, up to the end of each partition as of now, and stop.
 * Markers are matched to the dead letters they mark (state REDRIVEN).
 * On DRV_OK *scanp is a new scan the caller frees with
 * drv_dlq_scan_destroy().  Fails (DRV_ERR_KAFKA_RETRIABLE) when the topic
 * does not exist or the end is not reached within timeout_ms. */
drv_err_t drv_dlq_scan(rd_kafka_t *rk, const char *topic, int from_committed,
                       int timeout_ms, drv_dlq_scan_t **scanp, char *errstr,
                       size_t errstr_size);

/* NULL is a no-op. */
void drv_dlq_scan_destroy(drv_dlq_scan_t *scan);

typedef struct drv_dlq_filter_s {
        const char *error_class; /* NULL: any */
        const char *dataset;     /* NULL: any */
        int64_t since_ms;        /* 0: any; else DLQ timestamp >= since */
        int due;                 /* only retry_after_ms in (0, now] */
        int64_t now_ms;
        long max;         /* select at most this many; <= 0: no limit */
        int max_redrives; /* redrive_count >= this: parked; <= 0: 5 */
} drv_dlq_filter_t;

/* 1 if dead letter rec passes the filter's class/dataset/since/due. */
int drv_dlq_filter_match(const drv_dlq_filter_t *f, const drv_dlq_rec_t *rec);

/* Decide every PENDING record: SELECTED, PARKED or UNSELECTED.  Returns
 * the number selected. */
size_t drv_dlq_select(drv_dlq_scan_t *scan, const drv_dlq_filter_t *f);

/* Static lower-case name of a state ("pending", "redriven", ...). */
const char *drv_dlq_state_name(drv_dlq_state_t state);

/* Redrive the SELECTED records of scan (read by consumer rk from
 * dlq_topic, from its group's committed offsets) to tasks_topic with
 * transactional producer rkp (init_transactions done), batch_size records
 * per transaction, offsets via send_offsets_to_transaction.  Txn API
 * errors go by drv_dlq_txn_route(): RETRY is retried, ABORT aborts and
 * redoes the batch (up to 3 times); each record then turns REDRIVEN.
 * *movedp counts redriven records.  Returns DRV_ERR_KAFKA_FATAL on a
 * FATAL action (exit 70), DRV_ERR_KAFKA_RETRIABLE when retries ran out. */
drv_err_t drv_dlq_redrive(rd_kafka_t *rk, rd_kafka_t *rkp, drv_dlq_scan_t *scan,
                          const char *dlq_topic, const char *tasks_topic,
                          int batch_size, size_t *movedp, char *errstr,
                          size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * Replay (dlq/replay.c)
 *
 * Replay moves a consumer group's committed offsets back (to a time, or
 * to given partition:offset pairs); the workers of that group then read
 * the tasks again.  Tasks the ledger shows done are skipped, failed ones
 * run again.  Offsets move only while the group has no active member.
 * ------------------------------------------------------------------------
 */
typedef struct drv_replay_part_s {
        int32_t partition;
        int64_t committed; /* the group's offset; < 0: none */
        int64_t low, high; /* watermarks */
        int64_t target;    /* where the group will resume */
        int64_t to;        /* first offset at/after --to; -1: no --to */
        int selected;      /* 0: left as it is */
} drv_replay_part_t;

typedef struct drv_replay_plan_s {
        drv_replay_part_t *parts;
        int32_t cnt;
} drv_replay_plan_t;

/* Compute targets for every partition of topic in group rk (a consumer
 * whose group.id is the group; it is not subscribed).  Either from_ms >= 0
 * (offsets_for_times; a partition with nothing at or after it targets its
 * end) or fo_cnt partition:offset pairs (each checked against the
 * watermarks: DRV_ERR_USAGE when out of range or no such partition).
 * to_ms >= 0 fills `to`.  On DRV_OK *planp is the caller's
 * (drv_replay_plan_destroy). */
drv_err_t drv_replay_plan(rd_kafka_t *rk, const char *topic, int64_t from_ms,
                          const int32_t *fo_parts, const int64_t *fo_offsets,
                          size_t fo_cnt, int64_t to_ms, int timeout_ms,
                          drv_replay_plan_t **planp, char *errstr,
                          size_t errstr_size);

/* NULL is a no-op. */
void drv_replay_plan_destroy(drv_replay_plan_t *plan);

/* Describe `group` (Admin API): *membersp active members, state name into
 * state (>= 32 bytes). */
drv_err_t drv_replay_group_members(rd_kafka_t *rk, const char *group,
                                   int timeout_ms, int *membersp, char *state,
                                   size_t state_size, char *errstr,
                                   size_t errstr_size);

/* Set the group's committed offsets of topic to the plan's targets of
 * the selected partitions (AlterConsumerGroupOffsets).  The broker
 * refuses it for a group with members: the first partition error is
 * returned (DRV_ERR_KAFKA_RETRIABLE). */
drv_err_t drv_replay_apply(rd_kafka_t *rk, const char *group, const char *topic,
                           const drv_replay_plan_t *plan, int timeout_ms,
                           char *errstr, size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * Kafka helpers shared by the commands (dlq, replay, lag) and clients
 * ------------------------------------------------------------------------
 */

/* Partition count of `topic` from the cluster's metadata, or -1 with
 * errstr set.  *errp (may be NULL) gets the cause:
 * RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART when the topic does not exist,
 * a transport error when the cluster cannot be reached, else 0. */
int drv_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                              rd_kafka_resp_err_t *errp, char *errstr,
                              size_t errstr_size);

/* The partitioner of every drover client: murmur2 of the key modulo the
 * partition count, as Java's kafka-clients computes it
 * (BuiltInPartitioner.partitionForKey), random for a NULL key.  Tasks are
 * keyed by dataset and upstream producers are usually Java, so this keeps
 * a dataset's tasks on one partition whoever wrote them (librdkafka's own
 * default, consistent_random, is CRC32 and picks another partition for
 * most keys). */
#define DRV_KAFKA_PARTITIONER "murmur2_random"

/* A new librdkafka conf for a drover client: bootstrap.servers = brokers,
 * client.id = client_id, partitioner = DRV_KAFKA_PARTITIONER, and
 * librdkafka's log lines routed to drv_log (drv_kafka_log_cb).  Every
 * producer and consumer drover makes starts here.  NULL with errstr
 * (DRV_ERR_CONFIG) when librdkafka refuses a value; the caller owns the
 * conf (rd_kafka_new takes it on success). */
rd_kafka_conf_t *drv_kafka_conf_new(const char *brokers, const char *client_id,
                                    char *errstr, size_t errstr_size);

/* Check a user's librdkafka property (kafka.<name> in drover.yaml, -X,
 * DROVER_KAFKA_<NAME>) against the ones drv_kafka_conf_new() owns:
 * "partitioner" with any value but DRV_KAFKA_PARTITIONER is refused
 * (DRV_ERR_CONFIG, "<origin>: kafka.partitioner is set by drover ...").
 * DRV_OK for every other property. */
drv_err_t drv_kafka_prop_check(const char *origin, const char *name,
                               const char *value, char *errstr,
                               size_t errstr_size);

/* librdkafka's log callback (rd_kafka_conf_set_log_cb), for every drover
 * client: one drv_log line per librdkafka line, "librdkafka <client>
 * <facility>: <text>", syslog level 0-3 as error, 4-5 warn, 6 info, 7
 * debug.  rk may be NULL.  Called on librdkafka's threads: it touches
 * nothing but drv_log. */
void drv_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                      const char *buf);

#ifdef __cplusplus
}
#endif
#endif /* DRV_DLQ_H */
