/*
 * tests/unit/test_dlq_backoff.c: exponential backoff with full jitter.
 */
#include "testutil.h"

static drv_backoff_conf_t conf_of(int64_t initial, double mult,
                                  int64_t max_delay, int max_attempts,
                                  int64_t max_elapsed) {
        drv_backoff_conf_t c;

        c.initial_ms = initial;
        c.multiplier = mult;
        c.max_delay_ms = max_delay;
        c.max_attempts = max_attempts;
        c.max_elapsed_ms = max_elapsed;
        return c;
}

static void test_defaults(void **state) {
        drv_backoff_conf_t c;

        (void)state;
        drv_backoff_conf_defaults(&c);
        assert_int_equal(c.initial_ms, 500);
        assert_true(c.multiplier == 2.0);
        assert_int_equal(c.max_delay_ms, 60000);
        assert_int_equal(c.max_attempts, 8);
        assert_int_equal(c.max_elapsed_ms, 600000);
        drv_backoff_conf_defaults(NULL); /* no crash */
}

static void test_cap_grows_then_saturates(void **state) {
        drv_backoff_conf_t c = conf_of(100, 2.0, 1000, 10, 0);

        (void)state;
        assert_int_equal(drv_backoff_cap_ms(&c, 0), 100);
        assert_int_equal(drv_backoff_cap_ms(&c, 1), 100);
        assert_int_equal(drv_backoff_cap_ms(&c, 2), 200);
        assert_int_equal(drv_backoff_cap_ms(&c, 3), 400);
        assert_int_equal(drv_backoff_cap_ms(&c, 4), 800);
        assert_int_equal(drv_backoff_cap_ms(&c, 5), 1000);
        /* huge attempt numbers saturate, never wrap negative */
        assert_int_equal(drv_backoff_cap_ms(&c, 100000), 1000);
        c.max_delay_ms = 0; /* no cap: still finite and positive */
        assert_true(drv_backoff_cap_ms(&c, 100000) > 0);
}

static void test_delay_within_bounds(void **state) {
        drv_backoff_conf_t c = conf_of(100, 3.0, 5000, 10, 0);
        uint64_t rng = 42;
        int attempt, i;

        (void)state;
        for (attempt = 1; attempt <= 8; attempt++) {
                int64_t cap = drv_backoff_cap_ms(&c, attempt);
                for (i = 0; i < 2000; i++) {
                        int64_t d = drv_backoff_delay_ms(&c, attempt, &rng);
                        assert_true(d >= 0);
                        assert_true(d <= cap);
                }
        }
        c.initial_ms = 0;
        assert_int_equal(drv_backoff_delay_ms(&c, 3, &rng), 0);
}

/* Full jitter: delays spread across the whole [0, cap] range, roughly
 * uniformly (each tenth gets a share), and two seeds differ. */
static void test_jitter_spreads_over_the_range(void **state) {
        drv_backoff_conf_t c = conf_of(1000, 2.0, 60000, 10, 0);
        uint64_t rng = 7, rng2 = 8;
        int buckets[10] = {0};
        int i, same = 0;
        double sum = 0;

        (void)state;
        for (i = 0; i < 10000; i++) {
                int64_t d = drv_backoff_delay_ms(&c, 4, &rng); /* cap 8000 */
                buckets[d * 10 / 8001]++;
                sum += (double)d;
        }
        for (i = 0; i < 10; i++)
                assert_in_range(buckets[i], 800, 1200);
        assert_true(sum / 10000 > 3700 && sum / 10000 < 4300);
        rng = 7;
        for (i = 0; i < 100; i++)
                same += drv_backoff_delay_ms(&c, 4, &rng) ==
                        drv_backoff_delay_ms(&c, 4, &rng2);
        assert_true(same < 5);
}

static void test_exhausted_by_attempts(void **state) {
        drv_backoff_conf_t c = conf_of(100, 2.0, 1000, 3, 0);

        (void)state;
        assert_false(drv_backoff_exhausted(&c, 1, 1000, 1000));
        assert_false(drv_backoff_exhausted(&c, 2, 1000, 1000));
        assert_true(drv_backoff_exhausted(&c, 3, 1000, 1000));
        assert_true(drv_backoff_exhausted(&c, 4, 1000, 1000));
        c.max_attempts = 0; /* off */
        assert_false(drv_backoff_exhausted(&c, 1000, 1000, 1000));
}

static void test_exhausted_by_elapsed(void **state) {
        drv_backoff_conf_t c = conf_of(100, 2.0, 1000, 100, 5000);

        (void)state;
        assert_false(drv_backoff_exhausted(&c, 1, 10000, 14999));
        assert_true(drv_backoff_exhausted(&c, 1, 10000, 15000));
        assert_true(drv_backoff_exhausted(&c, 1, 10000, 99999));
        c.max_elapsed_ms = 0; /* off */
        assert_false(drv_backoff_exhausted(&c, 1, 10000, 99999));
}

static void test_retry_after(void **state) {
        drv_backoff_conf_t c = conf_of(100, 2.0, 30000, 3, 0);

        (void)state;
        assert_int_equal(drv_backoff_retry_after_ms(&c, 1000000), 1030000);
        assert_int_equal(drv_backoff_retry_after_ms(NULL, 1000000), 1060000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_cap_grows_then_saturates),
            cmocka_unit_test(test_delay_within_bounds),
            cmocka_unit_test(test_jitter_spreads_over_the_range),
            cmocka_unit_test(test_exhausted_by_attempts),
            cmocka_unit_test(test_exhausted_by_elapsed),
            cmocka_unit_test(test_retry_after),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
