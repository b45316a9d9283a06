/*
 * drover - consumer/worker/worker_kafka.c: the consumer, the transactional
 * producer, topic creation, the rebalance callback and where a partition
 * starts.
 */
#include "worker_int.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESET_READ_MS  2000 /* one read of committed offsets */
#define RESET_RETRY_MS 1000 /* unreadable: read again after */

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        drv_worker_t *w = opaque;
        char fatal[512];

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                drv_log(DRV_LOG_ERROR, "kafka fatal error: %s", fatal);
                w->fatal = 1;
                return;
        }
        drv_log(DRV_LOG_WARN, "kafka: %s: %s",
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Consumer statistics: per-partition lag (end - committed) for the
 * partitions we own, into drover_consumer_lag.  Paused partitions stop
 * refreshing their end offsets in librdkafka's statistics: their lag
 * comes from worker_lag.c's watermark queries instead. */
static void stats_partitions(drv_worker_t *w, json_t *parts) {
        const char *key;
        json_t *p;

        json_object_foreach(parts, key, p) {
                int32_t pn = (int32_t)atoi(key);
                drv_part_t *dp;

                if (pn < 0 || pn >= w->parts_cnt ||
                    !drv_worker_owned(&w->parts[pn]))
                        continue;
                dp = &w->parts[pn];
                /* offsets committed in a transaction are not known to the
                 * consumer's statistics: worker_lag.c prefers ours */
                dp->stats_committed =
                    json_integer_value(json_object_get(p, "committed_offset"));
                if (dp->paused)
                        continue;
                drv_worker_lag_set(
                    w, pn, json_integer_value(json_object_get(p, "ls_offset")),
                    json_integer_value(json_object_get(p, "lo_offset")));
        }
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque) {
        drv_worker_t *w = opaque;
        json_t *root = json_loadb(json, json_len, 0, NULL);
        json_t *t;

        (void)rk;
        t = json_object_get(json_object_get(root, "topics"), w->conf->topic);
        if (t)
                stats_partitions(w, json_object_get(t, "partitions"));
        json_decref(root);
        return 0; /* librdkafka frees json */
}

/* Common settings (drv_kafka_conf_new), then the kafka.* passthrough. */
static rd_kafka_conf_t *base_conf(drv_worker_t *w, const char *client_id,
                                  char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *kc = drv_kafka_conf_new(w->conf->brokers, client_id,
                                                 errstr, errstr_size);

        if (!kc)
                return NULL;
        rd_kafka_conf_set_error_cb(kc, error_cb);
        rd_kafka_conf_set_opaque(kc, w);
        return kc;
}

static drv_err_t set_all(rd_kafka_conf_t *kc, const char *const *kv,
                         char *errstr, size_t errstr_size) {
        char kerr[256];

        for (; kv[0]; kv += 2)
                if (rd_kafka_conf_set(kc, kv[0], kv[1], kerr, sizeof(kerr)))
                        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                           "kafka configuration %s: %s", kv[0],
                                           kerr);
        return DRV_OK;
}

static drv_err_t producer_new(drv_worker_t *w, char *errstr,
                              size_t errstr_size) {
        char txnid[512], tto[32], cid[300];
        rd_kafka_conf_t *kc;
        drv_err_t err;

        snprintf(txnid, sizeof(txnid), "drover-%s-%s", w->conf->group,
                 w->conf->instance);
        snprintf(tto, sizeof(tto), "%d", w->conf->transaction_timeout_ms);
        snprintf(cid, sizeof(cid), "drover-%s-txn", w->conf->instance);
        const char *kv[] = {"transactional.id",       txnid, "linger.ms", "1",
                            "transaction.timeout.ms", tto,   NULL};
        if (!(kc = base_conf(w, cid, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        if ((err = set_all(kc, kv, errstr, errstr_size)) ||
            (err = drv_config_apply_kafka(w->conf, kc, errstr, errstr_size))) {
                rd_kafka_conf_destroy(kc);
                return err;
        }
        w->rkp = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, errstr_size);
        if (!w->rkp) {
                rd_kafka_conf_destroy(kc);
                return DRV_ERR_CONFIG;
        }
        return DRV_OK; /* kc now owned by rkp */
}

static drv_err_t consumer_new(drv_worker_t *w, char *errstr,
                              size_t errstr_size) {
        char cid[300];
        rd_kafka_conf_t *kc;
        const char *reset;
        drv_err_t err;
        const char *kv[] = {"group.id",
                            w->conf->group,
                            "enable.auto.commit",
                            "false",
                            "enable.auto.offset.store",
                            "false",
                            "isolation.level",
                            "read_committed",
                            "auto.offset.reset",
                            "earliest",
                            "partition.assignment.strategy",
                            w->conf->assignment_strategy,
                            "statistics.interval.ms",
                            "5000",
                            NULL};
        const char *static_kv[] = {"group.instance.id", w->conf->instance,
                                   NULL};

        snprintf(cid, sizeof(cid), "drover-%s", w->conf->instance);
        if (!(kc = base_conf(w, cid, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        /* Static membership (KIP-345): a worker restarted with its
         * instance takes its partitions back without a rebalance; a stale
         * process with the same instance gets FENCED_INSTANCE_ID, fatal
         * for the consumer (error_cb: exit 70). */
        if ((err = set_all(kc, kv, errstr, errstr_size)) ||
            (w->conf->static_member &&
             (err = set_all(kc, static_kv, errstr, errstr_size))) ||
            (err = drv_config_apply_kafka(w->conf, kc, errstr, errstr_size))) {
                rd_kafka_conf_destroy(kc);
                return err;
        }
        /* librdkafka never picks a start offset for us: see
         * drv_worker_offset_reset().  kafka.auto.offset.reset still says
         * where a partition without a committed offset starts. */
        reset = drv_config_kafka_get(w->conf, "auto.offset.reset");
        w->no_offset_start =
            reset && (!strcmp(reset, "latest") || !strcmp(reset, "largest") ||
                      !strcmp(reset, "end"))
                ? RD_KAFKA_OFFSET_END
                : RD_KAFKA_OFFSET_BEGINNING;
        /* with the eager `range` assignor a re-assignment outside the
         * rebalance callback raced the group's own (duplicates in the
         * range rebalance test): the worker decides the start offsets in
         * the callback (eager_start_offsets), and auto.offset.reset only
         * applies to an offset out of range */
        if (!strcmp(w->conf->assignment_strategy, "cooperative-sticky") &&
            rd_kafka_conf_set(kc, "auto.offset.reset", "error", errstr,
                              errstr_size) != RD_KAFKA_CONF_OK) {
                rd_kafka_conf_destroy(kc);
                return DRV_ERR_CONFIG;
        }
        rd_kafka_conf_set_rebalance_cb(kc, drv_worker_rebalance_cb);
        rd_kafka_conf_set_stats_cb(kc, stats_cb);
        w->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, errstr_size);
        if (!w->rk) {
                rd_kafka_conf_destroy(kc);
                return DRV_ERR_CONFIG;
        }
        rd_kafka_poll_set_consumer(w->rk);
        return DRV_OK;
}

/* Is any broker reachable?  One metadata request with a timeout; on
 * DRV_OK *mdp is the cluster's metadata (caller destroys). */
static drv_err_t check_reachable(drv_worker_t *w,
                                 const struct rd_kafka_metadata **mdp,
                                 char *errstr, size_t errstr_size) {
        rd_kafka_resp_err_t err;

        err = rd_kafka_metadata(w->rkp, 1, NULL, mdp, 10000);
        if (err)
                return drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                   "cannot reach kafka at %s: %s",
                                   w->conf->brokers, rd_kafka_err2str(err));
        return DRV_OK;
}

static int topic_exists(const struct rd_kafka_metadata *md, const char *name) {
        int i;

        for (i = 0; i < md->topic_cnt; i++)
                if (!strcmp(md->topics[i].topic, name) && !md->topics[i].err)
                        return 1;
        return 0;
}

/* Create the tasks, status and dead-letter topics if missing.  Failure is
 * logged, not fatal: the broker may forbid creation and topics may exist. */
static void create_topics(drv_worker_t *w, const struct rd_kafka_metadata *md) {
        const char *names[3] = {w->conf->topic, w->conf->status_topic,
                                w->conf->dlq_topic};
        int parts[3] = {w->conf->topic_partitions, 3, 3};
        rd_kafka_NewTopic_t *nt[3];
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        const rd_kafka_topic_result_t **res;
        size_t i, cnt, n = 0;
        char e[256];

        for (i = 0; i < 3; i++)
                if (!topic_exists(md, names[i]))
                        nt[n++] = rd_kafka_NewTopic_new(names[i], parts[i], -1,
                                                        e, sizeof(e));
        if (n == 0)
                return;
        q = rd_kafka_queue_new(w->rkp);
        rd_kafka_CreateTopics(w->rkp, nt, n, NULL, q);
        ev = rd_kafka_queue_poll(q, 15000);
        if (!ev) {
                drv_log(DRV_LOG_WARN, "topic creation timed out");
        } else if (rd_kafka_event_error(ev)) {
                drv_log(DRV_LOG_WARN, "cannot create topics: %s",
                        rd_kafka_event_error_string(ev));
        } else {
                res = rd_kafka_CreateTopics_result_topics(
                    rd_kafka_event_CreateTopics_result(ev), &cnt);
                for (i = 0; i < cnt; i++) {
                        rd_kafka_resp_err_t err =
                            rd_kafka_topic_result_error(res[i]);
                        if (!err)
                                drv_log(DRV_LOG_INFO, "created topic \"%s\"",
                                        rd_kafka_topic_result_name(res[i]));
                        else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                                drv_log(
                                    DRV_LOG_WARN,
                                    "cannot create topic \"%s\": %s",
                                    rd_kafka_topic_result_name(res[i]),
                                    rd_kafka_topic_result_error_string(res[i]));
                }
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_NewTopic_destroy_array(nt, n);
        rd_kafka_queue_destroy(q);
}

drv_err_t drv_worker_kafka_new(drv_worker_t *w, char *errstr,
                               size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;
        drv_err_t derr;

        if ((derr = producer_new(w, errstr, errstr_size)))
                return derr;
        if ((derr = check_reachable(w, &md, errstr, errstr_size)))
                return derr;
        create_topics(w, md);
        rd_kafka_metadata_destroy(md);
        if ((error = rd_kafka_init_transactions(w->rkp, 30000))) {
                derr = rd_kafka_error_is_fatal(error) ? DRV_ERR_KAFKA_FATAL
                                                      : DRV_ERR_KAFKA_RETRIABLE;
                drv_err_set(errstr, errstr_size, derr,
                            "cannot initialise kafka transactions at %s: %s",
                            w->conf->brokers, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return derr;
        }
        if ((derr = consumer_new(w, errstr, errstr_size)))
                return derr;
        w->cgmd = rd_kafka_consumer_group_metadata(w->rk);
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, w->conf->topic,
                                          RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(w->rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err)
                return drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_FATAL,
                                   "cannot subscribe to \"%s\": %s",
                                   w->conf->topic, rd_kafka_err2str(err));
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Rebalance.  Cooperative (incremental) and eager (range) protocols.  On
 * revoke: commit what finished first; if that aborts, the retained
 * partitions are rewound by drv_worker_commit; a task still running on a
 * revoked partition may finish its PostgreSQL work but its outcome is
 * dropped (epoch).  A lost assignment commits nothing.
 * ------------------------------------------------------------------------
 */
static void on_assign(drv_worker_t *w,
                      const rd_kafka_topic_partition_list_t *parts) {
        int i;

        for (i = 0; i < parts->cnt; i++) {
                int32_t pn = parts->elems[i].partition;
                drv_part_t *p = drv_worker_part(w, pn);
                if (!p || drv_worker_owned(p))
                        continue;
                /* STARTING: nothing runs before its committed offset and
                 * metadata are read (worker_reconcile.c) */
                drv_worker_unqueue(w, pn);
                drv_pt_assign(p, drv_worker_position(w, pn));
                w->assigned_cnt++;
                /* new partitions start paused while stopping or while
                 * the database is down */
                drv_worker_sync_fetch(w, pn);
        }
        drv_log(DRV_LOG_INFO, "assigned %d partition(s), %d in total",
                parts->cnt, w->assigned_cnt);
}

static void drop_pending_of_unassigned(drv_worker_t *w) {
        drv_job_t *j, *next, *keep = NULL, *tail = NULL;

        for (j = w->pending; j; j = next) {
                drv_part_t *p = drv_worker_part(w, j->partition);
                next = j->next;
                j->next = NULL;
                if (drv_worker_owned(p) && p->epoch == j->epoch) {
                        if (tail)
                                tail->next = j;
                        else
                                keep = j;
                        tail = j;
                } else {
                        drv_job_destroy(j);
                }
        }
        w->pending = keep;
        w->pending_tail = tail;
}

static void on_revoke(drv_worker_t *w,
                      const rd_kafka_topic_partition_list_t *parts, int lost) {
        int i;

        if (lost) {
                drv_log(DRV_LOG_WARN, "assignment lost: %d partition(s)",
                        parts->cnt);
        } else {
                drv_worker_commit(w);
        }
        for (i = 0; i < parts->cnt; i++) {
                int32_t pn = parts->elems[i].partition;
                drv_part_t *p = drv_worker_part(w, pn);
                if (!drv_worker_owned(p))
                        continue;
                /* an application pause survives re-assignment: undo ours
                 * while the partition is still ours */
                drv_worker_resume(w, pn);
                drv_worker_unqueue(w, pn);
                drv_pt_revoke(p);
                w->assigned_cnt--;
                drv_metrics_set_lag(w->conf->topic, pn, -1);
        }
        drop_pending_of_unassigned(w);
        drv_log(DRV_LOG_INFO, "revoked %d partition(s), %d left", parts->cnt,
                w->assigned_cnt);
}

/* The group metadata each transaction sends with its offsets must carry
 * the generation its partitions were assigned in (KIP-447): the group
 * coordinator then refuses the offsets (ILLEGAL_GENERATION: the
 * transaction aborts) of a member the group has moved on from, e.g. one
 * whose session timed out while a broker was down.  librdkafka hands out a
 * snapshot, so it is taken again at every assignment.  (Taken once at
 * start-up it said generation -1, which the coordinator accepts unchecked:
 * the chaos test caught a worker committing status events and offsets of
 * partitions already reassigned, 5 tasks reported twice.) */
static void refresh_group_metadata(drv_worker_t *w) {
        rd_kafka_consumer_group_metadata_t *md =
            rd_kafka_consumer_group_metadata(w->rk);

        if (!md)
                return;
        if (w->cgmd)
                rd_kafka_consumer_group_metadata_destroy(w->cgmd);
        w->cgmd = md;
}

static const char *start_name(int64_t start) {
        return start == RD_KAFKA_OFFSET_END ? "end" : "beginning";
}

/* The eager (range) assignor hands over the whole assignment in the
 * rebalance callback, and a re-assignment outside it raced the group's
 * own rebalance.  So the worker decides where each partition starts here,
 * before rd_kafka_assign(): its committed offset, read while this
 * callback waits (a transaction holding offsets for it may still be open:
 * UNSTABLE_OFFSET_COMMIT until it ends, at most its transaction timeout),
 * else the configured start.  librdkafka then never asks for the
 * committed offset itself, so it cannot start the partition at
 * auto.offset.reset when the answer is unstable (see "Where a partition
 * starts" below).  Should the offsets stay unreadable past the timeout
 * (the coordinator down), librdkafka asks for them itself, as before. */
static void eager_start_offsets(drv_worker_t *w,
                                rd_kafka_topic_partition_list_t *parts) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        int64_t deadline =
            drv_mono_ms() + w->conf->transaction_timeout_ms + 10000;
        int i, logged = 0;

        if (parts->cnt == 0)
                return;
        list = rd_kafka_topic_partition_list_copy(parts);
        for (;;) {
                err = rd_kafka_committed(w->rk, list, RESET_READ_MS);
                for (i = 0; !err && i < list->cnt; i++)
                        err = list->elems[i].err;
                if (!err)
                        break;
                if (drv_mono_ms() >= deadline || drv_worker_signalled()) {
                        drv_log(DRV_LOG_WARN,
                                "committed offsets not readable (%s): "
                                "librdkafka will read them itself",
                                rd_kafka_err2str(err));
                        rd_kafka_topic_partition_list_destroy(list);
                        return;
                }
                if (!logged)
                        drv_log(DRV_LOG_WARN,
                                "committed offsets not readable yet (%s): "
                                "waiting",
                                rd_kafka_err2str(err));
                logged = 1;
                poll(NULL, 0, RESET_RETRY_MS);
        }
        for (i = 0; i < list->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &list->elems[i];
                rd_kafka_topic_partition_t *dst = &parts->elems[i]; /* copy */
                drv_part_t *p = drv_worker_part(w, tp->partition);

                if (tp->offset >= 0) {
                        drv_log(DRV_LOG_INFO,
                                "partition %d: starting at committed offset "
                                "%lld",
                                (int)tp->partition, (long long)tp->offset);
                        dst->offset = tp->offset;
                        if (p)
                                drv_pt_seek(p, tp->offset);
                } else {
                        drv_log(DRV_LOG_INFO,
                                "partition %d: no committed offset: starting "
                                "at the %s",
                                (int)tp->partition,
                                start_name(w->no_offset_start));
                        dst->offset = w->no_offset_start;
                }
        }
        rd_kafka_topic_partition_list_destroy(list);
}

void drv_worker_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts,
                             void *opaque) {
        drv_worker_t *w = opaque;
        int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                w->ever_assigned = 1;
                on_assign(w, parts);
                if (coop) {
                        error = rd_kafka_incremental_assign(rk, parts);
                } else {
                        eager_start_offsets(w, parts);
                        aerr = rd_kafka_assign(rk, parts);
                }
                refresh_group_metadata(w);
        } else {
                on_revoke(w, parts, rd_kafka_assignment_lost(rk));
                if (coop)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        aerr = rd_kafka_assign(rk, NULL);
        }
        if (error) {
                drv_log(DRV_LOG_ERROR, "rebalance: %s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (aerr) {
                drv_log(DRV_LOG_ERROR, "rebalance: %s", rd_kafka_err2str(aerr));
        }
        drv_admin_set_ready(w->assigned_cnt > 0, !w->db_down);
}

/*
 * ------------------------------------------------------------------------
 * Where a partition starts
 *
 * The consumer runs with auto.offset.reset=error, so librdkafka reports
 * instead of jumping.  librdkafka 2.0.2 (and later releases) starts a
 * newly assigned partition at auto.offset.reset when the committed offset
 * could not be read because a transaction holding offsets for it was
 * still open (UNSTABLE_OFFSET_COMMIT) and the assignment changed while it
 * asked again: with `earliest` that re-read tasks the group had already
 * committed (the chaos test saw it after a worker was killed -9 inside its
 * transaction).  So the worker decides: the committed offset when there
 * is one, the configured start when there is none, and when it cannot be
 * read yet the partition waits (its fetcher stopped) and the worker reads
 * again every second.  An offset out of range (the log was deleted past
 * it) starts at the configured start too.
 * ------------------------------------------------------------------------
 */
/* Assign partitions again at the offsets in `list` (their fetchers
 * stopped: a seek is refused now). */
static void restart(drv_worker_t *w, rd_kafka_topic_partition_list_t *list) {
        rd_kafka_topic_partition_list_t *paused;
        rd_kafka_error_t *error;
        int i;

        /* cooperative only: the eager assignor keeps auto.offset.reset
         * (see consumer_new) */
        if (!(error = rd_kafka_incremental_unassign(w->rk, list)))
                error = rd_kafka_incremental_assign(w->rk, list);
        if (error) {
                drv_log(DRV_LOG_ERROR, "cannot restart partitions: %s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                w->fatal = 1;
                return;
        }
        for (i = 0; i < list->cnt; i++) {
                drv_part_t *p = drv_worker_part(w, list->elems[i].partition);
                if (p && list->elems[i].offset >= 0)
                        drv_pt_seek(p, list->elems[i].offset);
        }
        /* assign resumes: keep paused what we had paused */
        paused = rd_kafka_topic_partition_list_new(list->cnt);
        for (i = 0; i < list->cnt; i++) {
                drv_part_t *p = drv_worker_part(w, list->elems[i].partition);
                if (p && p->paused)
                        rd_kafka_topic_partition_list_add(
                            paused, w->conf->topic, list->elems[i].partition);
        }
        if (paused->cnt > 0)
                rd_kafka_pause_partitions(w->rk, paused);
        rd_kafka_topic_partition_list_destroy(paused);
}

void drv_worker_offset_reset(drv_worker_t *w, int32_t partition,
                             int64_t err_offset) {
        drv_part_t *p = drv_worker_part(w, partition);
        rd_kafka_topic_partition_list_t *list;

        if (!drv_worker_owned(p) || w->stopping)
                return;
        if (err_offset < 0) { /* no committed offset known: we read it */
                p->restart_due = drv_mono_ms();
                return;
        }
        drv_log(DRV_LOG_WARN,
                "partition %d: offset %lld is out of range: starting at the "
                "%s",
                (int)partition, (long long)err_offset,
                start_name(w->no_offset_start));
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, w->conf->topic, partition)
            ->offset = w->no_offset_start;
        restart(w, list);
        rd_kafka_topic_partition_list_destroy(list);
}

void drv_worker_log_unreadable(int32_t partition, rd_kafka_resp_err_t err,
                               int *logged) {
        /* e.g. a transaction holding offsets for it is still open: not
         * before it ends */
        if (!*logged)
                drv_log(DRV_LOG_WARN,
                        "partition %d: committed offset not readable yet "
                        "(%s): waiting",
                        (int)partition, rd_kafka_err2str(err));
        *logged = 1;
}

void drv_worker_restart_tick(drv_worker_t *w) {
        rd_kafka_topic_partition_list_t *list = NULL, *ready;
        rd_kafka_resp_err_t err;
        int64_t now = drv_mono_ms();
        int i;

        if (w->stopping)
                return;
        for (i = 0; i < w->parts_cnt; i++) {
                drv_part_t *p = &w->parts[i];
                if (!drv_worker_owned(p) || !p->restart_due ||
                    p->restart_due > now)
                        continue;
                if (!list)
                        list = rd_kafka_topic_partition_list_new(4);
                rd_kafka_topic_partition_list_add(list, w->conf->topic, i);
        }
        if (!list)
                return;
        err = rd_kafka_committed(w->rk, list, RESET_READ_MS);
        ready = rd_kafka_topic_partition_list_new(list->cnt);
        for (i = 0; i < list->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &list->elems[i];
                drv_part_t *p = drv_worker_part(w, tp->partition);
                rd_kafka_resp_err_t perr = err ? err : tp->err;
                int64_t start = tp->offset;

                if (perr) {
                        drv_worker_log_unreadable(tp->partition, perr,
                                                  &p->restart_logged);
                        p->restart_due = now + RESET_RETRY_MS;
                        continue;
                }
                p->restart_due = 0;
                p->restart_logged = 0;
                if (start >= 0) {
                        drv_log(DRV_LOG_INFO,
                                "partition %d: starting at committed offset "
                                "%lld",
                                (int)tp->partition, (long long)start);
                } else {
                        start = w->no_offset_start;
                        drv_log(DRV_LOG_INFO,
                                "partition %d: no committed offset: starting "
                                "at the %s",
                                (int)tp->partition, start_name(start));
                }
                rd_kafka_topic_partition_list_add(ready, w->conf->topic,
                                                  tp->partition)
                    ->offset = start;
        }
        if (ready->cnt > 0)
                restart(w, ready);
        rd_kafka_topic_partition_list_destroy(ready);
        rd_kafka_topic_partition_list_destroy(list);
}
