/*
 * tests/unit/schema_equiv.h: decode one record through both decoders -
 * drv_task_decode() (the direct one) and drv_task_decode_reference()
 * (avro-c's generic value plus the original mapping) - and say how they
 * differ.  Shared by the schema unit tests, the interop test and the
 * fuzz target.  Header-only: every function is static.
 */
#ifndef DRV_TEST_SCHEMA_EQUIV_H
#define DRV_TEST_SCHEMA_EQUIV_H

#include "schema_int.h"

#include <stdio.h>
#include <string.h>

static int equiv_str_eq(const char *a, const char *b) {
        return (!a && !b) || (a && b && !strcmp(a, b));
}

/* NULL if the tasks are equal, else the first field that differs. */
static const char *equiv_task_diff(const drv_task_t *a, const drv_task_t *b) {
        size_t i;

        if (!equiv_str_eq(a->task_id, b->task_id))
                return "task_id";
        if (!equiv_str_eq(a->entity_ref, b->entity_ref))
                return "entity_ref";
        if (!equiv_str_eq(a->dataset, b->dataset))
                return "dataset";
        if (a->requested_at != b->requested_at)
                return "requested_at";
        if (!equiv_str_eq(a->requested_by, b->requested_by))
                return "requested_by";
        if (a->dry_run != b->dry_run)
                return "dry_run";
        if (a->params_cnt != b->params_cnt)
                return "params count";
        for (i = 0; i < a->params_cnt; i++)
                if (!equiv_str_eq(a->params[i].key, b->params[i].key) ||
                    !equiv_str_eq(a->params[i].value, b->params[i].value))
                        return "a param";
        if (a->priority != b->priority)
                return "priority";
        if (!equiv_str_eq(a->replay_of, b->replay_of))
                return "replay_of";
        if (a->writer_version != b->writer_version)
                return "writer_version";
        return NULL;
}

/*
 * Decode buf through both paths.  Returns 0 when they agree exactly (same
 * error code and message, or equal tasks), else -1 with `why` filled.
 * *errp (may be NULL) receives the direct decoder's result.
 */
static int equiv_check(drv_schema_store_t *store, const void *buf, size_t len,
                       drv_err_t *errp, char *why, size_t why_size) {
        char e1[512] = "", e2[512] = "";
        drv_task_t *t1 = NULL, *t2 = NULL;
        drv_err_t r1, r2;
        const char *d = NULL;
        int rc = 0;

        r1 = drv_task_decode(store, buf, len, &t1, e1, sizeof(e1));
        r2 = drv_task_decode_reference(store, buf, len, &t2, e2, sizeof(e2));
        if (errp)
                *errp = r1;
        if (r1 != r2 || (r1 && strcmp(e1, e2))) {
                snprintf(why, why_size, "direct %s \"%s\", reference %s \"%s\"",
                         drv_err_name(r1), r1 ? e1 : "", drv_err_name(r2),
                         r2 ? e2 : "");
                rc = -1;
        } else if (!r1 && (d = equiv_task_diff(t1, t2))) {
                snprintf(why, why_size, "tasks differ in %s", d);
                rc = -1;
        } else if (r1 && (t1 || t2)) {
                snprintf(why, why_size, "a task came back with an error");
                rc = -1;
        }
        drv_task_destroy(t1);
        drv_task_destroy(t2);
        return rc;
}

#endif /* DRV_TEST_SCHEMA_EQUIV_H */
