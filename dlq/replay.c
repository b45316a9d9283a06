/*
 * drover - dlq/replay.c: move a consumer group's offsets back.
 *
 * Chosen design: reset the group's committed offsets (not re-publish).
 * The records stay where they are, partition order is kept, nothing is
 * duplicated on the topic; the ledger makes a done task a no-op and a
 * failed one runs again.  The broker itself refuses to alter the offsets
 * of a group with active members, and we check first to say so plainly.
 */
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drv_replay_plan_destroy(drv_replay_plan_t *plan) {
        if (!plan)
                return;
        free(plan->parts);
        free(plan);
}

/* offsets_for_times(ts) for every partition into out[p]; a partition
 * with nothing at or after ts gets its high watermark. */
static drv_err_t offsets_at(rd_kafka_t *rk, const char *topic,
                            drv_replay_plan_t *plan, int64_t ts, int timeout_ms,
                            int64_t *out, char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_resp_err_t err;
        int32_t p;

        l = rd_kafka_topic_partition_list_new(plan->cnt);
        for (p = 0; p < plan->cnt; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset = ts;
        err = rd_kafka_offsets_for_times(rk, l, timeout_ms);
        for (p = 0; !err && p < l->cnt; p++) {
                if (l->elems[p].err)
                        err = l->elems[p].err;
                else
                        out[l->elems[p].partition] =
                            l->elems[p].offset < 0
                                ? plan->parts[l->elems[p].partition].high
                                : l->elems[p].offset;
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (err)
                return drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                   "cannot look up offsets by time in \"%s\": "
                                   "%s",
                                   topic, rd_kafka_err2str(err));
        return DRV_OK;
}

/* Partitions, watermarks and the group's committed offsets. */
static drv_err_t load_parts(rd_kafka_t *rk, const char *topic,
                            drv_replay_plan_t *plan, int timeout_ms,
                            char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_resp_err_t err;
        int32_t p;

        l = rd_kafka_topic_partition_list_new(plan->cnt);
        for (p = 0; p < plan->cnt; p++)
                rd_kafka_topic_partition_list_add(l, topic, p);
        err = rd_kafka_committed(rk, l, timeout_ms);
        for (p = 0; !err && p < plan->cnt; p++) {
                drv_replay_part_t *pp = &plan->parts[p];
                pp->partition = p;
                pp->committed = l->elems[p].offset;
                pp->to = -1;
                err = rd_kafka_query_watermark_offsets(rk, topic, p, &pp->low,
                                                       &pp->high, timeout_ms);
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (err)
                return drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                   "cannot read offsets of \"%s\": %s", topic,
                                   rd_kafka_err2str(err));
        return DRV_OK;
}

/* Select the --from-offset partitions, each within its watermarks. */
static drv_err_t select_pairs(drv_replay_plan_t *plan, const char *topic,
                              const int32_t *fo_parts,
                              const int64_t *fo_offsets, size_t fo_cnt,
                              char *errstr, size_t errstr_size) {
        size_t i;

        for (i = 0; i < fo_cnt; i++) {
                drv_replay_part_t *pp;
                if (fo_parts[i] < 0 || fo_parts[i] >= plan->cnt)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_USAGE,
                                           "topic \"%s\" has no partition %d",
                                           topic, (int)fo_parts[i]);
                pp = &plan->parts[fo_parts[i]];
                if (fo_offsets[i] < pp->low || fo_offsets[i] > pp->high)
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_USAGE,
                            "offset %lld is outside partition %d of \"%s\" "
                            "(%lld..%lld)",
                            (long long)fo_offsets[i], (int)fo_parts[i], topic,
                            (long long)pp->low, (long long)pp->high);
                pp->target = fo_offsets[i];
                pp->selected = 1;
        }
        return DRV_OK;
}

drv_err_t drv_replay_plan(rd_kafka_t *rk, const char *topic, int64_t from_ms,
                          const int32_t *fo_parts, const int64_t *fo_offsets,
                          size_t fo_cnt, int64_t to_ms, int timeout_ms,
                          drv_replay_plan_t **planp, char *errstr,
                          size_t errstr_size) {
        drv_replay_plan_t *plan;
        int64_t *tmp = NULL;
        drv_err_t err;
        int32_t p;
        int cnt;

        *planp = NULL;
        cnt = drv_kafka_partition_count(rk, topic, timeout_ms, NULL, errstr,
                                        errstr_size);
        if (cnt < 0)
                return DRV_ERR_KAFKA_RETRIABLE;
        plan = calloc(1, sizeof(*plan));
        if (!plan ||
            !(plan->parts = calloc((size_t)cnt + 1, sizeof(*plan->parts))) ||
            !(tmp = calloc((size_t)cnt + 1, sizeof(*tmp)))) {
                drv_replay_plan_destroy(plan);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        plan->cnt = cnt;
        err = load_parts(rk, topic, plan, timeout_ms, errstr, errstr_size);
        if (!err && from_ms >= 0) {
                err = offsets_at(rk, topic, plan, from_ms, timeout_ms, tmp,
                                 errstr, errstr_size);
                for (p = 0; !err && p < cnt; p++) {
                        plan->parts[p].target = tmp[p];
                        plan->parts[p].selected = 1;
                }
        } else if (!err)
                err = select_pairs(plan, topic, fo_parts, fo_offsets, fo_cnt,
                                   errstr, errstr_size);
        if (!err && to_ms >= 0) {
                err = offsets_at(rk, topic, plan, to_ms, timeout_ms, tmp,
                                 errstr, errstr_size);
                for (p = 0; !err && p < cnt; p++)
                        plan->parts[p].to = tmp[p];
        }
        free(tmp);
        if (err) {
                drv_replay_plan_destroy(plan);
                return err;
        }
        *planp = plan;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Admin API calls
 * ------------------------------------------------------------------------
 */
static const char *group_state_name(rd_kafka_consumer_group_state_t st) {
        return rd_kafka_consumer_group_state_name(st);
}

/* Wait for the admin result on q; NULL and errstr filled on timeout or a
 * request-level error. */
static rd_kafka_event_t *wait_result(rd_kafka_queue_t *q, int timeout_ms,
                                     const char *what, char *errstr,
                                     size_t errstr_size) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);

        if (!ev) {
                drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "%s timed out", what);
                return NULL;
        }
        if (rd_kafka_event_error(ev)) {
                drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "%s failed: %s", what,
                            rd_kafka_event_error_string(ev));
                rd_kafka_event_destroy(ev);
                return NULL;
        }
        return ev;
}

static rd_kafka_AdminOptions_t *
admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op, int timeout_ms) {
        rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
        char err[128];

        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err,
                                                  sizeof(err));
        return opts;
}

drv_err_t drv_replay_group_members(rd_kafka_t *rk, const char *group,
                                   int timeout_ms, int *membersp, char *state,
                                   size_t state_size, char *errstr,
                                   size_t errstr_size) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts = admin_options(
            rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout_ms);
        const rd_kafka_ConsumerGroupDescription_t **descs;
        const rd_kafka_error_t *gerr;
        rd_kafka_event_t *ev;
        drv_err_t err = DRV_OK;
        size_t cnt = 0;

        rd_kafka_DescribeConsumerGroups(rk, &group, 1, opts, q);
        rd_kafka_AdminOptions_destroy(opts);
        ev = wait_result(q, timeout_ms, "describing the consumer group", errstr,
                         errstr_size);
        if (!ev) {
                rd_kafka_queue_destroy(q);
                return DRV_ERR_KAFKA_RETRIABLE;
        }
        descs = rd_kafka_DescribeConsumerGroups_result_groups(
            rd_kafka_event_DescribeConsumerGroups_result(ev), &cnt);
        if (cnt != 1)
                err = drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                  "no description of group \"%s\"", group);
        else if ((gerr = rd_kafka_ConsumerGroupDescription_error(descs[0])))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                  "cannot describe group \"%s\": %s", group,
                                  rd_kafka_error_string(gerr));
        else {
                *membersp = (int)rd_kafka_ConsumerGroupDescription_member_count(
                    descs[0]);
                snprintf(
                    state, state_size, "%s",
                    group_state_name(
                        rd_kafka_ConsumerGroupDescription_state(descs[0])));
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        return err;
}

/* The first partition-level error of an AlterConsumerGroupOffsets. */
static drv_err_t alter_result(rd_kafka_event_t *ev, const char *group,
                              char *errstr, size_t errstr_size) {
        const rd_kafka_group_result_t **res;
        const rd_kafka_topic_partition_list_t *parts;
        const rd_kafka_error_t *gerr;
        size_t cnt = 0;
        int i;

        res = rd_kafka_AlterConsumerGroupOffsets_result_groups(
            rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &cnt);
        if (cnt != 1)
                return drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                   "no result for group \"%s\"", group);
        if ((gerr = rd_kafka_group_result_error(res[0])))
                return drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                   "cannot reset offsets of group \"%s\": %s",
                                   group, rd_kafka_error_string(gerr));
        parts = rd_kafka_group_result_partitions(res[0]);
        for (i = 0; parts && i < parts->cnt; i++)
                if (parts->elems[i].err)
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "cannot reset offset of group \"%s\" on "
                            "partition %d: %s",
                            group, (int)parts->elems[i].partition,
                            rd_kafka_err2str(parts->elems[i].err));
        return DRV_OK;
}

drv_err_t drv_replay_apply(rd_kafka_t *rk, const char *group, const char *topic,
                           const drv_replay_plan_t *plan, int timeout_ms,
                           char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *l;
        rd_kafka_AlterConsumerGroupOffsets_t *alter;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        drv_err_t err;
        int32_t p;

        l = rd_kafka_topic_partition_list_new(plan->cnt);
        for (p = 0; p < plan->cnt; p++)
                if (plan->parts[p].selected)
                        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                            plan->parts[p].target;
        if (l->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(l);
                return DRV_OK;
        }
        alter = rd_kafka_AlterConsumerGroupOffsets_new(group, l);
        rd_kafka_topic_partition_list_destroy(l);
        q = rd_kafka_queue_new(rk);
        opts = admin_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
                             timeout_ms);
        rd_kafka_AlterConsumerGroupOffsets(rk, &alter, 1, opts, q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_AlterConsumerGroupOffsets_destroy(alter);
        ev = wait_result(q, timeout_ms, "resetting the group's offsets", errstr,
                         errstr_size);
        err = ev ? alter_result(ev, group, errstr, errstr_size)
                 : DRV_ERR_KAFKA_RETRIABLE;
        if (ev)
                rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        return err;
}
