/*
 * drover - tests/integration/test_kafka_broker.c
 *
 * What the real broker gives that librdkafka's mock cluster cannot (see
 * FACTS.md): aborted transactions hidden from read_committed readers,
 * feature negotiation with a 4.x broker, offsets sent in a transaction
 * that a fresh group member reads back, and KIP-447 fencing: offsets sent
 * with the group metadata of a generation the group has left are refused,
 * while a snapshot taken before joining (generation -1) is accepted
 * unchecked - why the worker takes the metadata at every assignment.
 */
#include "testutil.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_conf_t *base_conf(void) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];

        assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
                                           drv_test_brokers(), errstr,
                                           sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
        return conf;
}

static void conf_set(rd_kafka_conf_t *conf, const char *k, const char *v) {
        char errstr[256];
        if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
                fail_msg("%s=%s: %s", k, v, errstr);
}

static rd_kafka_t *txn_producer(const char *txn_id) {
        rd_kafka_conf_t *conf = base_conf();
        char errstr[256];
        rd_kafka_t *rk;
        rd_kafka_error_t *error;

        conf_set(conf, "transactional.id", txn_id);
        conf_set(conf, "linger.ms", "0");
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk)
                fail_msg("producer: %s", errstr);
        error = rd_kafka_init_transactions(rk, 30000);
        if (error)
                fail_msg("init_transactions: %s", rd_kafka_error_string(error));
        return rk;
}

static void produce(rd_kafka_t *rk, const char *topic, const char *value) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_VALUE((void *)value, strlen(value)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Read partition 0 of `topic` from the start to its end; return the
 * values joined by ',' (caller frees). */
static char *read_all(const char *topic, const char *isolation) {
        rd_kafka_conf_t *conf = base_conf();
        char errstr[256], *out = calloc(1, 4096);
        rd_kafka_t *rk;
        rd_kafka_topic_partition_list_t *parts;
        int64_t lo, hi;
        int idle = 0;

        conf_set(conf, "group.id", drv_test_unique("reader"));
        conf_set(conf, "isolation.level", isolation);
        conf_set(conf, "enable.auto.commit", "false");
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        assert_int_equal(
            rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000), 0);
        parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, topic, 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        rd_kafka_topic_partition_list_destroy(parts);
        while (idle < 6) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
                if (!m) {
                        idle++;
                        continue;
                }
                if (!m->err) {
                        if (*out)
                                strcat(out, ",");
                        strncat(out, m->payload, m->len);
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return out;
}

/* 1. One aborted and one committed transaction: read_committed sees only
 * the committed records, read_uncommitted sees both. */
static void test_read_committed_hides_aborted_transaction(void **state) {
        const char *topic = drv_test_unique("txn-abort");
        rd_kafka_t *rk;
        rd_kafka_error_t *error;
        char *committed, *uncommitted;

        drv_test_create_topic(topic, 1);
        rk = txn_producer(drv_test_unique("txn"));
        assert_null(rd_kafka_begin_transaction(rk));
        produce(rk, topic, "aborted-1");
        produce(rk, topic, "aborted-2");
        /* abort purges what is still queued locally: flush first so the
         * aborted records really are on the broker */
        assert_int_equal(rd_kafka_flush(rk, 10000), 0);
        error = rd_kafka_abort_transaction(rk, 30000);
        assert_null(error);

        assert_null(rd_kafka_begin_transaction(rk));
        produce(rk, topic, "committed-1");
        error = rd_kafka_commit_transaction(rk, 30000);
        assert_null(error);
        rd_kafka_destroy(rk);

        committed = read_all(topic, "read_committed");
        uncommitted = read_all(topic, "read_uncommitted");
        assert_string_equal(committed, "committed-1");
        assert_string_equal(uncommitted, "aborted-1,aborted-2,committed-1");
        free(committed);
        free(uncommitted);
}

/* 2. Feature negotiation with the broker (FACTS.md: 4.0.0 broke it). */
static pthread_mutex_t feat_lock = PTHREAD_MUTEX_INITIALIZER;
static char feat_log[1 << 16];

static void feat_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                        const char *buf) {
        pthread_mutex_lock(&feat_lock);
        if (strlen(feat_log) + strlen(buf) + 2 < sizeof(feat_log)) {
                strcat(feat_log, buf);
                strcat(feat_log, "\n");
        }
        pthread_mutex_unlock(&feat_lock);
}

static int feature_enabled(const char *feature) {
        char needle[128];
        int found;

        /* "Updated enabled protocol features to MsgVer1,...,MsgVer2,..."
         * or "Enabling feature X": both name the enabled feature. */
        snprintf(needle, sizeof(needle), "Enabling feature %s", feature);
        pthread_mutex_lock(&feat_lock);
        found = strstr(feat_log, needle) != NULL;
        pthread_mutex_unlock(&feat_lock);
        return found;
}

static void test_broker_features_negotiated(void **state) {
        rd_kafka_conf_t *conf = base_conf();
        char errstr[256];
        rd_kafka_t *rk;
        const struct rd_kafka_metadata *md;

        feat_log[0] = '\0';
        conf_set(conf, "debug", "feature");
        rd_kafka_conf_set_log_cb(conf, feat_log_cb);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        assert_int_equal(rd_kafka_metadata(rk, 0, NULL, &md, 10000), 0);
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        if (!feature_enabled("BrokerGroupCoordinator") ||
            !feature_enabled("MsgVer2") ||
            !feature_enabled("IdempotentProducer"))
                fail_msg("features not enabled; client log:\n%s", feat_log);
}

/* 3. Offsets sent in a transaction with the group's metadata are the
 * group's committed offsets for a fresh member. */
/* A read_committed member of group subscribed to topic. */
static rd_kafka_t *member(const char *group, const char *topic) {
        rd_kafka_conf_t *conf = base_conf();
        rd_kafka_topic_partition_list_t *sub;
        char errstr[256];
        rd_kafka_t *rk;

        conf_set(conf, "group.id", group);
        conf_set(conf, "enable.auto.commit", "false");
        conf_set(conf, "auto.offset.reset", "earliest");
        conf_set(conf, "isolation.level", "read_committed");
        conf_set(conf, "session.timeout.ms", "6000");
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        assert_int_equal(rd_kafka_subscribe(rk, sub), 0);
        rd_kafka_topic_partition_list_destroy(sub);
        return rk;
}

static void test_txn_offsets_visible_to_new_member(void **state) {
        const char *topic = drv_test_unique("txn-offsets");
        const char *group = drv_test_unique("group");
        rd_kafka_conf_t *conf;
        rd_kafka_t *rkp, *rk;
        rd_kafka_topic_partition_list_t *offsets;
        rd_kafka_consumer_group_metadata_t *cgmd;
        char errstr[256];
        int i, got = 0;

        drv_test_create_topic(topic, 1);
        rkp = txn_producer(drv_test_unique("txn"));
        assert_null(rd_kafka_begin_transaction(rkp));
        for (i = 0; i < 5; i++)
                produce(rkp, topic, "input");
        assert_null(rd_kafka_commit_transaction(rkp, 30000));

        /* a member of the group consumes, then commits through the txn */
        rk = member(group, topic);
        for (i = 0; i < 60 && got < 3; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
                if (m && !m->err)
                        got++;
                if (m)
                        rd_kafka_message_destroy(m);
        }
        assert_int_equal(got, 3);

        assert_null(rd_kafka_begin_transaction(rkp));
        offsets = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(offsets, topic, 0)->offset = 3;
        cgmd = rd_kafka_consumer_group_metadata(rk);
        assert_null(
            rd_kafka_send_offsets_to_transaction(rkp, offsets, cgmd, 30000));
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offsets);
        assert_null(rd_kafka_commit_transaction(rkp, 30000));
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        rd_kafka_destroy(rkp);

        /* a fresh member of the same group reads the offset back */
        conf = base_conf();
        conf_set(conf, "group.id", group);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        offsets = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(offsets, topic, 0);
        assert_int_equal(rd_kafka_committed(rk, offsets, 10000), 0);
        assert_int_equal(offsets->elems[0].err, 0);
        assert_int_equal(offsets->elems[0].offset, 3);
        rd_kafka_topic_partition_list_destroy(offsets);
        rd_kafka_destroy(rk);
}

/* Poll until rk holds a partition (up to 30 s). */
static void wait_assigned(rd_kafka_t *rk) {
        rd_kafka_topic_partition_list_t *a = NULL;
        int i, n = 0;

        for (i = 0; i < 60 && !n; i++) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
                if (m)
                        rd_kafka_message_destroy(m);
                assert_int_equal(rd_kafka_assignment(rk, &a), 0);
                n = a->cnt;
                rd_kafka_topic_partition_list_destroy(a);
        }
        assert_int_equal(n, 1);
}

/* Send `offset` for partition 0 in a transaction with cgmd; commit it
 * when accepted, abort it when refused.  Returns the refusal's code. */
static rd_kafka_resp_err_t
send_offsets_with(rd_kafka_t *rkp, const char *topic, int64_t offset,
                  rd_kafka_consumer_group_metadata_t *cgmd) {
        rd_kafka_topic_partition_list_t *offs =
            rd_kafka_topic_partition_list_new(1);
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;

        rd_kafka_topic_partition_list_add(offs, topic, 0)->offset = offset;
        assert_null(rd_kafka_begin_transaction(rkp));
        error = rd_kafka_send_offsets_to_transaction(rkp, offs, cgmd, 30000);
        rd_kafka_topic_partition_list_destroy(offs);
        if (!error) {
                assert_null(rd_kafka_commit_transaction(rkp, 30000));
                return code;
        }
        code = rd_kafka_error_code(error);
        assert_true(rd_kafka_error_txn_requires_abort(error));
        rd_kafka_error_destroy(error);
        assert_null(rd_kafka_abort_transaction(rkp, 30000));
        return code;
}

static int64_t committed_offset(const char *group, const char *topic) {
        rd_kafka_conf_t *conf = base_conf();
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);
        char errstr[256];
        rd_kafka_t *rk;
        int64_t off;

        conf_set(conf, "group.id", group);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(rk);
        rd_kafka_topic_partition_list_add(l, topic, 0);
        assert_int_equal(rd_kafka_committed(rk, l, 10000), 0);
        off = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
        return off;
}

static void test_stale_generation_fenced_unjoined_metadata_not(void **state) {
        const char *topic = drv_test_unique("kip447");
        const char *group = drv_test_unique("group");
        rd_kafka_consumer_group_metadata_t *unjoined, *gen1;
        rd_kafka_t *a, *b, *rkp;
        rd_kafka_resp_err_t code;

        drv_test_create_topic(topic, 1);
        rkp = txn_producer(drv_test_unique("txn"));
        a = member(group, topic);
        unjoined = rd_kafka_consumer_group_metadata(a); /* generation -1 */
        wait_assigned(a);
        gen1 = rd_kafka_consumer_group_metadata(a);
        /* the group moves on: a leaves, b takes the partition */
        rd_kafka_consumer_close(a);
        rd_kafka_destroy(a);
        b = member(group, topic);
        wait_assigned(b);

        /* a's generation is refused: the transaction must abort */
        code = send_offsets_with(rkp, topic, 5, gen1);
        print_message("stale generation refused with %s\n",
                      rd_kafka_err2name(code));
        assert_true(code == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
                    code == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
                    code == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID);
        assert_true(committed_offset(group, topic) < 0);
        /* a snapshot from before joining is not checked at all: it
         * overwrites the offset of a partition b owns */
        assert_int_equal(send_offsets_with(rkp, topic, 7, unjoined),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(committed_offset(group, topic), 7);

        rd_kafka_consumer_group_metadata_destroy(unjoined);
        rd_kafka_consumer_group_metadata_destroy(gen1);
        rd_kafka_consumer_close(b);
        rd_kafka_destroy(b);
        rd_kafka_destroy(rkp);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_read_committed_hides_aborted_transaction),
            cmocka_unit_test(test_broker_features_negotiated),
            cmocka_unit_test(test_txn_offsets_visible_to_new_member),
            cmocka_unit_test(
                test_stale_generation_fenced_unjoined_metadata_not),
        };
        drv_test_brokers(); /* skip early when there is no stack */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
