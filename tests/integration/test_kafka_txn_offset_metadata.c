/*
 * drover - tests/integration/test_kafka_txn_offset_metadata.c
 *
 * The proof issue 16 builds on (docs/decisions.md, "Offset commit
 * metadata"): the per-partition metadata string given to
 * rd_kafka_send_offsets_to_transaction() reaches the broker in
 * TxnOffsetCommit and comes back from rd_kafka_committed() once the
 * transaction commits; an aborted transaction leaves the previous offset
 * and metadata in place; a later commit without metadata clears it; the
 * broker keeps up to offset.metadata.max.bytes (4096, the default the
 * stack runs with) and refuses one byte more with OFFSET_METADATA_TOO_LARGE,
 * an abortable (not fatal) transaction error that leaves the producer
 * usable.
 *
 * Offsets are sent with rd_kafka_consumer_group_metadata_new() (generation
 * -1, no member): the broker does not check the generation then
 * (test_kafka_broker.c, test 4), so no group member is needed.
 *
 * When DROVER_TXN_METADATA_RECORD names a file, every read-back is
 * appended to it as "group topic partition offset hex(metadata)", for
 * test_kafka_txn_offset_metadata_java.sh to compare with what Kafka's own
 * AdminClient reads.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMO       30000
#define MAX_BYTES 4096 /* offset.metadata.max.bytes, broker default */
#define NO_OFFSET (-1) /* "leave this partition out" for send_txn() */

typedef struct {
        char topic[128], group[128];
        rd_kafka_t *rkp; /* transactional producer */
} fx_t;

static int setup(void **state) {
        static fx_t fx;
        const char *kv[] = {"transactional.id", drv_test_unique("mdtxn"), NULL};
        rd_kafka_error_t *error;

        snprintf(fx.topic, sizeof(fx.topic), "%s", drv_test_unique("mdt"));
        snprintf(fx.group, sizeof(fx.group), "%s", drv_test_unique("mdg"));
        drv_test_create_topic(fx.topic, 2);
        fx.rkp = drv_test_kafka(RD_KAFKA_PRODUCER, kv);
        if ((error = rd_kafka_init_transactions(fx.rkp, TMO)))
                fail_msg("init_transactions: %s", rd_kafka_error_string(error));
        *state = &fx;
        return 0;
}

static int teardown(void **state) {
        fx_t *fx = *state;

        rd_kafka_destroy(fx->rkp);
        return 0;
}

/* Offsets off[0], off[1] (NO_OFFSET leaves the partition out) with
 * metadata md[0], md[1] (NULL: none) in one transaction of fx->rkp for
 * fx->group; committed when commit, else aborted.  Returns the error of
 * send_offsets_to_transaction (caller destroys it; the transaction is
 * then still open) or NULL. */
static rd_kafka_error_t *send_txn(fx_t *fx, const int64_t off[2],
                                  const char *md[2], int commit) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(2);
        rd_kafka_consumer_group_metadata_t *cgmd =
            rd_kafka_consumer_group_metadata_new(fx->group);
        rd_kafka_error_t *error;
        int p;

        for (p = 0; p < 2; p++) {
                rd_kafka_topic_partition_t *tp;

                if (off[p] == NO_OFFSET)
                        continue;
                tp = rd_kafka_topic_partition_list_add(l, fx->topic, p);
                tp->offset = off[p];
                if (md[p]) {
                        /* the list owns it: _list_destroy frees it */
                        tp->metadata = strdup(md[p]);
                        tp->metadata_size = strlen(md[p]);
                }
        }
        assert_null(rd_kafka_begin_transaction(fx->rkp));
        error = rd_kafka_send_offsets_to_transaction(fx->rkp, l, cgmd, TMO);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(l);
        if (error)
                return error;
        if (commit)
                assert_null(rd_kafka_commit_transaction(fx->rkp, TMO));
        else
                assert_null(rd_kafka_abort_transaction(fx->rkp, TMO));
        return NULL;
}

/* As send_txn(), failing the test when the broker refuses. */
static void send_ok(fx_t *fx, const int64_t off[2], const char *md[2],
                    int commit) {
        rd_kafka_error_t *error = send_txn(fx, off, md, commit);

        if (error)
                fail_msg("send_offsets_to_transaction: %s",
                         rd_kafka_error_string(error));
}

/* Append one read-back to $DROVER_TXN_METADATA_RECORD, if set. */
static void record(const fx_t *fx, const rd_kafka_topic_partition_t *tp) {
        const char *path = getenv("DROVER_TXN_METADATA_RECORD");
        FILE *fp;
        size_t i;

        if (!path || !*path)
                return;
        assert_non_null(fp = fopen(path, "a"));
        fprintf(fp, "%s %s %d %lld ", fx->group, tp->topic, (int)tp->partition,
                (long long)tp->offset);
        for (i = 0; i < tp->metadata_size; i++)
                fprintf(fp, "%02x", ((const unsigned char *)tp->metadata)[i]);
        fprintf(fp, "%s\n", tp->metadata_size ? "" : "-");
        fclose(fp);
}

/* The group's committed offset and metadata of partition p, read by a
 * fresh consumer of the group with rd_kafka_committed() (read_committed:
 * an offset of an open transaction is waited for, never returned).  The
 * list handed to committed() must carry no metadata of its own: 2.0.2
 * copies the broker's metadata over it only when it is non-empty. */
static int64_t committed(fx_t *fx, int p, char *md, size_t md_size) {
        const char *kv[] = {"group.id", fx->group, "enable.auto.commit",
                            "false", NULL};
        rd_kafka_t *rk = drv_test_kafka(RD_KAFKA_CONSUMER, kv);
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        const rd_kafka_topic_partition_t *tp;
        int64_t off;

        rd_kafka_topic_partition_list_add(l, fx->topic, p);
        assert_int_equal(rd_kafka_committed(rk, l, TMO), 0);
        tp = &l->elems[0];
        assert_int_equal(tp->err, RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_true(tp->metadata_size < md_size);
        memcpy(md, tp->metadata_size ? tp->metadata : "", tp->metadata_size);
        md[tp->metadata_size] = '\0';
        off = tp->offset;
        record(fx, tp);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
        return off;
}

/* a. + b. Each partition's metadata travels in TxnOffsetCommit and comes
 * back, byte for byte, from OffsetFetch through rd_kafka_committed(). */
static void test_metadata_committed_in_txn_reads_back(void **state) {
        fx_t *fx = *state;
        const int64_t off[2] = {5, 1000};
        const char *md[2] = {"v1:5/1+3,2+1", "v1:rs/" /* empty set */};
        char got[MAX_BYTES + 2];

        send_ok(fx, off, md, 1);
        assert_int_equal(committed(fx, 0, got, sizeof(got)), 5);
        assert_string_equal(got, md[0]);
        assert_int_equal(committed(fx, 1, got, sizeof(got)), 1000);
        assert_string_equal(got, md[1]);
}

/* c. An aborted transaction's offsets and metadata are never visible:
 * the previous commit stays, metadata included. */
static void test_aborted_txn_leaves_previous_metadata(void **state) {
        fx_t *fx = *state;
        const int64_t first[2] = {10, 20}, aborted[2] = {30, 40};
        const char *md1[2] = {"before-0", "before-1"};
        const char *md2[2] = {"aborted-0", "aborted-1"};
        char got[MAX_BYTES + 2];

        send_ok(fx, first, md1, 1);
        send_ok(fx, aborted, md2, 0);
        assert_int_equal(committed(fx, 0, got, sizeof(got)), 10);
        assert_string_equal(got, "before-0");
        assert_int_equal(committed(fx, 1, got, sizeof(got)), 20);
        assert_string_equal(got, "before-1");
}

/* c. A later commit without metadata replaces it with the empty string
 * (librdkafka sends "" for NULL; the broker keeps no old value). */
static void test_commit_without_metadata_clears_it(void **state) {
        fx_t *fx = *state;
        const int64_t first[2] = {50, NO_OFFSET}, later[2] = {51, NO_OFFSET};
        const char *md1[2] = {"v1:1e/1+1", NULL}, *none[2] = {NULL, NULL};
        char got[MAX_BYTES + 2];

        send_ok(fx, first, md1, 1);
        assert_int_equal(committed(fx, 0, got, sizeof(got)), 50);
        assert_string_equal(got, "v1:1e/1+1");
        send_ok(fx, later, none, 1);
        assert_int_equal(committed(fx, 0, got, sizeof(got)), 51);
        assert_string_equal(got, "");
}

/* c. The broker keeps MAX_BYTES of metadata and refuses MAX_BYTES + 1
 * with OFFSET_METADATA_TOO_LARGE: the transaction must abort (also the
 * other partition's offset, which was within the limit), the producer is
 * not fenced, and its next transaction commits. */
static void test_metadata_size_limit_is_abortable(void **state) {
        fx_t *fx = *state;
        char *big = malloc(MAX_BYTES + 2), got[MAX_BYTES + 2];
        const int64_t fits[2] = {60, 70}, over[2] = {61, 71},
                      next[2] = {NO_OFFSET, 72};
        const char *md[2] = {big, "small"};
        rd_kafka_error_t *error;

        assert_non_null(big);
        memset(big, 'x', MAX_BYTES);
        big[MAX_BYTES] = '\0';
        send_ok(fx, fits, md, 1);
        assert_int_equal(committed(fx, 0, got, sizeof(got)), 60);
        assert_int_equal(strlen(got), MAX_BYTES);
        assert_string_equal(got, big);

        strcpy(big + MAX_BYTES, "y");
        error = send_txn(fx, over, md, 1);
        assert_non_null(error);
        print_message("%u bytes of metadata refused: %s\n",
                      (unsigned)MAX_BYTES + 1, rd_kafka_error_string(error));
        assert_int_equal(rd_kafka_error_code(error),
                         RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE);
        assert_true(rd_kafka_error_txn_requires_abort(error));
        assert_false(rd_kafka_error_is_fatal(error));
        assert_false(rd_kafka_error_is_retriable(error));
        rd_kafka_error_destroy(error);
        assert_null(rd_kafka_abort_transaction(fx->rkp, TMO));
        big[MAX_BYTES] = '\0';
        assert_int_equal(committed(fx, 0, got, sizeof(got)), 60);
        assert_string_equal(got, big);
        assert_int_equal(committed(fx, 1, got, sizeof(got)), 70);
        assert_string_equal(got, "small");

        /* p0 keeps the MAX_BYTES value: the Java check reads it too */
        md[1] = "after";
        send_ok(fx, next, md, 1);
        assert_int_equal(committed(fx, 1, got, sizeof(got)), 72);
        assert_string_equal(got, "after");
        assert_int_equal(committed(fx, 0, got, sizeof(got)), 60);
        assert_string_equal(got, big);
        free(big);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(
                test_metadata_committed_in_txn_reads_back, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_aborted_txn_leaves_previous_metadata, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_commit_without_metadata_clears_it, setup, teardown),
            cmocka_unit_test_setup_teardown(
                test_metadata_size_limit_is_abortable, setup, teardown),
        };
        drv_test_brokers(); /* skip early when there is no stack */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
