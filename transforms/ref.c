/*
 * drover - transforms/ref.c: Backstage entity refs.
 *
 * Backstage's parseEntityRef: "[<kind>:][<namespace>/]<name>", where the
 * first ':' ends the kind unless a '/' comes before it, and the first '/'
 * ends the namespace.  Missing parts take the defaults (kind "component",
 * namespace "default"); an empty part is an error.  Refs compare
 * case-insensitively, so they are stored lower-case.  Each part is
 * checked against the rules of Backstage's default validators
 * (catalog-model makeValidator): a kind is [a-zA-Z][a-zA-Z0-9]*, a
 * namespace or name [a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*, each 1 to 63
 * characters.  That keeps refs safe in a URL path: "component:../.." is
 * refused here, never sent to the catalog.
 *
 * The submission checks of drover's own edges (`drover submit`,
 * POST /api/tasks) live here too, the lowest module both reach:
 * drv_task_fields_check.
 */
#include "transforms.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define REF_PART_MAX 63 /* Backstage: every part at most 63 characters */

/* Backstage's makeValidator defaults: a kind is a letter then letters and
 * digits; a namespace or name is runs of letters and digits joined by
 * single '-', '_' or '.'.  NULL if [s, s+len) follows them, else the rule
 * it breaks. */
static const char *ref_part_rule(const char *s, size_t len, int is_kind) {
        size_t i;

        if (len == 0)
                return "must not be empty";
        if (len > REF_PART_MAX)
                return "must be at most 63 characters";
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                int sep = c == '-' || c == '_' || c == '.';
                if (isalnum(c) && c < 0x80)
                        continue;
                if (is_kind || !sep)
                        return is_kind ? "must be letters and digits"
                                       : "must be letters, digits and "
                                         "single '-', '_' or '.' between "
                                         "them";
                if (i == 0 || i == len - 1)
                        return "must start and end with a letter or digit";
                if (s[i + 1] == '-' || s[i + 1] == '_' || s[i + 1] == '.')
                        return "must not hold two separators in a row";
        }
        if (is_kind && !isalpha((unsigned char)s[0]))
                return "must start with a letter";
        return NULL;
}

/* Check part [s, s+len) and copy it lower-cased into out; 0, or -1 with
 * errstr naming the part and the rule it breaks. */
static int ref_part(const char *ref, const char *what, const char *s,
                    size_t len, char *out, size_t out_size, int is_kind,
                    char *errstr, size_t errstr_size) {
        const char *rule = ref_part_rule(s, len, is_kind);
        size_t i;

        if (!rule && len >= out_size)
                rule = "is too long";
        if (rule) {
                drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                            "invalid entity ref \"%.200s\": the %s %s "
                            "(want [kind:][namespace/]name)",
                            ref, what, rule);
                return -1;
        }
        for (i = 0; i < len; i++)
                out[i] = (char)tolower((unsigned char)s[i]);
        out[len] = '\0';
        return 0;
}

drv_err_t drv_entity_ref_parse(const char *ref, drv_entity_ref_t *out,
                               char *errstr, size_t errstr_size) {
        const char *colon, *slash, *name;

        if (!ref || !*ref)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                                   "empty entity ref");
        colon = strchr(ref, ':');
        slash = strchr(ref, '/');
        if (slash && colon && slash < colon)
                colon = NULL;
        strcpy(out->kind, "component");
        strcpy(out->namespace_, "default");
        if (colon &&
            ref_part(ref, "kind", ref, (size_t)(colon - ref), out->kind,
                     sizeof(out->kind), 1, errstr, errstr_size))
                return DRV_ERR_UNKNOWN_PLAN;
        if (slash) {
                const char *ns = colon ? colon + 1 : ref;
                if (ref_part(ref, "namespace", ns, (size_t)(slash - ns),
                             out->namespace_, sizeof(out->namespace_), 0,
                             errstr, errstr_size))
                        return DRV_ERR_UNKNOWN_PLAN;
        }
        name = slash ? slash + 1 : colon ? colon + 1 : ref;
        if (ref_part(ref, "name", name, strlen(name), out->name,
                     sizeof(out->name), 0, errstr, errstr_size))
                return DRV_ERR_UNKNOWN_PLAN;
        return DRV_OK;
}

void drv_entity_ref_format(const drv_entity_ref_t *ref, char *out,
                           size_t out_size) {
        snprintf(out, out_size, "%s:%s/%s", ref->kind, ref->namespace_,
                 ref->name);
}

/*
 * ------------------------------------------------------------------------
 * Submission checks
 * ------------------------------------------------------------------------
 */
int drv_dataset_valid(const char *dataset) {
        size_t i, n = dataset ? strlen(dataset) : 0;

        if (n == 0 || n > DRV_DATASET_MAX)
                return 0;
        for (i = 0; i < n; i++)
                if (!isalnum((unsigned char)dataset[i]) &&
                    !strchr("._-", dataset[i]))
                        return 0;
        return 1;
}

int drv_uuid_valid(const char *s) {
        size_t i;

        if (!s || strlen(s) != 36)
                return 0;
        for (i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return 0;
                } else if (!isxdigit((unsigned char)s[i])) {
                        return 0;
                }
        }
        return 1;
}

drv_err_t drv_task_fields_check(const char *task_id, const char *entity_ref,
                                const char *dataset, char *errstr,
                                size_t errstr_size) {
        drv_entity_ref_t er;

        if (task_id && !drv_uuid_valid(task_id))
                return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                                   "invalid task id \"%.64s\": want a uuid "
                                   "(8-4-4-4-12 hex digits)",
                                   task_id);
        if (drv_entity_ref_parse(entity_ref, &er, errstr, errstr_size))
                return DRV_ERR_INVALID_PARAM;
        if (dataset)
                return drv_dataset_check(dataset, errstr, errstr_size);
        return DRV_OK;
}

drv_err_t drv_dataset_check(const char *dataset, char *errstr,
                            size_t errstr_size) {
        if (dataset && drv_dataset_valid(dataset))
                return DRV_OK;
        return drv_err_set(errstr, errstr_size, DRV_ERR_INVALID_PARAM,
                           "invalid dataset \"%.210s\": want 1 to %d "
                           "letters, digits, '.', '_' or '-'",
                           dataset ? dataset : "", DRV_DATASET_MAX);
}
