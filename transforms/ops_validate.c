/*
 * drover - transforms/ops_validate.c: the validate op.
 *
 * validate {not_null: ["table.col" | "schema.table.col", ...],
 *           row_count_equal?: [t1, t2],
 *           checksum_equal?: {tables: [t1, t2], columns: [c, ...],
 *                             key?: "id"}}
 *
 * A failed check is DRV_ERR_SQL with an integrity SQLSTATE (23502 for
 * not-null, 23000 for counts and checksums), so dlq/ files it permanent
 * like the constraint violation it is.  Only reads: dry-run is the same.
 */
#include "db_int.h"

#include <stdio.h>
#include <string.h>

drv_err_t drv_ops_scalar(drv_op_ctx_t *ctx, drv_sql_t *sql, char *out,
                         size_t out_size, char *errstr, size_t errstr_size);

static drv_err_t val_fail(drv_op_ctx_t *ctx, const char *state, char *errstr,
                          size_t errstr_size, const char *what) {
        snprintf(ctx->sqlstate, sizeof(ctx->sqlstate), "%s", state);
        return drv_err_set(errstr, errstr_size, DRV_ERR_SQL,
                           "validation failed: %s (sqlstate %s)", what, state);
}

/* "t.c" or "s.t.c": split the last part off as the column. */
static drv_err_t val_not_null(drv_op_ctx_t *ctx, const char *ref, char *errstr,
                              size_t errstr_size) {
        char table[200], count[32], what[300];
        const char *dot = ref ? strrchr(ref, '.') : NULL;
        drv_sql_t sql;
        drv_err_t err;

        if (!dot || (size_t)(dot - ref) >= sizeof(table))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "invalid not_null reference \"%.64s\" "
                                   "(want table.column)",
                                   ref ? ref : "(missing)");
        snprintf(table, sizeof(table), "%.*s", (int)(dot - ref), ref);
        drv_sql_init(&sql);
        drv_sql_add(&sql, "SELECT count(*) FROM ");
        err =
            drv_sql_ident(&sql, ctx->conn, table, "table", errstr, errstr_size);
        drv_sql_add(&sql, " WHERE ");
        if (!err)
                err = drv_sql_ident(&sql, ctx->conn, dot + 1, "column", errstr,
                                    errstr_size);
        drv_sql_add(&sql, " IS NULL");
        if (!err)
                err = drv_ops_scalar(ctx, &sql, count, sizeof(count), errstr,
                                     errstr_size);
        drv_sql_free(&sql);
        if (!err && strcmp(count, "0")) {
                snprintf(what, sizeof(what), "%s rows of %.200s are null",
                         count, ref);
                err = val_fail(ctx, "23502", errstr, errstr_size, what);
        }
        return err;
}

/* One aggregate over a table: count(*) or an ordered md5 of columns. */
static drv_err_t val_aggregate(drv_op_ctx_t *ctx, const char *table,
                               const json_t *cols, const char *key, char *out,
                               size_t out_size, char *errstr,
                               size_t errstr_size) {
        const json_t *col;
        drv_sql_t sql;
        drv_err_t err = DRV_OK;
        size_t i;

        drv_sql_init(&sql);
        if (!cols) {
                drv_sql_add(&sql, "SELECT count(*)");
        } else {
                drv_sql_add(&sql, "SELECT coalesce(md5(string_agg(md5(row(");
                json_array_foreach(cols, i, col) {
                        drv_sql_add(&sql, "%s", i ? ", " : "");
                        if (!err)
                                err = drv_sql_ident(
                                    &sql, ctx->conn, json_string_value(col),
                                    "column", errstr, errstr_size);
                }
                drv_sql_add(&sql, ")::text), '' ORDER BY ");
                if (!err)
                        err = drv_sql_ident(&sql, ctx->conn, key, "key", errstr,
                                            errstr_size);
                drv_sql_add(&sql, ")), '')");
        }
        drv_sql_add(&sql, " FROM ");
        if (!err)
                err = drv_sql_ident(&sql, ctx->conn, table, "table", errstr,
                                    errstr_size);
        if (!err)
                err = drv_ops_scalar(ctx, &sql, out, out_size, errstr,
                                     errstr_size);
        drv_sql_free(&sql);
        return err;
}

/* Compare an aggregate over two tables. */
static drv_err_t val_pair(drv_op_ctx_t *ctx, const json_t *tables,
                          const json_t *cols, const char *key, const char *what,
                          char *errstr, size_t errstr_size) {
        char a[64], b[64], msg[300];
        const char *t1 = json_string_value(json_array_get(tables, 0));
        const char *t2 = json_string_value(json_array_get(tables, 1));
        drv_err_t err;

        if (json_array_size(tables) != 2 || !t1 || !t2 ||
            (cols && !json_array_size(cols)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "invalid %s (want two tables%s)", what,
                                   cols ? " and columns" : "");
        if ((err = val_aggregate(ctx, t1, cols, key, a, sizeof(a), errstr,
                                 errstr_size)) ||
            (err = val_aggregate(ctx, t2, cols, key, b, sizeof(b), errstr,
                                 errstr_size)))
                return err;
        if (strcmp(a, b)) {
                snprintf(msg, sizeof(msg), "%s: %.64s has %s, %.64s has %s",
                         what, t1, a, t2, b);
                return val_fail(ctx, "23000", errstr, errstr_size, msg);
        }
        return DRV_OK;
}

drv_err_t drv_op_validate(drv_op_ctx_t *ctx, char *errstr, size_t errstr_size) {
        const json_t *def = ctx->step->def, *nn, *v, *ck;
        const char *key;
        drv_err_t err = DRV_OK;
        size_t i;

        nn = json_object_get(def, "not_null");
        json_array_foreach(nn, i, v) {
                if ((err = val_not_null(ctx, json_string_value(v), errstr,
                                        errstr_size)))
                        return err;
        }
        if ((v = json_object_get(def, "row_count_equal")) &&
            (err = val_pair(ctx, v, NULL, NULL, "row_count_equal", errstr,
                            errstr_size)))
                return err;
        if ((ck = json_object_get(def, "checksum_equal"))) {
                key = json_string_value(json_object_get(ck, "key"));
                if (!json_is_array(json_object_get(ck, "columns")))
                        return drv_err_set(errstr, errstr_size,
                                           DRV_ERR_INVALID_PLAN,
                                           "checksum_equal needs columns");
                err = val_pair(ctx, json_object_get(ck, "tables"),
                               json_object_get(ck, "columns"), key ? key : "id",
                               "checksum_equal", errstr, errstr_size);
        }
        return err;
}
