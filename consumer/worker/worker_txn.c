/*
 * drover - consumer/worker/worker_txn.c: one short Kafka transaction per commit
 * interval: status events, dead letters and the consumer offsets
 * (per partition the lowest unfinished task, with the final offsets above
 * it as metadata: partition.h), never open while
 * PostgreSQL work runs.  Every txn API error is routed by
 * drv_dlq_txn_route() (dlq/classify.c): RETRY -> call again with
 * identical arguments (TXN_RETRIES times, then abort); ABORT -> abort,
 * rewind, drop the outcomes (redelivered; the ledger makes PostgreSQL
 * idempotent); FATAL (also an error with no flag) -> exit 70.  A failed
 * begin is never retried here: the next commit interval is the retry.
 */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TXN_TIMEOUT_MS 30000
#define TXN_RETRIES    10

typedef enum { TXN_OK, TXN_ABORT, TXN_FATAL } txn_res_t;

/* Route a txn API error with drv_dlq_txn_route(); destroys it.  RETRY
 * is TXN_OK with *retry set: the caller calls again (TXN_RETRIES at
 * most). */
static txn_res_t txn_error(drv_worker_t *w, rd_kafka_error_t *error,
                           const char *what, int *retry) {
        drv_txn_action_t action = drv_dlq_txn_route(error);
        txn_res_t r = TXN_OK;

        *retry = 0;
        switch (action) {
        case DRV_TXN_OK:
                return TXN_OK;
        case DRV_TXN_RETRY:
                *retry = 1;
                drv_log(DRV_LOG_WARN,
                        "kafka transaction %s failed (retrying): %s", what,
                        rd_kafka_error_string(error));
                break;
        case DRV_TXN_ABORT:
                drv_log(DRV_LOG_WARN, "kafka transaction %s must abort: %s",
                        what, rd_kafka_error_string(error));
                r = TXN_ABORT;
                break;
        case DRV_TXN_FATAL:
                drv_log(DRV_LOG_ERROR,
                        "kafka transaction %s failed fatally: %s", what,
                        rd_kafka_error_string(error));
                w->fatal = 1;
                r = TXN_FATAL;
                break;
        }
        rd_kafka_error_destroy(error);
        return r;
}

/* The status event of a job (malloc'ed JSON) */
static char *status_event(drv_worker_t *w, const drv_job_t *job) {
        const drv_task_t *t = job->task;
        char ts[40], *s;
        json_t *o;

        drv_format_time(drv_now_ms(), ts, sizeof(ts));
        o = json_pack(
            "{s:s?, s:s?, s:s?, s:s, s:i, s:i, s:i, s:I, s:i, s:I, s:s, s:s}",
            "task_id", t ? t->task_id : NULL, "dataset", t ? t->dataset : NULL,
            "entity_ref", t ? t->entity_ref : NULL, "status",
            drv_outcome_status(job->outcome), "attempts", job->attempts,
            "steps_done", job->res.steps_done, "steps_total",
            job->res.steps_total, "rows", (json_int_t)job->res.rows,
            "partition", (int)job->partition, "offset", (json_int_t)job->offset,
            "worker", w->conf->instance, "ts", ts);
        if (!o)
                return NULL;
        if (job->dlq.error_class[0]) {
                json_object_set_new(o, "error_class",
                                    json_string(job->dlq.error_class));
                json_object_set_new(o, "error",
                                    json_string(job->dlq.error_message));
        }
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

static void dlq_fill(drv_worker_t *w, drv_job_t *job) {
        drv_dlq_info_t *d = &job->dlq;
        const rd_kafka_message_t *m = job->msg;
        rd_kafka_timestamp_type_t tstype;

        if (job->task) {
                snprintf(d->task_id, sizeof(d->task_id), "%s",
                         job->task->task_id);
                snprintf(d->dataset, sizeof(d->dataset), "%s",
                         job->task->dataset);
        }
        d->attempts = job->attempts;
        d->redrive_count = job->redrive_count;
        if (!d->last_failure_ms)
                d->last_failure_ms = drv_now_ms();
        if (!d->first_failure_ms)
                d->first_failure_ms = job->first_failure_ms
                                          ? job->first_failure_ms
                                          : d->last_failure_ms;
        snprintf(d->original_topic, sizeof(d->original_topic), "%s",
                 w->conf->topic);
        d->original_partition = job->partition;
        d->original_offset = job->offset;
        d->original_timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
        snprintf(d->worker, sizeof(d->worker), "%s", w->conf->instance);
        snprintf(d->consumer_group, sizeof(d->consumer_group), "%s",
                 w->conf->group);
}

/* Produce the outputs of one job into the open transaction. */
static rd_kafka_resp_err_t produce_job(drv_worker_t *w, drv_job_t *job) {
        const rd_kafka_message_t *m = job->msg;
        const char *key = job->task ? job->task->task_id : NULL;
        char *ev = status_event(w, job);
        rd_kafka_resp_err_t err;

        if (!ev)
                return RD_KAFKA_RESP_ERR__FAIL;
        err = rd_kafka_producev(w->rkp, RD_KAFKA_V_TOPIC(w->conf->status_topic),
                                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                RD_KAFKA_V_VALUE(ev, strlen(ev)),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END);
        free(ev);
        if (err || job->outcome != DRV_OUT_DEAD)
                return err;
        dlq_fill(w, job);
        rd_kafka_headers_t *hdrs = drv_dlq_headers_new(&job->dlq);
        err = rd_kafka_producev(
            w->rkp, RD_KAFKA_V_TOPIC(w->conf->dlq_topic),
            RD_KAFKA_V_KEY(m->key, m->key_len),
            RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err)
                rd_kafka_headers_destroy(hdrs);
        return err;
}

/*
 * Committing past control records.  A transactional producer's commit
 * (or abort) marker takes an offset of its own after the batch, and an
 * aborted batch takes offsets no read_committed consumer is handed: a
 * worker that commits "last completed task + 1" stops before them, and
 * the group lags by one (or more) forever, which keeps KEDA from scaling
 * to zero.  librdkafka 2.0.2's rd_kafka_position() is rktp_app_offset:
 * the offset after the last record handed to this thread, set when
 * rd_kafka_consumer_poll returns a message and when a control record
 * reaches the head of the consumer queue (in order, so after every
 * message before it was returned); prefetched messages do not move it,
 * and a seek or a stopped fetcher resets it to INVALID.  Every message
 * returned to this thread is recorded in on_message (put in its
 * partition's window, or dropped as a refetch or as final already) except
 * while stopping.  So for a quiet partition (nothing unfinished in its
 * window, started, not paused), every offset below its position is a
 * task already final (committed, or pending in this very commit) or a
 * record no task was read from.  See docs/decisions.md.
 */
int64_t drv_worker_position(drv_worker_t *w, int32_t partition) {
        rd_kafka_topic_partition_list_t *l;
        int64_t pos = -1;

        if (!w->rk)
                return -1;
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, w->conf->topic, partition);
        if (!rd_kafka_position(w->rk, l) && !l->elems[0].err &&
            l->elems[0].offset >= 0)
                pos = l->elems[0].offset;
        rd_kafka_topic_partition_list_destroy(l);
        return pos;
}

int64_t drv_worker_marker_position(drv_worker_t *w, int32_t partition) {
        drv_part_t *p = drv_worker_part(w, partition);
        int64_t pos;

        /* stopping: on_message drops what still arrives, yet librdkafka
         * counted it as consumed; the database down: leave it be */
        if (!p || w->stopping || w->db_down || p->state != DRV_PS_ACTIVE ||
            p->paused || drv_pt_busy(p) || p->restart_due)
                return -1;
        pos = drv_worker_position(w, partition);
        /* unknown, possibly left from an earlier assignment, or behind
         * what this worker has seen: not trusted */
        if (pos < 0 || pos == p->assign_pos ||
            (p->next_offset >= 0 && pos < p->next_offset))
                return -1;
        return pos;
}

/* Per active partition with something to commit: the lowest offset whose
 * task is not final (or its position past control records when quiet),
 * with the final offsets above it as metadata (partition.h). */
static rd_kafka_topic_partition_list_t *pending_offsets(drv_worker_t *w,
                                                        int *movesp) {
        rd_kafka_topic_partition_list_t *offs =
            rd_kafka_topic_partition_list_new(16);
        char meta[DRV_PT_META_BUDGET + 1];
        int64_t off, quiet;
        int i;

        *movesp = 0;
        for (i = 0; i < w->parts_cnt; i++) {
                drv_part_t *p = &w->parts[i];
                rd_kafka_topic_partition_t *tp;
                if (p->state != DRV_PS_ACTIVE)
                        continue;
                quiet = drv_worker_marker_position(w, i);
                if (!drv_pt_commit_point(p, quiet, &off, meta, sizeof(meta)))
                        continue;
                if (quiet >= 0 && off == quiet)
                        drv_log(DRV_LOG_DEBUG,
                                "partition %d: committing offset %lld, past "
                                "control records",
                                i, (long long)off);
                tp = rd_kafka_topic_partition_list_add(offs, w->conf->topic, i);
                tp->offset = off;
                tp->metadata = strdup(meta);
                tp->metadata_size = tp->metadata ? strlen(meta) : 0;
                *movesp += off > p->committed;
        }
        return offs;
}

int drv_worker_advance_due(drv_worker_t *w, int64_t now) {
        rd_kafka_topic_partition_list_t *offs;
        int moves;

        if (now < w->next_advance)
                return 0;
        w->next_advance = now + w->conf->commit_interval_ms;
        offs = pending_offsets(w, &moves);
        rd_kafka_topic_partition_list_destroy(offs);
        return moves > 0;
}

/* begin; produce; send offsets (retried with identical arguments);
 * commit (retried).  The transaction is left open on TXN_ABORT. */
static txn_res_t txn_run(drv_worker_t *w,
                         const rd_kafka_topic_partition_list_t *offs) {
        rd_kafka_resp_err_t perr;
        txn_res_t r;
        drv_job_t *j;
        int retry, n;

        r = txn_error(w, rd_kafka_begin_transaction(w->rkp), "begin", &retry);
        if (r != TXN_OK || retry)
                return r == TXN_OK ? TXN_ABORT : r;
        for (j = w->pending; j; j = j->next)
                if ((perr = produce_job(w, j))) {
                        drv_log(DRV_LOG_WARN, "cannot produce outcome: %s",
                                rd_kafka_err2str(perr));
                        return perr == RD_KAFKA_RESP_ERR__FATAL ? TXN_FATAL
                                                                : TXN_ABORT;
                }
        drv_crash_point("before_send_offsets");
        /* a lost assignment (session timeout) commits nothing: the
         * revoke that follows drops these outcomes */
        if (rd_kafka_assignment_lost(w->rk))
                return TXN_ABORT;
        for (n = 0, retry = 1; retry && n < TXN_RETRIES; n++) {
                r = txn_error(w,
                              rd_kafka_send_offsets_to_transaction(
                                  w->rkp, offs, w->cgmd, TXN_TIMEOUT_MS),
                              "send_offsets", &retry);
                if (r != TXN_OK)
                        break;
        }
        if (r != TXN_OK || retry)
                return r == TXN_OK ? TXN_ABORT : r;
        drv_crash_point("in_kafka_commit");
        for (n = 0, retry = 1; retry && n < TXN_RETRIES; n++) {
                r = txn_error(
                    w, rd_kafka_commit_transaction(w->rkp, TXN_TIMEOUT_MS),
                    "commit", &retry);
                if (r != TXN_OK)
                        break;
        }
        return r == TXN_OK && retry ? TXN_ABORT : r;
}

/* The commit of `offs` succeeded: finalize the pending jobs and move
 * each partition's window. */
static void pending_committed(drv_worker_t *w,
                              const rd_kafka_topic_partition_list_t *offs) {
        drv_job_t *j, *next;
        double secs;
        int i;

        for (j = w->pending; j; j = next) {
                next = j->next;
                secs = (double)(drv_mono_ms() - j->started_ms) / 1000.0;
                drv_metrics_task(drv_outcome_status(j->outcome), secs);
                drv_metrics_step_rows(j->res.rows);
                if (j->outcome == DRV_OUT_DEAD)
                        drv_metrics_dlq(j->dlq.error_class);
        }
        /* one statement for the final statuses of the whole commit */
        drv_pool_finalize(w->pool, w->pending);
        for (j = w->pending; j; j = next) {
                next = j->next;
                drv_job_destroy(j);
        }
        w->pending = w->pending_tail = NULL;
        for (i = 0; i < offs->cnt; i++) {
                drv_part_t *p = drv_worker_part(w, offs->elems[i].partition);
                if (p) {
                        drv_pt_committed(p, offs->elems[i].offset);
                        drv_worker_sync_fetch(w, offs->elems[i].partition);
                }
        }
}

int drv_worker_commit(drv_worker_t *w) {
        rd_kafka_topic_partition_list_t *offs;
        int32_t parts[1024];
        int cnt = 0, retry, n, moves;
        drv_job_t *j, *next;
        txn_res_t r;

        /* with no outcome pending, a transaction of offsets alone moves
         * quiet partitions past control records */
        offs = pending_offsets(w, &moves);
        if (!w->pending && offs->cnt == 0) {
                rd_kafka_topic_partition_list_destroy(offs);
                return 0;
        }
        r = txn_run(w, offs);
        if (r == TXN_OK) {
                drv_crash_point("after_kafka_commit");
                drv_metrics_txn_commit();
                pending_committed(w, offs);
                rd_kafka_topic_partition_list_destroy(offs);
                return 0;
        }
        rd_kafka_topic_partition_list_destroy(offs);
        if (r == TXN_FATAL) {
                w->fatal = 1;
                return -1;
        }
        for (n = 0, retry = 1; retry && n < TXN_RETRIES; n++)
                if (txn_error(
                        w, rd_kafka_abort_transaction(w->rkp, TXN_TIMEOUT_MS),
                        "abort", &retry) == TXN_FATAL)
                        return -1;
        drv_metrics_txn_abort();
        for (j = w->pending; j; j = next) {
                next = j->next;
                if (cnt < 1024)
                        parts[cnt++] = j->partition;
                drv_job_destroy(j);
        }
        w->pending = w->pending_tail = NULL;
        drv_worker_rewind(w, parts, cnt);
        return 1;
}

void drv_worker_rewind(drv_worker_t *w, const int32_t *parts, int cnt) {
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new(cnt > 0 ? cnt : 1);
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;
        int i;

        for (i = 0; i < cnt; i++) {
                drv_part_t *p = drv_worker_part(w, parts[i]);
                if (!drv_worker_owned(p) || rd_kafka_topic_partition_list_find(
                                                list, w->conf->topic, parts[i]))
                        continue;
                /* back to STARTING: its committed offset and metadata are
                 * read again (worker_reconcile.c) before anything runs */
                drv_worker_unqueue(w, parts[i]);
                drv_pt_rewind(p, -1);
                /* resume before seeking: resume restarts the fetcher at
                 * the application position, the seek then wins */
                drv_worker_resume(w, parts[i]);
                rd_kafka_topic_partition_list_add(list, w->conf->topic,
                                                  parts[i]);
        }
        /* stopping: nothing more is dispatched and the reset above dropped
         * these partitions' in-flight outcomes (epoch), so there is no
         * position to restore: the next owner starts from the committed
         * offsets.  (Reading them here failed when the coordinator was the
         * broker being restarted, and the worker exited 70 on SIGTERM.) */
        if (list->cnt == 0 || w->stopping)
                goto out;
        err = rd_kafka_committed(w->rk, list, 10000);
        if (err) {
                drv_log(DRV_LOG_ERROR, "cannot read committed offsets: %s",
                        rd_kafka_err2str(err));
                w->fatal = 1;
                goto out;
        }
        for (i = 0; i < list->cnt; i++)
                if (list->elems[i].offset < 0)
                        list->elems[i].offset = w->no_offset_start;
        if ((error = rd_kafka_seek_partitions(w->rk, list, 10000))) {
                drv_log(DRV_LOG_ERROR, "cannot rewind partitions: %s",
                        rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                w->fatal = 1;
        }
        for (i = 0; i < list->cnt; i++) {
                drv_part_t *p = drv_worker_part(w, list->elems[i].partition);
                /* what arrives from before the seek is dropped */
                if (!w->fatal && list->elems[i].offset >= 0)
                        drv_pt_seek(p, list->elems[i].offset);
                drv_log(DRV_LOG_INFO, "rewound partition %d to offset %lld",
                        (int)list->elems[i].partition,
                        (long long)list->elems[i].offset);
        }
out:
        rd_kafka_topic_partition_list_destroy(list);
}
