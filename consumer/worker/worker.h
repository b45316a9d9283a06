/*
 * drover - consumer/worker/worker.h: the worker, as the command line sees
 * it (the public header of consumer/worker/, with config.h).
 *
 * One poll thread owns the consumer, the one transactional producer and
 * every transactional call (worker.c, worker_txn.c, worker_kafka.c).  N
 * executor threads each own one PGconn and run plans (worker_exec.c); a
 * finalizer thread writes the final task_runs status after the Kafka
 * commit.  They talk through one queue each way (drv_jobq_t).  The parts
 * are declared in worker_int.h, private to this folder.
 */
#ifndef DRV_WORKER_H
#define DRV_WORKER_H

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct drv_worker_s drv_worker_t;

/* Build everything the worker needs: schema store, catalog, database
 * (migrated), topics, producer (transactions initialised), consumer,
 * executors, admin server.  NULL and errstr on failure; *errp set to the
 * error (drv_err_exit_code gives the exit status). */
drv_worker_t *drv_worker_new(drv_config_t *conf, drv_err_t *errp, char *errstr,
                             size_t errstr_size);
/* Run until a signal (SIGTERM/SIGINT) or a fatal error.  Returns the exit
 * code; when it is not 0 and the worker has a one-line reason for the
 * operator, errstr holds it (else errstr is left as it was).  Takes no
 * ownership. */
int drv_worker_run(drv_worker_t *w, char *errstr, size_t errstr_size);
/* Free.  NULL is a no-op. */
void drv_worker_destroy(drv_worker_t *w);

#ifdef __cplusplus
}
#endif
#endif /* DRV_WORKER_H */
