/*
 * drover - consumer/admin/admin_int.h: request-handling helpers of the admin
 * server, private to consumer/admin/ (and to its unit tests and fuzz target).
 *
 * Everything here is pure: no sockets, no Kafka, no PostgreSQL, so it can
 * be unit-tested and fuzzed byte by byte.
 */
#ifndef DRV_ADMIN_INT_H
#define DRV_ADMIN_INT_H

#include "admin.h"

#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest POST /api/tasks body accepted (413 beyond). */
#define DRV_ADMIN_BODY_MAX (64 * 1024)
/* Longest filter value, entity ref, dataset, param key or value. */
#define DRV_ADMIN_FIELD_MAX 512
/* Most params in one submitted task. */
#define DRV_ADMIN_PARAMS_MAX 64

typedef enum drv_admin_route_e {
        DRV_ADMIN_ROUTE_NOT_FOUND,
        DRV_ADMIN_ROUTE_METHOD_NOT_ALLOWED,
        DRV_ADMIN_ROUTE_METRICS,
        DRV_ADMIN_ROUTE_HEALTHZ,
        DRV_ADMIN_ROUTE_READYZ,
        DRV_ADMIN_ROUTE_MIGRATIONS,
        DRV_ADMIN_ROUTE_TASKS,
        DRV_ADMIN_ROUTE_REPAIR_SHOW,  /* GET /api/repair: the dry run */
        DRV_ADMIN_ROUTE_REPAIR,       /* POST /api/repair (bearer token) */
        DRV_ADMIN_ROUTE_REPAIR_AUDIT, /* GET /api/repair/audit */
        DRV_ADMIN_ROUTE_ROLLBACK,     /* POST /api/rollback (bearer token) */
        DRV_ADMIN_ROUTE_STATIC,       /* GET of a file of the status page */
} drv_admin_route_t;

/* Route a request by method and path (the URL without its query; a query
 * left in `url` is ignored).  Either may be NULL (-> NOT_FOUND).  HEAD is
 * accepted wherever GET is.  Never fails otherwise. */
drv_admin_route_t drv_admin_route(const char *method, const char *url);

/* 1 if `s` (len bytes) is valid UTF-8 without control characters and no
 * longer than DRV_ADMIN_FIELD_MAX: what a filter value, entity ref,
 * dataset or param may be. */
int drv_admin_text_valid(const char *s, size_t len);

/* 1 if the Authorization header value `header` (may be NULL) is
 * "Bearer <expected>" (scheme case-insensitive).  The token comparison
 * takes the same time wherever the first difference is.  0 when
 * `expected` is NULL or empty. */
int drv_admin_bearer_ok(const char *expected, const char *header);

/* Parse a POST /api/tasks body (len bytes, need not be NUL-terminated):
 *   {"queue": Q?, "payload": {"entity_ref": R, "dataset"?: D,
 *    "task_id"?: UUID, "dry_run"?: bool, "params"?: {k: "v", ...}}}
 * `queue`, when present, must equal `topic` (may be NULL: any queue).
 * task_id, entity_ref and dataset pass drv_task_fields_check.  On DRV_OK
 * *taskp is a new task the caller destroys: requested_at now,
 * requested_by `requested_by` (NULL: "admin-api"), task_id and dataset
 * NULL when the body has none (the server makes the id and derives the
 * dataset from the plan).  On failure returns DRV_ERR_INVALID_PARAM (or
 * DRV_ERR_NOMEM) and fills errstr with a line naming the offending field
 * and the rule it breaks; *taskp is NULL. */
drv_err_t drv_admin_parse_task_body(const char *body, size_t len,
                                    const char *topic, const char *requested_by,
                                    drv_task_t **taskp, char *errstr,
                                    size_t errstr_size);

/* Parse a POST /api/repair body (len bytes, need not be NUL-terminated):
 *   {"dataset": D, "reason": R, "clear_failed"?: bool,
 *    "set_version"?: N (integer, null: none)}
 * with at least one action, no other field, and drv_repair_check's rules.
 * On DRV_OK *rootp is the parsed body (caller decrefs) and rp's strings
 * point into it; rp->who is left NULL for the caller.  On failure
 * DRV_ERR_INVALID_PARAM (or DRV_ERR_NOMEM) with errstr naming the field
 * and the rule it breaks; *rootp NULL. */
drv_err_t drv_admin_parse_repair_body(const char *body, size_t len,
                                      drv_repair_t *rp, json_t **rootp,
                                      char *errstr, size_t errstr_size);

/* A POST /api/rollback request. */
typedef struct drv_admin_rollback_s {
        const char *dataset; /* drv_dataset_valid */
        long to_version;     /* 0 .. INT32_MAX */
        int execute;         /* 0: the dry run */
        const char *task_id; /* execute: the task's id; NULL: a new one */
} drv_admin_rollback_t;

/* Parse a POST /api/rollback body (len bytes, need not be
 * NUL-terminated):
 *   {"dataset": D, "to_version": N, "execute"?: bool, "task_id"?: UUID}
 * and no other field.  On DRV_OK *rootp is the parsed body (caller
 * decrefs) and rq's strings point into it.  On failure
 * DRV_ERR_INVALID_PARAM (or DRV_ERR_NOMEM) with errstr naming the field
 * and the rule it breaks; *rootp NULL. */
drv_err_t drv_admin_parse_rollback_body(const char *body, size_t len,
                                        drv_admin_rollback_t *rq,
                                        json_t **rootp, char *errstr,
                                        size_t errstr_size);

/* The requested_by of tasks submitted with `token`: "token:" and the
 * first 8 hex digits of its SHA-256, a stable label that names the token
 * without revealing it.  out needs 15 bytes. */
void drv_admin_token_label(const char *token, char out[15]);

/* Parse an admin listen address "host:port" into *sa: host is an IPv4
 * address, "localhost", or "*" / "0.0.0.0" for every address; an empty
 * host (":9464") means loopback, never every address.  Port 0 picks a
 * free one.  DRV_ERR_CONFIG and errstr naming `listen` otherwise. */
drv_err_t drv_admin_parse_listen(const char *listen, struct sockaddr_in *sa,
                                 char *errstr, size_t errstr_size);

/* Content type for a static file name by its extension. */
const char *drv_admin_mime_type(const char *name);

/* The status page's files, embedded at build time (web_assets.c,
 * generated from consumer/admin/web/).  NULL when `name` ("index.html",
 * "app.js", ...) is not one of them. */
typedef struct drv_web_asset_s {
        const char *name;
        const unsigned char *data;
        size_t len;
} drv_web_asset_t;

const drv_web_asset_t *drv_web_asset_find(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* DRV_ADMIN_INT_H */
