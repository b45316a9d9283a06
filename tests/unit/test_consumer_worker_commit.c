/*
 * drover - tests/unit/test_consumer_worker_commit.c
 *
 * The worker's transactional commit path (worker_txn.c) on librdkafka's
 * mock cluster with injected broker errors: a retriable error is retried
 * and commits, an abortable one aborts, drops the outcomes and rewinds the
 * partition so its tasks are fetched again, a fatal one (or one with no
 * flag) stops the worker.
 * The mock cannot prove exactly-once (tests/integration does, on a real
 * broker); it only drives the error routes.
 */
#include "testutil.h"

#include "worker_int.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>

#define APIKEY_END_TXN           26
#define APIKEY_TXN_OFFSET_COMMIT 28
#define NMSGS                    3

typedef struct fixture_s {
        rd_kafka_t *mock_rk;
        rd_kafka_mock_cluster_t *mcluster;
        drv_config_t *conf;
        drv_worker_t *w;
        rd_kafka_message_t *msgs[NMSGS];
} fixture_t;

static void produce_tasks(const char *bootstraps) {
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char errstr[256];
        rd_kafka_t *rk;
        int i;

        rd_kafka_conf_set(kc, "bootstrap.servers", bootstraps, errstr,
                          sizeof(errstr));
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
        assert_non_null(rk);
        for (i = 0; i < NMSGS; i++)
                assert_int_equal(
                    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("tasks"),
                                      RD_KAFKA_V_PARTITION(0),
                                      RD_KAFKA_V_VALUE("x", 1), RD_KAFKA_V_END),
                    0);
        assert_int_equal(rd_kafka_flush(rk, 10000), 0);
        rd_kafka_destroy(rk);
}

/* Fetch NMSGS task messages of partition 0 starting at offset `from`
 * (the worker starts a partition without a committed offset itself). */
static void fetch(fixture_t *f, int64_t from) {
        int got = 0, i;
        rd_kafka_message_t *m;

        for (i = 0; i < 300 && got < NMSGS; i++) {
                drv_worker_start_tick(f->w); /* as the worker's loop */
                drv_worker_restart_tick(f->w);
                if (!(m = rd_kafka_consumer_poll(f->w->rk, 100)))
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
                        drv_worker_offset_reset(f->w, m->partition, m->offset);
                if (m->err || m->offset != from + got) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                f->msgs[got++] = m;
        }
        assert_int_equal(got, NMSGS);
}

static int setup(void **state) {
        fixture_t *f = calloc(1, sizeof(*f));
        rd_kafka_conf_t *kc = rd_kafka_conf_new();
        char errstr[512];
        const char *boot;

        rd_kafka_conf_set(kc, "log_level", "0", errstr, sizeof(errstr));
        f->mock_rk =
            rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
        f->mcluster = rd_kafka_mock_cluster_new(f->mock_rk, 1);
        rd_kafka_mock_topic_create(f->mcluster, "tasks", 1, 1);
        rd_kafka_mock_topic_create(f->mcluster, "tasks.status", 1, 1);
        rd_kafka_mock_topic_create(f->mcluster, "tasks.dlq", 1, 1);
        boot = rd_kafka_mock_cluster_bootstraps(f->mcluster);
        produce_tasks(boot);

        f->conf = drv_config_new();
        assert_int_equal(drv_config_set(f->conf, "brokers", boot, "test",
                                        errstr, sizeof(errstr)),
                         DRV_OK);
        drv_config_set(f->conf, "topic", "tasks", "test", errstr,
                       sizeof(errstr));
        drv_config_set(f->conf, "instance", drv_test_unique("mock"), "test",
                       errstr, sizeof(errstr));
        drv_config_set(f->conf, "kafka.log_level", "2", "test", errstr,
                       sizeof(errstr));
        assert_int_equal(drv_config_finish(f->conf, errstr, sizeof(errstr)),
                         DRV_OK);
        f->w = calloc(1, sizeof(*f->w));
        f->w->conf = f->conf;
        f->w->window.records = 64;
        f->w->window.bytes = 1 << 20;
        drv_jobq_init(&f->w->jobs);
        drv_jobq_init(&f->w->outcomes);
        if (drv_worker_kafka_new(f->w, errstr, sizeof(errstr)))
                fail_msg("%s", errstr);
        fetch(f, 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture_t *f = *state;

        drv_worker_destroy(f->w);
        drv_config_destroy(f->conf);
        rd_kafka_mock_cluster_destroy(f->mcluster);
        rd_kafka_destroy(f->mock_rk);
        free(f);
        return 0;
}

/* The fetched messages become finished jobs awaiting the commit, as the
 * poll loop leaves them: in the window, run, final. */
static void make_pending(fixture_t *f) {
        drv_part_t *p = drv_worker_part(f->w, 0);
        int i;

        assert_int_equal(p->state, DRV_PS_ACTIVE);
        for (i = 0; i < NMSGS; i++) {
                drv_job_t *job = calloc(1, sizeof(*job));
                job->msg = f->msgs[i];
                f->msgs[i] = NULL;
                job->partition = 0;
                job->offset = job->msg->offset;
                assert_int_equal(drv_pt_fetched(p, job->offset,
                                                drv_pt_key_hash("k", 1), 1, 0,
                                                (uint64_t)i, job),
                                 0);
                assert_ptr_equal(drv_pt_dispatch(p, job->offset), job);
                job->epoch = p->epoch;
                job->outcome = i == 1 ? DRV_OUT_DEAD : DRV_OUT_DONE;
                job->res.failed_step = -1;
                assert_int_equal(drv_pt_final(p, job->offset), 0);
                if (f->w->pending_tail)
                        f->w->pending_tail->next = job;
                else
                        f->w->pending = job;
                f->w->pending_tail = job;
        }
        /* outcomes in: nothing of the partition is unfinished */
        assert_int_equal(drv_pt_busy(p), 0);
}

static void test_commit_succeeds_after_a_retriable_error(void **state) {
        fixture_t *f = *state;
        drv_part_t *p;

        rd_kafka_mock_push_request_errors(
            f->mcluster, APIKEY_TXN_OFFSET_COMMIT, 1,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
        make_pending(f);
        assert_int_equal(drv_worker_commit(f->w), 0);
        p = drv_worker_part(f->w, 0);
        assert_null(f->w->pending);
        assert_int_equal(p->committed, NMSGS);
        assert_int_equal(p->cnt, 0); /* the window moved past them */
        assert_int_equal(f->w->fatal, 0);
}

static void test_abortable_error_rewinds_and_redelivers(void **state) {
        fixture_t *f = *state;
        drv_part_t *p;
        unsigned epoch;

        rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_TXN_OFFSET_COMMIT,
                                          1,
                                          RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
        make_pending(f);
        p = drv_worker_part(f->w, 0);
        epoch = p->epoch;
        assert_int_equal(drv_worker_commit(f->w), 1);
        assert_null(f->w->pending);
        assert_int_equal(f->w->fatal, 0);
        assert_int_equal(p->state, DRV_PS_STARTING); /* offsets read again */
        assert_int_equal(p->cnt, 0);
        assert_int_equal(p->paused, 0);
        assert_true(p->epoch != epoch); /* outcomes in flight are dropped */
        /* nothing was committed: the same tasks come again from offset 0 */
        fetch(f, 0);
        make_pending(f);
        assert_int_equal(drv_worker_commit(f->w), 0);
        assert_int_equal(drv_worker_part(f->w, 0)->committed, NMSGS);
}

/* A task no executor has started when its partition is rewound (or
 * revoked) is taken off the executor queue: started later it would run
 * behind the partition's next delivery (or new owner).  Another
 * partition's queued task stays. */
static void test_rewind_takes_unstarted_tasks_off_the_queue(void **state) {
        fixture_t *f = *state;
        drv_job_t *mine = calloc(1, sizeof(*mine));
        drv_job_t *other = calloc(1, sizeof(*other));
        drv_job_t *left;

        rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_TXN_OFFSET_COMMIT,
                                          1,
                                          RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
        make_pending(f);
        mine->partition = 0;
        mine->offset = NMSGS;
        mine->epoch = drv_worker_part(f->w, 0)->epoch;
        other->partition = 7;
        drv_jobq_push(&f->w->jobs, mine);
        drv_jobq_push(&f->w->jobs, other);
        f->w->inflight = 2;
        assert_int_equal(drv_worker_commit(f->w), 1); /* aborted: rewound */
        assert_int_equal(f->w->inflight, 1);
        left = drv_jobq_take_all(&f->w->jobs);
        assert_ptr_equal(left, other);
        assert_null(left->next);
        drv_job_destroy(left);
}

static void test_fenced_producer_is_fatal(void **state) {
        fixture_t *f = *state;

        rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_END_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        make_pending(f);
        assert_int_equal(drv_worker_commit(f->w), -1);
        assert_int_equal(f->w->fatal, 1);
}

/* A txn API error with no flag (here __STATE: begin while a transaction
 * is already open) is fatal to the worker, as drv_dlq_txn_route() says;
 * it was abort-and-rewind before the router (dlq/classify.c says why). */
static void test_error_without_flags_is_fatal(void **state) {
        fixture_t *f = *state;

        make_pending(f);
        assert_null(rd_kafka_begin_transaction(f->w->rkp));
        assert_int_equal(drv_worker_commit(f->w), -1);
        assert_int_equal(f->w->fatal, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_commit_succeeds_after_a_retriable_error, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_abortable_error_rewinds_and_redelivers, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_rewind_takes_unstarted_tasks_off_the_queue, setup,
                teardown),
            cmocka_unit_test_setup_teardown(test_fenced_producer_is_fatal,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(test_error_without_flags_is_fatal,
                                            setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
