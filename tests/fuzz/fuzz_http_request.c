/*
 * tests/fuzz/fuzz_http_request.c: libFuzzer target for the admin server's
 * request-handling helpers (consumer/admin/admin_req.c): routing of method +
 * path + query, text validation of query values, the bearer check, and
 * the JSON bodies of POST /api/tasks, /api/repair and /api/rollback.
 *
 * Input: [mode u8][data].  Mode 0: "METHOD\nURL"; 1: a query value; 2: an
 * Authorization header checked against a fixed token; else: a task body.
 * Invariants: nothing crashes or leaks; a body that parses yields a task
 * whose strings are valid text and whose task_id is a 36-char UUID; a
 * body that fails leaves *taskp NULL and an error line.
 */
#include "admin_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_route(const char *s) {
        char *nl = strchr(s, '\n');
        drv_admin_route_t r;

        if (!nl)
                return;
        *nl = '\0';
        r = drv_admin_route(s, nl + 1);
        if (r > DRV_ADMIN_ROUTE_STATIC)
                abort();
}

static void fuzz_body(const char *d, size_t n) {
        char errstr[512];
        drv_task_t *task = NULL;
        drv_err_t err;
        size_t i;

        err = drv_admin_parse_task_body(d, n, "dataset-migrations",
                                        "token:00000000", &task, errstr,
                                        sizeof(errstr));
        if (err) {
                if (task || !errstr[0])
                        abort();
                return;
        }
        if (!task || (task->task_id && !drv_uuid_valid(task->task_id)) ||
            (task->dataset && !drv_dataset_valid(task->dataset)) ||
            !drv_admin_text_valid(task->entity_ref, strlen(task->entity_ref)))
                abort();
        for (i = 0; i < task->params_cnt; i++)
                if (!drv_admin_text_valid(task->params[i].value,
                                          strlen(task->params[i].value)))
                        abort();
        drv_task_destroy(task);
}

/* The same bytes as a POST /api/repair body: accepted means every rule
 * holds. */
static void fuzz_repair_body(const char *d, size_t n) {
        char errstr[512];
        drv_repair_t rp;
        json_t *root;

        if (drv_admin_parse_repair_body(d, n, &rp, &root, errstr,
                                        sizeof(errstr))) {
                if (root || !errstr[0])
                        abort();
                return;
        }
        if (!root || !drv_dataset_valid(rp.dataset) ||
            (!rp.clear && !rp.set_version) ||
            drv_repair_check(&rp, 1, errstr, sizeof(errstr)))
                abort();
        json_decref(root);
}

/* The same bytes as a POST /api/rollback body: accepted means every rule
 * holds. */
static void fuzz_rollback_body(const char *d, size_t n) {
        char errstr[512];
        drv_admin_rollback_t rq;
        json_t *root;

        if (drv_admin_parse_rollback_body(d, n, &rq, &root, errstr,
                                          sizeof(errstr))) {
                if (root || !errstr[0])
                        abort();
                return;
        }
        if (!root || !drv_dataset_valid(rq.dataset) || rq.to_version < 0 ||
            rq.to_version > INT32_MAX ||
            (rq.task_id && !drv_uuid_valid(rq.task_id)))
                abort();
        json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s;

        if (size < 1 || size > 2 * DRV_ADMIN_BODY_MAX)
                return 0;
        /* a NUL-terminated copy for the string helpers; the body parser
         * gets the exact bytes (it must not rely on a terminator) */
        if (!(s = malloc(size)))
                return 0;
        memcpy(s, data + 1, size - 1);
        s[size - 1] = '\0';
        switch (data[0] % 4) {
        case 0:
                fuzz_route(s);
                break;
        case 1:
                (void)drv_admin_text_valid(s, size - 1);
                break;
        case 2:
                (void)drv_admin_bearer_ok("fuzz-token-0123", s);
                break;
        default:
                fuzz_body((const char *)data + 1, size - 1);
                fuzz_repair_body((const char *)data + 1, size - 1);
                fuzz_rollback_body((const char *)data + 1, size - 1);
        }
        free(s);
        return 0;
}
