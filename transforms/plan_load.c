/*
 * drover - transforms/plan_load.c: plans from YAML files, step getters,
 * the plan as JSON.
 */
#include "plan_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PLAN_FILE_MAX (4 * 1024 * 1024)

drv_err_t drv_plan_load_buf(const char *buf, size_t len, const char *source,
                            drv_plan_t ***plansp, size_t *cntp, char *errstr,
                            size_t errstr_size) {
        drv_ystream_t ys;
        drv_plan_t **plans, *plan;
        size_t i, cnt = 0;
        drv_err_t err;

        *plansp = NULL;
        *cntp = 0;
        if ((err = drv_yaml_parse(buf, len, source, &ys, errstr, errstr_size)))
                return err;
        if (!(plans = calloc(ys.docs_cnt + 1, sizeof(*plans)))) {
                drv_ystream_free(&ys);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        for (i = 0; i < ys.docs_cnt; i++) {
                const json_t *root = ys.docs[i].root;
                if (json_is_null(root) || !drv_entity_is_plan(root))
                        continue;
                err = drv_plan_build(root, source, ys.lines, ys.docs[i].line,
                                     &plan, errstr, errstr_size);
                if (err) {
                        drv_plan_array_free(plans, cnt);
                        drv_ystream_free(&ys);
                        return err;
                }
                plans[cnt++] = plan;
        }
        drv_ystream_free(&ys);
        *plansp = plans;
        *cntp = cnt;
        return DRV_OK;
}

/* Read a whole (regular, bounded) file; malloc'ed, caller frees. */
static drv_err_t read_file(const char *path, char **bufp, size_t *lenp,
                           char *errstr, size_t errstr_size) {
        FILE *fp = fopen(path, "rb");
        struct stat st;
        char *buf;

        if (!fp)
                return drv_err_set(errstr, errstr_size, DRV_ERR_IO,
                                   "cannot open \"%s\": %s", path,
                                   strerror(errno));
        if (fstat(fileno(fp), &st) || !S_ISREG(st.st_mode) ||
            st.st_size > PLAN_FILE_MAX) {
                fclose(fp);
                return drv_err_set(errstr, errstr_size, DRV_ERR_IO,
                                   "cannot read \"%s\": not a regular file "
                                   "of at most 4 MiB",
                                   path);
        }
        if (!(buf = malloc((size_t)st.st_size + 1))) {
                fclose(fp);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        *lenp = fread(buf, 1, (size_t)st.st_size, fp);
        buf[*lenp] = '\0';
        if (ferror(fp)) {
                fclose(fp);
                free(buf);
                return drv_err_set(errstr, errstr_size, DRV_ERR_IO,
                                   "cannot read \"%s\": %s", path,
                                   strerror(errno));
        }
        fclose(fp);
        *bufp = buf;
        return DRV_OK;
}

drv_err_t drv_plan_load_file(const char *path, drv_plan_t ***plansp,
                             size_t *cntp, char *errstr, size_t errstr_size) {
        char *buf = NULL;
        size_t len = 0;
        drv_err_t err;

        *plansp = NULL;
        *cntp = 0;
        if ((err = read_file(path, &buf, &len, errstr, errstr_size)))
                return err;
        err = drv_plan_load_buf(buf, len, path, plansp, cntp, errstr,
                                errstr_size);
        free(buf);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * Step getters
 * ------------------------------------------------------------------------
 */
const json_t *drv_step_get(const drv_step_t *step, const char *key) {
        return step ? json_object_get(step->def, key) : NULL;
}

const char *drv_step_str(const drv_step_t *step, const char *key,
                         const char *dflt) {
        const char *s = json_string_value(drv_step_get(step, key));
        return s ? s : dflt;
}

long long drv_step_int(const drv_step_t *step, const char *key,
                       long long dflt) {
        const json_t *v = drv_step_get(step, key);
        return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

int drv_step_bool(const drv_step_t *step, const char *key, int dflt) {
        const json_t *v = drv_step_get(step, key);
        return json_is_boolean(v) ? json_is_true(v) : dflt;
}

long long drv_step_batch_size(const drv_step_t *step) {
        return drv_step_int(step, "batch_size", 1000);
}

const char *drv_step_key(const drv_step_t *step) {
        return drv_step_str(step, "key", "id");
}

int drv_step_scalar_text(const json_t *value, char *out, size_t out_size) {
        switch (json_typeof(value)) {
        case JSON_STRING:
                snprintf(out, out_size, "%s", json_string_value(value));
                return 0;
        case JSON_INTEGER:
                snprintf(out, out_size, "%lld",
                         (long long)json_integer_value(value));
                return 0;
        case JSON_REAL:
                snprintf(out, out_size, "%.17g", json_real_value(value));
                return 0;
        case JSON_TRUE:
        case JSON_FALSE:
                snprintf(out, out_size, "%s",
                         json_is_true(value) ? "true" : "false");
                return 0;
        default:
                return -1;
        }
}

/*
 * ------------------------------------------------------------------------
 * The plan as JSON
 * ------------------------------------------------------------------------
 */
json_t *drv_plan_to_json(const drv_plan_t *plan) {
        json_t *steps = json_array(), *out;
        size_t i;

        for (i = 0; steps && i < plan->steps_cnt; i++) {
                const drv_step_t *st = &plan->steps[i];
                json_array_append_new(
                    steps, json_pack("{s:i, s:s, s:s, s:i, s:O}", "index",
                                     st->index, "op", drv_op_name(st->op),
                                     "fingerprint", st->fingerprint, "line",
                                     st->line, "def", st->def));
        }
        out = json_pack(
            "{s:s, s:s, s:i, s:i, s:s, s:b, s:O?, s:s?, s:s?, s:o}", "ref",
            plan->ref, "dataset", plan->dataset, "from", plan->from_version,
            "to", plan->to_version, "fingerprint", plan->fingerprint,
            "requires_staging", plan->requires_staging, "throttle",
            json_object_get(json_object_get(plan->entity, "spec"), "throttle"),
            "etag", plan->etag, "source", plan->source, "steps", steps);
        return out;
}
