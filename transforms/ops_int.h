/*
 * drover - transforms/ops_int.h: the op table, private to transforms/.
 *
 * One row per drv_op_t, owned by ops.c (drv_op_def): the op's name, the
 * fields a step of it may carry, how it runs and what undoes it.  Name
 * lookup, static validation (plan_validate.c), the runner's dispatch
 * (run.c) and the batched / autocommit predicates all read the row, so
 * adding an op is adding its enum value and its row (and its function);
 * tests/unit/test_transforms_op_table.c fails for an op without a
 * complete row.
 */
#ifndef DRV_OPS_INT_H
#define DRV_OPS_INT_H

#include "db_int.h"

/* Kinds of step fields, each checked by plan_validate.c; the JSON type a
 * runner reads is on the right. */
typedef enum drv_fkind_e {
        DRV_F_TABLE,       /* [schema.]name                       string */
        DRV_F_COLUMN,      /* name                                string */
        DRV_F_TYPE,        /* drv_type_valid                      string */
        DRV_F_EXPR,        /* drv_expr_valid                      string */
        DRV_F_STATIC_EXPR, /* drv_expr_valid, no $param         string */
        DRV_F_SQL,         /* raw sql statement: drv_expr_valid   string */
        DRV_F_TEXT,        /* non-empty string                    string */
        DRV_F_POSINT,      /* integer > 0                         integer */
        DRV_F_BOOL,        /* true / false                        boolean */
        DRV_F_DEFAULT,     /* expression (no $param), number or   scalar */
                           /* boolean */
        DRV_F_COLDEFS,     /* [{name, type, primary_key?,         array of */
                           /*   not_null?, unique?, default?}]    objects */
        DRV_F_COLDEF,      /* {name, type, primary_key?,          object */
                           /*  not_null?, unique?, default?} */
        DRV_F_COLLIST,   /* [column...], no duplicates          array of str */
        DRV_F_EXPRMAP,   /* {column: expression}                object of str */
        DRV_F_NOTNULLS,  /* ["[schema.]table.column"...]        array of str */
        DRV_F_TABLEPAIR, /* [table, table]                      array of str */
        DRV_F_CHECKSUM,  /* {tables: pair, columns: list, key?} object */
        DRV_F_DURATION,  /* "<n>s", "<n>m" or "<n>h", 1 s..24 h string */
        DRV_F_STATIC_EXPRMAP, /* {column: expression}, no $param  object */
} drv_fkind_t;

typedef struct drv_field_s {
        const char *name;
        drv_fkind_t kind;
        int required;
} drv_field_t;

#define DRV_OP_FIELDS_MAX 8

/* Derive the inverse of a done step (rollback.c): `spec` is what its
 * ledger row recorded when it ran ({"def": the step, "old_type", ...},
 * see drv_rollback_inverse).  On DRV_OK *invp is a new action object
 * {"op": action, fields...} the rollback runner executes (caller
 * decrefs); DRV_ERR_INVALID_PLAN with errstr saying why the step cannot
 * be undone (a declared inverse missing, a $param in it). */
typedef drv_err_t(drv_invert_fn_t)(const json_t *spec, json_t **invp,
                                   char *errstr, size_t errstr_size);

typedef struct drv_opdef_s {
        const char *name; /* as plans spell it: "add_column" */
        /* The fields a step of this op may carry, up to the first NULL
         * name; any other field is refused ("op" and "description" are
         * every op's). */
        drv_field_t fields[DRV_OP_FIELDS_MAX];
        int one_of;             /* 1: at least one of the fields is present */
        drv_op_fn_t *apply;     /* runs the step; NULL when batched */
        int batched;            /* 1: run batch by batch, through
                                   drv_op_batch_build (ops_batch.c) */
        const char *autocommit; /* boolean field that, when true, makes
                                   the step run outside a transaction
                                   (not in a dry run); NULL: never */
        /* what undoes a step of this op (drover rollback): exactly one
         * of `invert` (builds the inverse, rollback.c) and
         * `irreversible` (why nothing can, for the refusal) is set */
        drv_invert_fn_t *invert;
        const char *irreversible;
        long timeout_ms; /* statement_timeout of a step of this op
                            (of each batch when batched) unless the
                            step has a `timeout`; 0: the worker's
                            statement_timeout_ms */
} drv_opdef_t;

/* The row of `op`; NULL for DRV_OP_NONE and other out-of-range values. */
const drv_opdef_t *drv_op_def(drv_op_t op);

/* A step `timeout` ("90s", "10m", "1h": a positive integer and one unit,
 * at most 24 h) in milliseconds; -1 when `v` is not one. */
long drv_duration_ms(const json_t *v);

/* The statement_timeout (ms) a step runs with: its `timeout`, else its
 * op's default (timeout_ms), else `worker_ms`. */
long drv_step_timeout_ms(const drv_step_t *step, long worker_ms);

/* Run `sql` for an op (unless ctx->check_only), adding the rows it
 * affected to ctx->rows; ops.c's, shared with rollback.c's actions. */
drv_err_t drv_ops_run(drv_op_ctx_t *ctx, drv_sql_t *sql, char *errstr,
                      size_t errstr_size);

/* The inverse builders of the op table's rows (rollback.c). */
drv_invert_fn_t drv_invert_create_table, drv_invert_add_column,
    drv_invert_rename_column, drv_invert_alter_type, drv_invert_copy_rows,
    drv_invert_backfill, drv_invert_create_index, drv_invert_validate,
    drv_invert_sql;

#endif /* DRV_OPS_INT_H */
