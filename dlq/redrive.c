/*
 * drover - dlq/redrive.c: move selected dead letters back to the tasks
 * topic, exactly once (consume-transform-produce, one Kafka transaction
 * per batch).
 *
 * Each batch's transaction holds, for every record: the task (original
 * key and value, drover.attempts and drover.redrive.count + 1 in its
 * headers) on the tasks topic, and a marker on the DLQ topic's same
 * partition; then the redrive group's offsets.  See dlq.h for why the
 * offsets never pass a record that was left behind.
 *
 * Every txn API error is routed by drv_dlq_txn_route() (dlq/classify.c),
 * as in the worker: RETRY -> call again (send_offsets with the same
 * offsets), ABORT -> abort and redo the batch, FATAL (also an error with
 * no flag) -> give up (the command exits 70).
 */
#include "dlq.h"

#include <stdio.h>
#include <string.h>

#define TXN_TIMEOUT_MS   30000
#define MAX_CALL_RETRIES 10
#define MAX_BATCH_TRIES  3

typedef enum { TXN_OK, TXN_ABORT, TXN_FAIL } txn_rc_t;

/* Act on drv_dlq_txn_route()'s action for a txn API error: RETRY is
 * TXN_OK (the caller calls again) until MAX_CALL_RETRIES, then TXN_FAIL
 * (DRV_ERR_KAFKA_RETRIABLE); ABORT is TXN_ABORT; FATAL is TXN_FAIL with
 * DRV_ERR_KAFKA_FATAL.  Consumes error. */
static txn_rc_t txn_route(rd_kafka_error_t *error, const char *what,
                          int *retries, drv_err_t *errp, char *errstr,
                          size_t errstr_size) {
        txn_rc_t rc = TXN_FAIL;

        switch (drv_dlq_txn_route(error)) {
        case DRV_TXN_OK:
                return TXN_OK;
        case DRV_TXN_FATAL:
                *errp = drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_FATAL,
                                    "redrive producer failed in %s: %s", what,
                                    rd_kafka_error_string(error));
                break;
        case DRV_TXN_ABORT:
                drv_log(DRV_LOG_WARN, "redrive: %s: %s: aborting the batch",
                        what, rd_kafka_error_string(error));
                rc = TXN_ABORT;
                break;
        case DRV_TXN_RETRY:
                if (++*retries <= MAX_CALL_RETRIES) {
                        drv_log(DRV_LOG_WARN, "redrive: %s: %s: retrying", what,
                                rd_kafka_error_string(error));
                        rc = TXN_OK; /* caller calls again */
                } else
                        *errp = drv_err_set(errstr, errstr_size,
                                            DRV_ERR_KAFKA_RETRIABLE,
                                            "redrive failed in %s: %s", what,
                                            rd_kafka_error_string(error));
                break;
        }
        rd_kafka_error_destroy(error);
        return rc;
}

/* Produce, waiting out a full local queue. */
static rd_kafka_resp_err_t produce(rd_kafka_t *rkp, const char *topic,
                                   int32_t partition, const drv_dlq_rec_t *rec,
                                   int with_value, rd_kafka_headers_t *hdrs) {
        /* a marker's value is empty, not null: librdkafka writes a null
         * value (a tombstone under compaction) for a NULL payload only */
        void *value = with_value ? rec->value : (void *)"";
        size_t value_len = with_value ? rec->value_len : 0;
        rd_kafka_resp_err_t err;

        do {
                err =
                    rd_kafka_producev(rkp, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_PARTITION(partition),
                                      RD_KAFKA_V_KEY(rec->key, rec->key_len),
                                      RD_KAFKA_V_VALUE(value, value_len),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(rkp, 100);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (err)
                rd_kafka_headers_destroy(hdrs);
        return err;
}

/* The task back on the tasks topic, and its marker on the DLQ. */
static rd_kafka_resp_err_t produce_pair(rd_kafka_t *rkp, const char *dlq_topic,
                                        const char *tasks_topic,
                                        const drv_dlq_rec_t *rec) {
        rd_kafka_headers_t *task_h = rd_kafka_headers_new(5);
        rd_kafka_headers_t *mark_h = rd_kafka_headers_new(4);
        char attempts[16], count[16], of[64], from[320];
        rd_kafka_resp_err_t err;

        snprintf(attempts, sizeof(attempts), "%d", rec->info.attempts);
        snprintf(count, sizeof(count), "%d", rec->info.redrive_count + 1);
        snprintf(of, sizeof(of), "%d:%lld", (int)rec->partition,
                 (long long)rec->offset);
        snprintf(from, sizeof(from), "%s:%s", dlq_topic, of);
        rd_kafka_header_add(task_h, DRV_DLQ_H_ATTEMPTS, -1, attempts, -1);
        rd_kafka_header_add(task_h, DRV_DLQ_H_REDRIVE_COUNT, -1, count, -1);
        rd_kafka_header_add(task_h, "drover.redrive.from", -1, from, -1);
        rd_kafka_header_add(task_h, DRV_DLQ_H_TASK_ID, -1, rec->info.task_id,
                            -1);
        rd_kafka_header_add(task_h, DRV_DLQ_H_DATASET, -1, rec->info.dataset,
                            -1);
        rd_kafka_header_add(mark_h, DRV_DLQ_H_REDRIVEN_OF, -1, of, -1);
        rd_kafka_header_add(mark_h, DRV_DLQ_H_REDRIVE_COUNT, -1, count, -1);
        rd_kafka_header_add(mark_h, DRV_DLQ_H_TASK_ID, -1, rec->info.task_id,
                            -1);
        rd_kafka_header_add(mark_h, DRV_DLQ_H_DATASET, -1, rec->info.dataset,
                            -1);
        err = produce(rkp, tasks_topic, RD_KAFKA_PARTITION_UA, rec, 1, task_h);
        if (err) {
                rd_kafka_headers_destroy(mark_h);
                return err;
        }
        return produce(rkp, dlq_topic, rec->partition, rec, 0, mark_h);
}

/* Per partition: the first record not yet settled (or the scan's end). */
static rd_kafka_topic_partition_list_t *
offsets_to_commit(const drv_dlq_scan_t *scan, const char *dlq_topic) {
        rd_kafka_topic_partition_list_t *offs;
        size_t i = 0;
        int32_t p;

        offs = rd_kafka_topic_partition_list_new(scan->partition_cnt);
        for (p = 0; p < scan->partition_cnt; p++) {
                int64_t commit = scan->end[p];

                for (; i < scan->cnt && scan->recs[i].partition == p; i++) {
                        drv_dlq_state_t st = scan->recs[i].state;
                        if (commit == scan->end[p] && st != DRV_DLQ_MARKER &&
                            st != DRV_DLQ_REDRIVEN)
                                commit = scan->recs[i].offset;
                }
                if (commit > scan->start[p])
                        rd_kafka_topic_partition_list_add(offs, dlq_topic, p)
                            ->offset = commit;
        }
        return offs;
}

/* Set the state of batch records [from, to) that are `a` to `b`. */
static void batch_state(drv_dlq_scan_t *scan, size_t *idx, size_t n,
                        drv_dlq_state_t a, drv_dlq_state_t b) {
        size_t i;

        for (i = 0; i < n; i++)
                if (scan->recs[idx[i]].state == a)
                        scan->recs[idx[i]].state = b;
}

/* One transaction: the batch's records (their indexes in idx) and the
 * offsets.  TXN_ABORT leaves the records SELECTED for another try. */
static txn_rc_t run_batch(rd_kafka_t *rk, rd_kafka_t *rkp, drv_dlq_scan_t *scan,
                          size_t *idx, size_t n, const char *dlq_topic,
                          const char *tasks_topic, drv_err_t *errp,
                          char *errstr, size_t errstr_size) {
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_topic_partition_list_t *offs;
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t perr;
        txn_rc_t rc = TXN_OK;
        int retries = 0;
        size_t i;

        if ((error = rd_kafka_begin_transaction(rkp))) {
                /* no transaction is open: nothing to abort or redo */
                if (txn_route(error, "begin_transaction", &retries, errp,
                              errstr, errstr_size) != TXN_FAIL)
                        drv_err_set(errstr, errstr_size,
                                    *errp = DRV_ERR_KAFKA_RETRIABLE,
                                    "redrive could not begin a transaction");
                return TXN_FAIL;
        }
        for (i = 0; i < n; i++) {
                perr = produce_pair(rkp, dlq_topic, tasks_topic,
                                    &scan->recs[idx[i]]);
                if (perr) {
                        drv_log(DRV_LOG_WARN, "redrive: produce: %s",
                                rd_kafka_err2str(perr));
                        return TXN_ABORT;
                }
        }
        batch_state(scan, idx, n, DRV_DLQ_SELECTED, DRV_DLQ_REDRIVEN);
        offs = offsets_to_commit(scan, dlq_topic);
        cgmd = rd_kafka_consumer_group_metadata(rk);
        while (offs->cnt > 0 &&
               (error = rd_kafka_send_offsets_to_transaction(rkp, offs, cgmd,
                                                             TXN_TIMEOUT_MS)) &&
               (rc = txn_route(error, "send_offsets_to_transaction", &retries,
                               errp, errstr, errstr_size)) == TXN_OK)
                ;
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(offs);
        retries = 0;
        while (rc == TXN_OK &&
               (error = rd_kafka_commit_transaction(rkp, TXN_TIMEOUT_MS)) &&
               (rc = txn_route(error, "commit_transaction", &retries, errp,
                               errstr, errstr_size)) == TXN_OK)
                ;
        if (rc != TXN_OK)
                batch_state(scan, idx, n, DRV_DLQ_REDRIVEN, DRV_DLQ_SELECTED);
        return rc;
}

/* Abort the open transaction (retrying while retriable). */
static txn_rc_t abort_txn(rd_kafka_t *rkp, drv_err_t *errp, char *errstr,
                          size_t errstr_size) {
        rd_kafka_error_t *error;
        int retries = 0;
        txn_rc_t rc = TXN_OK;

        while ((error = rd_kafka_abort_transaction(rkp, TXN_TIMEOUT_MS)) &&
               (rc = txn_route(error, "abort_transaction", &retries, errp,
                               errstr, errstr_size)) == TXN_OK)
                ;
        return rc == TXN_ABORT ? TXN_FAIL : rc;
}

drv_err_t drv_dlq_redrive(rd_kafka_t *rk, rd_kafka_t *rkp, drv_dlq_scan_t *scan,
                          const char *dlq_topic, const char *tasks_topic,
                          int batch_size, size_t *movedp, char *errstr,
                          size_t errstr_size) {
        size_t idx[1000], n = 0, i = 0, moved = 0;
        drv_err_t err = DRV_OK;
        int tries;

        if (batch_size <= 0 || batch_size > 1000)
                batch_size = 100;
        /* always at least one pass, so settled offsets get committed */
        while (i < scan->cnt || n == 0) {
                for (n = 0; i < scan->cnt && n < (size_t)batch_size; i++)
                        if (scan->recs[i].state == DRV_DLQ_SELECTED)
                                idx[n++] = i;
                for (tries = 0;; tries++) {
                        txn_rc_t rc =
                            run_batch(rk, rkp, scan, idx, n, dlq_topic,
                                      tasks_topic, &err, errstr, errstr_size);
                        if (rc == TXN_OK)
                                break;
                        if (rc == TXN_FAIL ||
                            abort_txn(rkp, &err, errstr, errstr_size) != TXN_OK)
                                goto done;
                        if (tries + 1 >= MAX_BATCH_TRIES) {
                                err = drv_err_set(
                                    errstr, errstr_size,
                                    DRV_ERR_KAFKA_RETRIABLE,
                                    "redrive batch aborted %d times, giving "
                                    "up",
                                    MAX_BATCH_TRIES);
                                goto done;
                        }
                }
                moved += n;
                if (n == 0 || i >= scan->cnt)
                        break;
        }
done:
        if (movedp)
                *movedp = moved;
        return err;
}
