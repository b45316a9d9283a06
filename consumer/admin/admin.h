/*
 * drover - consumer/admin/admin.h: metrics and the admin HTTP server.
 *
 * Metrics are process-wide atomic counters the worker updates from any
 * thread; the admin server (libmicrohttpd, its own threads) renders them
 * as Prometheus text at /metrics, answers /healthz, /readyz,
 * GET /api/migrations, POST /api/tasks, GET/POST /api/repair,
 * GET /api/repair/audit and serves the status page.
 * It never calls into the worker's Kafka handles: submissions go through
 * its own idempotent producer, the status table through its own PGconn.
 * DESIGN.md section 10.
 */
#ifndef DRV_ADMIN_H
#define DRV_ADMIN_H

#include "dlq.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ------------------------------------------------------------------------
 * Metrics (thread-safe, lock-free or briefly locked; cheap to call)
 * ------------------------------------------------------------------------
 */

/* A task reached an outcome: "done", "skipped", "dry_run", "dead" (and
 * "retry" for a transient failure that will be retried).  `seconds` is
 * its processing time (observed in drover_task_duration_seconds for the
 * final outcomes). */
void drv_metrics_task(const char *outcome, double seconds);
/* Rows written by steps (drover_step_rows_total). */
void drv_metrics_step_rows(int64_t rows);
/* A dead letter of `error_class` was committed (drover_dlq_total). */
void drv_metrics_dlq(const char *error_class);
/* `seconds` a batched step waited for its throttle check `kind`
 * ("max_replica_lag_ms", "max_active_connections", "query"):
 * drover_throttled_seconds_total{reason="<kind>"}. */
void drv_metrics_throttled(const char *kind, double seconds);
/* A Kafka transaction committed / aborted. */
void drv_metrics_txn_commit(void);
void drv_metrics_txn_abort(void);
/* Gauges. */
void drv_metrics_set_inflight(int n);
void drv_metrics_set_paused(int n);
/* Per-partition consumer lag (from statistics or watermarks); lag < 0
 * removes the series (partition revoked). */
void drv_metrics_set_lag(const char *topic, int32_t partition, int64_t lag);

/* Render every metric as Prometheus text exposition format into a new
 * malloc'ed string (caller frees); NULL on out of memory. */
char *drv_metrics_render(void);

/* Zero every metric and forget every labelled series (tests). */
void drv_metrics_reset(void);

/* Escape a label value for the text format (backslash, double quote,
 * newline) into out (always NUL-terminated, truncated to fit); returns
 * the length written. */
size_t drv_metrics_escape_label(const char *value, char *out, size_t out_size);

/* Readiness as the worker sees it: member of the group with an
 * assignment, and the database reachable. */
void drv_admin_set_ready(int has_assignment, int db_ok);
/* What drv_admin_set_ready last stored; both 0 until it is called. */
void drv_admin_get_ready(int *has_assignmentp, int *db_okp);

/*
 * ------------------------------------------------------------------------
 * The admin HTTP server
 * ------------------------------------------------------------------------
 */
typedef struct drv_admin_conf_s {
        const char *listen;        /* "127.0.0.1:9464" (default); "" off;
                                      ":PORT" is loopback, "*:PORT" any */
        const char *token;         /* bearer for POST /api/tasks; NULL:
                                      submissions refused (403) */
        const char *database_url;  /* for GET /api/migrations */
        const char *brokers;       /* for POST /api/tasks */
        const char *topic;         /* tasks topic */
        drv_schema_store_t *store; /* encoder for submissions (not owned) */
        drv_catalog_t *catalog;    /* resolves the entity of submissions:
                                      404 unknown, dataset derived (not
                                      owned); NULL: dataset required */
        const char *kafka_extra;   /* unused unless set: reserved */
} drv_admin_conf_t;

typedef struct drv_admin_s drv_admin_t;

/* Start the server on its own threads (one per connection, at most 128
 * and 64 per client address; 32 KiB of headers, 64 KiB of body, 5 s to
 * send a complete request and a 10 s idle timeout; past 32 connections
 * still sending a request, a new one closes the oldest).  /readyz and
 * /api/migrations give the database 1.5 s, then answer 503.
 * conf may be NULL (all defaults: 127.0.0.1:9464, no database, no
 * submissions).  The strings of conf are copied; conf->store is borrowed
 * and must outlive the server (NULL: the server creates its own when
 * brokers are set).  Callers honour listen "" (disabled) by not calling
 * this.  Returns NULL and fills errstr when the address is malformed or
 * cannot be bound, or the submission producer cannot be configured. */
drv_admin_t *drv_admin_start(const drv_admin_conf_t *conf, char *errstr,
                             size_t errstr_size);
/* Stop and free.  NULL is a no-op. */
void drv_admin_stop(drv_admin_t *admin);

/* The TCP port the server listens on (useful with port 0 in `listen`);
 * -1 for NULL. */
int drv_admin_port(const drv_admin_t *admin);

#ifdef __cplusplus
}
#endif
#endif /* DRV_ADMIN_H */
