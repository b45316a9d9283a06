/*
 * drover - consumer/admin/admin_req.c: pure request-handling helpers of the
 * admin server (routing, input validation, bearer check, the body of
 * POST /api/tasks).  Fuzzed by tests/fuzz/fuzz_http_request.c.
 */
#include "admin_int.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * ------------------------------------------------------------------------
 * Routing: a flat table of path -> route and the methods it takes.
 * ------------------------------------------------------------------------
 */
static const struct {
        const char *path;
        drv_admin_route_t route;
        int post; /* 1: POST only, 0: GET/HEAD only; a path may have a
                     row for each */
} routes[] = {
    {"/metrics", DRV_ADMIN_ROUTE_METRICS, 0},
    {"/healthz", DRV_ADMIN_ROUTE_HEALTHZ, 0},
    {"/readyz", DRV_ADMIN_ROUTE_READYZ, 0},
    {"/api/migrations", DRV_ADMIN_ROUTE_MIGRATIONS, 0},
    {"/api/tasks", DRV_ADMIN_ROUTE_TASKS, 1},
    {"/api/repair", DRV_ADMIN_ROUTE_REPAIR_SHOW, 0},
    {"/api/repair", DRV_ADMIN_ROUTE_REPAIR, 1},
    {"/api/repair/audit", DRV_ADMIN_ROUTE_REPAIR_AUDIT, 0},
    {"/api/rollback", DRV_ADMIN_ROUTE_ROLLBACK, 1},
    {"/", DRV_ADMIN_ROUTE_STATIC, 0},
    {"/index.html", DRV_ADMIN_ROUTE_STATIC, 0},
    {"/app.js", DRV_ADMIN_ROUTE_STATIC, 0},
    {"/style.css", DRV_ADMIN_ROUTE_STATIC, 0},
};

drv_admin_route_t drv_admin_route(const char *method, const char *url) {
        size_t i, len;
        int is_get, is_post;

        if (!method || !url)
                return DRV_ADMIN_ROUTE_NOT_FOUND;
        len = strcspn(url, "?#");
        is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        is_post = !strcmp(method, "POST");
        drv_admin_route_t found = DRV_ADMIN_ROUTE_NOT_FOUND;

        for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                if (strlen(routes[i].path) != len ||
                    strncmp(routes[i].path, url, len))
                        continue;
                if (routes[i].post ? is_post : is_get)
                        return routes[i].route;
                found = DRV_ADMIN_ROUTE_METHOD_NOT_ALLOWED;
        }
        return found;
}

/*
 * ------------------------------------------------------------------------
 * Input validation
 * ------------------------------------------------------------------------
 */

/* Length of the UTF-8 sequence at s (at most `left` bytes), 0 if it is
 * not a valid, shortest-form encoding of a scalar value. */
static size_t utf8_seq_len(const unsigned char *s, size_t left) {
        size_t n, i;
        uint32_t cp;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, cp = s[0] & 0x07;
        else
                return 0;
        if (n > left)
                return 0;
        for (i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

int drv_admin_text_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0, n;

        if (!s || len > DRV_ADMIN_FIELD_MAX)
                return 0;
        while (i < len) {
                if (p[i] < 0x20 || p[i] == 0x7f)
                        return 0;
                if (!(n = utf8_seq_len(p + i, len - i)))
                        return 0;
                i += n;
        }
        return 1;
}

int drv_admin_bearer_ok(const char *expected, const char *header) {
        const char *tok;
        size_t elen, tlen, i;
        unsigned char diff;

        if (!expected || !*expected || !header)
                return 0;
        if (strncasecmp(header, "Bearer ", 7))
                return 0;
        tok = header + 7;
        while (*tok == ' ')
                tok++;
        elen = strlen(expected);
        tlen = strlen(tok);
        /* Compare every byte of the expected token whatever the input:
         * the time depends on the token's length only, never on where
         * the first mismatch is. */
        diff = (unsigned char)(elen != tlen);
        for (i = 0; i < elen; i++)
                diff |= (unsigned char)(expected[i] ^ (i < tlen ? tok[i] : 0));
        return diff == 0;
}

const char *drv_admin_mime_type(const char *name) {
        const char *dot = name ? strrchr(name, '.') : NULL;

        if (!dot)
                return "application/octet-stream";
        if (!strcmp(dot, ".html"))
                return "text/html; charset=utf-8";
        if (!strcmp(dot, ".js"))
                return "text/javascript; charset=utf-8";
        if (!strcmp(dot, ".css"))
                return "text/css; charset=utf-8";
        return "application/octet-stream";
}

/*
 * ------------------------------------------------------------------------
 * POST /api/tasks body
 * ------------------------------------------------------------------------
 */

/* The string member `key` of `obj`: required (1) or optional (0).  Sets
 * *outp to it (borrowed) or NULL when optional and absent. */
static drv_err_t get_text(const json_t *obj, const char *key, int required,
                          const char **outp, char *errstr, size_t errstr_size) {
        const json_t *v = json_object_get(obj, key);

        *outp = NULL;
        if (!v && !required)
                return DRV_OK;
        if (!v)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "missing field \"%s\"", key);
        if (!json_is_string(v) || json_string_length(v) == 0)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "field \"%s\" must be a non-empty string",
                                   key);
        if (!drv_admin_text_valid(json_string_value(v), json_string_length(v)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "field \"%s\" is too long or holds control "
                                   "characters",
                                   key);
        *outp = json_string_value(v);
        return DRV_OK;
}

static drv_err_t add_params(drv_task_t *task, const json_t *params,
                            char *errstr, size_t errstr_size) {
        const char *key;
        json_t *v;

        if (!params || json_is_null(params))
                return DRV_OK;
        if (!json_is_object(params))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "field \"params\" must be an object");
        if (json_object_size(params) > DRV_ADMIN_PARAMS_MAX)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "too many params (at most %d)",
                                   DRV_ADMIN_PARAMS_MAX);
        json_object_foreach((json_t *)params, key, v) {
                if (!drv_admin_text_valid(key, strlen(key)) || !*key)
                        return drv_err_set(errstr, errstr_size,
                                           DRV_ERR_INVALID_PARAM,
                                           "a param name is empty, too long "
                                           "or holds control characters");
                if (!json_is_string(v) ||
                    !drv_admin_text_valid(json_string_value(v),
                                          json_string_length(v)))
                        return drv_err_set(errstr, errstr_size,
                                           DRV_ERR_INVALID_PARAM,
                                           "param \"%.64s\" must be a string "
                                           "without control characters",
                                           key);
                if (drv_task_add_param(task, key, json_string_value(v)))
                        return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                           "out of memory");
        }
        return DRV_OK;
}

/* A request body that must be one JSON object: *rootp (caller decrefs),
 * or DRV_ERR_INVALID_PARAM saying what is wrong and *rootp NULL. */
static drv_err_t load_object(const char *body, size_t len, json_t **rootp,
                             char *errstr, size_t errstr_size) {
        json_error_t jerr;

        *rootp = NULL;
        if (!body || len > DRV_ADMIN_BODY_MAX)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "request body is missing or too large");
        /* jansson rejects invalid UTF-8 and NUL bytes in strings */
        *rootp = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!*rootp)
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "request body is not valid json: %s "
                                   "(line %d, column %d)",
                                   jerr.text, jerr.line, jerr.column);
        if (json_is_object(*rootp))
                return DRV_OK;
        json_decref(*rootp);
        *rootp = NULL;
        return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                           "request body must be a json object");
}

/* Fill `task` from the payload object: its task_id and dataset stay NULL
 * when the caller gave none (the server makes an id and derives the
 * dataset from the plan). */
static drv_err_t fill_task(drv_task_t *task, const json_t *payload,
                           const char *requested_by, char *errstr,
                           size_t errstr_size) {
        const char *id, *ref, *dataset;
        const json_t *dry;
        drv_err_t err;

        if (!json_is_object(payload))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "field \"payload\" must be an object");
        if ((err = get_text(payload, "task_id", 0, &id, errstr, errstr_size)) ||
            (err = get_text(payload, "entity_ref", 1, &ref, errstr,
                            errstr_size)) ||
            (err = get_text(payload, "dataset", 0, &dataset, errstr,
                            errstr_size)) ||
            (err =
                 drv_task_fields_check(id, ref, dataset, errstr, errstr_size)))
                return err;
        dry = json_object_get(payload, "dry_run");
        if (dry && !json_is_boolean(dry))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "field \"dry_run\" must be a boolean");
        task->task_id = id ? strdup(id) : NULL;
        task->entity_ref = strdup(ref);
        task->dataset = dataset ? strdup(dataset) : NULL;
        task->requested_by = strdup(requested_by ? requested_by : "admin-api");
        task->requested_at = drv_now_ms();
        task->dry_run = json_is_true(dry);
        if ((id && !task->task_id) || !task->entity_ref ||
            (dataset && !task->dataset) || !task->requested_by)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        return add_params(task, json_object_get(payload, "params"), errstr,
                          errstr_size);
}

drv_err_t drv_admin_parse_task_body(const char *body, size_t len,
                                    const char *topic, const char *requested_by,
                                    drv_task_t **taskp, char *errstr,
                                    size_t errstr_size) {
        json_t *root;
        const char *queue;
        drv_task_t *task = NULL;
        drv_err_t err;

        *taskp = NULL;
        if ((err = load_object(body, len, &root, errstr, errstr_size)))
                return err;
        if ((err = get_text(root, "queue", 0, &queue, errstr, errstr_size)))
                goto out;
        if (queue && topic && strcmp(queue, topic)) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                  "unknown queue \"%.128s\" (this server "
                                  "submits to \"%s\")",
                                  queue, topic);
                goto out;
        }
        if (!(task = drv_task_new())) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                  "out of memory");
                goto out;
        }
        if ((err = fill_task(task, json_object_get(root, "payload"),
                             requested_by, errstr, errstr_size)))
                goto out;
        *taskp = task;
        task = NULL;
out:
        drv_task_destroy(task);
        json_decref(root);
        return err;
}

/* DRV_OK when every key of `root` is one of known[0..n), else
 * DRV_ERR_INVALID_PARAM naming the first other one and the known ones. */
static drv_err_t known_fields(json_t *root, const char *const *known, size_t n,
                              char *errstr, size_t errstr_size) {
        char want[256] = "";
        const char *key;
        json_t *v;
        size_t i;

        json_object_foreach(root, key, v) {
                for (i = 0; i < n; i++)
                        if (!strcmp(key, known[i]))
                                break;
                if (i < n)
                        continue;
                for (i = 0; i < n; i++)
                        snprintf(want + strlen(want),
                                 sizeof(want) - strlen(want), "%s%s",
                                 i ? ", " : "", known[i]);
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "unknown field \"%.64s\" (want %s)", key,
                                   want);
        }
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * POST /api/repair body
 * ------------------------------------------------------------------------
 */
drv_err_t drv_admin_parse_repair_body(const char *body, size_t len,
                                      drv_repair_t *rp, json_t **rootp,
                                      char *errstr, size_t errstr_size) {
        static const char *const known[] = {"dataset", "reason", "clear_failed",
                                            "set_version"};
        const json_t *clear, *ver;
        json_t *root;
        drv_err_t err;

        memset(rp, 0, sizeof(*rp));
        *rootp = NULL;
        if ((err = load_object(body, len, &root, errstr, errstr_size)))
                return err;
        /* a misspelt action must not turn into a repair without it */
        if ((err = known_fields(root, known, sizeof(known) / sizeof(known[0]),
                                errstr, errstr_size)))
                goto out;
        clear = json_object_get(root, "clear_failed");
        ver = json_object_get(root, "set_version");
        if ((err = get_text(root, "dataset", 1, &rp->dataset, errstr,
                            errstr_size)) ||
            (err =
                 get_text(root, "reason", 1, &rp->reason, errstr, errstr_size)))
                goto out;
        if (clear && !json_is_boolean(clear)) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                  "field \"clear_failed\" must be a boolean");
                goto out;
        }
        if (ver && !json_is_null(ver) &&
            (!json_is_integer(ver) || json_integer_value(ver) < 0 ||
             json_integer_value(ver) > INT32_MAX)) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                  "field \"set_version\" must be an integer "
                                  "from 0 to %d",
                                  INT32_MAX);
                goto out;
        }
        rp->clear = json_is_true(clear);
        rp->set_version = ver && !json_is_null(ver);
        rp->version = rp->set_version ? (long)json_integer_value(ver) : 0;
        if (!rp->clear && !rp->set_version) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                  "a repair needs an action: \"clear_failed\": "
                                  "true and/or \"set_version\": N");
                goto out;
        }
        if ((err = drv_repair_check(rp, 1, errstr, errstr_size)))
                goto out;
        *rootp = root;
        return DRV_OK;
out:
        json_decref(root);
        memset(rp, 0, sizeof(*rp));
        return err == DRV_ERR_USAGE ? DRV_ERR_INVALID_PARAM : err;
}

/*
 * ------------------------------------------------------------------------
 * POST /api/rollback body
 * ------------------------------------------------------------------------
 */
drv_err_t drv_admin_parse_rollback_body(const char *body, size_t len,
                                        drv_admin_rollback_t *rq,
                                        json_t **rootp, char *errstr,
                                        size_t errstr_size) {
        static const char *const known[] = {"dataset", "to_version", "execute",
                                            "task_id"};
        const json_t *to, *exe;
        json_t *root;
        drv_err_t err;

        memset(rq, 0, sizeof(*rq));
        *rootp = NULL;
        if ((err = load_object(body, len, &root, errstr, errstr_size)))
                return err;
        if ((err = known_fields(root, known, sizeof(known) / sizeof(known[0]),
                                errstr, errstr_size)))
                goto out;
        to = json_object_get(root, "to_version");
        exe = json_object_get(root, "execute");
        if ((err = get_text(root, "dataset", 1, &rq->dataset, errstr,
                            errstr_size)) ||
            (err = get_text(root, "task_id", 0, &rq->task_id, errstr,
                            errstr_size)) ||
            (err = drv_dataset_check(rq->dataset, errstr, errstr_size)))
                goto out;
        if (rq->task_id && !drv_uuid_valid(rq->task_id)) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                  "invalid task id \"%.64s\": want a uuid "
                                  "(8-4-4-4-12 hex digits)",
                                  rq->task_id);
                goto out;
        }
        if (!json_is_integer(to) || json_integer_value(to) < 0 ||
            json_integer_value(to) > INT32_MAX) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                  "field \"to_version\" must be an integer "
                                  "from 0 to %d",
                                  INT32_MAX);
                goto out;
        }
        if (exe && !json_is_boolean(exe)) {
                err = drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                  "field \"execute\" must be a boolean");
                goto out;
        }
        rq->to_version = (long)json_integer_value(to);
        rq->execute = json_is_true(exe);
        *rootp = root;
        return DRV_OK;
out:
        json_decref(root);
        memset(rq, 0, sizeof(*rq));
        return err;
}

void drv_admin_token_label(const char *token, char out[15]) {
        char hex[65];

        drv_sha256_hex(token ? token : "", token ? strlen(token) : 0, hex);
        snprintf(out, 15, "token:%.8s", hex);
}

/*
 * ------------------------------------------------------------------------
 * The listen address
 * ------------------------------------------------------------------------
 */
drv_err_t drv_admin_parse_listen(const char *listen, struct sockaddr_in *sa,
                                 char *errstr, size_t errstr_size) {
        const char *colon = listen ? strrchr(listen, ':') : NULL;
        char host[64];
        long port;
        char *end;

        memset(sa, 0, sizeof(*sa));
        sa->sin_family = AF_INET;
        if (!colon || (size_t)(colon - listen) >= sizeof(host))
                goto bad;
        port = strtol(colon + 1, &end, 10);
        if (*end || end == colon + 1 || port < 0 || port > 65535)
                goto bad;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
        /* ":9464" is loopback: every address must be asked for by name */
        if (!*host || !strcmp(host, "localhost"))
                sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (!strcmp(host, "*"))
                sa->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
                goto bad;
        sa->sin_port = htons((uint16_t)port);
        return DRV_OK;
bad:
        return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                           "bad http listen address \"%s\" (want "
                           "ipv4:port, e.g. 127.0.0.1:9464)",
                           listen ? listen : "");
}
