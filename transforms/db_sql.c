/*
 * drover - transforms/db_sql.c: building SQL text safely.
 *
 * The only ways plan content reaches SQL text: identifiers (validated and
 * quoted with PQescapeIdentifier, one part at a time), type names (checked
 * against a narrow alphabet), and expressions written by the plan's author
 * (read by expr.c's tokenizer, the one plan check uses, so they cannot
 * leave their parentheses; task params inside them become bound $n
 * parameters).  Task params are never spliced.
 */
#include "db_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drv_sql_init(drv_sql_t *sql) {
        memset(sql, 0, sizeof(*sql));
}

void drv_sql_free(drv_sql_t *sql) {
        if (!sql)
                return;
        free(sql->buf);
        drv_sql_init(sql);
}

void drv_sql_clear_text(drv_sql_t *sql) {
        sql->len = 0;
        if (sql->buf)
                sql->buf[0] = '\0';
}

static void sql_append(drv_sql_t *sql, const char *s, size_t n) {
        if (sql->oom)
                return;
        if (sql->len + n + 1 > sql->cap) {
                size_t cap = sql->cap ? sql->cap : 256;
                char *p;

                while (cap < sql->len + n + 1)
                        cap *= 2;
                p = realloc(sql->buf, cap);
                if (!p) {
                        sql->oom = 1;
                        return;
                }
                sql->buf = p;
                sql->cap = cap;
        }
        memcpy(sql->buf + sql->len, s, n);
        sql->len += n;
        sql->buf[sql->len] = '\0';
}

void drv_sql_add(drv_sql_t *sql, const char *fmt, ...) {
        char small[512], *big = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n < sizeof(small)) {
                sql_append(sql, small, (size_t)n);
                return;
        }
        big = malloc((size_t)n + 1);
        if (!big) {
                sql->oom = 1;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        sql_append(sql, big, (size_t)n);
        free(big);
}

int drv_sql_bind(drv_sql_t *sql, const char *value) {
        if (sql->nparams >= DRV_SQL_MAX_PARAMS)
                return -1;
        sql->params[sql->nparams++] = value;
        return sql->nparams;
}

/* Local copy of the identifier rule (DESIGN.md section 5), so this file
 * does not depend on the plan model being linked. */
static int sql_ident_part(const char *s, size_t n) {
        size_t i;

        if (n == 0 || n > 63)
                return 0;
        if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
                return 0;
        for (i = 1; i < n; i++)
                if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
                        return 0;
        return 1;
}

static drv_err_t sql_quote_part(drv_sql_t *sql, PGconn *conn, const char *s,
                                size_t n, char *errstr, size_t errstr_size) {
        char *q = PQescapeIdentifier(conn, s, n);

        if (!q)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "cannot quote identifier");
        drv_sql_add(sql, "%s", q);
        PQfreemem(q);
        return DRV_OK;
}

drv_err_t drv_sql_ident(drv_sql_t *sql, PGconn *conn, const char *ident,
                        const char *what, char *errstr, size_t errstr_size) {
        const char *dot;
        drv_err_t err;

        dot = ident ? strchr(ident, '.') : NULL;
        if (!ident || (dot && !sql_ident_part(ident, (size_t)(dot - ident))) ||
            !sql_ident_part(dot ? dot + 1 : ident,
                            strlen(dot ? dot + 1 : ident)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "invalid %s identifier \"%.64s\"", what,
                                   ident ? ident : "(missing)");
        if (dot) {
                err = sql_quote_part(sql, conn, ident, (size_t)(dot - ident),
                                     errstr, errstr_size);
                if (err)
                        return err;
                drv_sql_add(sql, ".");
                ident = dot + 1;
        }
        return sql_quote_part(sql, conn, ident, strlen(ident), errstr,
                              errstr_size);
}

int drv_sql_type_valid(const char *type) {
        int depth = 0;
        const char *p;

        if (!type || !isalpha((unsigned char)type[0]) || strlen(type) > 100)
                return 0;
        for (p = type; *p; p++) {
                unsigned char c = (unsigned char)*p;

                if (c == '(') {
                        if (++depth > 1)
                                return 0;
                } else if (c == ')') {
                        if (--depth < 0)
                                return 0;
                } else if (depth && !(isdigit(c) || c == ',' || c == ' ')) {
                        return 0;
                } else if (!(isalnum(c) || c == '_' || c == ' ' || c == '.' ||
                             c == '[' || c == ']' || c == ',')) {
                        return 0;
                }
        }
        return depth == 0;
}

/* drv_expr_rewrite's slot: each reference binds its task param anew. */
static int sql_slot(void *arg, const char *name, size_t len) {
        const void *const *a = arg;
        drv_sql_t *sql = (drv_sql_t *)a[0];
        const drv_run_opts_t *opts = a[1];
        size_t i;

        for (i = 0; opts && i < opts->params_cnt; i++)
                if (strlen(opts->params[i].key) == len &&
                    !strncmp(opts->params[i].key, name, len))
                        return drv_sql_bind(sql, opts->params[i].value);
        return 0;
}

drv_err_t drv_sql_expr(drv_sql_t *sql, const char *expr,
                       const drv_run_opts_t *opts, const char *what,
                       char *errstr, size_t errstr_size) {
        const void *arg[2] = {sql, opts};
        char *text;
        drv_err_t err;

        err = drv_expr_rewrite(expr, sql_slot, (void *)arg, what, &text, errstr,
                               errstr_size);
        if (err)
                return err;
        drv_sql_add(sql, "(%s)", text);
        free(text);
        return DRV_OK;
}
