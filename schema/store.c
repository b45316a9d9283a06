/*
 * drover - schema/store.c: the schema store and task decode/encode.
 *
 * Writer schemas come from the bundled .avsc files (looked up by
 * fingerprint, single-object encoding) or from a schema registry (looked
 * up by id, Confluent framing), and are compiled once into a `writer_t`:
 * avro-c's schema and generic class, plus a plan that maps each writer
 * field, by name, to a field of the task struct.  Reader fields the writer
 * lacks take the defaults written in the reader schema's JSON (avro-c
 * 1.11 ignores "default", see FACTS.md).
 *
 * Decoding one record: check the size, read the framing, find the writer,
 * then walk the datum against the writer schema without allocating
 * (datum.c: lengths, union/enum ranges, trailing bytes, the budget) and
 * read the mapped fields straight from the bytes into one new drv_task_t
 * (decode_direct).  avro-c parses the schemas; its generic value is not
 * on the decode path.  drv_task_decode_reference() keeps the previous
 * path (avro-c generic read under a per-record arena, alloc.c, plus the
 * mapping below) as the reference the direct decoder is tested against.
 * Messages never come from avro_strerror(), which is one buffer shared
 * by every thread.
 */
#include "schema_int.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SO_MAGIC0      0xc3
#define SO_MAGIC1      0x01
#define SO_HEADER      10
#define CF_MAGIC       0x00
#define CF_HEADER      5
#define NEG_CACHE      16
#define NEG_TTL_MS     30000
#define RECORD_MAX_DEF (1024 * 1024)

/* The task struct's fields, as reader slots. */
typedef enum slot_e {
        S_TASK_ID,
        S_ENTITY_REF,
        S_DATASET,
        S_REQUESTED_AT,
        S_REQUESTED_BY,
        S_DRY_RUN,
        S_PARAMS,
        S_PRIORITY,
        S_REPLAY_OF,
        S_COUNT
} slot_t;

typedef enum kind_e { K_STRING, K_LONG, K_BOOL, K_MAP, K_INT, K_OPT } kind_t;

static const struct slot_def {
        const char *name;
        kind_t kind;
        size_t off; /* of the char * in drv_task_t, for K_STRING / K_OPT */
} slot_defs[S_COUNT] = {
    [S_TASK_ID] = {"task_id", K_STRING, offsetof(drv_task_t, task_id)},
    [S_ENTITY_REF] = {"entity_ref", K_STRING, offsetof(drv_task_t, entity_ref)},
    [S_DATASET] = {"dataset", K_STRING, offsetof(drv_task_t, dataset)},
    [S_REQUESTED_AT] = {"requested_at", K_LONG, 0},
    [S_REQUESTED_BY] = {"requested_by", K_STRING,
                        offsetof(drv_task_t, requested_by)},
    [S_DRY_RUN] = {"dry_run", K_BOOL, 0},
    [S_PARAMS] = {"params", K_MAP, 0},
    [S_PRIORITY] = {"priority", K_INT, 0},
    [S_REPLAY_OF] = {"replay_of", K_OPT, offsetof(drv_task_t, replay_of)},
};

/* A compiled writer schema.  Immutable once published in the store. */
typedef struct writer_s {
        struct writer_s *next;
        uint64_t fp;
        int32_t id; /* registry id, -1: none */
        char *json;
        avro_schema_t schema;
        avro_value_iface_t *iface;
        size_t nfields;
        int *slot;        /* writer field index -> slot, -1: skip */
        unsigned present; /* bit per slot the writer has */
        int64_t ts_div;   /* requested_at units per millisecond */
        int version;
        char *error; /* set: unusable, every record is poison */
} writer_t;

struct drv_schema_store_s {
        size_t max_record_size;
        size_t budget;
        int reader_version;
        int writer_version;
        unsigned reader_slots;     /* bit per slot of the reader schema */
        json_t *defaults[S_COUNT]; /* reader defaults, NULL: none */
        writer_t *bundled[2];      /* v1, v2 */
        drv_registry_t *reg;
        char *subject;
        pthread_mutex_t mu; /* protects everything below */
        writer_t *dyn;      /* added and registry schemas */
        struct {
                int32_t id;
                int64_t until_ms;
        } neg[NEG_CACHE];
        unsigned neg_next;
        int32_t enc_id; /* registry id of the encode schema, -1: none */
};

/*
 * ------------------------------------------------------------------------
 * Compiling writer schemas
 * ------------------------------------------------------------------------
 */
static int slot_by_name(const char *name) {
        int i;

        for (i = 0; i < S_COUNT; i++)
                if (!strcmp(slot_defs[i].name, name))
                        return i;
        return -1;
}

static int kind_ok(kind_t k, avro_schema_t s) {
        avro_type_t t = avro_typeof(s);

        switch (k) {
        case K_STRING:
                return t == AVRO_STRING || t == AVRO_BYTES;
        case K_LONG:
                return t == AVRO_INT32 || t == AVRO_INT64;
        case K_BOOL:
                return t == AVRO_BOOLEAN;
        case K_INT:
                return t == AVRO_INT32;
        case K_OPT:
                return t == AVRO_NULL || t == AVRO_STRING || t == AVRO_BYTES;
        case K_MAP:
                if (t != AVRO_MAP)
                        return 0;
                t = avro_typeof(avro_schema_map_values(s));
                return t == AVRO_STRING || t == AVRO_BYTES;
        }
        return 0;
}

/* A writer field can feed a reader slot if it, or a branch of it, can. */
static int compatible(kind_t k, avro_schema_t s) {
        size_t i;

        if (avro_typeof(s) != AVRO_UNION)
                return kind_ok(k, s);
        for (i = 0; i < avro_schema_union_size(s); i++)
                if (kind_ok(k, avro_schema_union_branch(s, (int)i)))
                        return 1;
        return 0;
}

/* requested_at is epoch milliseconds.  Schema resolution ignores
 * logical types, so Java reads a timestamp-micros (or -nanos) writer's
 * number unchanged into the millis field - the same instant 1000 times
 * later.  drover reads the instant the writer meant instead.  Units per
 * millisecond of a number type t (a name or an object), or 0 for one
 * that is no instant (a date, a time of day, a local timestamp, micros
 * in an int); -1 for a type that is not a number. */
static int64_t type_scale(json_t *t) {
        const char *name = json_is_string(t)
                               ? json_string_value(t)
                               : json_string_value(json_object_get(t, "type"));
        const char *lt = json_string_value(json_object_get(t, "logicalType"));
        int is_long = name && !strcmp(name, "long");

        if (!name || (!is_long && strcmp(name, "int")))
                return -1;
        if (!lt || !strcmp(lt, "timestamp-millis"))
                return 1;
        if (is_long && !strcmp(lt, "timestamp-micros"))
                return 1000;
        if (is_long && !strcmp(lt, "timestamp-nanos"))
                return 1000000;
        return 0;
}

/* The scale of requested_at's writer field (every number branch of a
 * union must agree), or 0: refused. */
static int64_t time_scale(slot_t slot, json_t *field) {
        json_t *t = json_object_get(field, "type"), *b;
        int64_t scale = -1, bs;
        size_t i;

        if (slot != S_REQUESTED_AT)
                return 1;
        if (!json_is_array(t))
                return type_scale(t) < 0 ? 1 : type_scale(t);
        json_array_foreach(t, i, b) {
                if ((bs = type_scale(b)) < 0)
                        continue;
                if (bs == 0 || (scale > 0 && bs != scale))
                        return 0;
                scale = bs;
        }
        return scale < 0 ? 1 : scale;
}

/* v in units of 1/div ms, as whole ms (rounded down, as Java's Instant
 * does before 1970). */
static int64_t to_millis(int64_t v, int64_t div) {
        int64_t q = v / div;

        return v % div < 0 ? q - 1 : q;
}

static void writer_free(writer_t *w) {
        if (!w)
                return;
        if (w->iface)
                avro_value_iface_decref(w->iface);
        if (w->schema)
                avro_schema_decref(w->schema);
        free(w->slot);
        free(w->json);
        free(w->error);
        free(w);
}

static void writer_fail(writer_t *w, const char *msg) {
        free(w->error);
        w->error = strdup(msg);
}

/* Map the writer's fields onto reader slots; on a mismatch set w->error. */
static void writer_plan(drv_schema_store_t *store, writer_t *w, json_t *root) {
        json_t *fields = json_object_get(root, "fields"), *f;
        char msg[300];
        size_t i;
        int64_t div;
        int s;

        json_array_foreach(fields, i, f) {
                s = slot_by_name(json_string_value(json_object_get(f, "name")));
                if (s < 0)
                        continue;
                if (s == S_PRIORITY || s == S_REPLAY_OF)
                        w->version = 2;
                if (!(store->reader_slots & (1u << s)))
                        continue;
                if (!compatible(slot_defs[s].kind,
                                avro_schema_record_field_get_by_index(
                                    w->schema, (int)i)) ||
                    !(div = time_scale((slot_t)s, f))) {
                        snprintf(msg, sizeof(msg),
                                 "writer field \"%s\" has a type the task "
                                 "cannot take",
                                 slot_defs[s].name);
                        writer_fail(w, msg);
                        return;
                }
                if (s == S_REQUESTED_AT)
                        w->ts_div = div;
                w->slot[i] = s;
                w->present |= 1u << s;
        }
        for (s = 0; s < S_COUNT; s++) {
                if ((store->reader_slots & (1u << s)) &&
                    !(w->present & (1u << s)) && !store->defaults[s]) {
                        snprintf(msg, sizeof(msg),
                                 "writer schema lacks field \"%s\", which "
                                 "has no default",
                                 slot_defs[s].name);
                        writer_fail(w, msg);
                        return;
                }
        }
}

/* Parse and plan a schema.  Returns NULL only when out of memory; an
 * unusable schema comes back with ->error set. */
static writer_t *writer_compile(drv_schema_store_t *store, const char *json,
                                int trusted) {
        writer_t *w = calloc(1, sizeof(*w));
        char err[256] = "";
        json_t *root = NULL;
        size_t i, len = strlen(json);

        if (!w || !(w->json = strdup(json))) {
                free(w);
                return NULL;
        }
        w->id = -1;
        w->version = 1;
        w->ts_div = 1;
        if ((!trusted && drv_schema_validate(json, len, err, sizeof(err))) ||
            drv_schema_fingerprint(json, len, &w->fp, err, sizeof(err))) {
                writer_fail(w, err[0] ? err : "invalid writer schema");
                return w;
        }
        if (avro_schema_from_json_length(json, len, &w->schema) ||
            avro_typeof(w->schema) != AVRO_RECORD ||
            !(w->iface = avro_generic_class_from_schema(w->schema)) ||
            !(root = json_loadb(json, len, 0, NULL))) {
                writer_fail(w, "writer schema is not an avro record schema "
                               "avro-c can read");
                return w;
        }
        w->nfields = avro_schema_record_size(w->schema);
        w->slot = malloc((w->nfields ? w->nfields : 1) * sizeof(int));
        if (!w->slot) {
                json_decref(root);
                writer_free(w);
                return NULL;
        }
        for (i = 0; i < w->nfields; i++)
                w->slot[i] = -1;
        writer_plan(store, w, root);
        json_decref(root);
        return w;
}

/*
 * ------------------------------------------------------------------------
 * The reader schema and the bundled files
 * ------------------------------------------------------------------------
 */
static char *read_file(const char *path, char *errstr, size_t errstr_size) {
        FILE *fp = fopen(path, "rb");
        char *buf = NULL;
        long n;

        if (!fp) {
                drv_err_set(errstr, errstr_size, DRV_ERR_IO,
                            "cannot open schema file \"%s\": %s", path,
                            strerror(errno));
                return NULL;
        }
        if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
            n < 1024 * 1024 && fseek(fp, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) &&
            fread(buf, 1, (size_t)n, fp) == (size_t)n) {
                buf[n] = '\0';
        } else {
                free(buf);
                buf = NULL;
                drv_err_set(errstr, errstr_size, DRV_ERR_IO,
                            "cannot read schema file \"%s\"", path);
        }
        fclose(fp);
        return buf;
}

static const char *schema_dir(void) {
        const char *env = getenv("DROVER_SCHEMA_DIR");

        return env && *env ? env : DRV_SCHEMA_DIR;
}

/* Load bundled version v; the reader version also sets slots/defaults. */
static drv_err_t load_bundled(drv_schema_store_t *store, int v, char *errstr,
                              size_t errstr_size) {
        char path[1024], *json;
        json_t *root, *f, *def;
        size_t i;
        int s;

        snprintf(path, sizeof(path), "%s/MigrationTask.v%d.avsc", schema_dir(),
                 v);
        if (!(json = read_file(path, errstr, errstr_size)))
                return DRV_ERR_IO;
        if (v == store->reader_version && (root = json_loads(json, 0, NULL))) {
                json_array_foreach(json_object_get(root, "fields"), i, f) {
                        s = slot_by_name(
                            json_string_value(json_object_get(f, "name")));
                        if (s < 0)
                                continue;
                        store->reader_slots |= 1u << s;
                        if ((def = json_object_get(f, "default")))
                                store->defaults[s] = json_incref(def);
                }
                json_decref(root);
        }
        store->bundled[v - 1] = writer_compile(store, json, 1);
        free(json);
        if (!store->bundled[v - 1] || store->bundled[v - 1]->error)
                return drv_err_set(
                    errstr, errstr_size, DRV_ERR_CONFIG,
                    "bundled schema \"%s\" is unusable: %s", path,
                    store->bundled[v - 1] ? store->bundled[v - 1]->error
                                          : "out of memory");
        return DRV_OK;
}

drv_schema_store_t *drv_schema_store_new(const drv_schema_conf_t *conf,
                                         char *errstr, size_t errstr_size) {
        static const drv_schema_conf_t defconf;
        drv_schema_store_t *store = calloc(1, sizeof(*store));

        if (!conf)
                conf = &defconf;
        if (!store) {
                drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                            "out of memory creating the schema store");
                return NULL;
        }
        drv_arena_install();
        pthread_mutex_init(&store->mu, NULL);
        store->enc_id = -1;
        store->max_record_size =
            conf->max_record_size ? conf->max_record_size : RECORD_MAX_DEF;
        store->budget = conf->alloc_budget
                            ? conf->alloc_budget
                            : 4 * store->max_record_size + 256 * 1024;
        store->reader_version = conf->reader_version == 1 ? 1 : 2;
        store->writer_version = conf->writer_version == 1 ? 1 : 2;
        store->subject =
            strdup(conf->subject ? conf->subject : "dataset-migrations-value");
        if (!store->subject ||
            (store->reader_version == 1 &&
             load_bundled(store, 1, errstr, errstr_size)) ||
            load_bundled(store, 2, errstr, errstr_size) ||
            (store->reader_version == 2 &&
             load_bundled(store, 1, errstr, errstr_size)) ||
            (conf->registry_url && *conf->registry_url &&
             !(store->reg = drv_registry_new(conf, errstr, errstr_size)))) {
                drv_schema_store_destroy(store);
                return NULL;
        }
        return store;
}

void drv_schema_store_destroy(drv_schema_store_t *store) {
        writer_t *w, *next;
        int i;

        if (!store)
                return;
        for (w = store->dyn; w; w = next) {
                next = w->next;
                writer_free(w);
        }
        writer_free(store->bundled[0]);
        writer_free(store->bundled[1]);
        for (i = 0; i < S_COUNT; i++)
                json_decref(store->defaults[i]);
        drv_registry_destroy(store->reg);
        free(store->subject);
        pthread_mutex_destroy(&store->mu);
        free(store);
}

uint64_t drv_schema_store_bundled_fingerprint(const drv_schema_store_t *store,
                                              int version) {
        if (version < 1 || version > 2 || !store->bundled[version - 1])
                return 0;
        return store->bundled[version - 1]->fp;
}


/*
 * ------------------------------------------------------------------------
 * Looking writers up: by fingerprint, by registry id
 * ------------------------------------------------------------------------
 */
static writer_t *find_fp(drv_schema_store_t *store, uint64_t fp) {
        writer_t *w;

        if (store->bundled[0] && store->bundled[0]->fp == fp)
                return store->bundled[0];
        if (store->bundled[1] && store->bundled[1]->fp == fp)
                return store->bundled[1];
        pthread_mutex_lock(&store->mu);
        for (w = store->dyn; w; w = w->next)
                if (w->id < 0 && w->fp == fp && !w->error)
                        break;
        pthread_mutex_unlock(&store->mu);
        return w;
}

static writer_t *find_id_locked(drv_schema_store_t *store, int32_t id) {
        writer_t *w;

        for (w = store->dyn; w; w = w->next)
                if (w->id == id)
                        return w;
        return NULL;
}

static int neg_cached_locked(drv_schema_store_t *store, int32_t id) {
        int64_t now = drv_mono_ms();
        int i;

        for (i = 0; i < NEG_CACHE; i++)
                if (store->neg[i].id == id && store->neg[i].until_ms > now)
                        return 1;
        return 0;
}

/* Publish w (id set) unless another thread won the race; returns the one
 * in the store. */
static writer_t *publish(drv_schema_store_t *store, writer_t *w) {
        writer_t *have;

        pthread_mutex_lock(&store->mu);
        have = w->id >= 0 ? find_id_locked(store, w->id) : NULL;
        if (!have) {
                w->next = store->dyn;
                store->dyn = w;
                have = w;
        }
        pthread_mutex_unlock(&store->mu);
        if (have != w)
                writer_free(w);
        return have;
}

/* The writer of registry id `id`, fetched once and cached (a denied id
 * is remembered for NEG_TTL_MS so poison does not hammer the registry).
 * Without `fetch`, an id not cached is DRV_ERR_REGISTRY_UNAVAILABLE. */
static drv_err_t find_id(drv_schema_store_t *store, int32_t id, int fetch,
                         writer_t **wp, char *errstr, size_t errstr_size) {
        char *json = NULL;
        writer_t *w;
        drv_err_t err;
        int neg;

        pthread_mutex_lock(&store->mu);
        w = find_id_locked(store, id);
        neg = !w && neg_cached_locked(store, id);
        pthread_mutex_unlock(&store->mu);
        if ((*wp = w))
                return DRV_OK;
        if (neg)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                                   "schema registry has no schema with id "
                                   "%d",
                                   (int)id);
        if (!fetch)
                return drv_err_set(errstr, errstr_size,
                                   DRV_ERR_REGISTRY_UNAVAILABLE,
                                   "schema id %d is not cached", (int)id);
        err = drv_registry_get(store->reg, id, &json, errstr, errstr_size);
        if (err == DRV_ERR_UNKNOWN_SCHEMA) {
                pthread_mutex_lock(&store->mu);
                store->neg[store->neg_next % NEG_CACHE].id = id;
                store->neg[store->neg_next++ % NEG_CACHE].until_ms =
                    drv_mono_ms() + NEG_TTL_MS;
                pthread_mutex_unlock(&store->mu);
        }
        if (err)
                return err;
        w = writer_compile(store, json, 0);
        free(json);
        if (!w)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory compiling schema id %d",
                                   (int)id);
        w->id = id;
        *wp = publish(store, w);
        return DRV_OK;
}

drv_err_t drv_schema_store_add(drv_schema_store_t *store, const char *json,
                               uint64_t *fpp, char *errstr,
                               size_t errstr_size) {
        writer_t *w = writer_compile(store, json, 0);

        if (!w)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory compiling a schema");
        if (w->error) {
                drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA, "%s",
                            w->error);
                writer_free(w);
                return DRV_ERR_UNKNOWN_SCHEMA;
        }
        if (fpp)
                *fpp = w->fp;
        if (find_fp(store, w->fp)) {
                writer_free(w);
                return DRV_OK;
        }
        publish(store, w);
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Decoding: avro value -> task
 * ------------------------------------------------------------------------
 */

/* Why text of n bytes at p (bytes: written as avro bytes) cannot be a
 * task string, or NULL.  bytes resolve to string as in Java, but only
 * as valid UTF-8: Java would hand on whatever the bytes are. */
static const char *text_flaw(const char *p, size_t n, int bytes) {
        if (n && memchr(p, '\0', n))
                return "holds a nul byte";
        if (bytes && !drv_text_utf8_valid(p, n))
                return "holds bytes that are not valid UTF-8";
        return NULL;
}

/* The text of a string or bytes value: why it cannot be a task string,
 * or NULL. */
static const char *get_text(avro_value_t *v, const char **pp, size_t *np) {
        const void *p = NULL;
        size_t size = 0;
        int bytes = avro_value_get_type(v) != AVRO_STRING;

        if (!bytes) {
                avro_value_get_string(v, (const char **)&p, &size);
                if (size > 0)
                        size--; /* avro-c counts the terminating NUL */
        } else {
                avro_value_get_bytes(v, &p, &size);
        }
        *pp = p ? p : "";
        *np = size;
        return text_flaw(*pp, size, bytes);
}

/* The branch a union holds, else the value itself. */
static avro_value_t *resolve(avro_value_t *v, avro_value_t *branch) {
        if (avro_value_get_type(v) != AVRO_UNION)
                return v;
        avro_value_get_current_branch(v, branch);
        return branch;
}

static drv_err_t bad_field(const char *name, const char *what, char *errstr,
                           size_t errstr_size) {
        return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                           "task field \"%s\" %s", name, what);
}

/* Pass 1: check every mapped value and add up the bytes its text needs
 * (*textp) and the number of params (*paramsp). */
static drv_err_t measure(const writer_t *w, avro_value_t *val, size_t *textp,
                         size_t *paramsp, char *errstr, size_t errstr_size) {
        avro_value_t field, branch, child, *v;
        const char *p, *key, *flaw;
        size_t i, j, n, cnt;

        for (i = 0; i < w->nfields; i++) {
                const struct slot_def *d;
                if (w->slot[i] < 0)
                        continue;
                d = &slot_defs[w->slot[i]];
                avro_value_get_by_index(val, i, &field, NULL);
                v = resolve(&field, &branch);
                if (!kind_ok(d->kind, avro_value_get_schema(v)))
                        return bad_field(d->name,
                                         avro_value_get_type(v) == AVRO_NULL
                                             ? "is null"
                                             : "holds a wrong type",
                                         errstr, errstr_size);
                if ((d->kind == K_STRING || d->kind == K_OPT) &&
                    avro_value_get_type(v) != AVRO_NULL) {
                        if ((flaw = get_text(v, &p, &n)))
                                return bad_field(d->name, flaw, errstr,
                                                 errstr_size);
                        *textp += n + 1;
                } else if (d->kind == K_MAP) {
                        avro_value_get_size(v, &cnt);
                        *paramsp += cnt;
                        for (j = 0; j < cnt; j++) {
                                avro_value_get_by_index(v, j, &child, &key);
                                if ((flaw = get_text(&child, &p, &n)))
                                        return bad_field(d->name, flaw, errstr,
                                                         errstr_size);
                                *textp += n + 1 + strlen(key) + 1;
                        }
                }
        }
        return DRV_OK;
}

/* Copy a value's text to *memp (advancing it); the copy. */
static char *put_text(avro_value_t *v, char **memp) {
        const char *p;
        size_t n;
        char *out = *memp;

        get_text(v, &p, &n);
        memcpy(out, p, n);
        out[n] = '\0';
        *memp += n + 1;
        return out;
}

static void put_params(drv_task_t *task, avro_value_t *v, char **memp) {
        avro_value_t child;
        const char *key;
        size_t j, cnt = 0, kn;

        avro_value_get_size(v, &cnt);
        for (j = 0; j < cnt; j++) {
                drv_param_t *pr = &task->params[task->params_cnt++];
                avro_value_get_by_index(v, j, &child, &key);
                kn = strlen(key);
                pr->key = memcpy(*memp, key, kn + 1);
                *memp += kn + 1;
                pr->value = put_text(&child, memp);
        }
}

/* Pass 2: store one checked writer value into its task slot. */
static void map_value(drv_task_t *task, const writer_t *w, int s,
                      avro_value_t *field, char **memp) {
        const struct slot_def *d = &slot_defs[s];
        avro_value_t branch, *v = resolve(field, &branch);
        avro_type_t t = avro_value_get_type(v);
        int32_t i32;
        int64_t i64;
        int b;

        switch (d->kind) {
        case K_OPT:
                if (t == AVRO_NULL)
                        return;
                /* fall through */
        case K_STRING:
                *(char **)((char *)task + d->off) = put_text(v, memp);
                return;
        case K_LONG:
                if (t == AVRO_INT32 && !avro_value_get_int(v, &i32))
                        task->requested_at = to_millis(i32, w->ts_div);
                else if (!avro_value_get_long(v, &i64))
                        task->requested_at = to_millis(i64, w->ts_div);
                return;
        case K_BOOL:
                avro_value_get_boolean(v, &b);
                task->dry_run = b != 0;
                return;
        case K_INT:
                avro_value_get_int(v, &i32);
                task->priority = i32;
                return;
        case K_MAP:
                put_params(task, v, memp);
                return;
        }
}

/* Fill slot s from the reader schema's default. */
static drv_err_t map_default(drv_task_t *task, int s, json_t *def) {
        const struct slot_def *d = &slot_defs[s];
        const char *key;
        json_t *v;

        switch (d->kind) {
        case K_STRING:
        case K_OPT:
                if (json_is_string(def) &&
                    !(*(char **)((char *)task + d->off) =
                          strdup(json_string_value(def))))
                        return DRV_ERR_NOMEM;
                return DRV_OK;
        case K_LONG:
                task->requested_at = json_integer_value(def);
                return DRV_OK;
        case K_BOOL:
                task->dry_run = json_is_true(def);
                return DRV_OK;
        case K_INT:
                task->priority = (int32_t)json_integer_value(def);
                return DRV_OK;
        case K_MAP:
                json_object_foreach(def, key, v) {
                        if (json_is_string(v) &&
                            drv_task_add_param(task, key, json_string_value(v)))
                                return DRV_ERR_NOMEM;
                }
                return DRV_OK;
        }
        return DRV_OK;
}

/* Map a decoded writer value into a new task, in one allocation. */
static drv_err_t to_task(drv_schema_store_t *store, const writer_t *w,
                         avro_value_t *val, drv_task_t **taskp, char *errstr,
                         size_t errstr_size) {
        size_t i, text = 0, nparams = 0;
        avro_value_t field;
        drv_task_t *task;
        drv_err_t err;
        char *mem;
        int s;

        if ((err = measure(w, val, &text, &nparams, errstr, errstr_size)))
                return err;
        task = drv_task_alloc(nparams * sizeof(drv_param_t) + text, &mem);
        if (!task)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory creating a task");
        if (nparams) {
                task->params = (drv_param_t *)mem;
                mem += nparams * sizeof(drv_param_t);
        }
        for (i = 0; i < w->nfields; i++) {
                if (w->slot[i] < 0)
                        continue;
                avro_value_get_by_index(val, i, &field, NULL);
                map_value(task, w, w->slot[i], &field, &mem);
        }
        for (s = 0; s < S_COUNT; s++) {
                if ((store->reader_slots & (1u << s)) &&
                    !(w->present & (1u << s)) &&
                    map_default(task, s, store->defaults[s])) {
                        drv_task_destroy(task);
                        return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                           "out of memory filling "
                                           "defaults");
                }
        }
        task->writer_version = w->version;
        *taskp = task;
        return DRV_OK;
}

/*
 * One memory reader per thread, re-pointed at each record; freed when the
 * thread exits.  The generic value is made fresh for every record: reusing
 * one leaks in avro-c 1.11.1 (avro_raw_map_clear() drops map keys without
 * freeing them, so every map entry of every reused record leaks).
 */
static _Thread_local avro_reader_t tl_reader;
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;

static void tl_free(void *rd) {
        avro_reader_free(rd);
}

static void tl_init(void) {
        pthread_key_create(&tl_key, tl_free);
}

static avro_reader_t tl_get_reader(void) {
        if (!tl_reader) {
                pthread_once(&tl_once, tl_init);
                if (!(tl_reader = avro_reader_memory(NULL, 0)))
                        return NULL;
                pthread_setspecific(tl_key, tl_reader);
        }
        return tl_reader;
}

/* Read the datum (already checked by drv_datum_check) under the budget
 * and map it into a new task. */
static drv_err_t decode_datum(drv_schema_store_t *store, const writer_t *w,
                              const char *data, size_t len, drv_task_t **taskp,
                              char *errstr, size_t errstr_size) {
        avro_reader_t rd;
        avro_value_t val;
        drv_arena_t arena;
        drv_err_t err;
        int rc = -1;

        err = drv_datum_check(w->schema, data, len, store->budget, NULL, NULL,
                              errstr, errstr_size);
        if (err)
                return err;
        if (!(rd = tl_get_reader()))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory decoding a task");
        avro_reader_memory_set_source(rd, data, (int64_t)len);
        val.iface = NULL;
        drv_arena_begin(&arena, store->budget);
        if (avro_generic_value_new(w->iface, &val) == 0)
                rc = avro_value_read(rd, &val);
        else
                val.iface = NULL;
        drv_arena_end(&arena);
        if (rc && arena.exhausted)
                err = drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                  "cannot decode task record: it exceeds "
                                  "the allocation budget of %zu bytes",
                                  store->budget);
        else if (rc)
                err = drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                  "cannot decode task record: malformed "
                                  "avro datum");
        else
                err = to_task(store, w, &val, taskp, errstr, errstr_size);
        if (val.iface)
                avro_value_decref(&val);
        return err;
}

/*
 * ------------------------------------------------------------------------
 * Decoding: datum -> task, directly
 *
 * drv_datum_check() walks the datum against its writer schema and notes
 * where each mapped field starts (w->slot, resolved once per writer).
 * Those fields are then read straight from the bytes into a view -
 * pointers into the datum, numbers, and the params deduplicated the way
 * avro-c's map does (a later duplicate key replaces the value, keeping
 * the first position; a key ends at its first nul byte) - checked as the
 * reference mapping checks them, and copied into one task block.  No
 * avro-c value, one malloc (plus one for more than VIEW_ENTRIES params).
 * ------------------------------------------------------------------------
 */
#define VIEW_ENTRIES 16

typedef struct rcur_s {
        const unsigned char *p, *end;
} rcur_t;

typedef struct entry_s {
        const char *k, *v;
        size_t kn, vn;
} entry_t;

typedef struct view_s {
        const unsigned char *at[S_COUNT]; /* where each slot's value starts */
        const char *str[S_COUNT];         /* text slots; NULL: null */
        size_t len[S_COUNT];
        int64_t num[S_COUNT];
        entry_t stack[VIEW_ENTRIES];
        entry_t *ent; /* the params, unique keys, first-seen order */
        size_t nent, cap;
        uint32_t *hash; /* over ent when cap > VIEW_ENTRIES; 0: empty */
        size_t hmask;
        size_t text; /* bytes of text the task needs */
} view_t;

/* A long of a checked datum; running off the end (a bug) reads 0, never
 * past it. */
static int64_t rd_long(rcur_t *c) {
        uint64_t v = 0;
        int i;

        for (i = 0; i < 10 && c->p < c->end; i++) {
                v |= (uint64_t)(*c->p & 0x7f) << (7 * i);
                if (!(*c->p++ & 0x80))
                        break;
        }
        return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static size_t rd_text(rcur_t *c, const char **pp) {
        int64_t n = rd_long(c);

        if (n < 0 || (uint64_t)n > (uint64_t)(c->end - c->p))
                n = 0;
        *pp = (const char *)c->p;
        c->p += n;
        return (size_t)n;
}

/* Items in the map at c (not moving c). */
static size_t map_count(rcur_t c) {
        const char *s;
        int64_t count, i;
        size_t total = 0;

        while ((count = rd_long(&c)) != 0 && c.p < c.end) {
                if (count < 0) {
                        count = -count;
                        rd_long(&c);
                }
                total += (size_t)count;
                for (i = 0; i < count; i++) {
                        rd_text(&c, &s);
                        rd_text(&c, &s);
                }
        }
        return total;
}

static uint32_t key_hash(const char *k, size_t n) {
        uint32_t h = 2166136261u;

        while (n--)
                h = (h ^ (unsigned char)*k++) * 16777619u;
        return h;
}

/* The entry with key k, or a new one at the end. */
static entry_t *view_entry(view_t *v, const char *k, size_t kn) {
        size_t i, h;

        if (!v->hash) {
                for (i = 0; i < v->nent; i++)
                        if (v->ent[i].kn == kn && !memcmp(v->ent[i].k, k, kn))
                                return &v->ent[i];
        } else {
                for (h = key_hash(k, kn) & v->hmask; v->hash[h];
                     h = (h + 1) & v->hmask) {
                        entry_t *e = &v->ent[v->hash[h] - 1];
                        if (e->kn == kn && !memcmp(e->k, k, kn))
                                return e;
                }
                v->hash[h] = (uint32_t)v->nent + 1;
        }
        v->ent[v->nent].k = k;
        v->ent[v->nent].kn = kn;
        return &v->ent[v->nent++];
}

/* Room for n entries (and a hash table when they do not fit the stack);
 * *bytesp: what that allocated. */
static int view_reserve(view_t *v, size_t n, size_t *bytesp) {
        size_t hsize = 1;

        v->ent = v->stack;
        v->cap = VIEW_ENTRIES;
        if (n <= VIEW_ENTRIES)
                return 0;
        while (hsize < 2 * n)
                hsize <<= 1;
        *bytesp = n * sizeof(entry_t) + hsize * sizeof(uint32_t);
        if (!(v->ent = malloc(*bytesp)))
                return -1;
        v->hash = (uint32_t *)(v->ent + n);
        memset(v->hash, 0, hsize * sizeof(uint32_t));
        v->hmask = hsize - 1;
        v->cap = n;
        return 0;
}

static void view_release(view_t *v) {
        if (v->ent != v->stack)
                free(v->ent);
}

/* Read the params map at c into v->ent (values written as bytes when
 * `bytes`); why a value cannot be a task string, or NULL. */
static const char *view_params(view_t *v, rcur_t *c, int bytes) {
        int64_t count, i;
        const char *k, *val, *flaw;
        size_t kn, vn, j;

        while ((count = rd_long(c)) != 0 && c->p < c->end) {
                if (count < 0) {
                        count = -count;
                        rd_long(c);
                }
                for (i = 0; i < count && v->nent < v->cap; i++) {
                        kn = rd_text(c, &k);
                        vn = rd_text(c, &val);
                        /* drv_datum_check() refused a NUL in a key */
                        entry_t *e = view_entry(v, k, kn);
                        e->v = val;
                        e->vn = vn;
                }
        }
        for (j = 0; j < v->nent; j++) {
                if ((flaw = text_flaw(v->ent[j].v, v->ent[j].vn, bytes)))
                        return flaw;
                v->text += v->ent[j].kn + 1 + v->ent[j].vn + 1;
        }
        return NULL;
}

/* Read writer field i (slot s) into the view, checked as measure() checks
 * the avro-c value. */
static drv_err_t view_field(const writer_t *w, size_t i, int s, view_t *v,
                            const unsigned char *end, size_t *extrap,
                            char *errstr, size_t errstr_size) {
        const struct slot_def *d = &slot_defs[s];
        avro_schema_t fs =
            avro_schema_record_field_get_by_index(w->schema, (int)i);
        rcur_t c = {v->at[s], end};
        const char *flaw;

        if (avro_typeof(fs) == AVRO_UNION)
                fs = avro_schema_union_branch(fs, (int)rd_long(&c));
        if (!kind_ok(d->kind, fs))
                return bad_field(d->name,
                                 avro_typeof(fs) == AVRO_NULL
                                     ? "is null"
                                     : "holds a wrong type",
                                 errstr, errstr_size);
        switch (d->kind) {
        case K_OPT:
                if (avro_typeof(fs) == AVRO_NULL)
                        return DRV_OK;
                /* fall through */
        case K_STRING:
                v->len[s] = rd_text(&c, &v->str[s]);
                if ((flaw = text_flaw(v->str[s], v->len[s],
                                      avro_typeof(fs) == AVRO_BYTES)))
                        return bad_field(d->name, flaw, errstr, errstr_size);
                v->text += v->len[s] + 1;
                return DRV_OK;
        case K_BOOL:
                v->num[s] = c.p < c.end && *c.p != 0;
                return DRV_OK;
        case K_LONG:
        case K_INT:
                v->num[s] = rd_long(&c);
                return DRV_OK;
        case K_MAP:
                if (view_reserve(v, map_count(c), extrap))
                        return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                           "out of memory decoding a task");
                flaw = view_params(v, &c,
                                   avro_typeof(avro_schema_map_values(fs)) ==
                                       AVRO_BYTES);
                return flaw ? bad_field(d->name, flaw, errstr, errstr_size)
                            : DRV_OK;
        }
        return DRV_OK;
}

static char *put_view_text(const char *p, size_t n, char **memp) {
        char *out = *memp;

        memcpy(out, p, n);
        out[n] = '\0';
        *memp += n + 1;
        return out;
}

/* Copy the view into a new task (one block) and fill the defaults. */
static drv_task_t *view_task(drv_schema_store_t *store, const writer_t *w,
                             const view_t *v) {
        drv_task_t *task;
        char *mem;
        size_t j;
        int s;

        task = drv_task_alloc(v->nent * sizeof(drv_param_t) + v->text, &mem);
        if (!task)
                return NULL;
        if (v->nent) {
                task->params = (drv_param_t *)mem;
                mem += v->nent * sizeof(drv_param_t);
        }
        for (j = 0; j < v->nent; j++) {
                task->params[j].key =
                    put_view_text(v->ent[j].k, v->ent[j].kn, &mem);
                task->params[j].value =
                    put_view_text(v->ent[j].v, v->ent[j].vn, &mem);
        }
        task->params_cnt = v->nent;
        for (s = 0; s < S_COUNT; s++) {
                const struct slot_def *d = &slot_defs[s];
                if (!(w->present & (1u << s)))
                        continue;
                if ((d->kind == K_STRING || d->kind == K_OPT) && v->str[s])
                        *(char **)((char *)task + d->off) =
                            put_view_text(v->str[s], v->len[s], &mem);
                else if (d->kind == K_LONG)
                        task->requested_at = to_millis(v->num[s], w->ts_div);
                else if (d->kind == K_BOOL)
                        task->dry_run = (int)v->num[s];
                else if (d->kind == K_INT)
                        task->priority = (int32_t)v->num[s];
        }
        for (s = 0; s < S_COUNT; s++) {
                if ((store->reader_slots & (1u << s)) &&
                    !(w->present & (1u << s)) &&
                    map_default(task, s, store->defaults[s])) {
                        drv_task_destroy(task);
                        return NULL;
                }
        }
        task->writer_version = w->version;
        return task;
}

/* Check the datum, read the mapped fields, build the task. */
static drv_err_t decode_direct(drv_schema_store_t *store, const writer_t *w,
                               const unsigned char *data, size_t len,
                               drv_task_t **taskp, char *errstr,
                               size_t errstr_size) {
        view_t v;
        drv_err_t err;
        size_t i, extra = 0;

        v.ent = v.stack;
        v.nent = 0;
        v.hash = NULL;
        v.text = 0;
        memset(v.str, 0, sizeof(v.str));
        if ((err = drv_datum_check(w->schema, data, len, store->budget, w->slot,
                                   v.at, errstr, errstr_size)))
                return err;
        for (i = 0; i < w->nfields && !err; i++)
                if (w->slot[i] >= 0)
                        err = view_field(w, i, w->slot[i], &v, data + len,
                                         &extra, errstr, errstr_size);
        if (!err &&
            sizeof(drv_task_t) + extra + v.text + v.nent * sizeof(drv_param_t) >
                store->budget)
                err = drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                  "cannot decode task record: it exceeds "
                                  "the allocation budget of %zu bytes",
                                  store->budget);
        if (!err && !(*taskp = view_task(store, w, &v)))
                err = drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                  "out of memory creating a task");
        view_release(&v);
        return err;
}

static uint64_t le64(const unsigned char *p) {
        uint64_t v = 0;
        int i;

        for (i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

/* Check the size, read the framing and find the writer: DRV_OK with *wp
 * and *hdrp (header length), or the error for the record. */
static drv_err_t find_writer(drv_schema_store_t *store, const void *buf,
                             size_t len, int fetch, writer_t **wp, size_t *hdrp,
                             char *errstr, size_t errstr_size) {
        const unsigned char *p = buf;
        writer_t *w = NULL;
        drv_err_t err;
        size_t hdr;

        if (len > store->max_record_size)
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "task record of %zu bytes exceeds the "
                                   "limit of %zu bytes",
                                   len, store->max_record_size);
        if (len == 0 || !buf)
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "task record is empty");
        if (p[0] == SO_MAGIC0) {
                if (len < SO_HEADER || p[1] != SO_MAGIC1)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                           "task record has a truncated or "
                                           "bad single-object header");
                hdr = SO_HEADER;
                if (!(w = find_fp(store, le64(p + 2))))
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                            "task record names unknown writer schema "
                            "fingerprint %016llx",
                            (unsigned long long)le64(p + 2));
        } else if (p[0] == CF_MAGIC) {
                int32_t id;
                if (len < CF_HEADER)
                        return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                           "task record has a truncated "
                                           "confluent header");
                hdr = CF_HEADER;
                id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                               ((uint32_t)p[3] << 8) | p[4]);
                if (!store->reg || id <= 0)
                        return drv_err_set(
                            errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                            "task record names schema id %d but %s", (int)id,
                            store->reg ? "ids start at 1"
                                       : "no schema registry is configured");
                if ((err = find_id(store, id, fetch, &w, errstr, errstr_size)))
                        return err;
        } else {
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "task record has an unknown wire format "
                                   "(first byte 0x%02x)",
                                   p[0]);
        }
        if (w->error)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                                   "%s", w->error);
        *wp = w;
        *hdrp = hdr;
        return DRV_OK;
}

static drv_err_t task_decode(drv_schema_store_t *store, const void *buf,
                             size_t len, int fetch, drv_task_t **taskp,
                             char *errstr, size_t errstr_size) {
        writer_t *w;
        drv_err_t err;
        size_t hdr;

        *taskp = NULL;
        if ((err = find_writer(store, buf, len, fetch, &w, &hdr, errstr,
                               errstr_size)))
                return err;
        return decode_direct(store, w, (const unsigned char *)buf + hdr,
                             len - hdr, taskp, errstr, errstr_size);
}

drv_err_t drv_task_decode(drv_schema_store_t *store, const void *buf,
                          size_t len, drv_task_t **taskp, char *errstr,
                          size_t errstr_size) {
        return task_decode(store, buf, len, 1, taskp, errstr, errstr_size);
}

drv_err_t drv_task_decode_cached(drv_schema_store_t *store, const void *buf,
                                 size_t len, drv_task_t **taskp, char *errstr,
                                 size_t errstr_size) {
        return task_decode(store, buf, len, 0, taskp, errstr, errstr_size);
}

drv_err_t drv_task_decode_reference(drv_schema_store_t *store, const void *buf,
                                    size_t len, drv_task_t **taskp,
                                    char *errstr, size_t errstr_size) {
        writer_t *w;
        drv_err_t err;
        size_t hdr;

        *taskp = NULL;
        if ((err = find_writer(store, buf, len, 1, &w, &hdr, errstr,
                               errstr_size)))
                return err;
        return decode_datum(store, w, (const char *)buf + hdr, len - hdr, taskp,
                            errstr, errstr_size);
}

/*
 * ------------------------------------------------------------------------
 * Encoding: task -> single-object or Confluent record
 * ------------------------------------------------------------------------
 */
static int set_string(avro_value_t *f, const char *s) {
        return avro_value_set_string(f, s);
}

static drv_err_t set_field(const drv_task_t *task, int s, avro_value_t *f,
                           char *errstr, size_t errstr_size) {
        const struct slot_def *d = &slot_defs[s];
        const char *str = NULL;
        avro_value_t child;
        size_t i;

        if (d->kind == K_STRING || d->kind == K_OPT)
                str = *(char *const *)((const char *)task + d->off);
        switch (d->kind) {
        case K_STRING:
                if (!str)
                        return drv_err_set(errstr, errstr_size,
                                           DRV_ERR_INVALID_PARAM,
                                           "cannot encode task: \"%s\" is "
                                           "not set",
                                           d->name);
                return set_string(f, str) ? DRV_ERR_INTERNAL : DRV_OK;
        case K_OPT:
                if (avro_value_set_branch(f, str ? 1 : 0, &child))
                        return DRV_ERR_INTERNAL;
                return (str ? set_string(&child, str)
                            : avro_value_set_null(&child))
                           ? DRV_ERR_INTERNAL
                           : DRV_OK;
        case K_LONG:
                return avro_value_set_long(f, task->requested_at)
                           ? DRV_ERR_INTERNAL
                           : DRV_OK;
        case K_BOOL:
                return avro_value_set_boolean(f, task->dry_run != 0)
                           ? DRV_ERR_INTERNAL
                           : DRV_OK;
        case K_INT:
                return avro_value_set_int(f, task->priority) ? DRV_ERR_INTERNAL
                                                             : DRV_OK;
        case K_MAP:
                for (i = 0; i < task->params_cnt; i++)
                        if (avro_value_add(f, task->params[i].key, &child, NULL,
                                           NULL) ||
                            set_string(&child, task->params[i].value))
                                return DRV_ERR_INTERNAL;
                return DRV_OK;
        }
        return DRV_OK;
}

/* The registry id of the encode schema, registered once under the
 * store's subject. */
static drv_err_t enc_id(drv_schema_store_t *store, const writer_t *w,
                        int32_t *idp, char *errstr, size_t errstr_size) {
        drv_err_t err;
        int32_t id;

        pthread_mutex_lock(&store->mu);
        id = store->enc_id;
        pthread_mutex_unlock(&store->mu);
        if (id < 0) {
                err = drv_registry_register(store->reg, store->subject, w->json,
                                            &id, errstr, errstr_size);
                if (err)
                        return err;
                pthread_mutex_lock(&store->mu);
                store->enc_id = id;
                pthread_mutex_unlock(&store->mu);
        }
        *idp = id;
        return DRV_OK;
}

static drv_err_t write_record(const writer_t *w, avro_value_t *val,
                              const unsigned char *hdr, size_t hlen,
                              void **bufp, size_t *lenp, char *errstr,
                              size_t errstr_size) {
        avro_writer_t wr;
        size_t size = 0;
        char *buf;

        if (avro_value_sizeof(val, &size) || !(buf = malloc(hlen + size)))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "cannot size the task record");
        memcpy(buf, hdr, hlen);
        wr = avro_writer_memory(buf + hlen, (int64_t)size);
        if (!wr || avro_value_write(wr, val)) {
                if (wr)
                        avro_writer_free(wr);
                free(buf);
                return drv_err_set(errstr, errstr_size, DRV_ERR_INTERNAL,
                                   "cannot write the task record");
        }
        avro_writer_free(wr);
        *bufp = buf;
        *lenp = hlen + size;
        return DRV_OK;
}

drv_err_t drv_task_encode(drv_schema_store_t *store, const drv_task_t *task,
                          void **bufp, size_t *lenp, char *errstr,
                          size_t errstr_size) {
        const writer_t *w = store->bundled[store->writer_version - 1];
        unsigned char hdr[SO_HEADER];
        avro_value_t val, f;
        drv_err_t err = DRV_OK;
        size_t i, hlen;
        int32_t id;

        *bufp = NULL;
        *lenp = 0;
        if (store->reg) {
                if ((err = enc_id(store, w, &id, errstr, errstr_size)))
                        return err;
                hdr[0] = CF_MAGIC;
                for (i = 0; i < 4; i++)
                        hdr[1 + i] =
                            (unsigned char)((uint32_t)id >> (24 - 8 * i));
                hlen = CF_HEADER;
        } else {
                hdr[0] = SO_MAGIC0;
                hdr[1] = SO_MAGIC1;
                for (i = 0; i < 8; i++)
                        hdr[2 + i] = (unsigned char)(w->fp >> (8 * i));
                hlen = SO_HEADER;
        }
        if (avro_generic_value_new(w->iface, &val))
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory encoding a task");
        for (i = 0; i < w->nfields && !err; i++) {
                /* by name, not w->slot: a v1 reader does not map the v2
                 * fields it would skip, but a v2 writer must write them */
                const char *name =
                    avro_schema_record_field_name(w->schema, (int)i);
                int s = slot_by_name(name);
                avro_value_get_by_index(&val, i, &f, NULL);
                err = s < 0 ? DRV_ERR_INTERNAL
                            : set_field(task, s, &f, errstr, errstr_size);
                if (err == DRV_ERR_INTERNAL)
                        drv_err_set(errstr, errstr_size, err,
                                    "cannot set task field \"%s\"", name);
        }
        if (!err)
                err = write_record(w, &val, hdr, hlen, bufp, lenp, errstr,
                                   errstr_size);
        avro_value_decref(&val);
        return err;
}
