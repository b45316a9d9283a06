/*
 * sha256 against the FIPS 180-4 vectors; step and plan fingerprints are
 * the sha256 of canonical JSON, so key order and YAML style do not
 * change them, and any change to a step does.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static void test_sha256_vectors(void **state) {
        char out[65], *million;

        (void)state;
        drv_sha256_hex("", 0, out);
        assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb924"
                                 "27ae41e4649b934ca495991b7852b855");
        drv_sha256_hex("abc", 3, out);
        assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223"
                                 "b00361a396177a9cb410ff61f20015ad");
        drv_sha256_hex(
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
            out);
        assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039"
                                 "a33ce45964ff2167f6ecedd419db06c1");
        million = malloc(1000000);
        assert_non_null(million);
        memset(million, 'a', 1000000);
        drv_sha256_hex(million, 1000000, out);
        free(million);
        assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67"
                                 "f1809a48a497200e046d39ccc7112cd0");
}

static drv_plan_t *load_one(const char *yaml) {
        char errstr[512];
        drv_plan_t **plans;
        drv_plan_t *plan;
        size_t cnt;

        if (drv_plan_load_buf(yaml, strlen(yaml), "t.yaml", &plans, &cnt,
                              errstr, sizeof(errstr)))
                fail_msg("load: %s", errstr);
        assert_int_equal(cnt, 1);
        plan = drv_plan_retain(plans[0]);
        drv_plan_array_free(plans, cnt);
        return plan;
}

#define HEAD                                                    \
        "kind: Component\nmetadata: {name: p}\nspec:\n  type: " \
        "migration-plan\n"                                      \
        "  dataset: d\n  schemaVersion: {from: 1, to: 2}\n  steps:\n"

static void test_fingerprint_ignores_key_order_and_style(void **state) {
        drv_plan_t *a = load_one(HEAD "    - {op: backfill, table: t, set: {x: "
                                      "\"1\"}, batch_size: 10}\n");
        drv_plan_t *b = load_one(HEAD "    - batch_size: 10\n"
                                      "      set:\n        x: '1'\n"
                                      "      table: t\n      op: backfill\n");
        char expect[65];
        const char *canon =
            "{\"batch_size\":10,\"op\":\"backfill\",\"set\":{\"x\":\"1\"},"
            "\"table\":\"t\"}";

        (void)state;
        drv_sha256_hex(canon, strlen(canon), expect);
        assert_string_equal(a->steps[0].fingerprint, expect);
        assert_string_equal(b->steps[0].fingerprint, expect);
        assert_string_equal(a->fingerprint, b->fingerprint);
        assert_int_equal(a->steps[0].line, 8);
        assert_int_equal(b->steps[0].line, 8);
        drv_plan_release(a);
        drv_plan_release(b);
}

static void test_fingerprint_changes_with_the_step(void **state) {
        drv_plan_t *a = load_one(HEAD "    - {op: backfill, table: t, set: {x: "
                                      "\"1\"}, batch_size: 10}\n");
        drv_plan_t *b = load_one(HEAD "    - {op: backfill, table: t, set: {x: "
                                      "\"1\"}, batch_size: 11}\n");

        (void)state;
        assert_string_not_equal(a->steps[0].fingerprint,
                                b->steps[0].fingerprint);
        assert_string_not_equal(a->fingerprint, b->fingerprint);
        drv_plan_release(a);
        drv_plan_release(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sha256_vectors),
            cmocka_unit_test(test_fingerprint_ignores_key_order_and_style),
            cmocka_unit_test(test_fingerprint_changes_with_the_step),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
