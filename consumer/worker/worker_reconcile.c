/*
 * drover - consumer/worker/worker_reconcile.c: no task_runs row stays `running`
 * after its outcome was committed.
 *
 * DESIGN section 6 step 5: a task is final in task_runs only after its
 * Kafka transaction committed.  A worker killed between that commit and
 * the final write would leave the row `running` forever.  So, before the
 * transaction, the executor records the would-be final status as
 * task_runs.pending_status (with the row's topic, partition, offset).
 * Offsets advance only in the outcome transaction, so when a partition
 * is assigned, a row of it with a pending status whose offset is below
 * the group's committed offset did commit: its status becomes the
 * pending one.  Rows at or after the committed offset are redelivered
 * and rewritten.  The statements are drv_task_run_set_pending and
 * drv_task_runs_reconcile (transforms/task_runs.c); this file finds the
 * committed offsets.
 */
#include "worker_int.h"

/* Poll thread: read the committed offsets of the partitions assigned
 * since the last call and hand them to the finalizer (which owns a
 * PGconn).  A partition without a committed offset has nothing to
 * reconcile.  Failures are logged; the partitions are tried again on the
 * next assignment. */
void drv_worker_reconcile(drv_worker_t *w) {
        rd_kafka_topic_partition_list_t *list = NULL;
        rd_kafka_resp_err_t err;
        int i;

        for (i = 0; i < w->parts_cnt; i++) {
                if (!w->parts[i].reconcile)
                        continue;
                w->parts[i].reconcile = 0;
                if (!w->parts[i].assigned)
                        continue;
                if (!list)
                        list = rd_kafka_topic_partition_list_new(8);
                rd_kafka_topic_partition_list_add(list, w->conf->topic, i);
        }
        if (!list)
                return;
        if ((err = rd_kafka_committed(w->rk, list, 5000))) {
                drv_log(DRV_LOG_WARN,
                        "cannot read committed offsets to reconcile "
                        "task_runs: %s",
                        rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(list);
                return;
        }
        drv_pool_reconcile(w->pool, list);
}
