/*
 * drover - transforms/: migration plans and their steps on PostgreSQL.
 *
 * Plans come from a catalog (a directory of catalog-info.yaml files, or a
 * Backstage backend's REST API), are validated statically before anything
 * touches data, and run step by step against PostgreSQL: each step in its
 * own transaction together with its ledger row, batched steps resumable
 * from their checkpoints, one runner per dataset (advisory lock), guarded
 * by the dataset's version.  DESIGN.md sections 5, 6 and 8.
 */
#ifndef DRV_TRANSFORMS_H
#define DRV_TRANSFORMS_H

#include "schema.h"

#include <jansson.h>
#include <stdatomic.h>
#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ------------------------------------------------------------------------
 * Entity refs: [kind:][namespace/]name, Backstage's rules.
 * ------------------------------------------------------------------------
 */
typedef struct drv_entity_ref_s {
        char kind[64];       /* lower-case; default "component" */
        char namespace_[64]; /* lower-case; default "default" */
        char name[256];      /* lower-case */
} drv_entity_ref_t;

/* Parse `ref`, filling defaults.  Returns DRV_OK or DRV_ERR_UNKNOWN_PLAN
 * (malformed ref) with errstr set. */
drv_err_t drv_entity_ref_parse(const char *ref, drv_entity_ref_t *out,
                               char *errstr, size_t errstr_size);
/* "kind:namespace/name" into out. */
void drv_entity_ref_format(const drv_entity_ref_t *ref, char *out,
                           size_t out_size);

/* Dataset names (a plan's spec.dataset, a task's dataset and record key):
 * 1 to DRV_DATASET_MAX letters, digits, '.', '_' or '-'.  1 if valid. */
#define DRV_DATASET_MAX 200
int drv_dataset_valid(const char *dataset);
/* drv_dataset_valid as an error: DRV_ERR_INVALID_PARAM with errstr naming
 * the dataset (NULL: "") and the rule, else DRV_OK. */
drv_err_t drv_dataset_check(const char *dataset, char *errstr,
                            size_t errstr_size);
/* A UUID in RFC 4122 text form, any version, either case.  1 if valid. */
int drv_uuid_valid(const char *s);
/* The checks of drover's own submission edges (`drover submit`,
 * POST /api/tasks): task_id a UUID (NULL: not given), entity_ref by
 * drv_entity_ref_parse, dataset by drv_dataset_valid (NULL: not given).
 * DRV_ERR_INVALID_PARAM with errstr naming the value and the rule broken.
 * The worker checks only the entity ref of the tasks it consumes: task
 * ids of other producers are taken as they come. */
drv_err_t drv_task_fields_check(const char *task_id, const char *entity_ref,
                                const char *dataset, char *errstr,
                                size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * Plans
 * ------------------------------------------------------------------------
 */
/* The ops a plan step may name.  Each has one row in the op table
 * (transforms/ops.c, drv_op_def in ops_int.h): name, fields, function,
 * inverse, batched, autocommit.  A new op is a value here and a row
 * there. */
typedef enum drv_op_e {
        DRV_OP_NONE = -1, /* no op: an unknown name, no inverse */
        DRV_OP_CREATE_TABLE,
        DRV_OP_ADD_COLUMN,
        DRV_OP_RENAME_COLUMN,
        DRV_OP_DROP_COLUMN,
        DRV_OP_ALTER_TYPE,
        DRV_OP_COPY_ROWS,
        DRV_OP_BACKFILL,
        DRV_OP_CREATE_INDEX,
        DRV_OP_VALIDATE,
        DRV_OP_SQL,
        DRV_OP__CNT
} drv_op_t;

/* "add_column" etc.; NULL for DRV_OP_NONE and other out-of-range ops. */
const char *drv_op_name(drv_op_t op);
/* The op named `name`; DRV_OP_NONE when unknown or NULL. */
drv_op_t drv_op_from_name(const char *name);
/* 1 for ops the runner drives batch by batch, each batch committed with
 * its checkpoint (copy_rows, backfill); 0 for the others and for
 * DRV_OP_NONE. */
int drv_op_is_batched(drv_op_t op);

typedef struct drv_step_s {
        int index; /* 0-based position in spec.steps */
        drv_op_t op;
        json_t *def;          /* the step as written (owned by the plan) */
        char fingerprint[65]; /* sha256 hex of the canonical definition */
        int line;             /* source line, 0 when unknown */
} drv_step_t;

/*
 * Throttling (throttle.c): gh-ost's throttle for batched steps.  Between
 * two batches of backfill / copy_rows the runner reads the checks that are
 * set (0 / NULL: off) and waits, polling every DRV_THROTTLE_POLL_MS, while
 * one says throttle:
 *   max_replica_lag_ms      greatest replay_lag of pg_stat_replication
 *                           above it (no replica: never);
 *   max_active_connections  more sessions of the database in state
 *                           'active' than it (the checking one not
 *                           counted);
 *   query                   a single SELECT (drv_throttle_query_valid)
 *                           returning one row, one boolean: true.
 * They run in one READ ONLY transaction with DRV_THROTTLE_STMT_MS of
 * statement_timeout, closed before the wait.
 */
#define DRV_THROTTLE_LAG_MAX  86400000L /* 24 h */
#define DRV_THROTTLE_CONN_MAX 100000L
#define DRV_THROTTLE_POLL_MS  1000
#define DRV_THROTTLE_STMT_MS  5000
#define DRV_THROTTLE_LOCK_MS  1000

typedef struct drv_throttle_s {
        long max_replica_lag_ms;     /* 0: no check */
        long max_active_connections; /* 0: no check */
        char *query;                 /* NULL: no check; owned by whoever
                                        filled the struct */
} drv_throttle_t;

/* 1 when `query` may be a throttle query: starts with SELECT, one
 * statement by the expression rules (drv_expr_valid: no ';' outside
 * quotes, no comments) and no $param.  Else 0 and `why` (may not be NULL)
 * holds the reason. */
int drv_throttle_query_valid(const char *query, char *why, size_t why_size);

/* 1 when `t` (may be NULL) has at least one check. */
int drv_throttle_is_set(const drv_throttle_t *t);

/* The throttle a plan runs with: each field the plan sets (> 0, non-NULL)
 * wins over the worker's, the others are the worker's.  `worker` and
 * `plan` may be NULL; out->query is borrowed from one of them. */
void drv_throttle_merge(const drv_throttle_t *worker,
                        const drv_throttle_t *plan, drv_throttle_t *out);

/* What one round of checks found. */
typedef struct drv_throttle_state_s {
        int throttled;
        char kind[32];    /* the check: "max_replica_lag_ms",
                             "max_active_connections" or "query" */
        char reason[320]; /* the value and the limit, one line */
} drv_throttle_state_t;

/* Run the checks of `t` on `conn` (which must have no transaction open)
 * in a READ ONLY transaction, rolled back before returning; the first
 * that says throttle fills *st.  A failed check (a throttle query's SQL
 * error, a result that is not one boolean) is its drv_db_error error
 * with errstr naming the throttle query; st->throttled is 0 then. */
drv_err_t drv_throttle_check(PGconn *conn, const drv_throttle_t *t,
                             drv_throttle_state_t *st, char sqlstate[6],
                             char *errstr, size_t errstr_size);

/* A parsed plan.  Plans are shared (catalog cache, executor threads):
 * reference-counted, immutable after creation. */
typedef struct drv_plan_s {
        char ref[400];    /* "component:default/name" */
        char *dataset;    /* spec.dataset */
        int from_version; /* spec.schemaVersion.from */
        int to_version;   /* spec.schemaVersion.to */
        drv_step_t *steps;
        size_t steps_cnt;
        char *etag;              /* metadata.etag, may be NULL */
        char fingerprint[65];    /* sha256 hex of the whole spec but
                                    requiresStaging */
        int requires_staging;    /* spec.requiresStaging: a production run
                                    needs this fingerprint done on staging */
        drv_throttle_t throttle; /* spec.throttle (query owned) */
        char *source;            /* file path or URL it came from */
        int line;                /* line of the document in source, or 0 */
        json_t *entity;          /* the whole entity (owned) */
        int refcnt;              /* atomic: drv_plan_retain / _release only */
} drv_plan_t;

/* Build a plan from an entity JSON object (Backstage shape).  Does not
 * take ownership of `entity` (it is copied).  `source` names where it came
 * from for messages.  Validates statically (see drv_plan_validate with
 * allow_sql=1: the raw-SQL policy is the runner's).  Returns
 * DRV_ERR_INVALID_PLAN with "source:line: message" on failure. */
drv_err_t drv_plan_from_json(const json_t *entity, const char *source,
                             drv_plan_t **planp, char *errstr,
                             size_t errstr_size);

/* Every migration-plan entity in a YAML file (several documents allowed).
 * On DRV_OK *plansp is a malloc'ed array of *cntp plans (each released
 * with drv_plan_release, the array with free).  Errors name file:line. */
drv_err_t drv_plan_load_file(const char *path, drv_plan_t ***plansp,
                             size_t *cntp, char *errstr, size_t errstr_size);

/* The plan's metadata.annotations["drover.io/queue"] (the tasks topic
 * whose workers may run it), or NULL when it has none. */
const char *drv_plan_queue(const drv_plan_t *plan);

/* DRV_OK when the plan may run on the workers of `queue` (their tasks
 * topic): it has no queue annotation, or that annotation is `queue`.
 * Else DRV_ERR_WRONG_QUEUE naming both. */
drv_err_t drv_plan_queue_check(const drv_plan_t *plan, const char *queue,
                               char *errstr, size_t errstr_size);

/* Static validation: known ops, required fields, identifiers, positive
 * batch sizes, from < to; `sql` steps refused unless allow_sql. */
drv_err_t drv_plan_validate(const drv_plan_t *plan, int allow_sql, char *errstr,
                            size_t errstr_size);

/* Reference counting.  release(NULL) is a no-op. */
drv_plan_t *drv_plan_retain(drv_plan_t *plan);
void drv_plan_release(drv_plan_t *plan);

/* Identifier rules of DESIGN.md section 5: [A-Za-z_][A-Za-z0-9_]*,
 * optionally one "schema." prefix.  1 if valid. */
int drv_ident_valid(const char *ident);

/* Every migration-plan entity in YAML text `buf` of `len` bytes (need not
 * be NUL-terminated); `source` names it in messages ("file:line: ...").
 * Ownership and errors as drv_plan_load_file.  Documents that are not
 * migration plans (other kinds, other spec.type) are skipped, so a
 * catalog-info.yaml can hold a whole system. */
drv_err_t drv_plan_load_buf(const char *buf, size_t len, const char *source,
                            drv_plan_t ***plansp, size_t *cntp, char *errstr,
                            size_t errstr_size);

/* Free an array returned by drv_plan_load_file / _buf: releases each plan
 * and frees the array.  NULL is a no-op. */
void drv_plan_array_free(drv_plan_t **plans, size_t cnt);

/* 1 if `entity` is a migration plan: kind Component (any case) and
 * spec.type "migration-plan". */
int drv_entity_is_plan(const json_t *entity);

/* The plan as JSON for `drover plan show --json` and the admin API:
 * {ref, dataset, from, to, fingerprint, requires_staging, etag, source,
 * throttle (spec.throttle as written, null when none),
 * steps:[{index, op, fingerprint, line, def}]}.  New reference, caller
 * json_decref()s; NULL on out of memory. */
json_t *drv_plan_to_json(const drv_plan_t *plan);

/*
 * Reading a step (the contract between plan validation and the runner).
 *
 * A step that reached the runner passed drv_plan_validate, so every
 * required field of its op's row in the op table (transforms/ops.c; field
 * kinds and their JSON types in ops_int.h) is present with the right JSON
 * type; optional fields may be absent (the getter returns the default).
 * All pointers are borrowed from the plan and live as long as the
 * caller's reference.
 *
 * Identifiers (table, column, key, name, from/to of rename) satisfy
 * drv_ident_valid; tables may be "schema.table", columns may not.  Quote
 * each part with PQescapeIdentifier.  Types satisfy drv_type_valid.
 * Expressions (copy_rows columns values, backfill set values, where, using,
 * string defaults, and a sql step's text) satisfy drv_expr_valid: plan-
 * author SQL read by one tokenizer (transforms/expr.c): '...' literals
 * ('' escapes, no backslash), dollar-quoted strings, "..." identifiers,
 * balanced parentheses, no ';' outside quotes, no comments, no E'...', no
 * positional $n.  An expression reaches task params only as
 * `$param:NAME` outside quotes (inside a literal it is text):
 * drv_expr_rewrite turns each into a positional placeholder whose value
 * the runner binds.  Task params are refused in `default` and `using`.
 * `default` may also be a JSON number or boolean (use
 * drv_step_scalar_text).
 * ------------------------------------------------------------------------
 */

/* Field `key` of the step definition, or NULL when absent. */
const json_t *drv_step_get(const drv_step_t *step, const char *key);
/* String field, or `dflt` when absent / not a string. */
const char *drv_step_str(const drv_step_t *step, const char *key,
                         const char *dflt);
/* Integer field, or `dflt` when absent / not an integer. */
long long drv_step_int(const drv_step_t *step, const char *key, long long dflt);
/* Boolean field (1/0), or `dflt` when absent / not a boolean. */
int drv_step_bool(const drv_step_t *step, const char *key, int dflt);
/* The batch size of copy_rows / backfill (default 1000). */
long long drv_step_batch_size(const drv_step_t *step);
/* The key column of copy_rows / backfill (default "id"). */
const char *drv_step_key(const drv_step_t *step);

/* Text of a scalar JSON value (string as is, integer, real, true/false)
 * into out; 0 on success, -1 for null / arrays / objects. */
int drv_step_scalar_text(const json_t *value, char *out, size_t out_size);

/* Column type grammar: words of [A-Za-z0-9_], spaces, "(n[,m])", "[]",
 * e.g. "numeric(10,2)", "timestamp with time zone", "text[]".  1 if valid. */
int drv_type_valid(const char *type);

/* Expression rules above.  1 if valid; else 0 and `why` (may be NULL)
 * holds the reason. */
int drv_expr_valid(const char *expr, char *why, size_t why_size);

/* One `$param:NAME` of an expression: byte offsets of the whole reference
 * [start, end) and of NAME. */
typedef struct drv_expr_ref_s {
        size_t start, end;
        size_t name, name_len;
} drv_expr_ref_t;

/* Tokenize `expr` (rules above): 1 if valid, filling refs[0..max-1] with
 * its param references in order and *cntp with how many there are (may
 * exceed max); else 0 with `why`.  Plan check and the SQL builder both
 * read expressions through this function only. */
int drv_expr_scan(const char *expr, drv_expr_ref_t *refs, size_t max,
                  size_t *cntp, char *why, size_t why_size);

/* The placeholder number (1..999) for param NAME (len bytes), 0 when the
 * task has no such param, -1 when no placeholder is left. */
typedef int(drv_expr_slot_fn)(void *arg, const char *name, size_t len);

/* Rewrite `expr` for execution: each `$param:NAME` outside quotes becomes
 * "$<n>", n from slot().  On DRV_OK *sqlp is malloc'ed (caller frees).
 * DRV_ERR_INVALID_PLAN when expr is not drv_expr_valid (or has too many
 * params), DRV_ERR_INVALID_PARAM when slot() does not know a NAME.
 * Messages name `what` (NULL: "expression"). */
drv_err_t drv_expr_rewrite(const char *expr, drv_expr_slot_fn *slot, void *arg,
                           const char *what, char **sqlp, char *errstr,
                           size_t errstr_size);

/* Placeholder values for one statement. */
#define DRV_BIND_MAX 64
typedef struct drv_bind_s {
        const char *values[DRV_BIND_MAX]; /* borrowed */
        const char *names[DRV_BIND_MAX];  /* param of each; NULL: caller's */
        int cnt;                          /* placeholders used so far */
} drv_bind_t;

/* Rewrite `expr` for execution: each `$param:NAME` becomes "$<n>" where n
 * continues from bind->cnt (the caller's own placeholders $1..$cnt come
 * first; set values[0..cnt-1] yourself), the same NAME reusing its n.
 * Values are borrowed from params.  On DRV_OK *sqlp is malloc'ed (caller
 * frees).  DRV_ERR_INVALID_PARAM when NAME is not among params (or too many
 * placeholders), DRV_ERR_INVALID_PLAN when expr is not drv_expr_valid. */
drv_err_t drv_expr_bind(const char *expr, const drv_param_t *params,
                        size_t params_cnt, drv_bind_t *bind, char **sqlp,
                        char *errstr, size_t errstr_size);

/* sha256 of `len` bytes as 64 lower-case hex digits + NUL. */
void drv_sha256_hex(const void *data, size_t len, char out[65]);

/*
 * ------------------------------------------------------------------------
 * Catalogs.  Thread-safe: executor threads resolve concurrently.
 * ------------------------------------------------------------------------
 */
typedef struct drv_catalog_s drv_catalog_t;

typedef struct drv_catalog_conf_s {
        const char *dir;             /* local catalog directory (default) */
        const char *backstage_url;   /* if set, use the REST API */
        const char *backstage_token; /* bearer, may be NULL */
        long connect_timeout_ms;     /* 0: 2000 */
        long timeout_ms;             /* 0: 10000 */
        long cache_ttl_ms;           /* 0: 30000; revalidate by etag after */
} drv_catalog_conf_t;

/* Create a catalog: the Backstage REST client when conf->backstage_url is
 * set, else the local directory conf->dir (scanned now, so errors in it
 * show at start; checked after cache_ttl_ms and on a miss, at most once a
 * second, by a stat walk, and re-parsed only when a file changed).  Strings are
 * copied.  NULL and errstr set on failure (no dir and no URL, dir unreadable).
 * A token is never logged. */
drv_catalog_t *drv_catalog_new(const drv_catalog_conf_t *conf, char *errstr,
                               size_t errstr_size);
/* Drops the cache (plans still referenced by callers stay valid).  NULL is
 * a no-op. */
void drv_catalog_destroy(drv_catalog_t *cat);

/* Counters, for tests and /metrics. */
typedef struct drv_catalog_stats_s {
        uint64_t hits;        /* served from cache within the TTL */
        uint64_t fetches;     /* HTTP requests / directory checks */
        uint64_t revalidated; /* fetched / checked, nothing changed */
        uint64_t stale;       /* served stale because the catalog failed */
} drv_catalog_stats_t;
void drv_catalog_stats(drv_catalog_t *cat, drv_catalog_stats_t *st);

/* Resolve an entity ref to a plan (a new reference the caller releases).
 * DRV_ERR_UNKNOWN_PLAN (malformed ref, not found, 404), DRV_ERR_INVALID_PLAN
 * (found but invalid), DRV_ERR_CATALOG_UNAVAILABLE (5xx, 401/403, timeout,
 * connection).  Cached by ref: within cache_ttl_ms the cached plan is
 * served; after it the entity is fetched again and, when metadata.etag is
 * unchanged, the cached plan is kept.  If that refetch fails transiently
 * the stale plan is served (logged at warn).  Safe from any thread. */
drv_err_t drv_catalog_resolve(drv_catalog_t *cat, const char *ref,
                              drv_plan_t **planp, char *errstr,
                              size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * drover's own tables (schema "drover"), created/upgraded idempotently.
 * ------------------------------------------------------------------------
 */

/* Connect with a short connect_timeout; DRV_ERR_DB_UNAVAILABLE on failure
 * (errstr never contains the password). */
drv_err_t drv_db_connect(const char *url, PGconn **connp, char *errstr,
                         size_t errstr_size);

/* Create or upgrade schema "drover" (versioned, under an advisory lock). */
drv_err_t drv_db_migrate(PGconn *conn, char *errstr, size_t errstr_size);

/* Map a failed PGresult / connection to a drv_err_t: a lost connection is
 * DRV_ERR_DB_UNAVAILABLE, else DRV_ERR_SQL (dlq/ classifies by SQLSTATE).
 * Copies the SQLSTATE into sqlstate[6] (empty when none). */
drv_err_t drv_db_error(PGconn *conn, const PGresult *res, char sqlstate[6],
                       char *errstr, size_t errstr_size);

/* Run one statement with text parameters (types inferred by the server)
 * through the extended protocol, so a statement can never be stacked:
 * the one "statement with parameters" helper of every module.  resp,
 * sqlstate may be NULL.  On DRV_OK and resp != NULL, *resp is the result
 * the caller PQclear()s; on failure nothing is left to free, *resp is
 * NULL and errstr/sqlstate are set (see drv_db_error). */
drv_err_t drv_db_exec(PGconn *conn, const char *sql, int nparams,
                      const char *const *params, PGresult **resp,
                      char sqlstate[6], char *errstr, size_t errstr_size);

/* The drv_err_t for a SQLSTATE: DRV_ERR_DB_UNAVAILABLE when !conn_ok, for
 * no SQLSTATE, class 08 and 57P01-57P03; DRV_ERR_LOCKED for 55P03
 * (lock_timeout); else DRV_ERR_SQL (dlq/ classifies the SQLSTATE). */
drv_err_t drv_db_sqlstate_err(const char *sqlstate, int conn_ok);

/*
 * ------------------------------------------------------------------------
 * drover.task_runs (task_runs.c): one row per task, its status, progress,
 * last error and the Kafka delivery it came from.  Every statement on the
 * table is one of these functions; its DDL is with the migrations (db.c).
 * Each returns DRV_OK, or the error of drv_db_error (errstr set) and
 * leaves nothing to free.  `conn` is the caller's; none of them opens or
 * ends a transaction.
 * ------------------------------------------------------------------------
 */

/* task_runs: status of one task.  Status is one of "queued", "running",
 * "throttled", "retrying", "done", "skipped", "dry_run", "dead". */
typedef struct drv_task_run_s {
        const char *task_id;
        const char *entity_ref;
        const char *dataset;
        const char *status;
        int attempts;
        int steps_total;
        int steps_done;
        int64_t rows_done;
        const char *worker;
        const char *last_error_json; /* jsonb text or NULL */
        int32_t partition;           /* < 0: keep the row's */
        int64_t offset;              /* < 0: keep the row's */
        const char *pending;         /* pending_status; NULL: keep */
        const char *topic;           /* kafka_topic; NULL: keep */
} drv_task_run_t;

/* Insert or update the task_runs row (started_at set on first
 * "running", completed_at on a final status, and committed_status = the
 * final status; "done", "skipped" and "dry_run" clear last_error).  NULL
 * strings keep the row's value.  DRV_ERR_INTERNAL
 * when run, its task_id or its status is NULL. */
drv_err_t drv_task_run_upsert(PGconn *conn, const drv_task_run_t *run,
                              char *errstr, size_t errstr_size);

/* The same for `cnt` rows in one statement (a task that appears more
 * than once: its last row). */
drv_err_t drv_task_runs_upsert(PGconn *conn, const drv_task_run_t *runs,
                               size_t cnt, char *errstr, size_t errstr_size);

/* `queued` rows for tasks that have no row yet (status, task id, entity
 * ref, dataset and the Kafka position of `runs`; their status ignored);
 * rows that exist are left alone.  One statement. */
drv_err_t drv_task_runs_queue(PGconn *conn, const drv_task_run_t *runs,
                              size_t cnt, char *errstr, size_t errstr_size);

/* Delete a task's row if it is still `queued` (a submission whose record
 * never reached Kafka). */
drv_err_t drv_task_run_unqueue(PGconn *conn, const char *task_id, char *errstr,
                               size_t errstr_size);

/* Progress of a `running` row: steps_done and rows_done only grow (the
 * greater of the row's and these); a row in another status is left
 * alone. */
drv_err_t drv_task_run_progress(PGconn *conn, const char *task_id,
                                int steps_done, int64_t rows_done, char *errstr,
                                size_t errstr_size);

/* A running task waits for its throttle (`reason`: which check, its
 * value and its limit; drv_throttle_state_t): status `throttled` with
 * throttle_reason; `reason` NULL: back to `running`, no reason.  Rows in
 * other statuses are left alone.  Every drv_task_run_upsert clears the
 * reason. */
drv_err_t drv_task_run_throttle(PGconn *conn, const char *task_id,
                                const char *reason, char *errstr,
                                size_t errstr_size);

/* Record the final status `pending` a task is about to commit to Kafka,
 * with the topic, partition and offset of its delivery.  *rowsp (may be
 * NULL): rows changed (0: no row yet). */
drv_err_t drv_task_run_set_pending(PGconn *conn, const char *task_id,
                                   const char *pending, const char *topic,
                                   int32_t partition, int64_t offset,
                                   long *rowsp, char *errstr,
                                   size_t errstr_size);

/* Rows of topic/partition with a pending status, still non-final, below
 * the group's committed offset or inside one of the `nranges` ranges of
 * final offsets above it (`bounds`: lo0, hi0, lo1, hi1, ..., inclusive;
 * the commit's metadata): their outcome committed, so set status =
 * pending (a done, skipped or dry_run one without last_error).  *rowsp
 * (may be NULL): rows settled. */
drv_err_t drv_task_runs_reconcile(PGconn *conn, const char *topic,
                                  int32_t partition, int64_t committed,
                                  const int64_t *bounds, size_t nranges,
                                  long *rowsp, char *errstr,
                                  size_t errstr_size);

/* What the worker needs of a task's row before running it: attempts
 * recorded (0 if unknown), so retries survive a restart or rebalance;
 * the first failure in ms since the epoch (0: none); *prior_donep = 1
 * when an outcome done or skipped of the task had committed
 * (committed_status, or status for rows older than that column).
 * committed_status, not status: a later delivery may have written the
 * row `running` and died before its own commit. */
drv_err_t drv_task_run_load(PGconn *conn, const char *task_id, int *attemptsp,
                            int64_t *first_failure_msp, int *prior_donep,
                            char *errstr, size_t errstr_size);

/* *existsp = 1 when drover.task_runs has a row for task_id (a task
 * drover has seen), else 0; 0 too when drover's schema does not exist
 * yet.  The submission edges refuse a caller's task_id that exists. */
drv_err_t drv_task_run_exists(PGconn *conn, const char *task_id, int *existsp,
                              char *errstr, size_t errstr_size);

/* `drover status`: the rows of `dataset` (NULL: all), newest first, at
 * most `limit` (<= 0: all).  On DRV_OK *resp is a tuples result the
 * caller PQclear()s, every value text, in these columns:
 *   0 dataset  1 status  2 started_at  3 completed_at (UTC "YYYY-MM-DD
 *   HH24:MI:SS", "" when NULL)  4 steps_done  5 steps_total  6 rows_done
 *   7 error class  8 error message ("" when none; a throttled row:
 *   "throttled" and its throttle reason)  9 task_id
 *   10 attempts  11 worker ("" when NULL)  12 kind ("migrate", or
 *   "rollback" for a rollback task). */
drv_err_t drv_task_runs_status(PGconn *conn, const char *dataset, long limit,
                               PGresult **resp, char *errstr,
                               size_t errstr_size);

/* Rows of `dataset` (NULL: all) still active (queued, running,
 * throttled, retrying) in *activep and final (done, skipped, dry_run, dead) in
 * *finalp; both 0 on failure. */
drv_err_t drv_task_runs_counts(PGconn *conn, const char *dataset, long *activep,
                               long *finalp, char *errstr, size_t errstr_size);

/* GET /api/migrations: at most `limit` whole rows, each with its "kind"
 * (as drv_task_runs_status's), as one JSON array text
 * (unfinished first, then by completion, newest first), filtered by
 * `dataset` and `status` (each NULL: any).  On DRV_OK *jsonp is
 * malloc'ed (caller frees); "[]" when schema drover or the table does
 * not exist yet (SQLSTATE 3F000, 42P01).  On failure *jsonp is NULL. */
drv_err_t drv_task_runs_json(PGconn *conn, const char *dataset,
                             const char *status, int limit, char **jsonp,
                             char *errstr, size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * Repair (repair.c): Flyway's repair for a dataset.  The unfinished rows
 * of drover.step_ledger (any status but done and skipped: running,
 * superseded, failed) are deleted and/or drover.datasets' version is set,
 * in one transaction under the dataset's runner lock, with one row of
 * drover.repair_audit (who, when, why, before and after).  The rules
 * live here; `drover repair` and /api/repair call them.
 * ------------------------------------------------------------------------
 */
#define DRV_REPAIR_REASON_MAX 500

typedef struct drv_repair_s {
        const char *dataset; /* drv_dataset_valid */
        int clear;           /* delete the unfinished ledger rows */
        int set_version;     /* 1: set the version to `version` */
        long version;        /* 0 .. INT32_MAX */
        const char *who;     /* execute: the audit row's who */
        const char *reason;  /* execute: 1 to DRV_REPAIR_REASON_MAX bytes,
                                not blank, no control characters */
} drv_repair_t;

/* What a repair changes, decided from the dataset's state. */
typedef struct drv_repair_plan_s {
        long delete_rows;  /* ledger rows it deletes */
        int set_version;   /* 1: the version moves from_version -> to */
        long from_version; /* -1: the dataset has no version */
        long to_version;
        int nothing; /* 1: nothing to repair (no audit row) */
} drv_repair_plan_t;

/* Check a request: dataset valid, version in range, and with `execute`
 * an action (clear and/or set_version) and a reason.
 * DRV_ERR_INVALID_PARAM with errstr naming the field and the rule, or
 * DRV_ERR_USAGE for an execute without an action or reason. */
drv_err_t drv_repair_check(const drv_repair_t *rp, int execute, char *errstr,
                           size_t errstr_size);

/* Decide what `rp` changes on a dataset whose version is `version`
 * (`known` 0: no drover.datasets row) with `rows` unfinished ledger rows.
 * Setting the version of an unknown dataset is DRV_ERR_INVALID_PARAM
 * (errstr set).  Pure: no SQL. */
drv_err_t drv_repair_decide(const drv_repair_t *rp, int known, long version,
                            long rows, drv_repair_plan_t *plan, char *errstr,
                            size_t errstr_size);

/* The dry run: the dataset's state and what an execute would change, as
 * a new JSON object in *outp (caller decrefs):
 *   {"dataset", "known", "version" (null when unknown), "updated_at",
 *    "rows": [every column of each unfinished ledger row],
 *    "active_tasks": queued/running/retrying tasks in task_runs,
 *    "would": {"delete_rows", "set_version" (null: unchanged),
 *    "nothing"}}
 * Without clear and set_version, "would" shows what clear would do.
 * Reads only.  On failure *outp is NULL. */
drv_err_t drv_repair_show(PGconn *conn, const drv_repair_t *rp, json_t **outp,
                          char *errstr, size_t errstr_size);

/* The repair, in one transaction on `conn` (which must have none open):
 * the dataset's runner lock is tried (transaction-scoped), the state
 * read, the rows deleted and/or the version set, and the audit row
 * written.  *outp (caller decrefs): {"repaired": bool, "id", "at",
 * "dataset", "who", "reason", "before", "after"} ("repaired" false and
 * no audit row when there was nothing to repair).  DRV_ERR_LOCKED when a
 * runner holds the dataset; the drv_repair_check / drv_repair_decide
 * errors; a database error.  On failure nothing changed and *outp is
 * NULL. */
drv_err_t drv_repair_execute(PGconn *conn, const drv_repair_t *rp,
                             json_t **outp, char *errstr, size_t errstr_size);

/* The audit rows of `dataset` (NULL: all), newest first, at most `limit`
 * (1 .. 1000), as a new JSON array in *outp (caller decrefs): {"id",
 * "dataset", "at", "who", "reason", "before", "after"}.  [] when the
 * table does not exist yet.  On failure *outp is NULL. */
drv_err_t drv_repair_history(PGconn *conn, const char *dataset, int limit,
                             json_t **outp, char *errstr, size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * Running a plan
 * ------------------------------------------------------------------------
 */
typedef enum drv_run_outcome_e {
        DRV_RUN_DONE,
        DRV_RUN_SKIPPED, /* dataset already at `to` and plan done */
        DRV_RUN_DRY_RUN,
        DRV_RUN_FAILED, /* see result.err / sqlstate */
} drv_run_outcome_t;

/* Throttle: called from the running thread while it waits between two
 * batches, once per poll.  `kind` and `reason` (drv_throttle_state_t)
 * say why it waits now; kind NULL: the wait is over (the checks cleared,
 * the run was cancelled or a check failed).  `waited_s` seconds were
 * just waited because of check `waited_kind` (NULL and 0 at the first
 * call of a wait). */
typedef void(drv_throttle_cb_t)(void *opaque, const char *kind,
                                const char *reason, const char *waited_kind,
                                double waited_s);

/* Progress: called after each batch / step from the running thread. */
typedef void(drv_progress_cb_t)(void *opaque, int step, const char *op,
                                int64_t rows_done, int64_t rows_total);

struct drv_run_result_s;
/* The caller's part of a one-transaction run (drv_plan_one_txn): called
 * inside the run's transaction once the outcome is known (res->outcome
 * DONE or SKIPPED), before its COMMIT, so that what it writes (the
 * worker's pending task_runs status) commits or rolls back with the
 * run's own work.  An error fails the run with it. */
typedef drv_err_t(drv_run_commit_cb_t)(void *opaque, PGconn *conn,
                                       const struct drv_run_result_s *res,
                                       char *errstr, size_t errstr_size);

typedef struct drv_run_opts_s {
        const char *task_id; /* idempotency key; required */
        const char *dataset; /* must match plan->dataset if set */
        int dry_run;
        const drv_param_t *params; /* bound parameters, never spliced */
        size_t params_cnt;
        int allow_sql;             /* permit `sql` steps */
        const char *worker;        /* for the ledger / task_runs */
        long lock_timeout_ms;      /* per statement; 0: 5000 */
        long statement_timeout_ms; /* per statement; 0: 60000 */
        long batch_pause_ms;       /* sleep between batches; 0: none */
        int wait_for_lock;         /* 1: wait for the dataset lock; 0: fail
                                      with DRV_ERR_LOCKED at once */
        /* set non-zero (by another thread or a signal handler) to stop
         * between batches; may be NULL */
        const atomic_int *cancel;
        drv_progress_cb_t *progress;
        void *progress_opaque;
        drv_run_commit_cb_t *on_commit; /* may be NULL */
        void *commit_opaque;
        /* the worker's throttle (may be NULL); the plan's spec.throttle
         * overrides it per field (drv_throttle_merge) */
        const drv_throttle_t *throttle;
        drv_throttle_cb_t *on_throttle; /* may be NULL */
        void *throttle_opaque;
} drv_run_opts_t;

typedef struct drv_run_result_s {
        drv_run_outcome_t outcome;
        drv_err_t err; /* DRV_OK unless FAILED */
        char sqlstate[6];
        int failed_step; /* -1 */
        char failed_op[32];
        int steps_total;
        int steps_done;    /* run now or found done in the ledger */
        int64_t rows;      /* rows affected (dry-run: would be visited) */
        int dry_unchecked; /* dry run: batched steps whose count / EXPLAIN
                              needs an earlier step's schema change */
        int one_txn;       /* ran in one transaction: on_commit's writes
                              committed with it when outcome is not FAILED */
        char errmsg[512];
} drv_run_result_t;

/* 1 when a run of `plan` takes the one-transaction path: not a dry run,
 * no batched step (backfill, copy_rows: they commit batch by batch) and
 * no step that cannot run in a transaction (CREATE INDEX CONCURRENTLY).
 * Then the dataset lock is transaction-scoped, the version guard, every
 * step with its ledger row, the version move and opts->on_commit share
 * one transaction, and nothing outlives it on the connection (safe
 * behind a transaction-pooling PgBouncer). */
int drv_plan_one_txn(const drv_plan_t *plan, int dry_run);

/* Run `plan` for opts->task_id on `conn`: dataset advisory lock, version
 * guard, steps with ledger.  Returns res->err as well. */
drv_err_t drv_plan_run(PGconn *conn, const drv_plan_t *plan,
                       const drv_run_opts_t *opts, drv_run_result_t *res);

/* *donep = how many steps of `plan` (by plan fingerprint) are done in
 * the ledger of `conn`, by any task: the plan completed there when that
 * is plan->steps_cnt (the version guard's rule).  A database without
 * drover's schema has done none.  sqlstate (may be NULL) as
 * drv_db_exec.  Reads only; *donep is 0 on failure. */
drv_err_t drv_plan_done_steps(PGconn *conn, const drv_plan_t *plan, int *donep,
                              char sqlstate[6], char *errstr,
                              size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * Rollback (rollback.c): undo a dataset's migrations down to a version
 * through each done step's inverse, derived from what its ledger row
 * recorded when it ran (drover.step_ledger.spec).  `drover rollback`,
 * POST /api/rollback and the worker (a rollback task) call these.
 * ------------------------------------------------------------------------
 */
/* A task is a rollback when its params carry DRV_ROLLBACK_TO_PARAM (the
 * target version, decimal); DRV_ROLLBACK_FROM_PARAM (optional) is the
 * version it was made at: a worker refuses it (version_conflict) when
 * the dataset is elsewhere by then.  drover's own rollback tasks name
 * entity ref "rollback:default/<dataset>" (DRV_ROLLBACK_KIND), so the
 * status shows their kind; the worker reads only the params. */
#define DRV_ROLLBACK_TO_PARAM   "drover.rollback_to"
#define DRV_ROLLBACK_FROM_PARAM "drover.rollback_from"
#define DRV_ROLLBACK_KIND       "rollback"

typedef struct drv_rollback_step_s {
        char task_id[128]; /* the forward task that ran it */
        int step;          /* its index in its plan */
        char op[32];
        char fingerprint[65];
        char plan_fingerprint[80];
        char plan[400];      /* the plan's ref ("fingerprint ..." when the
                                row has no spec) */
        int from, to;        /* the plan's versions */
        json_t *spec;        /* what it recorded; NULL: nothing (ran before
                                rollback support) */
        json_t *inverse;     /* {"op": action, ...}; NULL: irreversible */
        char why[256];       /* irreversible: why */
        char finished[32];   /* finished_at, sortable text */
        int nospec_in_chain; /* spec-less step of a plan being undone */
} drv_rollback_step_t;

typedef struct drv_rollback_s {
        char dataset[DRV_DATASET_MAX + 1];
        long version;    /* the dataset's; -1: no drover.datasets row */
        long to_version; /* the target */
        /* the steps above the target, newest plan and last step first:
         * the first undo_cnt have a spec and are undone, in this order;
         * the others are spec-less rows of unknown version */
        drv_rollback_step_t *steps;
        size_t steps_cnt, undo_cnt;
        char refusal[512]; /* why no rollback to the target can run
                              (versions, a gap in the recorded plans) */
} drv_rollback_t;

/* The inverse of a done step of op `op` from the spec its ledger row
 * recorded, by the op table's `invert` (transforms/ops.c): a new action
 * object in *invp (caller decrefs).  DRV_ERR_INVALID_PLAN with errstr
 * saying why when it has none (an irreversible op, a declared inverse
 * missing, no spec).  Pure: no SQL. */
drv_err_t drv_rollback_inverse(const char *op, const json_t *spec,
                               json_t **invp, char *errstr, size_t errstr_size);

/* Read what rolling `dataset` back to `to_version` undoes (reads only).
 * On DRV_OK *rbp is new (drv_rollback_destroy) and may still be refused:
 * see drv_rollback_check.  A bad dataset or version is
 * DRV_ERR_INVALID_PARAM; a database error its drv_db_error error. */
drv_err_t drv_rollback_plan(PGconn *conn, const char *dataset, long to_version,
                            drv_rollback_t **rbp, char *errstr,
                            size_t errstr_size);
void drv_rollback_destroy(drv_rollback_t *rb);

/* DRV_OK when `rb` can run; DRV_ERR_VERSION_CONFLICT for rb->refusal
 * (target not below the version, a gap in the recorded plans);
 * DRV_ERR_INVALID_PLAN naming the dataset, the plan and the first
 * (newest) step index:op that cannot be undone. */
drv_err_t drv_rollback_check(const drv_rollback_t *rb, char *errstr,
                             size_t errstr_size);

/* `rb` as a new JSON object (caller decrefs; NULL on out of memory):
 * {"dataset", "version", "to_version", "refusal" (absent when none),
 *  "steps": [{"plan", "task_id", "step", "op", "from", "to",
 *  "inverse" | "irreversible"}] in undo order}. */
json_t *drv_rollback_json(const drv_rollback_t *rb);

/* The entity ref of a rollback task for `rb`: the newest undone plan's
 * ref with kind DRV_ROLLBACK_KIND ("rollback:default/orders-v3"), into
 * out.  DRV_ERR_INVALID_PARAM when rb undoes nothing. */
drv_err_t drv_rollback_entity_ref(const drv_rollback_t *rb, char *out,
                                  size_t out_size, char *errstr,
                                  size_t errstr_size);

/* Whether `task` is a rollback: 1 with *top (the target) and *fromp
 * (the version it was made at, -1 when not given) from its params; 0
 * when it is not one; -1 when a param is not a version (0 to
 * 2147483647). */
int drv_rollback_task_versions(const drv_task_t *task, long *top, long *fromp);

/* Run a rollback task: opts->task_id, opts->dataset, to `to_version`,
 * refused when the dataset is not at `expect_from` (-1: any version).
 * One transaction: the dataset's runner lock (transaction-scoped),
 * drv_rollback_plan + drv_rollback_check, each inverse newest first with
 * its ledger row under opts->task_id (the forward row marked
 * rolled_back), the version moved, opts->on_commit, COMMIT.  A task
 * whose rollback rows exist is DONE at once (a redelivery).  A dry run
 * plans and checks only.  res as drv_plan_run's (res->one_txn unless a
 * dry run);
 * returns res->err. */
drv_err_t drv_rollback_run(PGconn *conn, const drv_run_opts_t *opts,
                           long to_version, long expect_from,
                           drv_run_result_t *res);

/*
 * ------------------------------------------------------------------------
 * The staging gate (staging.c): a plan with spec.requiresStaging runs in
 * production only after the same plan fingerprint completed on the
 * staging database.
 * ------------------------------------------------------------------------
 */

/* DRV_OK when `plan` does not require staging, or when it completed on
 * the staging database `staging` (drv_plan_done_steps).  Else
 * DRV_ERR_STAGING_REQUIRED naming the plan, its fingerprint prefix and
 * the `drover plan run --staging` command to run; also when `staging`
 * is NULL (no staging database configured).  A failed read returns its
 * drv_db_error error (DRV_ERR_DB_UNAVAILABLE for a lost connection: the
 * caller retries) with errstr "staging database: ..." and sqlstate (may
 * be NULL) set.  Reads only. */
drv_err_t drv_plan_staging_check(PGconn *staging, const drv_plan_t *plan,
                                 char sqlstate[6], char *errstr,
                                 size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* DRV_TRANSFORMS_H */
