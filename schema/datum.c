/*
 * drover - schema/datum.c: check a binary datum against its writer schema
 * before avro-c reads it.
 *
 * avro-c's reader is the wrong place to meet hostile bytes: on every
 * error it formats a message into one process-wide buffer with
 * overlapping copies (avro_prefix_error), which is a data race when
 * executor threads fail at the same time, and it allocates what a length
 * says before checking that the bytes exist.  So the datum is walked here
 * first, without allocating: every varint at most 10 bytes (5 for int),
 * every length non-negative and inside the record, every union and enum
 * index in range, booleans 0 or 1, a bounded number of array/map items,
 * no trailing bytes, and an estimate of what avro-c will allocate kept
 * under the budget.  A datum that passes reads cleanly in avro-c, so its
 * error paths are never taken.
 */
#include "schema_int.h"

#include <stdio.h>
#include <string.h>

#define ITEMS_MAX 16384
/* what avro-c's generic value spends per string/bytes and per item,
 * beyond the bytes themselves (measured roughly, rounded up) */
#define STRING_COST 64
#define ITEM_COST   160

typedef struct dcur_s {
        const unsigned char *p, *end;
        size_t items;
        size_t cost;
        const char *err;
        const char *field; /* the top-level field being walked */
        char msg[160];     /* err, when it is formatted */
} dcur_t;

static int fail(dcur_t *c, const char *err) {
        if (!c->err)
                c->err = err;
        return -1;
}

static int rd_varint(dcur_t *c, int max_bytes, int64_t *vp) {
        uint64_t v = 0;
        int i;

        for (i = 0; i < max_bytes; i++) {
                if (c->p >= c->end)
                        return fail(c, "truncated");
                v |= (uint64_t)(*c->p & 0x7f) << (7 * i);
                if (!(*c->p++ & 0x80)) {
                        *vp = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
                        return 0;
                }
        }
        return fail(c, "over-long varint");
}

static int rd_long(dcur_t *c, int64_t *vp) {
        return rd_varint(c, 10, vp);
}

static int skip_bytes(dcur_t *c, int64_t n) {
        if (n < 0)
                return fail(c, "negative length");
        if ((uint64_t)n > (uint64_t)(c->end - c->p))
                return fail(c, "truncated (a length runs past the end)");
        c->p += n;
        return 0;
}

static int skip(dcur_t *c, avro_schema_t s, int depth);

/* A map key: a string without a NUL byte.  avro-c keeps keys as C
 * strings, so "a\0x" would silently become "a" (and collide with "a\0y");
 * refused like a NUL in a value.  `item` counts the map's keys from 1. */
static int skip_map_key(dcur_t *c, int64_t item) {
        const unsigned char *k;
        int64_t n;

        if (rd_long(c, &n))
                return -1;
        k = c->p;
        if (skip_bytes(c, n))
                return -1;
        c->cost += (size_t)n + STRING_COST;
        if (n > 0 && memchr(k, '\0', (size_t)n)) {
                c->p = k;
                snprintf(c->msg, sizeof(c->msg),
                         "key number %lld of map field \"%s\" holds a nul "
                         "byte",
                         (long long)item, c->field ? c->field : "?");
                return fail(c, c->msg);
        }
        return 0;
}

/* Arrays and maps: blocks of items, a negative count carries a byte size */
static int skip_blocks(dcur_t *c, avro_schema_t elem, int is_map, int depth) {
        int64_t count, size, i, item = 0;

        for (;;) {
                if (rd_long(c, &count))
                        return -1;
                if (count == 0)
                        return 0;
                if (count < 0) {
                        if (count == INT64_MIN)
                                return fail(c, "bad block count");
                        count = -count;
                        if (rd_long(c, &size) || size < 0)
                                return fail(c, "bad block size");
                }
                if ((uint64_t)count > ITEMS_MAX - c->items)
                        return fail(c, "too many array or map items");
                c->items += (size_t)count;
                c->cost += (size_t)count * ITEM_COST;
                for (i = 0; i < count; i++) {
                        if (is_map && skip_map_key(c, ++item))
                                return -1;
                        if (skip(c, elem, depth + 1))
                                return -1;
                }
        }
}

static int skip_scalar(dcur_t *c, avro_type_t t) {
        int64_t v;

        switch (t) {
        case AVRO_NULL:
                return 0;
        case AVRO_BOOLEAN:
                if (c->p >= c->end)
                        return fail(c, "truncated");
                if (*c->p > 1)
                        return fail(c, "bad boolean");
                c->p++;
                return 0;
        case AVRO_INT32:
                if (rd_varint(c, 5, &v))
                        return -1;
                if (v < INT32_MIN || v > INT32_MAX)
                        return fail(c, "int out of range");
                return 0;
        case AVRO_INT64:
                return rd_long(c, &v);
        case AVRO_FLOAT:
                return skip_bytes(c, 4);
        case AVRO_DOUBLE:
                return skip_bytes(c, 8);
        case AVRO_STRING:
        case AVRO_BYTES:
                if (rd_long(c, &v) || skip_bytes(c, v))
                        return -1;
                c->cost += (size_t)v + STRING_COST;
                return 0;
        default:
                return fail(c, "unsupported type");
        }
}

static int skip(dcur_t *c, avro_schema_t s, int depth) {
        int64_t v;
        size_t i, n;

        if (depth > DRV_SCHEMA_DEPTH_MAX + 2)
                return fail(c, "nested too deep");
        switch (avro_typeof(s)) {
        case AVRO_RECORD:
                n = avro_schema_record_size(s);
                for (i = 0; i < n; i++)
                        if (skip(c,
                                 avro_schema_record_field_get_by_index(s,
                                                                       (int)i),
                                 depth + 1))
                                return -1;
                return 0;
        case AVRO_ENUM:
                if (rd_long(c, &v))
                        return -1;
                if (v < 0 || v >= avro_schema_enum_number_of_symbols(s))
                        return fail(c, "enum index out of range");
                return 0;
        case AVRO_FIXED:
                c->cost += (size_t)avro_schema_fixed_size(s) + STRING_COST;
                return skip_bytes(c, avro_schema_fixed_size(s));
        case AVRO_UNION:
                if (rd_long(c, &v))
                        return -1;
                if (v < 0 || (uint64_t)v >= avro_schema_union_size(s))
                        return fail(c, "bad union index");
                return skip(c, avro_schema_union_branch(s, (int)v), depth + 1);
        case AVRO_ARRAY:
                return skip_blocks(c, avro_schema_array_items(s), 0, depth);
        case AVRO_MAP:
                return skip_blocks(c, avro_schema_map_values(s), 1, depth);
        case AVRO_LINK:
                return skip(c, avro_schema_link_target(s), depth + 1);
        default:
                return skip_scalar(c, avro_typeof(s));
        }
}

/* The top-level record: like skip(), noting where mapped fields start. */
static int skip_top(dcur_t *c, avro_schema_t s, const int *field_slot,
                    const unsigned char **slot_at) {
        size_t i, n;

        if (avro_typeof(s) != AVRO_RECORD)
                return skip(c, s, 0);
        n = avro_schema_record_size(s);
        for (i = 0; i < n; i++) {
                c->field = avro_schema_record_field_name(s, (int)i);
                if (field_slot && field_slot[i] >= 0)
                        slot_at[field_slot[i]] = c->p;
                if (skip(c, avro_schema_record_field_get_by_index(s, (int)i),
                         1))
                        return -1;
        }
        return 0;
}

drv_err_t drv_datum_check(avro_schema_t schema, const void *data, size_t len,
                          size_t budget, const int *field_slot,
                          const unsigned char **slot_at, char *errstr,
                          size_t errstr_size) {
        dcur_t c = {data, (const unsigned char *)data + len, 0, 0, NULL, NULL,
                    ""};

        if (skip_top(&c, schema, field_slot, slot_at))
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "cannot decode task record: %s at byte "
                                   "%zu of the datum",
                                   c.err,
                                   (size_t)(c.p - (const unsigned char *)data));
        if (c.p != c.end)
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "cannot decode task record: %zu trailing "
                                   "bytes after the datum",
                                   (size_t)(c.end - c.p));
        if (c.cost > budget)
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "cannot decode task record: it would "
                                   "need more than the allocation budget of "
                                   "%zu bytes",
                                   budget);
        return DRV_OK;
}
