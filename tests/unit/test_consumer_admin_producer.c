/*
 * drover - tests/unit/test_consumer_admin_producer.c
 *
 * The admin server's idempotent producer (POST /api/tasks) survives a
 * fatal producer error: the next submission replaces the dead producer
 * and succeeds, and concurrent submissions replace it only once.  The
 * fatal error is injected with librdkafka's rd_kafka_test_fatal_error on
 * its mock cluster (the error the chaos test's producer met for real after
 * a broker was hard-killed: an out-of-order sequence number).
 */
#include "testutil.h"

#include "admin_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <string.h>

typedef struct fixture_s {
        rd_kafka_t *mock_rk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        drv_admin_kafka_t *ak;
} fixture_t;

static int setup(void **state) {
        fixture_t *f = calloc(1, sizeof(*f));
        char errstr[256];

        f->mcluster = drv_test_mock_cluster(&f->mock_rk, "tasks", 1);
        f->ak =
            drv_admin_kafka_new(rd_kafka_mock_cluster_bootstraps(f->mcluster),
                                "tasks", errstr, sizeof(errstr));
        assert_non_null(f->ak);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture_t *f = *state;

        drv_admin_kafka_destroy(f->ak);
        rd_kafka_mock_cluster_destroy(f->mcluster);
        rd_kafka_destroy(f->mock_rk);
        free(f);
        return 0;
}

static drv_err_t submit(drv_admin_kafka_t *ak) {
        char errstr[256];
        drv_err_t err = drv_admin_kafka_produce(ak, "customer", "task", 4,
                                                errstr, sizeof(errstr));
        if (err)
                print_message("submit: %s\n", errstr);
        return err;
}

/* Make the current producer die as librdkafka's idempotent producer does
 * on a sequence desynchronization; returns its handle. */
static rd_kafka_t *kill_producer(drv_admin_kafka_t *ak) {
        rd_kafka_t *rk = drv_admin_kafka_handle(ak, NULL);
        char why[128];

        assert_int_equal(rd_kafka_test_fatal_error(
                             rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                             "injected by the test"),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_not_equal(rd_kafka_fatal_error(rk, why, sizeof(why)),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
        return rk;
}

static void test_fatal_error_replaces_the_producer(void **state) {
        fixture_t *f = *state;
        rd_kafka_t *dead;
        int replaced = -1;

        assert_int_equal(submit(f->ak), DRV_OK);
        drv_admin_kafka_handle(f->ak, &replaced);
        assert_int_equal(replaced, 0);
        dead = kill_producer(f->ak);
        /* without the replacement every later submission failed with
         * "Local: Fatal error" until the worker restarted */
        assert_int_equal(submit(f->ak), DRV_OK);
        assert_ptr_not_equal(drv_admin_kafka_handle(f->ak, &replaced), dead);
        assert_int_equal(replaced, 1);
        assert_int_equal(submit(f->ak), DRV_OK);
        drv_admin_kafka_handle(f->ak, &replaced);
        assert_int_equal(replaced, 1);
}

static void *submitter(void *arg) {
        drv_admin_kafka_t *ak = arg;
        long i, bad = 0;

        for (i = 0; i < 5; i++)
                bad += submit(ak) != DRV_OK;
        return (void *)bad;
}

static void test_concurrent_submissions_replace_once(void **state) {
        fixture_t *f = *state;
        pthread_t th[4];
        void *bad;
        int i, replaced = -1;

        assert_int_equal(submit(f->ak), DRV_OK);
        kill_producer(f->ak);
        for (i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, submitter, f->ak),
                                 0);
        for (i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(th[i], &bad), 0);
                assert_int_equal((long)bad, 0);
        }
        drv_admin_kafka_handle(f->ak, &replaced);
        assert_int_equal(replaced, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_fatal_error_replaces_the_producer, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_concurrent_submissions_replace_once, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
