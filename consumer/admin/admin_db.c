/*
 * drover - consumer/admin/admin_db.c: the admin server's database access,
 * every step bounded by a deadline (see admin_db.h).
 */
#include "admin_db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct drv_admin_db_s {
        char *url;
        drv_admin_watch_t *aw;
        int deadline_ms;
        pthread_mutex_t lock; /* guards conn */
        PGconn *conn;         /* lazily (re)connected */
};

drv_admin_db_t *drv_admin_db_new(const char *url, drv_admin_watch_t *aw,
                                 int deadline_ms) {
        drv_admin_db_t *db = calloc(1, sizeof(*db));

        if (!db || !(db->url = strdup(url))) {
                free(db);
                return NULL;
        }
        db->aw = aw;
        db->deadline_ms = deadline_ms;
        pthread_mutex_init(&db->lock, NULL);
        return db;
}

void drv_admin_db_destroy(drv_admin_db_t *db) {
        if (!db)
                return;
        PQfinish(db->conn);
        pthread_mutex_destroy(&db->lock);
        free(db->url);
        free(db);
}

static void db_notice(void *arg, const char *msg) {
        (void)arg;
        (void)msg; /* libpq would print it on stderr, among the JSON logs */
}

/* Milliseconds left until deadline (drv_mono_ms() clock), at least 0. */
static int db_left(int64_t deadline) {
        int64_t left = deadline - drv_mono_ms();

        return left > 0 ? (int)left : 0;
}

/* The connection attempt of libpq's non-blocking API, polled until it
 * succeeds, fails or the deadline passes (libpq's own connect_timeout is
 * at least 2 s per address and does not cover the startup exchange). */
static drv_err_t db_connect(drv_admin_db_t *db, int64_t deadline, char *errstr,
                            size_t errstr_size) {
        const char *keys[] = {"dbname", "application_name", NULL};
        const char *vals[] = {db->url, "drover-admin", NULL};
        PostgresPollingStatusType st = PGRES_POLLING_WRITING;
        struct pollfd pfd;
        char safe[512];
        const char *msg;
        drv_err_t err;

        drv_redact_url(db->url, safe, sizeof(safe));
        if (!(db->conn = PQconnectStartParams(keys, vals, 1)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory connecting to postgresql");
        while (PQstatus(db->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
               st != PGRES_POLLING_FAILED && db_left(deadline)) {
                pfd.fd = PQsocket(db->conn);
                pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
                if (poll(&pfd, 1, db_left(deadline)) > 0)
                        st = PQconnectPoll(db->conn);
        }
        if (st == PGRES_POLLING_OK) {
                PQsetNoticeProcessor(db->conn, db_notice, NULL);
                return DRV_OK;
        }
        msg = PQerrorMessage(db->conn);
        if (st != PGRES_POLLING_FAILED && PQstatus(db->conn) != CONNECTION_BAD)
                err = drv_err_set(errstr, errstr_size, DRV_ERR_TIMEOUT,
                                  "cannot connect to postgresql at %s: no "
                                  "answer within %d ms",
                                  safe, db->deadline_ms);
        else
                err = drv_err_set(errstr, errstr_size, DRV_ERR_DB_UNAVAILABLE,
                                  "cannot connect to postgresql at %s: %.*s",
                                  safe, (int)strcspn(msg, "\n"), msg);
        PQfinish(db->conn);
        db->conn = NULL;
        return err;
}

/* Start watching the connection's socket until deadline. */
static drv_admin_watch_entry_t *db_watch(drv_admin_db_t *db, int64_t deadline) {
        return drv_admin_watch_fd(db->aw, PQsocket(db->conn), deadline);
}

/* Stop watching; when the watchdog shut the socket down the query's
 * outcome is replaced by a timeout and the connection is dropped. */
static drv_err_t db_unwatch(drv_admin_db_t *db, drv_admin_watch_entry_t *e,
                            drv_err_t err, char *errstr, size_t errstr_size) {
        if (!drv_admin_watch_remove(db->aw, e))
                return err;
        PQfinish(db->conn);
        db->conn = NULL;
        return drv_err_set(errstr, errstr_size, DRV_ERR_TIMEOUT,
                           "postgresql did not answer within %d ms",
                           db->deadline_ms);
}

/* Take the lock and a usable connection by deadline; on failure the lock
 * is not held. */
static drv_err_t db_begin(drv_admin_db_t *db, int64_t deadline, char *errstr,
                          size_t errstr_size) {
        char stmt[64];
        struct timespec ts;
        drv_admin_watch_entry_t *e;
        drv_err_t err = DRV_OK;
        int left = db_left(deadline);

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        /* the holder is bounded by its own deadline: waiting longer than
         * ours means the database is stuck, not that we are next */
        if (pthread_mutex_timedlock(&db->lock, &ts))
                return drv_err_set(errstr, errstr_size, DRV_ERR_LOCKED,
                                   "database busy (another request is "
                                   "waiting for postgresql)");
        if (db->conn && PQstatus(db->conn) != CONNECTION_OK) {
                PQfinish(db->conn);
                db->conn = NULL;
        }
        if (!db->conn &&
            !(err = db_connect(db, deadline, errstr, errstr_size))) {
                /* the server gives up on a query no later than we do */
                snprintf(stmt, sizeof(stmt), "SET statement_timeout = %d",
                         db->deadline_ms);
                e = db_watch(db, deadline);
                err = drv_db_exec(db->conn, stmt, 0, NULL, NULL, NULL, errstr,
                                  errstr_size);
                err = db_unwatch(db, e, err, errstr, errstr_size);
        }
        if (!err && !db_left(deadline))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_TIMEOUT,
                                  "postgresql did not answer within %d ms",
                                  db->deadline_ms);
        if (err)
                pthread_mutex_unlock(&db->lock);
        return err;
}

int drv_admin_db_ping(drv_admin_db_t *db) {
        int64_t deadline = drv_mono_ms() + db->deadline_ms;
        drv_admin_watch_entry_t *e;
        char errstr[512];
        PGresult *res;
        drv_err_t err;

        if (db_begin(db, deadline, errstr, sizeof(errstr)))
                return 0;
        e = db_watch(db, deadline);
        res = PQexec(db->conn, "SELECT 1");
        err = PQresultStatus(res) == PGRES_TUPLES_OK ? DRV_OK : DRV_ERR_SQL;
        PQclear(res);
        err = db_unwatch(db, e, err, errstr, sizeof(errstr));
        pthread_mutex_unlock(&db->lock);
        return !err;
}

/* One call of the admin server: fn on the shared connection, the lock,
 * connection and call all within the deadline. */
drv_err_t drv_admin_db_call(drv_admin_db_t *db, drv_admin_db_fn_t *fn,
                            void *arg, char *errstr, size_t errstr_size) {
        int64_t deadline = drv_mono_ms() + db->deadline_ms;
        drv_admin_watch_entry_t *e;
        drv_err_t err;

        if ((err = db_begin(db, deadline, errstr, errstr_size)))
                return err;
        e = db_watch(db, deadline);
        err = fn(db->conn, arg, errstr, errstr_size);
        err = db_unwatch(db, e, err, errstr, errstr_size);
        pthread_mutex_unlock(&db->lock);
        return err;
}

typedef struct db_query_s {
        const char *dataset, *status, *task_id;
        int limit;
        char **jsonp;
        int *existsp;
} db_query_t;

static drv_err_t db_migrations(PGconn *conn, void *arg, char *errstr,
                               size_t errstr_size) {
        const db_query_t *q = arg;

        return drv_task_runs_json(conn, q->dataset, q->status, q->limit,
                                  q->jsonp, errstr, errstr_size);
}

static drv_err_t db_task_exists(PGconn *conn, void *arg, char *errstr,
                                size_t errstr_size) {
        const db_query_t *q = arg;

        return drv_task_run_exists(conn, q->task_id, q->existsp, errstr,
                                   errstr_size);
}

drv_err_t drv_admin_db_migrations(drv_admin_db_t *db, const char *dataset,
                                  const char *status, int limit, char **jsonp,
                                  char *errstr, size_t errstr_size) {
        db_query_t q = {.dataset = dataset,
                        .status = status,
                        .limit = limit,
                        .jsonp = jsonp};
        drv_err_t err;

        *jsonp = NULL;
        if ((err = drv_admin_db_call(db, db_migrations, &q, errstr,
                                     errstr_size))) {
                free(*jsonp);
                *jsonp = NULL;
        }
        return err;
}

drv_err_t drv_admin_db_task_exists(drv_admin_db_t *db, const char *task_id,
                                   int *existsp, char *errstr,
                                   size_t errstr_size) {
        db_query_t q = {.task_id = task_id, .existsp = existsp};

        *existsp = 0;
        return drv_admin_db_call(db, db_task_exists, &q, errstr, errstr_size);
}
