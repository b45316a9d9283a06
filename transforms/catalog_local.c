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

/* FNV-1a, 64 bits: the index's hash and the directory signature. */
static uint64_t fnv(uint64_t h, const void *data, size_t len) {
        const unsigned char *p = data;
        size_t i;

        for (i = 0; i < len; i++)
                h = (h ^ p[i]) * 0x100000001b3ULL;
        return h;
}
#define FNV_SEED 0xcbf29ce484222325ULL

static size_t slot_of(const drv_cindex_t *idx, const char *ref) {
        size_t mask = idx->nslots - 1,
               h = (size_t)fnv(FNV_SEED, ref, strlen(ref)) & mask;

        while (idx->slots[h] && strcmp(idx->v[idx->slots[h] - 1].ref, ref))
                h = (h + 1) & mask;
        return h;
}

/* Rebuild the hash table with at least 2 * want slots (0 on success). */
static int rehash(drv_cindex_t *idx, size_t want) {
        size_t n = 16, i;
        uint32_t *slots;

        while (n < 2 * want)
                n *= 2;
        if (want > UINT32_MAX / 4 || !(slots = calloc(n, sizeof(*slots))))
                return -1;
        free(idx->slots);
        idx->slots = slots;
        idx->nslots = n;
        for (i = 0; i < idx->cnt; i++)
                idx->slots[slot_of(idx, idx->v[i].ref)] = (uint32_t)i + 1;
        return 0;
}

drv_centry_t *drv_cindex_find(drv_cindex_t *idx, const char *ref) {
        size_t h;

        if (!idx->nslots) { /* empty, or a failed rehash (out of memory) */
                for (h = 0; h < idx->cnt; h++)
                        if (!strcmp(idx->v[h].ref, ref))
                                return &idx->v[h];
                return NULL;
        }
        h = slot_of(idx, ref);
        return idx->slots[h] ? &idx->v[idx->slots[h] - 1] : NULL;
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
        if (2 * (idx->cnt + 1) > idx->nslots && rehash(idx, idx->cnt + 1))
                return NULL;
        e = &idx->v[idx->cnt++];
        memset(e, 0, sizeof(*e));
        snprintf(e->ref, sizeof(e->ref), "%s", ref);
        idx->slots[slot_of(idx, e->ref)] = (uint32_t)idx->cnt;
        return e;
}

static void centry_clear(drv_centry_t *e) {
        drv_plan_release(e->plan);
        free(e->errmsg);
        e->plan = NULL;
        e->errmsg = NULL;
}

/* Rare (a Backstage 404 after a hit): the table is simply rebuilt. */
void drv_cindex_remove(drv_cindex_t *idx, drv_centry_t *e) {
        centry_clear(e);
        *e = idx->v[--idx->cnt];
        if (rehash(idx, idx->cnt)) { /* no memory: fall back to no table */
                free(idx->slots);
                idx->slots = NULL;
                idx->nslots = 0;
        }
}

void drv_cindex_free(drv_cindex_t *idx) {
        size_t i;

        if (!idx)
                return;
        for (i = 0; i < idx->cnt; i++)
                centry_clear(&idx->v[i]);
        free(idx->v);
        free(idx->slots);
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

/* Fold what identifies a file's content into the signature. */
static uint64_t sig_file(uint64_t sig, const char *path,
                         const struct stat *st) {
        int64_t v[7] = {(int64_t)st->st_dev,  (int64_t)st->st_ino,
                        (int64_t)st->st_size, st->st_mtim.tv_sec,
                        st->st_mtim.tv_nsec,  st->st_ctim.tv_sec,
                        st->st_ctim.tv_nsec};

        sig = fnv(sig, path, strlen(path) + 1);
        return fnv(sig, v, sizeof(v));
}

/* Walk dir: every YAML file is folded into *sig and, with idx, parsed.
 * The stat comes before the read, so a file changed while it is parsed
 * shows as changed at the next check. */
static void scan_dir(drv_cindex_t *idx, uint64_t *sig, const char *dir,
                     int depth) {
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
                        scan_dir(idx, sig, path, depth + 1);
                else if (S_ISREG(st.st_mode) && has_yaml_ext(names[i])) {
                        *sig = sig_file(*sig, path, &st);
                        if (idx)
                                index_file(idx, path);
                }
                free(names[i]);
        }
        free(names);
}

static drv_err_t check_dir(const char *dir, char *errstr, size_t errstr_size) {
        struct stat st;

        errno = 0;
        if (stat(dir, &st) || !S_ISDIR(st.st_mode))
                return drv_err_set(errstr, errstr_size, DRV_ERR_CONFIG,
                                   "catalog directory \"%s\": %s", dir,
                                   errno ? strerror(errno) : "not a directory");
        return DRV_OK;
}

drv_err_t drv_catalog_scan(const char *dir, drv_cindex_t *idx, char *errstr,
                           size_t errstr_size) {
        drv_err_t err;

        memset(idx, 0, sizeof(*idx));
        if ((err = check_dir(dir, errstr, errstr_size)))
                return err;
        idx->sig = FNV_SEED;
        scan_dir(idx, &idx->sig, dir, 0);
        return DRV_OK;
}

drv_err_t drv_catalog_sig(const char *dir, uint64_t *sig, char *errstr,
                          size_t errstr_size) {
        drv_err_t err;

        *sig = FNV_SEED;
        if ((err = check_dir(dir, errstr, errstr_size)))
                return err;
        scan_dir(NULL, sig, dir, 0);
        return DRV_OK;
}
