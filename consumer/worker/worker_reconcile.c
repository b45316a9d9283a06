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
 * and rewritten.
 */
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One task_runs update through drv_db_exec; DRV_OK, or the error (errstr
 * set) and *rowsp the rows it changed when rowsp is not NULL. */
static drv_err_t rc_exec(PGconn *conn, const char *sql, int n,
                         const char *const *params, long *rowsp, char *errstr,
                         size_t errstr_size) {
        PGresult *res;
        char msg[400];
        drv_err_t err;

        err = drv_db_exec(conn, sql, n, params, &res, NULL, msg, sizeof(msg));
        if (err)
                return drv_err_set(errstr, errstr_size, err,
                                   "task_runs update failed: %s", msg);
        if (rowsp)
                *rowsp = strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        return DRV_OK;
}

drv_err_t drv_task_run_set_pending(PGconn *conn, const char *task_id,
                                   const char *pending, const char *topic,
                                   int32_t partition, int64_t offset,
                                   long *rowsp, char *errstr,
                                   size_t errstr_size) {
        char part[16], off[24];
        const char *params[5] = {task_id, pending, topic, part, off};

        snprintf(part, sizeof(part), "%d", (int)partition);
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        return rc_exec(conn,
                       "UPDATE drover.task_runs SET pending_status = $2,"
                       " kafka_topic = $3, kafka_partition = $4::int,"
                       " kafka_offset = $5::bigint, updated_at = now()"
                       " WHERE task_id = $1",
                       5, params, rowsp, errstr, errstr_size);
}

drv_err_t drv_task_runs_reconcile(PGconn *conn, const char *topic,
                                  int32_t partition, int64_t committed,
                                  long *rowsp, char *errstr,
                                  size_t errstr_size) {
        char part[16], off[24];
        const char *params[3] = {topic, part, off};

        snprintf(part, sizeof(part), "%d", (int)partition);
        snprintf(off, sizeof(off), "%lld", (long long)committed);
        return rc_exec(conn,
                       "UPDATE drover.task_runs SET status = pending_status,"
                       " committed_status = pending_status,"
                       " steps_done = CASE WHEN pending_status IN ('done',"
                       " 'skipped') THEN coalesce(steps_total, steps_done)"
                       " ELSE steps_done END,"
                       " completed_at = now(), updated_at = now()"
                       " WHERE kafka_topic = $1 AND kafka_partition = $2::int"
                       " AND kafka_offset < $3::bigint AND pending_status IS"
                       " NOT NULL AND status IN ('queued', 'running',"
                       " 'retrying')",
                       3, params, rowsp, errstr, errstr_size);
}

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
