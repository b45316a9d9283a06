/*
 * drover - consumer/worker/worker_lag.c: drover_consumer_lag for the partitions
 * the worker has paused.
 *
 * librdkafka's statistics carry each partition's end offset (ls_offset
 * under read_committed) from fetch responses; a paused partition is not
 * fetched, so its end offset freezes and its lag with it.  For those
 * partitions the poll thread asks the leader itself
 * (rd_kafka_query_watermark_offsets: a ListOffsets request carrying the
 * consumer's isolation level, so "high" is the last stable offset), one
 * partition per call and each at most once per statistics interval, with
 * a short timeout, so the poll loop never waits long.  Poll thread only.
 */
#include "worker_int.h"

#include <stdlib.h>

#define LAG_QUERY_TIMEOUT_MS 100
#define LAG_SPACING_MS       50 /* between two queries of any partitions */

void drv_worker_lag_set(drv_worker_t *w, int32_t partition, int64_t end,
                        int64_t lo) {
        drv_part_t *p = drv_worker_part(w, partition);
        int64_t committed;

        if (!p || end < 0)
                return;
        committed = p->committed >= 0         ? p->committed
                    : p->stats_committed >= 0 ? p->stats_committed
                                              : lo;
        if (committed >= 0)
                drv_metrics_set_lag(w->conf->topic, partition,
                                    end > committed ? end - committed : 0);
}

/* statistics.interval.ms of the consumer; 0 when statistics are off. */
static int stats_interval_ms(drv_worker_t *w) {
        char buf[32];
        size_t size = sizeof(buf);

        if (rd_kafka_conf_get(rd_kafka_conf(w->rk), "statistics.interval.ms",
                              buf, &size) != RD_KAFKA_CONF_OK)
                return 0;
        return atoi(buf);
}

/* The next paused partition due for a query, from the cursor on; -1. */
static int next_due(drv_worker_t *w, int64_t now) {
        int n, i;

        for (n = 0; n < w->parts_cnt; n++) {
                i = (w->lag_cursor + n) % w->parts_cnt;
                if (drv_worker_owned(&w->parts[i]) && w->parts[i].paused &&
                    now - w->parts[i].lag_query_ms >= w->lag_interval_ms)
                        return i;
        }
        return -1;
}

void drv_worker_lag_tick(drv_worker_t *w) {
        int64_t now = drv_mono_ms(), lo = -1, hi = -1;
        rd_kafka_resp_err_t err;
        int i;

        if (now < w->lag_next_ms || !w->rk || w->parts_cnt <= 0)
                return;
        if (!w->lag_interval_ms &&
            (w->lag_interval_ms = stats_interval_ms(w)) <= 0) {
                w->lag_interval_ms = -1; /* statistics off: no lag metric */
                w->lag_next_ms = INT64_MAX;
                return;
        }
        w->lag_next_ms = now + LAG_SPACING_MS;
        if ((i = next_due(w, now)) < 0)
                return;
        w->lag_cursor = (i + 1) % w->parts_cnt;
        w->parts[i].lag_query_ms = now;
        err = rd_kafka_query_watermark_offsets(w->rk, w->conf->topic, i, &lo,
                                               &hi, LAG_QUERY_TIMEOUT_MS);
        if (err) {
                drv_log(DRV_LOG_DEBUG, "watermarks of paused partition %d: %s",
                        i, rd_kafka_err2str(err));
                return;
        }
        drv_worker_lag_set(w, i, hi, lo);
}
