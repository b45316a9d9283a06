/*
 * drover - transforms/plan_validate.c: static validation of plan steps.
 *
 * Each op's row in the op table (ops.c, ops_int.h) names its fields,
 * their kind and whether they are required; unknown fields are refused (a typo
 * such as "tabel" must not silently become a default).  Kinds are checked by
 * small predicates: identifiers, types, expressions.  Nothing here touches a
 * database: a plan that passes can still fail at run time (a missing
 * table), but never because of its shape.
 */
#include "ops_int.h"
#include "plan_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define IDENT_MAX 63 /* PostgreSQL's NAMEDATALEN - 1 */

/*
 * ------------------------------------------------------------------------
 * Identifiers, types, expressions
 * ------------------------------------------------------------------------
 */

#define ident_len drv_ident_len /* expr.c */

static int ident_simple(const char *s) {
        size_t n = s ? ident_len(s) : 0;
        return n > 0 && n <= IDENT_MAX && s[n] == '\0';
}

int drv_ident_valid(const char *ident) {
        size_t n;

        if (!ident || !(n = ident_len(ident)) || n > IDENT_MAX)
                return 0;
        if (ident[n] == '\0')
                return 1;
        return ident[n] == '.' && ident_simple(ident + n + 1);
}

int drv_type_valid(const char *type) {
        const char *s = type;
        int depth = 0;

        if (!s || !ident_len(s) || strlen(s) > 128)
                return 0;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '(')
                        depth++;
                else if (c == ')' && --depth < 0)
                        return 0;
                else if (c == '[' && s[1] != ']')
                        return 0;
                else if (c == ']' && (s == type || s[-1] != '['))
                        return 0;
                else if (c == ',' && depth == 0)
                        return 0;
                else if (!isalnum(c) && !strchr("_ (),[]", c))
                        return 0;
        }
        return depth == 0;
}

/*
 * ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------
 */
drv_err_t drv_vfail(const drv_vctx_t *vc, const json_t *node, const char *fmt,
                    ...) {
        char msg[400];
        va_list ap;
        int line;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        line = drv_linemap_get(vc->lines, node, vc->line);
        if (line <= 0) /* JSON from an API: no lines to point at */
                return drv_err_set(vc->errstr, vc->errstr_size,
                                   DRV_ERR_INVALID_PLAN, "%s: %s",
                                   vc->source ? vc->source : "plan", msg);
        return drv_err_set(vc->errstr, vc->errstr_size, DRV_ERR_INVALID_PLAN,
                           "%s:%d: %s", vc->source ? vc->source : "plan", line,
                           msg);
}

/*
 * ------------------------------------------------------------------------
 * Fields, by kind
 * ------------------------------------------------------------------------
 */
static const drv_field_t coldef_fields[] = {
    {"name", DRV_F_COLUMN, 1},      {"type", DRV_F_TYPE, 1},
    {"primary_key", DRV_F_BOOL, 0}, {"not_null", DRV_F_BOOL, 0},
    {"unique", DRV_F_BOOL, 0},      {"default", DRV_F_DEFAULT, 0},
    {NULL, DRV_F_BOOL, 0}};
static const drv_field_t checksum_fields[] = {{"tables", DRV_F_TABLEPAIR, 1},
                                              {"columns", DRV_F_COLLIST, 1},
                                              {"key", DRV_F_COLUMN, 0},
                                              {NULL, DRV_F_BOOL, 0}};

static drv_err_t check_object(const drv_vctx_t *vc, const json_t *obj,
                              const drv_field_t *fields, const char *what,
                              const char *skip);

static drv_err_t check_str(const drv_vctx_t *vc, const json_t *v,
                           const char *name, int (*ok)(const char *),
                           const char *what) {
        if (!json_is_string(v))
                return drv_vfail(vc, v, "\"%s\" must be a string", name);
        if (!ok(json_string_value(v)))
                return drv_vfail(vc, v, "\"%s\": invalid %s \"%.100s\"", name,
                                 what, json_string_value(v));
        return DRV_OK;
}

/* An expression by expr.c's tokenizer (the runner's); `params_ok` 0 where
 * the runner refuses task params (DDL: defaults, USING). */
static drv_err_t check_expr(const drv_vctx_t *vc, const json_t *v,
                            const char *name, int params_ok) {
        char why[160];
        size_t cnt = 0;

        if (!json_is_string(v))
                return drv_vfail(vc, v,
                                 "\"%s\" must be an sql expression "
                                 "string",
                                 name);
        if (!drv_expr_scan(json_string_value(v), NULL, 0, &cnt, why,
                           sizeof(why)))
                return drv_vfail(vc, v, "\"%s\": invalid expression: %s", name,
                                 why);
        if (cnt && !params_ok)
                return drv_vfail(
                    vc, v, "\"%s\": task params are not allowed here", name);
        return DRV_OK;
}

/* A non-empty array; each item checked by check_str(ok), no duplicates. */
static drv_err_t check_list(const drv_vctx_t *vc, const json_t *v,
                            const char *name, int (*ok)(const char *),
                            const char *what) {
        size_t i, j;
        drv_err_t err;

        if (!json_is_array(v) || json_array_size(v) == 0)
                return drv_vfail(vc, v, "\"%s\" must be a non-empty list",
                                 name);
        for (i = 0; i < json_array_size(v); i++) {
                const json_t *item = json_array_get(v, i);
                if ((err = check_str(vc, item, name, ok, what)))
                        return err;
                for (j = 0; j < i; j++)
                        if (json_equal(json_array_get(v, j), (json_t *)item))
                                return drv_vfail(vc, item,
                                                 "\"%s\": duplicate \"%s\"",
                                                 name, json_string_value(item));
        }
        return DRV_OK;
}

/* "[schema.]table.column": a table by drv_ident_valid, then a column. */
static int table_column_valid(const char *s) {
        const char *dot = strrchr(s, '.');
        char table[160];

        if (!dot || (size_t)(dot - s) >= sizeof(table))
                return 0;
        memcpy(table, s, (size_t)(dot - s));
        table[dot - s] = '\0';
        return drv_ident_valid(table) && ident_simple(dot + 1);
}

static drv_err_t check_coldefs(const drv_vctx_t *vc, const json_t *v,
                               const char *name) {
        size_t i, j;
        drv_err_t err;

        if (!json_is_array(v) || json_array_size(v) == 0)
                return drv_vfail(vc, v, "\"%s\" must be a non-empty list",
                                 name);
        for (i = 0; i < json_array_size(v); i++) {
                const json_t *col = json_array_get(v, i);
                if ((err =
                         check_object(vc, col, coldef_fields, "column", NULL)))
                        return err;
                for (j = 0; j < i; j++)
                        if (json_equal(
                                json_object_get(json_array_get(v, j), "name"),
                                json_object_get(col, "name")))
                                return drv_vfail(
                                    vc, col, "\"%s\": duplicate column \"%s\"",
                                    name,
                                    json_string_value(
                                        json_object_get(col, "name")));
        }
        return DRV_OK;
}

static drv_err_t check_exprmap(const drv_vctx_t *vc, const json_t *v,
                               const char *name, int params_ok) {
        const char *col;
        json_t *expr;
        drv_err_t err;

        if (!json_is_object(v) || json_object_size(v) == 0)
                return drv_vfail(
                    vc, v, "\"%s\" must map columns to expressions", name);
        json_object_foreach((json_t *)v, col, expr) {
                if (!ident_simple(col))
                        return drv_vfail(vc, expr,
                                         "\"%s\": invalid column \"%.100s\"",
                                         name, col);
                if ((err = check_expr(vc, expr, col, params_ok)))
                        return err;
        }
        return DRV_OK;
}

static drv_err_t check_field(const drv_vctx_t *vc, const json_t *v,
                             const drv_field_t *f) {
        switch (f->kind) {
        case DRV_F_TABLE:
                return check_str(vc, v, f->name, drv_ident_valid, "table");
        case DRV_F_COLUMN:
                return check_str(vc, v, f->name, ident_simple, "identifier");
        case DRV_F_TYPE:
                return check_str(vc, v, f->name, drv_type_valid, "type");
        case DRV_F_EXPR:
                return check_expr(vc, v, f->name, 1);
        case DRV_F_STATIC_EXPR:
                return check_expr(vc, v, f->name, 0);
        case DRV_F_SQL:
                return check_expr(vc, v, f->name, 1);
        case DRV_F_TEXT:
                if (!json_is_string(v) || !*json_string_value(v))
                        return drv_vfail(vc, v,
                                         "\"%s\" must be a non-empty "
                                         "string",
                                         f->name);
                return DRV_OK;
        case DRV_F_POSINT:
                if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
                    json_integer_value(v) > 100000000)
                        return drv_vfail(vc, v,
                                         "\"%s\" must be a positive "
                                         "integer",
                                         f->name);
                return DRV_OK;
        case DRV_F_BOOL:
                if (!json_is_boolean(v))
                        return drv_vfail(vc, v, "\"%s\" must be true or false",
                                         f->name);
                return DRV_OK;
        case DRV_F_DEFAULT:
                if (json_is_number(v) || json_is_boolean(v))
                        return DRV_OK;
                return check_expr(vc, v, f->name, 0);
        case DRV_F_COLDEFS:
                return check_coldefs(vc, v, f->name);
        case DRV_F_COLDEF:
                return check_object(vc, v, coldef_fields, f->name, NULL);
        case DRV_F_COLLIST:
                return check_list(vc, v, f->name, ident_simple, "column");
        case DRV_F_EXPRMAP:
                return check_exprmap(vc, v, f->name, 1);
        case DRV_F_STATIC_EXPRMAP:
                return check_exprmap(vc, v, f->name, 0);
        case DRV_F_NOTNULLS:
                return check_list(vc, v, f->name, table_column_valid,
                                  "table.column");
        case DRV_F_TABLEPAIR:
                if (!json_is_array(v) || json_array_size(v) != 2)
                        return drv_vfail(vc, v, "\"%s\" must list two tables",
                                         f->name);
                return check_list(vc, v, f->name, drv_ident_valid, "table");
        case DRV_F_CHECKSUM:
                return check_object(vc, v, checksum_fields, f->name, NULL);
        case DRV_F_DURATION:
                if (drv_duration_ms(v) < 0)
                        return drv_vfail(vc, v,
                                         "\"%s\" must be a duration such as "
                                         "\"90s\", \"10m\" or \"1h\" "
                                         "(at most 24h)",
                                         f->name);
                return DRV_OK;
        }
        return drv_vfail(vc, v, "internal: unknown field kind");
}

/* Check an object against a field table: unknown keys, required keys,
 * each value.  `skip` names one key the caller checks ("op"). */
static drv_err_t check_object(const drv_vctx_t *vc, const json_t *obj,
                              const drv_field_t *fields, const char *what,
                              const char *skip) {
        const char *key;
        json_t *v;
        const drv_field_t *f;
        drv_err_t err;

        if (!json_is_object(obj))
                return drv_vfail(vc, obj, "%s must be a mapping", what);
        json_object_foreach((json_t *)obj, key, v) {
                if (skip && !strcmp(key, skip))
                        continue;
                for (f = fields; f->name && strcmp(f->name, key); f++)
                        ;
                if (!f->name)
                        return drv_vfail(vc, v, "unknown field \"%.60s\" in %s",
                                         key, what);
                if ((err = check_field(vc, v, f)))
                        return err;
        }
        for (f = fields; f->name; f++)
                if (f->required && !json_object_get(obj, f->name))
                        return drv_vfail(vc, obj, "%s needs \"%s\"", what,
                                         f->name);
        return DRV_OK;
}

/* A row with one_of: at least one of its fields is present. */
static drv_err_t check_one_of(const drv_vctx_t *vc, const json_t *step,
                              const drv_opdef_t *def, const char *what) {
        char names[256] = "";
        size_t len = 0;
        int n;

        for (n = 0; n < DRV_OP_FIELDS_MAX && def->fields[n].name; n++) {
                if (json_object_get(step, def->fields[n].name))
                        return DRV_OK;
                if (len < sizeof(names))
                        len += (size_t)snprintf(
                            names + len, sizeof(names) - len, "%s\"%s\"",
                            n ? ", " : "", def->fields[n].name);
        }
        return drv_vfail(vc, step, "%s needs one of %s", what, names);
}

drv_err_t drv_step_validate(const drv_vctx_t *vc, const json_t *step, int index,
                            drv_op_t *opp, int allow_sql) {
        drv_field_t fields[DRV_OP_FIELDS_MAX + 3];
        const drv_opdef_t *def;
        const char *opname;
        char what[64];
        drv_op_t op;
        int n;

        if (!json_is_object(step))
                return drv_vfail(vc, step, "step %d must be a mapping", index);
        opname = json_string_value(json_object_get(step, "op"));
        if (!opname)
                return drv_vfail(vc, step, "step %d needs \"op\"", index);
        if ((op = drv_op_from_name(opname)) == DRV_OP_NONE)
                return drv_vfail(vc, json_object_get(step, "op"),
                                 "step %d: unknown op \"%.60s\"", index,
                                 opname);
        if (op == DRV_OP_SQL && !allow_sql)
                return drv_vfail(vc, step,
                                 "step %d: sql steps are not allowed here "
                                 "(allow_sql is off)",
                                 index);
        /* every op may carry a human description and a timeout */
        def = drv_op_def(op);
        for (n = 0; n < DRV_OP_FIELDS_MAX && def->fields[n].name; n++)
                fields[n] = def->fields[n];
        fields[n++] = (drv_field_t){"description", DRV_F_TEXT, 0};
        fields[n++] = (drv_field_t){"timeout", DRV_F_DURATION, 0};
        fields[n] = (drv_field_t){NULL, DRV_F_BOOL, 0};
        snprintf(what, sizeof(what), "step %d (%s)", index, opname);
        if (check_object(vc, step, fields, what, "op"))
                return DRV_ERR_INVALID_PLAN;
        if (def->one_of && check_one_of(vc, step, def, what))
                return DRV_ERR_INVALID_PLAN;
        *opp = op;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Tables a plan may touch
 *
 * A plan migrates its dataset's tables, nothing else: drover's own schema
 * (the version guard and ledger), the catalogs (pg_catalog, pg_toast, any
 * pg_* schema) and information_schema are refused whatever the case of
 * the name (identifiers are quoted, so "Drover" is another schema, but no
 * plan has a reason to name it).  An unqualified name resolves through
 * the connection's search_path, which pg_catalog leads implicitly: an
 * unqualified "pg_*" name is refused too (write it schema-qualified).
 * With spec.tables, every table a step names must be in that list,
 * written the same way, and sql steps are refused (their text cannot be
 * checked).
 * ------------------------------------------------------------------------
 */

/* Why plans may not touch `table`, or NULL when they may. */
static const char *table_refused(const char *table, char *why,
                                 size_t why_size) {
        const char *dot = strchr(table, '.');
        size_t n = dot ? (size_t)(dot - table) : 0;

        if (!dot) {
                if (strncasecmp(table, "pg_", 3))
                        return NULL;
                snprintf(why, why_size,
                         "table \"%.100s\" may resolve to pg_catalog: "
                         "qualify it with its schema",
                         table);
                return why;
        }
        if ((n == 6 && !strncasecmp(table, "drover", 6)) ||
            (n == 18 && !strncasecmp(table, "information_schema", 18)) ||
            !strncasecmp(table, "pg_", 3)) {
                snprintf(why, why_size,
                         "table \"%.100s\" is in schema \"%.*s\", which "
                         "plans may not touch",
                         table, (int)n, table);
                return why;
        }
        return NULL;
}

/* The table part of "[schema.]table.column" into out (sized >= 160). */
static const char *table_of_column(const char *s, char *out, size_t out_size) {
        const char *dot = strrchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : 0;

        if (n >= out_size)
                n = out_size - 1;
        memcpy(out, s, n);
        out[n] = '\0';
        return out;
}

/* One table a step names: refused schema, or not in spec.tables. */
static drv_err_t check_table(const drv_vctx_t *vc, const json_t *node,
                             const char *table, const char *what,
                             const json_t *allow) {
        char why[300];
        size_t i;

        if (table_refused(table, why, sizeof(why)))
                return drv_vfail(vc, node, "%s: %s", what, why);
        if (!allow)
                return DRV_OK;
        for (i = 0; i < json_array_size(allow); i++)
                if (!strcmp(json_string_value(json_array_get(allow, i)), table))
                        return DRV_OK;
        return drv_vfail(vc, node, "%s: table \"%.100s\" is not in spec.tables",
                         what, table);
}

/* Every string of a list field (tables, or table.column when `cols`). */
static drv_err_t check_table_list(const drv_vctx_t *vc, const json_t *list,
                                  int cols, const char *what,
                                  const json_t *allow) {
        char table[160];
        const json_t *item;
        drv_err_t err;
        size_t i;

        json_array_foreach(list, i, item) {
                const char *s = json_string_value(item);
                if (!s)
                        continue;
                if (cols)
                        s = table_of_column(s, table, sizeof(table));
                if ((err = check_table(vc, item, s, what, allow)))
                        return err;
        }
        return DRV_OK;
}

drv_err_t drv_plan_tables_validate(const drv_vctx_t *vc, const json_t *tables) {
        char why[300];
        const json_t *item;
        size_t i;
        drv_err_t err;

        if (!tables)
                return DRV_OK;
        if ((err = check_list(vc, tables, "spec.tables", drv_ident_valid,
                              "table")))
                return err;
        json_array_foreach(tables, i, item) {
                if (table_refused(json_string_value(item), why, sizeof(why)))
                        return drv_vfail(vc, item, "spec.tables: %s", why);
        }
        return DRV_OK;
}

drv_err_t drv_step_tables_check(const drv_vctx_t *vc, const json_t *step,
                                int index, drv_op_t op, const json_t *allow) {
        const drv_opdef_t *def = drv_op_def(op);
        const json_t *v;
        char what[64];
        drv_err_t err = DRV_OK;
        int n;

        snprintf(what, sizeof(what), "step %d (%s)", index, drv_op_name(op));
        if (op == DRV_OP_SQL && allow)
                return drv_vfail(vc, step,
                                 "%s: sql steps are not allowed in a plan "
                                 "with spec.tables (their tables cannot be "
                                 "checked)",
                                 what);
        for (n = 0; !err && n < DRV_OP_FIELDS_MAX && def->fields[n].name; n++) {
                if (!(v = json_object_get(step, def->fields[n].name)))
                        continue;
                switch (def->fields[n].kind) {
                case DRV_F_TABLE:
                        err = check_table(vc, v, json_string_value(v), what,
                                          allow);
                        break;
                case DRV_F_TABLEPAIR:
                        err = check_table_list(vc, v, 0, what, allow);
                        break;
                case DRV_F_NOTNULLS:
                        err = check_table_list(vc, v, 1, what, allow);
                        break;
                case DRV_F_CHECKSUM:
                        err = check_table_list(vc, json_object_get(v, "tables"),
                                               0, what, allow);
                        break;
                default:
                        break;
                }
        }
        return err;
}
