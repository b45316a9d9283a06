/*
 * drover - transforms/db.c: connections, drover's own tables, SQLSTATEs.
 *
 * Schema "drover" is created and upgraded by numbered migrations recorded
 * in drover.schema_version.  Every worker calls drv_db_migrate() at start;
 * a transaction-scoped advisory lock makes concurrent starts queue, and the
 * migrations themselves are idempotent, so a crash half-way is harmless.
 */
#include "transforms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Advisory lock key (two-int form) serialising schema migrations. */
#define DRV_DB_LOCK_CLASS   0x64727672 /* "drvr" */
#define DRV_DB_LOCK_MIGRATE 1

/*
 * ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------
 */

/* Copy a libpq message to errstr, dropping the trailing newline and any
 * "ERROR:  " prefix so it reads as one line. */
static void db_msg_line(const char *msg, char *out, size_t out_size) {
        size_t n;

        if (!msg)
                msg = "";
        if (!strncmp(msg, "ERROR:  ", 8))
                msg += 8;
        snprintf(out, out_size, "%s", msg);
        n = strcspn(out, "\n");
        out[n] = '\0';
}

drv_err_t drv_db_sqlstate_err(const char *state, int conn_ok) {
        if (!conn_ok)
                return DRV_ERR_DB_UNAVAILABLE;
        if (!state || !*state)
                return DRV_ERR_DB_UNAVAILABLE;
        /* 08P01 protocol_violation with the connection still up: the
         * server refused our own message (a bind that does not match its
         * statement), not a lost connection; it fails the same way every
         * time.  docs/decisions.md, "Connection loss and statement
         * errors". */
        if (!strcmp(state, "08P01"))
                return DRV_ERR_SQL;
        /* 08: connection exception; 57P01-03: admin/crash shutdown,
         * cannot connect now */
        if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") ||
            !strcmp(state, "57P02") || !strcmp(state, "57P03"))
                return DRV_ERR_DB_UNAVAILABLE;
        if (!strcmp(state, "55P03"))
                return DRV_ERR_LOCKED;
        return DRV_ERR_SQL;
}

drv_err_t drv_db_error(PGconn *conn, const PGresult *res, char sqlstate[6],
                       char *errstr, size_t errstr_size) {
        const char *state =
            res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorMessage(res) : NULL;
        int conn_ok = conn && PQstatus(conn) == CONNECTION_OK;
        char line[400];
        drv_err_t err;

        if (sqlstate)
                snprintf(sqlstate, 6, "%s", state ? state : "");
        if (!msg || !*msg)
                msg = conn ? PQerrorMessage(conn) : "no connection";
        db_msg_line(msg, line, sizeof(line));
        if (!*line)
                snprintf(line, sizeof(line), "no result");

        err = drv_db_sqlstate_err(state, conn_ok);
        switch (err) {
        case DRV_ERR_DB_UNAVAILABLE:
                return drv_err_set(errstr, errstr_size, err,
                                   "lost connection to postgresql: %s", line);
        case DRV_ERR_LOCKED:
                return drv_err_set(errstr, errstr_size, err,
                                   "lock not available: %s", line);
        default:
                return drv_err_set(errstr, errstr_size, err, "%s (sqlstate %s)",
                                   line, state);
        }
}

/*
 * ------------------------------------------------------------------------
 * Small helpers shared by db.c, run.c and ops*.c (declared in db_int.h)
 * ------------------------------------------------------------------------
 */
#include "db_int.h"

drv_err_t drv_db_exec(PGconn *conn, const char *sql, int nparams,
                      const char *const *params, PGresult **resp,
                      char sqlstate[6], char *errstr, size_t errstr_size) {
        PGresult *res;
        ExecStatusType st;
        drv_err_t err;

        if (resp)
                *resp = NULL;
        /* Extended protocol even without parameters: the server refuses
         * more than one statement per call, so nothing can be stacked. */
        res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
        st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
                if (sqlstate)
                        sqlstate[0] = '\0';
                if (resp)
                        *resp = res;
                else
                        PQclear(res);
                return DRV_OK;
        }
        err = drv_db_error(conn, res, sqlstate, errstr, errstr_size);
        PQclear(res);
        return err;
}

drv_err_t drv_db_cmd(PGconn *conn, const char *sql, char *errstr,
                     size_t errstr_size) {
        return drv_db_exec(conn, sql, 0, NULL, NULL, NULL, errstr, errstr_size);
}

void drv_db_rollback(PGconn *conn) {
        PGresult *res;

        if (PQstatus(conn) != CONNECTION_OK)
                return;
        if (PQtransactionStatus(conn) == PQTRANS_IDLE)
                return;
        res = PQexec(conn, "ROLLBACK");
        PQclear(res);
}

drv_err_t drv_db_begin(PGconn *conn, long lock_timeout_ms,
                       long statement_timeout_ms, char *errstr,
                       size_t errstr_size) {
        char sql[200];
        PGresult *res;
        drv_err_t err = DRV_OK;

        /* One round trip: BEGIN and the transaction's timeouts in one
         * simple-protocol query.  SET LOCAL takes no parameters; the text
         * is ours, the values integers we format ourselves. */
        snprintf(sql, sizeof(sql),
                 "BEGIN; SELECT set_config('lock_timeout', '%ld', true), "
                 "set_config('statement_timeout', '%ld', true)",
                 lock_timeout_ms, statement_timeout_ms);
        res = PQexec(conn, sql);
        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
                err = drv_db_error(conn, res, NULL, errstr, errstr_size);
                drv_db_rollback(conn);
        }
        PQclear(res);
        return err;
}

drv_err_t drv_db_commit(PGconn *conn, char *errstr, size_t errstr_size) {
        drv_err_t err = drv_db_cmd(conn, "COMMIT", errstr, errstr_size);

        if (err)
                drv_db_rollback(conn);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------------
 */
/* Server notices ("relation already exists, skipping") go to the debug
 * log, not to stderr. */
static void db_notice(void *arg, const char *msg) {
        char line[400];

        (void)arg;
        db_msg_line(msg, line, sizeof(line));
        drv_log(DRV_LOG_DEBUG, "postgresql: %s", line);
}

drv_err_t drv_db_connect(const char *url, PGconn **connp, char *errstr,
                         size_t errstr_size) {
        const char *keys[] = {"dbname", "connect_timeout", "application_name",
                              NULL};
        const char *vals[] = {url, "5", "drover", NULL};
        char line[400], safe[512], msg[1024];
        PGconn *conn;

        *connp = NULL;
        if (!url || !*url)
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "no database url (set DATABASE_URL)");
        /* expand_dbname=1: url is a URI or conninfo; the explicit
         * connect_timeout applies unless the url sets its own. */
        conn = PQconnectdbParams(keys, vals, 1);
        if (!conn)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory connecting to postgresql");
        if (PQstatus(conn) != CONNECTION_OK) {
                drv_redact_url(url, safe, sizeof(safe));
                /* libpq echoes pieces of a conninfo it cannot parse */
                drv_redact_text(PQerrorMessage(conn), url, msg, sizeof(msg));
                db_msg_line(msg, line, sizeof(line));
                PQfinish(conn);
                return drv_err_set(errstr, errstr_size, DRV_ERR_DB_UNAVAILABLE,
                                   "cannot connect to postgresql at %s: %s",
                                   safe, line);
        }
        PQsetNoticeProcessor(conn, db_notice, NULL);
        *connp = conn;
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Migrations of schema "drover".  Append only: never edit a shipped one.
 * The DDL of drover.task_runs lives here with the others; its statements
 * (DML) are in task_runs.c.
 * ------------------------------------------------------------------------
 */
static const char *const db_migrations[] = {
    /* 1: the tables of DESIGN.md section 8 */
    "CREATE TABLE IF NOT EXISTS drover.task_runs ("
    " task_id text PRIMARY KEY, entity_ref text, dataset text,"
    " status text NOT NULL, attempts int NOT NULL DEFAULT 0,"
    " started_at timestamptz, completed_at timestamptz,"
    " first_failure_at timestamptz, updated_at timestamptz NOT NULL"
    " DEFAULT now(), steps_total int, steps_done int,"
    " rows_done bigint NOT NULL DEFAULT 0, worker text, last_error jsonb,"
    " kafka_partition int, kafka_offset bigint);"
    "CREATE INDEX IF NOT EXISTS task_runs_dataset_idx"
    " ON drover.task_runs (dataset, updated_at);"
    "CREATE TABLE IF NOT EXISTS drover.step_ledger ("
    " task_id text NOT NULL, step int NOT NULL, op text NOT NULL,"
    " fingerprint text NOT NULL, plan_fingerprint text NOT NULL,"
    " dataset text NOT NULL, status text NOT NULL,"
    " checkpoint jsonb, rows bigint NOT NULL DEFAULT 0,"
    " started_at timestamptz NOT NULL DEFAULT now(),"
    " finished_at timestamptz, PRIMARY KEY (task_id, step));"
    "CREATE INDEX IF NOT EXISTS step_ledger_plan_idx"
    " ON drover.step_ledger (plan_fingerprint, step);"
    "CREATE TABLE IF NOT EXISTS drover.datasets ("
    " dataset text PRIMARY KEY, version int NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(), task_id text,"
    " plan_fingerprint text)",
    /* 2: the outcome a worker is about to commit to Kafka, recorded
     * before the Kafka transaction (transforms/task_runs.c), and the tasks
     * topic the row's partition/offset belong to */
    "ALTER TABLE drover.task_runs ADD COLUMN IF NOT EXISTS pending_status"
    " text, ADD COLUMN IF NOT EXISTS kafka_topic text;"
    "CREATE INDEX IF NOT EXISTS task_runs_pending_idx ON drover.task_runs"
    " (kafka_topic, kafka_partition, kafka_offset) WHERE pending_status"
    " IS NOT NULL AND status IN ('queued', 'running', 'retrying')",
    /* 3: the status of the last outcome that committed to Kafka, kept
     * when a later delivery (a replay) writes the row `running`: that
     * delivery may die before its commit, and the next one must still
     * know the task had committed (consumer/worker/worker_exec.c,
     * job_load_prior) */
    "ALTER TABLE drover.task_runs ADD COLUMN IF NOT EXISTS committed_status"
    " text",
    /* 4: one row per `drover repair --execute` / POST /api/repair: who,
     * when, why, and the dataset's version and unfinished ledger rows
     * before and after (transforms/repair.c) */
    "CREATE TABLE IF NOT EXISTS drover.repair_audit ("
    " id bigserial PRIMARY KEY, dataset text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now(), who text NOT NULL,"
    " reason text NOT NULL, before jsonb NOT NULL, after jsonb NOT NULL);"
    "CREATE INDEX IF NOT EXISTS repair_audit_dataset_idx"
    " ON drover.repair_audit (dataset, id)",
    /* 5: what `drover rollback` needs of a done step, recorded with its
     * ledger row when it ran (transforms/run.c: the plan's ref and
     * versions, the step, alter_type's old column type), so a rollback
     * does not depend on the catalog of today; a rolled-back step's row
     * stays, with status 'rolled_back' (transforms/rollback.c) */
    "ALTER TABLE drover.step_ledger ADD COLUMN IF NOT EXISTS spec jsonb;"
    "CREATE INDEX IF NOT EXISTS step_ledger_dataset_idx"
    " ON drover.step_ledger (dataset) WHERE status = 'done'",
    /* 6: why a `throttled` task waits (which check, its value and its
     * limit; transforms/throttle.c), NULL in every other status */
    "ALTER TABLE drover.task_runs ADD COLUMN IF NOT EXISTS throttle_reason"
    " text",
};

#define DB_MIGRATIONS_CNT (sizeof(db_migrations) / sizeof(db_migrations[0]))

static drv_err_t db_schema_version(PGconn *conn, int *versionp, char *errstr,
                                   size_t errstr_size) {
        PGresult *res;
        drv_err_t err;

        err = drv_db_exec(conn,
                          "SELECT coalesce(max(version), 0)"
                          " FROM drover.schema_version",
                          0, NULL, &res, NULL, errstr, errstr_size);
        if (err)
                return err;
        *versionp = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        return DRV_OK;
}

/* Apply migrations above the current version, inside the open txn. */
static drv_err_t db_apply_migrations(PGconn *conn, char *errstr,
                                     size_t errstr_size) {
        char ver[16];
        const char *params[1] = {ver};
        int version, i;
        drv_err_t err;

        err = db_schema_version(conn, &version, errstr, errstr_size);
        if (err)
                return err;
        for (i = version; i < (int)DB_MIGRATIONS_CNT; i++) {
                /* Several statements: simple protocol, our own text. */
                PGresult *res = PQexec(conn, db_migrations[i]);

                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        err =
                            drv_db_error(conn, res, NULL, errstr, errstr_size);
                        PQclear(res);
                        return err;
                }
                PQclear(res);
                snprintf(ver, sizeof(ver), "%d", i + 1);
                err = drv_db_exec(conn,
                                  "INSERT INTO drover.schema_version"
                                  " (version) VALUES ($1)",
                                  1, params, NULL, NULL, errstr, errstr_size);
                if (err)
                        return err;
        }
        return DRV_OK;
}

drv_err_t drv_db_migrate(PGconn *conn, char *errstr, size_t errstr_size) {
        char sql[200];
        drv_err_t err;

        err = drv_db_begin(conn, 30000, 120000, errstr, errstr_size);
        if (err)
                return err;
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d, %d)",
                 DRV_DB_LOCK_CLASS, DRV_DB_LOCK_MIGRATE);
        if ((err = drv_db_cmd(conn, sql, errstr, errstr_size)) ||
            (err = drv_db_cmd(conn, "CREATE SCHEMA IF NOT EXISTS drover",
                              errstr, errstr_size)) ||
            (err = drv_db_cmd(conn,
                              "CREATE TABLE IF NOT EXISTS"
                              " drover.schema_version (version int PRIMARY"
                              " KEY, applied_at timestamptz NOT NULL"
                              " DEFAULT now())",
                              errstr, errstr_size)) ||
            (err = db_apply_migrations(conn, errstr, errstr_size))) {
                drv_db_rollback(conn);
                return err;
        }
        return drv_db_commit(conn, errstr, errstr_size);
}
