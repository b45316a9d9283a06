/*
 * spec.throttle: read into the plan, left out of its fingerprint; the
 * plan's fields override the worker's one by one; what a throttle query
 * may be.  (Bad spec.throttle values: test_transforms_plan_validate.)
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define DOC                                               \
        "kind: Component\nmetadata:\n  name: p\n"         \
        "spec:\n  type: migration-plan\n  dataset: d\n%s" \
        "  schemaVersion: {from: 1, to: 2}\n  steps:\n"   \
        "    - {op: backfill, table: t, set: {a: \"1\"}, batch_size: 10}\n"

static drv_plan_t *load(const char *extra) {
        return drv_test_plan(DOC, extra);
}

static void test_plan_throttle_is_read_and_not_fingerprinted(void **state) {
        drv_plan_t *none = load("");
        drv_plan_t *some = load("  throttle: {max_replica_lag_ms: 2000, query: "
                                "\"SELECT paused FROM flags\"}\n");
        drv_plan_t *other =
            load("  throttle:\n    max_active_connections: 7\n");
        json_t *json;

        (void)state;
        assert_false(drv_throttle_is_set(&none->throttle));
        assert_int_equal(some->throttle.max_replica_lag_ms, 2000);
        assert_int_equal(some->throttle.max_active_connections, 0);
        assert_string_equal(some->throttle.query, "SELECT paused FROM flags");
        assert_int_equal(other->throttle.max_active_connections, 7);
        assert_null(other->throttle.query);
        /* how fast a plan runs is not what it does: loosening the
         * throttle mid-run keeps its ledger rows */
        assert_string_equal(some->fingerprint, none->fingerprint);
        assert_string_equal(other->fingerprint, none->fingerprint);
        /* plan show --json shows it as written */
        json = drv_plan_to_json(some);
        assert_int_equal(
            json_integer_value(json_object_get(
                json_object_get(json, "throttle"), "max_replica_lag_ms")),
            2000);
        json_decref(json);
        json = drv_plan_to_json(none);
        assert_true(json_is_null(json_object_get(json, "throttle")));
        json_decref(json);
        drv_plan_release(none);
        drv_plan_release(some);
        drv_plan_release(other);
}

static void test_plan_fields_override_the_workers(void **state) {
        drv_throttle_t worker = {1000, 50, "SELECT false"};
        drv_throttle_t plan = {0, 5, NULL}, out;
        drv_throttle_t plan_q = {0, 0, "SELECT paused FROM flags"};

        (void)state;
        drv_throttle_merge(&worker, &plan, &out);
        assert_int_equal(out.max_replica_lag_ms, 1000);
        assert_int_equal(out.max_active_connections, 5);
        assert_string_equal(out.query, "SELECT false");
        drv_throttle_merge(&worker, &plan_q, &out);
        assert_int_equal(out.max_active_connections, 50);
        assert_string_equal(out.query, "SELECT paused FROM flags");
        drv_throttle_merge(NULL, &plan, &out);
        assert_int_equal(out.max_replica_lag_ms, 0);
        assert_null(out.query);
        drv_throttle_merge(NULL, NULL, &out);
        assert_false(drv_throttle_is_set(&out));
}

static void test_query_rules(void **state) {
        static const struct {
                const char *query;
                int ok;
        } cases[] = {
            {"SELECT paused FROM flags", 1},
            {"  select exists (SELECT 1 FROM jobs WHERE busy)", 1},
            {"SELECT\n now() > '2026-01-01'::timestamptz", 1},
            {"SELECT 'a;b' = 'a;b'", 1},
            {"SELECTx FROM t", 0},
            {"UPDATE flags SET paused = false", 0},
            {"WITH x AS (SELECT 1) SELECT true", 0},
            {"SELECT 1; SELECT 2", 0},
            {"SELECT true -- comment", 0},
            {"SELECT $param:who = 'x'", 0},
            {"", 0},
            {NULL, 0},
        };
        char why[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                why[0] = '\0';
                if (drv_throttle_query_valid(cases[i].query, why,
                                             sizeof(why)) != cases[i].ok)
                        fail_msg("case %zu (\"%s\"): want %d (%s)", i,
                                 cases[i].query ? cases[i].query : "(null)",
                                 cases[i].ok, why);
                if (!cases[i].ok && !why[0])
                        fail_msg("case %zu: no reason", i);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_plan_throttle_is_read_and_not_fingerprinted),
            cmocka_unit_test(test_plan_fields_override_the_workers),
            cmocka_unit_test(test_query_rules),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
