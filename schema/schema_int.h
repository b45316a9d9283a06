/*
 * drover - schema/schema_int.h: private to schema/.
 */
#ifndef DRV_SCHEMA_INT_H
#define DRV_SCHEMA_INT_H

#include "schema.h"

#include <avro.h>
#include <pthread.h>

#define DRV_SCHEMA_NAME_MAX  256
#define DRV_SCHEMA_DEPTH_MAX 32

/*
 * ------------------------------------------------------------------------
 * Per-record allocation budget for avro-c (alloc.c)
 *
 * drv_arena_begin() installs (once, process-wide) an avro-c allocator and
 * makes this thread's avro-c allocations count against `budget` net
 * bytes until drv_arena_end(); a request beyond it fails (avro-c sees
 * ENOMEM) and sets a->exhausted.  Arenas do not nest.
 * ------------------------------------------------------------------------
 */
typedef struct drv_arena_s {
        size_t budget;
        int64_t net; /* bytes allocated minus freed since begin */
        int exhausted;
} drv_arena_t;

void drv_arena_install(void);
void drv_arena_begin(drv_arena_t *a, size_t budget);
void drv_arena_end(drv_arena_t *a);

/* A task in one block with `extra` bytes after the struct (*extrap; max
 * alignment), all zero but the extra bytes (task.c).  Strings placed
 * there are not freed separately by drv_task_destroy(). */
drv_task_t *drv_task_alloc(size_t extra, char **extrap);

/* Check a binary datum against its writer schema without allocating
 * (datum.c): DRV_OK, or DRV_ERR_DECODE and one line.  A datum that passes
 * reads in avro-c without taking an error path, and its values can be
 * read back with no further bounds or range checks.  `budget` caps the
 * estimated cost of an avro-c generic value for the datum.
 * field_slot (may be NULL; then slot_at is unused) maps each field of a
 * record schema to a slot number or -1; for every mapped field,
 * slot_at[slot] is set to where its value starts in data. */
drv_err_t drv_datum_check(avro_schema_t schema, const void *data, size_t len,
                          size_t budget, const int *field_slot,
                          const unsigned char **slot_at, char *errstr,
                          size_t errstr_size);

/* drv_task_decode() through avro-c's generic value (the decoder before
 * the direct one, store.c): same contract, same errors.  Kept as the
 * reference the direct decoder is proven against (tests, fuzz target);
 * not used on the hot path. */
drv_err_t drv_task_decode_reference(drv_schema_store_t *store, const void *buf,
                                    size_t len, drv_task_t **taskp,
                                    char *errstr, size_t errstr_size);

/*
 * ------------------------------------------------------------------------
 * Schema registry client (registry.c)
 * ------------------------------------------------------------------------
 */
typedef struct drv_registry_s drv_registry_t;

drv_registry_t *drv_registry_new(const drv_schema_conf_t *conf, char *errstr,
                                 size_t errstr_size);
void drv_registry_destroy(drv_registry_t *reg);
/* GET /schemas/ids/{id}: *jsonp (malloc'ed) is the schema text. */
drv_err_t drv_registry_get(drv_registry_t *reg, int32_t id, char **jsonp,
                           char *errstr, size_t errstr_size);
/* POST /subjects/{subject}/versions: *idp is the schema's id. */
drv_err_t drv_registry_register(drv_registry_t *reg, const char *subject,
                                const char *json, int32_t *idp, char *errstr,
                                size_t errstr_size);

#endif /* DRV_SCHEMA_INT_H */
