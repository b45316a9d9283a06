/*
 * drover - tests/unit/test_consumer_worker_partition.c
 *
 * The partition state machine (consumer/worker/partition.c) from tables:
 * each scenario is a list of events (assign, start, fetch, dispatch,
 * outcome, retry, undispatch, commit, rewind, revoke, database back) with
 * the answer each must give, then the window's record states, the records
 * ready to run and the offset and metadata a commit would send.  Plus the
 * metadata codec and its size bound.
 */
#include "testutil.h"

#include "partition.h"

#include <stdlib.h>
#include <string.h>

typedef enum {
        E_END,
        E_ASSIGN,
        E_START, /* a = committed, ranges from `r` */
        E_FETCH, /* a = offset, k = key */
        E_DISPATCH,
        E_FINAL,
        E_RETRY, /* b = due */
        E_UNDISPATCH,
        E_COMMIT, /* commit the commit point */
        E_REWIND,
        E_REVOKE,
        E_DBBACK, /* b = now */
} ev_t;

typedef struct step_s {
        ev_t ev;
        int64_t a;
        int k;
        int64_t b;
        int ret; /* expected return (fetch: 0 kept, 1 dropped, -1 refused) */
} step_t;

typedef struct scenario_s {
        const char *name;
        step_t steps[24];
        drv_pt_range_t r[4]; /* for E_START */
        size_t rcnt;
        drv_pstate_t state;
        const char *window; /* record states, "W R T F C" per record */
        int64_t now;        /* for ready */
        const char *ready;  /* offsets ready, "0,1" */
        int commit;         /* drv_pt_commit_point's answer */
        int64_t commit_off;
        const char *meta;
} scenario_t;

static int frees;

static void job_free(void *job) {
        frees++;
        free(job);
}

static char estate_char(drv_estate_t s) {
        return "WRTFC"[s];
}

static void run_scenario(const scenario_t *sc) {
        drv_part_t p;
        drv_pt_cand_t cand[64];
        char got[256], meta[DRV_PT_META_BUDGET + 1];
        int64_t off;
        size_t i, n, len = 0;
        const step_t *s;
        void *job;

        drv_pt_init(&p, 3, job_free);
        for (s = sc->steps; s->ev != E_END; s++) {
                int ret = 0;
                switch (s->ev) {
                case E_ASSIGN:
                        ret = drv_pt_assign(&p, -1);
                        break;
                case E_START:
                        ret = drv_pt_start(&p, s->a, sc->r, sc->rcnt);
                        break;
                case E_FETCH:
                        job = malloc(8);
                        ret = drv_pt_fetched(&p, s->a, (uint64_t)s->k, 100, 0,
                                             (uint64_t)s->a, job);
                        if (ret < 0)
                                free(job);
                        break;
                case E_DISPATCH:
                        job = drv_pt_dispatch(&p, s->a);
                        ret = job ? 0 : -1;
                        free(job);
                        break;
                case E_FINAL:
                        ret = drv_pt_final(&p, s->a);
                        break;
                case E_RETRY:
                        job = malloc(8);
                        ret = drv_pt_retry(&p, s->a, s->b, job);
                        if (ret)
                                free(job);
                        break;
                case E_UNDISPATCH:
                        job = malloc(8);
                        ret = drv_pt_undispatch(&p, s->a, job);
                        if (ret)
                                free(job);
                        break;
                case E_COMMIT:
                        if (drv_pt_commit_point(&p, -1, &off, meta,
                                                sizeof(meta)))
                                drv_pt_committed(&p, off);
                        break;
                case E_REWIND:
                        ret = drv_pt_rewind(&p, -1);
                        break;
                case E_REVOKE:
                        ret = drv_pt_revoke(&p);
                        break;
                case E_DBBACK:
                        drv_pt_db_back(&p, s->b);
                        break;
                case E_END:
                        break;
                }
                if (ret != s->ret)
                        fail_msg("%s: step %d (event %d, offset %lld): %d, "
                                 "expected %d",
                                 sc->name, (int)(s - sc->steps), (int)s->ev,
                                 (long long)s->a, ret, s->ret);
        }
        assert_int_equal(p.state, sc->state);
        for (i = 0; i < p.cnt; i++) {
                got[len++] = estate_char(p.win[p.head + i].state);
                got[len++] = ' ';
        }
        got[len ? len - 1 : 0] = '\0';
        if (strcmp(got, sc->window))
                fail_msg("%s: window \"%s\", expected \"%s\"", sc->name, got,
                         sc->window);
        n = drv_pt_ready(&p, sc->now, cand, 64);
        for (i = 0, len = 0; i < n; i++)
                len += (size_t)sprintf(got + len, "%s%lld", i ? "," : "",
                                       (long long)cand[i].offset);
        got[len] = '\0';
        if (strcmp(got, sc->ready))
                fail_msg("%s: ready \"%s\", expected \"%s\"", sc->name, got,
                         sc->ready);
        if (drv_pt_commit_point(&p, -1, &off, meta, sizeof(meta)) !=
                sc->commit ||
            (sc->commit && (off != sc->commit_off || strcmp(meta, sc->meta))))
                fail_msg("%s: commit point %lld \"%s\", expected %d %lld "
                         "\"%s\"",
                         sc->name, (long long)off, meta, sc->commit,
                         (long long)sc->commit_off, sc->meta);
        drv_pt_fini(&p);
}

#define A \
        { E_ASSIGN, 0, 0, 0, 0 }
#define START(c) \
        { E_START, c, 0, 0, 0 }
#define FETCH(o, k) \
        { E_FETCH, o, k, 0, 0 }
#define FETCH_R(o, k, r) \
        { E_FETCH, o, k, 0, r }
#define DISPATCH(o) \
        { E_DISPATCH, o, 0, 0, 0 }
#define DISPATCH_R(o, r) \
        { E_DISPATCH, o, 0, 0, r }
#define FINAL(o) \
        { E_FINAL, o, 0, 0, 0 }
#define FINAL_R(o, r) \
        { E_FINAL, o, 0, 0, r }
#define RETRY(o, due) \
        { E_RETRY, o, 0, due, 0 }
#define UNDISPATCH(o) \
        { E_UNDISPATCH, o, 0, 0, 0 }
#define COMMIT \
        { E_COMMIT, 0, 0, 0, 0 }
#define REWIND \
        { E_REWIND, 0, 0, 0, 0 }
#define REWIND_R(r) \
        { E_REWIND, 0, 0, 0, r }
#define REVOKE \
        { E_REVOKE, 0, 0, 0, 0 }
#define DBBACK(now) \
        { E_DBBACK, 0, 0, now, 0 }
#define RUN(o) DISPATCH(o), FINAL(o)

static const scenario_t scenarios[] = {
    {.name = "unassigned refuses records and dispatch",
     .steps = {FETCH_R(0, 1, -1), DISPATCH_R(0, -1), REWIND_R(-1)},
     .state = DRV_PS_UNASSIGNED,
     .window = "",
     .ready = ""},
    {.name = "starting holds records until the offsets are read",
     .steps = {A, FETCH(0, 1), FETCH(1, 2), DISPATCH_R(0, -1)},
     .state = DRV_PS_STARTING,
     .window = "W W",
     .ready = ""},
    {.name = "different datasets are ready at once, one dataset in order",
     .steps = {A, FETCH(0, 1), FETCH(1, 2), FETCH(2, 1), START(-1)},
     .state = DRV_PS_ACTIVE,
     .window = "W W W",
     .ready = "0,1",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/"},
    {.name = "a later dataset finishes first: offset stays, metadata names "
             "it",
     .steps = {A, START(-1), FETCH(0, 1), FETCH(1, 2), FETCH(2, 3), DISPATCH(0),
               RUN(1), RUN(2)},
     .state = DRV_PS_ACTIVE,
     .window = "R F F",
     .ready = "",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/0+2"},
    {.name = "commit moves final records to committed, the low mark stays",
     .steps = {A, START(-1), FETCH(0, 1), FETCH(1, 2), FETCH(5, 3), DISPATCH(0),
               RUN(1), COMMIT, RUN(5)},
     .state = DRV_PS_ACTIVE,
     .window = "R C F",
     .ready = "",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/0+5"},
    {.name = "the low record finishes: committed moves past the final ones",
     .steps = {A, START(-1), FETCH(0, 1), FETCH(1, 2), FETCH(2, 1), DISPATCH(0),
               RUN(1), COMMIT, FINAL(0), COMMIT},
     .state = DRV_PS_ACTIVE,
     .window = "W",
     .ready = "2",
     .commit = 0},
    {.name = "the next task of a dataset is ready once the first is final",
     .steps = {A, START(-1), FETCH(0, 1), FETCH(1, 1), RUN(0)},
     .state = DRV_PS_ACTIVE,
     .window = "F W",
     .ready = "1",
     .commit = 1,
     .commit_off = 1,
     .meta = "v1:1/"},
    {.name = "a retry holds its dataset only, until it is due",
     .steps = {A, START(-1), FETCH(0, 1), FETCH(1, 1), FETCH(2, 2), DISPATCH(0),
               RETRY(0, 100)},
     .state = DRV_PS_ACTIVE,
     .window = "T W W",
     .now = 50,
     .ready = "2",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/"},
    {.name = "a due retry is ready again",
     .steps = {A, START(-1), FETCH(0, 1), FETCH(1, 1), DISPATCH(0),
               RETRY(0, 100)},
     .state = DRV_PS_ACTIVE,
     .window = "T W",
     .now = 100,
     .ready = "0",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/"},
    {.name = "a retry waiting for the database is due when it is back",
     .steps = {A, START(-1), FETCH(0, 1), DISPATCH(0), RETRY(0, 0), DBBACK(7)},
     .state = DRV_PS_ACTIVE,
     .window = "T",
     .now = 7,
     .ready = "0",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/"},
    {.name = "a retry waiting for the database is not ready before",
     .steps = {A, START(-1), FETCH(0, 1), DISPATCH(0), RETRY(0, 0)},
     .state = DRV_PS_ACTIVE,
     .window = "T",
     .now = 1000000,
     .ready = "",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/"},
    {.name = "only a running record can finish or retry",
     .steps = {A, START(-1), FETCH(0, 1), FINAL_R(0, -1), RUN(0),
               FINAL_R(0, -1), DISPATCH_R(0, -1)},
     .state = DRV_PS_ACTIVE,
     .window = "F",
     .ready = "",
     .commit = 1,
     .commit_off = 1,
     .meta = "v1:1/"},
    {.name = "a stop gives a job not started back to its record",
     .steps = {A, START(-1), FETCH(0, 1), DISPATCH(0), UNDISPATCH(0)},
     .state = DRV_PS_ACTIVE,
     .window = "W",
     .ready = "0",
     .commit = 1,
     .commit_off = 0,
     .meta = "v1:0/"},
    {.name = "records below the committed offset are dropped",
     .steps = {A, FETCH(3, 1), FETCH(4, 2), START(4), FETCH_R(2, 1, 1),
               FETCH_R(4, 1, 1)},
     .state = DRV_PS_ACTIVE,
     .window = "W",
     .ready = "4",
     .commit = 0},
    {.name = "records an earlier owner finished are skipped",
     .steps = {A, FETCH(10, 1), FETCH(11, 2), FETCH(12, 3), START(10),
               FETCH_R(13, 4, 1), FETCH(14, 5)},
     .r = {{12, 13}},
     .rcnt = 1,
     .state = DRV_PS_ACTIVE,
     .window = "W W C C W",
     .ready = "10,11,14",
     .commit = 0},
    {.name = "final offsets not fetched yet are carried into the next "
             "commit",
     .steps = {A, START(10), FETCH(10, 1), FETCH(11, 2), RUN(10)},
     .r = {{20, 22}},
     .rcnt = 1,
     .state = DRV_PS_ACTIVE,
     .window = "F W",
     .ready = "11",
     .commit = 1,
     .commit_off = 11,
     .meta = "v1:b/8+3"},
    {.name = "the committed offset never lands on a final one",
     .steps = {A, START(10), FETCH(10, 1), RUN(10)},
     .r = {{11, 12}, {13, 13}},
     .rcnt = 2,
     .state = DRV_PS_ACTIVE,
     .window = "F",
     .ready = "",
     .commit = 1,
     .commit_off = 14,
     .meta = "v1:e/"},
    {.name = "rewind forgets the window and starts again",
     .steps = {A, START(-1), FETCH(0, 1), FETCH(1, 2), DISPATCH(0), RUN(1),
               REWIND},
     .state = DRV_PS_STARTING,
     .window = "",
     .ready = ""},
    {.name = "revoke forgets everything",
     .steps = {A, START(-1), FETCH(0, 1), DISPATCH(0), REVOKE, A},
     .state = DRV_PS_STARTING,
     .window = "",
     .ready = ""},
};

static void test_transitions(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
                run_scenario(&scenarios[i]);
}

/* Every job the window owned is freed once, whatever the path out. */
static void test_jobs_freed_once(void **state) {
        drv_part_t p;
        drv_pt_range_t r = {5, 5};

        (void)state;
        frees = 0;
        drv_pt_init(&p, 0, job_free);
        drv_pt_assign(&p, -1);
        drv_pt_fetched(&p, 4, 1, 10, 0, 1, malloc(8)); /* below start */
        drv_pt_fetched(&p, 5, 1, 10, 0, 2, malloc(8)); /* final: skipped */
        drv_pt_fetched(&p, 6, 1, 10, 0, 3, malloc(8));
        drv_pt_start(&p, 5, &r, 1);
        assert_int_equal(frees, 2);
        assert_int_equal(p.bytes, 10);
        drv_pt_fetched(&p, 6, 1, 10, 0, 4, malloc(8)); /* a refetch */
        assert_int_equal(frees, 3);
        drv_pt_revoke(&p);
        assert_int_equal(frees, 4);
        assert_int_equal(p.bytes, 0);
        drv_pt_fini(&p);
}

static void test_fetch_hysteresis(void **state) {
        drv_pt_limits_t lim = {4, 1 << 20};
        drv_part_t p;
        int64_t o;

        (void)state;
        drv_pt_init(&p, 0, job_free);
        drv_pt_assign(&p, -1);
        drv_pt_start(&p, -1, NULL, 0);
        for (o = 0; o < 4; o++) {
                assert_true(drv_pt_fetch_wanted(&p, &lim));
                drv_pt_fetched(&p, o, (uint64_t)o, 10, 0, (uint64_t)o,
                               malloc(8));
        }
        assert_false(drv_pt_fetch_wanted(&p, &lim)); /* full: pause */
        drv_pt_set_paused(&p, 1);
        free(drv_pt_dispatch(&p, 0));
        drv_pt_final(&p, 0);
        drv_pt_committed(&p, 1);
        assert_false(drv_pt_fetch_wanted(&p, &lim)); /* 3 left: stay */
        free(drv_pt_dispatch(&p, 1));
        drv_pt_final(&p, 1);
        drv_pt_committed(&p, 2);
        assert_true(drv_pt_fetch_wanted(&p, &lim)); /* half: resume */
        drv_pt_fini(&p);
}

static void test_meta_roundtrip(void **state) {
        drv_pt_range_t in[3] = {{102, 104}, {107, 107}, {1000000, 1000009}};
        drv_pt_range_t *out;
        char buf[DRV_PT_META_BUDGET + 1];
        size_t n;

        (void)state;
        /* the example of docs/decisions.md */
        drv_pt_meta_encode(100, in, 2, buf, sizeof(buf));
        assert_string_equal(buf, "v1:2s/1+3,2+1");
        drv_pt_meta_encode(100, in, 3, buf, sizeof(buf));
        assert_int_equal(drv_pt_meta_decode(buf, strlen(buf), 100, &out, &n),
                         3);
        assert_int_equal(n, 3);
        assert_memory_equal(out, in, sizeof(in));
        free(out);
}

static void test_meta_decode_trusts_nothing_it_cannot_parse(void **state) {
        static const char *const bad[] = {
            "",
            "v1:",
            "v2:2s/1+3",
            "v1:2t/1+3",
            "v1:2s",
            "v1:2s/1+",
            "v1:2s/1+0",
            "v1:2s/1+3,",
            "v1:2s/1+3;",
            "v1:2s/+3",
            "v1:2S/1+3",
            "v1:2s/1+3,2+1_",
            "v1:2s/zzzzzzzzzzzzzz+1",
            "v1:2s/1+zzzzzzzzzzzzz",
        };
        drv_pt_range_t *out;
        size_t i, n;

        (void)state;
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (drv_pt_meta_decode(bad[i], strlen(bad[i]), 100, &out, &n) !=
                        0 ||
                    n != 0 || out)
                        fail_msg("\"%s\" decoded to %zu range(s)", bad[i], n);
        }
        assert_int_equal(drv_pt_meta_decode(NULL, 0, 100, &out, &n), 0);
        assert_int_equal(drv_pt_meta_decode("v1:2s/", 6, 100, &out, &n), 0);
}

/* Records spread far apart (long runs) finish out of order while the
 * ones between them keep running: dispatch stops before the budget could
 * be passed, and the metadata never passes it, so nothing is ever left
 * out of a commit. */
static void test_meta_budget_holds(void **state) {
        const int64_t step = INT64_C(4738381338321616896); /* 36^12 */
        drv_pt_cand_t cand[128];
        char meta[DRV_PT_META_BUDGET + 1];
        drv_part_t p;
        int64_t off;
        size_t n, i, most = 0, dispatched = 0;
        int round;

        (void)state;
        drv_pt_init(&p, 0, job_free);
        drv_pt_assign(&p, -1);
        drv_pt_start(&p, -1, NULL, 0);
        for (i = 0; i < 100; i++)
                drv_pt_fetched(&p, (int64_t)i * (step / 100), (uint64_t)i, 1, 0,
                               i, malloc(8));
        for (round = 0; round < 200; round++) {
                n = drv_pt_ready(&p, 0, cand, 128);
                for (i = 0; i < n; i++) {
                        free(drv_pt_dispatch(&p, cand[i].offset));
                        dispatched++;
                        /* the lowest never finishes; every other odd one
                         * does (runs cannot merge) */
                        if (cand[i].offset != 0 &&
                            (cand[i].offset / (step / 100)) % 2 == 1)
                                drv_pt_final(&p, cand[i].offset);
                }
                drv_pt_commit_point(&p, -1, &off, meta, sizeof(meta));
                if (strlen(meta) > most)
                        most = strlen(meta);
                if (n == 0)
                        break;
        }
        assert_true(most <= DRV_PT_META_BUDGET);
        assert_true(most > 200);       /* runs piled up */
        assert_true(dispatched < 100); /* and the budget stopped dispatch */
        drv_pt_fini(&p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_transitions),
            cmocka_unit_test(test_jobs_freed_once),
            cmocka_unit_test(test_fetch_hysteresis),
            cmocka_unit_test(test_meta_roundtrip),
            cmocka_unit_test(test_meta_decode_trusts_nothing_it_cannot_parse),
            cmocka_unit_test(test_meta_budget_holds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
