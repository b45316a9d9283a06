/*
 * drover - transforms/catalog_local.c: the local catalog, a directory of
 * catalog-info.yaml files (the default, DESIGN.md section 1).
 *
 * Every *.yaml / *.yml below the directory is parsed (several documents
 * per file); each migration-plan entity becomes an index entry keyed by
 * its ref.  A plan that does not validate becomes an error entry, so a
 * task naming it is dead-lettered as invalid_plan with the file and line,
 * not as unknown_plan.  A ref defined twice is an error entry too.
 */
#include "plan_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SCAN_MAX_DEPTH 16

drv_centry_t *drv_cindex_find(drv_cindex_t *idx, const char *ref) {
        size_t i;

        for (i = 0; i < idx->cnt; i++)
                if (!strcmp(idx->v[i].ref, ref))
                        return &idx->v[i];
        return NULL;
}

drv_centry_t *drv_cindex_add(drv_cindex_t *idx, const char *ref) {
        drv_centry_t *e;

        if (idx->cnt == idx->cap) {
                size_t cap = idx->cap ? idx->cap * 2 : 16;
                drv_centry_t *v = realloc(idx->v, cap * sizeof(*v));
                if (!v)
                        return NULL;
                idx->v = v;
                idx->cap = cap;
        }
        e = &idx->v[idx->cnt++];
        memset(e, 0, sizeof(*e));
        snprintf(e->ref, sizeof(e->ref), "%s", ref);
        return e;
}

static void centry_clear(drv_centry_t *e) {
        drv_plan_release(e->plan);
        free(e->errmsg);
        e->plan = NULL;
        e->errmsg = NULL;
}

void drv_cindex_remove(drv_cindex_t *idx, drv_centry_t *e) {
        centry_clear(e);
        *e = idx->v[--idx->cnt];
}

void drv_cindex_free(drv_cindex_t *idx) {
        size_t i;

        if (!idx)
                return;
        for (i = 0; i < idx->cnt; i++)
                centry_clear(&idx->v[i]);
        free(idx->v);
        free(idx->first_bad);
        memset(idx, 0, sizeof(*idx));
}

static void note_bad_file(drv_cindex_t *idx, const char *msg) {
        idx->bad_files++;
        if (!idx->first_bad)
                idx->first_bad = strdup(msg);
        drv_log(DRV_LOG_DEBUG, "catalog: %s", msg);
}

/* Ref of a plan entity without building it ("" when not derivable). */
static void entity_ref(const json_t *entity, char *out, size_t out_size) {
        const json_t *md = json_object_get(entity, "metadata");
        const char *name = json_string_value(json_object_get(md, "name"));
        const char *ns = json_string_value(json_object_get(md, "namespace"));
        char ref[400];
        drv_entity_ref_t er;

        out[0] = '\0';
        if (!name)
                return;
        snprintf(ref, sizeof(ref), "component:%.60s/%.300s",
                 ns ? ns : "default", name);
        if (!drv_entity_ref_parse(ref, &er, NULL, 0))
                drv_entity_ref_format(&er, out, out_size);
}

/* Add one document's plan (or its error) to the index. */
static void index_doc(drv_cindex_t *idx, const char *path,
                      const drv_ystream_t *ys, const drv_ydoc_t *doc) {
        char ref[400], errstr[512];
        drv_plan_t *plan = NULL;
        drv_centry_t *e;
        drv_err_t err;

        if (!drv_entity_is_plan(doc->root))
                return;
        entity_ref(doc->root, ref, sizeof(ref));
        err = drv_plan_build(doc->root, path, ys->lines, doc->line, &plan,
                             errstr, sizeof(errstr));
        if (!*ref) {
                note_bad_file(idx, err ? errstr : "plan without a name");
                drv_plan_release(plan);
                return;
        }
        if ((e = drv_cindex_find(idx, ref))) {
                snprintf(errstr, sizeof(errstr),
                         "%s:%d: duplicate entity ref %s (also at %s:%d)", path,
                         doc->line, ref,
                         e->plan ? e->plan->source : "another file",
                         e->plan ? e->plan->line : 0);
                centry_clear(e);
                drv_plan_release(plan);
                plan = NULL;
                err = DRV_ERR_INVALID_PLAN;
        } else if (!(e = drv_cindex_add(idx, ref))) {
                drv_plan_release(plan);
                return;
        }
        e->plan = err ? NULL : plan;
        e->err = err;
        e->errmsg = err ? strdup(errstr) : NULL;
}

static void index_file(drv_cindex_t *idx, const char *path) {
        char errstr[512], *buf = NULL;
        drv_ystream_t ys;
        size_t i, len = 0;
        FILE *fp = fopen(path, "rb");

        if (fp) {
                struct stat st;
                if (!fstat(fileno(fp), &st) && st.st_size <= 4 << 20 &&
                    (buf = malloc((size_t)st.st_size + 1)))
                        len = fread(buf, 1, (size_t)st.st_size, fp);
                fclose(fp);
        }
        if (!buf) {
                snprintf(errstr, sizeof(errstr), "cannot read \"%s\"", path);
                note_bad_file(idx, errstr);
                return;
        }
        if (drv_yaml_parse(buf, len, path, &ys, errstr, sizeof(errstr))) {
                note_bad_file(idx, errstr);
                free(buf);
                return;
        }
        for (i = 0; i < ys.docs_cnt; i++)
                index_doc(idx, path, &ys, &ys.docs[i]);
        drv_ystream_free(&ys);
        free(buf);
}

static int has_yaml_ext(const char *name) {
        size_t n = strlen(name);
        return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
               (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir, sorted (deterministic: the first duplicate wins the
 * "also at" message the same way every time). */
static char **list_dir(const char *dir, size_t *cntp) {
        DIR *d = opendir(dir);
        struct dirent *de;
        char **names = NULL, **n2;
        size_t cnt = 0;

        if (!d)
                return NULL;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !strcmp(de->d_name, "node_modules"))
                        continue;
                if (!(n2 = realloc(names, (cnt + 1) * sizeof(*names))))
                        break;
                names = n2;
                if ((names[cnt] = strdup(de->d_name)))
                        cnt++;
        }
        closedir(d);
        if (names)
                qsort(names, cnt, sizeof(*names), cmp_names);
        *cntp = cnt;
        return names ? names : calloc(1, sizeof(*names));
}

static void scan_dir(drv_cindex_t *idx, const char *dir, int depth) {
        char **names, path[4096];
        size_t cnt = 0, i;
        struct stat st;

        if (depth > SCAN_MAX_DEPTH || !(names = list_dir(dir, &cnt)))
                return;
        for (i = 0; i < cnt; i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                if (stat(path, &st) != 0)
                        ; /* vanished while we looked: skip */
                else if (S_ISDIR(st.st_mode))
                        scan_dir(idx, path, depth + 1);
                else if (S_ISREG(st.st_mode) && has_yaml_ext(names[i]))
                        index_file(idx, path);
                free(names[i]);
        }
        free(names);
}

drv_err_t drv_catalog_scan(const char *dir, drv_cindex_t *idx, char *errstr,
                           size_t errstr_size) {
        struct stat st;

        memset(idx, 0, sizeof(*idx));
        errno = 0;
        if (stat(dir, &st) || !S_ISDIR(st.st_mode))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "catalog directory \"%s\": %s", dir,
                                   errno ? strerror(errno) : "not a directory");
        scan_dir(idx, dir, 0);
        return DRV_OK;
}
