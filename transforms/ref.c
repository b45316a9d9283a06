/*
 * drover - transforms/ref.c: Backstage entity refs.
 *
 * Backstage's parseEntityRef: "[<kind>:][<namespace>/]<name>", where the
 * first ':' ends the kind unless a '/' comes before it, and the first '/'
 * ends the namespace.  Missing parts take the defaults (kind "component",
 * namespace "default"); an empty part is an error.  Refs compare
 * case-insensitively, so they are stored lower-case.  We also check each
 * part against Backstage's name rules (letters, digits, '-', '_', '.';
 * kinds letters and digits), which keeps refs safe in a URL path.
 */
#include "transforms.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Copy part [s, s+len) lower-cased into out; 0 or -1 (bad char / long). */
static int ref_part(const char *s, size_t len, char *out, size_t out_size,
                    int is_kind) {
        size_t i;

        if (len == 0 || len >= out_size)
                return -1;
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                int ok = isalnum(c) ||
                         (!is_kind && (c == '-' || c == '_' || c == '.'));
                if (!ok)
                        return -1;
                out[i] = (char)tolower(c);
        }
        out[len] = '\0';
        return 0;
}

drv_err_t drv_entity_ref_parse(const char *ref, drv_entity_ref_t *out,
                               char *errstr, size_t errstr_size) {
        const char *colon, *slash, *name;
        int rc = 0;

        if (!ref || !*ref)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                                   "empty entity ref");
        colon = strchr(ref, ':');
        slash = strchr(ref, '/');
        if (slash && colon && slash < colon)
                colon = NULL;
        strcpy(out->kind, "component");
        strcpy(out->namespace_, "default");
        if (colon)
                rc |= ref_part(ref, (size_t)(colon - ref), out->kind,
                               sizeof(out->kind), 1);
        if (slash) {
                const char *ns = colon ? colon + 1 : ref;
                rc |= ref_part(ns, (size_t)(slash - ns), out->namespace_,
                               sizeof(out->namespace_), 0);
        }
        name = slash ? slash + 1 : colon ? colon + 1 : ref;
        rc |= ref_part(name, strlen(name), out->name, sizeof(out->name), 0);
        if (rc)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_PLAN,
                                   "entity ref \"%.200s\" is not of the form "
                                   "[kind:][namespace/]name",
                                   ref);
        return DRV_OK;
}

void drv_entity_ref_format(const drv_entity_ref_t *ref, char *out,
                           size_t out_size) {
        snprintf(out, out_size, "%s:%s/%s", ref->kind, ref->namespace_,
                 ref->name);
}
