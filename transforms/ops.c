/*
 * drover - transforms/ops.c: the non-batched ops on PostgreSQL.
 *
 * One function per op.  Each builds its statement(s) from the step's JSON
 * (identifiers quoted, types checked, values bound) and, unless
 * ctx->check_only, runs them inside the transaction the runner opened for
 * the step.  DDL is written to be idempotent (IF [NOT] EXISTS, a rename
 * that already happened is a no-op), so a step re-run after a crash
 * between its commit and the worker's bookkeeping does no harm.
 * copy_rows and backfill are batched: see ops_batch.c.
 *
 * The op table at the end of this file is the one place that names the
 * ops: every other file reads it (see ops_int.h).
 */
#include "ops_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_ERRLEN 256

/* The string field `name` of the step, or NULL. */
static const char *ops_str(const drv_op_ctx_t *ctx, const char *name) {
        return json_string_value(json_object_get(ctx->step->def, name));
}

static drv_err_t ops_missing(const char *field, char *errstr,
                             size_t errstr_size) {
        return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                           "missing or invalid field \"%s\"", field);
}

/* Run `sql` (unless check_only), adding affected rows to ctx->rows. */
static drv_err_t ops_run(drv_op_ctx_t *ctx, drv_sql_t *sql, char *errstr,
                         size_t errstr_size) {
        PGresult *res;
        drv_err_t err;
        const char *n;

        if (sql->oom)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory building sql");
        if (ctx->check_only)
                return DRV_OK;
        err = drv_db_exec(ctx->conn, sql->buf, sql->nparams, sql->params, &res,
                          ctx->sqlstate, errstr, errstr_size);
        if (err)
                return err;
        n = PQcmdTuples(res);
        if (n && *n)
                ctx->rows += strtoll(n, NULL, 10);
        PQclear(res);
        return DRV_OK;
}

/* Run a query returning one bigint (count), 0 when check_only. */
static drv_err_t ops_scalar(drv_op_ctx_t *ctx, drv_sql_t *sql, char *out,
                            size_t out_size, char *errstr, size_t errstr_size) {
        PGresult *res;
        drv_err_t err;

        snprintf(out, out_size, "0");
        if (sql->oom)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory building sql");
        if (ctx->check_only)
                return DRV_OK;
        err = drv_db_exec(ctx->conn, sql->buf, sql->nparams, sql->params, &res,
                          ctx->sqlstate, errstr, errstr_size);
        if (err)
                return err;
        snprintf(out, out_size, "%s",
                 PQntuples(res) && !PQgetisnull(res, 0, 0)
                     ? PQgetvalue(res, 0, 0)
                     : "");
        PQclear(res);
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * create_table {table, columns:[{name, type, primary_key?, not_null?}]}
 * ------------------------------------------------------------------------
 */
static drv_err_t ops_default(drv_op_ctx_t *ctx, drv_sql_t *sql,
                             const json_t *def, char *errstr,
                             size_t errstr_size);

static drv_err_t ops_column_def(drv_op_ctx_t *ctx, drv_sql_t *sql,
                                const json_t *col, char *errstr,
                                size_t errstr_size) {
        const char *type = json_string_value(json_object_get(col, "type"));
        drv_err_t err;

        err = drv_sql_ident(sql, ctx->conn,
                            json_string_value(json_object_get(col, "name")),
                            "column", errstr, errstr_size);
        if (err)
                return err;
        if (!drv_sql_type_valid(type))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "invalid column type \"%.64s\"",
                                   type ? type : "(missing)");
        drv_sql_add(sql, " %s", type);
        if (json_is_true(json_object_get(col, "not_null")))
                drv_sql_add(sql, " NOT NULL");
        if (json_is_true(json_object_get(col, "unique")))
                drv_sql_add(sql, " UNIQUE");
        return ops_default(ctx, sql, json_object_get(col, "default"), errstr,
                           errstr_size);
}

static drv_err_t op_create_table(drv_op_ctx_t *ctx, char *errstr,
                                 size_t errstr_size) {
        const json_t *cols = json_object_get(ctx->step->def, "columns");
        const json_t *col;
        drv_sql_t sql, pk;
        size_t i;
        int npk = 0;
        drv_err_t err;

        if (!json_array_size(cols))
                return ops_missing("columns", errstr, errstr_size);
        drv_sql_init(&sql);
        drv_sql_init(&pk);
        drv_sql_add(&sql, "CREATE TABLE IF NOT EXISTS ");
        err = drv_sql_ident(&sql, ctx->conn, ops_str(ctx, "table"), "table",
                            errstr, errstr_size);
        drv_sql_add(&sql, " (");
        json_array_foreach(cols, i, col) {
                if (err)
                        break;
                drv_sql_add(&sql, "%s", i ? ", " : "");
                err = ops_column_def(ctx, &sql, col, errstr, errstr_size);
                if (err || !json_is_true(json_object_get(col, "primary_key")))
                        continue;
                drv_sql_add(&pk, "%s", npk++ ? ", " : "");
                err = drv_sql_ident(
                    &pk, ctx->conn,
                    json_string_value(json_object_get(col, "name")), "column",
                    errstr, errstr_size);
        }
        if (!err && npk && pk.buf)
                drv_sql_add(&sql, ", PRIMARY KEY (%s)", pk.buf);
        drv_sql_add(&sql, ")");
        if (!err)
                err = ops_run(ctx, &sql, errstr, errstr_size);
        drv_sql_free(&sql);
        drv_sql_free(&pk);
        return err;
}

/* Start `sql` with "ALTER TABLE <table><clause>", the table quoted from
 * the step's "table" field.  On failure errstr is set and `sql` must
 * still be freed by the caller. */
static drv_err_t ops_alter_table(drv_op_ctx_t *ctx, drv_sql_t *sql,
                                 const char *clause, char *errstr,
                                 size_t errstr_size) {
        drv_err_t err;

        drv_sql_add(sql, "ALTER TABLE ");
        err = drv_sql_ident(sql, ctx->conn, ops_str(ctx, "table"), "table",
                            errstr, errstr_size);
        drv_sql_add(sql, "%s", clause);
        return err;
}

/* "ALTER TABLE <table><clause><column>", the column from "column". */
static drv_err_t ops_alter_column(drv_op_ctx_t *ctx, drv_sql_t *sql,
                                  const char *clause, char *errstr,
                                  size_t errstr_size) {
        drv_err_t err = ops_alter_table(ctx, sql, clause, errstr, errstr_size);

        if (!err)
                err = drv_sql_ident(sql, ctx->conn, ops_str(ctx, "column"),
                                    "column", errstr, errstr_size);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * add_column {table, column:{name, type, default?}}
 *
 * DDL takes no bound parameters: a default is an expression (checked like
 * every expression, task params refused) or a JSON number / boolean.
 * ------------------------------------------------------------------------
 */
static drv_err_t ops_default(drv_op_ctx_t *ctx, drv_sql_t *sql,
                             const json_t *def, char *errstr,
                             size_t errstr_size) {
        int nparams = sql->nparams;
        drv_err_t err;

        if (!def || json_is_null(def))
                return DRV_OK;
        if (json_is_integer(def))
                drv_sql_add(sql, " DEFAULT %lld",
                            (long long)json_integer_value(def));
        else if (json_is_real(def))
                drv_sql_add(sql, " DEFAULT %.17g", json_real_value(def));
        else if (json_is_boolean(def))
                drv_sql_add(sql, " DEFAULT %s",
                            json_is_true(def) ? "true" : "false");
        else if (!json_is_string(def))
                return ops_missing("default", errstr, errstr_size);
        if (!json_is_string(def))
                return DRV_OK;
        drv_sql_add(sql, " DEFAULT ");
        err = drv_sql_expr(sql, json_string_value(def), ctx->opts, "default",
                           errstr, errstr_size);
        if (!err && sql->nparams != nparams)
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                  "task params are not allowed in a column "
                                  "default");
        return err;
}

static drv_err_t op_add_column(drv_op_ctx_t *ctx, char *errstr,
                               size_t errstr_size) {
        const json_t *col = json_object_get(ctx->step->def, "column");
        drv_sql_t sql;
        drv_err_t err;

        if (!json_is_object(col))
                return ops_missing("column", errstr, errstr_size);
        drv_sql_init(&sql);
        err = ops_alter_table(ctx, &sql, " ADD COLUMN IF NOT EXISTS ", errstr,
                              errstr_size);
        if (!err)
                err = ops_column_def(ctx, &sql, col, errstr, errstr_size);
        if (!err)
                err = ops_run(ctx, &sql, errstr, errstr_size);
        drv_sql_free(&sql);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * rename_column {table, from, to}: a no-op when `from` is gone and `to`
 * exists (it already ran).
 * ------------------------------------------------------------------------
 */
/* The table named by $1 ("[schema.]table", quoted as the DDL quotes
 * it), as a regclass (NULL when there is none). */
#define OPS_REGCLASS_1                                                  \
        "to_regclass(quote_ident(split_part($1, '.', 1)) || CASE WHEN " \
        "strpos($1, '.') > 0 THEN '.' || quote_ident(split_part($1, "   \
        "'.', 2)) ELSE '' END)"

static drv_err_t ops_column_exists(drv_op_ctx_t *ctx, const char *table,
                                   const char *column, int *existsp,
                                   char *errstr, size_t errstr_size) {
        const char *params[2] = {table, column};
        PGresult *res;
        drv_err_t err;

        *existsp = 0;
        if (ctx->check_only)
                return DRV_OK;
        /* to_regclass resolves the name exactly as the DDL will (search
         * path, case folding of unquoted names does not apply: our names
         * are quoted, so compare them as written). */
        err = drv_db_exec(
            ctx->conn,
            "SELECT 1 FROM pg_attribute WHERE attrelid = " OPS_REGCLASS_1
            " AND attname = $2 AND NOT attisdropped",
            2, params, &res, ctx->sqlstate, errstr, errstr_size);
        if (err)
                return err;
        *existsp = PQntuples(res) > 0;
        PQclear(res);
        return DRV_OK;
}

static drv_err_t op_rename_column(drv_op_ctx_t *ctx, char *errstr,
                                  size_t errstr_size) {
        const char *table = ops_str(ctx, "table");
        const char *from = ops_str(ctx, "from"), *to = ops_str(ctx, "to");
        int from_exists, to_exists;
        drv_sql_t sql;
        drv_err_t err;

        drv_sql_init(&sql);
        if ((err = ops_alter_table(ctx, &sql, " RENAME COLUMN ", errstr,
                                   errstr_size)))
                goto done;
        if ((err = drv_sql_ident(&sql, ctx->conn, from, "column", errstr,
                                 errstr_size)))
                goto done;
        drv_sql_add(&sql, " TO ");
        if ((err = drv_sql_ident(&sql, ctx->conn, to, "column", errstr,
                                 errstr_size)) ||
            (err = ops_column_exists(ctx, table, from, &from_exists, errstr,
                                     errstr_size)) ||
            (err = ops_column_exists(ctx, table, to, &to_exists, errstr,
                                     errstr_size)))
                goto done;
        if (!ctx->check_only && !from_exists && to_exists)
                goto done; /* already renamed */
        err = ops_run(ctx, &sql, errstr, errstr_size);
done:
        drv_sql_free(&sql);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * drop_column {table, column}
 * ------------------------------------------------------------------------
 */
static drv_err_t op_drop_column(drv_op_ctx_t *ctx, char *errstr,
                                size_t errstr_size) {
        drv_sql_t sql;
        drv_err_t err;

        drv_sql_init(&sql);
        err = ops_alter_column(ctx, &sql, " DROP COLUMN IF EXISTS ", errstr,
                               errstr_size);
        if (!err)
                err = ops_run(ctx, &sql, errstr, errstr_size);
        drv_sql_free(&sql);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * alter_type {table, column, type, using?, revert_using?}.  USING is an
 * expression (revert_using is the rollback's, see rollback.c); DDL
 * cannot bind parameters, so $param is refused there.
 * ------------------------------------------------------------------------
 */
/* The column's type as format_type() spells it, into ctx->old_type, for
 * the rollback of the step (the only op whose inverse needs what the
 * step does not say).  Not in check_only; "" for a missing column. */
static drv_err_t ops_old_type(drv_op_ctx_t *ctx, char *errstr,
                              size_t errstr_size) {
        const char *params[2] = {ops_str(ctx, "table"), ops_str(ctx, "column")};
        PGresult *res;
        drv_err_t err;

        ctx->old_type[0] = '\0';
        if (ctx->check_only || ctx->dry_run)
                return DRV_OK;
        err = drv_db_exec(ctx->conn,
                          "SELECT format_type(atttypid, atttypmod) FROM"
                          " pg_attribute WHERE attrelid = " OPS_REGCLASS_1
                          " AND attname = $2 AND NOT attisdropped",
                          2, params, &res, ctx->sqlstate, errstr, errstr_size);
        if (err)
                return err;
        if (PQntuples(res) == 1)
                snprintf(ctx->old_type, sizeof(ctx->old_type), "%s",
                         PQgetvalue(res, 0, 0));
        PQclear(res);
        return DRV_OK;
}

static drv_err_t op_alter_type(drv_op_ctx_t *ctx, char *errstr,
                               size_t errstr_size) {
        const char *type = ops_str(ctx, "type"), *use = ops_str(ctx, "using");
        drv_sql_t sql;
        drv_err_t err;

        drv_sql_init(&sql);
        err =
            ops_alter_column(ctx, &sql, " ALTER COLUMN ", errstr, errstr_size);
        if (!err && ops_str(ctx, "table") && ops_str(ctx, "column"))
                err = ops_old_type(ctx, errstr, errstr_size);
        if (!err && !drv_sql_type_valid(type))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                  "invalid column type \"%.64s\"",
                                  type ? type : "(missing)");
        if (!err)
                drv_sql_add(&sql, " TYPE %s", type);
        if (!err && use) {
                drv_sql_add(&sql, " USING ");
                err = drv_sql_expr(&sql, use, ctx->opts, "using", errstr,
                                   errstr_size);
                if (!err && sql.nparams)
                        err = drv_err_set(errstr, errstr_size,
                                          DRV_ERR_INVALID_PLAN,
                                          "task params are not allowed in "
                                          "alter_type using");
        }
        if (!err)
                err = ops_run(ctx, &sql, errstr, errstr_size);
        drv_sql_free(&sql);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * create_index {table, name, columns:[...], unique?, concurrently?}
 *
 * A failed CREATE INDEX CONCURRENTLY (duplicates under unique, a timeout)
 * leaves an INVALID index behind, which IF NOT EXISTS would then take for
 * done.  So: an index of that name that is not valid and ready is dropped
 * before the build; a failed build drops its leftover (best effort) and
 * fails the step with PostgreSQL's error; and a step is done only when
 * the index is valid afterwards.
 * ------------------------------------------------------------------------
 */
enum { IDX_NONE, IDX_VALID, IDX_INVALID };

/* The state of index `name` in the schema of the step's table, and that
 * schema (into nsp). */
static drv_err_t ops_index_state(drv_op_ctx_t *ctx, const char *name,
                                 int *statep, char *nsp, size_t nsp_size,
                                 char *errstr, size_t errstr_size) {
        const char *params[2] = {ops_str(ctx, "table"), name};
        PGresult *res;
        drv_err_t err;

        *statep = IDX_NONE;
        err = drv_db_exec(ctx->conn,
                          "SELECT n.nspname, ix.indisvalid AND ix.indisready"
                          " FROM pg_class c JOIN pg_index ix ON ix.indexrelid"
                          " = c.oid JOIN pg_namespace n ON n.oid ="
                          " c.relnamespace WHERE c.relname = $2 AND"
                          " c.relnamespace = (SELECT relnamespace FROM"
                          " pg_class WHERE oid = " OPS_REGCLASS_1 ")",
                          2, params, &res, ctx->sqlstate, errstr, errstr_size);
        if (err)
                return err;
        if (PQntuples(res) == 1) {
                snprintf(nsp, nsp_size, "%s", PQgetvalue(res, 0, 0));
                *statep = !strcmp(PQgetvalue(res, 0, 1), "t") ? IDX_VALID
                                                              : IDX_INVALID;
        }
        PQclear(res);
        return DRV_OK;
}

/* Drop index `name` when it is there but not valid and ready. */
static drv_err_t ops_index_drop_invalid(drv_op_ctx_t *ctx, const char *name,
                                        int concurrently, char *errstr,
                                        size_t errstr_size) {
        char nsp[128], *qn;
        drv_sql_t sql;
        drv_err_t err;
        int state;

        if ((err = ops_index_state(ctx, name, &state, nsp, sizeof(nsp), errstr,
                                   errstr_size)) ||
            state != IDX_INVALID)
                return err;
        if (!(qn = PQescapeIdentifier(ctx->conn, nsp, strlen(nsp))))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "cannot quote identifier");
        drv_sql_init(&sql);
        drv_sql_add(&sql, "DROP INDEX %sIF EXISTS %s.",
                    concurrently ? "CONCURRENTLY " : "", qn);
        PQfreemem(qn);
        err =
            drv_sql_ident(&sql, ctx->conn, name, "index", errstr, errstr_size);
        if (!err)
                err = ops_run(ctx, &sql, errstr, errstr_size);
        drv_sql_free(&sql);
        return err;
}

/* Run the CREATE INDEX, around it the checks above. */
static drv_err_t ops_index_build(drv_op_ctx_t *ctx, drv_sql_t *sql,
                                 const char *name, char *errstr,
                                 size_t errstr_size) {
        int conc = drv_op_needs_autocommit(ctx->step, ctx->dry_run), state;
        char keep[6], nsp[128];
        drv_err_t err;

        if (ctx->check_only)
                return ops_run(ctx, sql, errstr, errstr_size);
        if ((err =
                 ops_index_drop_invalid(ctx, name, conc, errstr, errstr_size)))
                return err;
        if ((err = ops_run(ctx, sql, errstr, errstr_size))) {
                /* a failed concurrent build leaves its index behind: drop
                 * it, keeping the build's error (a transaction's build
                 * rolls back with it) */
                if (conc) {
                        char why[OPS_ERRLEN];
                        memcpy(keep, ctx->sqlstate, sizeof(keep));
                        (void)ops_index_drop_invalid(ctx, name, 1, why,
                                                     sizeof(why));
                        memcpy(ctx->sqlstate, keep, sizeof(keep));
                }
                return err;
        }
        if ((err = ops_index_state(ctx, name, &state, nsp, sizeof(nsp), errstr,
                                   errstr_size)))
                return err;
        if (state != IDX_VALID)
                return drv_err_set(errstr, errstr_size, DRV_ERR_SQL,
                                   "index \"%.64s\" is %s after create_index",
                                   name,
                                   state == IDX_NONE ? "missing" : "not valid");
        return DRV_OK;
}

static drv_err_t op_create_index(drv_op_ctx_t *ctx, char *errstr,
                                 size_t errstr_size) {
        const json_t *cols = json_object_get(ctx->step->def, "columns");
        const json_t *col;
        const char *name = ops_str(ctx, "name");
        drv_sql_t sql;
        drv_err_t err = DRV_OK;
        size_t i;

        if (!json_array_size(cols))
                return ops_missing("columns", errstr, errstr_size);
        if (name && strchr(name, '.'))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "index name \"%.64s\" must not name a "
                                   "schema",
                                   name);
        drv_sql_init(&sql);
        drv_sql_add(
            &sql, "CREATE %sINDEX %sIF NOT EXISTS ",
            json_is_true(json_object_get(ctx->step->def, "unique")) ? "UNIQUE "
                                                                    : "",
            drv_op_needs_autocommit(ctx->step, ctx->dry_run) ? "CONCURRENTLY "
                                                             : "");
        err =
            drv_sql_ident(&sql, ctx->conn, name, "index", errstr, errstr_size);
        drv_sql_add(&sql, " ON ");
        if (!err)
                err = drv_sql_ident(&sql, ctx->conn, ops_str(ctx, "table"),
                                    "table", errstr, errstr_size);
        drv_sql_add(&sql, " (");
        json_array_foreach(cols, i, col) {
                if (err)
                        break;
                drv_sql_add(&sql, "%s", i ? ", " : "");
                err = drv_sql_ident(&sql, ctx->conn, json_string_value(col),
                                    "column", errstr, errstr_size);
        }
        drv_sql_add(&sql, ")");
        if (!err)
                err = ops_index_build(ctx, &sql, name, errstr, errstr_size);
        drv_sql_free(&sql);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * sql {sql, revert?}: the runner refuses it unless raw SQL is allowed.
 * One statement, through the extended protocol; $param:NAME is bound.
 * ------------------------------------------------------------------------
 */
static drv_err_t op_sql(drv_op_ctx_t *ctx, char *errstr, size_t errstr_size) {
        const char *text = ops_str(ctx, "sql");
        drv_sql_t sql;
        drv_err_t err;

        if (!ctx->opts->allow_sql)
                return drv_err_set(errstr, errstr_size, DRV_ERR_SQL_REFUSED,
                                   "step %d: raw sql is not allowed (enable "
                                   "it in the worker's config)",
                                   ctx->step->index);
        if (!text || !*text)
                return ops_missing("sql", errstr, errstr_size);
        drv_sql_init(&sql);
        /* Raw SQL is trusted text, but its params still bind: reuse the
         * expression scanner, then drop the wrapping parentheses. */
        err = drv_sql_expr(&sql, text, ctx->opts, "sql", errstr, errstr_size);
        if (!err) {
                memmove(sql.buf, sql.buf + 1, sql.len - 1);
                sql.buf[sql.len - 2] = '\0';
                err = ops_run(ctx, &sql, errstr, errstr_size);
        }
        drv_sql_free(&sql);
        return err;
}

/* The validate op lives in ops_validate.c. */
drv_err_t drv_op_validate(drv_op_ctx_t *ctx, char *errstr, size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * The op table, indexed by drv_op_t.  Fields: name, kind (ops_int.h),
 * required.  Defaults of optional fields are the runner's (ops*.c).
 * ------------------------------------------------------------------------
 */
static const drv_opdef_t drv_ops[DRV_OP__CNT] = {
    /* its inverse drops the table (and what was copied into it) */
    [DRV_OP_CREATE_TABLE] = {.name = "create_table",
                             .fields = {{"table", DRV_F_TABLE, 1},
                                        {"columns", DRV_F_COLDEFS, 1}},
                             .apply = op_create_table,
                             .invert = drv_invert_create_table},
    [DRV_OP_ADD_COLUMN] = {.name = "add_column",
                           .fields = {{"table", DRV_F_TABLE, 1},
                                      {"column", DRV_F_COLDEF, 1}},
                           .apply = op_add_column,
                           .invert = drv_invert_add_column},
    /* its inverse swaps from and to */
    [DRV_OP_RENAME_COLUMN] = {.name = "rename_column",
                              .fields = {{"table", DRV_F_TABLE, 1},
                                         {"from", DRV_F_COLUMN, 1},
                                         {"to", DRV_F_COLUMN, 1}},
                              .apply = op_rename_column,
                              .invert = drv_invert_rename_column},
    [DRV_OP_DROP_COLUMN] = {.name = "drop_column",
                            .fields = {{"table", DRV_F_TABLE, 1},
                                       {"column", DRV_F_COLUMN, 1}},
                            .apply = op_drop_column,
                            .irreversible = "the column's data is gone"},
    /* its inverse converts back to the type recorded when it ran, with
     * revert_using when given */
    [DRV_OP_ALTER_TYPE] = {.name = "alter_type",
                           .fields = {{"table", DRV_F_TABLE, 1},
                                      {"column", DRV_F_COLUMN, 1},
                                      {"type", DRV_F_TYPE, 1},
                                      {"using", DRV_F_STATIC_EXPR, 0},
                                      {"revert_using", DRV_F_STATIC_EXPR, 0}},
                           .apply = op_alter_type,
                           .invert = drv_invert_alter_type,
                           .timeout_ms = 30 * 60000},
    /* key: default "id"; its inverse deletes the rows of `to` matching
     * revert_where, when the step declares it */
    [DRV_OP_COPY_ROWS] = {.name = "copy_rows",
                          .fields = {{"from", DRV_F_TABLE, 1},
                                     {"to", DRV_F_TABLE, 1},
                                     {"key", DRV_F_COLUMN, 0},
                                     {"columns", DRV_F_EXPRMAP, 1},
                                     {"where", DRV_F_EXPR, 0},
                                     {"batch_size", DRV_F_POSINT, 0},
                                     {"revert_where", DRV_F_STATIC_EXPR, 0}},
                          .batched = 1,
                          .invert = drv_invert_copy_rows,
                          .timeout_ms = 10 * 60000},
    /* key: default "id"; its inverse sets revert_set on the rows
     * matching revert_where (all when absent), when the step declares
     * revert_set */
    [DRV_OP_BACKFILL] = {.name = "backfill",
                         .fields = {{"table", DRV_F_TABLE, 1},
                                    {"key", DRV_F_COLUMN, 0},
                                    {"set", DRV_F_EXPRMAP, 1},
                                    {"where", DRV_F_EXPR, 0},
                                    {"batch_size", DRV_F_POSINT, 0},
                                    {"revert_set", DRV_F_STATIC_EXPRMAP, 0},
                                    {"revert_where", DRV_F_STATIC_EXPR, 0}},
                         .batched = 1,
                         .invert = drv_invert_backfill,
                         .timeout_ms = 10 * 60000},
    /* CREATE INDEX CONCURRENTLY cannot run in a transaction; the inverse
     * drops the index */
    [DRV_OP_CREATE_INDEX] = {.name = "create_index",
                             .fields = {{"table", DRV_F_TABLE, 1},
                                        {"name", DRV_F_COLUMN, 1},
                                        {"columns", DRV_F_COLLIST, 1},
                                        {"unique", DRV_F_BOOL, 0},
                                        {"concurrently", DRV_F_BOOL, 0}},
                             .apply = op_create_index,
                             .autocommit = "concurrently",
                             .invert = drv_invert_create_index,
                             .timeout_ms = 60 * 60000},
    /* only reads: its inverse does nothing */
    [DRV_OP_VALIDATE] = {.name = "validate",
                         .fields = {{"not_null", DRV_F_NOTNULLS, 0},
                                    {"row_count_equal", DRV_F_TABLEPAIR, 0},
                                    {"checksum_equal", DRV_F_CHECKSUM, 0}},
                         .one_of = 1,
                         .apply = drv_op_validate,
                         .invert = drv_invert_validate,
                         .timeout_ms = 30 * 60000},
    /* its inverse runs its `revert`, when the step has one */
    [DRV_OP_SQL] = {.name = "sql",
                    .fields = {{"sql", DRV_F_SQL, 1}, {"revert", DRV_F_SQL, 0}},
                    .apply = op_sql,
                    .invert = drv_invert_sql},
};

const drv_opdef_t *drv_op_def(drv_op_t op) {
        if ((int)op < 0 || op >= DRV_OP__CNT)
                return NULL;
        return &drv_ops[op];
}

const char *drv_op_name(drv_op_t op) {
        const drv_opdef_t *def = drv_op_def(op);

        return def ? def->name : NULL;
}

drv_op_t drv_op_from_name(const char *name) {
        int i;

        for (i = 0; name && i < DRV_OP__CNT; i++)
                if (drv_ops[i].name && !strcmp(drv_ops[i].name, name))
                        return (drv_op_t)i;
        return DRV_OP_NONE;
}

drv_op_fn_t *drv_op_fn(drv_op_t op) {
        const drv_opdef_t *def = drv_op_def(op);

        return def ? def->apply : NULL;
}

int drv_op_is_batched(drv_op_t op) {
        const drv_opdef_t *def = drv_op_def(op);

        return def && def->batched;
}

long drv_duration_ms(const json_t *v) {
        const char *s = json_string_value(v), *p;
        long n = 0, unit;

        for (p = s; p && *p >= '0' && *p <= '9' && n <= 86400; p++)
                n = n * 10 + (*p - '0');
        if (!s || p == s || *s == '0' || !p[0] || p[1])
                return -1;
        unit = *p == 's' ? 1000 : *p == 'm' ? 60000 : *p == 'h' ? 3600000 : 0;
        if (!unit || n * unit > 86400000L)
                return -1;
        return n * unit;
}

long drv_step_timeout_ms(const drv_step_t *step, long worker_ms) {
        const drv_opdef_t *def = drv_op_def(step->op);
        long ms = drv_duration_ms(json_object_get(step->def, "timeout"));

        if (ms > 0)
                return ms;
        return def && def->timeout_ms > 0 ? def->timeout_ms : worker_ms;
}

int drv_op_needs_autocommit(const drv_step_t *step, int dry_run) {
        const drv_opdef_t *def = drv_op_def(step->op);

        return def && def->autocommit && !dry_run &&
               json_is_true(json_object_get(step->def, def->autocommit));
}

drv_err_t drv_ops_run(drv_op_ctx_t *ctx, drv_sql_t *sql, char *errstr,
                      size_t errstr_size) {
        return ops_run(ctx, sql, errstr, errstr_size);
}

/* Used by ops_validate.c. */
drv_err_t drv_ops_scalar(drv_op_ctx_t *ctx, drv_sql_t *sql, char *out,
                         size_t out_size, char *errstr, size_t errstr_size) {
        return ops_scalar(ctx, sql, out, out_size, errstr, errstr_size);
}
