/*
 * drover - dlq/backoff.c: exponential backoff with full jitter.
 *
 * delay(n) = uniform [0, min(max_delay, initial * multiplier^(n-1))]
 * ("full jitter": retries of many tasks spread out instead of arriving
 * together).  The budget is spent after max_attempts failures or once
 * max_elapsed has passed since the first failure, whichever comes first.
 */
#include "dlq.h"

#include <math.h>

void drv_backoff_conf_defaults(drv_backoff_conf_t *conf) {
        if (!conf)
                return;
        conf->initial_ms = 500;
        conf->multiplier = 2.0;
        conf->max_delay_ms = 60000;
        conf->max_attempts = 8;
        conf->max_elapsed_ms = 600000;
}

/* splitmix64: small, fast, and good enough to spread retries. */
static uint64_t rng_next(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

int64_t drv_backoff_cap_ms(const drv_backoff_conf_t *conf, int attempt) {
        drv_backoff_conf_t dflt;
        double cap, mult;

        if (!conf) {
                drv_backoff_conf_defaults(&dflt);
                conf = &dflt;
        }
        if (attempt < 1)
                attempt = 1;
        mult = conf->multiplier < 1.0 ? 1.0 : conf->multiplier;
        /* pow() saturates to inf, never wraps: compare in double first */
        cap = (double)(conf->initial_ms > 0 ? conf->initial_ms : 0) *
              pow(mult, (double)(attempt - 1));
        if (conf->max_delay_ms > 0 && cap > (double)conf->max_delay_ms)
                cap = (double)conf->max_delay_ms;
        if (cap > (double)INT64_MAX / 2)
                cap = (double)INT64_MAX / 2;
        return (int64_t)cap;
}

int64_t drv_backoff_delay_ms(const drv_backoff_conf_t *conf, int attempt,
                             uint64_t *rng) {
        int64_t cap = drv_backoff_cap_ms(conf, attempt);
        uint64_t local = 0x5eed;

        if (cap <= 0)
                return 0;
        if (!rng)
                rng = &local;
        return (int64_t)(rng_next(rng) % ((uint64_t)cap + 1));
}

int drv_backoff_exhausted(const drv_backoff_conf_t *conf, int attempts,
                          int64_t first_failure_ms, int64_t now_ms) {
        drv_backoff_conf_t dflt;

        if (!conf) {
                drv_backoff_conf_defaults(&dflt);
                conf = &dflt;
        }
        if (conf->max_attempts > 0 && attempts >= conf->max_attempts)
                return 1;
        if (conf->max_elapsed_ms > 0 && first_failure_ms > 0 &&
            now_ms - first_failure_ms >= conf->max_elapsed_ms)
                return 1;
        return 0;
}

int64_t drv_backoff_retry_after_ms(const drv_backoff_conf_t *conf,
                                   int64_t now_ms) {
        drv_backoff_conf_t dflt;

        if (!conf) {
                drv_backoff_conf_defaults(&dflt);
                conf = &dflt;
        }
        return now_ms + (conf->max_delay_ms > 0 ? conf->max_delay_ms : 0);
}
