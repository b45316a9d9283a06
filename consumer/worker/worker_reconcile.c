/*
 * drover - consumer/worker/worker_reconcile.c: where a partition's work
 * starts, and no task_runs row stays `running` after its outcome was
 * committed.
 *
 * A newly assigned (or rewound) partition is STARTING: nothing of it runs
 * until its committed offset C and that commit's metadata (the final
 * offsets above C, partition.h) are read here; records fetched meanwhile
 * wait in its window.  Then drv_pt_start() drops what is below C and
 * marks COMMITTED what the metadata names, so a task an earlier owner
 * finished gets no second run and no second status event.
 *
 * DESIGN section 6 step 5: a task is final in task_runs only after its
 * Kafka transaction committed.  A worker killed between that commit and
 * the final write would leave the row `running` forever.  So, before the
 * transaction, the executor records the would-be final status as
 * task_runs.pending_status (with the row's topic, partition, offset).
 * Offsets and metadata advance only in the outcome transaction, so a row
 * with a pending status whose offset is below C or named by the metadata
 * did commit: the finalizer (drv_pool_reconcile) sets its status to the
 * pending one.  Other rows are redelivered and rewritten.
 */
#include "worker_int.h"

#include <stdlib.h>
#include <string.h>

#define START_READ_MS  5000 /* one read of committed offsets */
#define START_RETRY_MS 1000 /* unreadable: read again after */

void drv_worker_start_tick(drv_worker_t *w) {
        rd_kafka_topic_partition_list_t *list = NULL;
        rd_kafka_resp_err_t err;
        int64_t now = drv_mono_ms();
        int i;

        for (i = 0; i < w->parts_cnt; i++) {
                drv_part_t *p = &w->parts[i];
                if (p->state != DRV_PS_STARTING || p->start_due > now)
                        continue;
                if (!list)
                        list = rd_kafka_topic_partition_list_new(8);
                /* no metadata in the list: librdkafka 2.0.2 keeps what is
                 * there when the answer is empty (docs/decisions.md) */
                rd_kafka_topic_partition_list_add(list, w->conf->topic, i);
        }
        if (!list)
                return;
        err = rd_kafka_committed(w->rk, list, START_READ_MS);
        for (i = 0; i < list->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &list->elems[i];
                drv_part_t *p = drv_worker_part(w, tp->partition);
                rd_kafka_resp_err_t perr = err ? err : tp->err;
                drv_pt_range_t *r = NULL;
                size_t rcnt = 0;

                if (perr) {
                        drv_worker_log_unreadable(tp->partition, perr,
                                                  &p->start_logged);
                        p->start_due = now + START_RETRY_MS;
                        tp->offset = -1; /* nothing to reconcile */
                        continue;
                }
                drv_pt_meta_decode(tp->metadata, tp->metadata_size, tp->offset,
                                   &r, &rcnt);
                if (rcnt > 0)
                        drv_log(DRV_LOG_INFO,
                                "partition %d: committed offset %lld, %zu "
                                "range(s) of final tasks above it",
                                (int)tp->partition, (long long)tp->offset,
                                rcnt);
                drv_pt_start(p, tp->offset, r, rcnt);
                free(r);
                drv_worker_sync_fetch(w, tp->partition);
        }
        drv_pool_reconcile(w->pool, list);
}
