/*
 * drover - transforms/yaml_json.c: YAML text -> jansson, keeping lines.
 *
 * libyaml's event parser feeds a small recursive builder.  Every container
 * and scalar node built gets its source line recorded in a pointer-keyed
 * hash (drv_linemap_t), so validation can say "file:line: message" about
 * the exact field it rejects.  Scalars follow the YAML 1.2 core schema
 * (what Backstage's own YAML reader uses): plain null/~/true/false,
 * decimal integers and floats; anything quoted or tagged !!str is a
 * string.  Aliases are refused (no billion laughs), as are non-scalar
 * keys, duplicate keys and nesting deeper than 64.
 */
#include "plan_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_MAX_DEPTH 64

/*
 * ------------------------------------------------------------------------
 * Line map: open addressing on the node pointer.
 * ------------------------------------------------------------------------
 */
struct drv_linemap_s {
        const json_t **keys;
        int *lines;
        size_t cap, cnt;
};

static size_t lm_hash(const json_t *node, size_t cap) {
        uintptr_t x = (uintptr_t)node;
        x ^= x >> 17;
        x *= (uintptr_t)0x9e3779b97f4a7c15ULL;
        return (size_t)(x >> 7) & (cap - 1);
}

static int lm_put(drv_linemap_t *m, const json_t *node, int line);

static int lm_grow(drv_linemap_t *m) {
        drv_linemap_t n = {.cap = m->cap ? m->cap * 2 : 256};
        size_t i;

        n.keys = calloc(n.cap, sizeof(*n.keys));
        n.lines = calloc(n.cap, sizeof(*n.lines));
        if (!n.keys || !n.lines) {
                free(n.keys);
                free(n.lines);
                return -1;
        }
        for (i = 0; i < m->cap; i++)
                if (m->keys[i])
                        lm_put(&n, m->keys[i], m->lines[i]);
        free(m->keys);
        free(m->lines);
        *m = n;
        return 0;
}

static int lm_put(drv_linemap_t *m, const json_t *node, int line) {
        size_t i;

        if ((m->cnt + 1) * 10 >= m->cap * 7 && lm_grow(m) == -1)
                return -1;
        for (i = lm_hash(node, m->cap); m->keys[i] && m->keys[i] != node;
             i = (i + 1) & (m->cap - 1))
                ;
        if (!m->keys[i])
                m->cnt++;
        m->keys[i] = node;
        m->lines[i] = line;
        return 0;
}

int drv_linemap_get(const drv_linemap_t *m, const json_t *node, int dflt) {
        size_t i;

        if (!m || !node || !m->cap)
                return dflt;
        for (i = lm_hash(node, m->cap); m->keys[i]; i = (i + 1) & (m->cap - 1))
                if (m->keys[i] == node)
                        return m->lines[i];
        return dflt;
}

static void lm_free(drv_linemap_t *m) {
        if (!m)
                return;
        free(m->keys);
        free(m->lines);
        free(m);
}

/*
 * ------------------------------------------------------------------------
 * Scalars (YAML 1.2 core schema)
 * ------------------------------------------------------------------------
 */
static size_t digits(const char *s) {
        size_t n = 0;

        while (s[n] >= '0' && s[n] <= '9')
                n++;
        return n;
}

/* [-+]?[0-9]+ */
static int is_int(const char *s) {
        if (*s == '-' || *s == '+')
                s++;
        return digits(s) > 0 && !s[digits(s)];
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int is_float(const char *s) {
        size_t n;

        if (*s == '-' || *s == '+')
                s++;
        n = digits(s);
        s += n;
        if (*s == '.') {
                size_t f = digits(s + 1);
                if (n == 0 && f == 0)
                        return 0;
                s += 1 + f;
        } else if (n == 0) {
                return 0;
        }
        if (*s == 'e' || *s == 'E') {
                s++;
                if (*s == '-' || *s == '+')
                        s++;
                if (!digits(s))
                        return 0;
                s += digits(s);
        }
        return *s == '\0';
}

static json_t *plain_scalar(const char *s, size_t len) {
        char *end;

        if (len != strlen(s)) /* embedded NUL: keep it a string */
                return json_stringn(s, len);
        if (!*s || !strcmp(s, "~") || !strcmp(s, "null") ||
            !strcmp(s, "Null") || !strcmp(s, "NULL"))
                return json_null();
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
                return json_true();
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
                return json_false();
        if (is_int(s)) {
                long long v;
                errno = 0;
                v = strtoll(s, &end, 10);
                if (!errno && !*end)
                        return json_integer(v);
        }
        if (is_float(s)) {
                double d = strtod(s, &end);
                if (!*end)
                        return json_real(d);
        }
        return json_stringn(s, len);
}

static json_t *scalar_value(const yaml_event_t *ev) {
        const char *s = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *)ev->data.scalar.tag;

        if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
            (tag && (!strcmp(tag, YAML_STR_TAG) || !strcmp(tag, "!"))))
                return json_stringn(s, len);
        return plain_scalar(s, len);
}

/*
 * ------------------------------------------------------------------------
 * The builder
 * ------------------------------------------------------------------------
 */
typedef struct yp_s {
        yaml_parser_t parser;
        const char *source;
        drv_linemap_t *lines;
        char *errstr;
        size_t errstr_size;
} yp_t;

static drv_err_t yp_fail(yp_t *p, size_t mark_line, const char *msg,
                         const char *detail) {
        return drv_err_set(p->errstr, p->errstr_size, DRV_ERR_INVALID_PLAN,
                           "%s:%zu: %s%s%.200s", p->source, mark_line + 1, msg,
                           detail ? ": " : "", detail ? detail : "");
}

static drv_err_t yp_next(yp_t *p, yaml_event_t *ev) {
        if (yaml_parser_parse(&p->parser, ev))
                return DRV_OK;
        return drv_err_set(p->errstr, p->errstr_size, DRV_ERR_INVALID_PLAN,
                           "%s:%zu: yaml: %s%s%s", p->source,
                           p->parser.problem_mark.line + 1,
                           p->parser.problem ? p->parser.problem : "error",
                           p->parser.context ? " " : "",
                           p->parser.context ? p->parser.context : "");
}

static drv_err_t yp_node(yp_t *p, yaml_event_t *ev, int depth, json_t **outp);

/* Record node's line (singletons have no identity) and hand it out. */
static drv_err_t yp_done(yp_t *p, json_t *node, size_t line, json_t **outp) {
        if (!node)
                return yp_fail(p, line, "invalid value (not utf-8?)", NULL);
        if (node != json_null() && node != json_true() &&
            node != json_false() && lm_put(p->lines, node, (int)line + 1)) {
                json_decref(node);
                return drv_err_set(p->errstr, p->errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        *outp = node;
        return DRV_OK;
}

static drv_err_t yp_sequence(yp_t *p, int depth, json_t *arr) {
        yaml_event_t ev;
        drv_err_t err;
        json_t *item;

        for (;;) {
                if ((err = yp_next(p, &ev)))
                        return err;
                if (ev.type == YAML_SEQUENCE_END_EVENT) {
                        yaml_event_delete(&ev);
                        return DRV_OK;
                }
                if ((err = yp_node(p, &ev, depth + 1, &item)))
                        return err;
                json_array_append_new(arr, item);
        }
}

static drv_err_t yp_mapping(yp_t *p, int depth, json_t *obj) {
        yaml_event_t ev;
        drv_err_t err;
        json_t *val;
        char *key;
        size_t line;

        for (;;) {
                if ((err = yp_next(p, &ev)))
                        return err;
                if (ev.type == YAML_MAPPING_END_EVENT) {
                        yaml_event_delete(&ev);
                        return DRV_OK;
                }
                line = ev.start_mark.line;
                if (ev.type != YAML_SCALAR_EVENT ||
                    strlen((char *)ev.data.scalar.value) !=
                        ev.data.scalar.length) {
                        yaml_event_delete(&ev);
                        return yp_fail(p, line, "mapping keys must be strings",
                                       NULL);
                }
                key = strdup((char *)ev.data.scalar.value);
                yaml_event_delete(&ev);
                if (!key)
                        return yp_fail(p, line, "out of memory", NULL);
                if (json_object_get(obj, key)) {
                        err = yp_fail(p, line, "duplicate key", key);
                        free(key);
                        return err;
                }
                if ((err = yp_next(p, &ev)) ||
                    (err = yp_node(p, &ev, depth + 1, &val))) {
                        free(key);
                        return err;
                }
                json_object_set_new(obj, key, val);
                free(key);
        }
}

/* Build the node that starts with *ev (consumed). */
static drv_err_t yp_node(yp_t *p, yaml_event_t *ev, int depth, json_t **outp) {
        size_t line = ev->start_mark.line;
        yaml_event_type_t type = ev->type;
        json_t *node = NULL;
        drv_err_t err;

        if (type == YAML_SCALAR_EVENT && depth <= YAML_MAX_DEPTH)
                node = scalar_value(ev);
        yaml_event_delete(ev);
        if (depth > YAML_MAX_DEPTH)
                return yp_fail(p, line, "nesting too deep", NULL);
        switch (type) {
        case YAML_SCALAR_EVENT:
                return yp_done(p, node, line, outp);
        case YAML_ALIAS_EVENT:
                return yp_fail(p, line, "yaml aliases are not supported", NULL);
        case YAML_SEQUENCE_START_EVENT:
                node = json_array();
                err = node ? yp_sequence(p, depth, node) : DRV_ERR_NOMEM;
                break;
        case YAML_MAPPING_START_EVENT:
                node = json_object();
                err = node ? yp_mapping(p, depth, node) : DRV_ERR_NOMEM;
                break;
        default:
                return yp_fail(p, line, "unexpected yaml event", NULL);
        }
        if (err) {
                json_decref(node);
                if (err == DRV_ERR_NOMEM)
                        return yp_fail(p, line, "out of memory", NULL);
                return err;
        }
        return yp_done(p, node, line, outp);
}

/* One document after its DOCUMENT_START; appends to out. */
static drv_err_t yp_document(yp_t *p, size_t line, drv_ystream_t *out) {
        yaml_event_t ev;
        drv_err_t err;
        json_t *root;
        drv_ydoc_t *docs;

        if ((err = yp_next(p, &ev)) || (err = yp_node(p, &ev, 0, &root)))
                return err;
        if ((err = yp_next(p, &ev))) {
                json_decref(root);
                return err;
        }
        yaml_event_delete(&ev); /* DOCUMENT_END */
        docs = realloc(out->docs, (out->docs_cnt + 1) * sizeof(*docs));
        if (!docs) {
                json_decref(root);
                return yp_fail(p, line, "out of memory", NULL);
        }
        out->docs = docs;
        docs[out->docs_cnt].root = root;
        docs[out->docs_cnt].line = (int)line + 1;
        out->docs_cnt++;
        return DRV_OK;
}

static drv_err_t yp_stream(yp_t *p, drv_ystream_t *out) {
        yaml_event_t ev;
        drv_err_t err;

        for (;;) {
                if ((err = yp_next(p, &ev)))
                        return err;
                if (ev.type == YAML_STREAM_END_EVENT) {
                        yaml_event_delete(&ev);
                        return DRV_OK;
                }
                if (ev.type == YAML_DOCUMENT_START_EVENT) {
                        size_t line = ev.start_mark.line;
                        yaml_event_delete(&ev);
                        if ((err = yp_document(p, line, out)))
                                return err;
                        continue;
                }
                yaml_event_delete(&ev); /* STREAM_START */
        }
}

drv_err_t drv_yaml_parse(const char *buf, size_t len, const char *source,
                         drv_ystream_t *out, char *errstr, size_t errstr_size) {
        yp_t p = {
            .source = source, .errstr = errstr, .errstr_size = errstr_size};
        drv_err_t err;

        memset(out, 0, sizeof(*out));
        if (!(p.lines = calloc(1, sizeof(*p.lines))) ||
            !yaml_parser_initialize(&p.parser)) {
                free(p.lines);
                return drv_err_set(errstr, errstr_size, DRV_ERR_NOMEM,
                                   "out of memory");
        }
        yaml_parser_set_input_string(&p.parser, (const unsigned char *)buf,
                                     len);
        out->lines = p.lines;
        err = yp_stream(&p, out);
        yaml_parser_delete(&p.parser);
        if (err)
                drv_ystream_free(out);
        return err;
}

void drv_ystream_free(drv_ystream_t *ys) {
        size_t i;

        if (!ys)
                return;
        for (i = 0; i < ys->docs_cnt; i++)
                json_decref(ys->docs[i].root);
        free(ys->docs);
        lm_free(ys->lines);
        memset(ys, 0, sizeof(*ys));
}
