/*
 * drover - tests/unit/test_transforms_expr.c: the one tokenizer and
 * binder of plan expressions (transforms/expr.c).  Plan check
 * (drv_expr_valid, drv_plan_load) and the runtime SQL builder
 * (drv_sql_expr) must agree on every expression: what one accepts the
 * other runs, and a `$param:NAME` inside a quoted literal is text for
 * both.
 */
#include "testutil.h"
#include "db_int.h"

#include <stdlib.h>
#include <string.h>

static const drv_param_t params[] = {{(char *)"x", (char *)"vx"},
                                     {(char *)"y", (char *)"vy"}};

typedef struct expr_case_s {
        const char *expr;
        const char *want; /* rewritten text, or NULL: refused */
        const char *why;  /* part of the reason when refused */
} expr_case_t;

static const expr_case_t cases[] = {
    /* quoted literals are text, params in them are not params */
    {"'$param:x'", "'$param:x'", NULL},
    {"'it''s $param:x'", "'it''s $param:x'", NULL},
    {"'a' || $param:x || 'b'", "'a' || $1 || 'b'", NULL},
    {"'' || $param:x", "'' || $1", NULL},
    {"'a;b' || '--' || '/*' || '('", "'a;b' || '--' || '/*' || '('", NULL},
    /* dollar quotes */
    {"$$ $param:x; ( -- $$", "$$ $param:x; ( -- $$", NULL},
    {"$t$ a $$ b $t$ || $param:y", "$t$ a $$ b $t$ || $1", NULL},
    {"$t$\\d+$t$", "$t$\\d+$t$", NULL},
    {"$$x", NULL, "unterminated dollar quote"},
    /* quoted identifiers */
    {"\"$param:x\" || $param:x", "\"$param:x\" || $1", NULL},
    {"\"a\"\"b;\"", "\"a\"\"b;\"", NULL},
    {"\"open", NULL, "unterminated quote"},
    /* comments */
    {"1 -- c", NULL, "comments"},
    {"1 /* c */", NULL, "comments"},
    /* several params, each bound */
    {"coalesce($param:x, $param:y, $param:x)", "coalesce($1, $2, $3)", NULL},
    {"lower($param:x)||$param:y", "lower($1)||$2", NULL},
    /* refused */
    {"", NULL, "empty"},
    {"1; select 2", NULL, "';' outside quotes"},
    {"'open", NULL, "unterminated quote"},
    {"'it''s", NULL, "unterminated quote"},
    {"E'a\\'b'", NULL, "escape strings"},
    {"e'x'", NULL, "escape strings"},
    {"'a\\b'", NULL, "backslashes"},
    {"$1", NULL, "$param:NAME"},
    {"$param:", NULL, "$param:NAME"},
    {"$param:1x", NULL, "$param:NAME"},
    {"a$param:x", NULL, "identifier"},
    {"(1", NULL, "unbalanced"},
    {"1) OR (1", NULL, "unbalanced"},
    {"$a$($a$) WHERE false OR ($a$)$a$", NULL, "unbalanced"},
    /* words ending in e/E before a quote are not escape strings */
    {"name = 'e'", "name = 'e'", NULL},
    {"type 'x'", "type 'x'", NULL},
};

static void test_tokenizer_table(void **state) {
        char why[200], errstr[256], *out;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const expr_case_t *c = &cases[i];
                drv_bind_t bind = {.cnt = 0};
                int ok = drv_expr_valid(c->expr, why, sizeof(why));
                drv_err_t err;

                if (ok != (c->want != NULL))
                        fail_msg("case %zu \"%s\": valid %d (%s)", i, c->expr,
                                 ok, ok ? "" : why);
                if (!ok && !strstr(why, c->why))
                        fail_msg("case %zu \"%s\": reason \"%s\", want \"%s\"",
                                 i, c->expr, why, c->why);
                err = drv_expr_bind(c->expr, params, 2, &bind, &out, errstr,
                                    sizeof(errstr));
                if (!c->want) {
                        assert_int_equal(err, DRV_ERR_INVALID_PLAN);
                        assert_null(out);
                        continue;
                }
                assert_int_equal(err, DRV_OK);
                /* drv_expr_bind reuses a name's placeholder */
                if (strstr(c->expr, "$param:x, $param:y, $param:x"))
                        assert_string_equal(out, "coalesce($1, $2, $1)");
                else
                        assert_string_equal(out, c->want);
                free(out);
        }
}

/* Plan check and the runtime builder agree on every case: accepted by
 * one iff by the other, and the built text is the same. */
static void test_plan_check_and_runtime_agree(void **state) {
        drv_run_opts_t opts;
        char errstr[256], want[512];
        size_t i;

        (void)state;
        memset(&opts, 0, sizeof(opts));
        opts.params = params;
        opts.params_cnt = 2;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                const expr_case_t *c = &cases[i];
                int checked = drv_expr_valid(c->expr, NULL, 0);
                drv_sql_t sql;
                drv_err_t err;

                drv_sql_init(&sql);
                err = drv_sql_expr(&sql, c->expr, &opts, "set", errstr,
                                   sizeof(errstr));
                if (checked != (err == DRV_OK))
                        fail_msg("case %zu \"%s\": plan check %d, runtime %s",
                                 i, c->expr, checked, err ? errstr : "ok");
                if (!err) {
                        snprintf(want, sizeof(want), "(%s)", c->want);
                        assert_string_equal(sql.buf, want);
                }
                drv_sql_free(&sql);
        }
}

/* The case: a quoted "$param:x" binds nothing (it bound one
 * value no placeholder used: PostgreSQL's 08P01 at run time). */
static void test_quoted_param_binds_nothing(void **state) {
        drv_run_opts_t opts;
        char errstr[256];
        drv_sql_t sql;

        (void)state;
        memset(&opts, 0, sizeof(opts));
        opts.params = params;
        opts.params_cnt = 2;
        drv_sql_init(&sql);
        assert_int_equal(drv_sql_expr(&sql, "'$param:x'", &opts, "set", errstr,
                                      sizeof(errstr)),
                         DRV_OK);
        assert_string_equal(sql.buf, "('$param:x')");
        assert_int_equal(sql.nparams, 0);
        drv_sql_free(&sql);
}

/* An unknown param is refused, naming it. */
static void test_unknown_param_refused(void **state) {
        drv_bind_t bind = {.cnt = 0};
        char errstr[256], *out;

        (void)state;
        assert_int_equal(drv_expr_bind("lower($param:nope)", params, 2, &bind,
                                       &out, errstr, sizeof(errstr)),
                         DRV_ERR_INVALID_PARAM);
        assert_null(out);
        assert_non_null(strstr(errstr, "\"nope\""));
        /* inside a literal it is no param at all */
        assert_int_equal(drv_expr_bind("'$param:nope'", params, 2, &bind, &out,
                                       errstr, sizeof(errstr)),
                         DRV_OK);
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tokenizer_table),
            cmocka_unit_test(test_plan_check_and_runtime_agree),
            cmocka_unit_test(test_quoted_param_binds_nothing),
            cmocka_unit_test(test_unknown_param_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
