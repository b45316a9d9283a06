/*
 * drover - schema/task.c: the decoded task record.
 */
#include "schema.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

drv_task_t *drv_task_new(void) {
        return calloc(1, sizeof(drv_task_t));
}

void drv_task_destroy(drv_task_t *task) {
        size_t i;

        if (!task)
                return;
        free(task->task_id);
        free(task->entity_ref);
        free(task->dataset);
        free(task->requested_by);
        free(task->replay_of);
        for (i = 0; i < task->params_cnt; i++) {
                free(task->params[i].key);
                free(task->params[i].value);
        }
        free(task->params);
        free(task);
}

int drv_task_add_param(drv_task_t *task, const char *key, const char *value) {
        drv_param_t *p;
        char *k, *v;

        if ((task->params_cnt & (task->params_cnt - 1)) == 0) {
                size_t cap = task->params_cnt ? task->params_cnt * 2 : 4;
                if (task->params_cnt && task->params_cnt < 4)
                        cap = 4;
                p = realloc(task->params, cap * sizeof(*p));
                if (!p)
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
        task->params[task->params_cnt].key = k;
        task->params[task->params_cnt].value = v;
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
