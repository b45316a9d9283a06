/*
 * drover - transforms/rollback.c: undoing a dataset's migrations
 * (`drover rollback`, issue 19 item 1, DESIGN.md section 9).
 *
 * Every done step records what undoing it needs in its ledger row (run.c,
 * run_step_spec: the plan's ref and versions, the step as written,
 * alter_type's old column type), so a rollback reads the ledger, never
 * the catalog of today.  A rollback of dataset D to version N:
 *   1. collects the done steps of D's plans that moved it above N, newest
 *      plan first and, within a plan, last step first (drv_rollback_plan);
 *      the plans must chain from the current version down to exactly N;
 *   2. derives each step's inverse from the op table's `invert` (ops.c);
 *      one irreversible step, or a step recorded without its spec, refuses
 *      the whole rollback up front (drv_rollback_check), naming it;
 *   3. runs the inverses in ONE transaction under the dataset's runner
 *      lock (the transaction-scoped form, as run.c's one-transaction
 *      path): each inverse with its own ledger row under the rollback
 *      task's id (plan_fingerprint "rollback:<forward plan fingerprint>"),
 *      the forward row marked `rolled_back` in the same statement, the
 *      version moved to N with the last one, and the caller's on_commit
 *      (the worker's pending status) before the COMMIT.  A redelivered
 *      rollback task whose rows are there is done: nothing runs twice.
 * The ledger keeps both directions: the forward rows (rolled_back, with
 * their spec) and the rollback's rows (done, spec says what they undid).
 * A forward plan run again later finds no done row of its steps and runs
 * them afresh (run.c ignores rolled_back rows).
 */
#include "ops_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * ------------------------------------------------------------------------
 * Inverses: one builder per reversible op, named by the op table.  Each
 * returns an action {"op": name, fields...}; rb_actions below runs it.
 * ------------------------------------------------------------------------
 */
static const char *def_str(const json_t *spec, const char *key) {
        return json_string_value(
            json_object_get(json_object_get(spec, "def"), key));
}

static drv_err_t inv_refuse(char *errstr, size_t errstr_size, const char *fmt,
                            ...) __attribute__((format(printf, 3, 4)));
static drv_err_t inv_refuse(char *errstr, size_t errstr_size, const char *fmt,
                            ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return DRV_ERR_INVALID_PLAN;
}

/* A new action {"op": action, "table": table} plus `key`: `value` (when
 * key is not NULL); DRV_ERR_NOMEM when it cannot be built. */
static drv_err_t inv_make(json_t **invp, const char *action, const char *table,
                          const char *key, json_t *value, char *errstr,
                          size_t errstr_size) {
        json_t *o = json_pack("{s:s}", "op", action);

        if (o && table)
                json_object_set_new(o, "table", json_string(table));
        if (o && key && value)
                json_object_set(o, key, value);
        if (!(*invp = o))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory building an inverse");
        return DRV_OK;
}

drv_err_t drv_invert_create_table(const json_t *spec, json_t **invp,
                                  char *errstr, size_t errstr_size) {
        return inv_make(invp, "drop_table", def_str(spec, "table"), NULL, NULL,
                        errstr, errstr_size);
}

drv_err_t drv_invert_add_column(const json_t *spec, json_t **invp, char *errstr,
                                size_t errstr_size) {
        const json_t *col = json_object_get(
            json_object_get(json_object_get(spec, "def"), "column"), "name");

        return inv_make(invp, "drop_column", def_str(spec, "table"), "column",
                        (json_t *)col, errstr, errstr_size);
}

drv_err_t drv_invert_rename_column(const json_t *spec, json_t **invp,
                                   char *errstr, size_t errstr_size) {
        drv_err_t err = inv_make(invp, "rename_column", def_str(spec, "table"),
                                 NULL, NULL, errstr, errstr_size);

        if (!err) {
                json_object_set_new(*invp, "from",
                                    json_string(def_str(spec, "to")));
                json_object_set_new(*invp, "to",
                                    json_string(def_str(spec, "from")));
        }
        return err;
}

drv_err_t drv_invert_alter_type(const json_t *spec, json_t **invp, char *errstr,
                                size_t errstr_size) {
        const char *old = json_string_value(json_object_get(spec, "old_type"));
        const char *use = def_str(spec, "revert_using");
        drv_err_t err;

        if (!old || !drv_sql_type_valid(old))
                return inv_refuse(errstr, errstr_size,
                                  "the column's type before it was not "
                                  "recorded%s",
                                  old ? " in a form drover can write" : "");
        err = inv_make(invp, "alter_type", def_str(spec, "table"), "column",
                       json_object_get(json_object_get(spec, "def"), "column"),
                       errstr, errstr_size);
        if (!err)
                json_object_set_new(*invp, "type", json_string(old));
        if (!err && use)
                json_object_set_new(*invp, "using", json_string(use));
        return err;
}

drv_err_t drv_invert_copy_rows(const json_t *spec, json_t **invp, char *errstr,
                               size_t errstr_size) {
        const char *rw = def_str(spec, "revert_where");

        if (!rw)
                return inv_refuse(errstr, errstr_size,
                                  "copy_rows declares no revert_where");
        return inv_make(
            invp, "delete", def_str(spec, "to"), "where",
            json_object_get(json_object_get(spec, "def"), "revert_where"),
            errstr, errstr_size);
}

drv_err_t drv_invert_backfill(const json_t *spec, json_t **invp, char *errstr,
                              size_t errstr_size) {
        const json_t *def = json_object_get(spec, "def");
        drv_err_t err;

        if (!json_object_get(def, "revert_set"))
                return inv_refuse(errstr, errstr_size,
                                  "backfill declares no revert_set");
        err = inv_make(invp, "update", def_str(spec, "table"), "set",
                       json_object_get(def, "revert_set"), errstr, errstr_size);
        if (!err && json_object_get(def, "revert_where"))
                json_object_set(*invp, "where",
                                json_object_get(def, "revert_where"));
        return err;
}

drv_err_t drv_invert_create_index(const json_t *spec, json_t **invp,
                                  char *errstr, size_t errstr_size) {
        return inv_make(invp, "drop_index", def_str(spec, "table"), "name",
                        json_object_get(json_object_get(spec, "def"), "name"),
                        errstr, errstr_size);
}

drv_err_t drv_invert_validate(const json_t *spec, json_t **invp, char *errstr,
                              size_t errstr_size) {
        (void)spec;
        return inv_make(invp, "none", NULL, NULL, NULL, errstr, errstr_size);
}

drv_err_t drv_invert_sql(const json_t *spec, json_t **invp, char *errstr,
                         size_t errstr_size) {
        const char *revert = def_str(spec, "revert");
        char why[128];
        size_t cnt = 0;
        drv_err_t err;

        if (!revert || !*revert)
                return inv_refuse(errstr, errstr_size,
                                  "sql step has no revert");
        if (!drv_expr_scan(revert, NULL, 0, &cnt, why, sizeof(why)) || cnt)
                return inv_refuse(errstr, errstr_size, "its revert %s",
                                  cnt ? "uses task params, which a rollback "
                                        "does not have"
                                      : "is not a valid statement");
        err = inv_make(invp, "sql", NULL, "sql",
                       json_object_get(json_object_get(spec, "def"), "revert"),
                       errstr, errstr_size);
        return err;
}

drv_err_t drv_rollback_inverse(const char *op, const json_t *spec,
                               json_t **invp, char *errstr,
                               size_t errstr_size) {
        const drv_opdef_t *def = drv_op_def(drv_op_from_name(op));

        *invp = NULL;
        if (!def)
                return inv_refuse(errstr, errstr_size, "unknown op \"%.32s\"",
                                  op ? op : "");
        if (!json_is_object(json_object_get(spec, "def")))
                return inv_refuse(errstr, errstr_size,
                                  "its ledger row has no recorded spec (it "
                                  "ran before rollback support)");
        if (!def->invert)
                return inv_refuse(errstr, errstr_size,
                                  "%s is irreversible (%s)", def->name,
                                  def->irreversible);
        return def->invert(spec, invp, errstr, errstr_size);
}

/*
 * ------------------------------------------------------------------------
 * The steps a rollback undoes
 * ------------------------------------------------------------------------
 */
/* The done forward steps of $1 above version $2 (and those without a
 * spec, whose version is unknown), newest plan and last step first.
 * Rollback rows ("rollback:" plan fingerprints) and the skipped markers
 * (step -1) are not forward steps. */
#define RB_STEPS_SQL                                                        \
        "SELECT task_id, step, op, fingerprint, plan_fingerprint,"          \
        " spec::text, coalesce(to_char(finished_at, 'YYYYMMDDHH24MISSUS')," \
        " '') FROM drover.step_ledger WHERE dataset = $1 AND status ="      \
        " 'done' AND step >= 0 AND plan_fingerprint NOT LIKE 'rollback:%'"  \
        " AND (spec IS NULL OR (spec->>'to')::int > $2::int) ORDER BY"      \
        " (spec->>'to')::int DESC NULLS LAST, plan_fingerprint, step DESC," \
        " finished_at DESC"

void drv_rollback_destroy(drv_rollback_t *rb) {
        size_t i;

        if (!rb)
                return;
        for (i = 0; i < rb->steps_cnt; i++) {
                json_decref(rb->steps[i].spec);
                json_decref(rb->steps[i].inverse);
        }
        free(rb->steps);
        free(rb);
}

/* Fill `st` from row `i` of RB_STEPS_SQL's result and derive its
 * inverse (or why there is none). */
static void rb_step_fill(drv_rollback_step_t *st, PGresult *res, int i) {
        const json_t *spec;

        snprintf(st->task_id, sizeof(st->task_id), "%s", PQgetvalue(res, i, 0));
        st->step = atoi(PQgetvalue(res, i, 1));
        snprintf(st->op, sizeof(st->op), "%s", PQgetvalue(res, i, 2));
        snprintf(st->fingerprint, sizeof(st->fingerprint), "%s",
                 PQgetvalue(res, i, 3));
        snprintf(st->plan_fingerprint, sizeof(st->plan_fingerprint), "%s",
                 PQgetvalue(res, i, 4));
        st->spec = PQgetisnull(res, i, 5)
                       ? NULL
                       : json_loads(PQgetvalue(res, i, 5), 0, NULL);
        spec = st->spec;
        snprintf(st->plan, sizeof(st->plan), "%s",
                 json_string_value(json_object_get(spec, "plan"))
                     ? json_string_value(json_object_get(spec, "plan"))
                     : "");
        if (!st->plan[0])
                snprintf(st->plan, sizeof(st->plan), "fingerprint %.12s",
                         st->plan_fingerprint);
        st->from = (int)json_integer_value(json_object_get(spec, "from"));
        st->to = (int)json_integer_value(json_object_get(spec, "to"));
        if (drv_rollback_inverse(st->op, spec, &st->inverse, st->why,
                                 sizeof(st->why)))
                st->inverse = NULL;
}

/* The plans of rb's steps must chain from rb->version down to exactly
 * rb->to_version, and no step of them may lack its spec; else
 * rb->refusal says why (`nospec`: the newest spec-less step, or -1). */
static void rb_chain(drv_rollback_t *rb, long nospec) {
        long expect = rb->version;
        const drv_rollback_step_t *st, *prev = NULL;
        size_t i;

        for (i = 0; i < rb->steps_cnt && !rb->refusal[0]; i++, prev = st) {
                st = &rb->steps[i];
                if (!st->spec)
                        break;
                if (prev &&
                    !strcmp(prev->plan_fingerprint, st->plan_fingerprint))
                        continue;
                if (!prev && st->from == expect && st->to > expect)
                        snprintf(rb->refusal, sizeof(rb->refusal),
                                 "plan \"%s\" (%d to %d) is part-way on "
                                 "dataset \"%s\" (steps done, version still "
                                 "%ld): run it to the end, then roll back",
                                 st->plan, st->from, st->to, rb->dataset,
                                 expect);
                else if (st->to != expect)
                        snprintf(rb->refusal, sizeof(rb->refusal),
                                 "no recorded migration of dataset \"%s\" "
                                 "to version %ld (plan \"%s\" migrated %d "
                                 "to %d)",
                                 rb->dataset, expect, st->plan, st->from,
                                 st->to);
                expect = st->from;
        }
        if (rb->refusal[0] || expect == rb->to_version)
                return;
        if (expect < rb->to_version)
                snprintf(rb->refusal, sizeof(rb->refusal),
                         "version %ld of dataset \"%s\" is inside plan "
                         "\"%s\" (%ld to %d): roll back to %ld",
                         rb->to_version, rb->dataset, prev ? prev->plan : "",
                         expect, prev ? prev->to : 0, expect);
        else if (nospec >= 0)
                snprintf(rb->refusal, sizeof(rb->refusal),
                         "dataset \"%s\": step %d:%s of plan \"%s\" has no "
                         "recorded spec (it ran before rollback support)",
                         rb->dataset, rb->steps[nospec].step,
                         rb->steps[nospec].op, rb->steps[nospec].plan);
        else
                snprintf(rb->refusal, sizeof(rb->refusal),
                         "no recorded migration of dataset \"%s\" from "
                         "version %ld to %ld",
                         rb->dataset, rb->to_version, expect);
}

/* Mark the spec-less steps of plans that have recorded steps above the
 * target (a plan half-run before rollback support) as not reversible,
 * and return the newest spec-less step of another plan (-1: none). */
static long rb_nospec(drv_rollback_t *rb) {
        const char *newest = "";
        long found = -1;
        size_t i, j;

        for (i = 0; i < rb->steps_cnt; i++) {
                drv_rollback_step_t *st = &rb->steps[i];
                int ours = 0;

                if (st->spec)
                        continue;
                for (j = 0; j < rb->steps_cnt && !ours; j++)
                        ours = rb->steps[j].spec &&
                               !strcmp(rb->steps[j].plan_fingerprint,
                                       st->plan_fingerprint);
                if (ours)
                        st->nospec_in_chain = 1;
                else if (strcmp(st->finished, newest) > 0) {
                        newest = st->finished;
                        found = (long)i;
                }
        }
        return found;
}

drv_err_t drv_rollback_plan(PGconn *conn, const char *dataset, long to_version,
                            drv_rollback_t **rbp, char *errstr,
                            size_t errstr_size) {
        char to[24];
        const char *params[2] = {dataset, to};
        drv_rollback_t *rb;
        PGresult *res = NULL;
        drv_err_t err;
        int i, n;

        *rbp = NULL;
        if ((err = drv_dataset_check(dataset, errstr, errstr_size)))
                return err;
        if (to_version < 0 || to_version > 2147483647L)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "invalid version %ld: expected 0 to "
                                   "2147483647",
                                   to_version);
        if (!(rb = calloc(1, sizeof(*rb))))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        snprintf(rb->dataset, sizeof(rb->dataset), "%s", dataset);
        rb->to_version = to_version;
        rb->version = -1;
        snprintf(to, sizeof(to), "%ld", to_version);
        err = drv_db_exec(conn,
                          "SELECT version FROM drover.datasets WHERE"
                          " dataset = $1",
                          1, params, &res, NULL, errstr, errstr_size);
        if (!err && PQntuples(res) == 1)
                rb->version = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        res = NULL;
        if (!err)
                err = drv_db_exec(conn, RB_STEPS_SQL, 2, params, &res, NULL,
                                  errstr, errstr_size);
        n = err ? 0 : PQntuples(res);
        if (!err && n && !(rb->steps = calloc((size_t)n, sizeof(*rb->steps))))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                  "out of memory");
        for (i = 0; !err && i < n; i++) {
                drv_rollback_step_t *st = &rb->steps[rb->steps_cnt];

                /* the same step done twice (cannot happen under the
                 * dataset lock, but a repair can make it): undone once,
                 * both rows marked */
                if (rb->steps_cnt &&
                    !strcmp(st[-1].plan_fingerprint, PQgetvalue(res, i, 4)) &&
                    st[-1].step == atoi(PQgetvalue(res, i, 1)))
                        continue;
                rb_step_fill(st, res, i);
                rb->undo_cnt += st->spec != NULL;
                snprintf(st->finished, sizeof(st->finished), "%s",
                         PQgetvalue(res, i, 6));
                rb->steps_cnt++;
        }
        PQclear(res);
        if (err) {
                drv_rollback_destroy(rb);
                return err;
        }
        if (rb->version < 0)
                snprintf(rb->refusal, sizeof(rb->refusal),
                         "dataset \"%s\" has no version (no plan ran on it)",
                         dataset);
        else if (to_version >= rb->version)
                snprintf(rb->refusal, sizeof(rb->refusal),
                         "dataset \"%s\" is at version %ld: nothing to roll "
                         "back to version %ld",
                         dataset, rb->version, to_version);
        else
                rb_chain(rb, rb_nospec(rb));
        *rbp = rb;
        return DRV_OK;
}

drv_err_t drv_rollback_check(const drv_rollback_t *rb, char *errstr,
                             size_t errstr_size) {
        size_t i;

        if (rb->refusal[0])
                return drv_err_set(errstr, errstr_size,
                                   DRV_ERR_VERSION_CONFLICT,
                                   "cannot roll back: %s", rb->refusal);
        for (i = 0; i < rb->steps_cnt; i++) {
                const drv_rollback_step_t *st = &rb->steps[i];

                if (!st->spec && !st->nospec_in_chain)
                        continue; /* below the target */
                if (!st->inverse)
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                            "cannot roll back dataset \"%s\" to version "
                            "%ld: step %d:%s of plan \"%s\" cannot be "
                            "undone: %s",
                            rb->dataset, rb->to_version, st->step, st->op,
                            st->plan, st->why);
        }
        return DRV_OK;
}

json_t *drv_rollback_json(const drv_rollback_t *rb) {
        json_t *o, *st_o, *steps = json_array();
        size_t i;

        for (i = 0; steps && i < rb->steps_cnt; i++) {
                const drv_rollback_step_t *st = &rb->steps[i];

                if (!st->spec && !st->nospec_in_chain)
                        continue;
                st_o = json_pack("{s:s, s:s, s:i, s:s, s:i, s:i}", "plan",
                                 st->plan, "task_id", st->task_id, "step",
                                 st->step, "op", st->op, "from", st->from, "to",
                                 st->to);
                if (st_o && st->inverse)
                        json_object_set(st_o, "inverse", st->inverse);
                else if (st_o)
                        json_object_set_new(st_o, "irreversible",
                                            json_string(st->why));
                json_array_append_new(steps, st_o);
        }
        o = json_pack("{s:s, s:I, s:I, s:o}", "dataset", rb->dataset, "version",
                      (json_int_t)rb->version, "to_version",
                      (json_int_t)rb->to_version, "steps", steps);
        if (o && rb->refusal[0])
                json_object_set_new(o, "refusal", json_string(rb->refusal));
        return o;
}

/*
 * ------------------------------------------------------------------------
 * Running the inverses
 * ------------------------------------------------------------------------
 */
typedef struct rb_run_s {
        PGconn *conn;
        const drv_run_opts_t *opts;
        drv_run_result_t *res;
        char errstr[512];
} rb_run_t;

static drv_err_t rb_fail(rb_run_t *r, int step, const char *op, drv_err_t err,
                         const char *sqlstate) {
        drv_run_result_t *res = r->res;

        res->outcome = DRV_RUN_FAILED;
        res->err = err;
        res->failed_step = step;
        snprintf(res->failed_op, sizeof(res->failed_op), "%s", op ? op : "");
        if (sqlstate && sqlstate != res->sqlstate)
                snprintf(res->sqlstate, sizeof(res->sqlstate), "%s", sqlstate);
        if (step >= 0)
                snprintf(res->errmsg, sizeof(res->errmsg),
                         "rollback step %d (%s): %.400s", step, op, r->errstr);
        else
                snprintf(res->errmsg, sizeof(res->errmsg), "%.500s", r->errstr);
        return err;
}

static const char *act_str(const drv_op_ctx_t *ctx, const char *key) {
        return json_string_value(json_object_get(ctx->step->def, key));
}

/* Append " SET col = (expr), ..." of `set` ({column: expression}). */
static drv_err_t act_set(drv_op_ctx_t *ctx, drv_sql_t *sql, const json_t *set,
                         char *errstr, size_t errstr_size) {
        const char *col;
        json_t *expr;
        drv_err_t err = DRV_OK;
        int first = 1;

        drv_sql_add(sql, " SET ");
        json_object_foreach((json_t *)set, col, expr) {
                drv_sql_add(sql, "%s", first ? "" : ", ");
                first = 0;
                if ((err = drv_sql_ident(sql, ctx->conn, col, "column", errstr,
                                         errstr_size)))
                        break;
                drv_sql_add(sql, " = ");
                if ((err = drv_sql_expr(sql, json_string_value(expr), ctx->opts,
                                        col, errstr, errstr_size)))
                        break;
        }
        return err;
}

/* Run "<prefix><ident>[ SET <set>][ WHERE <where>]", ident quoted as a
 * `what`; set and where may be NULL. */
static drv_err_t act_stmt(drv_op_ctx_t *ctx, const char *prefix,
                          const char *ident, const char *what,
                          const json_t *set, const char *where, char *errstr,
                          size_t errstr_size) {
        drv_sql_t sql;
        drv_err_t err;

        drv_sql_init(&sql);
        drv_sql_add(&sql, "%s", prefix);
        err = drv_sql_ident(&sql, ctx->conn, ident, what, errstr, errstr_size);
        if (!err && set)
                err = act_set(ctx, &sql, set, errstr, errstr_size);
        if (!err && where) {
                drv_sql_add(&sql, " WHERE ");
                err = drv_sql_expr(&sql, where, ctx->opts, "revert_where",
                                   errstr, errstr_size);
        }
        if (!err)
                err = drv_ops_run(ctx, &sql, errstr, errstr_size);
        drv_sql_free(&sql);
        return err;
}

/* drop_table {table}: what create_table made, with what was put in it. */
static drv_err_t act_drop_table(drv_op_ctx_t *ctx, char *errstr,
                                size_t errstr_size) {
        return act_stmt(ctx, "DROP TABLE IF EXISTS ", act_str(ctx, "table"),
                        "table", NULL, NULL, errstr, errstr_size);
}

/* drop_index {table, name}: the index lives in its table's schema. */
static drv_err_t act_drop_index(drv_op_ctx_t *ctx, char *errstr,
                                size_t errstr_size) {
        const char *table = act_str(ctx, "table"), *name = act_str(ctx, "name");
        const char *dot = table ? strchr(table, '.') : NULL;
        char qual[200];

        snprintf(qual, sizeof(qual), "%.*s%s%s", dot ? (int)(dot - table) : 0,
                 dot ? table : "", dot ? "." : "", name ? name : "");
        return act_stmt(ctx, "DROP INDEX IF EXISTS ", qual, "index", NULL, NULL,
                        errstr, errstr_size);
}

/* delete {table, where}: copy_rows' revert_where on its `to` table. */
static drv_err_t act_delete(drv_op_ctx_t *ctx, char *errstr,
                            size_t errstr_size) {
        const char *where = act_str(ctx, "where");

        if (!where)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "delete without revert_where");
        return act_stmt(ctx, "DELETE FROM ", act_str(ctx, "table"), "table",
                        NULL, where, errstr, errstr_size);
}

/* update {table, set: {column: expression}, where?}: backfill's
 * revert_set, in one statement. */
static drv_err_t act_update(drv_op_ctx_t *ctx, char *errstr,
                            size_t errstr_size) {
        const json_t *set = json_object_get(ctx->step->def, "set");

        if (!json_object_size(set))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "update without revert_set");
        return act_stmt(ctx, "UPDATE ", act_str(ctx, "table"), "table", set,
                        act_str(ctx, "where"), errstr, errstr_size);
}

static drv_err_t act_none(drv_op_ctx_t *ctx, char *errstr, size_t errstr_size) {
        (void)ctx;
        (void)errstr;
        (void)errstr_size;
        return DRV_OK;
}

/* The actions an inverse may name.  Those that are ops (drop_column,
 * rename_column, alter_type, sql) run through the op table's function,
 * so they build their SQL exactly as a plan step of that op does; the
 * others are here. */
static const struct {
        const char *name;
        drv_op_fn_t *fn;
} rb_actions[] = {
    {"drop_table", act_drop_table},
    {"drop_index", act_drop_index},
    {"update", act_update},
    {"delete", act_delete},
    {"none", act_none},
};

static drv_op_fn_t *rb_action_fn(const char *name, drv_op_t *opp) {
        size_t i;

        *opp = drv_op_from_name(name);
        if (*opp != DRV_OP_NONE)
                return drv_op_fn(*opp);
        for (i = 0; name && i < sizeof(rb_actions) / sizeof(rb_actions[0]); i++)
                if (!strcmp(rb_actions[i].name, name))
                        return rb_actions[i].fn;
        return NULL;
}

/* The rollback's ledger row of step `i` (undoing `st`), the forward
 * rows of that step marked rolled_back, and with the last step the
 * version moved to the target: one statement. */
#define RB_UNDO_CTE                                                        \
        "undo AS (UPDATE drover.step_ledger SET status = 'rolled_back'"    \
        " WHERE dataset = $6 AND plan_fingerprint = $5 AND step = $9::int" \
        " AND status = 'done')"
#define RB_INSERT                                                             \
        " INSERT INTO drover.step_ledger (task_id, step, op, fingerprint,"    \
        " plan_fingerprint, dataset, status, rows, finished_at, spec) VALUES" \
        " ($1, $2::int, $3, $4, 'rollback:' || $5, $6, 'done', $7::bigint,"   \
        " now(), $8::jsonb)"
#define RB_LEDGER_SQL "WITH " RB_UNDO_CTE RB_INSERT
#define RB_LEDGER_LAST_SQL                                                  \
        "WITH ver AS (UPDATE drover.datasets SET version = $10::int,"       \
        " updated_at = now(), task_id = $1, plan_fingerprint = (SELECT"     \
        " plan_fingerprint FROM drover.step_ledger WHERE dataset = $6 AND"  \
        " status = 'done' AND (spec->>'to')::int = $10::int LIMIT 1) WHERE" \
        " dataset = $6 AND version = $11::int), " RB_UNDO_CTE RB_INSERT

static drv_err_t rb_ledger(rb_run_t *r, const drv_rollback_t *rb, int i,
                           int64_t rows) {
        const drv_rollback_step_t *st = &rb->steps[i];
        char idx[16], nrows[24], fstep[16], to[24], from[24], *spec;
        const char *params[11] = {
            r->opts->task_id,
            idx,
            json_string_value(json_object_get(st->inverse, "op")),
            st->fingerprint,
            st->plan_fingerprint,
            rb->dataset,
            nrows,
            NULL,
            fstep,
            to,
            from};
        int last = (size_t)i + 1 == rb->undo_cnt;
        json_t *o;
        drv_err_t err;

        o = json_pack("{s:i, s:I, s:I, s:{s:s, s:i, s:s, s:s}, s:O}", "v", 1,
                      "rollback_to", (json_int_t)rb->to_version, "from",
                      (json_int_t)rb->version, "undoes", "task_id", st->task_id,
                      "step", st->step, "op", st->op, "plan", st->plan,
                      "inverse", st->inverse);
        spec = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!(params[7] = spec))
                return drv_err_set(r->errstr, sizeof(r->errstr), DRV_ERR_NOMEM,
                                   "out of memory");
        snprintf(idx, sizeof(idx), "%d", i);
        snprintf(nrows, sizeof(nrows), "%lld", (long long)rows);
        snprintf(fstep, sizeof(fstep), "%d", st->step);
        snprintf(to, sizeof(to), "%ld", rb->to_version);
        snprintf(from, sizeof(from), "%ld", rb->version);
        err = drv_db_exec(r->conn, last ? RB_LEDGER_LAST_SQL : RB_LEDGER_SQL,
                          last ? 11 : 9, params, NULL, r->res->sqlstate,
                          r->errstr, sizeof(r->errstr));
        free(spec);
        return err;
}

/* Undo rb->steps[i] inside the open transaction, with its ledger row. */
static drv_err_t rb_undo(rb_run_t *r, const drv_rollback_t *rb, int i) {
        const drv_rollback_step_t *st = &rb->steps[i];
        const char *action =
            json_string_value(json_object_get(st->inverse, "op"));
        drv_step_t fwd = {st->step, drv_op_from_name(st->op),
                          json_object_get(st->spec, "def"), "", 0};
        drv_step_t inv = {i, DRV_OP_NONE, st->inverse, "", 0};
        drv_op_ctx_t ctx = {r->conn, &inv, r->opts, NULL, 0, 0, 0, "", ""};
        drv_op_fn_t *fn = rb_action_fn(action, &inv.op);
        long ms = drv_step_timeout_ms(&fwd, r->opts->statement_timeout_ms > 0
                                                ? r->opts->statement_timeout_ms
                                                : 60000);
        char sql[96];
        drv_err_t err;

        if (!fn)
                return rb_fail(r, i, action,
                               drv_err_set(r->errstr, sizeof(r->errstr),
                                           DRV_ERR_INVALID_PLAN,
                                           "unknown inverse action"),
                               NULL);
        snprintf(sql, sizeof(sql),
                 "SELECT set_config('statement_timeout', '%ld', true)", ms);
        if ((err = drv_db_cmd(r->conn, sql, r->errstr, sizeof(r->errstr))))
                return rb_fail(r, i, action, err, NULL);
        if ((err = fn(&ctx, r->errstr, sizeof(r->errstr))))
                return rb_fail(r, i, action, err, ctx.sqlstate);
        if ((err = rb_ledger(r, rb, i, ctx.rows)))
                return rb_fail(r, i, action, err, r->res->sqlstate);
        r->res->rows += ctx.rows;
        r->res->steps_done++;
        if (r->opts->progress)
                r->opts->progress(r->opts->progress_opaque, i, action, ctx.rows,
                                  ctx.rows);
        return DRV_OK;
}

/* This task's rollback rows already done: a redelivery of a rollback
 * that committed (they commit together, so all of them or none). */
static drv_err_t rb_done_before(rb_run_t *r, long *donep) {
        const char *params[1] = {r->opts->task_id};
        PGresult *res;
        drv_err_t err;

        *donep = 0;
        err = drv_db_exec(r->conn,
                          "SELECT count(*), coalesce(sum(rows), 0) FROM"
                          " drover.step_ledger WHERE task_id = $1 AND status"
                          " = 'done' AND plan_fingerprint LIKE 'rollback:%'",
                          1, params, &res, r->res->sqlstate, r->errstr,
                          sizeof(r->errstr));
        if (err)
                return err;
        *donep = atol(PQgetvalue(res, 0, 0));
        r->res->rows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
        return DRV_OK;
}

/* BEGIN and the dataset's runner lock for the transaction (run.c's
 * one-transaction form), waited for or tried. */
static drv_err_t rb_begin(rb_run_t *r, const char *dataset) {
        const drv_run_opts_t *o = r->opts;
        drv_err_t err;

        if ((err = drv_db_begin(
                 r->conn, 0,
                 o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 60000,
                 r->errstr, sizeof(r->errstr))))
                return err;
        return drv_dataset_txn_lock(
            r->conn, dataset, o->wait_for_lock,
            o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 5000,
            r->res->sqlstate, r->errstr, sizeof(r->errstr));
}

/* Plan the rollback under the lock and refuse what cannot run: the
 * version moved since the task was made (expect_from), or
 * drv_rollback_check's refusals. */
static drv_err_t rb_prepare(rb_run_t *r, long to_version, long expect_from,
                            drv_rollback_t **rbp) {
        drv_err_t err;

        if ((err = drv_rollback_plan(r->conn, r->opts->dataset, to_version, rbp,
                                     r->errstr, sizeof(r->errstr))))
                return err;
        r->res->steps_total = (int)(*rbp)->undo_cnt;
        if (expect_from >= 0 && (*rbp)->version != expect_from)
                return drv_err_set(
                    r->errstr, sizeof(r->errstr), DRV_ERR_VERSION_CONFLICT,
                    "dataset \"%s\" is at version %ld, the "
                    "rollback task was made at version %ld",
                    r->opts->dataset, (*rbp)->version, expect_from);
        return drv_rollback_check(*rbp, r->errstr, sizeof(r->errstr));
}

drv_err_t drv_rollback_run(PGconn *conn, const drv_run_opts_t *opts,
                           long to_version, long expect_from,
                           drv_run_result_t *res) {
        rb_run_t r = {conn, opts, res, ""};
        drv_rollback_t *rb = NULL;
        drv_err_t err;
        long done = 0;
        size_t i;

        memset(res, 0, sizeof(*res));
        res->failed_step = -1;
        /* on_commit's writes commit with the run (a dry run has none) */
        res->one_txn = !opts || !opts->dry_run;
        if (!conn || !opts || !opts->task_id || !opts->dataset)
                return res->err = DRV_ERR_INTERNAL;
        if ((err = rb_begin(&r, opts->dataset)) ||
            (err = rb_done_before(&r, &done)))
                goto fail;
        if (done > 0) {
                res->steps_total = res->steps_done = (int)done;
                res->outcome = DRV_RUN_DONE;
        } else if ((err = rb_prepare(&r, to_version, expect_from, &rb))) {
                goto fail;
        } else if (opts->dry_run) {
                res->outcome = DRV_RUN_DRY_RUN;
        } else {
                for (i = 0; i < rb->undo_cnt; i++)
                        if ((err = rb_undo(&r, rb, (int)i)))
                                goto out;
                res->outcome = DRV_RUN_DONE;
        }
        if (!opts->dry_run && opts->on_commit &&
            (err = opts->on_commit(opts->commit_opaque, conn, res, r.errstr,
                                   sizeof(r.errstr))))
                goto fail;
        if (!opts->dry_run &&
            (err = drv_db_commit(conn, r.errstr, sizeof(r.errstr))))
                goto fail;
        goto out;
fail:
        err = rb_fail(&r, -1, NULL, err, res->sqlstate);
out:
        if (PQstatus(conn) == CONNECTION_OK)
                drv_db_rollback(conn);
        drv_rollback_destroy(rb);
        return res->err = err;
}

drv_err_t drv_rollback_entity_ref(const drv_rollback_t *rb, char *out,
                                  size_t out_size, char *errstr,
                                  size_t errstr_size) {
        drv_entity_ref_t ref;
        drv_err_t err;

        if (!rb->undo_cnt)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "dataset \"%s\": nothing to roll back",
                                   rb->dataset);
        if ((err = drv_entity_ref_parse(rb->steps[0].plan, &ref, errstr,
                                        errstr_size)))
                return err;
        snprintf(ref.kind, sizeof(ref.kind), "%s", DRV_ROLLBACK_KIND);
        drv_entity_ref_format(&ref, out, out_size);
        return DRV_OK;
}

int drv_rollback_task_versions(const drv_task_t *task, long *top, long *fromp) {
        const char *to = drv_task_param(task, DRV_ROLLBACK_TO_PARAM);
        const char *from = drv_task_param(task, DRV_ROLLBACK_FROM_PARAM);
        char *end;

        *top = *fromp = -1;
        if (!to)
                return 0;
        *top = strtol(to, &end, 10);
        if (*to < '0' || *to > '9' || *end || *top > 2147483647L)
                return -1;
        if (!from)
                return 1;
        *fromp = strtol(from, &end, 10);
        if (*from < '0' || *from > '9' || *end || *fromp > 2147483647L)
                return -1;
        return 1;
}
