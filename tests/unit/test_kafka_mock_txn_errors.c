/*
 * drover - tests/unit/test_kafka_mock_txn_errors.c
 *
 * Fault injection on librdkafka's mock cluster: the transactional errors
 * librdkafka 2.0.2 really returns (FACTS.md, docs/decisions.md) get the
 * action of drv_dlq_txn_route(), the router the worker's commit path
 * (consumer/worker/worker_txn.c; test_consumer_worker_commit drives it) and
 * redrive act on; and drv_dlq_redrive() itself, driven here with the same
 * injected errors, does what the router says.  The mock cannot prove
 * exactly-once (it ignores read_committed and discards offsets sent in a
 * transaction); it is used here only to inject broker errors.
 */
#include "testutil.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>

/* Kafka protocol ApiKeys (the RD_KAFKAP_* names are not in the installed
 * headers). */
#define APIKEY_ADD_OFFSETS_TO_TXN 25
#define APIKEY_END_TXN            26
#define APIKEY_TXN_OFFSET_COMMIT  28

typedef struct fixture_s {
        rd_kafka_t *mock_rk; /* owns the mock cluster */
        rd_kafka_mock_cluster_t *mcluster;
        rd_kafka_t *rkp;
        rd_kafka_t *rk; /* redrive's consumer: its group metadata */
} fixture_t;

/* A client of the mock cluster, quiet, with one more property. */
static rd_kafka_t *mock_client(fixture_t *f, rd_kafka_type_t type,
                               const char *name, const char *value) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers",
                          rd_kafka_mock_cluster_bootstraps(f->mcluster), errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
        rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        return rk;
}

static int setup(void **state) {
        fixture_t *f = calloc(1, sizeof(*f));

        f->mcluster = drv_test_mock_cluster(&f->mock_rk, "tasks", 1);
        rd_kafka_mock_topic_create(f->mcluster, "tasks.dlq", 1, 1);
        f->rkp =
            mock_client(f, RD_KAFKA_PRODUCER, "transactional.id", "mock-txn");
        assert_null(rd_kafka_init_transactions(f->rkp, 10000));
        f->rk = mock_client(f, RD_KAFKA_CONSUMER, "group.id", "redrive-g");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture_t *f = *state;
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
        rd_kafka_destroy(f->rkp);
        rd_kafka_mock_cluster_destroy(f->mcluster);
        rd_kafka_destroy(f->mock_rk);
        free(f);
        return 0;
}

static rd_kafka_error_t *send_offsets(fixture_t *f) {
        rd_kafka_topic_partition_list_t *offsets =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_consumer_group_metadata_t *cgmd =
            rd_kafka_consumer_group_metadata_new_with_genid("g", 3, "member-1",
                                                            NULL);
        rd_kafka_error_t *error;

        rd_kafka_topic_partition_list_add(offsets, "tasks", 0)->offset = 1;
        error =
            rd_kafka_send_offsets_to_transaction(f->rkp, offsets, cgmd, 10000);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offsets);
        return error;
}

/* Redrive one hand-made dead letter (tasks.dlq 0:0) to "tasks" with the
 * fixture's producer, one transaction: begin, produce, send_offsets,
 * commit, each error routed by drv_dlq_txn_route(). */
static drv_err_t redrive_one(fixture_t *f, size_t *movedp) {
        int64_t start = 0, end = 1;
        drv_dlq_scan_t scan;
        drv_dlq_rec_t rec;
        char errstr[512];
        drv_err_t err;

        memset(&rec, 0, sizeof(rec));
        memset(&scan, 0, sizeof(scan));
        rec.value = (void *)"task";
        rec.value_len = 4;
        rec.state = DRV_DLQ_SELECTED;
        snprintf(rec.info.task_id, sizeof(rec.info.task_id), "t-1");
        scan.recs = &rec;
        scan.cnt = 1;
        scan.partition_cnt = 1;
        scan.start = &start;
        scan.end = &end;
        err = drv_dlq_redrive(f->rk, f->rkp, &scan, "tasks.dlq", "tasks", 10,
                              movedp, errstr, sizeof(errstr));
        assert_int_equal(rec.state, err ? DRV_DLQ_SELECTED : DRV_DLQ_REDRIVEN);
        return err;
}

/* The partition moved mid-commit: TxnOffsetCommit answers
 * ILLEGAL_GENERATION.  That is abortable, not fatal: the worker aborts,
 * rewinds and carries on with the same producer. */
static void
test_illegal_generation_in_txn_offset_commit_is_abortable(void **state) {
        fixture_t *f = *state;
        rd_kafka_error_t *error;

        rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_TXN_OFFSET_COMMIT,
                                          1,
                                          RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
        assert_null(rd_kafka_begin_transaction(f->rkp));
        error = send_offsets(f);
        if (!error) /* some versions report it only at commit */
                error = rd_kafka_commit_transaction(f->rkp, 10000);
        assert_non_null(error);
        assert_true(rd_kafka_error_txn_requires_abort(error));
        assert_false(rd_kafka_error_is_fatal(error));
        assert_int_equal(drv_dlq_txn_route(error), DRV_TXN_ABORT);
        rd_kafka_error_destroy(error);

        /* abort, and the same producer commits the next transaction */
        assert_null(rd_kafka_abort_transaction(f->rkp, 10000));
        assert_null(rd_kafka_begin_transaction(f->rkp));
        error = send_offsets(f);
        assert_null(error);
        assert_null(rd_kafka_commit_transaction(f->rkp, 10000));
}

/* A zombie: the broker fences this producer's epoch when it ends the
 * transaction.  Fatal: the worker must recreate the producer or exit 70. */
static void test_fenced_at_end_txn_is_fatal(void **state) {
        fixture_t *f = *state;
        rd_kafka_error_t *error;
        char reason[256];

        rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_END_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        assert_null(rd_kafka_begin_transaction(f->rkp));
        assert_null(send_offsets(f));
        error = rd_kafka_commit_transaction(f->rkp, 10000);
        assert_non_null(error);
        assert_true(rd_kafka_error_is_fatal(error));
        assert_int_equal(drv_dlq_txn_route(error), DRV_TXN_FATAL);
        rd_kafka_error_destroy(error);
        assert_int_not_equal(
            rd_kafka_fatal_error(f->rkp, reason, sizeof(reason)),
            RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* librdkafka 2.0.2 treats PRODUCER_FENCED on AddOffsetsToTxn as
 * abortable, not fatal (measured here): the worker's abort path must cope,
 * and a real fence shows up as fatal on the next EndTxn/AddPartitions. */
static void test_fenced_at_add_offsets_is_abortable_in_2_0_2(void **state) {
        fixture_t *f = *state;
        rd_kafka_error_t *error;

        rd_kafka_mock_push_request_errors(f->mcluster,
                                          APIKEY_ADD_OFFSETS_TO_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        assert_null(rd_kafka_begin_transaction(f->rkp));
        error = send_offsets(f);
        assert_non_null(error);
        assert_true(rd_kafka_error_txn_requires_abort(error));
        assert_int_equal(drv_dlq_txn_route(error), DRV_TXN_ABORT);
        rd_kafka_error_destroy(error);
        assert_null(rd_kafka_abort_transaction(f->rkp, 10000));
}

/* An error with none of the three flags: committing with no transaction
 * open is __STATE, a disagreement between our idea of the transaction and
 * librdkafka's that abort and rewind cannot mend.  FATAL (dlq/classify.c
 * says why). */
static void test_state_error_without_flags_is_fatal(void **state) {
        fixture_t *f = *state;
        rd_kafka_error_t *error;

        error = rd_kafka_commit_transaction(f->rkp, 10000);
        assert_non_null(error);
        assert_int_equal(rd_kafka_error_code(error), RD_KAFKA_RESP_ERR__STATE);
        assert_false(rd_kafka_error_is_fatal(error));
        assert_false(rd_kafka_error_txn_requires_abort(error));
        assert_false(rd_kafka_error_is_retriable(error));
        assert_int_equal(drv_dlq_txn_route(error), DRV_TXN_FATAL);
        rd_kafka_error_destroy(error);
}

/*
 * The same errors through redrive's transaction (dlq/redrive.c).
 */
/* ABORT: the batch is aborted and redone, and the second try commits. */
static void test_redrive_aborts_and_redoes_on_illegal_generation(void **state) {
        fixture_t *f = *state;
        size_t moved = 0;

        rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_TXN_OFFSET_COMMIT,
                                          1,
                                          RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION);
        assert_int_equal(redrive_one(f, &moved), DRV_OK);
        assert_int_equal(moved, 1);
}

static void test_redrive_aborts_and_redoes_on_fenced_add_offsets(void **state) {
        fixture_t *f = *state;
        size_t moved = 0;

        rd_kafka_mock_push_request_errors(f->mcluster,
                                          APIKEY_ADD_OFFSETS_TO_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        assert_int_equal(redrive_one(f, &moved), DRV_OK);
        assert_int_equal(moved, 1);
}

static void test_redrive_fenced_at_end_txn_is_fatal(void **state) {
        fixture_t *f = *state;
        size_t moved = 1;

        rd_kafka_mock_push_request_errors(f->mcluster, APIKEY_END_TXN, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        assert_int_equal(redrive_one(f, &moved), DRV_ERR_KAFKA_FATAL);
        assert_int_equal(moved, 0);
}

/* A transaction left open: redrive's begin fails with __STATE, no flag:
 * fatal (it was a retriable failure before the router). */
static void test_redrive_state_error_is_fatal(void **state) {
        fixture_t *f = *state;
        size_t moved = 1;

        assert_null(rd_kafka_begin_transaction(f->rkp));
        assert_int_equal(redrive_one(f, &moved), DRV_ERR_KAFKA_FATAL);
        assert_int_equal(moved, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_illegal_generation_in_txn_offset_commit_is_abortable,
                setup, teardown),
            cmocka_unit_test_setup_teardown(test_fenced_at_end_txn_is_fatal,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_fenced_at_add_offsets_is_abortable_in_2_0_2, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_state_error_without_flags_is_fatal, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_redrive_aborts_and_redoes_on_illegal_generation, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_redrive_aborts_and_redoes_on_fenced_add_offsets, setup,
                teardown),
            cmocka_unit_test_setup_teardown(
                test_redrive_fenced_at_end_txn_is_fatal, setup, teardown),
            cmocka_unit_test_setup_teardown(test_redrive_state_error_is_fatal,
                                            setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
