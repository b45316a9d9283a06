/*
 * drover - consumer/admin/admin_db.h: the admin server's database access
 * (private to consumer/admin/).
 *
 * One connection, shared under a lock, reconnected on loss.  Every call is
 * bounded by a deadline: waiting for the lock, connecting and the query
 * itself.  When PostgreSQL does not answer in time the connection is
 * dropped (the watchdog shuts its socket down; no cancel request, which
 * would itself wait on the frozen server) and the call fails, so a request
 * thread never hangs on the database.
 */
#ifndef DRV_ADMIN_DB_H
#define DRV_ADMIN_DB_H

#include "admin_watch.h"

typedef struct drv_admin_db_s drv_admin_db_t;

/* For `url` (copied; never logged unredacted); `aw` is borrowed and must
 * outlive it.  Every call gets `deadline_ms` milliseconds.  Does not
 * connect yet.  NULL on out of memory. */
drv_admin_db_t *drv_admin_db_new(const char *url, drv_admin_watch_t *aw,
                                 int deadline_ms);
/* Disconnect and free.  NULL is a no-op. */
void drv_admin_db_destroy(drv_admin_db_t *db);

/* 1 if the database answers SELECT 1 within the deadline. */
int drv_admin_db_ping(drv_admin_db_t *db);

/* drv_task_runs_json() within the deadline: the migrations as a JSON
 * array text (malloc'ed) in *jsonp.  DRV_ERR_LOCKED ("database busy")
 * when another request holds the connection past the deadline,
 * DRV_ERR_TIMEOUT when PostgreSQL does not answer in time,
 * DRV_ERR_DB_UNAVAILABLE when it cannot be reached. */
drv_err_t drv_admin_db_migrations(drv_admin_db_t *db, const char *dataset,
                                  const char *status, int limit, char **jsonp,
                                  char *errstr, size_t errstr_size);

/* drv_task_run_exists() within the deadline: whether a caller's task_id
 * is already in drover.task_runs.  DRV_ERR_TIMEOUT / _LOCKED /
 * _DB_UNAVAILABLE like drv_admin_db_migrations. */
drv_err_t drv_admin_db_task_exists(drv_admin_db_t *db, const char *task_id,
                                   int *existsp, char *errstr,
                                   size_t errstr_size);

/* A call on the database: fn(conn, arg, ...) runs on the shared
 * connection, which has no transaction open (fn may open and must end
 * one).  fn's error, or DRV_ERR_TIMEOUT / _LOCKED / _DB_UNAVAILABLE like
 * drv_admin_db_migrations; a timed-out fn's connection is dropped, so
 * PostgreSQL rolls back what it left open. */
typedef drv_err_t(drv_admin_db_fn_t)(PGconn *conn, void *arg, char *errstr,
                                     size_t errstr_size);
drv_err_t drv_admin_db_call(drv_admin_db_t *db, drv_admin_db_fn_t *fn,
                            void *arg, char *errstr, size_t errstr_size);

#endif /* DRV_ADMIN_DB_H */
