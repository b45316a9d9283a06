/*
 * tests/integration/test_replay_offsets.c: 'drover replay' against the
 * real broker: dry run, refusal while the group has a member, reset.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMO      20000
#define PARTS    2
#define PER_PART 10

/* PER_PART records per partition; the first half timestamped an hour
 * ago, the second half now.  Idempotent, so a retried batch (the topic
 * was just created) cannot land after a later one: without it a loaded
 * machine saw an old record at offset 9 and a new one at offset 4. */
static int64_t produce_records(const char *topic) {
        const char *kv[] = {"enable.idempotence", "true", NULL};
        rd_kafka_t *rkp = drv_test_kafka(RD_KAFKA_PRODUCER, kv);
        int64_t now = drv_now_ms(), old = now - 3600000;
        int p, i;

        for (p = 0; p < PARTS; p++)
                for (i = 0; i < PER_PART; i++)
                        assert_int_equal(
                            rd_kafka_producev(
                                rkp, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(p),
                                RD_KAFKA_V_VALUE("task", 4),
                                RD_KAFKA_V_TIMESTAMP(i < PER_PART / 2 ? old
                                                                      : now),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END),
                            0);
        assert_int_equal(rd_kafka_flush(rkp, TMO), 0);
        rd_kafka_destroy(rkp);
        return now - 1000; /* between the halves */
}

/* Commit `offset` on every partition for group (no membership). */
static void commit_all(const char *group, const char *topic, int64_t off) {
        const char *kv[] = {"group.id", group, "enable.auto.commit", "false",
                            NULL};
        rd_kafka_t *rk = drv_test_kafka(RD_KAFKA_CONSUMER, kv);
        rd_kafka_topic_partition_list_t *l;
        int p;

        l = rd_kafka_topic_partition_list_new(PARTS);
        for (p = 0; p < PARTS; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset = off;
        assert_int_equal(rd_kafka_commit(rk, l, 0), 0);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
}

/* The group's committed offset of partition p, read with committed(). */
static int64_t committed(const char *group, const char *topic, int p) {
        const char *kv[] = {"group.id", group, "enable.auto.commit", "false",
                            NULL};
        rd_kafka_t *rk = drv_test_kafka(RD_KAFKA_CONSUMER, kv);
        rd_kafka_topic_partition_list_t *l;
        int64_t off;

        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, p);
        assert_int_equal(rd_kafka_committed(rk, l, TMO), 0);
        off = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
        return off;
}


typedef struct {
        char topic[128], group[128];
        int64_t mid_ms;
} fx_t;

static int setup(void **state) {
        static fx_t fx;

        snprintf(fx.topic, sizeof(fx.topic), "%s", drv_test_unique("rpl"));
        snprintf(fx.group, sizeof(fx.group), "%s", drv_test_unique("rplg"));
        drv_test_create_topic(fx.topic, PARTS);
        fx.mid_ms = produce_records(fx.topic);
        commit_all(fx.group, fx.topic, PER_PART);
        setenv("DROVER_BROKERS", drv_test_brokers(), 1);
        setenv("DROVER_TOPIC", fx.topic, 1);
        setenv("DROVER_GROUP", fx.group, 1);
        *state = &fx;
        return 0;
}

static void test_dry_run_prints_targets_and_changes_nothing(void **state) {
        fx_t *fx = *state;
        char line[128];

        assert_int_equal(
            drv_test_cli("replay --from %lld", (long long)fx->mid_ms), 0);
        assert_non_null(strstr(drv_test_out, "(dry run)"));
        /* partition, current 10, target 5 (first record at/after mid) */
        snprintf(line, sizeof(line), "%-9d %12d %12d %12d", 0, PER_PART,
                 PER_PART / 2, PER_PART);
        if (!strstr(drv_test_out, line))
                fail_msg("no \"%s\" in:\n%s", line, drv_test_out);
        assert_int_equal(committed(fx->group, fx->topic, 0), PER_PART);
        assert_int_equal(committed(fx->group, fx->topic, 1), PER_PART);

        assert_int_equal(drv_test_cli("replay --from-offset 1:3"), 0);
        assert_non_null(strstr(drv_test_out, "(unchanged)"));
        assert_int_equal(committed(fx->group, fx->topic, 1), PER_PART);
}

static void test_execute_refuses_while_a_member_is_active(void **state) {
        fx_t *fx = *state;
        const char *kv[] = {"group.id", fx->group, "enable.auto.commit",
                            "false", NULL};
        rd_kafka_t *rk = drv_test_kafka(RD_KAFKA_CONSUMER, kv);
        rd_kafka_topic_partition_list_t *sub, *asg = NULL;
        int64_t deadline = drv_mono_ms() + 30000;

        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, fx->topic,
                                          RD_KAFKA_PARTITION_UA);
        assert_int_equal(rd_kafka_subscribe(rk, sub), 0);
        rd_kafka_topic_partition_list_destroy(sub);
        while (drv_mono_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
                if (m)
                        rd_kafka_message_destroy(m);
                rd_kafka_assignment(rk, &asg);
                if (asg && asg->cnt > 0)
                        break;
                rd_kafka_topic_partition_list_destroy(asg);
                asg = NULL;
        }
        assert_non_null(asg);
        rd_kafka_topic_partition_list_destroy(asg);

        assert_int_equal(drv_test_cli("replay --from-offset 0:0 --execute"),
                         69);
        assert_non_null(strstr(drv_test_err, "active member"));
        assert_non_null(strstr(drv_test_err, fx->group));
        assert_int_equal(committed(fx->group, fx->topic, 0), PER_PART);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

static void test_execute_resets_offsets_when_group_is_empty(void **state) {
        fx_t *fx = *state;

        assert_int_equal(
            drv_test_cli("replay --from %lld --execute", (long long)fx->mid_ms),
            0);
        assert_non_null(strstr(drv_test_out, "reset the offsets"));
        assert_int_equal(committed(fx->group, fx->topic, 0), PER_PART / 2);
        assert_int_equal(committed(fx->group, fx->topic, 1), PER_PART / 2);

        /* one partition only */
        assert_int_equal(drv_test_cli("replay --from-offset 1:2 --execute"), 0);
        assert_int_equal(committed(fx->group, fx->topic, 0), PER_PART / 2);
        assert_int_equal(committed(fx->group, fx->topic, 1), 2);

        /* to the very beginning */
        assert_int_equal(drv_test_cli("replay --from -1d --execute"), 0);
        assert_int_equal(committed(fx->group, fx->topic, 0), 0);
        assert_int_equal(committed(fx->group, fx->topic, 1), 0);
}

static void test_usage_errors(void **state) {
        (void)state;
        assert_int_equal(drv_test_cli("replay"), 2);
        assert_non_null(strstr(drv_test_err, "--from"));
        assert_int_equal(drv_test_cli("replay --from -1h --from-offset 0:1"),
                         2);
        assert_int_equal(drv_test_cli("replay --from-offset zero"), 2);
        assert_int_equal(drv_test_cli("replay --from-offset 0:999"), 2);
        assert_non_null(strstr(drv_test_err, "outside partition 0"));
        assert_int_equal(drv_test_cli("replay --from-offset 7:0"), 2);
        assert_int_equal(drv_test_cli("replay --help"), 0);
        assert_non_null(strstr(drv_test_out, "usage: drover replay"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dry_run_prints_targets_and_changes_nothing),
            cmocka_unit_test(test_execute_refuses_while_a_member_is_active),
            cmocka_unit_test(test_execute_resets_offsets_when_group_is_empty),
            cmocka_unit_test(test_usage_errors),
        };

        drv_test_brokers(); /* skip (77) without a stack */
        return cmocka_run_group_tests(tests, setup, NULL);
}
