/*
 * drover - dlq/headers.c: dead-letter headers (DESIGN.md section 7).
 *
 * Every header is UTF-8 text, so kcat and the Java tools print them as
 * they are.  One table lists each header with where its value lives in
 * drv_dlq_info_t; building and parsing both walk it, so the two cannot
 * drift apart.
 */
#include "dlq.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { H_STR, H_BOOL, H_INT, H_I32, H_I64 } htype_t;

#define F(field) offsetof(drv_dlq_info_t, field)
#define S(field) sizeof(((drv_dlq_info_t *)0)->field)

static const struct {
        const char *name;
        htype_t type;
        size_t off;
        size_t size; /* H_STR: buffer size */
} header_table[] = {
    {DRV_DLQ_H_ERROR_CLASS, H_STR, F(error_class), S(error_class)},
    {DRV_DLQ_H_ERROR_MESSAGE, H_STR, F(error_message), S(error_message)},
    {DRV_DLQ_H_ERROR_RETRYABLE, H_BOOL, F(retryable), 0},
    {DRV_DLQ_H_ERROR_STEP, H_STR, F(step), S(step)},
    {DRV_DLQ_H_ERROR_SQLSTATE, H_STR, F(sqlstate), S(sqlstate)},
    {DRV_DLQ_H_TASK_ID, H_STR, F(task_id), S(task_id)},
    {DRV_DLQ_H_DATASET, H_STR, F(dataset), S(dataset)},
    {DRV_DLQ_H_ATTEMPTS, H_INT, F(attempts), 0},
    {DRV_DLQ_H_FIRST_FAILURE_MS, H_I64, F(first_failure_ms), 0},
    {DRV_DLQ_H_LAST_FAILURE_MS, H_I64, F(last_failure_ms), 0},
    {DRV_DLQ_H_BACKOFF_MS, H_I64, F(backoff_ms), 0},
    {DRV_DLQ_H_RETRY_AFTER_MS, H_I64, F(retry_after_ms), 0},
    {DRV_DLQ_H_ORIGINAL_TOPIC, H_STR, F(original_topic), S(original_topic)},
    {DRV_DLQ_H_ORIGINAL_PARTITION, H_I32, F(original_partition), 0},
    {DRV_DLQ_H_ORIGINAL_OFFSET, H_I64, F(original_offset), 0},
    {DRV_DLQ_H_ORIGINAL_TIMESTAMP_MS, H_I64, F(original_timestamp_ms), 0},
    {DRV_DLQ_H_WORKER, H_STR, F(worker), S(worker)},
    {DRV_DLQ_H_CONSUMER_GROUP, H_STR, F(consumer_group), S(consumer_group)},
    {DRV_DLQ_H_REDRIVE_COUNT, H_INT, F(redrive_count), 0},
};

#define HEADER_CNT (sizeof(header_table) / sizeof(header_table[0]))

/* The text of header i of info into buf; returns buf. */
static const char *format_value(const drv_dlq_info_t *info, size_t i, char *buf,
                                size_t size) {
        const char *p = (const char *)info + header_table[i].off;

        switch (header_table[i].type) {
        case H_STR:
                /* the fields are fixed arrays: never read past them */
                snprintf(buf, size, "%.*s", (int)header_table[i].size, p);
                break;
        case H_BOOL:
                snprintf(buf, size, "%s", *(const int *)p ? "true" : "false");
                break;
        case H_INT:
                snprintf(buf, size, "%d", *(const int *)p);
                break;
        case H_I32:
                snprintf(buf, size, "%" PRId32, *(const int32_t *)p);
                break;
        case H_I64:
                snprintf(buf, size, "%" PRId64, *(const int64_t *)p);
                break;
        }
        return buf;
}

rd_kafka_headers_t *drv_dlq_headers_new(const drv_dlq_info_t *info) {
        rd_kafka_headers_t *hdrs;
        char buf[600];
        size_t i;

        if (!info)
                return NULL;
        hdrs = rd_kafka_headers_new(HEADER_CNT);
        if (!hdrs)
                return NULL;
        for (i = 0; i < HEADER_CNT; i++) {
                format_value(info, i, buf, sizeof(buf));
                if (rd_kafka_header_add(hdrs, header_table[i].name, -1, buf,
                                        (ssize_t)strlen(buf))) {
                        rd_kafka_headers_destroy(hdrs);
                        return NULL;
                }
        }
        return hdrs;
}

/* Parse a decimal integer that fills the whole of (v, len) and lies in
 * [min, max].  Returns 0 or -1. */
static int parse_int(const char *v, size_t len, int64_t min, int64_t max,
                     int64_t *out) {
        char tmp[32];
        char *end;
        long long n;

        if (len == 0 || len >= sizeof(tmp))
                return -1;
        memcpy(tmp, v, len);
        tmp[len] = '\0';
        if (!(tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9')))
                return -1;
        errno = 0;
        n = strtoll(tmp, &end, 10);
        if (errno || *end || n < min || n > max)
                return -1;
        *out = n;
        return 0;
}

/* Store header value (v, len) into field i of info. */
static drv_err_t store_value(drv_dlq_info_t *info, size_t i, const char *v,
                             size_t len, char *errstr, size_t errstr_size) {
        char *p = (char *)info + header_table[i].off;
        int64_t n = 0;
        int rc = 0;

        switch (header_table[i].type) {
        case H_STR:
                if (len >= header_table[i].size)
                        len = header_table[i].size - 1;
                memcpy(p, v, len);
                p[len] = '\0';
                return DRV_OK;
        case H_BOOL:
                if (len == 4 && !memcmp(v, "true", 4))
                        *(int *)p = 1;
                else if (len == 5 && !memcmp(v, "false", 5))
                        *(int *)p = 0;
                else
                        rc = -1;
                break;
        case H_INT:
                rc = parse_int(v, len, 0, INT_MAX, &n);
                if (!rc)
                        *(int *)p = (int)n;
                break;
        case H_I32:
                rc = parse_int(v, len, -1, INT32_MAX, &n);
                if (!rc)
                        *(int32_t *)p = (int32_t)n;
                break;
        case H_I64:
                rc = parse_int(v, len, -1, INT64_MAX, &n);
                if (!rc)
                        *(int64_t *)p = n;
                break;
        }
        if (rc)
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "malformed header \"%s\": \"%.*s\"",
                                   header_table[i].name,
                                   (int)(len > 40 ? 40 : len), v);
        return DRV_OK;
}

drv_err_t drv_dlq_headers_parse(const rd_kafka_headers_t *hdrs,
                                drv_dlq_info_t *info, char *errstr,
                                size_t errstr_size) {
        const void *v;
        size_t len, i;
        drv_err_t err;

        if (!info)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INTERNAL,
                                   "no dead-letter info to parse into");
        memset(info, 0, sizeof(*info));
        if (!hdrs)
                return DRV_OK;
        for (i = 0; i < HEADER_CNT; i++) {
                /* the last one wins, as in every Kafka header reader */
                if (rd_kafka_header_get_last(hdrs, header_table[i].name, &v,
                                             &len) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR)
                        continue;
                if (!v) /* a null value is a missing header */
                        continue;
                err = store_value(info, i, v, len, errstr, errstr_size);
                if (err)
                        return err;
        }
        return DRV_OK;
}

const char *drv_dlq_header_name(size_t i) {
        return i < HEADER_CNT ? header_table[i].name : NULL;
}

/* One non-negative int header; 0 when absent or malformed. */
static int carried_int(const rd_kafka_headers_t *hdrs, const char *name) {
        const void *v;
        size_t len;
        int64_t n;

        if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &len) || !v ||
            parse_int(v, len, 0, INT_MAX, &n))
                return 0;
        return (int)n;
}

void drv_dlq_task_carried(const rd_kafka_headers_t *hdrs, int *attemptsp,
                          int *redrive_countp) {
        if (attemptsp)
                *attemptsp = carried_int(hdrs, DRV_DLQ_H_ATTEMPTS);
        if (redrive_countp)
                *redrive_countp = carried_int(hdrs, DRV_DLQ_H_REDRIVE_COUNT);
}
