/*
 * drover - transforms/plan_int.h: private to the plan and catalog half of
 * transforms/ (YAML documents with line numbers, plan building).
 */
#ifndef DRV_PLAN_INT_H
#define DRV_PLAN_INT_H

#include "transforms.h"

/* Source lines of the JSON nodes built from YAML, keyed by node pointer.
 * Singletons (true, false, null) are not recorded. */
typedef struct drv_linemap_s drv_linemap_t;

/* Line of `node` (1-based), or `dflt` when unknown / map is NULL. */
int drv_linemap_get(const drv_linemap_t *map, const json_t *node, int dflt);

/* One YAML document as JSON. */
typedef struct drv_ydoc_s {
        json_t *root; /* owned */
        int line;     /* line of the document start */
} drv_ydoc_t;

/* Parsed YAML stream: documents plus one line map for all of them. */
typedef struct drv_ystream_s {
        drv_ydoc_t *docs;
        size_t docs_cnt;
        drv_linemap_t *lines;
} drv_ystream_t;

/* Parse YAML text into JSON documents (YAML 1.2 core scalars: null, true,
 * false, integers, floats; quoted scalars are strings).  Aliases, non-
 * scalar keys, duplicate keys and nesting deeper than 64 are refused.  On
 * DRV_OK *out is filled (free with drv_ystream_free); on failure
 * DRV_ERR_INVALID_PLAN with "source:line: message". */
drv_err_t drv_yaml_parse(const char *buf, size_t len, const char *source,
                         drv_ystream_t *out, char *errstr, size_t errstr_size);
void drv_ystream_free(drv_ystream_t *ys);

/* Build and validate a plan from `entity`; `lines` (may be NULL) gives the
 * line of each node of `entity`, `doc_line` the fallback. */
drv_err_t drv_plan_build(const json_t *entity, const char *source,
                         const drv_linemap_t *lines, int doc_line,
                         drv_plan_t **planp, char *errstr, size_t errstr_size);

/* Validation context: where messages point. */
typedef struct drv_vctx_s {
        const char *source;
        const drv_linemap_t *lines; /* may be NULL */
        int line;                   /* fallback line */
        char *errstr;
        size_t errstr_size;
} drv_vctx_t;

/* Validate one step definition (op known by the caller) and the plan
 * header; fail with DRV_ERR_INVALID_PLAN "source:line: message". */
drv_err_t drv_step_validate(const drv_vctx_t *vc, const json_t *step, int index,
                            drv_op_t *opp, int allow_sql);
/* spec.tables (may be NULL): a non-empty list of tables, none in a schema
 * plans may not touch (drover, information_schema, pg_*). */
drv_err_t drv_plan_tables_validate(const drv_vctx_t *vc, const json_t *tables);
/* The tables step `index` (a valid step of `op`) names: none in a schema
 * plans may not touch, nor an unqualified pg_* name; with `allow`
 * (spec.tables) each must be in it and sql steps are refused. */
drv_err_t drv_step_tables_check(const drv_vctx_t *vc, const json_t *step,
                                int index, drv_op_t op, const json_t *allow);
/* spec.throttle of `spec` (absent: no checks): a mapping of
 * max_replica_lag_ms and max_active_connections (integers from 1) and
 * query (drv_throttle_query_valid); anything else fails naming
 * spec.throttle.<field>.  With `out` (may be NULL) the values are copied
 * into it (out->query malloc'ed, the caller frees it). */
drv_err_t drv_throttle_from_json(const drv_vctx_t *vc, const json_t *spec,
                                 drv_throttle_t *out);
drv_err_t drv_vfail(const drv_vctx_t *vc, const json_t *node, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

/*
 * Catalog internals
 */

/* One ref in a catalog: a plan, or the error resolving it gives. */
typedef struct drv_centry_s {
        char ref[400];
        drv_plan_t *plan;   /* one reference owned, or NULL */
        drv_err_t err;      /* when plan is NULL */
        char *errmsg;       /* when plan is NULL */
        int64_t checked_ms; /* monotonic: when fetched / revalidated */
} drv_centry_t;

/* Entries by ref, with a hash table over them (catalogs of tens of
 * thousands of plans: a lookup must not walk them all). */
typedef struct drv_cindex_s {
        drv_centry_t *v;
        size_t cnt, cap;
        uint32_t *slots;  /* open addressing: index into v + 1, 0 = empty */
        size_t nslots;    /* 0 or a power of two > 2 * cnt */
        size_t bad_files; /* YAML that did not parse (no ref known) */
        char *first_bad;  /* the first such error */
        uint64_t sig;     /* local: drv_catalog_sig() when scanned */
} drv_cindex_t;

drv_centry_t *drv_cindex_find(drv_cindex_t *idx, const char *ref);
/* A new zeroed entry for ref (not already in idx); NULL on out of memory.
 * Pointers from earlier finds / adds are invalid after it. */
drv_centry_t *drv_cindex_add(drv_cindex_t *idx, const char *ref);
/* Pointers from earlier finds / adds are invalid after it. */
void drv_cindex_remove(drv_cindex_t *idx, drv_centry_t *e);
void drv_cindex_free(drv_cindex_t *idx);

/* Index every *.yaml / *.yml under dir (recursively) into idx (empty on
 * entry), and set idx->sig.  Files that fail count in bad_files; plans
 * that fail validation become error entries.  Fails only when dir cannot
 * be read. */
drv_err_t drv_catalog_scan(const char *dir, drv_cindex_t *idx, char *errstr,
                           size_t errstr_size);
/* The signature of what drv_catalog_scan would read, from a stat walk
 * without parsing: each YAML file's path, device, inode, size, mtime and
 * ctime (nanoseconds).  Equal signatures: nothing to re-parse.  Fails
 * only when dir cannot be read. */
drv_err_t drv_catalog_sig(const char *dir, uint64_t *sig, char *errstr,
                          size_t errstr_size);

/* GET {base}/api/catalog/entities/by-name/{kind}/{ns}/{name}. */
typedef struct drv_http_resp_s {
        long status; /* 0 when no response */
        char *body;  /* malloc'ed, NUL-terminated */
        size_t len;
} drv_http_resp_t;

drv_err_t drv_backstage_get(const char *base_url, const char *token,
                            long connect_timeout_ms, long timeout_ms,
                            const drv_entity_ref_t *ref, drv_http_resp_t *resp,
                            char *errstr, size_t errstr_size);

/* Length of the identifier at s ([A-Za-z_][A-Za-z0-9_]*), 0 if none
 * (expr.c; plan_validate.c's identifiers and $param: names). */
size_t drv_ident_len(const char *s);

#endif /* DRV_PLAN_INT_H */
