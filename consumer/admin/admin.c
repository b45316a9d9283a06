/*
 * drover - consumer/admin/admin.c: the admin HTTP server (libmicrohttpd).
 *
 * One thread per connection (bounded by a connection limit), so neither a
 * slow client nor a slow query ever blocks the worker's poll thread or
 * the other requests.  Requests are bounded: header memory, body size,
 * a deadline for the whole request and an idle timeout; slow clients
 * cannot take every slot (admin_watch.c) and a hung database costs a
 * request 1.5 s, not a thread (admin_db.c).  Routes (admin_req.c):
 *   GET  /metrics          Prometheus text (metrics.c)
 *   GET  /healthz          the process is alive
 *   GET  /readyz           assigned partitions and database reachable
 *   GET  /api/migrations   drover.task_runs as JSON (?dataset=&status=)
 *   POST /api/tasks        submit a task (bearer token)
 *   GET  /api/repair       a dataset's repair dry run (?dataset=)
 *   POST /api/repair       repair a dataset (bearer token), audited
 *   GET  /api/repair/audit the repair audit rows (?dataset=&limit=)
 *   POST /api/rollback     a rollback's dry run, or its task (bearer token)
 *   GET  /                 the status page (embedded consumer/admin/web/)
 */
#include "admin_db.h"
#include "admin_int.h"
#include "admin_kafka.h"
#include "admin_watch.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Slow clients (docs/decisions.md, "Admin server: slow clients and a
 * hung database"): a thread per connection, at most ADMIN_CONN_LIMIT of
 * them and ADMIN_PER_IP_LIMIT per client address; at most
 * ADMIN_READING_MAX still sending their request (one more closes the
 * oldest), each given ADMIN_READ_TIMEOUT_MS for a complete request
 * however it trickles; ADMIN_CONN_TIMEOUT_S of idleness otherwise. */
#define ADMIN_CONN_LIMIT      128
#define ADMIN_PER_IP_LIMIT    64
#define ADMIN_READING_MAX     32
#define ADMIN_READ_TIMEOUT_MS 5000
#define ADMIN_CONN_TIMEOUT_S  10
/* Lock wait, connect and query of /readyz and /api/migrations. */
#define ADMIN_DB_DEADLINE_MS     1500
#define ADMIN_HEADER_MEMORY      (32 * 1024)
#define MIGRATIONS_LIMIT_DEFAULT 200
#define MIGRATIONS_LIMIT_MAX     1000

struct drv_admin_s {
        struct MHD_Daemon *mhd;
        int port;
        char *token;
        char token_label[15]; /* requested_by of its submissions */
        char *topic;
        drv_catalog_t *catalog;          /* NULL: dataset required */
        drv_admin_kafka_t *kafka;        /* NULL: no brokers configured */
        drv_schema_store_t *store;       /* encoder for submissions */
        drv_schema_store_t *owned_store; /* when we created it */
        drv_admin_watch_t *watch;        /* slow clients, hung queries */
        drv_admin_db_t *db;              /* NULL: no database configured */
};

/* Per-request state, freed in request_completed(). */
typedef struct request_s {
        drv_admin_route_t route;
        char *body;
        size_t len;
        int too_large;
        int answered; /* a response was queued before the body */
} request_t;

/*
 * ------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------
 */
static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status,
                                const char *type, void *buf, size_t len,
                                enum MHD_ResponseMemoryMode mode) {
        struct MHD_Response *res;
        enum MHD_Result ret;

        res = MHD_create_response_from_buffer(len, buf, mode);
        if (!res)
                return MHD_NO;
        MHD_add_response_header(res, "Content-Type", type);
        MHD_add_response_header(res, "Cache-Control", "no-store");
        MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
        if (status == MHD_HTTP_UNAUTHORIZED)
                MHD_add_response_header(res, "WWW-Authenticate",
                                        "Bearer realm=\"drover\"");
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(res, "Allow", "GET, HEAD, POST");
        ret = MHD_queue_response(c, status, res);
        MHD_destroy_response(res);
        return ret;
}

/* Send `obj` (reference stolen) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status,
                                 json_t *obj) {
        char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

        json_decref(obj);
        if (!text)
                return MHD_NO;
        return send_buf(c, status, "application/json", text, strlen(text),
                        MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *msg) {
        return send_json(c, status, json_pack("{ss}", "error", msg));
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status,
                                 const char *text) {
        return send_buf(c, status, "text/plain; charset=utf-8", (void *)text,
                        strlen(text), MHD_RESPMEM_PERSISTENT);
}

/*
 * ------------------------------------------------------------------------
 * Handlers
 * ------------------------------------------------------------------------
 */
static enum MHD_Result handle_metrics(struct MHD_Connection *c) {
        char *text = drv_metrics_render();

        if (!text)
                return send_text(c, 500, "out of memory\n");
        return send_buf(c, MHD_HTTP_OK, "text/plain; version=0.0.4", text,
                        strlen(text), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result handle_readyz(drv_admin_t *admin,
                                     struct MHD_Connection *c) {
        int assigned, db_ok, live;

        drv_admin_get_ready(&assigned, &db_ok);
        live = admin->db ? drv_admin_db_ping(admin->db) : db_ok;
        db_ok = db_ok && live;
        return send_json(
            c, assigned && db_ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
            json_pack("{sbsbsb}", "ready", assigned && db_ok, "assignment",
                      assigned, "database", db_ok));
}

/* A query argument, validated; *outp NULL when absent.  0 or -1. */
static int query_arg(struct MHD_Connection *c, const char *key,
                     const char **outp) {
        const char *v =
            MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
        *outp = NULL;
        if (!v || !*v)
                return 0;
        if (!drv_admin_text_valid(v, strlen(v)))
                return -1;
        *outp = v;
        return 0;
}

static enum MHD_Result handle_migrations(drv_admin_t *admin,
                                         struct MHD_Connection *c) {
        const char *dataset, *status, *limit_s;
        char errstr[512], *rows, *body;
        int limit = MIGRATIONS_LIMIT_DEFAULT, n;
        size_t len;

        if (query_arg(c, "dataset", &dataset) ||
            query_arg(c, "status", &status) || query_arg(c, "limit", &limit_s))
                return send_error(c, MHD_HTTP_BAD_REQUEST,
                                  "query argument too long or not text");
        if (limit_s &&
            (sscanf(limit_s, "%d%n", &limit, &n) != 1 || limit_s[n] ||
             limit < 1 || limit > MIGRATIONS_LIMIT_MAX))
                return send_error(c, MHD_HTTP_BAD_REQUEST,
                                  "limit must be an integer from 1 to 1000");
        if (!admin->db)
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "no database configured");
        if (drv_admin_db_migrations(admin->db, dataset, status, limit, &rows,
                                    errstr, sizeof(errstr)))
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, errstr);
        len = strlen(rows) + 32;
        if (!(body = malloc(len))) {
                free(rows);
                return MHD_NO;
        }
        snprintf(body, len, "{\"migrations\":%s}", rows);
        free(rows);
        return send_buf(c, MHD_HTTP_OK, "application/json", body, strlen(body),
                        MHD_RESPMEM_MUST_FREE);
}

/*
 * ------------------------------------------------------------------------
 * Repair (transforms/repair.c): GET the dry run, POST the repair, GET the
 * audit.  Each call runs on the admin connection within its deadline.
 * ------------------------------------------------------------------------
 */
typedef struct repair_call_s {
        drv_admin_route_t route;
        drv_repair_t rp;
        int limit;     /* audit */
        json_t *out;   /* the call's answer */
        drv_err_t err; /* the call's own error, not the deadline's */
} repair_call_t;

static drv_err_t repair_fn(PGconn *conn, void *arg, char *errstr,
                           size_t errstr_size) {
        repair_call_t *rc = arg;

        if (rc->route == DRV_ADMIN_ROUTE_REPAIR)
                rc->err = drv_repair_execute(conn, &rc->rp, &rc->out, errstr,
                                             errstr_size);
        else if (rc->route == DRV_ADMIN_ROUTE_REPAIR_AUDIT)
                rc->err = drv_repair_history(conn, rc->rp.dataset, rc->limit,
                                             &rc->out, errstr, errstr_size);
        else
                rc->err = drv_repair_show(conn, &rc->rp, &rc->out, errstr,
                                          errstr_size);
        return rc->err;
}

/* Run rc on the database and answer: its JSON (under `key` when not
 * NULL), 409 when a runner holds the dataset, 400 for a rule the state
 * breaks, 503 when the database does not answer. */
static enum MHD_Result repair_answer(drv_admin_t *admin,
                                     struct MHD_Connection *c,
                                     repair_call_t *rc, const char *key) {
        char errstr[512];
        drv_err_t err;

        if (!admin->db)
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "no database configured");
        err =
            drv_admin_db_call(admin->db, repair_fn, rc, errstr, sizeof(errstr));
        if (err) {
                json_decref(rc->out);
                if (err == rc->err && err == DRV_ERR_LOCKED)
                        return send_error(c, MHD_HTTP_CONFLICT, errstr);
                if (err == rc->err && err == DRV_ERR_INVALID_PARAM)
                        return send_error(c, MHD_HTTP_BAD_REQUEST, errstr);
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, errstr);
        }
        if (rc->route == DRV_ADMIN_ROUTE_REPAIR &&
            json_is_true(json_object_get(rc->out, "repaired")))
                drv_log(DRV_LOG_INFO,
                        "dataset \"%s\" repaired over http by %s (audit id "
                        "%lld)",
                        rc->rp.dataset, rc->rp.who,
                        (long long)json_integer_value(
                            json_object_get(rc->out, "id")));
        return send_json(c, MHD_HTTP_OK,
                         key ? json_pack("{so}", key, rc->out) : rc->out);
}

static enum MHD_Result handle_repair_get(drv_admin_t *admin,
                                         struct MHD_Connection *c,
                                         drv_admin_route_t route) {
        repair_call_t rc = {.route = route, .limit = 20};
        const char *limit_s;
        char errstr[512];
        int n;

        if (query_arg(c, "dataset", &rc.rp.dataset) ||
            query_arg(c, "limit", &limit_s))
                return send_error(c, MHD_HTTP_BAD_REQUEST,
                                  "query argument too long or not text");
        if (limit_s && (sscanf(limit_s, "%d%n", &rc.limit, &n) != 1 ||
                        limit_s[n] || rc.limit < 1 || rc.limit > 100))
                return send_error(c, MHD_HTTP_BAD_REQUEST,
                                  "limit must be an integer from 1 to 100");
        if ((route == DRV_ADMIN_ROUTE_REPAIR_SHOW || rc.rp.dataset) &&
            drv_dataset_check(rc.rp.dataset, errstr, sizeof(errstr)))
                return send_error(c, MHD_HTTP_BAD_REQUEST, errstr);
        return repair_answer(admin, c, &rc,
                             route == DRV_ADMIN_ROUTE_REPAIR_AUDIT ? "repairs"
                                                                   : NULL);
}

/* The complete POST /api/repair body is in req. */
static enum MHD_Result handle_repair_post(drv_admin_t *admin,
                                          struct MHD_Connection *c,
                                          request_t *req) {
        repair_call_t rc = {.route = DRV_ADMIN_ROUTE_REPAIR};
        char errstr[512];
        json_t *body;
        enum MHD_Result ret;

        if (drv_admin_parse_repair_body(req->body, req->len, &rc.rp, &body,
                                        errstr, sizeof(errstr)))
                return send_error(c, MHD_HTTP_BAD_REQUEST, errstr);
        rc.rp.who = admin->token_label;
        ret = repair_answer(admin, c, &rc, NULL);
        json_decref(body);
        return ret;
}

static enum MHD_Result handle_static(struct MHD_Connection *c,
                                     const char *url) {
        const char *name = strcmp(url, "/") ? url + 1 : "index.html";
        const drv_web_asset_t *a = drv_web_asset_find(name);

        if (!a)
                return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
        return send_buf(c, MHD_HTTP_OK, drv_admin_mime_type(a->name),
                        (void *)a->data, a->len, MHD_RESPMEM_PERSISTENT);
}

/* Resolve the task's entity: the plan's dataset fills a missing one.  0,
 * or the HTTP status to refuse with (errstr set): 404 the catalog has no
 * such entity, 503 it cannot be reached (only when the dataset must come
 * from it; else the worker resolves the plan later), 400 otherwise. */
static unsigned submit_resolve(drv_admin_t *admin, drv_task_t *task,
                               char *errstr, size_t errstr_size) {
        drv_plan_t *plan = NULL;
        unsigned status = 0;
        drv_err_t err;

        if (!admin->catalog) {
                if (task->dataset)
                        return 0;
                drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                            "missing field \"dataset\" (no catalog to "
                            "derive it from)");
                return MHD_HTTP_BAD_REQUEST;
        }
        err = drv_catalog_resolve(admin->catalog, task->entity_ref, &plan,
                                  errstr, errstr_size);
        if (err == DRV_ERR_UNKNOWN_PLAN)
                status = MHD_HTTP_NOT_FOUND;
        else if (err == DRV_ERR_CATALOG_UNAVAILABLE && task->dataset)
                drv_log(DRV_LOG_WARN,
                        "submitting without checking entity \"%s\": %s",
                        task->entity_ref, errstr);
        else if (err == DRV_ERR_CATALOG_UNAVAILABLE)
                status = MHD_HTTP_SERVICE_UNAVAILABLE;
        else if (err)
                status = MHD_HTTP_BAD_REQUEST;
        else if (!task->dataset && !(task->dataset = strdup(plan->dataset)))
                status = (drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                      "out of memory"),
                          MHD_HTTP_SERVICE_UNAVAILABLE);
        drv_plan_release(plan);
        return status;
}

/* Give the task its id: a fresh one, or the caller's when drover has not
 * seen it yet.  0, or the HTTP status to refuse with (errstr set). */
static unsigned submit_task_id(drv_admin_t *admin, drv_task_t *task,
                               char *errstr, size_t errstr_size) {
        char id[37];
        int exists = 0;

        if (!task->task_id) {
                drv_uuid4(id);
                if ((task->task_id = strdup(id)))
                        return 0;
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                return MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        if (!admin->db) {
                drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                            "cannot check task id \"%s\": no database is "
                            "configured",
                            task->task_id);
                return MHD_HTTP_SERVICE_UNAVAILABLE;
        }
        if (drv_admin_db_task_exists(admin->db, task->task_id, &exists, errstr,
                                     errstr_size))
                return MHD_HTTP_SERVICE_UNAVAILABLE;
        if (!exists)
                return 0;
        drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                    "task \"%s\" was already submitted", task->task_id);
        return MHD_HTTP_CONFLICT;
}

typedef struct queue_call_s {
        const drv_task_t *task;
        const char *topic;
        int unqueue;
} queue_call_t;

static drv_err_t queue_fn(PGconn *conn, void *arg, char *errstr,
                          size_t errstr_size) {
        queue_call_t *q = arg;
        drv_task_run_t run;

        if (q->unqueue)
                return drv_task_run_unqueue(conn, q->task->task_id, errstr,
                                            errstr_size);
        memset(&run, 0, sizeof(run));
        run.task_id = q->task->task_id;
        run.entity_ref = q->task->entity_ref;
        run.dataset = q->task->dataset;
        run.status = "queued";
        run.partition = -1;
        run.offset = -1;
        run.topic = q->topic;
        return drv_task_runs_queue(conn, &run, 1, errstr, errstr_size);
}

/* A submitted task shows `queued` before its record is produced, and
 * loses the row again when the record is not (unqueue).  Best effort: a
 * worker shows it queued when it fetches it. */
static void submit_queue(drv_admin_t *admin, const drv_task_t *task,
                         int unqueue) {
        queue_call_t q = {task, admin->topic, unqueue};
        char errstr[512];

        if (admin->db &&
            drv_admin_db_call(admin->db, queue_fn, &q, errstr, sizeof(errstr)))
                drv_log(DRV_LOG_WARN, "task %s: cannot %s its queued row: %s",
                        task->task_id, unqueue ? "delete" : "write", errstr);
}

/* Encode and produce a checked task (key: its dataset); 202 with its id,
 * dataset and topic, or the error. */
static enum MHD_Result submit_produce(drv_admin_t *admin,
                                      struct MHD_Connection *c,
                                      const drv_task_t *task) {
        char errstr[512];
        void *buf = NULL;
        size_t len = 0;
        enum MHD_Result ret;

        if (drv_task_encode(admin->store, task, &buf, &len, errstr,
                            sizeof(errstr)))
                ret = send_error(c, MHD_HTTP_BAD_REQUEST, errstr);
        else if (submit_queue(admin, task, 0),
                 drv_admin_kafka_produce(admin->kafka, task->dataset, buf, len,
                                         errstr, sizeof(errstr))) {
                submit_queue(admin, task, 1);
                drv_log(DRV_LOG_WARN, "task submission failed: %s", errstr);
                ret = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, errstr);
        } else {
                drv_log(DRV_LOG_INFO,
                        "task %s submitted over http for dataset \"%s\" by "
                        "%s",
                        task->task_id, task->dataset, task->requested_by);
                ret = send_json(c, MHD_HTTP_ACCEPTED,
                                json_pack("{ssssss}", "task_id", task->task_id,
                                          "dataset", task->dataset, "topic",
                                          admin->topic));
        }
        free(buf);
        return ret;
}

/* The complete POST /api/tasks body is in req: parse, check, encode,
 * produce. */
static enum MHD_Result handle_submit(drv_admin_t *admin,
                                     struct MHD_Connection *c, request_t *req) {
        char errstr[512];
        drv_task_t *task = NULL;
        unsigned status;
        enum MHD_Result ret;

        if (drv_admin_parse_task_body(req->body, req->len, admin->topic,
                                      admin->token_label, &task, errstr,
                                      sizeof(errstr)))
                return send_error(c, MHD_HTTP_BAD_REQUEST, errstr);
        if (!admin->kafka || !admin->store)
                ret = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "kafka is not configured for submissions");
        else if ((status =
                      submit_resolve(admin, task, errstr, sizeof(errstr))) ||
                 (status = submit_task_id(admin, task, errstr, sizeof(errstr))))
                ret = send_error(c, status, errstr);
        else
                ret = submit_produce(admin, c, task);
        drv_task_destroy(task);
        return ret;
}

/*
 * ------------------------------------------------------------------------
 * Rollback (transforms/rollback.c): POST the dry run, or with "execute"
 * the rollback task, produced as POST /api/tasks produces a task.
 * ------------------------------------------------------------------------
 */
typedef struct rollback_call_s {
        const drv_admin_rollback_t *rq;
        json_t *out;       /* drv_rollback_json */
        drv_err_t refused; /* drv_rollback_check's (why) */
        char why[512];
        char ref[400]; /* execute: the task's entity ref */
        long version;  /* the dataset's */
} rollback_call_t;

static drv_err_t rollback_fn(PGconn *conn, void *arg, char *errstr,
                             size_t errstr_size) {
        rollback_call_t *rc = arg;
        drv_rollback_t *rb = NULL;
        drv_err_t err;

        if ((err = drv_rollback_plan(conn, rc->rq->dataset, rc->rq->to_version,
                                     &rb, errstr, errstr_size)))
                return err;
        rc->out = drv_rollback_json(rb);
        rc->version = rb->version;
        rc->refused = drv_rollback_check(rb, rc->why, sizeof(rc->why));
        if (!rc->refused && rc->rq->execute)
                rc->refused = drv_rollback_entity_ref(
                    rb, rc->ref, sizeof(rc->ref), rc->why, sizeof(rc->why));
        drv_rollback_destroy(rb);
        return DRV_OK;
}

/* The rollback task of rc: params drover.rollback_to / _from. */
static enum MHD_Result rollback_submit(drv_admin_t *admin,
                                       struct MHD_Connection *c,
                                       const rollback_call_t *rc) {
        char errstr[512], to[24], from[24];
        drv_task_t *task = drv_task_new();
        unsigned status;
        enum MHD_Result ret;

        snprintf(to, sizeof(to), "%ld", rc->rq->to_version);
        snprintf(from, sizeof(from), "%ld", rc->version);
        if (!admin->kafka || !admin->store) {
                drv_task_destroy(task);
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "kafka is not configured for submissions");
        }
        if (!task || !(task->entity_ref = strdup(rc->ref)) ||
            !(task->dataset = strdup(rc->rq->dataset)) ||
            !(task->requested_by = strdup(admin->token_label)) ||
            (rc->rq->task_id && !(task->task_id = strdup(rc->rq->task_id))) ||
            drv_task_add_param(task, DRV_ROLLBACK_TO_PARAM, to) ||
            drv_task_add_param(task, DRV_ROLLBACK_FROM_PARAM, from)) {
                drv_task_destroy(task);
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "out of memory");
        }
        task->requested_at = drv_now_ms();
        if ((status = submit_task_id(admin, task, errstr, sizeof(errstr))))
                ret = send_error(c, status, errstr);
        else
                ret = submit_produce(admin, c, task);
        drv_task_destroy(task);
        return ret;
}

/* The complete POST /api/rollback body is in req: 200 the dry run, 202
 * the submitted task, 409 a refusal (with the dry run), 400 a bad
 * request, 503 no database or kafka. */
static enum MHD_Result
handle_rollback(drv_admin_t *admin, struct MHD_Connection *c, request_t *req) {
        drv_admin_rollback_t rq;
        rollback_call_t rc = {.rq = &rq};
        char errstr[512];
        json_t *body;
        drv_err_t err;
        enum MHD_Result ret;

        if (drv_admin_parse_rollback_body(req->body, req->len, &rq, &body,
                                          errstr, sizeof(errstr)))
                return send_error(c, MHD_HTTP_BAD_REQUEST, errstr);
        if (!admin->db)
                ret = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "no database configured");
        else if ((err = drv_admin_db_call(admin->db, rollback_fn, &rc, errstr,
                                          sizeof(errstr))))
                ret = send_error(c,
                                 err == DRV_ERR_INVALID_PARAM
                                     ? MHD_HTTP_BAD_REQUEST
                                     : MHD_HTTP_SERVICE_UNAVAILABLE,
                                 errstr);
        else if (rc.refused) {
                ret = send_json(c, MHD_HTTP_CONFLICT,
                                json_pack("{s:s, s:O}", "error", rc.why,
                                          "rollback", rc.out));
        } else if (!rq.execute) {
                ret = send_json(c, MHD_HTTP_OK, json_incref(rc.out));
        } else {
                ret = rollback_submit(admin, c, &rc);
        }
        json_decref(rc.out);
        json_decref(body);
        return ret;
}

/* First call of a POST (/api/tasks, /api/repair, /api/rollback): refuse
 * before reading
 * the body when the token or the declared length is wrong.  MHD_YES with
 * *donep set when a response was queued. */
static enum MHD_Result post_precheck(drv_admin_t *admin,
                                     struct MHD_Connection *c,
                                     drv_admin_route_t route, int *donep) {
        const char *auth, *clen;

        *donep = 1;
        if (!admin->token)
                return send_error(c, MHD_HTTP_FORBIDDEN,
                                  route == DRV_ADMIN_ROUTE_REPAIR
                                      ? "repairs are disabled (no admin "
                                        "token configured)"
                                  : route == DRV_ADMIN_ROUTE_ROLLBACK
                                      ? "rollbacks are disabled (no admin "
                                        "token configured)"
                                      : "submissions are disabled (no admin "
                                        "token configured)");
        auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_AUTHORIZATION);
        if (!drv_admin_bearer_ok(admin->token, auth))
                return send_error(c, MHD_HTTP_UNAUTHORIZED,
                                  "missing or wrong bearer token");
        clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (clen && strtoull(clen, NULL, 10) > DRV_ADMIN_BODY_MAX)
                return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                  "request body too large (at most 65536 "
                                  "bytes)");
        *donep = 0;
        return MHD_YES;
}

/* 1 for the routes that take a POST body behind the bearer token. */
static int route_posts(drv_admin_route_t route) {
        return route == DRV_ADMIN_ROUTE_TASKS ||
               route == DRV_ADMIN_ROUTE_REPAIR ||
               route == DRV_ADMIN_ROUTE_ROLLBACK;
}

/* Append upload data to req, up to the cap. */
static void body_append(request_t *req, const char *data, size_t len) {
        char *nb;

        if (req->too_large || !len)
                return;
        if (req->len + len > DRV_ADMIN_BODY_MAX ||
            !(nb = realloc(req->body, req->len + len + 1))) {
                req->too_large = 1;
                return;
        }
        memcpy(nb + req->len, data, len);
        req->body = nb;
        req->len += len;
        req->body[req->len] = '\0';
}

static enum MHD_Result dispatch(drv_admin_t *admin, struct MHD_Connection *c,
                                const char *url, request_t *req) {
        if (route_posts(req->route) && req->too_large)
                return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                  "request body too large (at most 65536 "
                                  "bytes)");
        switch (req->route) {
        case DRV_ADMIN_ROUTE_METRICS:
                return handle_metrics(c);
        case DRV_ADMIN_ROUTE_HEALTHZ:
                return send_json(c, MHD_HTTP_OK,
                                 json_pack("{ss}", "status", "ok"));
        case DRV_ADMIN_ROUTE_READYZ:
                return handle_readyz(admin, c);
        case DRV_ADMIN_ROUTE_MIGRATIONS:
                return handle_migrations(admin, c);
        case DRV_ADMIN_ROUTE_TASKS:
                return handle_submit(admin, c, req);
        case DRV_ADMIN_ROUTE_REPAIR_SHOW:
        case DRV_ADMIN_ROUTE_REPAIR_AUDIT:
                return handle_repair_get(admin, c, req->route);
        case DRV_ADMIN_ROUTE_REPAIR:
                return handle_repair_post(admin, c, req);
        case DRV_ADMIN_ROUTE_ROLLBACK:
                return handle_rollback(admin, c, req);
        case DRV_ADMIN_ROUTE_STATIC:
                return handle_static(c, url);
        case DRV_ADMIN_ROUTE_METHOD_NOT_ALLOWED:
                return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                  "method not allowed");
        default:
                return send_error(c, MHD_HTTP_NOT_FOUND, "not found");
        }
}

/* The watchdog entry of connection c (NULL when it is not watched). */
static drv_admin_watch_entry_t *conn_watch(struct MHD_Connection *c) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
        drv_admin_t *admin = cls;
        request_t *req = *con_cls;
        int done;
        enum MHD_Result ret;

        if (!req) { /* first call: headers only */
                if (!(req = calloc(1, sizeof(*req))))
                        return MHD_NO;
                req->route = drv_admin_route(method, url);
                *con_cls = req;
                if (!route_posts(req->route))
                        return MHD_YES;
                ret = post_precheck(admin, c, req->route, &done);
                req->answered = done;
                return done ? ret : MHD_YES;
        }
        if (req->answered) {
                *upload_size = 0;
                return MHD_YES;
        }
        if (*upload_size) {
                if (route_posts(req->route))
                        body_append(req, upload, *upload_size);
                *upload_size = 0; /* consumed (or discarded) */
                return MHD_YES;
        }
        /* the request is in: no read deadline while it is answered */
        drv_admin_watch_client_busy(admin->watch, conn_watch(c), 1);
        return dispatch(admin, c, url, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        drv_admin_t *admin = cls;
        request_t *req = *con_cls;

        /* a kept-alive connection now waits for its next request */
        drv_admin_watch_client_busy(admin->watch, conn_watch(c), 0);
        if (req) {
                free(req->body);
                free(req);
                *con_cls = NULL;
        }
}

static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
        drv_admin_t *admin = cls;
        const union MHD_ConnectionInfo *ci;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                ci = MHD_get_connection_info(c,
                                             MHD_CONNECTION_INFO_CONNECTION_FD);
                *socket_context =
                    ci ? drv_admin_watch_client(admin->watch, ci->connect_fd)
                       : NULL;
                return;
        }
        /* MHD closes the socket only after this returns */
        drv_admin_watch_remove(admin->watch, *socket_context);
        *socket_context = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
        char line[512];
        size_t n;

        vsnprintf(line, sizeof(line), fmt, ap);
        n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
        drv_log(DRV_LOG_DEBUG, "admin http: %s", line);
}

/*
 * ------------------------------------------------------------------------
 * Start and stop
 * ------------------------------------------------------------------------
 */

static drv_err_t copy_conf(drv_admin_t *admin, const drv_admin_conf_t *conf,
                           char *errstr, size_t errstr_size) {
        admin->topic = strdup(conf->topic ? conf->topic : "dataset-migrations");
        if (conf->token && *conf->token) {
                admin->token = strdup(conf->token);
                drv_admin_token_label(conf->token, admin->token_label);
        }
        admin->catalog = conf->catalog;
        if (conf->database_url && *conf->database_url)
                admin->db = drv_admin_db_new(conf->database_url, admin->watch,
                                             ADMIN_DB_DEADLINE_MS);
        if (!admin->topic || (conf->token && *conf->token && !admin->token) ||
            (conf->database_url && *conf->database_url && !admin->db))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        if (!conf->brokers || !*conf->brokers)
                return DRV_OK;
        admin->store = conf->store;
        if (!admin->store &&
            !(admin->store = admin->owned_store =
                  drv_schema_store_new(NULL, errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        if (!(admin->kafka = drv_admin_kafka_new(conf->brokers, admin->topic,
                                                 errstr, errstr_size)))
                return DRV_ERR_CONFIG;
        return DRV_OK;
}

static void admin_free(drv_admin_t *admin) {
        drv_admin_kafka_destroy(admin->kafka);
        drv_schema_store_destroy(admin->owned_store);
        drv_admin_db_destroy(admin->db);
        drv_admin_watch_destroy(admin->watch);
        free(admin->token);
        free(admin->topic);
        free(admin);
}

static struct MHD_Daemon *mhd_start(drv_admin_t *admin,
                                    const struct sockaddr_in *sa) {
        return MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                MHD_USE_AUTO | MHD_USE_ERROR_LOG,
            0, NULL, NULL, on_request, admin, MHD_OPTION_SOCK_ADDR, sa,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)ADMIN_CONN_LIMIT,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            (unsigned int)ADMIN_PER_IP_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned int)ADMIN_CONN_TIMEOUT_S,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_HEADER_MEMORY,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, admin,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, admin,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, admin, MHD_OPTION_END);
}

drv_admin_t *drv_admin_start(const drv_admin_conf_t *conf, char *errstr,
                             size_t errstr_size) {
        const char *listen =
            conf && conf->listen ? conf->listen : "127.0.0.1:9464";
        const union MHD_DaemonInfo *info;
        struct sockaddr_in sa;
        drv_admin_t *admin;

        if (drv_admin_parse_listen(listen, &sa, errstr, errstr_size))
                return NULL;
        if (!(admin = calloc(1, sizeof(*admin)))) {
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory");
                return NULL;
        }
        if (!(admin->watch =
                  drv_admin_watch_new(ADMIN_READING_MAX, ADMIN_READ_TIMEOUT_MS,
                                      errstr, errstr_size)))
                goto err;
        if (conf && copy_conf(admin, conf, errstr, errstr_size))
                goto err;
        if (!conf &&
            copy_conf(admin, &(drv_admin_conf_t){0}, errstr, errstr_size))
                goto err;
        if (!(admin->mhd = mhd_start(admin, &sa))) {
                drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                            "cannot listen on %s for http: address in use "
                            "or not available",
                            listen);
                goto err;
        }
        info = MHD_get_daemon_info(admin->mhd, MHD_DAEMON_INFO_BIND_PORT);
        admin->port = info ? info->port : ntohs(sa.sin_port);
        drv_log(DRV_LOG_INFO, "admin http server listening on %s:%d",
                inet_ntoa(sa.sin_addr), admin->port);
        return admin;
err:
        admin_free(admin);
        return NULL;
}

int drv_admin_port(const drv_admin_t *admin) {
        return admin ? admin->port : -1;
}

void drv_admin_stop(drv_admin_t *admin) {
        if (!admin)
                return;
        /* joins every connection thread: no handler runs after this */
        MHD_stop_daemon(admin->mhd);
        admin_free(admin);
}
