/*
 * drover - transforms/db_int.h: private to transforms/ (db.c, run.c,
 * ops*.c).  Not a public header: other modules use transforms.h.
 */
#ifndef DRV_DB_INT_H
#define DRV_DB_INT_H

#include "transforms.h"

/* Advisory lock class (two-int form: DRV_RUN_LOCK_CLASS,
 * hashtext(dataset)) of a dataset's runner (run.c); repair.c takes the
 * same lock. */
#define DRV_RUN_LOCK_CLASS 0x64727673 /* "drvs": dataset locks */

/* In the open transaction of `conn`: the runner lock of `dataset` for
 * the transaction, waited for (`wait`) or tried, and lock_timeout
 * `lock_ms` for the rest of it (run.c's one-transaction path and
 * rollback.c).  DRV_ERR_LOCKED with errstr naming the dataset when tried
 * and held; a database error with sqlstate (may be NULL) set. */
drv_err_t drv_dataset_txn_lock(PGconn *conn, const char *dataset, int wait,
                               long lock_ms, char sqlstate[6], char *errstr,
                               size_t errstr_size);

/* drv_db_exec without parameters or result. */
drv_err_t drv_db_cmd(PGconn *conn, const char *sql, char *errstr,
                     size_t errstr_size);
/* BEGIN plus SET LOCAL lock_timeout / statement_timeout (ms).  On failure
 * the transaction is rolled back. */
drv_err_t drv_db_begin(PGconn *conn, long lock_timeout_ms,
                       long statement_timeout_ms, char *errstr,
                       size_t errstr_size);
/* COMMIT; on failure the transaction is rolled back. */
drv_err_t drv_db_commit(PGconn *conn, char *errstr, size_t errstr_size);
/* ROLLBACK if a transaction is open; never fails. */
void drv_db_rollback(PGconn *conn);

/*
 * ------------------------------------------------------------------------
 * SQL text builder: identifiers quoted, values only as $n parameters.
 * ------------------------------------------------------------------------
 */
#define DRV_SQL_MAX_PARAMS 64

typedef struct drv_sql_s {
        char *buf;
        size_t len, cap;
        int oom;
        const char *params[DRV_SQL_MAX_PARAMS]; /* borrowed values */
        int nparams;
} drv_sql_t;

void drv_sql_init(drv_sql_t *sql);
/* Free the text; NULL-safe.  Parameter values are borrowed. */
void drv_sql_free(drv_sql_t *sql);
/* Reset the text, keeping the parameters. */
void drv_sql_clear_text(drv_sql_t *sql);
/* Append printf-formatted text (our own constant SQL only). */
void drv_sql_add(drv_sql_t *sql, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append `ident` validated ([A-Za-z_][A-Za-z0-9_]*, optionally
 * schema.name) and quoted part by part with PQescapeIdentifier.
 * DRV_ERR_INVALID_PLAN naming `what` when invalid. */
drv_err_t drv_sql_ident(drv_sql_t *sql, PGconn *conn, const char *ident,
                        const char *what, char *errstr, size_t errstr_size);
/* Append a plan expression in parentheses, read by drv_expr_rewrite
 * (expr.c, the tokenizer plan check uses too): each `$param:NAME` outside
 * quotes becomes a new $n bound to the task param NAME
 * (DRV_ERR_INVALID_PARAM when missing); inside a literal it stays text.
 * Refused (DRV_ERR_INVALID_PLAN) when not drv_expr_valid. */
drv_err_t drv_sql_expr(drv_sql_t *sql, const char *expr,
                       const drv_run_opts_t *opts, const char *what,
                       char *errstr, size_t errstr_size);
/* Bind one more value; returns its $n number, or -1 when full. */
int drv_sql_bind(drv_sql_t *sql, const char *value);
/* 1 if `type` looks like a SQL type name (letters, digits, _, spaces,
 * dots, [], and (n[,m]) modifiers) and nothing else. */
int drv_sql_type_valid(const char *type);

/*
 * ------------------------------------------------------------------------
 * Ops (ops*.c): one entry per op.
 * ------------------------------------------------------------------------
 */
typedef struct drv_op_ctx_s {
        PGconn *conn;
        const drv_step_t *step;
        const drv_run_opts_t *opts;
        const drv_plan_t *plan;
        int check_only; /* build and validate only: no SQL is sent */
        int dry_run;    /* inside a transaction the runner rolls back */
        int64_t rows;   /* out: rows affected (dry-run: would be) */
        char sqlstate[6];
        /* out: what a rollback needs that the step does not say,
         * recorded in the step's ledger spec (alter_type: the column's
         * type before; "" when none) */
        char old_type[128];
} drv_op_ctx_t;

/* A non-batched op: runs inside the step transaction the runner opened
 * (or, with check_only, builds its SQL without sending it). */
typedef drv_err_t(drv_op_fn_t)(drv_op_ctx_t *ctx, char *errstr,
                               size_t errstr_size);

/* The function for an op (its op table row's, ops_int.h), or NULL.
 * Batched ops (drv_op_is_batched) run through drv_op_batch_build(). */
drv_op_fn_t *drv_op_fn(drv_op_t op);

/* 1 when the step must run outside a transaction: its op's row names an
 * autocommit field (create_index: concurrently) that is true in the step,
 * and this is not a dry run. */
int drv_op_needs_autocommit(const drv_step_t *step, int dry_run);

/* The statements of a batched step (ops_batch.c).  In `next` and
 * `dry_next`, $1 is the lower bound (the checkpoint): run.c sets
 * params[0] before each call. */
typedef struct drv_batch_s {
        drv_sql_t first;    /* one batch + checkpoint, no lower bound */
        drv_sql_t next;     /* one batch + checkpoint after $1 */
        drv_sql_t count;    /* total rows, for progress */
        drv_sql_t dry;      /* dry-run: all rows that would change */
        drv_sql_t dry_next; /* dry-run after a checkpoint $1 */
        char step_str[16];
        char offset_str[24]; /* batch_size - 1 */
        long batch_size;
} drv_batch_t;

/* Build the statements of a batched step (no SQL sent). */
drv_err_t drv_op_batch_build(drv_op_ctx_t *ctx, drv_batch_t *b, char *errstr,
                             size_t errstr_size);
void drv_op_batch_free(drv_batch_t *b);

#endif /* DRV_DB_INT_H */
