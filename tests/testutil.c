/*
 * drover - tests/testutil.c
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *need_env(const char *name) {
        const char *v = getenv(name);
        const char *req;

        if (v && *v)
                return v;
        req = getenv("DROVER_REQUIRE_STACK");
        if (req && !strcmp(req, "1")) {
                fprintf(stderr, "%s is not set but the stack is required\n",
                        name);
                exit(1);
        }
        fprintf(stderr,
                "%s not set: skipping (start the stack with "
                "scripts/kafka.sh and scripts/pg.sh)\n",
                name);
        exit(77);
}

const char *drv_test_brokers(void) {
        return need_env("DROVER_TEST_BROKERS");
}

const char *drv_test_database_url(void) {
        return need_env("DROVER_TEST_DATABASE_URL");
}

const char *drv_test_unique(const char *prefix) {
        static _Thread_local char buf[8][128];
        static int counter;
        int n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        char *out = buf[n % 8];

        snprintf(out, sizeof(buf[0]), "%s-%d-%lld-%d", prefix, (int)getpid(),
                 (long long)(drv_now_ms() % 100000000), n);
        return out;
}
