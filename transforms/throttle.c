/*
 * drover - transforms/throttle.c: gh-ost-style throttling of batched
 * steps (docs/plans.md, "Throttling").
 *
 * A throttle is up to three checks, each off when unset:
 *
 *   max_replica_lag_ms      the greatest replay_lag of pg_stat_replication,
 *                           in ms, is above it (no replica: 0, never)
 *   max_active_connections  sessions of this database in state 'active',
 *                           other than the checking one, are more than it
 *   query                   a plan author's single SELECT returning one
 *                           row with one boolean column: true throttles
 *
 * The worker's config (`throttle:`) and the plan (spec.throttle) each give
 * one; the plan's value of a field wins over the worker's (merge below).
 * The runner (run.c) reads them between two batches, with no transaction
 * of its own open, in one short READ ONLY transaction with a statement
 * timeout, and waits while one of them says throttle.
 */
#include "plan_int.h"

#include "db_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The rules of each numeric field, one row each: the plan's and the
 * worker's settings are read through this table. */
static const struct {
        const char *name;
        size_t off;
        long max;
} throttle_nums[] = {
    {"max_replica_lag_ms", offsetof(drv_throttle_t, max_replica_lag_ms),
     DRV_THROTTLE_LAG_MAX},
    {"max_active_connections", offsetof(drv_throttle_t, max_active_connections),
     DRV_THROTTLE_CONN_MAX},
};

#define THROTTLE_NUMS_CNT (sizeof(throttle_nums) / sizeof(throttle_nums[0]))

int drv_throttle_query_valid(const char *query, char *why, size_t why_size) {
        size_t cnt = 0, i = 0;

        if (!query)
                query = "";
        while (isspace((unsigned char)query[i]))
                i++;
        if (strncasecmp(query + i, "select", 6) ||
            (query[i + 6] && !isspace((unsigned char)query[i + 6]))) {
                snprintf(why, why_size, "must be a single SELECT");
                return 0;
        }
        if (!drv_expr_scan(query, NULL, 0, &cnt, why, why_size))
                return 0;
        if (cnt) {
                snprintf(why, why_size, "cannot use task params ($param:)");
                return 0;
        }
        return 1;
}

int drv_throttle_is_set(const drv_throttle_t *t) {
        return t && (t->max_replica_lag_ms > 0 ||
                     t->max_active_connections > 0 || t->query);
}

void drv_throttle_merge(const drv_throttle_t *worker,
                        const drv_throttle_t *plan, drv_throttle_t *out) {
        static const drv_throttle_t none = {0, 0, NULL};
        size_t i;

        if (!worker)
                worker = &none;
        if (!plan)
                plan = &none;
        for (i = 0; i < THROTTLE_NUMS_CNT; i++) {
                size_t off = throttle_nums[i].off;
                long p = *(const long *)((const char *)plan + off);

                *(long *)((char *)out + off) =
                    p > 0 ? p : *(const long *)((const char *)worker + off);
        }
        out->query = plan->query ? plan->query : worker->query;
}

/*
 * ------------------------------------------------------------------------
 * spec.throttle of a plan
 * ------------------------------------------------------------------------
 */
/* The node a message points at: the value, or its mapping for null,
 * true and false (singletons without a line of their own). */
#define THROTTLE_NODE(v, obj) \
        (json_is_null(v) || json_is_boolean(v) ? (obj) : (v))
drv_err_t drv_throttle_from_json(const drv_vctx_t *vc, const json_t *spec,
                                 drv_throttle_t *out) {
        const json_t *obj = json_object_get(spec, "throttle"), *v;
        const char *key;
        char why[256];
        size_t i;

        if (out)
                memset(out, 0, sizeof(*out));
        if (!obj)
                return DRV_OK;
        if (!json_is_object(obj))
                return drv_vfail(vc, json_is_null(obj) ? spec : obj,
                                 "spec.throttle must be a mapping of "
                                 "max_replica_lag_ms, max_active_connections "
                                 "and query");
        json_object_foreach((json_t *)obj, key, v) {
                for (i = 0; i < THROTTLE_NUMS_CNT; i++)
                        if (!strcmp(key, throttle_nums[i].name))
                                break;
                if (i < THROTTLE_NUMS_CNT) {
                        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                            json_integer_value(v) > throttle_nums[i].max)
                                return drv_vfail(
                                    vc, THROTTLE_NODE(v, obj),
                                    "spec.throttle.%s must be an integer "
                                    "from 1 to %ld",
                                    key, throttle_nums[i].max);
                        if (out)
                                *(long *)((char *)out + throttle_nums[i].off) =
                                    (long)json_integer_value(v);
                } else if (!strcmp(key, "query")) {
                        if (!json_is_string(v))
                                return drv_vfail(vc, THROTTLE_NODE(v, obj),
                                                 "spec.throttle.query must be "
                                                 "a string");
                        if (!drv_throttle_query_valid(json_string_value(v), why,
                                                      sizeof(why)))
                                return drv_vfail(
                                    vc, v, "spec.throttle.query: %s", why);
                        if (out && !(out->query = strdup(json_string_value(v))))
                                return drv_err_set(vc->errstr, vc->errstr_size,
                                                   DRV_ERR_NOMEM,
                                                   "out of memory");
                } else
                        return drv_vfail(vc, v,
                                         "spec.throttle: unknown field "
                                         "\"%.64s\"",
                                         key);
        }
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * The checks
 * ------------------------------------------------------------------------
 */
#define THROTTLE_LAG_SQL                                                \
        "SELECT coalesce(max((extract(epoch FROM replay_lag) * 1000)::" \
        "bigint), 0) FROM pg_stat_replication"
#define THROTTLE_ACTIVE_SQL                                     \
        "SELECT count(*) FROM pg_stat_activity WHERE datname =" \
        " current_database() AND state = 'active' AND pid <>"   \
        " pg_backend_pid()"

/* One number of a built-in check against its limit. */
static drv_err_t throttle_number(PGconn *conn, const char *sql,
                                 const char *what, const char *unit,
                                 const char *field, long limit,
                                 drv_throttle_state_t *st, char sqlstate[6],
                                 char *errstr, size_t errstr_size) {
        PGresult *res;
        drv_err_t err;
        long long n;

        if (limit <= 0 || st->throttled)
                return DRV_OK;
        if ((err = drv_db_exec(conn, sql, 0, NULL, &res, sqlstate, errstr,
                               errstr_size)))
                return err;
        n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (n > limit) {
                st->throttled = 1;
                snprintf(st->kind, sizeof(st->kind), "%s", field);
                snprintf(st->reason, sizeof(st->reason), "%s %lld%s > %s %ld",
                         what, n, unit, field, limit);
        }
        return DRV_OK;
}

/* The plan author's query: one row, one boolean column. */
static drv_err_t throttle_query(PGconn *conn, const char *query,
                                drv_throttle_state_t *st, char sqlstate[6],
                                char *errstr, size_t errstr_size) {
        PGresult *res;
        drv_err_t err;
        char msg[400];

        if (!query || st->throttled)
                return DRV_OK;
        if ((err = drv_db_exec(conn, query, 0, NULL, &res, sqlstate, msg,
                               sizeof(msg))))
                return drv_err_set(errstr, errstr_size, err,
                                   "throttle query failed: %s", msg);
        /* 16: bool's type oid */
        if (PQntuples(res) != 1 || PQnfields(res) != 1 ||
            PQftype(res, 0) != 16 || PQgetisnull(res, 0, 0)) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_SQL,
                                  "throttle query must return one row with "
                                  "one non-null boolean column (got %d "
                                  "rows, %d columns)",
                                  PQntuples(res), PQnfields(res));
                PQclear(res);
                return err;
        }
        if (!strcmp(PQgetvalue(res, 0, 0), "t")) {
                st->throttled = 1;
                snprintf(st->kind, sizeof(st->kind), "query");
                snprintf(st->reason, sizeof(st->reason),
                         "throttle query returned true: %.200s", query);
        }
        PQclear(res);
        return DRV_OK;
}

drv_err_t drv_throttle_check(PGconn *conn, const drv_throttle_t *t,
                             drv_throttle_state_t *st, char sqlstate[6],
                             char *errstr, size_t errstr_size) {
        drv_err_t err;

        memset(st, 0, sizeof(*st));
        sqlstate[0] = '\0';
        if (!drv_throttle_is_set(t))
                return DRV_OK;
        if ((err = drv_db_begin(conn, DRV_THROTTLE_LOCK_MS,
                                DRV_THROTTLE_STMT_MS, errstr, errstr_size)) ||
            (err = drv_db_cmd(conn, "SET TRANSACTION READ ONLY", errstr,
                              errstr_size)) ||
            (err = throttle_number(conn, THROTTLE_LAG_SQL, "replica lag", " ms",
                                   "max_replica_lag_ms", t->max_replica_lag_ms,
                                   st, sqlstate, errstr, errstr_size)) ||
            (err = throttle_number(
                 conn, THROTTLE_ACTIVE_SQL, "active connections", "",
                 "max_active_connections", t->max_active_connections, st,
                 sqlstate, errstr, errstr_size)) ||
            (err = throttle_query(conn, t->query, st, sqlstate, errstr,
                                  errstr_size)))
                st->throttled = 0;
        /* read only: nothing to commit, and nothing stays open while the
         * runner waits */
        drv_db_rollback(conn);
        return err;
}
