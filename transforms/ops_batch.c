/*
 * drover - transforms/ops_batch.c: the batched ops, backfill and copy_rows.
 *
 * One batch is one statement, run by run.c inside its own short
 * transaction:
 *
 *   WITH hi AS (SELECT coalesce(
 *          (SELECT k FROM t WHERE k > $lo ORDER BY k OFFSET $n-1 LIMIT 1),
 *          (SELECT max(k) FROM t WHERE k > $lo)) AS k),
 *        u AS (UPDATE t SET c = (expr) WHERE k > $lo
 *              AND k <= (SELECT k FROM hi) [AND (where)] RETURNING 1)
 *   UPDATE drover.step_ledger SET checkpoint = {"last": hi}, rows += |u|
 *    WHERE task_id = $t AND step = $s AND hi IS NOT NULL
 *   RETURNING checkpoint->>'last', |u|
 *
 * Range-bounded keyset: the batch's upper key is found first on the index,
 * then the UPDATE touches exactly (lo, hi] (measured ~3x faster than
 * joining a LIMIT subquery).  The batch and its checkpoint commit together,
 * so a crash either keeps both or neither, and the next run resumes after
 * the checkpoint without touching a row twice.  No row returned means no
 * rows were left.  The first batch has no lower bound.
 *
 * Keys must be NOT NULL and unique (a primary key): rows with a NULL key
 * are never visited.
 */
#include "db_int.h"

#include <stdio.h>
#include <string.h>

typedef enum { BK_FIRST, BK_NEXT, BK_DRY, BK_DRY_NEXT, BK_COUNT } bk_kind_t;

typedef struct bk_s {
        drv_op_ctx_t *ctx;
        drv_sql_t *sql;
        const char *src; /* table scanned by key */
        const char *key;
        int has_lo;
        char *errstr;
        size_t errstr_size;
        drv_err_t err;
} bk_t;

static void bk_ident(bk_t *bk, const char *ident, const char *what) {
        if (!bk->err)
                bk->err = drv_sql_ident(bk->sql, bk->ctx->conn, ident, what,
                                        bk->errstr, bk->errstr_size);
}

static void bk_expr(bk_t *bk, const char *expr, const char *what) {
        if (!bk->err)
                bk->err = drv_sql_expr(bk->sql, expr, bk->ctx->opts, what,
                                       bk->errstr, bk->errstr_size);
}

/* "k > $1 AND " when there is a lower bound ($1 is always lo). */
static void bk_lower(bk_t *bk) {
        if (!bk->has_lo)
                return;
        bk_ident(bk, bk->key, "key");
        drv_sql_add(bk->sql, " > $1 AND ");
}

/* WITH hi AS (...), binding the batch offset. */
static void bk_hi(bk_t *bk, drv_batch_t *b) {
        drv_sql_add(bk->sql, "WITH hi AS (SELECT coalesce((SELECT ");
        bk_ident(bk, bk->key, "key");
        drv_sql_add(bk->sql, " FROM ");
        bk_ident(bk, bk->src, "table");
        drv_sql_add(bk->sql, " WHERE ");
        bk_lower(bk);
        drv_sql_add(bk->sql, "true ORDER BY ");
        bk_ident(bk, bk->key, "key");
        drv_sql_add(bk->sql, " OFFSET $%d LIMIT 1), (SELECT max(",
                    drv_sql_bind(bk->sql, b->offset_str));
        bk_ident(bk, bk->key, "key");
        drv_sql_add(bk->sql, ") FROM ");
        bk_ident(bk, bk->src, "table");
        drv_sql_add(bk->sql, " WHERE ");
        bk_lower(bk);
        drv_sql_add(bk->sql, "true)) AS k), u AS (");
}

/* The ledger update that ends a batch statement. */
static void bk_ledger(bk_t *bk, drv_batch_t *b) {
        int t = drv_sql_bind(bk->sql, bk->ctx->opts->task_id);
        int s = drv_sql_bind(bk->sql, b->step_str);

        drv_sql_add(bk->sql,
                    " RETURNING 1) UPDATE drover.step_ledger SET"
                    " checkpoint = jsonb_build_object('last', (SELECT k FROM"
                    " hi)), rows = rows + (SELECT count(*) FROM u)"
                    " WHERE task_id = $%d AND step = $%d::int AND (SELECT k"
                    " FROM hi) IS NOT NULL RETURNING checkpoint->>'last',"
                    " (SELECT count(*) FROM u)",
                    t, s);
}

/* SET c1 = (e1), ... and, for dry runs, the "would change" filter. */
static void bk_set_list(bk_t *bk, const json_t *set, int distinct) {
        const char *col;
        json_t *expr;
        int first = 1;

        json_object_foreach((json_t *)set, col, expr) {
                drv_sql_add(bk->sql, "%s",
                            first      ? ""
                            : distinct ? " OR "
                                       : ", ");
                bk_ident(bk, col, "column");
                drv_sql_add(bk->sql, distinct ? " IS DISTINCT FROM " : " = ");
                bk_expr(bk, json_string_value(expr), "set");
                first = 0;
        }
}

static void bk_backfill(bk_t *bk, drv_batch_t *b, bk_kind_t kind) {
        const json_t *def = bk->ctx->step->def;
        const json_t *set = json_object_get(def, "set");
        const char *where = json_string_value(json_object_get(def, "where"));

        if (kind == BK_COUNT) {
                drv_sql_add(bk->sql, "SELECT count(*) FROM ");
                bk_ident(bk, bk->src, "table");
                drv_sql_add(bk->sql, " WHERE true");
        } else {
                if (kind == BK_FIRST || kind == BK_NEXT)
                        bk_hi(bk, b);
                drv_sql_add(bk->sql, "UPDATE ");
                bk_ident(bk, bk->src, "table");
                drv_sql_add(bk->sql, " SET ");
                bk_set_list(bk, set, 0);
                drv_sql_add(bk->sql, " WHERE ");
                bk_lower(bk);
                if (kind == BK_FIRST || kind == BK_NEXT) {
                        bk_ident(bk, bk->key, "key");
                        drv_sql_add(bk->sql, " <= (SELECT k FROM hi)");
                } else {
                        drv_sql_add(bk->sql, "(");
                        bk_set_list(bk, set, 1);
                        drv_sql_add(bk->sql, ")");
                }
        }
        if (where) {
                drv_sql_add(bk->sql, " AND ");
                bk_expr(bk, where, "where");
        }
        if (kind == BK_FIRST || kind == BK_NEXT)
                bk_ledger(bk, b);
}

static void bk_copy_rows(bk_t *bk, drv_batch_t *b, bk_kind_t kind) {
        const json_t *cols = json_object_get(bk->ctx->step->def, "columns");
        const char *where =
            json_string_value(json_object_get(bk->ctx->step->def, "where"));
        const char *col;
        json_t *expr;
        int first = 1;

        if (kind == BK_COUNT) {
                drv_sql_add(bk->sql, "SELECT count(*) FROM ");
                bk_ident(bk, bk->src, "table");
                drv_sql_add(bk->sql, " WHERE ");
                bk_expr(bk, where ? where : "true", "where");
                return;
        }
        if (kind == BK_FIRST || kind == BK_NEXT)
                bk_hi(bk, b);
        drv_sql_add(bk->sql, "INSERT INTO ");
        bk_ident(bk,
                 json_string_value(json_object_get(bk->ctx->step->def, "to")),
                 "table");
        drv_sql_add(bk->sql, " (");
        json_object_foreach((json_t *)cols, col, expr) {
                drv_sql_add(bk->sql, "%s", first ? "" : ", ");
                bk_ident(bk, col, "column");
                first = 0;
        }
        drv_sql_add(bk->sql, ") SELECT ");
        first = 1;
        json_object_foreach((json_t *)cols, col, expr) {
                drv_sql_add(bk->sql, "%s", first ? "" : ", ");
                bk_expr(bk, json_string_value(expr), "columns");
                first = 0;
        }
        drv_sql_add(bk->sql, " FROM ");
        bk_ident(bk, bk->src, "table");
        drv_sql_add(bk->sql, " WHERE ");
        bk_lower(bk);
        if (where) {
                bk_expr(bk, where, "where");
                drv_sql_add(bk->sql, " AND ");
        }
        if (kind == BK_FIRST || kind == BK_NEXT) {
                bk_ident(bk, bk->key, "key");
                drv_sql_add(bk->sql, " <= (SELECT k FROM hi) ORDER BY ");
                bk_ident(bk, bk->key, "key");
                bk_ledger(bk, b);
        } else {
                drv_sql_add(bk->sql, "true");
        }
}

static drv_err_t bk_build(drv_op_ctx_t *ctx, drv_batch_t *b, bk_kind_t kind,
                          drv_sql_t *sql, char *errstr, size_t errstr_size) {
        const json_t *def = ctx->step->def;
        int copy = ctx->step->op == DRV_OP_COPY_ROWS;
        const char *key = json_string_value(json_object_get(def, "key"));
        bk_t bk = {ctx, sql,    NULL,        key ? key : "id",
                   0,   errstr, errstr_size, DRV_OK};

        bk.src =
            json_string_value(json_object_get(def, copy ? "from" : "table"));
        bk.has_lo = kind == BK_NEXT || kind == BK_DRY_NEXT;
        if (bk.has_lo)
                drv_sql_bind(sql, NULL); /* $1: lo, set per batch */
        if (copy)
                bk_copy_rows(&bk, b, kind);
        else
                bk_backfill(&bk, b, kind);
        if (!bk.err && sql->oom)
                bk.err = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                     "out of memory building sql");
        return bk.err;
}

/* Shape checks the SQL builder cannot make. */
static drv_err_t bk_check(drv_op_ctx_t *ctx, drv_batch_t *b, char *errstr,
                          size_t errstr_size) {
        const json_t *def = ctx->step->def;
        int copy = ctx->step->op == DRV_OP_COPY_ROWS;
        const json_t *map = json_object_get(def, copy ? "columns" : "set");
        const json_t *bs = json_object_get(def, "batch_size");
        const char *col;
        json_t *v;

        if (!json_is_object(map) || !json_object_size(map))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "missing or invalid field \"%s\"",
                                   copy ? "columns" : "set");
        json_object_foreach((json_t *)map, col, v) {
                if (!json_is_string(v))
                        return drv_err_set(errstr, errstr_size,
                                           DRV_ERR_INVALID_PLAN,
                                           "expression for \"%.64s\" is not "
                                           "a string",
                                           col);
        }
        b->batch_size = bs ? (long)json_integer_value(bs) : 5000;
        if (b->batch_size < 1 || b->batch_size > 10000000)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "batch_size must be 1..10000000");
        return DRV_OK;
}

drv_err_t drv_op_batch_build(drv_op_ctx_t *ctx, drv_batch_t *b, char *errstr,
                             size_t errstr_size) {
        drv_err_t err;

        memset(b, 0, sizeof(*b));
        drv_sql_init(&b->first);
        drv_sql_init(&b->next);
        drv_sql_init(&b->count);
        drv_sql_init(&b->dry);
        drv_sql_init(&b->dry_next);
        if ((err = bk_check(ctx, b, errstr, errstr_size)))
                return err;
        snprintf(b->step_str, sizeof(b->step_str), "%d", ctx->step->index);
        snprintf(b->offset_str, sizeof(b->offset_str), "%ld",
                 b->batch_size - 1);
        if ((err =
                 bk_build(ctx, b, BK_FIRST, &b->first, errstr, errstr_size)) ||
            (err = bk_build(ctx, b, BK_NEXT, &b->next, errstr, errstr_size)) ||
            (err = bk_build(ctx, b, BK_DRY, &b->dry, errstr, errstr_size)) ||
            (err = bk_build(ctx, b, BK_DRY_NEXT, &b->dry_next, errstr,
                            errstr_size)) ||
            (err = bk_build(ctx, b, BK_COUNT, &b->count, errstr, errstr_size)))
                drv_op_batch_free(b);
        return err;
}

void drv_op_batch_free(drv_batch_t *b) {
        if (!b)
                return;
        drv_sql_free(&b->first);
        drv_sql_free(&b->next);
        drv_sql_free(&b->count);
        drv_sql_free(&b->dry);
        drv_sql_free(&b->dry_next);
}
