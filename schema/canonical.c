/*
 * drover - schema/canonical.c: Avro Parsing Canonical Form, the
 * CRC-64-AVRO fingerprint, and validation of schemas we did not ship.
 *
 * avro-c 1.11.1 has neither the canonical form nor the fingerprint, and
 * its parser trusts its input (a recursive schema overflows the stack, a
 * negative fixed size crashes), so every schema that does not come from
 * schema/avro/ passes drv_schema_validate() before avro-c sees it.
 *
 * Canonical form, per the Avro specification ("Transforming into Parsing
 * Canonical Form"): PRIMITIVES ({"type":"int"} -> "int"), FULLNAMES,
 * STRIP (keep type, name, fields, symbols, items, values, size), ORDER
 * (that order), STRINGS, INTEGERS, WHITESPACE.
 */
#include "schema_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * ------------------------------------------------------------------------
 * CRC-64-AVRO (the Rabin fingerprint of the specification)
 * ------------------------------------------------------------------------
 */
#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

static uint64_t crc64_table[256];
static pthread_once_t crc64_once = PTHREAD_ONCE_INIT;

static void crc64_init(void) {
        int i, j;

        for (i = 0; i < 256; i++) {
                uint64_t fp = (uint64_t)i;
                for (j = 0; j < 8; j++)
                        fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & -(fp & 1));
                crc64_table[i] = fp;
        }
}

uint64_t drv_schema_crc64_avro(const void *data, size_t len) {
        const unsigned char *p = data;
        uint64_t fp = CRC64_AVRO_EMPTY;
        size_t i;

        pthread_once(&crc64_once, crc64_init);
        for (i = 0; i < len; i++)
                fp = (fp >> 8) ^ crc64_table[(fp ^ p[i]) & 0xff];
        return fp;
}

/*
 * ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------
 */
static const char *const primitives[] = {
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
};

static int is_primitive(const char *t) {
        size_t i;

        for (i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++)
                if (!strcmp(t, primitives[i]))
                        return 1;
        return 0;
}

static int is_named_type(const char *t) {
        return !strcmp(t, "record") || !strcmp(t, "error") ||
               !strcmp(t, "enum") || !strcmp(t, "fixed");
}

/* The full name of `name` in namespace `ns` into out; -1 if too long. */
static int fullname(const char *name, const char *ns, char *out,
                    size_t out_size) {
        int n;

        if (strchr(name, '.') || !ns || !*ns)
                n = snprintf(out, out_size, "%s", name);
        else
                n = snprintf(out, out_size, "%s.%s", ns, name);
        return n < 0 || (size_t)n >= out_size ? -1 : 0;
}

/* The namespace part of a full name (up to the last dot) into out. */
static void namespace_of(const char *full, char *out, size_t out_size) {
        const char *dot = strrchr(full, '.');
        size_t n = dot ? (size_t)(dot - full) : 0;

        if (n >= out_size)
                n = out_size - 1;
        memcpy(out, full, n);
        out[n] = '\0';
}

/* The full name and inner namespace of a named type's definition. */
static int named_names(json_t *s, const char *ns, char *full, char *inner) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *own_ns = json_string_value(json_object_get(s, "namespace"));

        if (!name || !*name)
                return -1;
        if (fullname(name, own_ns ? own_ns : ns, full, DRV_SCHEMA_NAME_MAX))
                return -1;
        namespace_of(full, inner, DRV_SCHEMA_NAME_MAX);
        return 0;
}

/*
 * ------------------------------------------------------------------------
 * Parsing Canonical Form
 * ------------------------------------------------------------------------
 */
static json_t *pcf(json_t *s, const char *ns, int depth);

static json_t *pcf_fields(json_t *fields, const char *ns, int depth) {
        json_t *out = json_array(), *f;
        size_t i;

        if (!json_is_array(fields))
                goto err;
        json_array_foreach(fields, i, f) {
                json_t *name = json_object_get(f, "name");
                json_t *type = pcf(json_object_get(f, "type"), ns, depth + 1);
                json_t *o = json_object();

                if (!json_is_string(name) || !type) {
                        json_decref(type);
                        json_decref(o);
                        goto err;
                }
                json_object_set(o, "name", name);
                json_object_set_new(o, "type", type);
                json_array_append_new(out, o);
        }
        return out;
err:
        json_decref(out);
        return NULL;
}

static json_t *pcf_named(json_t *s, const char *type, const char *ns,
                         int depth) {
        char full[DRV_SCHEMA_NAME_MAX], inner[DRV_SCHEMA_NAME_MAX];
        json_t *out, *v = NULL;

        if (named_names(s, ns, full, inner))
                return NULL;
        out = json_object();
        json_object_set_new(out, "name", json_string(full));
        json_object_set_new(out, "type", json_string(type));
        if (!strcmp(type, "record") || !strcmp(type, "error")) {
                v = pcf_fields(json_object_get(s, "fields"), inner, depth);
                if (v)
                        json_object_set_new(out, "fields", v);
        } else if (!strcmp(type, "enum")) {
                v = json_object_get(s, "symbols");
                if (json_is_array(v))
                        json_object_set(out, "symbols", v);
                else
                        v = NULL;
        } else {
                v = json_object_get(s, "size");
                if (json_is_integer(v))
                        json_object_set(out, "size", v);
                else
                        v = NULL;
        }
        if (!v) {
                json_decref(out);
                return NULL;
        }
        return out;
}

static json_t *pcf_object(json_t *s, const char *ns, int depth) {
        json_t *t = json_object_get(s, "type"), *out, *v;
        const char *type = json_string_value(t);
        int is_array;

        if (!type)
                return t ? pcf(t, ns, depth + 1) : NULL;
        if (is_primitive(type))
                return json_string(type);
        if (is_named_type(type))
                return pcf_named(s, type, ns, depth);
        is_array = !strcmp(type, "array");
        if (!is_array && strcmp(type, "map"))
                return NULL;
        v = pcf(json_object_get(s, is_array ? "items" : "values"), ns,
                depth + 1);
        if (!v)
                return NULL;
        out = json_object();
        json_object_set_new(out, "type", json_string(type));
        json_object_set_new(out, is_array ? "items" : "values", v);
        return out;
}

static json_t *pcf(json_t *s, const char *ns, int depth) {
        char full[DRV_SCHEMA_NAME_MAX];
        json_t *out, *b;
        size_t i;

        if (!s || depth > DRV_SCHEMA_DEPTH_MAX)
                return NULL;
        if (json_is_string(s)) {
                const char *t = json_string_value(s);
                if (is_primitive(t))
                        return json_string(t);
                if (fullname(t, ns, full, sizeof(full)))
                        return NULL;
                return json_string(full);
        }
        if (json_is_object(s))
                return pcf_object(s, ns, depth);
        if (!json_is_array(s))
                return NULL;
        out = json_array();
        json_array_foreach(s, i, b) {
                json_t *c = pcf(b, ns, depth + 1);
                if (!c) {
                        json_decref(out);
                        return NULL;
                }
                json_array_append_new(out, c);
        }
        return out;
}

drv_err_t drv_schema_canonical_form(const char *json, size_t len, char **canonp,
                                    char *errstr, size_t errstr_size) {
        json_error_t jerr;
        json_t *root, *c;

        *canonp = NULL;
        root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
        if (!root)
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "schema is not valid json: %s (line %d)",
                                   jerr.text, jerr.line);
        c = pcf(root, "", 0);
        json_decref(root);
        if (!c)
                return drv_err_set(errstr, errstr_size, DRV_ERR_DECODE,
                                   "schema is not a valid avro schema");
        *canonp =
            json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        json_decref(c);
        if (!*canonp)
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory writing canonical form");
        return DRV_OK;
}

drv_err_t drv_schema_fingerprint(const char *json, size_t len, uint64_t *fpp,
                                 char *errstr, size_t errstr_size) {
        char *canon;
        drv_err_t err;

        err = drv_schema_canonical_form(json, len, &canon, errstr, errstr_size);
        if (err)
                return err;
        *fpp = drv_schema_crc64_avro(canon, strlen(canon));
        free(canon);
        return DRV_OK;
}

/*
 * ------------------------------------------------------------------------
 * Validation of schemas we did not ship
 *
 * A schema from a registry is input like any other.  Refuse what avro-c
 * cannot take safely or what a task record has no business containing:
 * recursion (avro-c's reader recurses without a limit), deep nesting,
 * huge or negative fixed sizes, oversized unions, enums and records,
 * unknown types and names that are not Avro names.
 * ------------------------------------------------------------------------
 */
#define V_NAMED_MAX  64
#define V_NODES_MAX  4096
#define V_FIELDS_MAX 256
#define V_SYMS_MAX   1024
#define V_BRANCH_MAX 16
#define V_FIXED_MAX  65536

struct vctx {
        char names[V_NAMED_MAX][DRV_SCHEMA_NAME_MAX];
        int defining[V_NAMED_MAX];
        int n;
        int nodes;
        char *errstr;
        size_t errstr_size;
};

static int vfail(struct vctx *v, const char *fmt, const char *arg) {
        char msg[256];

        snprintf(msg, sizeof(msg), fmt, arg);
        drv_err_set(v->errstr, v->errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                    "invalid writer schema: %s", msg);
        return -1;
}

static int valid_name(const char *s, int dots) {
        int start = 1;

        if (!s || !*s)
                return 0;
        for (; *s; s++) {
                int alpha = (*s >= 'A' && *s <= 'Z') ||
                            (*s >= 'a' && *s <= 'z') || *s == '_';
                int digit = *s >= '0' && *s <= '9';
                if (*s == '.' && dots && !start) {
                        start = 1;
                        continue;
                }
                if (!alpha && !(digit && !start))
                        return 0;
                start = 0;
        }
        return !start;
}

static int vfind(struct vctx *v, const char *full) {
        int i;

        for (i = 0; i < v->n; i++)
                if (!strcmp(v->names[i], full))
                        return i;
        return -1;
}

static int vschema(struct vctx *v, json_t *s, const char *ns, int depth);

static int vfields(struct vctx *v, json_t *fields, const char *ns, int depth) {
        json_t *f;
        size_t i, j;

        if (!json_is_array(fields))
                return vfail(v, "record without a fields array%s", "");
        if (json_array_size(fields) > V_FIELDS_MAX)
                return vfail(v, "record with more than %s fields", "256");
        json_array_foreach(fields, i, f) {
                const char *name =
                    json_string_value(json_object_get(f, "name"));
                if (!valid_name(name, 0))
                        return vfail(v, "bad field name \"%s\"",
                                     name ? name : "");
                for (j = 0; j < i; j++)
                        if (!strcmp(name,
                                    json_string_value(json_object_get(
                                        json_array_get(fields, j), "name"))))
                                return vfail(v, "duplicate field \"%s\"", name);
                if (vschema(v, json_object_get(f, "type"), ns, depth + 1))
                        return -1;
        }
        return 0;
}

static int vsymbols(struct vctx *v, json_t *syms) {
        json_t *s;
        size_t i, j;

        if (!json_is_array(syms) || json_array_size(syms) == 0 ||
            json_array_size(syms) > V_SYMS_MAX)
                return vfail(v, "enum needs 1 to %s symbols", "1024");
        json_array_foreach(syms, i, s) {
                if (!valid_name(json_string_value(s), 0))
                        return vfail(v, "bad enum symbol%s", "");
                for (j = 0; j < i; j++)
                        if (json_equal(s, json_array_get(syms, j)))
                                return vfail(v,
                                             "duplicate enum symbol "
                                             "\"%s\"",
                                             json_string_value(s));
        }
        return 0;
}

static int vnamed(struct vctx *v, json_t *s, const char *type, const char *ns,
                  int depth) {
        char full[DRV_SCHEMA_NAME_MAX], inner[DRV_SCHEMA_NAME_MAX];
        json_t *size;
        int idx, rc = 0;

        if (named_names(s, ns, full, inner) || !valid_name(full, 1))
                return vfail(v, "bad or missing name in a %s", type);
        if (vfind(v, full) >= 0)
                return vfail(v, "type \"%s\" defined twice", full);
        if (v->n >= V_NAMED_MAX)
                return vfail(v, "more than %s named types", "64");
        idx = v->n++;
        snprintf(v->names[idx], DRV_SCHEMA_NAME_MAX, "%s", full);
        v->defining[idx] = 1;
        if (!strcmp(type, "record")) {
                rc = vfields(v, json_object_get(s, "fields"), inner, depth);
        } else if (!strcmp(type, "enum")) {
                rc = vsymbols(v, json_object_get(s, "symbols"));
        } else {
                size = json_object_get(s, "size");
                if (!json_is_integer(size) || json_integer_value(size) < 1 ||
                    json_integer_value(size) > V_FIXED_MAX)
                        rc = vfail(v,
                                   "fixed \"%s\" needs a size from 1 to "
                                   "65536",
                                   full);
        }
        v->defining[idx] = 0;
        return rc;
}

static int vobject(struct vctx *v, json_t *s, const char *ns, int depth) {
        const char *type = json_string_value(json_object_get(s, "type"));

        if (!type)
                return vfail(v, "object schema without a type name%s", "");
        if (is_primitive(type))
                return 0;
        if (!strcmp(type, "record") || !strcmp(type, "enum") ||
            !strcmp(type, "fixed"))
                return vnamed(v, s, type, ns, depth);
        if (!strcmp(type, "array"))
                return vschema(v, json_object_get(s, "items"), ns, depth + 1);
        if (!strcmp(type, "map"))
                return vschema(v, json_object_get(s, "values"), ns, depth + 1);
        return vfail(v, "unsupported type \"%s\"", type);
}

static int vschema(struct vctx *v, json_t *s, const char *ns, int depth) {
        char full[DRV_SCHEMA_NAME_MAX];
        json_t *b;
        size_t i;
        int idx;

        if (++v->nodes > V_NODES_MAX)
                return vfail(v, "more than %s schema nodes", "4096");
        if (depth > DRV_SCHEMA_DEPTH_MAX)
                return vfail(v, "nested deeper than %s levels", "32");
        if (json_is_string(s)) {
                const char *t = json_string_value(s);
                if (is_primitive(t))
                        return 0;
                if (fullname(t, ns, full, sizeof(full)) ||
                    (idx = vfind(v, full)) < 0)
                        return vfail(v, "unknown type \"%s\"", t);
                if (v->defining[idx])
                        return vfail(v, "recursive type \"%s\"", full);
                return 0;
        }
        if (json_is_object(s))
                return vobject(v, s, ns, depth);
        if (!json_is_array(s))
                return vfail(v,
                             "a schema must be a string, object or "
                             "array%s",
                             "");
        if (json_array_size(s) == 0 || json_array_size(s) > V_BRANCH_MAX)
                return vfail(v, "a union needs 1 to %s branches", "16");
        json_array_foreach(s, i, b) {
                if (json_is_array(b))
                        return vfail(v, "union inside a union%s", "");
                if (vschema(v, b, ns, depth + 1))
                        return -1;
        }
        return 0;
}

drv_err_t drv_schema_validate(const char *json, size_t len, char *errstr,
                              size_t errstr_size) {
        struct vctx *v;
        json_error_t jerr;
        json_t *root;
        int rc;

        root = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                          &jerr);
        if (!root)
                return drv_err_set(errstr, errstr_size, DRV_ERR_UNKNOWN_SCHEMA,
                                   "invalid writer schema: not valid json: "
                                   "%s",
                                   jerr.text);
        v = calloc(1, sizeof(*v));
        if (!v) {
                json_decref(root);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory validating a schema");
        }
        v->errstr = errstr;
        v->errstr_size = errstr_size;
        rc = vschema(v, root, "", 0);
        free(v);
        json_decref(root);
        return rc ? DRV_ERR_UNKNOWN_SCHEMA : DRV_OK;
}
