/*
 * YAML -> JSON: the core-schema scalars, several documents, lines kept,
 * and the refusals (aliases, duplicate keys, non-string keys, depth).
 */
#include "testutil.h"
#include "plan_int.h"

#include <stdlib.h>
#include <string.h>

static void test_scalars_follow_the_core_schema(void **state) {
        const char *y = "a: 1\nb: -2.5e3\nc: true\nd: ~\ne: '1'\nf: \"true\"\n"
                        "g: yes\nh: 0x1f\ni: !!str 7\nj: 99999999999999999999\n"
                        "k: .5\nl:\n";
        drv_ystream_t ys;
        char errstr[256];
        json_t *r;

        (void)state;
        assert_int_equal(
            drv_yaml_parse(y, strlen(y), "s.yaml", &ys, errstr, sizeof(errstr)),
            DRV_OK);
        assert_int_equal(ys.docs_cnt, 1);
        r = ys.docs[0].root;
        assert_int_equal(json_integer_value(json_object_get(r, "a")), 1);
        assert_true(json_real_value(json_object_get(r, "b")) == -2500.0);
        assert_true(json_is_true(json_object_get(r, "c")));
        assert_true(json_is_null(json_object_get(r, "d")));
        assert_string_equal(json_string_value(json_object_get(r, "e")), "1");
        assert_string_equal(json_string_value(json_object_get(r, "f")), "true");
        assert_string_equal(json_string_value(json_object_get(r, "g")), "yes");
        assert_string_equal(json_string_value(json_object_get(r, "h")), "0x1f");
        assert_string_equal(json_string_value(json_object_get(r, "i")), "7");
        /* too big for an integer: a float, as in JavaScript */
        assert_true(json_is_number(json_object_get(r, "j")));
        assert_true(json_real_value(json_object_get(r, "k")) == 0.5);
        assert_true(json_is_null(json_object_get(r, "l")));
        assert_int_equal(drv_linemap_get(ys.lines, json_object_get(r, "e"), 0),
                         5);
        drv_ystream_free(&ys);
}

static void test_documents_and_their_lines(void **state) {
        const char *y =
            "# comment\n---\nx: [1, 2]\n---\n---\ny:\n  z: {q: 1}\n";
        drv_ystream_t ys;
        char errstr[256];
        const json_t *z;

        (void)state;
        assert_int_equal(
            drv_yaml_parse(y, strlen(y), "d.yaml", &ys, errstr, sizeof(errstr)),
            DRV_OK);
        assert_int_equal(ys.docs_cnt, 3);
        assert_int_equal(ys.docs[0].line, 2);
        assert_true(json_is_null(ys.docs[1].root));
        z = json_object_get(json_object_get(ys.docs[2].root, "y"), "z");
        assert_int_equal(drv_linemap_get(ys.lines, z, 0), 7);
        assert_int_equal(
            drv_linemap_get(ys.lines, json_object_get(ys.docs[0].root, "x"), 0),
            3);
        drv_ystream_free(&ys);
}

static void test_refusals(void **state) {
        static const struct {
                const char *yaml, *want;
        } cases[] = {
            {"a: &x [1]\nb: *x\n", "r.yaml:2: yaml aliases"},
            {"a: 1\nb: 2\na: 3\n", "r.yaml:3: duplicate key: a"},
            {"? [1]\n: 2\n", "r.yaml:1: mapping keys must be strings"},
            {"a: [1\n", "r.yaml:2: yaml: "},
            {"a: \"\\x\"\n", "r.yaml:1: yaml: "},
        };
        drv_ystream_t ys;
        char errstr[256], deep[400];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                assert_int_equal(drv_yaml_parse(cases[i].yaml,
                                                strlen(cases[i].yaml), "r.yaml",
                                                &ys, errstr, sizeof(errstr)),
                                 DRV_ERR_INVALID_PLAN);
                if (strncmp(errstr, cases[i].want, strlen(cases[i].want)))
                        fail_msg("case %zu: got \"%s\"", i, errstr);
        }
        memset(deep, '[', 200);
        deep[200] = '\0';
        assert_int_equal(drv_yaml_parse(deep, strlen(deep), "r.yaml", &ys,
                                        errstr, sizeof(errstr)),
                         DRV_ERR_INVALID_PLAN);
        assert_non_null(strstr(errstr, "nesting too deep"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_scalars_follow_the_core_schema),
            cmocka_unit_test(test_documents_and_their_lines),
            cmocka_unit_test(test_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
