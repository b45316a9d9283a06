/*
 * drover - dlq/scan.c: read a DLQ topic to its end, and decide what to
 * redrive.
 *
 * The scan is read_committed, so dead letters of aborted worker
 * transactions never show.  It stops at the end each partition had when
 * it was reached (PARTITION_EOF, which librdkafka reports at the last
 * stable offset under read_committed): `dlq list` is a snapshot, not a
 * tail.
 */
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drv_dlq_scan_destroy(drv_dlq_scan_t *scan) {
        size_t i;

        if (!scan)
                return;
        for (i = 0; i < scan->cnt; i++) {
                free(scan->recs[i].key);
                free(scan->recs[i].value);
        }
        free(scan->recs);
        free(scan->start);
        free(scan->end);
        free(scan);
}

const char *drv_dlq_state_name(drv_dlq_state_t state) {
        switch (state) {
        case DRV_DLQ_PENDING:
                return "pending";
        case DRV_DLQ_MARKER:
                return "marker";
        case DRV_DLQ_REDRIVEN:
                return "redriven";
        case DRV_DLQ_UNREADABLE:
                return "unreadable";
        case DRV_DLQ_UNSELECTED:
                return "unselected";
        case DRV_DLQ_PARKED:
                return "parked";
        case DRV_DLQ_SELECTED:
                return "selected";
        }
        return "unknown";
}

static void *dup_bytes(const void *p, size_t len) {
        void *q;

        if (!p)
                return NULL;
        q = malloc(len ? len : 1);
        if (q && len)
                memcpy(q, p, len);
        return q;
}

/* "<partition>:<offset>" of a marker; 0 or -1. */
static int parse_marker(const void *v, size_t len, int32_t *pp, int64_t *op) {
        char tmp[48], *end;
        long p;
        long long o;

        if (!v || len == 0 || len >= sizeof(tmp))
                return -1;
        memcpy(tmp, v, len);
        tmp[len] = '\0';
        p = strtol(tmp, &end, 10);
        if (end == tmp || *end != ':' || p < 0 || p > INT32_MAX)
                return -1;
        o = strtoll(end + 1, &end, 10);
        if (*end || o < 0)
                return -1;
        *pp = (int32_t)p;
        *op = o;
        return 0;
}

/* Turn one consumed message into a record of the scan. */
static drv_err_t add_message(drv_dlq_scan_t *scan, size_t *cap,
                             const rd_kafka_message_t *rkm) {
        rd_kafka_headers_t *hdrs = NULL;
        drv_dlq_rec_t *rec;
        const void *mv;
        size_t mlen;

        if (scan->cnt == *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                void *n = realloc(scan->recs, ncap * sizeof(*scan->recs));
                if (!n)
                        return DRV_ERR_NOMEM;
                scan->recs = n;
                *cap = ncap;
        }
        rec = &scan->recs[scan->cnt];
        memset(rec, 0, sizeof(*rec));
        rec->partition = rkm->partition;
        rec->offset = rkm->offset;
        rec->timestamp_ms = rd_kafka_message_timestamp(rkm, NULL);
        rec->key = dup_bytes(rkm->key, rkm->key_len);
        rec->key_len = rkm->key ? rkm->key_len : 0;
        rec->value = dup_bytes(rkm->payload, rkm->len);
        rec->value_len = rkm->payload ? rkm->len : 0;
        if ((rkm->key && !rec->key) || (rkm->payload && !rec->value)) {
                free(rec->key);
                free(rec->value);
                return DRV_ERR_NOMEM;
        }
        scan->cnt++;
        rd_kafka_message_headers(rkm, &hdrs);
        if (hdrs &&
            !rd_kafka_header_get_last(hdrs, DRV_DLQ_H_REDRIVEN_OF, &mv,
                                      &mlen) &&
            !parse_marker(mv, mlen, &rec->marker_partition,
                          &rec->marker_offset)) {
                rec->state = DRV_DLQ_MARKER;
                return DRV_OK;
        }
        if (drv_dlq_headers_parse(hdrs, &rec->info, rec->parse_error,
                                  sizeof(rec->parse_error)))
                rec->state = DRV_DLQ_UNREADABLE;
        else
                rec->state = DRV_DLQ_PENDING;
        return DRV_OK;
}

static int rec_cmp(const void *a, const void *b) {
        const drv_dlq_rec_t *x = a, *y = b;

        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Sort, then mark every dead letter that has a marker as REDRIVEN. */
static void match_markers(drv_dlq_scan_t *scan) {
        drv_dlq_rec_t key, *hit;
        size_t i;

        qsort(scan->recs, scan->cnt, sizeof(*scan->recs), rec_cmp);
        for (i = 0; i < scan->cnt; i++) {
                if (scan->recs[i].state != DRV_DLQ_MARKER)
                        continue;
                key.partition = scan->recs[i].marker_partition;
                key.offset = scan->recs[i].marker_offset;
                hit = bsearch(&key, scan->recs, scan->cnt, sizeof(*scan->recs),
                              rec_cmp);
                if (hit && hit->state != DRV_DLQ_MARKER)
                        hit->state = DRV_DLQ_REDRIVEN;
        }
}

/* Fill scan->start / scan->end's initial values and the assignment. */
static drv_err_t plan_start(rd_kafka_t *rk, const char *topic,
                            int from_committed, int timeout_ms,
                            drv_dlq_scan_t *scan,
                            rd_kafka_topic_partition_list_t *assign,
                            char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_resp_err_t err;
        int64_t lo, hi;
        int32_t p;

        parts = rd_kafka_topic_partition_list_new(scan->partition_cnt);
        for (p = 0; p < scan->partition_cnt; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_INVALID;
        if (from_committed &&
            (err = rd_kafka_committed(rk, parts, timeout_ms))) {
                rd_kafka_topic_partition_list_destroy(parts);
                return drv_err_set(errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                                   "cannot read committed offsets of the "
                                   "redrive group: %s",
                                   rd_kafka_err2str(err));
        }
        for (p = 0; p < scan->partition_cnt; p++) {
                err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
                                                       timeout_ms);
                if (err) {
                        rd_kafka_topic_partition_list_destroy(parts);
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "cannot read offsets of \"%s\" [%d]: %s", topic,
                            (int)p, rd_kafka_err2str(err));
                }
                scan->start[p] =
                    parts->elems[p].offset >= lo ? parts->elems[p].offset : lo;
                scan->end[p] = -1; /* not reached yet */
                if (scan->start[p] >= hi)
                        scan->end[p] = scan->start[p];
                else
                        rd_kafka_topic_partition_list_add(assign, topic, p)
                            ->offset = scan->start[p];
        }
        rd_kafka_topic_partition_list_destroy(parts);
        return DRV_OK;
}

/* Consume the assignment until every partition reported EOF. */
static drv_err_t consume_to_end(rd_kafka_t *rk, const char *topic,
                                drv_dlq_scan_t *scan, int left, int timeout_ms,
                                char *errstr, size_t errstr_size) {
        int64_t deadline = drv_mono_ms() + timeout_ms;
        size_t cap = 0;
        drv_err_t err = DRV_OK;

        while (left > 0 && !err) {
                rd_kafka_message_t *rkm;

                if (drv_mono_ms() > deadline)
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_KAFKA_RETRIABLE,
                            "timed out reading topic \"%s\" to its end "
                            "(%d partition(s) left)",
                            topic, left);
                rkm = rd_kafka_consumer_poll(rk, 200);
                if (!rkm)
                        continue;
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (rkm->partition >= 0 &&
                            rkm->partition < scan->partition_cnt &&
                            scan->end[rkm->partition] < 0) {
                                scan->end[rkm->partition] = rkm->offset;
                                left--;
                        }
                } else if (rkm->err) {
                        err = drv_err_set(errstr, errstr_size,
                                          DRV_ERR_KAFKA_RETRIABLE,
                                          "cannot read topic \"%s\": %s", topic,
                                          rd_kafka_message_errstr(rkm));
                } else if (rkm->partition < scan->partition_cnt &&
                           scan->end[rkm->partition] < 0) {
                        if (add_message(scan, &cap, rkm))
                                err = drv_err_set(errstr, errstr_size,
                                                  DRV_ERR_NOMEM,
                                                  "out of memory reading "
                                                  "topic \"%s\"",
                                                  topic);
                }
                rd_kafka_message_destroy(rkm);
        }
        return err;
}

drv_err_t drv_dlq_scan(rd_kafka_t *rk, const char *topic, int from_committed,
                       int timeout_ms, drv_dlq_scan_t **scanp, char *errstr,
                       size_t errstr_size) {
        rd_kafka_topic_partition_list_t *assign = NULL;
        drv_dlq_scan_t *scan;
        rd_kafka_resp_err_t rerr;
        drv_err_t err;
        int cnt;

        *scanp = NULL;
        cnt = drv_kafka_partition_count(rk, topic, timeout_ms, NULL, errstr,
                                        errstr_size);
        if (cnt < 0)
                return DRV_ERR_KAFKA_RETRIABLE;
        scan = calloc(1, sizeof(*scan));
        if (!scan || !(scan->start = calloc((size_t)cnt + 1, 8)) ||
            !(scan->end = calloc((size_t)cnt + 1, 8))) {
                drv_dlq_scan_destroy(scan);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        scan->partition_cnt = cnt;
        assign = rd_kafka_topic_partition_list_new(cnt);
        err = plan_start(rk, topic, from_committed, timeout_ms, scan, assign,
                         errstr, errstr_size);
        if (!err && assign->cnt > 0) {
                if ((rerr = rd_kafka_assign(rk, assign)))
                        err = drv_err_set(errstr, errstr_size,
                                          DRV_ERR_KAFKA_RETRIABLE,
                                          "cannot assign topic \"%s\": %s",
                                          topic, rd_kafka_err2str(rerr));
                else
                        err = consume_to_end(rk, topic, scan, assign->cnt,
                                             timeout_ms, errstr, errstr_size);
                rd_kafka_assign(rk, NULL);
        }
        rd_kafka_topic_partition_list_destroy(assign);
        if (err) {
                drv_dlq_scan_destroy(scan);
                return err;
        }
        match_markers(scan);
        *scanp = scan;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Selection
 * ------------------------------------------------------------------------
 */
int drv_dlq_filter_match(const drv_dlq_filter_t *f, const drv_dlq_rec_t *rec) {
        if (!f)
                return 1;
        if (f->error_class && strcmp(f->error_class, rec->info.error_class))
                return 0;
        if (f->dataset && strcmp(f->dataset, rec->info.dataset))
                return 0;
        if (f->since_ms > 0 && rec->timestamp_ms < f->since_ms)
                return 0;
        /* --due: only records that carry a retry-after time, once it has
         * passed; a permanent failure (no retry-after) is never due */
        if (f->due && (rec->info.retry_after_ms <= 0 ||
                       rec->info.retry_after_ms > f->now_ms))
                return 0;
        return 1;
}

size_t drv_dlq_select(drv_dlq_scan_t *scan, const drv_dlq_filter_t *f) {
        int max_redrives = f && f->max_redrives > 0 ? f->max_redrives : 5;
        size_t i, n = 0;

        for (i = 0; i < scan->cnt; i++) {
                drv_dlq_rec_t *rec = &scan->recs[i];

                if (rec->state != DRV_DLQ_PENDING)
                        continue;
                if (!drv_dlq_filter_match(f, rec))
                        rec->state = DRV_DLQ_UNSELECTED;
                else if (rec->info.redrive_count >= max_redrives)
                        rec->state = DRV_DLQ_PARKED;
                else if (f && f->max > 0 && (long)n >= f->max)
                        rec->state = DRV_DLQ_UNSELECTED;
                else {
                        rec->state = DRV_DLQ_SELECTED;
                        n++;
                }
        }
        return n;
}
