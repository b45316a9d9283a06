/*
 * drover - dlq/: error classes, backoff, dead-letter records, redrive and
 * replay.
 *
 * Classification happens here, once: every failure another module reports
 * (a drv_err_t, plus a SQLSTATE for SQL errors, or a librdkafka error) is
 * mapped by one table to a route (retry / dead letter / fatal) and to the
 * `drover.error.class` name written in dead-letter headers.
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

/* Classify a librdkafka transactional API error object: retriable ->
 * RETRY, txn_requires_abort -> DEAD is not used: returns route RETRY with
 * name "txn_abortable" for abortable, FATAL for fatal. */
drv_class_t drv_dlq_classify_kafka(const rd_kafka_error_t *error);

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

/* Delay before retry number `attempt` (1 = first retry): uniform random in
 * [0, min(max_delay, initial * multiplier^(attempt-1))].  `rng` is the
 * caller's state (seed it non-zero). */
int64_t drv_backoff_delay_ms(const drv_backoff_conf_t *conf, int attempt,
                             uint64_t *rng);

/* 1 if no further retry is allowed after `attempts` failures, the first at
 * first_failure_ms, now being now_ms. */
int drv_backoff_exhausted(const drv_backoff_conf_t *conf, int attempts,
                          int64_t first_failure_ms, int64_t now_ms);

/*
 * ------------------------------------------------------------------------
 * Dead-letter records (DESIGN.md section 7)
 * ------------------------------------------------------------------------
 */
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
 * rd_kafka_producev(RD_KAFKA_V_HEADERS()) which takes it). */
rd_kafka_headers_t *drv_dlq_headers_new(const drv_dlq_info_t *info);

/* Parse drover.* headers back into `info` (missing ones left zero).
 * Returns DRV_OK, or DRV_ERR_DECODE if a numeric header is malformed. */
drv_err_t drv_dlq_headers_parse(const rd_kafka_headers_t *hdrs,
                                drv_dlq_info_t *info, char *errstr,
                                size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* DRV_DLQ_H */
