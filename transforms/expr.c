/*
 * drover - transforms/expr.c: the one tokenizer and binder of plan
 * expressions.
 *
 * Plan check (plan_validate.c, `drover plan check` and the worker's
 * validation before it touches data) and the SQL builder (db_sql.c, at
 * run time) both read expressions through drv_expr_scan, so what one
 * accepts the other runs, and a `$param:NAME` is the same token for both.
 *
 * Grammar (docs/plans.md, "Expressions").  Outside quotes:
 *
 *   '...'        string literal, '' is a quote inside it; no backslash
 *                (its meaning depends on standard_conforming_strings)
 *   E'...'       escape string: refused (backslash escapes)
 *   $tag$...$tag$  dollar-quoted string, tag empty or [A-Za-z_][A-Za-z0-9_]*
 *   "..."        quoted identifier, "" is a quote inside it
 *   $param:NAME  a task param, NAME [A-Za-z_][A-Za-z0-9_]*
 *   ( )          balanced
 *
 * and refused: ';', comments (-- and slash-star), a backslash, any other
 * '$' (positional $1, '$' inside an identifier).  Everything inside a
 * literal or a quoted identifier is text: "'$param:x'" is the seven
 * characters $param:x, not a param.
 */
#include "plan_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int expr_fail(char *why, size_t why_size, const char *msg) {
        if (why && why_size)
                snprintf(why, why_size, "%s", msg);
        return 0;
}

size_t drv_ident_len(const char *s) {
        size_t n = 0;

        if (!isalpha((unsigned char)s[0]) && s[0] != '_')
                return 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_')
                n++;
        return n;
}

/* A byte PostgreSQL's lexer takes as part of an identifier or keyword. */
static int expr_identc(unsigned char c) {
        return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* End of the quoted run that opens at e[i] (quote q, doubled to escape
 * it): the index after its closing quote, or 0 when unterminated. */
static size_t expr_quoted(const char *e, size_t i, char q) {
        for (i++; e[i]; i++) {
                if (e[i] != q)
                        continue;
                if (e[i + 1] != q)
                        return i + 1;
                i++;
        }
        return 0;
}

int drv_expr_scan(const char *e, drv_expr_ref_t *refs, size_t max, size_t *cntp,
                  char *why, size_t why_size) {
        size_t i = 0, n, cnt = 0, end;
        int depth = 0;

        if (cntp)
                *cntp = 0;
        if (!e || !*e)
                return expr_fail(why, why_size, "empty expression");
        while (e[i]) {
                char c = e[i];
                int after_ident = i > 0 && expr_identc((unsigned char)e[i - 1]);

                if (c == '\'') {
                        if (after_ident &&
                            (e[i - 1] == 'E' || e[i - 1] == 'e') &&
                            (i == 1 || !expr_identc((unsigned char)e[i - 2])))
                                return expr_fail(why, why_size,
                                                 "escape strings (E'...') are "
                                                 "not allowed");
                        if (!(end = expr_quoted(e, i, '\'')))
                                return expr_fail(why, why_size,
                                                 "unterminated quote");
                        if (memchr(e + i, '\\', end - i))
                                return expr_fail(why, why_size,
                                                 "backslashes are not allowed "
                                                 "in '...' strings (use a "
                                                 "dollar-quoted string)");
                        i = end;
                        continue;
                }
                if (c == '"') {
                        if (!(end = expr_quoted(e, i, '"')))
                                return expr_fail(why, why_size,
                                                 "unterminated quote");
                        i = end;
                        continue;
                }
                if (c == '$') {
                        const char *close;

                        if (after_ident)
                                return expr_fail(why, why_size,
                                                 "'$' inside an identifier is "
                                                 "not allowed");
                        if (!strncmp(e + i + 1, "param:", 6)) {
                                if (!(n = drv_ident_len(e + i + 7)) ||
                                    e[i + 7 + n] == '$')
                                        return expr_fail(
                                            why, why_size,
                                            "a task param is written "
                                            "$param:NAME");
                                if (refs && cnt < max)
                                        refs[cnt] = (drv_expr_ref_t){
                                            i, i + 7 + n, i + 7, n};
                                cnt++;
                                i += 7 + n;
                                continue;
                        }
                        n = drv_ident_len(e + i + 1);
                        if (e[i + 1 + n] != '$')
                                return expr_fail(why, why_size,
                                                 "'$' is only allowed as "
                                                 "$param:NAME or a dollar "
                                                 "quote ($tag$...$tag$)");
                        /* the tag, both '$' included, closes the string */
                        n += 2;
                        for (close = strchr(e + i + n, '$');
                             close && strncmp(close, e + i, n);
                             close = strchr(close + 1, '$'))
                                ;
                        if (!close)
                                return expr_fail(why, why_size,
                                                 "unterminated dollar quote");
                        i = (size_t)(close - e) + n;
                        continue;
                }
                if (c == ';')
                        return expr_fail(why, why_size, "';' outside quotes");
                if ((c == '-' && e[i + 1] == '-') ||
                    (c == '/' && e[i + 1] == '*'))
                        return expr_fail(why, why_size,
                                         "sql comments are not allowed");
                if (c == '\\')
                        return expr_fail(why, why_size, "'\\' outside quotes");
                if (c == '(')
                        depth++;
                else if (c == ')' && --depth < 0)
                        return expr_fail(why, why_size, "unbalanced ')'");
                i++;
        }
        if (depth)
                return expr_fail(why, why_size, "unbalanced '('");
        if (cntp)
                *cntp = cnt;
        return 1;
}

int drv_expr_valid(const char *expr, char *why, size_t why_size) {
        return drv_expr_scan(expr, NULL, 0, NULL, why, why_size);
}

drv_err_t drv_expr_rewrite(const char *expr, drv_expr_slot_fn *slot, void *arg,
                           const char *what, char **sqlp, char *errstr,
                           size_t errstr_size) {
        drv_expr_ref_t refs[DRV_BIND_MAX];
        size_t cnt = 0, i, pos = 0, len;
        char why[160], *out;
        int n;

        *sqlp = NULL;
        if (!what)
                what = "expression";
        if (!drv_expr_scan(expr, refs, DRV_BIND_MAX, &cnt, why, sizeof(why)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "invalid expression for %s: %s", what, why);
        if (cnt > DRV_BIND_MAX)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                                   "too many $param placeholders in %s", what);
        /* Each "$param:NAME" (>= 8 chars) becomes "$nn" (<= 3 chars). */
        len = strlen(expr);
        if (!(out = malloc(len + 1)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        out[0] = '\0';
        for (i = 0; i < cnt; i++) {
                n = slot(arg, expr + refs[i].name, refs[i].name_len);
                if (n <= 0 || n > 999) {
                        free(out);
                        if (n == 0)
                                return drv_err_set(
                                    errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                    "missing task param \"%.*s\" for %s",
                                    (int)refs[i].name_len, expr + refs[i].name,
                                    what);
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_INVALID_PLAN,
                            "too many $param placeholders in %s", what);
                }
                strncat(out, expr + pos, refs[i].start - pos);
                sprintf(out + strlen(out), "$%d", n);
                pos = refs[i].end;
        }
        strcat(out, expr + pos);
        *sqlp = out;
        return DRV_OK;
}

/* drv_expr_bind's slot: the placeholder of a param, reused by name. */
typedef struct bind_arg_s {
        drv_bind_t *bind;
        const drv_param_t *params;
        size_t params_cnt;
} bind_arg_t;

static int bind_slot(void *arg, const char *name, size_t len) {
        bind_arg_t *a = arg;
        drv_bind_t *bind = a->bind;
        size_t i;
        int k;

        for (k = 0; k < bind->cnt; k++)
                if (bind->names[k] && strlen(bind->names[k]) == len &&
                    !strncmp(bind->names[k], name, len))
                        return k + 1;
        for (i = 0; i < a->params_cnt; i++)
                if (strlen(a->params[i].key) == len &&
                    !strncmp(a->params[i].key, name, len)) {
                        if (bind->cnt >= DRV_BIND_MAX)
                                return -1;
                        bind->names[bind->cnt] = a->params[i].key;
                        bind->values[bind->cnt] = a->params[i].value;
                        return ++bind->cnt;
                }
        return 0;
}

drv_err_t drv_expr_bind(const char *expr, const drv_param_t *params,
                        size_t params_cnt, drv_bind_t *bind, char **sqlp,
                        char *errstr, size_t errstr_size) {
        bind_arg_t a = {bind, params, params_cnt};

        return drv_expr_rewrite(expr, bind_slot, &a, NULL, sqlp, errstr,
                                errstr_size);
}
