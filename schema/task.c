/*
 * drover - schema/task.c: the decoded task record.
 */
#include "schema.h"

#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * A task lives in one block: a hidden header (the block's size), the
 * struct, then - for a decoded task - its strings and params array.
 * Fields may still be replaced by separately malloc'ed strings (and
 * params appended): drv_task_destroy() frees exactly the pointers that do
 * not lie inside the block.  Decoding a task costs one malloc instead of
 * a dozen.
 */
typedef union task_hdr_u {
        size_t size;
        max_align_t align;
} task_hdr_t;

drv_task_t *drv_task_alloc(size_t extra, char **extrap) {
        size_t size = sizeof(task_hdr_t) + sizeof(drv_task_t) + extra;
        task_hdr_t *h = malloc(size);
        drv_task_t *t;

        if (!h)
                return NULL;
        h->size = size;
        t = (drv_task_t *)(h + 1);
        memset(t, 0, sizeof(*t));
        if (extrap)
                *extrap = (char *)(t + 1);
        return t;
}

drv_task_t *drv_task_new(void) {
        return drv_task_alloc(0, NULL);
}

/* 1 if p points into the task's own block (not separately allocated). */
static int inside(const drv_task_t *t, const void *p) {
        const task_hdr_t *h = (const task_hdr_t *)t - 1;
        const char *b = (const char *)h, *c = p;

        return c >= b && c < b + h->size;
}

static void free_outside(const drv_task_t *t, void *p) {
        if (p && !inside(t, p))
                free(p);
}

void drv_task_destroy(drv_task_t *task) {
        size_t i;

        if (!task)
                return;
        free_outside(task, task->task_id);
        free_outside(task, task->entity_ref);
        free_outside(task, task->dataset);
        free_outside(task, task->requested_by);
        free_outside(task, task->replay_of);
        for (i = 0; i < task->params_cnt; i++) {
                free_outside(task, task->params[i].key);
                free_outside(task, task->params[i].value);
        }
        free_outside(task, task->params);
        free((task_hdr_t *)task - 1);
}

/* Capacity of a separately allocated params array holding cnt params. */
static size_t params_cap(size_t cnt) {
        size_t c = 4;

        while (c < cnt)
                c <<= 1;
        return cnt ? c : 0;
}

int drv_task_add_param(drv_task_t *task, const char *key, const char *value) {
        size_t cnt = task->params_cnt, cap = params_cap(cnt + 1);
        drv_param_t *p = task->params;
        char *k, *v;

        if (p && inside(task, p)) { /* the decoded array is exactly full */
                if (!(p = malloc(cap * sizeof(*p))))
                        return -1;
                memcpy(p, task->params, cnt * sizeof(*p));
                task->params = p;
        } else if (cnt == params_cap(cnt)) {
                if (!(p = realloc(task->params, cap * sizeof(*p))))
                        return -1;
                task->params = p;
        }
        k = strdup(key);
        v = strdup(value);
        if (!k || !v) {
                free(k);
                free(v);
                return -1;
        }
        task->params[cnt].key = k;
        task->params[cnt].value = v;
        task->params_cnt++;
        return 0;
}

const char *drv_task_param(const drv_task_t *task, const char *key) {
        size_t i;

        for (i = 0; i < task->params_cnt; i++)
                if (!strcmp(task->params[i].key, key))
                        return task->params[i].value;
        return NULL;
}

/* json_string(), or json null for NULL. */
static json_t *str_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

char *drv_task_to_json(const drv_task_t *task) {
        json_t *o = json_object(), *params = json_object();
        char *out;
        size_t i;

        if (!o || !params) {
                json_decref(o);
                json_decref(params);
                return NULL;
        }
        for (i = 0; i < task->params_cnt; i++)
                json_object_set_new(params, task->params[i].key,
                                    json_string(task->params[i].value));
        json_object_set_new(o, "task_id", str_or_null(task->task_id));
        json_object_set_new(o, "entity_ref", str_or_null(task->entity_ref));
        json_object_set_new(o, "dataset", str_or_null(task->dataset));
        json_object_set_new(o, "requested_at",
                            json_integer(task->requested_at));
        json_object_set_new(o, "requested_by", str_or_null(task->requested_by));
        json_object_set_new(o, "dry_run", json_boolean(task->dry_run));
        json_object_set_new(o, "params", params);
        json_object_set_new(o, "priority", json_integer(task->priority));
        json_object_set_new(o, "replay_of", str_or_null(task->replay_of));
        json_object_set_new(o, "writer_version",
                            json_integer(task->writer_version));
        out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        return out;
}
