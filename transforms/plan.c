/*
 * drover - transforms/plan.c: the plan model.
 *
 * A plan is built from a Backstage entity (JSON, from the REST API or from
 * YAML with line numbers), validated as a whole before anything else sees
 * it, then frozen: the entity is deep-copied into the plan, the steps
 * point into that copy, and fingerprints (sha256 of the canonical JSON:
 * sorted keys, compact) are computed once.  Plans are shared across
 * threads, so the reference count is atomic and nothing else changes.
 */
#include "plan_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PLAN_MAX_STEPS 1000

/* sha256 of the canonical JSON of `node`; -1 on out of memory. */
static int canon_fingerprint(const json_t *node, char out[65]) {
        char *text =
            json_dumps(node, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
                return -1;
        drv_sha256_hex(text, strlen(text), out);
        free(text);
        return 0;
}

int drv_entity_is_plan(const json_t *entity) {
        const char *kind = json_string_value(json_object_get(entity, "kind"));
        const char *type = json_string_value(
            json_object_get(json_object_get(entity, "spec"), "type"));

        return kind && type && !strcasecmp(kind, "component") &&
               !strcmp(type, "migration-plan");
}

/* The entity's ref from kind, metadata.namespace and metadata.name. */
static drv_err_t plan_ref(const drv_vctx_t *vc, const json_t *entity, char *out,
                          size_t out_size) {
        const json_t *md = json_object_get(entity, "metadata");
        const char *name = json_string_value(json_object_get(md, "name"));
        const char *ns = json_string_value(json_object_get(md, "namespace"));
        char ref[400];
        drv_entity_ref_t er;

        if (!json_is_object(md) || !name)
                return drv_vfail(vc, md ? md : entity,
                                 "entity needs metadata.name");
        snprintf(ref, sizeof(ref), "component:%.60s/%.300s",
                 ns ? ns : "default", name);
        if (drv_entity_ref_parse(ref, &er, NULL, 0))
                return drv_vfail(vc, json_object_get(md, "name"),
                                 "invalid metadata.name / namespace "
                                 "\"%.200s\"",
                                 ref);
        drv_entity_ref_format(&er, out, out_size);
        return DRV_OK;
}

#define PLAN_QUEUE_ANNOTATION "drover.io/queue"

static const json_t *queue_annotation(const json_t *entity) {
        return json_object_get(
            json_object_get(json_object_get(entity, "metadata"), "annotations"),
            PLAN_QUEUE_ANNOTATION);
}

const char *drv_plan_queue(const drv_plan_t *plan) {
        return json_string_value(queue_annotation(plan->entity));
}

drv_err_t drv_plan_queue_check(const drv_plan_t *plan, const char *queue,
                               char *errstr, size_t errstr_size) {
        const char *want = drv_plan_queue(plan);

        if (!want || (queue && !strcmp(want, queue)))
                return DRV_OK;
        return drv_err_set(errstr, errstr_size, DRV_ERR_WRONG_QUEUE,
                           "plan \"%.200s\" is for queue \"%.100s\" "
                           "(annotation " PLAN_QUEUE_ANNOTATION
                           "), not \"%.100s\"",
                           plan->ref, want, queue ? queue : "");
}

/* spec.requiresStaging: a production run needs a completed staging run
 * of the same fingerprint first (docs/plans.md, "Staging"). */
#define PLAN_STAGING_KEY "requiresStaging"
/* spec.throttle: when batched steps wait (docs/plans.md, "Throttling") */
#define PLAN_THROTTLE_KEY "throttle"

/* The plan's fingerprint: sha256 of the canonical spec without
 * requiresStaging and throttle.  The flag says where the plan must have
 * run first, not what it does: setting it on a plan that already ran (on
 * staging or in production) must not make its done steps another plan's
 * (docs/decisions.md, "Staging gate"); the throttle says how fast, and an
 * operator loosening it mid-run must not restart the plan's steps.  -1
 * on out of memory. */
static int plan_fingerprint(const json_t *spec, char out[65]) {
        json_t *copy = json_copy((json_t *)spec); /* shallow: keys only */
        int rc;

        if (!copy)
                return -1;
        json_object_del(copy, PLAN_STAGING_KEY);
        json_object_del(copy, PLAN_THROTTLE_KEY);
        rc = canon_fingerprint(copy, out);
        json_decref(copy);
        return rc;
}

/* kind, spec.type, dataset, versions, staging flag, throttle, steps
 * list. */
static drv_err_t plan_header(const drv_vctx_t *vc, const json_t *entity,
                             const json_t **stepsp) {
        const json_t *spec = json_object_get(entity, "spec"), *sv, *from, *to;
        const json_t *steps, *ds, *queue, *staging;

        if (!json_is_object(entity))
                return drv_vfail(vc, entity, "entity must be a mapping");
        if (!drv_entity_is_plan(entity))
                return drv_vfail(vc, spec ? spec : entity,
                                 "not a migration plan (kind Component with "
                                 "spec.type migration-plan)");
        queue = queue_annotation(entity);
        if (queue && (!json_is_string(queue) || !*json_string_value(queue)))
                return drv_vfail(vc, queue,
                                 "annotation " PLAN_QUEUE_ANNOTATION
                                 " must be a topic name");
        ds = json_object_get(spec, "dataset");
        if (!drv_dataset_valid(json_string_value(ds)))
                return drv_vfail(vc, ds ? ds : spec,
                                 "spec.dataset must be a name of letters, "
                                 "digits, '.', '_' or '-'");
        sv = json_object_get(spec, "schemaVersion");
        from = json_object_get(sv, "from");
        to = json_object_get(sv, "to");
        if (!json_is_integer(from) || !json_is_integer(to) ||
            json_integer_value(from) < 0 || json_integer_value(to) > 2147483647)
                return drv_vfail(vc, sv ? sv : spec,
                                 "spec.schemaVersion needs integers from "
                                 "and to");
        if (json_integer_value(from) >= json_integer_value(to))
                return drv_vfail(vc, sv,
                                 "spec.schemaVersion: from (%lld) must be "
                                 "less than to (%lld)",
                                 (long long)json_integer_value(from),
                                 (long long)json_integer_value(to));
        staging = json_object_get(spec, PLAN_STAGING_KEY);
        if (staging && !json_is_boolean(staging))
                /* null is a singleton without a line: point at spec */
                return drv_vfail(vc, json_is_null(staging) ? spec : staging,
                                 "spec." PLAN_STAGING_KEY
                                 " must be true or false");
        if (drv_throttle_from_json(vc, spec, NULL))
                return DRV_ERR_INVALID_PLAN;
        steps = json_object_get(spec, "steps");
        if (!json_is_array(steps) || json_array_size(steps) == 0 ||
            json_array_size(steps) > PLAN_MAX_STEPS)
                return drv_vfail(vc, steps ? steps : spec,
                                 "spec.steps must be a list of 1 to %d steps",
                                 PLAN_MAX_STEPS);
        *stepsp = steps;
        return DRV_OK;
}

/* Header, every step, and no step twice (the ledger could not tell two
 * identical steps apart by fingerprint).  step_lines (may be NULL) gives
 * each step's fallback line. */
static drv_err_t plan_check(drv_vctx_t *vc, const json_t *entity,
                            const int *step_lines, int allow_sql) {
        const json_t *steps = NULL, *allow;
        size_t i, j;
        drv_op_t op;
        int base = vc->line;

        if (plan_header(vc, entity, &steps))
                return DRV_ERR_INVALID_PLAN;
        allow = json_object_get(json_object_get(entity, "spec"), "tables");
        if (drv_plan_tables_validate(vc, allow))
                return DRV_ERR_INVALID_PLAN;
        for (i = 0; i < json_array_size(steps); i++) {
                const json_t *step = json_array_get(steps, i);
                vc->line = step_lines ? step_lines[i] : base;
                if (drv_step_validate(vc, step, (int)i, &op, allow_sql) ||
                    drv_step_tables_check(vc, step, (int)i, op, allow))
                        return DRV_ERR_INVALID_PLAN;
                for (j = 0; j < i; j++)
                        if (json_equal(json_array_get(steps, j),
                                       (json_t *)step))
                                return drv_vfail(vc, step,
                                                 "step %zu repeats step %zu", i,
                                                 j);
        }
        vc->line = base;
        return DRV_OK;
}

static char *dup_or_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static void plan_free(drv_plan_t *plan) {
        free(plan->steps);
        free(plan->dataset);
        free(plan->etag);
        free(plan->source);
        free(plan->throttle.query);
        json_decref(plan->entity);
        free(plan);
}

/* Fill the frozen plan from its own copy of the entity. */
static int plan_fill(drv_plan_t *plan, const drv_linemap_t *lines,
                     const json_t *orig_steps, int doc_line) {
        json_t *spec = json_object_get(plan->entity, "spec");
        json_t *steps = json_object_get(spec, "steps");
        json_t *sv = json_object_get(spec, "schemaVersion");
        char ignore[256];
        drv_vctx_t vc = {plan->source, NULL, doc_line, ignore, sizeof(ignore)};
        size_t i;

        plan->dataset =
            strdup(json_string_value(json_object_get(spec, "dataset")));
        plan->from_version =
            (int)json_integer_value(json_object_get(sv, "from"));
        plan->to_version = (int)json_integer_value(json_object_get(sv, "to"));
        plan->requires_staging =
            json_is_true(json_object_get(spec, PLAN_STAGING_KEY));
        plan->etag = dup_or_null(json_string_value(json_object_get(
            json_object_get(plan->entity, "metadata"), "etag")));
        plan->steps_cnt = json_array_size(steps);
        plan->steps = calloc(plan->steps_cnt, sizeof(*plan->steps));
        if (!plan->dataset || !plan->steps ||
            drv_throttle_from_json(&vc, spec, &plan->throttle) ||
            plan_fingerprint(spec, plan->fingerprint))
                return -1;
        for (i = 0; i < plan->steps_cnt; i++) {
                drv_step_t *st = &plan->steps[i];
                st->index = (int)i;
                st->def = json_array_get(steps, i);
                st->op = drv_op_from_name(
                    json_string_value(json_object_get(st->def, "op")));
                st->line = drv_linemap_get(lines, json_array_get(orig_steps, i),
                                           doc_line);
                if (canon_fingerprint(st->def, st->fingerprint))
                        return -1;
        }
        return 0;
}

drv_err_t drv_plan_build(const json_t *entity, const char *source,
                         const drv_linemap_t *lines, int doc_line,
                         drv_plan_t **planp, char *errstr, size_t errstr_size) {
        drv_vctx_t vc = {source, lines, doc_line, errstr, errstr_size};
        drv_plan_t *plan;
        drv_err_t err;

        *planp = NULL;
        if ((err = plan_check(&vc, entity, NULL, 1)))
                return err;
        if (!(plan = calloc(1, sizeof(*plan))))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        plan->refcnt = 1;
        plan->line = doc_line;
        if ((err = plan_ref(&vc, entity, plan->ref, sizeof(plan->ref)))) {
                plan_free(plan);
                return err;
        }
        plan->entity = json_deep_copy(entity);
        plan->source = dup_or_null(source ? source : "plan");
        if (!plan->entity || !plan->source ||
            plan_fill(plan, lines,
                      json_object_get(json_object_get(entity, "spec"), "steps"),
                      doc_line)) {
                plan_free(plan);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        *planp = plan;
        return DRV_OK;
}

drv_err_t drv_plan_from_json(const json_t *entity, const char *source,
                             drv_plan_t **planp, char *errstr,
                             size_t errstr_size) {
        return drv_plan_build(entity, source, NULL, 0, planp, errstr,
                              errstr_size);
}

drv_err_t drv_plan_validate(const drv_plan_t *plan, int allow_sql, char *errstr,
                            size_t errstr_size) {
        drv_vctx_t vc = {plan->source, NULL, plan->line, errstr, errstr_size};
        int lines[PLAN_MAX_STEPS];
        size_t i;

        for (i = 0; i < plan->steps_cnt && i < PLAN_MAX_STEPS; i++)
                lines[i] = plan->steps[i].line;
        return plan_check(&vc, plan->entity, lines, allow_sql);
}

drv_plan_t *drv_plan_retain(drv_plan_t *plan) {
        if (plan)
                __atomic_add_fetch(&plan->refcnt, 1, __ATOMIC_RELAXED);
        return plan;
}

void drv_plan_release(drv_plan_t *plan) {
        if (plan && __atomic_sub_fetch(&plan->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
                plan_free(plan);
}

void drv_plan_array_free(drv_plan_t **plans, size_t cnt) {
        size_t i;

        for (i = 0; plans && i < cnt; i++)
                drv_plan_release(plans[i]);
        free(plans);
}
